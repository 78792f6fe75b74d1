"""Spark MLlib ALS as RecFlow trains it: a ranker for the top-K lists and a rating model for
predicted stars. With feedback="explicit" the two are the same model."""

from __future__ import annotations

from pyspark.ml.recommendation import ALS

from recflow.config import Settings


def _als(**settings) -> ALS:
    return ALS(
        userCol="user_idx",
        itemCol="item_idx",
        ratingCol="rating",
        # Users or items only in the test split get NaN predictions; drop them so the
        # evaluation metrics are not NaN.
        coldStartStrategy="drop",
        # Truncates the lineage every few iterations (needs the checkpoint directory that
        # recflow.spark.get_spark sets), else long runs die with StackOverflowError.
        checkpointInterval=5,
        **settings,
    )


def build_ranker(settings: Settings) -> ALS:
    return _als(
        rank=settings.rank,
        maxIter=settings.max_iter,
        regParam=settings.reg_param,
        alpha=settings.alpha,
        implicitPrefs=settings.feedback == "implicit",
        seed=settings.seed,
    )


def build_rating_model(settings: Settings) -> ALS:
    if settings.feedback == "explicit":
        return build_ranker(settings)
    return _als(
        rank=settings.rating_rank,
        maxIter=settings.max_iter,
        regParam=settings.rating_reg_param,
        seed=settings.seed,
    )
