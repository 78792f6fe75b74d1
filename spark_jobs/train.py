"""Train the run's models: search the hyperparameters on a validation split carved out of train,
then fit the chosen ranker (and, for rating sources, the rating model) on the train split for
the evaluate task and the ranker on all preferences for the published lists. Beside ALS: the
content model's item vectors (recflow.content, from the catalogue) and the content weight of
the ALS + content hybrid per user tier, tuned on the same validation split."""

from __future__ import annotations

import time

from pyspark.sql import functions as F

from recflow.config import SCORED_TIERS, Settings
from recflow.content import item_features
from recflow.features import preferences
from recflow.idmap import mapping_path
from recflow.ingest import rating_scale
from recflow.jobs import Job
from recflow.models.als import fit_ranker
from recflow.models.baselines import popularity
from recflow.models.rating import RatingModel, fit_rating_model
from recflow.scoring import item_table, load_catalogue, tune_weights
from recflow.sources import SOURCES
from recflow.split import split
from recflow.tiers import simulate_cold_users
from recflow.tuning import search_sample, tune_ranker, tune_rating, validation_split

SPLIT_TABLES = ("train", "test")


def extract(spark, settings: Settings, ds: str):
    return spark.read.parquet(settings.lake_path("clean", "interactions", ds)).select(
        "user_idx", "item_idx", "weight", "ts"
    )


def extract_catalogue(spark, settings: Settings, ds: str):
    """(clean items, the item id map): what the content model and the hybrid score."""
    items = spark.read.parquet(settings.lake_path("clean", "items", ds))
    return items, spark.read.parquet(mapping_path(settings, "item", ds))


def tune_hybrid(spark, train, settings: Settings, ranker: dict, items, content, implicit: bool):
    """({tier: content weight}, search record): fixed by the hybrid_weight Param, else chosen per
    tier on the validation split of the search's user sample (recflow.scoring.tune_weights: the
    one-standard-error rule), with ALS refitted on that sample's train minus validation. The record
    has the shape of the ALS search's (metric, trials, seconds): one trial per tier and weight."""
    metric = settings.primary_metric if settings.primary_metric != "rmse" else "ndcg"
    if settings.hybrid_weight is not None:
        fixed = {tier: settings.hybrid_weight for tier in SCORED_TIERS}
        return fixed, {"metric": None, "trials": [], "seconds": 0.0, "weights": fixed}
    started = time.monotonic()
    fit_rows, valid = validation_split(search_sample(train, settings), settings)
    # The cold tier's weight needs cold users with validation rows. Few of the users cut for
    # evaluation have any (a 10 % carve of 5 rows is usually empty), so another seeded share of
    # users is cut here, in the fit set only: they keep their validation rows and look cold to
    # the validation models, as evaluation's cold users look to the holdout models.
    fit_rows = simulate_cold_users(
        fit_rows, settings.cold_user_fraction, settings.cold_max_interactions, settings.seed + 2
    ).cache()
    model = fit_ranker(fit_rows, ranker, settings.seed, implicit)
    catalogue = load_catalogue(items, content, model, popularity(fit_rows))
    weights, records = tune_weights(
        spark, fit_rows, valid, model, catalogue, settings.top_k, float(ranker["blend"]),
        settings.cold_max_interactions, settings.heavy_min_interactions, metric,
    )  # fmt: skip
    fit_rows.unpersist()
    seconds = round(time.monotonic() - started, 3)
    return weights, {
        "metric": f"{metric}@{settings.top_k}",
        "trials": records,
        "seconds": seconds,
        "weights": weights,
    }


def transform(interactions, settings: Settings, scale: tuple[float, float] | None):
    """-> (preferences, {train, test}, {name: model}, {chosen settings}, {search records}).

    `scale` is the rating scale of a rating source (None for event sources, which have no
    star ratings to predict)."""
    explicit = SOURCES[settings.source].explicit
    prefs = preferences(
        interactions, explicit, settings.min_user_interactions, settings.min_item_interactions
    ).cache()
    train, test = split(prefs, settings)
    # Evaluation's cold tier: a seeded share of users keeps only its first few training items.
    train = simulate_cold_users(
        train, settings.cold_user_fraction, settings.cold_max_interactions, settings.seed
    ).cache()
    test = test.cache()
    implicit = settings.feedback == "implicit"
    # Drawn once for both searches (the draw counts the users); no search, no draw.
    searched = search_sample(train, settings) if settings.tuning_trials else train
    ranker, ranker_search = tune_ranker(searched, settings, implicit)
    models = {
        "holdout_ranker": fit_ranker(train, ranker, settings.seed, implicit),
        "full_ranker": fit_ranker(prefs, ranker, settings.seed, implicit),
    }
    chosen, search = dict(ranker), {"ranker": ranker_search}
    if scale is not None:
        rating, rating_search = tune_rating(searched, settings, *scale)
        models["holdout_rating"] = fit_rating_model(train, rating, settings.seed, *scale)
        chosen |= rating
        search["rating"] = rating_search
    return prefs, {"train": train, "test": test}, models, chosen, search


def load(settings: Settings, ds: str, prefs, splits, models, content=None) -> None:
    if content is not None:
        content.write.mode("overwrite").parquet(settings.lake_path("features", "item_content", ds))
    prefs.write.mode("overwrite").parquet(settings.lake_path("features", "preferences", ds))
    for name, frame in splits.items():
        frame.write.mode("overwrite").parquet(settings.lake_path("splits", name, ds))
    for name, model in models.items():
        path = settings.model_path(ds, name)
        if isinstance(model, RatingModel):  # several frames and its blend weights
            model.save(path)
        else:
            model.write().overwrite().save(path)


def split_rows(spark, settings: Settings, ds: str, n_preferences: int) -> dict[str, int]:
    """Rows per split, and the training rows cut from the simulated cold users, so that
    train + test + cold_start_cut = preferences."""
    rows = {name: spark.read.parquet(settings.lake_path("splits", name, ds)).count() for name in SPLIT_TABLES}
    return rows | {"cold_start_cut": n_preferences - sum(rows.values())}


def train(spark, settings: Settings, ds: str) -> dict:
    interactions = extract(spark, settings, ds).cache()
    scale = rating_scale(settings, ds)
    prefs, splits, models, chosen, search = transform(interactions, settings, scale)
    items, ids = extract_catalogue(spark, settings, ds)
    load(settings, ds, prefs, splits, models, item_features(items))
    content = spark.read.parquet(settings.lake_path("features", "item_content", ds))
    implicit = settings.feedback == "implicit"
    train_rows = spark.read.parquet(settings.lake_path("splits", "train", ds))
    chosen["hybrid_weights"], search["hybrid"] = tune_hybrid(
        spark, train_rows, settings, chosen, item_table(ids, items), content, implicit
    )
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
        "model_dir": settings.model_dir(ds),
        "rating_scale": scale,
        "counts": counts.asDict(),
        "clean_events": interactions.count(),
        "split_rows": split_rows(spark, settings, ds, counts["n_interactions"]),
    }


JOB = Job("train", train, __doc__)

if __name__ == "__main__":
    JOB.main()
