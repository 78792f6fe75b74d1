"""SparkSession for jobs and tests, with the settings the defaults get wrong on small machines."""

from __future__ import annotations

import os

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
