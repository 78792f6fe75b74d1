"""Clean: raw text partitions -> typed canonical tables, bad rows -> quarantine.

Per table the counts reconcile: raw = clean + quarantined + duplicates removed.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recflow.cleaning import keep_latest, split_bad_rows, summarise_quarantine
from recflow.config import Settings
from recflow.ingest import ingested_layout
from recflow.sources import movielens


def clean_interactions(raw: DataFrame, layout: movielens.Layout) -> tuple[DataFrame, DataFrame]:
    """(one row per user and item, quarantined rows). A user who rated an item twice keeps the
    latest rating: that is what the user thinks now."""
    spec = layout.file_for("interactions")
    good, bad = split_bad_rows(raw, movielens.interaction_rules(layout, len(spec.columns)))
    typed = movielens.typed_interactions(good)
    latest = keep_latest(typed, ["user_idx", "item_idx"], [F.col("ts").desc(), F.col("_line").desc()])
    return latest, bad


def clean_items(raw: DataFrame, layout: movielens.Layout) -> tuple[DataFrame, DataFrame]:
    spec = layout.file_for("items")
    good, bad = split_bad_rows(raw, movielens.item_rules(len(spec.columns)))
    typed = movielens.typed_items(good, layout)
    return keep_latest(typed, ["item_id"], [F.col("_line")]), bad


def clean_users(raw: DataFrame, layout: movielens.Layout) -> tuple[DataFrame, DataFrame]:
    spec = layout.file_for("users")
    good, bad = split_bad_rows(raw, movielens.user_rules(len(spec.columns)))
    typed = movielens.typed_users(good, layout)
    return keep_latest(typed, ["user_id"], [F.col("_line")]), bad


CLEANERS = {"interactions": clean_interactions, "items": clean_items, "users": clean_users}


def clean(spark: SparkSession, settings: Settings, ds: str) -> dict:
    layout = ingested_layout(settings, ds)
    reconciliation, quarantine = [], []
    for spec in layout.files:
        raw = spark.read.parquet(settings.lake_path("raw", spec.table, ds)).cache()
        good, bad = CLEANERS[spec.table](raw, layout)
        clean_path = settings.lake_path("clean", spec.table, ds)
        bad_path = settings.lake_path("quarantine", spec.table, ds)
        good.drop("_file", "_line").write.mode("overwrite").parquet(clean_path)
        bad.write.mode("overwrite").parquet(bad_path)
        n_raw = raw.count()
        n_clean = spark.read.parquet(clean_path).count()
        n_bad = spark.read.parquet(bad_path).count()
        counts = {
            "table_name": spec.table,
            "raw_rows": n_raw,
            "clean_rows": n_clean,
            "quarantined_rows": n_bad,
            "duplicate_rows": good.count() - n_clean,
        }
        if n_raw != n_clean + n_bad + counts["duplicate_rows"]:
            # Counted independently, so a join or filter that drops rows silently shows here.
            raise RuntimeError(f"{spec.table}: rows do not reconcile: {counts}")
        reconciliation.append(counts)
        quarantine += summarise_quarantine(spark.read.parquet(bad_path), spec.table)
        raw.unpersist()
    return {"reconciliation": reconciliation, "quarantine": quarantine}
