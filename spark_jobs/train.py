"""Train ALS with the run's settings: the ranker and the rating model on the seeded train split
(for the evaluate task) and the ranker on all clean interactions (for the published lists)."""

from __future__ import annotations

from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.jobs import run_job
from recflow.models.als import build_ranker, build_rating_model
from recflow.split import random_split

SPLIT_TABLES = ("train", "test")


def extract(spark, settings: Settings, ds: str):
    return spark.read.parquet(settings.lake_path("clean", "interactions", ds)).select(
        "user_idx", "item_idx", "rating", "ts"
    )


def transform(interactions, settings: Settings):
    train, test = random_split(interactions, settings.test_fraction, settings.seed)
    holdout_ranker = build_ranker(settings).fit(train)
    # The explicit ranker already predicts ratings: no second fit.
    holdout_rating = (
        holdout_ranker if settings.feedback == "explicit" else build_rating_model(settings).fit(train)
    )
    models = {
        "holdout_ranker": holdout_ranker,
        "holdout_rating": holdout_rating,
        "full_ranker": build_ranker(settings).fit(interactions),
    }
    return {"train": train, "test": test}, models


def load(settings: Settings, ds: str, splits, models) -> None:
    for name, frame in splits.items():
        frame.write.mode("overwrite").parquet(settings.lake_path("splits", name, ds))
    for name, model in models.items():
        model.write().overwrite().save(settings.model_path(ds, name))


def train(spark, settings: Settings, ds: str) -> dict:
    interactions = extract(spark, settings, ds).cache()
    splits, models = transform(interactions, settings)
    load(settings, ds, splits, models)
    counts = interactions.agg(
        F.count("*").alias("n_interactions"),
        F.countDistinct("user_idx").alias("n_users"),
        F.countDistinct("item_idx").alias("n_items"),
    ).first()
    return {
        "model_version": settings.model_version(ds),
        "model_params": settings.model_params(),
        "counts": counts.asDict(),
        "split_rows": {
            name: spark.read.parquet(settings.lake_path("splits", name, ds)).count() for name in SPLIT_TABLES
        },
    }


if __name__ == "__main__":
    run_job("train", train, __doc__)
