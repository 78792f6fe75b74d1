"""The DAG's failure callback copies a Spark job's own error into the warehouse's run log, which
BI users read: for a file that matched no layout that error names the file and quotes nothing of
it (the probe found a .pgpass password there)."""

from __future__ import annotations

import datetime
import types
from pathlib import Path

import pytest
import sqlalchemy as sa

from recflow.config import Settings
from recflow.ingest import ingest
from recflow.jobs import record_failure as record_job_failure
from recflow.sources.base import SourceError
from recflow.warehouse.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]
DS = "2024-03-01"
SECRET = "db.internal:5432:*:postgres:S3cr3t-pw"


@pytest.mark.parametrize("backend", ["submit", "connect"])
def test_the_run_log_row_of_a_file_that_matched_no_layout_holds_no_content(
    dagbag, tmp_path, monkeypatch, backend
):
    from recflow_callbacks import record_failure  # plugins/, on sys.path once the DAGs are parsed

    monkeypatch.setenv("RECFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECFLOW_INPUT_ROOTS", str(tmp_path / "inputs"))
    monkeypatch.delenv("RECFLOW_WAREHOUSE_URL", raising=False)
    secret = tmp_path / "inputs" / ".pgpass"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    params = {"source": "ecommerce", "path": str(secret), "dataset": "probe"}
    settings = Settings.from_params(params)
    started = datetime.datetime.now(datetime.UTC)
    # What the ingest job does: fail, and leave its own error in the lake.
    with pytest.raises(SourceError) as failed:
        ingest(None, settings, DS)
    record_job_failure(settings, "ingest", DS, failed.value)
    if backend == "submit":
        # Airflow hears only spark-submit's exit code; the callback reads the job's error in the lake.
        task = types.SimpleNamespace(application=str(ROOT / "spark_jobs" / "ingest.py"))
        exception = RuntimeError("spark-submit exited 1")
    else:
        # Over Spark Connect the job runs in the task: the task's exception is the job's own.
        task = types.SimpleNamespace(conn_id="spark_connect_default")
        exception = failed.value

    ti = types.SimpleNamespace(
        dag_id="recommendations_daily", run_id="manual__probe", task_id="ingest_raw_files", try_number=1,
        start_date=started, log_url=None,
    )  # fmt: skip
    record_failure(
        {
            "ti": ti,
            "task": task,
            "params": params,
            "ds": DS,
            "exception": exception,
        }
    )

    engine = make_engine(None, settings.sqlite_path)
    with engine.connect() as conn:
        ((error_type, error),) = conn.execute(sa.text("SELECT error_type, error FROM pipeline_run_log")).all()
    engine.dispose()
    assert error_type == "SourceError" and f"{secret} line 1: a header of 1 field(s)" in error
    for word in ("S3cr3t", "postgres", "db.internal"):
        assert word not in error
