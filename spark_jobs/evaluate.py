"""Evaluate the run's model beside the baselines trained on the same split (popularity; for
rating sources, bias-only) and beside the champion, scored on this run's test split, then decide
whether the new model may replace the published one (recflow.gate). Then every model again per
user tier (cold, warm, heavy; recflow.tiers): ALS alone, content alone, their hybrid with the
tier's tuned weight, and popularity, all through the scorer that publishes the lists
(recflow.hybrid), on the same test users."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame

from recflow.config import SCORED_TIERS, Settings
from recflow.facts import is_directory, read_facts
from recflow.gate import decide
from recflow.hybrid import Policy
from recflow.idmap import mapping_path
from recflow.jobs import Job
from recflow.metrics import catalogue_metrics, ranking_metrics, ranking_metrics_by, rating_metrics, scorable
from recflow.models.als import BLEND_MARGIN, blended_top_k, ranker_candidates
from recflow.models.baselines import fit_biases, popularity
from recflow.models.rating import RatingModel
from recflow.recommend import CandidateGroups, candidate_groups, popularity_top_k
from recflow.registry import champion_before
from recflow.scoring import (
    item_table,
    load_catalogue,
    position_frame,
    scored_lists,
    tier_weights_column,
    user_rows,
)
from recflow.tiers import user_tiers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holdout:
    """What every model of the run is judged on, computed once: the train split (seen items,
    popularity), the test split (ratings for RMSE), and the test users a model can score with
    their test rows (ranking metrics), grouped by how many candidates each needs."""

    train: DataFrame
    test: DataFrame
    users: DataFrame
    scored_test: DataFrame
    popularity: DataFrame
    groups: CandidateGroups


def extract(spark, settings: Settings, ds: str) -> tuple[Holdout, dict]:
    train = spark.read.parquet(settings.lake_path("splits", "train", ds)).cache()
    test = spark.read.parquet(settings.lake_path("splits", "test", ds)).cache()
    users, scored_test = (frame.cache() for frame in scorable(train, test))
    groups = candidate_groups(users, train, settings.top_k, BLEND_MARGIN)
    holdout = Holdout(train, test, users, scored_test, popularity(train).cache(), groups)
    return holdout, read_facts(settings.lake_path("facts", "train", ds))


def list_metrics(top: DataFrame, holdout: Holdout, k: int) -> dict:
    top = top.cache()
    metrics = ranking_metrics(top, holdout.scored_test, k) | catalogue_metrics(top, holdout.train, k)
    top.unpersist()
    return metrics


def model_metrics(spark, model_dir: str, blend: float, rated: bool, holdout: Holdout, k: int) -> dict:
    """Everything measured of one trained model (the run's or the champion's)."""
    model = ALSModel.load(f"{model_dir}/holdout_ranker")
    candidates = ranker_candidates(model, holdout.groups)
    metrics = list_metrics(blended_top_k(candidates, holdout.popularity, holdout.train, blend, k), holdout, k)
    if rated:
        rating_model = RatingModel.load(spark, f"{model_dir}/holdout_rating")
        metrics |= rating_metrics(rating_model.predict(holdout.test))
    return metrics


def baseline_metrics(holdout: Holdout, k: int, scale: list[float] | None) -> dict[str, dict]:
    top = popularity_top_k(holdout.train, holdout.groups, holdout.train, k)
    baselines = {"popularity": list_metrics(top, holdout, k)}
    if scale is not None:
        biases = fit_biases(holdout.train, rating_min=scale[0], rating_max=scale[1])
        baselines["bias"] = rating_metrics(biases.predict(holdout.test))
    return baselines


def champion_metrics(spark, champion: dict | None, rated: bool, holdout: Holdout, k: int):
    """(the champion's metrics, on what basis): rescored on this run's split when its model
    files are still in the lake, else as recorded when it was promoted."""
    if champion is None:
        return None, "no champion"
    if not is_directory(f"{champion['model_path']}/holdout_ranker"):
        log.warning(
            "Champion %s has no model files left; comparing recorded metrics", champion["model_version"]
        )
        return champion["metrics"].get("als"), "champion's recorded metrics"
    scored = model_metrics(spark, champion["model_path"], champion["params"]["blend"], rated, holdout, k)
    return scored, "both on this run's test split"


# Variant name -> content weight for the scorer; None is each tier's tuned weight, -1 popularity.
TIER_VARIANTS = {"als": 0.0, "content": 1.0, "hybrid": None, "popularity": -1.0}


def tier_metrics(spark, settings: Settings, ds: str, holdout: Holdout, trained: dict) -> dict:
    """{variant: metrics over all test users} for content and hybrid, and {tier: {variant:
    metrics}} for every variant, the holdout ALS model and the content model fitted on train."""
    k = settings.top_k
    items = spark.read.parquet(settings.lake_path("clean", "items", ds))
    ids = spark.read.parquet(mapping_path(settings, "item", ds))
    content = spark.read.parquet(settings.lake_path("features", "item_content", ds))
    model = ALSModel.load(f"{trained['model_dir']}/holdout_ranker")
    catalogue = load_catalogue(item_table(ids, items), content, model, holdout.popularity)
    pos = position_frame(spark, catalogue)
    tiers = user_tiers(holdout.train, settings.cold_max_interactions, settings.heavy_min_interactions).cache()
    weights = trained["chosen"]["hybrid_weights"]
    users = (
        user_rows(holdout.train.join(holdout.users, "user_idx"), pos, model)
        .join(tiers, "user_idx")
        .withColumn("weight", tier_weights_column(weights))
    )
    policy = Policy(k=k, blend=float(trained["chosen"]["blend"]), reasons=False)
    top = scored_lists(users, catalogue, pos, policy, TIER_VARIANTS).cache()
    scored = ranking_metrics_by(top, holdout.scored_test, k, tiers)
    top.unpersist()
    tiers.unpersist()
    by_tier = {
        tier: {variant: scored[(variant, tier)] for variant in TIER_VARIANTS if (variant, tier) in scored}
        for tier in SCORED_TIERS
    }
    overall = {
        variant: {key: value for key, value in scored[(variant, "all")].items() if key != "n_users"}
        for variant in ("content", "hybrid")
        if (variant, "all") in scored
    }
    return {"overall": overall, "tiers": by_tier, "weights": weights}


def evaluate(spark, settings: Settings, ds: str) -> dict:
    holdout, trained = extract(spark, settings, ds)
    k = settings.top_k
    scale = trained["rating_scale"]
    rated = scale is not None  # rating sources train a rating model; event sources do not
    metrics = {
        "als": model_metrics(spark, trained["model_dir"], trained["chosen"]["blend"], rated, holdout, k),
        **baseline_metrics(holdout, k, scale),
    }
    champion = champion_before(settings, ds)
    scored, basis = champion_metrics(spark, champion, rated, holdout, k)
    if scored is not None:
        metrics["champion"] = scored
    decision = decide(metrics["als"], champion, scored, settings, basis)
    log.info("Champion/challenger: %s", decision["reason"])
    tiers = tier_metrics(spark, settings, ds, holdout, trained)
    metrics |= tiers["overall"]
    return {
        "metrics": metrics,
        "tier_metrics": tiers["tiers"],
        "hybrid_weights": tiers["weights"],
        "decision": decision,
        "model_version": settings.model_version(ds),
        "k": k,
    }


JOB = Job("evaluate", evaluate, __doc__)

if __name__ == "__main__":
    JOB.main()
