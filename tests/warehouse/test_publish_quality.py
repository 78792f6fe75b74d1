"""publish_quality: a stopped run's data quality reaches the warehouse and touches nothing else."""

from __future__ import annotations

import dataclasses
import datetime

import sqlalchemy as sa

from recflow.cli import quality
from recflow.config import Settings
from recflow.warehouse.publish import QualityBundle, publish, publish_quality

DAY = datetime.date(2024, 5, 1)


def _quality(success: bool) -> QualityBundle:
    return QualityBundle(
        dataset="A",
        run_date=DAY,
        quality_results=[
            {
                "suite": "ecommerce_raw_events_rees46", "expectation_key": "expect_column_values_to_be_between:_n_fields",
                "expectation_type": "expect_column_values_to_be_between", "column_name": "_n_fields",
                "severity": "critical", "success": success, "observed_value": "100.0000% unexpected",
                "unexpected_count": 0 if success else 12, "element_count": 12,
            }
        ],
        reconciliation=[
            {"table_name": "interactions", "raw_rows": 12, "clean_rows": 9, "quarantined_rows": 2, "duplicate_rows": 1}
        ],
        quarantine=[
            {"table_name": "interactions", "reason": "unknown event_type", "column_name": "event_type",
             "rows_quarantined": 2, "sample_file": "file:/x/2019-Oct.csv", "sample_line": 7, "sample_row": "a,click"}
        ],
    )  # fmt: skip


def _rows(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2, 3")).all()


def test_quality_of_a_stopped_run_replaces_only_quality_tables(sqlite_engine, sql_root, make_bundle):
    publish(sqlite_engine, make_bundle(run_date=DAY), sql_root)
    published = {
        t: _rows(sqlite_engine, t) for t in ("recommendations", "items", "model_runs", "model_metrics")
    }

    written = publish_quality(sqlite_engine, _quality(success=False), sql_root)
    assert written == {"data_quality_results": 1, "data_reconciliation": 1, "quarantine_summary": 1}
    # Again: replaced, not duplicated.
    publish_quality(sqlite_engine, _quality(success=False), sql_root)
    with sqlite_engine.connect() as conn:
        failed = conn.execute(
            sa.text("SELECT suite, severity, unexpected_count FROM data_quality_results WHERE NOT success")
        ).all()
    assert failed == [("ecommerce_raw_events_rees46", "critical", 12)]
    assert len(_rows(sqlite_engine, "data_reconciliation")) == 1
    # The last good lists, catalogue, run and metrics are untouched.
    assert {t: _rows(sqlite_engine, t) for t in published} == published


def test_cli_quality_reports_what_was_recorded(sqlite_engine, sql_root, tmp_path):
    publish_quality(sqlite_engine, _quality(success=False), sql_root)
    settings = dataclasses.replace(Settings.from_params({"dataset": "A"}), data_dir=tmp_path / "warehouse",
                                   warehouse_url=sqlite_engine.url.render_as_string())  # fmt: skip
    report = quality(settings, DAY.isoformat())
    assert "interactions  raw 12 = clean 9 + quarantined 2 + duplicates 1" in report
    assert (
        "quarantined      2 interactions: unknown event_type (first: file:/x/2019-Oct.csv line 7)" in report
    )
    assert "expectations: 0 of 1 met" in report
    assert (
        "FAILED critical ecommerce_raw_events_rees46.expect_column_values_to_be_between:_n_fields" in report
    )
    nothing = quality(settings, "2024-05-02")
    assert "nothing recorded: the run stopped before validation" in nothing
