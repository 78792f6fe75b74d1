"""recommendations_daily as its users run it: Airflow's own api-server, scheduler and
dag-processor (LocalExecutor, metadata in PostgreSQL), a run triggered through the REST API v2
with a conf on a real standalone Spark cluster, the Asset-scheduled BI refresh it wakes, the run
seen in the UI by headless Chromium, and a backfill over several dates, in local mode, that leaves
one consistent published set: the cluster's day re-run locally gives the same tables, bit for bit.

Where Spark runs is the `spark_default` connection alone, set through the REST API the way an
operator sets it in Admin > Connections. The screenshot and the timings are kept under
test-artifacts/ (RECFLOW_TEST_ARTIFACTS)."""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from recflow.warehouse.checks import check_served_set

# The harness modules sit beside this file; the suite imports test files by path (importlib mode).
sys.path.insert(0, str(Path(__file__).parent))
from airflow_services import AirflowServices, fresh_postgres_database  # noqa: E402
from browser import check_run_in_ui  # noqa: E402
from spark_cluster import standalone_cluster  # noqa: E402

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("RECFLOW_TEST_ARTIFACTS", ROOT / "test-artifacts"))
DAILY, REFRESH = "recommendations_daily", "recommendations_bi_refresh"
DATASET = "shop"
# Small enough for minutes per run on two cores; the same keys as the UI's trigger form.
CONF = {"source": "ecommerce", "dataset": DATASET, "top_k": 5, "max_iter": 5, "rank": 10, "tuning_trials": 1}
RUN_TIMEOUT_S = 900
LOCAL_SPARK = {"conn_type": "spark", "host": "local[2]"}
SPARK_JOBS = [
    "analytics",
    "clean",
    "evaluate",
    "ingest",
    "recommend",
    "train",
    "validate_clean",
    "validate_raw",
]
# The dataset's served state, which a late run never touches and a re-run leaves as it was...
SERVED = (
    "recommendations", "items", "similar_items", "users", "user_profiles", "popular_items", "daily_kpis",
    "daily_category_activity", "daily_funnel", "hourly_activity",
)  # fmt: skip
# ...and the tables with a row set per run date, where a re-run leaves its date's rows as they were.
PER_RUN = (
    "model_registry",
    "model_metrics",
    "recommendation_rules",
    "data_reconciliation",
    "data_quality_results",
)


def rows(engine: sa.Engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def first_finished_run(api, dag_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = [r for r in api.dag_runs(dag_id) if r["state"] in ("success", "failed")]
        if finished:
            return finished[0]
        time.sleep(2)
    raise AssertionError(f"no finished {dag_id} run within {timeout} s: {api.dag_runs(dag_id)}")


def published(engine: sa.Engine, ds: datetime.date) -> dict:
    """What a run of ds published: CHECKSUMs of the served tables, and ds's rows of the others."""
    state = {table: checksum for table, checksum in rows(engine, "CHECKSUM TABLE " + ", ".join(SERVED))}
    for table in PER_RUN:
        state[table] = sorted(map(repr, rows(engine, f"SELECT * FROM {table} WHERE run_date = :ds", ds=ds)))
        assert state[table], f"{table} has no rows of {ds}"
    return state


def run_seconds(run: dict) -> float:
    started, ended = (
        datetime.datetime.fromisoformat(run[k].replace("Z", "+00:00")) for k in ("start_date", "end_date")
    )
    return (ended - started).total_seconds()


def test_a_rest_triggered_cluster_run_publishes_wakes_the_bi_refresh_and_a_backfill_keeps_one_served_set(
    mariadb_engine, tmp_path
):
    from recflow.generate.ecommerce import generate_ecommerce

    generate_ecommerce(tmp_path / "shop", n_users=150, n_items=120, seed=5)
    (events_file,) = (tmp_path / "shop").glob("*.csv")
    lines = events_file.read_text().splitlines()[1:]
    touched = {(f.split(",")[7], f.split(",")[2]) for f in lines}
    conf = CONF | {"path": str(events_file)}
    data_dir = tmp_path / "data"
    env = {
        "RECFLOW_DATA_DIR": str(data_dir),
        "RECFLOW_WAREHOUSE_URL": mariadb_engine.url.render_as_string(hide_password=False),
        "RECFLOW_TASK_RETRIES": "0",
        "RECFLOW_SHUFFLE_PARTITIONS": "2",
        "PYSPARK_PYTHON": sys.executable,
        # spark_default comes from the metadata database, where the REST API sets it: an
        # environment variable (make exports one) would win over it.
        "AIRFLOW_CONN_SPARK_DEFAULT": None,
    }
    timings: dict[str, float] = {}
    started = time.monotonic()
    with (
        standalone_cluster(tmp_path / "spark-cluster") as cluster,
        fresh_postgres_database() as metadata_url,
        AirflowServices(tmp_path / "airflow", ROOT / "dags", ROOT / "plugins", metadata_url, env) as airflow,
    ):
        timings["cluster_and_services_up_s"] = time.monotonic() - started
        api = airflow.client()
        api.put_connection("spark_default", **cluster.connection)
        daily = api.wait_for_dag(DAILY)
        api.wait_for_dag(REFRESH)
        # The run takes the logical date the scheduler would give today's scheduled run, so that
        # unpausing the DAG (its schedule must be live for the Asset and the backfill) does not
        # also start a default-Params run beside ours: the scheduler skips a date that has a run.
        today = daily["next_dagrun_logical_date"]
        triggered = time.monotonic()
        run_id = api.trigger(DAILY, conf, logical_date=today)
        api.unpause(DAILY)
        api.unpause(REFRESH)
        api.wait_for_run(DAILY, run_id, timeout=RUN_TIMEOUT_S)
        timings["rest_trigger_to_success_s"] = time.monotonic() - triggered
        timings["cluster_run_s"] = run_seconds(api.dag_run(DAILY, run_id))
        ds = datetime.datetime.fromisoformat(today.replace("Z", "+00:00")).date()
        # Every Spark job ran on the cluster, once (spark-submit names it recflow-<job>-...).
        apps = cluster.app_names(completed=True)
        assert sorted(re.sub(r"-shop-.*", "", a).removeprefix("recflow-") for a in apps) == SPARK_JOBS, apps

        # What the run published: every user of the file, none of their own items.
        recs = rows(
            mariadb_engine, "SELECT user_id, item_id FROM recommendations WHERE dataset = :d", d=DATASET
        )
        assert {u for u, _ in recs} == {u for u, _ in touched}
        assert len(recs) == len({u for u, _ in touched}) * CONF["top_k"]
        assert not set(recs) & touched
        assert rows(mariadb_engine, "SELECT run_date, status FROM model_runs") == [(ds, "published")]
        (reconciled,) = rows(
            mariadb_engine,
            "SELECT raw_rows, clean_rows, quarantined_rows, duplicate_rows FROM data_reconciliation"
            " WHERE dataset = :d",
            d=DATASET,
        )
        assert reconciled == (len(lines), len(lines), 0, 0)
        steps = rows(mariadb_engine, "SELECT DISTINCT step, step_name FROM v_funnel_daily ORDER BY step")
        assert steps == [(1, "view"), (2, "cart"), (3, "purchase")]

        # The publish updated the Asset; the scheduler ran the BI refresh on it.
        refresh = first_finished_run(api, REFRESH, timeout=300)
        assert refresh["state"] == "success" and refresh["run_type"] == "asset_triggered", refresh
        manifest = json.loads((data_dir / "extracts" / DATASET / "manifest.json").read_text())
        assert manifest["rows"]["v_user_recommendations"] == len(recs)
        assert manifest["served"]["served_run"] == [ds.isoformat(), manifest["served"]["champion"][1]]

        # An analyst opens the UI and finds the run successful.
        shown = time.monotonic()
        screenshot = ARTIFACTS / "airflow-ui-recommendations_daily-run.png"
        page = check_run_in_ui(
            airflow.base_url, airflow.username, airflow.password, DAILY, run_id, screenshot
        )
        timings["browser_check_s"] = time.monotonic() - shown
        assert page["state"].lower() == "success" and screenshot.stat().st_size > 10_000

        # The operator points spark_default back at local mode, and backfills the day before and
        # the published day itself (reprocess_behavior "completed" re-runs it): one run at a time,
        # in date order. The day before is late, so it records its facts and serves nothing; the
        # re-run of the published day, now in local mode, leaves every table as the cluster made it.
        api.put_connection("spark_default", **LOCAL_SPARK)
        before = published(mariadb_engine, ds)
        backfilled = time.monotonic()
        backfill = api.backfill(
            DAILY, ds - datetime.timedelta(days=1), ds, conf, reprocess_behavior="completed"
        )
        states = api.wait_for_backfill(backfill, timeout=2 * RUN_TIMEOUT_S)
        timings["backfill_2_days_s"] = time.monotonic() - backfilled
        assert sorted(states.values()) == ["success", "success"], states
        (rerun,) = [r for r in api.dag_runs(DAILY) if r["dag_run_id"] == run_id]
        assert rerun["run_type"] == "backfill", rerun
        timings["local_rerun_s"] = run_seconds(rerun)
        assert len(cluster.app_names(completed=True)) == len(SPARK_JOBS)  # the backfill ran locally
        assert published(mariadb_engine, ds) == before
        runs = rows(mariadb_engine, "SELECT run_date, status FROM model_runs ORDER BY run_date")
        assert runs[0][0] == ds - datetime.timedelta(days=1) and runs[0][1] in ("superseded", "rejected")
        assert runs[1:] == [(ds, "published")]
        served = check_served_set(mariadb_engine, DATASET)
        assert served["served_run"][0] == ds.isoformat() == served["newest_run"]
        # Nothing failed, so the run log is empty.
        assert rows(mariadb_engine, "SELECT COUNT(*) FROM pipeline_run_log") == [(0,)]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "airflow-services-timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print("Airflow services timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
