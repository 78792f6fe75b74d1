"""Top-K recommendations per user from the ranker fitted on all preferences, in the source's own
ids. Always computed; the publish task swaps them in only if the gate promoted the model."""

from __future__ import annotations

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import Column
from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.facts import read_facts
from recflow.idmap import mapping_path
from recflow.jobs import run_job
from recflow.models.als import blended_top_k, ranker_candidates
from recflow.models.baselines import popularity


def extract(spark, settings: Settings, ds: str):
    # Every pair the user touched counts as seen, including pairs that the minimum-support
    # filter or a removed cart kept out of the preferences.
    seen = spark.read.parquet(settings.lake_path("clean", "interactions", ds)).select("user_idx", "item_idx")
    # Read twice (the users, the popularity), so cached.
    prefs = spark.read.parquet(settings.lake_path("features", "preferences", ds)).cache()
    ids = {kind: spark.read.parquet(mapping_path(settings, kind, ds)) for kind in ("user", "item")}
    blend = read_facts(settings.lake_path("facts", "train", ds))["chosen"]["blend"]
    model = ALSModel.load(settings.model_path(ds, "full_ranker"))
    return seen.distinct().cache(), prefs, ids, model, blend


# Who "people" are in a source, and what they did with an item: the words of the reasons.
PEOPLE = {"movielens": ("people", "rated it"), "ecommerce": ("shoppers", "viewed or bought it"),
          "tv": ("households", "watched it")}  # fmt: skip


def reason(source: str) -> Column:
    """Why an item is on the list, from the part of its score that dominates: the user's taste
    (ALS) or the item's popularity (the blend), e.g. "popular: 583 people rated it"."""
    people, did = PEOPLE[source]
    popular = F.format_string(f"popular: %,d {people} {did}", F.col("n_users"))
    taste = F.lit(f"{people} with tastes like yours {did}")
    return F.when(F.col("popularity_score") > F.col("als_score"), popular).otherwise(taste)


def transform(seen, prefs, ids, model, blend: float, k: int, source: str):
    """Top k per user in the source's own ids (mapped back through the persisted id map), with
    the model that chose each item (`source`) and why (`reason`)."""
    users = prefs.select("user_idx").distinct()
    top = blended_top_k(ranker_candidates(model, users, seen, k), popularity(prefs), seen, blend, k)
    reach = prefs.groupBy("item_idx").agg(F.count("*").alias("n_users"))  # one row per user and item
    user_ids = ids["user"].select(F.col("user_idx").cast("int").alias("user_idx"), "user_id")
    item_ids = ids["item"].select(F.col("item_idx").cast("int").alias("item_idx"), "item_id")
    return (
        top.join(reach, "item_idx", "left")
        .join(user_ids, "user_idx")
        .join(item_ids, "item_idx")
        .select(
            "user_id",
            "item_id",
            F.col("rank").cast("int").alias("rank"),
            F.col("score").cast("double").alias("score"),
            F.lit("als").alias("source"),
            reason(source).alias("reason"),
        )
    )


def recommend(spark, settings: Settings, ds: str) -> dict:
    seen, prefs, ids, model, blend = extract(spark, settings, ds)
    target = settings.lake_path("recs", "recommendations", ds)
    transform(seen, prefs, ids, model, blend, settings.top_k, settings.source).repartition(1).write.mode(
        "overwrite"
    ).parquet(target)
    # One pass over what was written, not one per figure.
    per_user = spark.read.parquet(target).groupBy("user_id").count()
    totals = per_user.agg(
        F.coalesce(F.sum("count"), F.lit(0)).alias("rows"),
        F.count("*").alias("users"),
        F.count_if(F.col("count") < settings.top_k).alias("users_short_of_k"),
    ).first()
    return totals.asDict() | {"model_version": settings.model_version(ds)}


if __name__ == "__main__":
    run_job("recommend", recommend, __doc__)
