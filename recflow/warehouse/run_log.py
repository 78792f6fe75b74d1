"""The warehouse run log: why a task attempt of a RecFlow DAG failed (table pipeline_run_log).

Written by the DAG's failure and retry callbacks (plugins/recflow_callbacks.py), read by people
and dashboards asking why a day has no new recommendations. One row per attempt; recording the
same attempt again replaces its row, so a callback that runs twice leaves one.

The publish also writes here (recflow.warehouse.publish): an attempt marks itself 'publishing'
before its transaction, and the transaction deletes the mark as it commits. A publish killed
midway (no Python left to run a callback) leaves the mark; the next publish, holding the publish
lock and so knowing the attempt is dead, turns it into 'interrupted' with what it repaired.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from recflow.warehouse.migrate import migrate

STATES = ("failed", "up_for_retry", "publishing", "interrupted")
PUBLISHING, INTERRUPTED = "publishing", "interrupted"
# Column sizes of sql/*/011_pipeline_run_log.sql; longer text is cut rather than rejected, since
# a run log that refuses the failure it should record is worse than a shortened message.
_ERROR_CHARS = 16_000
_ERROR_TYPE_CHARS = 128
_LOG_URL_CHARS = 1000
_KEY = ("dag_id", "dag_run_id", "task_id", "try_number")
_WHERE_KEY = " AND ".join(f"{k} = :{k}" for k in _KEY)


@dataclass(frozen=True)
class AttemptKey:
    """Which task attempt a row is about (pipeline_run_log's primary key)."""

    dag_id: str
    dag_run_id: str
    task_id: str
    try_number: int


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


def record_attempt(engine: sa.Engine, attempt: TaskAttempt, sql_root: Path | None) -> None:
    """Replace the attempt's row of pipeline_run_log (migrating first, unless ``sql_root`` is None:
    the failure may come before the run's migrate_warehouse task ever ran)."""
    if attempt.state not in STATES:
        raise ValueError(f"state {attempt.state!r} of {attempt.task_id} is not one of {STATES}")
    row = asdict(attempt) | {
        "error_type": _cut(attempt.error_type, _ERROR_TYPE_CHARS),
        "error": _cut(attempt.error, _ERROR_CHARS),
        "log_url": _cut(attempt.log_url, _LOG_URL_CHARS),
        "logged_at": attempt.logged_at.astimezone(datetime.UTC).replace(tzinfo=None, microsecond=0),
    }
    if sql_root is not None:
        migrate(engine, sql_root)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM pipeline_run_log WHERE {_WHERE_KEY}"), {k: row[k] for k in _KEY})
        columns = ", ".join(row)
        conn.execute(
            sa.text(f"INSERT INTO pipeline_run_log ({columns}) VALUES ({', '.join(':' + c for c in row)})"),
            row,
        )


def mark_publishing(
    engine: sa.Engine, key: AttemptKey, dataset: str, run_date: datetime.date, now: datetime.datetime
) -> None:
    """Record, committed at once, that this attempt is publishing (the schema is migrated)."""
    record_attempt(engine, _attempt(key, PUBLISHING, dataset, run_date, now), sql_root=None)


def clear_publishing(conn: sa.Connection, key: AttemptKey) -> None:
    """Delete the attempt's mark, in the publish's own transaction: it goes when the publish commits."""
    conn.execute(
        sa.text(f"DELETE FROM pipeline_run_log WHERE {_WHERE_KEY} AND state = :state"),
        asdict(key) | {"state": PUBLISHING},
    )


def mark_failed(
    engine: sa.Engine, key: AttemptKey, dataset: str, run_date: datetime.date, error: BaseException
) -> None:
    """The attempt's mark becomes 'failed' with the error: its transaction rolled back. (Under
    Airflow the task's failure callback records the same attempt again, replacing this row.)"""
    now = datetime.datetime.now(datetime.UTC)
    failed = _attempt(key, "failed", dataset, run_date, now, type(error).__name__, str(error) or repr(error))
    record_attempt(engine, failed, sql_root=None)


def repair_interrupted(
    engine: sa.Engine, repaired_by: AttemptKey, served: dict[str, str | None]
) -> list[dict]:
    """Turn every 'publishing' mark into 'interrupted', saying what became of the attempt; return
    the marks repaired. Only call while holding the publish lock: then no mark is a live attempt.

    ``served``: dataset -> the model_version its readers are served now (what they kept)."""
    with engine.begin() as conn:
        marks = [
            dict(row._mapping)
            for row in conn.execute(
                sa.text("SELECT * FROM pipeline_run_log WHERE state = :state ORDER BY logged_at"),
                {"state": PUBLISHING},
            )
        ]
        for mark in marks:
            kept = served.get(mark["dataset"])
            note = (
                f"The publish of {mark['dataset']}/{mark['run_date']} (try {mark['try_number']}, started "
                f"{mark['logged_at']} UTC) died before it committed: killed, or its connection lost. The "
                f"warehouse rolled its transaction back whole, so readers kept "
                f"{'model ' + kept if kept else 'what they had'}. Repaired by {repaired_by.dag_run_id} "
                f"try {repaired_by.try_number}, which publishes again."
            )
            conn.execute(
                sa.text(
                    f"UPDATE pipeline_run_log SET state = :new, error_type = 'PublishInterrupted', error = :note"
                    f" WHERE {_WHERE_KEY} AND state = :state"
                ),
                {k: mark[k] for k in _KEY} | {"new": INTERRUPTED, "note": note, "state": PUBLISHING},
            )
            mark.update(state=INTERRUPTED, error=note)
    return marks


def _attempt(
    key: AttemptKey,
    state: str,
    dataset: str,
    run_date: datetime.date,
    now: datetime.datetime,
    error_type: str | None = None,
    error: str | None = None,
) -> TaskAttempt:
    return TaskAttempt(
        **asdict(key),
        state=state,
        dataset=dataset,
        run_date=run_date,
        error_type=error_type,
        error=error,
        log_url=None,
        logged_at=now,
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
