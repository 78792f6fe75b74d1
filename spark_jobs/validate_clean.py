"""Validate the clean tables with Great Expectations before a model is trained on them, and
compare row count and event mix with the previous run."""

from __future__ import annotations

from recflow.config import Settings
from recflow.facts import previous_partition, read_facts
from recflow.ingest import ingested
from recflow.jobs import Job
from recflow.validation import enforce_facts, run_suites


def previous_clean_facts(settings: Settings, ds: str) -> dict | None:
    """The clean step's facts of the latest earlier run of this dataset, with its date."""
    uri = previous_partition(settings, "facts", "clean", ds)
    if uri is None:
        return None
    return read_facts(uri) | {"ds": uri.rsplit("dt=", 1)[-1]}


def validate_clean(spark, settings: Settings, ds: str) -> dict:
    from expectations import suites_for
    from expectations.common import run_over_run_checks

    detected = ingested(settings, ds)
    tables = read_facts(settings.lake_path("facts", "clean", ds))["tables"]
    clean = {table: spark.read.parquet(settings.lake_path("clean", table, ds)).cache() for table in tables}
    checks = suites_for(settings.source).clean_checks(clean, detected, settings)
    previous = previous_clean_facts(settings, ds)
    checks += run_over_run_checks(
        spark, settings.source, clean["interactions"], previous,
        settings.max_row_count_change, settings.max_event_mix_change,
    )  # fmt: skip
    results, docs = run_suites(checks, settings.data_docs_dir, f"{settings.dataset_name}/{ds}/validate_clean")
    return {"results": results, "data_docs": docs, "previous_run": previous and previous["ds"]}


JOB = Job("validate_clean", validate_clean, __doc__, check=enforce_facts)

if __name__ == "__main__":
    JOB.main()
