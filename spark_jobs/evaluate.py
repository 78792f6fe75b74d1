"""Evaluate the run's model beside the baselines trained on the same split (popularity; for
rating sources, bias-only) and beside the champion, scored on this run's test split, then decide
whether the new model may replace the published one (recflow.gate)."""

from __future__ import annotations

import logging

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame

from recflow.config import Settings
from recflow.facts import read_facts
from recflow.gate import decide
from recflow.jobs import run_job
from recflow.metrics import catalogue_metrics, ranking_metrics, rating_metrics
from recflow.models.als import blended_top_k, ranker_candidates
from recflow.models.baselines import fit_biases, popularity
from recflow.models.rating import RatingModel
from recflow.recommend import popularity_top_k
from recflow.registry import champion_before

log = logging.getLogger(__name__)


def extract(spark, settings: Settings, ds: str):
    train = spark.read.parquet(settings.lake_path("splits", "train", ds)).cache()
    test = spark.read.parquet(settings.lake_path("splits", "test", ds)).cache()
    return train, test, read_facts(settings.lake_path("facts", "train", ds))


def ranker_metrics(model: ALSModel, blend: float, train: DataFrame, test: DataFrame, k: int) -> dict:
    """The blended ranker's lists for the test users it can score, against their test items."""
    users = test.select("user_idx").distinct().join(train.select("user_idx").distinct(), "user_idx")
    top = blended_top_k(ranker_candidates(model, users, train, k), popularity(train), train, blend, k).cache()
    metrics = ranking_metrics(top, test.join(users, "user_idx"), k) | catalogue_metrics(top, train, k)
    top.unpersist()
    return metrics


def model_metrics(spark, model_dir: str, blend: float, rated: bool, train, test, k: int) -> dict:
    """Everything measured of one trained model (the run's or the champion's)."""
    metrics = ranker_metrics(ALSModel.load(f"{model_dir}/holdout_ranker"), blend, train, test, k)
    if rated:
        metrics |= rating_metrics(RatingModel.load(spark, f"{model_dir}/holdout_rating").predict(test))
    return metrics


def baseline_metrics(train, test, k: int, scale: list[float] | None) -> dict[str, dict]:
    users = test.select("user_idx").distinct().join(train.select("user_idx").distinct(), "user_idx")
    top = popularity_top_k(train, users, train, k).cache()
    baselines = {
        "popularity": ranking_metrics(top, test.join(users, "user_idx"), k) | catalogue_metrics(top, train, k)
    }
    top.unpersist()
    if scale is not None:
        biases = fit_biases(train, rating_min=scale[0], rating_max=scale[1])
        baselines["bias"] = rating_metrics(biases.predict(test))
    return baselines


def champion_metrics(spark, champion: dict | None, rated: bool, train, test, k: int):
    """(the champion's metrics, on what basis): rescored on this run's split when its model
    files are still in the lake, else as recorded when it was promoted."""
    if champion is None:
        return None, "no champion"
    try:
        scored = model_metrics(
            spark, champion["model_path"], champion["params"]["blend"], rated, train, test, k
        )
        return scored, "both on this run's test split"
    except Exception as error:  # noqa: BLE001 - any unreadable model falls back to the record
        log.warning("Champion %s could not be rescored (%s); comparing recorded metrics",
                    champion["model_version"], str(error).splitlines()[0])  # fmt: skip
        return champion["metrics"].get("als"), "champion's recorded metrics"


def evaluate(spark, settings: Settings, ds: str) -> dict:
    train, test, trained = extract(spark, settings, ds)
    k = settings.top_k
    scale = trained["rating_scale"]
    rated = "holdout_rating" in trained["models"]
    metrics = {
        "als": model_metrics(spark, trained["model_dir"], trained["chosen"]["blend"], rated, train, test, k),
        **baseline_metrics(train, test, k, scale),
    }
    champion = champion_before(settings, ds)
    scored, basis = champion_metrics(spark, champion, rated, train, test, k)
    if scored is not None:
        metrics["champion"] = scored
    decision = decide(metrics["als"], champion, scored, settings, basis)
    log.info("Champion/challenger: %s", decision["reason"])
    return {"metrics": metrics, "decision": decision, "model_version": settings.model_version(ds), "k": k}


if __name__ == "__main__":
    run_job("evaluate", evaluate, __doc__)
