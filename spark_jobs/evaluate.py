"""Evaluate the holdout ALS model beside the popularity baseline on the test split."""

from __future__ import annotations

from pyspark.ml.recommendation import ALSModel

from recflow.config import Settings
from recflow.facts import read_facts
from recflow.jobs import run_job
from recflow.metrics import item_mean_predictions, ranking_metrics, rating_metrics
from recflow.recommend import als_top_k, popularity_top_k


def extract(spark, settings: Settings, ds: str):
    train = spark.read.parquet(settings.lake_path("splits", "train", ds)).cache()
    test = spark.read.parquet(settings.lake_path("splits", "test", ds)).cache()
    trained = read_facts(settings.lake_path("facts", "train", ds))["models"]
    models = {
        name: ALSModel.load(settings.model_path(ds, name)) for name in trained if name.startswith("holdout")
    }
    return train, test, models


def transform(train, test, models, k: int) -> dict[str, dict[str, float]]:
    # Ranking is judged on users the model can score (present in train) that have test items.
    users = test.select("user_idx").distinct().join(train.select("user_idx").distinct(), "user_idx")
    scored_test = test.join(users, "user_idx")
    als = ranking_metrics(als_top_k(models["holdout_ranker"], users, train, k), scored_test, k)
    popularity = ranking_metrics(popularity_top_k(train, users, train, k), scored_test, k)
    if "holdout_rating" in models:  # rating sources: predicted stars against the item mean
        als.update(rating_metrics(models["holdout_rating"].transform(test)))
        popularity.update(rating_metrics(item_mean_predictions(train, test)))
    return {"als": als, "popularity": popularity}


def evaluate(spark, settings: Settings, ds: str) -> dict:
    train, test, models = extract(spark, settings, ds)
    metrics = transform(train, test, models, settings.top_k)
    return {"metrics": metrics, "model_version": settings.model_version(ds), "k": settings.top_k}


if __name__ == "__main__":
    run_job("evaluate", evaluate, __doc__)
