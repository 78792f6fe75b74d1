"""Spark MLlib ALS as RecFlow trains it."""

from __future__ import annotations

from pyspark.ml.recommendation import ALS

from recflow.config import Settings


def build_als(settings: Settings) -> ALS:
    return ALS(
        rank=settings.rank,
        maxIter=settings.max_iter,
        regParam=settings.reg_param,
        seed=settings.seed,
        userCol="user_idx",
        itemCol="item_idx",
        ratingCol="rating",
        # Users or items only in the test split get NaN predictions; drop them so the
        # evaluation metrics are not NaN.
        coldStartStrategy="drop",
        # Truncates the lineage every few iterations (needs the checkpoint directory that
        # recflow.spark.get_spark sets), else long runs die with StackOverflowError.
        checkpointInterval=5,
    )
