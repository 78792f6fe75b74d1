"""Clean: raw text partitions -> typed canonical tables, bad rows -> quarantine.

Per table the counts reconcile: raw = clean + quarantined + duplicates removed.
"""

from __future__ import annotations

from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recflow.cleaning import keep_latest, split_bad_rows, summarise_quarantine
from recflow.config import Settings
from recflow.ingest import ingested_layout
from recflow.sources import movielens


class Cleaned(NamedTuple):
    clean: DataFrame  # one row per key
    quarantined: DataFrame  # rows that broke a rule, unchanged, with column and reason
    passed: DataFrame  # rows that passed every rule, before de-duplication


def _clean(raw: DataFrame, rules, typed, key: list[str], order) -> Cleaned:
    good, bad = split_bad_rows(raw, rules)
    passed = typed(good)
    return Cleaned(keep_latest(passed, key, order), bad, passed)


def clean_interactions(raw: DataFrame, layout: movielens.Layout) -> Cleaned:
    """One row per user and item. A user who rated an item twice keeps the latest rating: that
    is what the user thinks now."""
    rules = movielens.interaction_rules(layout, len(layout.file_for("interactions").columns))
    latest_first = [F.col("ts").desc(), F.col("_line").desc()]
    return _clean(raw, rules, movielens.typed_interactions, ["user_idx", "item_idx"], latest_first)


def clean_items(raw: DataFrame, layout: movielens.Layout) -> Cleaned:
    rules = movielens.item_rules(len(layout.file_for("items").columns))
    return _clean(raw, rules, lambda df: movielens.typed_items(df, layout), ["item_id"], [F.col("_line")])


def clean_users(raw: DataFrame, layout: movielens.Layout) -> Cleaned:
    rules = movielens.user_rules(len(layout.file_for("users").columns))
    return _clean(raw, rules, lambda df: movielens.typed_users(df, layout), ["user_id"], [F.col("_line")])


CLEANERS = {"interactions": clean_interactions, "items": clean_items, "users": clean_users}


def clean(spark: SparkSession, settings: Settings, ds: str) -> dict:
    layout = ingested_layout(settings, ds)
    reconciliation, quarantine = [], []
    for spec in layout.files:
        raw = spark.read.parquet(settings.lake_path("raw", spec.table, ds)).cache()
        cleaned = CLEANERS[spec.table](raw, layout)
        clean_path = settings.lake_path("clean", spec.table, ds)
        bad_path = settings.lake_path("quarantine", spec.table, ds)
        cleaned.clean.drop("_file", "_line").write.mode("overwrite").parquet(clean_path)
        cleaned.quarantined.write.mode("overwrite").parquet(bad_path)
        n_raw = raw.count()
        n_clean = spark.read.parquet(clean_path).count()
        n_bad = spark.read.parquet(bad_path).count()
        counts = {
            "table_name": spec.table,
            "raw_rows": n_raw,
            "clean_rows": n_clean,
            "quarantined_rows": n_bad,
            # Rows that passed the rules minus rows kept: counted from the cached raw frame, not
            # derived from the other counts, so the check below can catch rows lost in a step.
            "duplicate_rows": cleaned.passed.count() - n_clean,
        }
        if n_raw != n_clean + n_bad + counts["duplicate_rows"]:
            # Counted independently, so a join or filter that drops rows silently shows here.
            raise RuntimeError(f"{spec.table}: rows do not reconcile: {counts}")
        reconciliation.append(counts)
        quarantine += summarise_quarantine(spark.read.parquet(bad_path), spec.table)
        raw.unpersist()
    return {"reconciliation": reconciliation, "quarantine": quarantine}
