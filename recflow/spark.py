"""SparkSession for jobs and tests, with the settings the defaults get wrong on small machines."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

# Defaults only: spark-submit --conf (the Airflow connection, a cluster's spark-defaults.conf)
# wins, since getOrCreate() keeps values the launcher already set.
DEFAULTS = {
    # 200 shuffle partitions turn a few MB into 200 tiny tasks; size this to the cluster.
    "spark.sql.shuffle.partitions": os.environ.get("RECFLOW_SHUFFLE_PARTITIONS", "8"),
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    # Parquet timestamps without the legacy INT96 encoding, readable by pyarrow in publish.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def session_conf() -> dict[str, str]:
    """The DEFAULTS a running session may still change (Spark SQL's run-time settings): what a
    Spark Connect task sets on its own session, since the server started with another run's
    environment (RECFLOW_SHUFFLE_PARTITIONS, say)."""
    return {key: value for key, value in DEFAULTS.items() if key.startswith("spark.sql.")}


# What Spark itself assumes when nothing says how many cores there are (ALS's blocks, for one).
FALLBACK_PARALLELISM = 10


def server_conf(port: int, bind: str = "127.0.0.1", environ=os.environ) -> dict[str, str]:
    """What the warm Spark Connect server (recflow.spark_connect) starts with: the DEFAULTS every
    job gets, and what a spark-submit job is handed by its launcher instead (the master, the
    driver memory, the checkpoint folder), which a Connect client cannot set on a running server."""
    from recflow.config import Settings
    from recflow.resources import driver_memory

    master = environ.get("RECFLOW_SPARK_MASTER", "local[2]")
    return DEFAULTS | {
        "spark.master": master,
        # What a classic session reads off its SparkContext (cores()); a Connect client can read
        # only the configuration.
        "spark.default.parallelism": str(local_cores(master) or FALLBACK_PARALLELISM),
        "spark.driver.memory": driver_memory(environ),
        # SparkContext.setCheckpointDir is not reachable over Connect; ALS needs the folder.
        "spark.checkpoint.dir": Settings().checkpoint_dir,
        "spark.connect.grpc.binding.address": bind,
        "spark.connect.grpc.binding.port": str(port),
    }


def local_cores(master: str) -> int | None:
    """The task slots of a local master (local, local[4], local[*], local[4,2]); None otherwise."""
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master.strip())
    if not found:
        return None
    slots = found.group(1) or "1"
    return os.cpu_count() or 1 if slots == "*" else int(slots)


def is_connect(spark) -> bool:
    """Whether `spark` is a Spark Connect session (a thin client: no SparkContext, no JVM here)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def cores(spark) -> int:
    """The cores Spark runs tasks on: the SparkContext's defaultParallelism, or over Connect the
    server's spark.default.parallelism (server_conf sets it), else FALLBACK_PARALLELISM."""
    if not is_connect(spark):
        return max(int(spark.sparkContext.defaultParallelism), 1)
    return max(int(spark.conf.get("spark.default.parallelism", str(FALLBACK_PARALLELISM))), 1)


@dataclass(frozen=True)
class Shared:
    """A value handed to Spark tasks as it is (see share)."""

    value: Any


def share(spark, value):
    """`value` for the Python functions of a mapInPandas to read as `.value`: a broadcast on a
    classic session, sent once per executor; over Connect, which has no broadcast variables,
    the value itself, pickled with the function and sent with each task."""
    if is_connect(spark):
        return Shared(value)
    return spark.sparkContext.broadcast(value)


def get_spark(app_name: str, checkpoint_dir: str | None = None) -> SparkSession:
    from pyspark import SparkConf, SparkContext

    builder = SparkSession.builder.appName(app_name)
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # Under spark-submit the driver JVM is already up and holds what the launcher set
        # (--conf, the cluster's spark-defaults.conf). Connect to it before reading it: a
        # SparkConf() made before that is an empty Python dict, and every default below then
        # silently overrode the deployment's own settings (a cluster's shuffle partitions).
        # Connecting starts nothing; getOrCreate() would do the same a few lines down.
        SparkContext._ensure_initialized()
    # SparkConf() holds what the launcher set (spark-submit --conf, spark-defaults.conf); our
    # defaults only fill the gaps. Set on the builder because some (console progress) are
    # read only when the context starts.
    launcher_conf = SparkConf()
    for key, value in DEFAULTS.items():
        if not launcher_conf.contains(key):
            builder = builder.config(key, value)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Run as a plain `python` process (tests, notebooks): local mode. Under spark-submit
        # the launcher has set the gateway and the master, and a master here would override it.
        builder = builder.master(os.environ.get("RECFLOW_SPARK_MASTER", "local[2]"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("RECFLOW_SPARK_LOG_LEVEL", "WARN"))
    if checkpoint_dir:
        # Without a checkpoint directory ALS ignores checkpointInterval and long lineages
        # overflow the stack after ~20 iterations.
        spark.sparkContext.setCheckpointDir(checkpoint_dir)
    return spark
