"""Pure parts of recflow.spark: no JVM."""

from __future__ import annotations

import os

import pytest

from recflow.spark import local_cores


@pytest.mark.parametrize(
    ("master", "slots"),
    [("local", 1), ("local[4]", 4), ("local[4,2]", 4), ("local[*]", os.cpu_count()), ("spark://m:7077", None),
     ("yarn", None), ("localhost", None)],
)  # fmt: skip
def test_local_cores(master, slots):
    assert local_cores(master) == slots
