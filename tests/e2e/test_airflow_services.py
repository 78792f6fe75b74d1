"""recommendations_daily as its users run it: Airflow's own api-server, scheduler and
dag-processor (LocalExecutor, metadata in PostgreSQL), a run triggered through the REST API v2
with a conf, the Asset-scheduled BI refresh it wakes, the run seen in the UI by headless
Chromium, and a backfill over several dates that leaves one consistent published set.

The screenshot and the timings are kept under test-artifacts/ (RECFLOW_TEST_ARTIFACTS)."""

from __future__ import annotations

import datetime
import json
import os
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

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("RECFLOW_TEST_ARTIFACTS", ROOT / "test-artifacts"))
DAILY, REFRESH = "recommendations_daily", "recommendations_bi_refresh"
DATASET = "shop"
# Small enough for minutes per run on two cores; the same keys as the UI's trigger form.
CONF = {"source": "ecommerce", "dataset": DATASET, "top_k": 5, "max_iter": 5, "rank": 10, "tuning_trials": 1}
RUN_TIMEOUT_S = 900


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


def test_a_rest_triggered_run_publishes_wakes_the_bi_refresh_and_a_backfill_keeps_one_served_set(
    mariadb_engine, tmp_path, spark_connect_server
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
        # The Spark tasks are sessions on the suite's warm Spark Connect server (the default
        # backend); two of a run's tasks use it at once (the model chain and the analytics).
        **spark_connect_server,
    }
    timings: dict[str, float] = {}
    started = time.monotonic()
    with (
        fresh_postgres_database() as metadata_url,
        AirflowServices(tmp_path / "airflow", ROOT / "dags", ROOT / "plugins", metadata_url, env) as airflow,
    ):
        timings["services_up_s"] = time.monotonic() - started
        api = airflow.client()
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
        ds = datetime.datetime.fromisoformat(today.replace("Z", "+00:00")).date()

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

        # A backfill of the two days before: both run, in date order, one at a time, after the
        # newest day was published. What is served stays one set: the newest run's.
        served_before = rows(
            mariadb_engine, "CHECKSUM TABLE recommendations, similar_items, popular_items, users"
        )
        backfilled = time.monotonic()
        backfill = api.backfill(
            DAILY,
            ds - datetime.timedelta(days=2),
            ds - datetime.timedelta(days=1),
            conf,
            reprocess_behavior="none",
        )
        states = api.wait_for_backfill(backfill, timeout=2 * RUN_TIMEOUT_S)
        timings["backfill_2_days_s"] = time.monotonic() - backfilled
        assert sorted(states.values()) == ["success", "success"], states
        assert rows(
            mariadb_engine, "CHECKSUM TABLE recommendations, similar_items, popular_items, users"
        ) == (served_before)
        runs = rows(mariadb_engine, "SELECT run_date, status FROM model_runs ORDER BY run_date")
        assert [d for d, _ in runs] == [ds - datetime.timedelta(days=n) for n in (2, 1, 0)]
        assert [s for _, s in runs][-1] == "published"
        assert {s for _, s in runs[:2]} <= {"superseded", "rejected"}
        served = check_served_set(mariadb_engine, DATASET)
        assert served["served_run"][0] == ds.isoformat() == served["newest_run"]
        # Nothing failed, so the run log is empty.
        assert rows(mariadb_engine, "SELECT COUNT(*) FROM pipeline_run_log") == [(0,)]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "airflow-services-timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print("Airflow services timings:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
