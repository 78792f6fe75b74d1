"""Top-K recommendations for every user in the data, in the source's own ids, and each item's
most similar items. Always computed; the publish task swaps them in only if the gate promoted
the model.

Each user is served by their tier (recflow.tiers): no history -> the popularity of their
demographic segment, else overall; cold, warm and heavy -> the ALS + content hybrid with the
tier's content weight tuned in train (recflow.hybrid). The business rules run after scoring and
every removal is counted per rule (facts "rules"); every row says which model chose it
(`source`) and why (`reason`): "because you rated Heat (1995)", "popular with people aged 25-34".
"""

from __future__ import annotations

import logging

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from recflow import analytics
from recflow.config import BUSINESS_RULES, USER_TIERS, Settings
from recflow.facts import is_directory, read_facts
from recflow.features import preferences
from recflow.hybrid import Policy, recommend_all
from recflow.idmap import mapping_path
from recflow.jobs import Job
from recflow.models.baselines import popularity
from recflow.scoring import item_table, load_catalogue, position_frame, tier_weights_column, user_rows
from recflow.similarity import top_k_cosine
from recflow.sources import SOURCES
from recflow.tiers import tier

log = logging.getLogger(__name__)

# Who "people" are in a source, and what they did with an item: the words of the reasons.
PEOPLE = {"movielens": ("people", "rated it"), "ecommerce": ("shoppers", "viewed or bought it"),
          "tv": ("households", "watched it")}  # fmt: skip
# "because you <verb> <item>"
VERB = {"movielens": "rated", "ecommerce": "viewed", "tv": "watched"}
REASON_LENGTH = 255  # recommendations.reason is VARCHAR(255)


def extract(spark, settings: Settings, ds: str) -> dict:
    def lake(stage: str, table: str) -> DataFrame | None:
        path = settings.lake_path(stage, table, ds)
        return spark.read.parquet(path) if is_directory(path) else None

    blocklist = lake("rules", "blocklist")
    if blocklist is None:
        log.warning(
            "No blocklist exported for %s (the DAG's export_blocklist task writes it): none applied", ds
        )
    return {
        "interactions": lake("clean", "interactions"),
        "items": lake("clean", "items"),
        "users": lake("clean", "users"),
        "prefs": lake("features", "preferences"),
        "content": lake("features", "item_content"),
        "blocklist": blocklist,
        "user_ids": spark.read.parquet(mapping_path(settings, "user", ds)),
        "item_ids": spark.read.parquet(mapping_path(settings, "item", ds)),
        "model": ALSModel.load(settings.model_path(ds, "full_ranker")),
        "trained": read_facts(settings.lake_path("facts", "train", ds)),
    }


def history(interactions: DataFrame, explicit: bool) -> DataFrame:
    """Every (user, item) the user touched (user_idx, item_idx, rating): its preference where
    positive, else 0, so the seen rule removes a removed-from-cart product too while the content
    profile ignores it."""
    positive = preferences(interactions, explicit).select("user_idx", "item_idx", "rating")
    touched = interactions.select("user_idx", "item_idx").distinct()
    return touched.join(positive, ["user_idx", "item_idx"], "left").select(
        "user_idx", "item_idx", F.coalesce("rating", F.lit(0.0)).cast("double").alias("rating")
    )


def segments(
    touched: DataFrame, user_ids: DataFrame, users: DataFrame | None
) -> tuple[DataFrame | None, DataFrame | None]:
    """(user_id -> segment, (segment, item_idx, score)): MovieLens' age groups, the popularity
    within each by distinct users, scaled to the segment's most popular item."""
    if users is None or "age" not in users.columns:
        return None, None
    members = users.select(
        F.col("user_id").cast("string").alias("user_id"),
        F.concat(F.lit("people aged "), analytics.age_group(F.col("age").cast("int"))).alias("segment"),
    ).where(F.col("segment").isNotNull())
    liked = touched.where(F.col("rating") > 0).join(
        user_ids.select("user_id", F.col("user_idx").cast("int")), "user_idx"
    )
    counts = (
        liked.join(members, "user_id")
        .groupBy("segment", "item_idx")
        .agg(F.countDistinct("user_id").alias("n"))
    )
    scaled = counts.select(
        "segment", "item_idx", (F.col("n") / F.max("n").over(Window.partitionBy("segment"))).alias("score")
    )
    return members, scaled


def available_items(interactions: DataFrame, days: int | None) -> set | None:
    """Item ids with an interaction in the data's last `days` days (None: the rule is off)."""
    if days is None:
        return None
    latest = interactions.agg(F.max("ts")).first()[0]
    recent = interactions.where(F.col("ts") >= F.lit(latest) - F.expr(f"INTERVAL {int(days)} DAYS"))
    return {row[0] for row in recent.select(F.col("item_id").cast("string")).distinct().collect()}


def blocks(blocklist: DataFrame | None) -> tuple[set, dict]:
    """(item ids blocked for everyone, {user_id: item ids blocked for that user})."""
    everyone, per_user = set(), {}
    for row in blocklist.collect() if blocklist is not None else []:
        if row["user_id"]:
            per_user.setdefault(row["user_id"], set()).add(row["item_id"])
        else:
            everyone.add(row["item_id"])
    return everyone, per_user


def item_labels(items: DataFrame) -> DataFrame:
    """item_id -> a name a person recognises: the title, else brand and category, else the id."""

    def col(name: str) -> Column:
        return F.col(name).cast("string") if name in items.columns else F.lit(None).cast("string")

    described = F.nullif(F.concat_ws(" ", col("brand"), col("category_code")), F.lit(""))
    return items.select(
        F.col("item_id").cast("string").alias("item_id"),
        F.coalesce(
            F.nullif(F.trim(col("title")), F.lit("")), described, F.concat(F.lit("item "), col("item_id"))
        ).alias("label"),
    ).dropDuplicates(["item_id"])


def reason(source: str) -> Column:
    """Why an item is on the list, from the scorer's source and the history item behind it."""
    people, did = PEOPLE[source]
    because = F.concat(F.lit(f"because you {VERB[source]} "), F.col("reason_label"))
    text = (
        F.when(F.col("source").isin("als", "hybrid", "content") & F.col("reason_label").isNotNull(), because)
        .when(F.col("source") == "content", F.lit(f"like what you {VERB[source]}"))
        .when(F.col("source").isin("als", "hybrid"), F.lit(f"{people} with tastes like yours {did}"))
        .when(F.col("source") == "segment_popular", F.concat(F.lit("popular with "), F.col("segment")))
        .otherwise(F.format_string(f"popular: %,d {people} {did}", F.coalesce(F.col("n_users"), F.lit(0))))
    )
    return F.substring(text, 1, REASON_LENGTH)


def transform(inputs: dict, settings: Settings) -> tuple[DataFrame, DataFrame, DataFrame]:
    """-> (recommendations(user_id, item_id, rank, score, source, reason, user_tier), rows the
    rules removed (user_id, item_id, removed_by), similar_items(item_id, rank, similar_item_id, score))."""
    spark = inputs["prefs"].sparkSession
    explicit = SOURCES[settings.source].explicit
    interactions, model, trained = inputs["interactions"], inputs["model"], inputs["trained"]
    touched = history(interactions, explicit).cache()
    members, segment_scores = segments(touched, inputs["user_ids"], inputs["users"])
    everyone, per_user = blocks(inputs["blocklist"])
    catalogue = load_catalogue(
        item_table(inputs["item_ids"], inputs["items"]),
        inputs["content"],
        model,
        popularity(inputs["prefs"]),
        blocked_ids=everyone,
        available_ids=available_items(interactions, settings.available_within_days),
        segments=segment_scores,
    )
    pos = position_frame(spark, catalogue).cache()
    user_ids = inputs["user_ids"].select(
        F.col("user_id").cast("string").alias("user_id"), F.col("user_idx").cast("int")
    )
    n_items = touched.where(F.col("rating") > 0).groupBy("user_idx").agg(F.count("*").alias("n_items"))
    # user_rows keys users by user_idx; the lists are keyed by the source's user_id.
    known = (
        user_rows(touched, pos, model)
        .drop("user_key")
        .join(user_ids, "user_idx")
        .join(n_items, "user_idx", "left")
    )
    # Everyone in the data: users with interactions, and users the source lists without any.
    everybody = known.select("user_id")
    if inputs["users"] is not None:
        everybody = everybody.unionByName(inputs["users"].select(F.col("user_id").cast("string"))).distinct()
    users = everybody.join(known, "user_id", "left").withColumn("user_key", F.col("user_id"))
    if members is not None:
        users = users.join(members, "user_id", "left")
    else:
        users = users.withColumn("segment", F.lit(None).cast("string"))
    weights = trained["chosen"]["hybrid_weights"]
    users = users.withColumn(
        "tier", tier(F.col("n_items"), settings.cold_max_interactions, settings.heavy_min_interactions)
    ).withColumn("weight", tier_weights_column(weights))
    # Read twice: by the scorer and for each list's tier and segment.
    users = users.cache()
    to_positions = {item_id: p for p, item_id in enumerate(catalogue.item_id)}
    own_blocks = {
        user: {to_positions[i] for i in items if i in to_positions} for user, items in per_user.items()
    }
    policy = Policy(
        k=settings.top_k,
        blend=float(trained["chosen"]["blend"]),
        max_per_category=settings.max_per_category,
        availability=settings.available_within_days is not None,
        user_blocks=own_blocks,
    )
    scored = recommend_all(users, catalogue, policy, {"serve": None}).cache()
    labels = item_labels(inputs["items"])
    reach = touched.where(F.col("rating") > 0).groupBy("item_idx").agg(F.count("*").alias("n_users"))
    with_items = scored.join(F.broadcast(pos), "pos")
    recs = (
        with_items.where(F.col("removed_by").isNull())
        .join(reach, "item_idx", "left")
        .join(
            F.broadcast(pos.select(F.col("pos").alias("reason_pos"), F.col("item_id").alias("reason_item"))),
            "reason_pos",
            "left",
        )
        .join(
            F.broadcast(
                labels.select(F.col("item_id").alias("reason_item"), F.col("label").alias("reason_label"))
            ),
            "reason_item",
            "left",
        )
        .join(users.select(F.col("user_key"), "tier", "segment"), "user_key")
        .select(
            F.col("user_key").alias("user_id"),
            "item_id",
            F.col("rank").cast("int").alias("rank"),
            F.col("score").cast("double").alias("score"),
            "source",
            reason(settings.source).alias("reason"),
            F.col("tier").alias("user_tier"),
        )
    )
    removed = with_items.where(F.col("removed_by").isNotNull()).select(
        F.col("user_key").alias("user_id"), "item_id", "removed_by"
    )
    return recs, removed, similar_items(model, inputs["item_ids"], settings.top_k)


def similar_items(model: ALSModel, item_ids: DataFrame, k: int) -> DataFrame:
    """Each item's k nearest items by cosine of the ALS item factors, in the source's ids."""
    top = top_k_cosine(model.itemFactors.select(F.col("id").alias("item_idx"), "features"), k)
    ids = item_ids.select(F.col("item_idx").cast("int").alias("item_idx"), F.col("item_id").cast("string"))
    return (
        top.join(ids, "item_idx")
        .join(
            ids.select(
                F.col("item_idx").alias("similar_item_idx"), F.col("item_id").alias("similar_item_id")
            ),
            "similar_item_idx",
        )
        .select(
            "item_id",
            F.col("rank").cast("int").alias("rank"),
            "similar_item_id",
            F.col("score").cast("double"),
        )
    )


def rule_log(removed: DataFrame, settings: Settings) -> list[dict]:
    """One entry per business rule: enabled, its setting, and what it removed."""
    counts = {
        row["removed_by"]: row
        for row in removed.groupBy("removed_by")
        .agg(F.count("*").alias("items"), F.countDistinct("user_id").alias("users"))
        .collect()
    }
    settings_text = {
        "seen": ("always", True),
        "blocklist": ("recommendation_blocklist table", True),
        "availability": (
            f"interacted with in the last {settings.available_within_days} days",
            settings.available_within_days is not None,
        ),
        "diversity": (f"at most {settings.max_per_category} per category", settings.max_per_category > 0),
    }
    return [
        {
            "rule": rule,
            "enabled": settings_text[rule][1],
            "setting": settings_text[rule][0] if settings_text[rule][1] else None,
            "items_removed": int(counts[rule]["items"]) if rule in counts else 0,
            "users_affected": int(counts[rule]["users"]) if rule in counts else 0,
        }
        for rule in BUSINESS_RULES
    ]


def recommend(spark, settings: Settings, ds: str) -> dict:
    inputs = extract(spark, settings, ds)
    recs, removed, similar = transform(inputs, settings)
    target = settings.lake_path("recs", "recommendations", ds)
    # Written by the tasks that made them (a file each), never funnelled through one task.
    recs.write.mode("overwrite").parquet(target)
    similar.write.mode("overwrite").parquet(settings.lake_path("recs", "similar_items", ds))
    rules = rule_log(removed, settings)
    written = spark.read.parquet(target)
    per_user = written.groupBy("user_id", "user_tier").count()
    totals = per_user.agg(
        F.coalesce(F.sum("count"), F.lit(0)).alias("rows"),
        F.count("*").alias("users"),
        F.count_if(F.col("count") < settings.top_k).alias("users_short_of_k"),
    ).first()
    tiers = {row["user_tier"]: row["count"] for row in per_user.groupBy("user_tier").count().collect()}
    sources = {row["source"]: row["count"] for row in written.groupBy("source").count().collect()}
    return totals.asDict() | {
        "model_version": settings.model_version(ds),
        "rules": rules,
        "tiers": {name: tiers.get(name, 0) for name in USER_TIERS},
        "sources": dict(sorted(sources.items())),
        "similar_items": spark.read.parquet(settings.lake_path("recs", "similar_items", ds)).count(),
    }


JOB = Job("recommend", recommend, __doc__)

if __name__ == "__main__":
    JOB.main()
