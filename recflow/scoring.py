"""Spark frames in, the hybrid scorer's inputs out (recflow.hybrid), and the content weights tuned.

Shared by the three jobs that score users: train (tuning the content weight per tier on the
validation split), evaluate (every model per tier on the test split) and recommend (the
published lists).
"""

from __future__ import annotations

import math

import pandas as pd
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recflow.config import SCORED_TIERS
from recflow.hybrid import Catalogue, Policy, build_catalogue, positions, recommend_all
from recflow.metrics import per_user_metrics
from recflow.similarity import collect_matrix
from recflow.tiers import user_tiers

# Content weights tried per tier on validation: 0 is ALS alone, 1 content alone. Fine near 0,
# where content helps most as a nudge: on MovieLens 100K (test split, all users) 0.02-0.05 lift
# Recall@10 from 0.2247 to 0.2261 and NDCG@10 from 0.4047 to 0.4058, while 0.1 already costs
# recall (0.2231) and 0.2 costs both.
WEIGHT_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def item_table(ids: DataFrame, items: DataFrame) -> DataFrame:
    """(item_id, item_idx or null, category or null): every item of the id map and of the
    catalogue. The category is what the diversity cap counts: the e-commerce category_code,
    else the first genre (a TV channel's genre; a film's first listed genre)."""
    first_genre = (
        F.element_at(F.split(F.col("genres"), r"\|"), 1) if "genres" in items.columns else F.lit(None)
    )
    code = F.col("category_code") if "category_code" in items.columns else F.lit(None)
    category = F.nullif(F.trim(F.coalesce(code, first_genre).cast("string")), F.lit(""))
    catalogue = items.select(F.col("item_id").cast("string").alias("item_id"), category.alias("category"))
    catalogue = catalogue.groupBy("item_id").agg(F.first("category", ignorenulls=True).alias("category"))
    mapped = ids.select(
        F.col("item_id").cast("string").alias("item_id"), F.col("item_idx").cast("int").alias("item_idx")
    )
    return mapped.join(catalogue, "item_id", "full_outer")


def load_catalogue(
    items: DataFrame,
    content: DataFrame,
    model: ALSModel | None,
    popularity: DataFrame,
    blocked_ids: set | None = None,
    available_ids: set | None = None,
    segments: DataFrame | None = None,
) -> Catalogue:
    """The catalogue matrices on the driver: items(item_id, item_idx, category), content(item_id,
    features), the model's item factors, popularity(item_idx, popularity), segments(segment,
    item_idx, score): the popularity within each user segment."""
    by_segment = segments.toPandas().groupby("segment") if segments is not None else []
    content_ids, matrix = collect_matrix(content, "item_id", "features")
    return build_catalogue(
        items.toPandas(),
        content_ids,
        matrix,
        model.itemFactors.toPandas() if model is not None else None,
        popularity.toPandas(),
        blocked_ids,
        available_ids,
        {name: frame for name, frame in by_segment},
    )


def position_frame(spark: SparkSession, catalogue: Catalogue) -> DataFrame:
    frame = positions(catalogue)
    frame["item_idx"] = frame["item_idx"].where(frame["item_idx"] >= 0, None)
    return spark.createDataFrame(frame, "pos int, item_id string, item_idx long").withColumn(
        "item_idx", F.col("item_idx").cast("int")
    )


def user_rows(history: DataFrame, pos: DataFrame, model: ALSModel | None) -> DataFrame:
    """history(user_idx, item_idx, rating) -> (user_idx, user_key, history, weights, factor): the user's
    items as catalogue positions, ordered, with their preference as the content profile's weight
    (never negative), and the user's ALS factor where the model has one."""
    joined = history.join(F.broadcast(pos.select("item_idx", "pos")), "item_idx")
    lists = joined.groupBy("user_idx").agg(
        F.array_sort(F.collect_list(F.struct("pos", "rating"))).alias("_h")
    )
    rows = lists.select(
        "user_idx",
        F.col("user_idx").cast("string").alias("user_key"),
        F.transform("_h", lambda h: h["pos"]).alias("history"),
        F.transform("_h", lambda h: F.greatest(h["rating"].cast("double"), F.lit(0.0))).alias("weights"),
    )
    if model is None:
        return rows.withColumn("factor", F.lit(None).cast("array<float>"))
    factors = model.userFactors.select(F.col("id").alias("user_idx"), F.col("features").alias("factor"))
    return rows.join(factors, "user_idx", "left")


def tier_weights_column(weights: dict[str, float]):
    """The content weight of each row's `tier`, from {tier: weight} (null for a tier without one)."""
    lookup = F.create_map(
        *[F.lit(x) for name, value in sorted(weights.items()) for x in (name, float(value))]
    )
    return lookup[F.col("tier")].cast("double")


def scored_lists(
    users: DataFrame, catalogue: Catalogue, pos: DataFrame, policy: Policy, variants: dict
) -> DataFrame:
    """The accepted lists as (variant, user_idx, item_idx, rank) for the metrics."""
    out = recommend_all(users, catalogue, policy, variants).where(F.col("removed_by").isNull())
    return out.join(F.broadcast(pos.select("pos", "item_idx")), "pos").select(
        "variant", F.col("user_key").cast("int").alias("user_idx"), "item_idx", "rank"
    )


def tune_weights(
    spark: SparkSession,
    fit_rows: DataFrame,
    valid: DataFrame,
    model: ALSModel,
    catalogue: Catalogue,
    k: int,
    blend: float,
    cold_max: int,
    heavy_min: int,
    metric: str,
) -> tuple[dict[str, float], list[dict]]:
    """The content weight per tier, chosen on validation (`model` and the catalogue fitted on
    fit_rows, train minus validation) by `choose_weight` on each user's `metric` at k ->
    ({tier: weight}, the grid's records). A tier without validation users takes the weight
    chosen over all users."""
    pos = position_frame(spark, catalogue)
    tiers = user_tiers(fit_rows, cold_max, heavy_min).cache()
    history = fit_rows.join(valid.select("user_idx").distinct(), "user_idx")
    users = (
        user_rows(history, pos, model)
        .join(tiers, "user_idx")
        .withColumn("weight", F.lit(None).cast("double"))
    )
    variants = {f"{w:g}": w for w in WEIGHT_GRID}
    top = scored_lists(users, catalogue, pos, Policy(k=k, blend=blend, reasons=False), variants)
    column = {"map": "ap"}.get(metric, metric)
    # Every validation user's figures for every weight, in one job; a few thousand rows. Sorted,
    # so that the means below add in the same order on every run (the records are published).
    per_user = (
        per_user_metrics(top, valid, k, keys=["variant"])
        .join(tiers, "user_idx")
        .select(
            F.col("variant").cast("double").alias("weight"),
            "user_idx",
            "tier",
            "ndcg",
            "recall",
            F.col(column).alias("value"),
        )
        .toPandas()
        .sort_values(["weight", "user_idx"], kind="stable", ignore_index=True)
    )
    tiers.unpersist()
    records = _grid_records(per_user, k)
    overall = choose_weight(per_user)
    overall = 0.0 if overall is None else overall
    chosen = {tier: choose_weight(per_user[per_user["tier"] == tier]) for tier in SCORED_TIERS}
    return {tier: (overall if weight is None else weight) for tier, weight in chosen.items()}, records


def _grid_records(per_user: pd.DataFrame, k: int) -> list[dict]:
    """The validation grid for the run's facts: per tier (and "all") and weight, the mean NDCG and
    recall at k and the users averaged over."""
    stacked = pd.concat([per_user, per_user.assign(tier="all")], ignore_index=True)
    means = stacked.groupby(["tier", "weight"], sort=True).agg(
        ndcg=("ndcg", "mean"), recall=("recall", "mean"), n_users=("user_idx", "size")
    )
    return [
        {"tier": tier, "weight": float(weight), f"ndcg@{k}": float(row.ndcg), f"recall@{k}": float(row.recall),
         "n_users": float(row.n_users)}
        for (tier, weight), row in means.iterrows()
    ]  # fmt: skip


def choose_weight(values: pd.DataFrame) -> float | None:
    """The smallest content weight whose validation metric is within one standard error of the
    best weight's (values: weight, user_idx, value; None without users).

    The one-standard-error rule (Breiman et al.; Hastie, Tibshirani, Friedman 7.10) on paired
    per-user differences: validation models are fitted on less data than the published ones, so
    a weight that wins on validation by less than its noise tends to lose on test (measured on
    the e-commerce sample: 0.3 beat ALS by 0.017 NDCG@10 on 189 validation users and lost 0.026
    on test). Content then has to earn its place; until it does, the tier is served by ALS."""
    if values.empty:
        return None
    wide = values.pivot_table(index="user_idx", columns="weight", values="value", aggfunc="first").fillna(0.0)
    weights = sorted(wide.columns)
    means = wide[weights].mean()
    best = max(weights, key=lambda w: (means[w], -w))  # the smaller weight wins a tie
    n = len(wide)
    for weight in weights:
        gap = wide[best] - wide[weight]
        error = float(gap.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
        if float(gap.mean()) <= error:
            return float(weight)
    return float(best)
