"""Suite-wide fixtures: one local SparkSession for every Spark test, and run settings whose lake
lives in the test's own temporary folder."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Read by recflow.spark when it is first imported (its DEFAULTS are module constants), so set
# here, before any test module imports it: two cores need two shuffle partitions, not eight.
os.environ.setdefault("RECFLOW_SHUFFLE_PARTITIONS", "2")


@pytest.fixture(scope="session")
def spark(tmp_path_factory) -> Iterator:
    """The one SparkSession of the test run: local[2], two shuffle partitions, UI off.

    Starting a JVM per test would cost minutes; every Spark test shares this one."""
    # get_spark exposes no way to turn the UI off, so pass it the way spark-submit would. Off
    # because several test runs on one machine would otherwise race for port 4040 and up.
    if "PYSPARK_SUBMIT_ARGS" not in os.environ and "PYSPARK_GATEWAY_PORT" not in os.environ:
        os.environ["PYSPARK_SUBMIT_ARGS"] = "--conf spark.ui.enabled=false pyspark-shell"
    from recflow.spark import get_spark

    session = get_spark("recflow-tests", checkpoint_dir=str(tmp_path_factory.mktemp("spark-checkpoints")))
    # In case recflow.spark was imported (with its default of 8) before this conftest ran.
    session.conf.set("spark.sql.shuffle.partitions", os.environ["RECFLOW_SHUFFLE_PARTITIONS"])
    yield session
    session.stop()


@pytest.fixture
def settings_factory(tmp_path) -> Callable[..., Any]:
    """`make(**params)` -> Settings.from_params(params) with its data and lake under tmp_path."""
    from recflow.config import Settings

    def make(params: dict[str, Any] | None = None, **more: Any) -> Settings:
        settings = Settings.from_params({**(params or {}), **more})
        # lake_uri too: a RECFLOW_LAKE_URI in the environment must not send test data elsewhere.
        return dataclasses.replace(settings, data_dir=tmp_path, lake_uri=None)

    return make
