"""Train the run's models: search the hyperparameters on a validation split carved out of train,
then fit the chosen ranker (and, for rating sources, the rating model) on the train split for
the evaluate task and the ranker on all preferences for the published lists."""

from __future__ import annotations

from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.features import preferences
from recflow.ingest import rating_scale
from recflow.jobs import run_job
from recflow.models.als import fit_ranker
from recflow.models.rating import RatingModel, fit_rating_model
from recflow.sources import SOURCES
from recflow.split import split
from recflow.tuning import tune_ranker, tune_rating

SPLIT_TABLES = ("train", "test")


def extract(spark, settings: Settings, ds: str):
    return spark.read.parquet(settings.lake_path("clean", "interactions", ds)).select(
        "user_idx", "item_idx", "weight", "ts"
    )


def transform(interactions, settings: Settings, scale: tuple[float, float] | None):
    """-> (preferences, {train, test}, {name: model}, {chosen settings}, {search records}).

    `scale` is the rating scale of a rating source (None for event sources, which have no
    star ratings to predict)."""
    explicit = SOURCES[settings.source].explicit
    prefs = preferences(
        interactions, explicit, settings.min_user_interactions, settings.min_item_interactions
    ).cache()
    train, test = (frame.cache() for frame in split(prefs, settings))
    implicit = settings.feedback == "implicit"
    ranker, ranker_search = tune_ranker(train, settings, implicit)
    models = {
        "holdout_ranker": fit_ranker(train, ranker, settings.seed, implicit),
        "full_ranker": fit_ranker(prefs, ranker, settings.seed, implicit),
    }
    chosen, search = dict(ranker), {"ranker": ranker_search}
    if scale is not None:
        rating, rating_search = tune_rating(train, settings, *scale)
        models["holdout_rating"] = fit_rating_model(train, rating, settings.seed, *scale)
        chosen |= rating
        search["rating"] = rating_search
    return prefs, {"train": train, "test": test}, models, chosen, search


def load(settings: Settings, ds: str, prefs, splits, models) -> None:
    prefs.write.mode("overwrite").parquet(settings.lake_path("features", "preferences", ds))
    for name, frame in splits.items():
        frame.write.mode("overwrite").parquet(settings.lake_path("splits", name, ds))
    for name, model in models.items():
        path = settings.model_path(ds, name)
        if isinstance(model, RatingModel):  # several frames and its blend weights
            model.save(path)
        else:
            model.write().overwrite().save(path)


def train(spark, settings: Settings, ds: str) -> dict:
    interactions = extract(spark, settings, ds).cache()
    scale = rating_scale(settings, ds)
    prefs, splits, models, chosen, search = transform(interactions, settings, scale)
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
        "chosen": chosen,
        "tuning": search,
        "models": sorted(models),
        "model_dir": settings.model_path(ds, "").rstrip("/"),
        "rating_scale": scale,
        "counts": counts.asDict(),
        "clean_events": interactions.count(),
        "split_rows": {
            name: spark.read.parquet(settings.lake_path("splits", name, ds)).count() for name in SPLIT_TABLES
        },
    }


if __name__ == "__main__":
    run_job("train", train, __doc__)
