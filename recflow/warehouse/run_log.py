"""The warehouse run log: why a task attempt of a RecFlow DAG failed (table pipeline_run_log).

Written by the DAG's failure and retry callbacks (plugins/recflow_callbacks.py), read by people
and dashboards asking why a day has no new recommendations. One row per attempt; recording the
same attempt again replaces its row, so a callback that runs twice leaves one.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from recflow.warehouse.migrate import migrate

STATES = ("failed", "up_for_retry")
# Column sizes of sql/*/011_pipeline_run_log.sql; longer text is cut rather than rejected, since
# a run log that refuses the failure it should record is worse than a shortened message.
_ERROR_CHARS = 16_000
_ERROR_TYPE_CHARS = 128
_LOG_URL_CHARS = 1000
_KEY = ("dag_id", "dag_run_id", "task_id", "try_number")


@dataclass(frozen=True)
class TaskAttempt:
    dag_id: str
    dag_run_id: str
    task_id: str
    try_number: int
    state: str  # one of STATES
    dataset: str | None
    run_date: datetime.date | None
    error_type: str | None
    error: str | None
    log_url: str | None
    logged_at: datetime.datetime  # UTC


def record_attempt(engine: sa.Engine, attempt: TaskAttempt, sql_root: Path) -> None:
    """Replace the attempt's row of pipeline_run_log (migrating first: the failure may come before
    the run's migrate_warehouse task ever ran)."""
    if attempt.state not in STATES:
        raise ValueError(f"state {attempt.state!r} of {attempt.task_id} is not one of {STATES}")
    row = asdict(attempt) | {
        "error_type": _cut(attempt.error_type, _ERROR_TYPE_CHARS),
        "error": _cut(attempt.error, _ERROR_CHARS),
        "log_url": _cut(attempt.log_url, _LOG_URL_CHARS),
        "logged_at": attempt.logged_at.astimezone(datetime.UTC).replace(tzinfo=None, microsecond=0),
    }
    migrate(engine, sql_root)
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM pipeline_run_log WHERE " + " AND ".join(f"{k} = :{k}" for k in _KEY)),
            {k: row[k] for k in _KEY},
        )
        columns = ", ".join(row)
        conn.execute(
            sa.text(f"INSERT INTO pipeline_run_log ({columns}) VALUES ({', '.join(':' + c for c in row)})"),
            row,
        )


def read_attempts(engine: sa.Engine, dag_run_id: str) -> list[dict]:
    """The run's recorded attempts, in task and try order."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM pipeline_run_log WHERE dag_run_id = :run ORDER BY task_id, try_number"),
            {"run": dag_run_id},
        )
        return [dict(row._mapping) for row in rows]


def _cut(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"
