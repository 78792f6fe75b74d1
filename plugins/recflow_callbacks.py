"""Task hooks the RecFlow DAGs attach to their operators.

Lives in plugins/ (on Airflow's sys.path) because it is Airflow glue, not platform logic.
"""

from __future__ import annotations

import datetime

DURATION_KEY = "duration_s"


def record_duration(context, result=None) -> None:
    """post_execute hook: push the task's wall time so the publish task can store it in
    model_runs.task_timings. Runs inside the task, where XCom is still writable; no other task
    may read the metadata database in Airflow 3."""
    ti = context["ti"]
    if ti.start_date is None:
        return
    elapsed = datetime.datetime.now(datetime.UTC) - ti.start_date
    ti.xcom_push(key=DURATION_KEY, value=round(elapsed.total_seconds(), 3))
