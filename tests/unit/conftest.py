"""tests/unit holds the tests that need no JVM: each runs in milliseconds, alone or all together.
The ones that need Spark live in tests/spark (the suite's one local session) and
tests/spark_connect (the warm server)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def spark():
    pytest.fail("tests/unit starts no JVM: a test that needs Spark belongs in tests/spark")
