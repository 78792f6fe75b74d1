"""Validate the raw partition with Great Expectations; critical failures stop the run."""

from __future__ import annotations

from recflow.config import Settings
from recflow.ingest import ingested
from recflow.jobs import Job
from recflow.validation import enforce_facts, run_suites


def validate_raw(spark, settings: Settings, ds: str) -> dict:
    from expectations import suites_for

    detected = ingested(settings, ds)
    raw = {
        table: spark.read.parquet(settings.lake_path("raw", table, ds)).cache() for table in detected.files
    }
    checks = suites_for(settings.source).raw_checks(raw, detected, settings)
    results, docs = run_suites(checks, settings.data_docs_dir, f"{settings.dataset_name}/{ds}/validate_raw")
    return {"results": results, "data_docs": docs}


JOB = Job("validate_raw", validate_raw, __doc__, check=enforce_facts)

if __name__ == "__main__":
    JOB.main()
