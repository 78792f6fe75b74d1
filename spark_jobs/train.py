"""Train ALS with the run's settings: the ranker (and, for rating sources, the rating model) on
the seeded train split for the evaluate task, and the ranker on all preferences for the
published lists."""

from __future__ import annotations

from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.features import preferences
from recflow.jobs import run_job
from recflow.models.als import build_ranker, build_rating_model
from recflow.sources import SOURCES
from recflow.split import random_split

SPLIT_TABLES = ("train", "test")


def extract(spark, settings: Settings, ds: str):
    return spark.read.parquet(settings.lake_path("clean", "interactions", ds)).select(
        "user_idx", "item_idx", "weight", "ts"
    )


def transform(interactions, settings: Settings):
    explicit = SOURCES[settings.source].explicit
    prefs = preferences(
        interactions, explicit, settings.min_user_interactions, settings.min_item_interactions
    ).cache()
    train, test = random_split(prefs, settings.test_fraction, settings.seed)
    holdout_ranker = build_ranker(settings).fit(train)
    models = {"holdout_ranker": holdout_ranker, "full_ranker": build_ranker(settings).fit(prefs)}
    if explicit:
        # Star ratings only exist for rating sources; the explicit ranker already predicts them.
        models["holdout_rating"] = (
            holdout_ranker if settings.feedback == "explicit" else build_rating_model(settings).fit(train)
        )
    return prefs, {"train": train, "test": test}, models


def load(settings: Settings, ds: str, prefs, splits, models) -> None:
    prefs.write.mode("overwrite").parquet(settings.lake_path("features", "preferences", ds))
    for name, frame in splits.items():
        frame.write.mode("overwrite").parquet(settings.lake_path("splits", name, ds))
    for name, model in models.items():
        model.write().overwrite().save(settings.model_path(ds, name))


def train(spark, settings: Settings, ds: str) -> dict:
    interactions = extract(spark, settings, ds).cache()
    prefs, splits, models = transform(interactions, settings)
    load(settings, ds, prefs, splits, models)
    written = spark.read.parquet(settings.lake_path("features", "preferences", ds))
    counts = written.agg(
        F.count("*").alias("n_interactions"),
        F.countDistinct("user_idx").alias("n_users"),
        F.countDistinct("item_idx").alias("n_items"),
    ).first()
    return {
        "model_version": settings.model_version(ds),
        "model_params": settings.model_params(),
        "models": sorted(models),
        "counts": counts.asDict(),
        "clean_events": interactions.count(),
        "split_rows": {
            name: spark.read.parquet(settings.lake_path("splits", name, ds)).count() for name in SPLIT_TABLES
        },
    }


if __name__ == "__main__":
    run_job("train", train, __doc__)
