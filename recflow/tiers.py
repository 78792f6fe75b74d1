"""User tiers: how much history a user has decides which model can answer for them.

- new: no interactions at all: segment popularity (recflow.hybrid), the model has nothing to go on;
- cold: at most `cold_max_interactions` items: too few for ALS to place the user well, so the
  content model (what the items are) carries most of the hybrid;
- heavy: at least `heavy_min_interactions` items;
- warm: everyone in between.

Evaluation needs cold users to measure the cold tier, and MovieLens has none (every rater rated at
least 20 films), so `simulate_cold_users` cuts a seeded share of users down to their first few
interactions in the training data: the standard simulated cold-start protocol.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

_BUCKETS = 1_000_000


def tier(n_items: Column, cold_max: int, heavy_min: int) -> Column:
    """The tier of a user with `n_items` distinct items of history."""
    return (
        F.when(F.coalesce(n_items, F.lit(0)) == 0, "new")
        .when(n_items <= cold_max, "cold")
        .when(n_items >= heavy_min, "heavy")
        .otherwise("warm")
    )


def user_tiers(history: DataFrame, cold_max: int, heavy_min: int) -> DataFrame:
    """history(user_idx, item_idx, ...) -> (user_idx, n_items, tier), one row per user."""
    counts = history.groupBy("user_idx").agg(F.countDistinct("item_idx").alias("n_items"))
    return counts.withColumn("tier", tier(F.col("n_items"), cold_max, heavy_min))


def simulate_cold_users(train: DataFrame, fraction: float, keep: int, seed: int) -> DataFrame:
    """train(user_idx, item_idx, ts, ...) with a seeded `fraction` of the users that have more
    than `keep` rows cut down to their earliest `keep` rows (by ts, then item_idx; rows without
    ts first). The cut rows leave train and go nowhere (they are not test rows), so those users
    look to the models exactly like newcomers with `keep` interactions, while their test rows
    still say what they went on to like. Users are chosen by a hash of (user_idx, seed), so the
    same users are cut in every run and for every model, the champion's re-scoring included."""
    if fraction <= 0:
        return train
    chosen = F.pmod(F.xxhash64("user_idx", F.lit(seed)), F.lit(_BUCKETS)) < F.lit(int(fraction * _BUCKETS))
    by_user = Window.partitionBy("user_idx")
    earliest = by_user.orderBy(F.col("ts").asc_nulls_first(), F.col("item_idx"))
    ranked = train.select(
        "*",
        F.row_number().over(earliest).alias("__pos"),
        F.count(F.lit(1)).over(by_user).alias("__n"),
    )
    cut = chosen & (F.col("__n") > keep) & (F.col("__pos") > keep)
    return ranked.where(~cut).select(*train.columns)
