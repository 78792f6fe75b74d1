"""Global orders computed in parallel give what a window over the whole frame gives."""

from __future__ import annotations

from pyspark.sql import Window
from pyspark.sql import functions as F

from recflow.ordering import number_rows, percent_rank


def test_row_numbers_match_one_global_window_and_are_spread_over_tasks(spark):
    df = (
        spark.range(5_000)
        .select(F.sha2(F.col("id").cast("string"), 256).alias("key"), (F.col("id") % 7).alias("group"))
        .repartition(6)
    )
    order = [F.desc("group"), F.col("key")]
    got = number_rows(df, order, "n", start=10)
    expected = df.withColumn("n", F.row_number().over(Window.orderBy(*order)) - 1 + 10)
    assert sorted(map(tuple, got.select("key", "n").collect())) == sorted(
        map(tuple, expected.select("key", "n").collect())
    )
    # The numbering ran in several ranges, not in one task.
    ranges = got.select(F.spark_partition_id().alias("p")).distinct().count()
    assert ranges > 1


def test_row_numbers_of_an_empty_frame(spark):
    empty = spark.range(0).select(F.col("id").cast("string").alias("key"))
    assert number_rows(empty, [F.col("key")], "n").collect() == []


def test_percent_rank_matches_the_window_function_ties_included(spark):
    df = spark.range(2_000).select("id", (F.col("id") * 7919 % 37).alias("n_interactions")).repartition(4)
    got = percent_rank(df, "n_interactions", "share")
    expected = df.withColumn("share", F.percent_rank().over(Window.orderBy("n_interactions")))
    rows = {r["id"]: r["share"] for r in got.collect()}
    for r in expected.collect():
        assert abs(rows[r["id"]] - r["share"]) < 1e-12
    one = percent_rank(spark.range(1).select("id", F.lit(3).alias("n")), "n", "share")
    assert one.first()["share"] == 0.0
