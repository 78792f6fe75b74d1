"""Clean: raw text partitions -> typed canonical tables, bad rows -> quarantine.

Per raw table the counts reconcile: raw = clean + quarantined + duplicates removed. Tables built
from clean ones (items of an e-commerce log) are written beside them and not reconciled, having
no raw rows.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recflow.cleaning import RowRule, keep_latest, split_bad_rows, summarise_quarantine
from recflow.config import Settings
from recflow.idmap import assign_ids
from recflow.ingest import ingested
from recflow.sources import derived_tables, source_module
from recflow.sources.base import TableCleaner


class Cleaned(NamedTuple):
    clean: DataFrame  # one row per key
    quarantined: DataFrame  # rows that broke a rule, unchanged, with column and reason
    passed: DataFrame  # rows that passed every rule, before de-duplication


def clean_table(raw: DataFrame, cleaner: TableCleaner, extra_rules: list[RowRule] = ()) -> Cleaned:
    good, bad = split_bad_rows(raw, cleaner.rules)
    typed = cleaner.typed(good)
    typed_rules = [*cleaner.typed_rules, *extra_rules]
    if typed_rules:
        typed, bad_typed = split_bad_rows(typed, typed_rules)
        bad = bad.unionByName(bad_typed)
    return Cleaned(keep_latest(typed, cleaner.key, cleaner.order), bad, typed)


def catalogue_rule(items: DataFrame, files: list[str]) -> tuple[DataFrame, RowRule]:
    """Interactions whose item the catalogue lacks are quarantined: they would be recommended
    without a title, and usually mean the catalogue and the log are from different exports."""
    known = items.select("item_id", F.lit(True).alias("_in_catalogue")).distinct()
    names = ", ".join(f.rsplit("/", 1)[-1] for f in files)
    return known, RowRule(
        "item_id", F.col("_in_catalogue").isNull(), f"item_id not in the catalogue ({names})"
    )


def clean(spark: SparkSession, settings: Settings, ds: str) -> dict:
    detected = ingested(settings, ds)
    cleaners = source_module(settings.source).cleaners(detected.layout, settings)
    # Catalogues first, so interactions can be checked against them.
    tables = sorted(detected.files, key=lambda t: t == "interactions")
    reconciliation, quarantine, written = [], [], {}
    for table in tables:
        raw = spark.read.parquet(settings.lake_path("raw", table, ds)).cache()
        cleaner, extra = cleaners[table], []
        if table == "interactions" and "items" in written:
            known, rule = catalogue_rule(written["items"], [str(p) for p in detected.files["items"]])
            cleaner, extra = dataclasses.replace(cleaner, typed=_joined(cleaner.typed, known)), [rule]
        cleaned = clean_table(raw, cleaner, extra)
        # The clean table, its write and the two reconciliation counts all start from the rows
        # that passed: Spark's cache manager serves them from this one computation.
        cleaned.passed.cache()
        kept = cleaned.clean.drop("_file", "_line", "_raw", "_in_catalogue")
        if table == "interactions":
            kept = assign_ids(spark, settings, kept, ds)
        clean_path = settings.lake_path("clean", table, ds)
        bad_path = settings.lake_path("quarantine", table, ds)
        kept.write.mode("overwrite").parquet(clean_path)
        cleaned.quarantined.write.mode("overwrite").parquet(bad_path)
        written[table] = spark.read.parquet(clean_path)
        quarantined = spark.read.parquet(bad_path)
        reconciliation.append(
            _reconcile(table, raw.count(), written[table].count(), quarantined.count(), cleaned)
        )
        quarantine += summarise_quarantine(quarantined, table)
        cleaned.passed.unpersist()
        raw.unpersist()
    derived = derived_tables(settings, written)
    for table, frame in derived.items():
        frame.write.mode("overwrite").parquet(settings.lake_path("clean", table, ds))
    return {
        "reconciliation": reconciliation,
        "quarantine": quarantine,
        "event_mix": _event_mix(written["interactions"]),
        "tables": sorted([*written, *derived]),
    }


def _joined(typed, known: DataFrame):
    return lambda df: typed(df).join(F.broadcast(known), "item_id", "left")


def _reconcile(table: str, n_raw: int, n_clean: int, n_bad: int, cleaned: Cleaned) -> dict:
    counts = {
        "table_name": table,
        "raw_rows": n_raw,
        "clean_rows": n_clean,
        "quarantined_rows": n_bad,
        # Counted on the frames before the written table (passed rows minus one per key), not
        # derived from the other counts, so a later join that loses rows fails the check below.
        "duplicate_rows": cleaned.passed.count() - cleaned.clean.count(),
    }
    if n_raw != n_clean + n_bad + counts["duplicate_rows"]:
        raise RuntimeError(f"{table}: rows do not reconcile: {counts}")
    return counts


def _event_mix(interactions: DataFrame) -> dict[str, int]:
    """Clean rows per event type: the next run compares its mix with this one."""
    return {r["event_type"]: r["count"] for r in interactions.groupBy("event_type").count().collect()}
