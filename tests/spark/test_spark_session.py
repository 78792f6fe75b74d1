"""The suite's shared SparkSession has the settings tests on a small machine need."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.spark


def test_session_is_local_small_and_quiet(spark):
    conf = spark.sparkContext.getConf()
    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.sql.shuffle.partitions") == os.environ["RECFLOW_SHUFFLE_PARTITIONS"]
    assert conf.get("spark.ui.enabled") == "false"
    assert spark.sparkContext.uiWebUrl is None
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    # ALS needs it, else checkpointInterval is silently ignored.
    assert spark.sparkContext.getCheckpointDir()
    # The environment variable only reached the JVM's launch; nothing later inherits it.
    assert "spark.ui.enabled" not in os.environ.get("PYSPARK_SUBMIT_ARGS", "")
