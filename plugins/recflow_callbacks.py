"""Task hooks the RecFlow DAGs attach to their operators.

Lives in plugins/ (on Airflow's sys.path) because it is Airflow glue, not platform logic.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

DURATION_KEY = "duration_s"

log = logging.getLogger(__name__)


def record_duration(context, result=None) -> None:
    """post_execute hook: push the task's wall time so the publish task can store it in
    model_runs.task_timings. Runs inside the task, where XCom is still writable; no other task
    may read the metadata database in Airflow 3."""
    ti = context["ti"]
    if ti.start_date is None:
        return
    elapsed = datetime.datetime.now(datetime.UTC) - ti.start_date
    ti.xcom_push(key=DURATION_KEY, value=round(elapsed.total_seconds(), 3))


def ensure_spark_connect(context) -> None:
    """pre_execute of a Spark Connect task: the server its connection names answers, or is the
    project's own and is started now (recflow.spark_connect.ensure), or the task fails saying so."""
    from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from recflow.spark_connect import DEFAULT_PORT, ensure

    conn_id = context["task"].conn_id
    try:
        url = SparkConnectHook(conn_id).get_connection_url()
    except AirflowNotFoundException as error:
        raise RuntimeError(
            f"No Spark Connect connection {conn_id!r}: define it (AIRFLOW_CONN_{conn_id.upper()}="
            f'\'{{"conn_type": "spark_connect", "host": "127.0.0.1", "port": {DEFAULT_PORT}}}\'), or run the '
            "Spark tasks with spark-submit (RECFLOW_SPARK_BACKEND=submit)"
        ) from error
    log.info(ensure(url))


def record_failure(context) -> None:
    """on_failure_callback: the attempt failed for good; record it in the warehouse run log."""
    _record(context, "failed")


def record_retry(context) -> None:
    """on_retry_callback: the attempt failed and Airflow will try again; record that too, so the
    run log shows flaky steps that a later success would otherwise hide."""
    _record(context, "up_for_retry")


def _record(context, state: str) -> None:
    # A callback that raises only adds noise to the task log (Airflow logs and ignores it), and
    # the warehouse may be exactly what failed: log and carry on.
    try:
        attempt = task_attempt(context, state)
        from recflow.config import Settings
        from recflow.publish_run import SQL_ROOT
        from recflow.warehouse.engine import make_engine
        from recflow.warehouse.run_log import record_attempt

        # Params that do not parse still name no other warehouse than the environment's.
        settings = _settings(context) or Settings.from_params({})
        engine = make_engine(settings.warehouse_url, settings.sqlite_path)
        try:
            record_attempt(engine, attempt, SQL_ROOT)
        finally:
            engine.dispose()
        log.info("Recorded %s of %s (try %s) in the run log", state, attempt.task_id, attempt.try_number)
    except Exception:
        log.exception("Could not record the %s task in the warehouse run log", state)


def task_attempt(context, state: str):
    """The run-log row for the context's task attempt. A Spark task's error is the job's own
    message (recflow.jobs.record_failure), which names the file, line and column; spark-submit
    itself only tells Airflow the exit code."""
    from recflow.jobs import read_failure
    from recflow.warehouse.run_log import TaskAttempt

    ti = context["ti"]
    error = context.get("exception")
    error_type = type(error).__name__ if error is not None else None
    message = str(error) if error is not None else None
    settings = _settings(context)
    ds = context.get("ds")
    application = getattr(context.get("task"), "application", None)
    if settings is not None and ds and application and ti.start_date is not None:
        failure = read_failure(settings, Path(application).stem, ds, since=ti.start_date)
        if failure is not None:
            error_type, message = failure["error_type"], failure["error"]
    return TaskAttempt(
        dag_id=ti.dag_id,
        dag_run_id=ti.run_id,
        task_id=ti.task_id,
        try_number=int(ti.try_number),
        state=state,
        dataset=settings.dataset_name if settings is not None else None,
        run_date=datetime.date.fromisoformat(ds) if ds else None,
        error_type=error_type,
        error=message,
        log_url=getattr(ti, "log_url", None),
        logged_at=datetime.datetime.now(datetime.UTC),
    )


def _settings(context):
    """The run's Settings, or None when its Params are what failed."""
    from recflow.config import Settings

    try:
        return Settings.from_params(dict(context.get("params") or {}))
    except Exception:
        return None
