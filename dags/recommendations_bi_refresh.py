"""recommendations_bi_refresh: after every publish, check what the warehouse serves and refresh
the BI extracts.

Scheduled on the PUBLISHED_RECOMMENDATIONS Asset that recommendations_daily's publish task
updates, so it runs once per publish (Airflow merges events that arrive while it is queued) and
only touches the datasets the events name. Wiring only: the work is in recflow/warehouse/.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, task
from recflow_assets import PUBLISHED_RECOMMENDATIONS
from recflow_callbacks import record_failure, record_retry

with DAG(
    dag_id="recommendations_bi_refresh",
    description="After each publish: check the served set is consistent, refresh the BI extracts",
    schedule=[PUBLISHED_RECOMMENDATIONS],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "recflow",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": record_failure,
        "on_retry_callback": record_retry,
    },
    tags=["recflow", "bi"],
    doc_md=__doc__,
) as dag:

    @task
    def check_served_sets(triggering_asset_events=None) -> list[dict]:
        """Fail when a published dataset's served tables disagree (recflow.warehouse.checks)."""
        from recflow.config import Settings
        from recflow.warehouse.checks import check_served_set
        from recflow.warehouse.engine import make_engine

        datasets = sorted(
            {event.extra["dataset"] for events in triggering_asset_events.values() for event in events}
        )
        settings = Settings.from_params({})
        engine = make_engine(settings.warehouse_url, settings.sqlite_path)
        try:
            return [check_served_set(engine, dataset) for dataset in datasets]
        finally:
            engine.dispose()

    @task
    def refresh_bi_extracts(checked: list[dict]) -> list[dict]:
        """Each BI view's rows per checked dataset as CSV under <data>/extracts/<dataset>/."""
        from recflow.config import Settings
        from recflow.warehouse.engine import make_engine
        from recflow.warehouse.extracts import refresh_extracts

        settings = Settings.from_params({})
        engine = make_engine(settings.warehouse_url, settings.sqlite_path)
        try:
            return [
                refresh_extracts(engine, served["dataset"], settings.data_dir / "extracts", served)
                for served in checked
            ]
        finally:
            engine.dispose()

    refresh_bi_extracts(check_served_sets())
