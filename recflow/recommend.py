"""Top-K lists that never contain an item the user has already rated."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def rank_unseen(candidates: DataFrame, seen: DataFrame, k: int) -> DataFrame:
    """candidates(user_idx, item_idx, score) minus seen(user_idx, item_idx) -> top k per user
    as (user_idx, item_idx, score, rank), rank 1 the best; ties broken by item for stable output."""
    best_first = Window.partitionBy("user_idx").orderBy(F.col("score").desc(), F.col("item_idx"))
    return (
        candidates.join(seen.select("user_idx", "item_idx"), ["user_idx", "item_idx"], "left_anti")
        .withColumn("rank", F.row_number().over(best_first))
        .where(F.col("rank") <= k)
    )


def candidate_count(seen: DataFrame, k: int, n_items: int) -> int:
    """How many top items to score per user so that k remain after removing the seen ones."""
    most_seen = seen.groupBy("user_idx").count().agg(F.max("count")).first()[0] or 0
    return min(k + most_seen, n_items)


def popularity_top_k(train: DataFrame, users: DataFrame, seen: DataFrame, k: int) -> DataFrame:
    """The baseline: the most rated items the user has not seen, scored by rating count."""
    n_items = train.select("item_idx").distinct().count()
    n = candidate_count(seen, k, n_items)
    popular = train.groupBy("item_idx").agg(F.count("*").cast("double").alias("score"))
    top = popular.orderBy(F.col("score").desc(), F.col("item_idx")).limit(n)
    candidates = users.select("user_idx").crossJoin(F.broadcast(top))
    return rank_unseen(candidates, seen, k)
