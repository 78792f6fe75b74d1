"""Train ALS twice with the run's settings: on the seeded train split (for the evaluate task)
and on all clean interactions (for the recommendations that get published)."""

from __future__ import annotations

from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.jobs import run_job
from recflow.models.als import build_als
from recflow.split import random_split

SPLIT_TABLES = ("train", "test")


def extract(spark, settings: Settings, ds: str):
    return spark.read.parquet(settings.lake_path("clean", "interactions", ds)).select(
        "user_idx", "item_idx", "rating", "ts"
    )


def transform(interactions, settings: Settings):
    train, test = random_split(interactions, settings.test_fraction, settings.seed)
    als = build_als(settings)
    return {"train": train, "test": test}, als.fit(train), als.fit(interactions)


def load(settings: Settings, ds: str, splits, holdout_model, full_model) -> None:
    for name, frame in splits.items():
        frame.write.mode("overwrite").parquet(settings.lake_path("splits", name, ds))
    holdout_model.write().overwrite().save(settings.model_path(ds, "holdout"))
    full_model.write().overwrite().save(settings.model_path(ds, "full"))


def train(spark, settings: Settings, ds: str) -> dict:
    interactions = extract(spark, settings, ds).cache()
    splits, holdout_model, full_model = transform(interactions, settings)
    load(settings, ds, splits, holdout_model, full_model)
    counts = interactions.agg(
        F.count("*").alias("n_interactions"),
        F.countDistinct("user_idx").alias("n_users"),
        F.countDistinct("item_idx").alias("n_items"),
    ).first()
    return {
        "model_version": settings.model_version(ds),
        "model_params": settings.model_params(),
        "counts": counts.asDict(),
        "split_rows": {name: spark.read.parquet(settings.lake_path("splits", name, ds)).count() for name in SPLIT_TABLES},
    }


if __name__ == "__main__":
    run_job("train", train, __doc__)
