"""Validate the raw partition with Great Expectations; critical failures stop the run."""

from __future__ import annotations

from recflow.config import Settings
from recflow.ingest import ingested_layout
from recflow.jobs import run_job
from recflow.validation import enforce_facts, run_suite


def validate_raw(spark, settings: Settings, ds: str) -> dict:
    from expectations import movielens as suites

    layout = ingested_layout(settings, ds)
    interactions = spark.read.parquet(settings.lake_path("raw", "interactions", ds))
    items = spark.read.parquet(settings.lake_path("raw", "items", ds))
    n_fields = len(layout.file_for("interactions").columns)
    results = run_suite(
        suites.raw_interactions_view(interactions).cache(),
        suites.raw_interactions_suite(
            n_fields, layout.rating_min, layout.rating_max, settings.max_bad_row_fraction
        ),
    )
    results += run_suite(items.cache(), suites.raw_items_suite(settings.max_bad_row_fraction))
    return {"results": results}


if __name__ == "__main__":
    run_job("validate_raw", validate_raw, __doc__, check=enforce_facts)
