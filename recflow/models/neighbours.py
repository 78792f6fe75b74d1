"""Item neighbourhood on baseline residuals (Koren 2008, "KNNBaseline"): for a (user, item)
pair, the user's residuals r - b on the items most similar to it, weighted by similarity.

Factor models capture broad taste, neighbourhoods capture "people who liked this liked that";
their errors are weakly correlated, so the rating model blends both. Similarities are shrunk
Pearson correlations of residuals computed with one self-join on users. That join grows with the
square of a user's ratings, so each user contributes at most `max_items_per_user` of them
(a seeded sample) and the join stays bounded on a cluster.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def item_similarities(
    residuals: DataFrame,
    shrinkage: float = 100.0,
    neighbours: int = 50,
    max_items_per_user: int = 500,
    seed: int = 42,
) -> DataFrame:
    """residuals(user_idx, item_idx, residual) -> (item_idx, other_idx, similarity), each item's
    `neighbours` most similar items."""
    capped = residuals.withColumn(
        "_n", F.row_number().over(Window.partitionBy("user_idx").orderBy(F.xxhash64("item_idx", F.lit(seed))))
    ).where(F.col("_n") <= max_items_per_user)
    a = capped.select("user_idx", F.col("item_idx").alias("i"), F.col("residual").alias("ri"))
    b = capped.select("user_idx", F.col("item_idx").alias("j"), F.col("residual").alias("rj"))
    pairs = (
        a.join(b, "user_idx")
        .where(F.col("i") < F.col("j"))
        .groupBy("i", "j")
        .agg(
            F.sum(F.col("ri") * F.col("rj")).alias("sxy"),
            F.sum(F.col("ri") * F.col("ri")).alias("sxx"),
            F.sum(F.col("rj") * F.col("rj")).alias("syy"),
            F.count("*").alias("support"),
        )
    )
    similarity = (
        F.col("sxy")
        / F.sqrt(F.col("sxx") * F.col("syy") + F.lit(1e-9))
        * (F.col("support") - 1)
        / (F.col("support") - 1 + F.lit(shrinkage))
    )
    one_way = pairs.select("i", "j", similarity.alias("similarity")).where(F.col("similarity") > 0)
    both_ways = one_way.unionByName(
        one_way.select(F.col("j").alias("i"), F.col("i").alias("j"), "similarity")
    )
    best = Window.partitionBy("i").orderBy(F.col("similarity").desc(), F.col("j"))
    return (
        both_ways.withColumn("_r", F.row_number().over(best))
        .where(F.col("_r") <= neighbours)
        .select(F.col("i").alias("item_idx"), F.col("j").alias("other_idx"), "similarity")
    )


def neighbour_estimates(
    pairs: DataFrame, residuals: DataFrame, similarities: DataFrame, k: int = 40
) -> DataFrame:
    """pairs(user_idx, item_idx) -> (user_idx, item_idx, knn): the similarity-weighted mean
    residual of the user's k rated items most similar to the item; 0 with no rated neighbour."""
    rated = residuals.select("user_idx", F.col("item_idx").alias("other_idx"), "residual")
    candidates = (
        pairs.select("user_idx", "item_idx")
        .distinct()
        .join(similarities, "item_idx")
        .join(rated, ["user_idx", "other_idx"])
    )
    nearest = Window.partitionBy("user_idx", "item_idx").orderBy(F.col("similarity").desc(), "other_idx")
    estimates = (
        candidates.withColumn("_r", F.row_number().over(nearest))
        .where(F.col("_r") <= k)
        .groupBy("user_idx", "item_idx")
        .agg((F.sum(F.col("similarity") * F.col("residual")) / F.sum("similarity")).alias("knn"))
    )
    return (
        pairs.select("user_idx", "item_idx")
        .distinct()
        .join(estimates, ["user_idx", "item_idx"], "left")
        .withColumn("knn", F.coalesce("knn", F.lit(0.0)))
    )
