"""Validate the clean tables with Great Expectations before a model is trained on them."""

from __future__ import annotations

from recflow.config import Settings
from recflow.ingest import ingested_layout
from recflow.jobs import run_job
from recflow.validation import enforce_facts, run_suite


def validate_clean(spark, settings: Settings, ds: str) -> dict:
    from expectations import movielens as suites

    layout = ingested_layout(settings, ds)
    interactions = spark.read.parquet(settings.lake_path("clean", "interactions", ds)).cache()
    items = spark.read.parquet(settings.lake_path("clean", "items", ds)).cache()
    results = run_suite(interactions, suites.clean_interactions_suite(layout.rating_min, layout.rating_max))
    results += run_suite(items, suites.clean_items_suite())
    return {"results": results}


if __name__ == "__main__":
    run_job("validate_clean", validate_clean, __doc__, check=enforce_facts)
