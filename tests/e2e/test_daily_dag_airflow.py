"""recommendations_daily end to end with real Airflow (`airflow dags test`), real Spark and the
real MariaDB, on a small generated sample: first on the default backend, the suite's warm Spark
Connect server, then the same day again with spark-submit on a real standalone Spark cluster
(same tables, bit for bit), then a bad file.

The ecommerce source, the REST API, the scheduler and the UI are in test_airflow_services.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from recflow.publish_run import SQL_ROOT
from recflow.warehouse.blocklist import block_item
from recflow.warehouse.migrate import migrate

# The harness modules sit beside this file; the suite imports test files by path (importlib mode).
sys.path.insert(0, str(Path(__file__).parent))
from spark_cluster import standalone_cluster  # noqa: E402

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("RECFLOW_TEST_ARTIFACTS", ROOT / "test-artifacts"))
DS = "2024-03-01"
CONF = {"sample_users": 150, "sample_items": 120, "top_k": 5, "max_iter": 5, "rank": 10, "tuning_trials": 1}
SPARK_TASKS = [
    "ingest_raw_files", "validate_raw_data", "clean_interactions", "validate_clean_data",
    "train_als", "evaluate_models", "generate_recommendations", "build_analytics",
]  # fmt: skip
SPARK_JOBS = [
    "ingest",
    "validate_raw",
    "clean",
    "validate_clean",
    "train",
    "evaluate",
    "recommend",
    "analytics",
]
# The analytics tables a run publishes (the BI views read them).
BLOCKED = "1"
ANALYTICS_TABLES = (
    "users", "user_profiles", "popular_items", "daily_kpis", "daily_category_activity", "daily_funnel",
    "hourly_activity",
)  # fmt: skip


def airflow_env(home: Path, data_dir: Path, warehouse_url: str, spark: dict[str, str]) -> dict[str, str]:
    """Airflow's environment for a run; `spark` says where its Spark tasks go (the
    spark_connect_server fixture's environment, or a spark-submit backend and connection)."""
    venv_bin = str(Path(sys.executable).parent)
    return (
        dict(
            os.environ,
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            RECFLOW_DATA_DIR=str(data_dir),
            RECFLOW_WAREHOUSE_URL=warehouse_url,
            RECFLOW_TASK_RETRIES="0",
            RECFLOW_SHUFFLE_PARTITIONS="2",
            PYSPARK_PYTHON=sys.executable,
            PATH=f"{venv_bin}:{os.environ['PATH']}",
        )
        | spark
    )


RUN_SECONDS: dict[str, float] = {}


def run_dag(
    tmp_path: Path, name: str, data_dir: Path, warehouse_url: str, conf: dict, spark: dict[str, str]
) -> tuple[str, str]:
    """One `airflow dags test` run in its own metadata database; returns (final state, log).
    Its wall time (the run alone, not the metadata migration) goes into RUN_SECONDS[name]."""
    home = tmp_path / f"airflow-{name}"
    env = airflow_env(home, data_dir, warehouse_url, spark)
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    started = time.monotonic()
    done = subprocess.run(
        ["airflow", "dags", "test", "recommendations_daily", DS, "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    RUN_SECONDS[name] = round(time.monotonic() - started, 1)
    log = done.stdout + done.stderr
    (tmp_path / f"{name}.log").write_text(log)
    states = re.findall(r"DagRun Finished.*?state=([a-z_]+)", log)
    return (states[-1] if states else f"no final state (exit {done.returncode})"), log


def table_rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def rated_pairs(sample_dir: Path) -> set[tuple[str, str]]:
    lines = (sample_dir / "u.data").read_text().splitlines()
    return {tuple(line.split("\t")[:2]) for line in lines}


def test_daily_dag_publishes_idempotently_and_bad_input_publishes_nothing(
    mariadb_engine, tmp_path, spark_connect_server
):
    url = mariadb_engine.url.render_as_string(hide_password=False)
    data_dir = tmp_path / "data"
    # A blocked item: the run's export_blocklist task hands it to the recommend job.
    migrate(mariadb_engine, SQL_ROOT)
    block_item(mariadb_engine, "movielens", BLOCKED, "licence expired")

    state, log = run_dag(tmp_path, "first", data_dir, url, CONF, spark_connect_server)
    assert state == "success", log[-4000:]
    # Every Spark task ran as a session on the warm server, none through spark-submit.
    for job in SPARK_JOBS:
        assert f"running {job} over Spark Connect" in log, job
    assert "Spark-Submit cmd" not in log

    recs = table_rows(
        mariadb_engine,
        "SELECT user_id, item_id, `rank`, score FROM recommendations WHERE dataset = 'movielens'",
    )
    sample_dir = next((data_dir / "samples").iterdir())
    rated = rated_pairs(sample_dir)
    users = {u for u, _ in rated}
    assert len(recs) == len(users) * CONF["top_k"]
    by_user: dict[str, list[int]] = {}
    for user, item, rank, _ in recs:
        by_user.setdefault(user, []).append(rank)
        assert (user, item) not in rated, f"user {user} was recommended item {item} they already rated"
    assert set(by_user) == users
    assert all(sorted(ranks) == list(range(1, CONF["top_k"] + 1)) for ranks in by_user.values())

    (run,) = table_rows(mariadb_engine, "SELECT status, task_timings, metrics, n_users FROM model_runs")
    assert run[0] == "published"
    # Each task's wall time, and the search's within train_als.
    assert set(json.loads(run[1])) == set(SPARK_TASKS) | {
        "train_als.search_ranker",
        "train_als.search_rating",
        "train_als.search_hybrid",
    }
    assert BLOCKED not in {item for _, item, _, _ in recs}
    metrics = json.loads(run[2])
    assert metrics["als"]["ndcg@5"] > metrics["popularity"]["ndcg@5"]
    assert run[3] == len(users)
    titles = table_rows(
        mariadb_engine, "SELECT COUNT(*) FROM items WHERE dataset = 'movielens' AND title <> ''"
    )
    assert titles == [(CONF["sample_items"],)]

    # The model registry: the first model of a dataset is its champion, recorded with the
    # settings the search chose, the search itself and the data snapshot.
    ((decision, is_champion, blend, trials, n_rows, reason),) = table_rows(
        mariadb_engine,
        "SELECT decision, is_champion, JSON_EXTRACT(params, '$.blend'),"
        " JSON_LENGTH(JSON_EXTRACT(tuning, '$.ranker.trials')),"
        " JSON_EXTRACT(data_snapshot, '$.n_interactions'), reason FROM model_registry",
    )
    assert (decision, is_champion) == ("promoted", 1)
    assert float(blend) >= 0
    assert int(trials) >= CONF["tuning_trials"]
    assert int(n_rows) == len(rated)
    assert reason.startswith("No champion yet")

    # Every BI view has rows (watch time is TV-only), and the run wrote its report.
    views = [v for (v,) in table_rows(mariadb_engine, "SELECT table_name FROM information_schema.views"
                                      " WHERE table_schema = DATABASE()")]  # fmt: skip
    assert len(views) == 16
    for view in views:
        (count,) = table_rows(mariadb_engine, f"SELECT COUNT(*) FROM {view}")[0]
        assert (count > 0) == (view != "v_watch_time_hourly"), view
    (title, reason), *_ = table_rows(
        mariadb_engine, "SELECT title, reason FROM v_user_recommendations WHERE recommendation_rank = 1"
    )
    assert title and ("rated" in reason)
    # The rules and the tiers are queryable from the BI views.
    rules = dict(table_rows(mariadb_engine, "SELECT rule, items_removed FROM v_recommendation_rules"))
    assert set(rules) == {"seen", "blocklist", "availability", "diversity"} and rules["seen"] > 0
    tiers = table_rows(mariadb_engine, "SELECT DISTINCT user_tier FROM v_model_tier_performance")
    assert {"all", "cold"} <= {t for (t,) in tiers}
    report = data_dir / "reports" / "movielens" / f"{DS}.html"
    assert report.read_text().count("<svg") >= 5

    def checksums(tables=("recommendations", "items", "model_metrics", "similar_items", "recommendation_rules",
                          "data_quality_results",
                          "data_reconciliation", "model_registry", *ANALYTICS_TABLES)):  # fmt: skip
        return table_rows(mariadb_engine, "CHECKSUM TABLE " + ", ".join(tables))

    before = checksums()
    # The same logical date again, this time with spark-submit on a real standalone Spark
    # cluster, reached by configuration alone (the backend and the spark_default connection; a
    # fresh Airflow metadata DB, the same lake and warehouse): the published tables are
    # identical, with no duplicates.
    with standalone_cluster(tmp_path / "spark-cluster") as cluster:
        submit = {"RECFLOW_SPARK_BACKEND": "submit", "AIRFLOW_CONN_SPARK_DEFAULT": cluster.airflow_conn}
        state, log = run_dag(tmp_path, "cluster", data_dir, url, CONF, submit)
        assert state == "success", log[-4000:]
        assert f"--master {cluster.master_url}" in log
        apps = cluster.app_names(completed=True)
    # Every Spark job ran on the cluster, once (spark-submit names it recflow-<job>).
    jobs = sorted(re.sub(r"-movielens-.*", "", app).removeprefix("recflow-") for app in apps)
    assert jobs == sorted(SPARK_JOBS), apps
    assert checksums() == before
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    timings = {"connect_run_s": RUN_SECONDS["first"], "cluster_submit_run_s": RUN_SECONDS["cluster"]}
    (ARTIFACTS / "dag-connect-vs-cluster.json").write_text(json.dumps(timings, indent=2) + "\n")
    print("airflow dags test wall time:", timings)

    # A file with the wrong delimiter stops the run at validation: no recommendations, items or
    # metrics are published and the last good ones stay; the failed expectations are recorded.
    bad_dir = tmp_path / "bad"
    shutil.copytree(sample_dir, bad_dir)
    (bad_dir / "u.data").write_text((sample_dir / "u.data").read_text().replace("\t", ","))
    state, log = run_dag(tmp_path, "bad", data_dir, url, CONF | {"path": str(bad_dir)}, spark_connect_server)
    assert state == "failed"
    assert "each line has 4 fields" in log and "u.data line" in log, log[-4000:]
    published = ("recommendations", "items", "model_metrics", "model_registry", *ANALYTICS_TABLES)
    assert checksums(published) == [row for row in before if row[0].rsplit(".", 1)[-1] in published]
    failed = table_rows(
        mariadb_engine,
        "SELECT suite, column_name, severity, unexpected_count FROM data_quality_results"
        " WHERE dataset = 'movielens' AND run_date = :ds AND NOT success".replace(":ds", f"'{DS}'"),
    )
    assert ("movielens_raw_interactions", "_n_fields", "critical", len(rated)) in failed, failed
    # The failure callback recorded the stop in the warehouse run log, with the job's own message.
    ((task_id, state, error_type, error, run_date),) = table_rows(
        mariadb_engine, "SELECT task_id, state, error_type, error, run_date FROM pipeline_run_log"
    )
    assert (task_id, state, error_type, str(run_date)) == (
        "validate_raw_data",
        "failed",
        "ValidationFailed",
        DS,
    )
    assert "u.data line" in error and "each line has 4 fields" in error, error

    # Hostile Params through `make demo`'s script: a dataset name that climbs out of its folder
    # is refused by the trigger form's schema before a run exists, and the script says why.
    env = airflow_env(tmp_path / "airflow-bad", data_dir, url, spark_connect_server) | {
        "CONF": json.dumps({"dataset": "x/../movielens"}),
        "DS": DS,
    }
    demo = subprocess.run(
        [str(ROOT / "scripts" / "demo.sh")], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert demo.returncode == 1
    assert "ParamValidationError: Invalid input for param dataset" in demo.stderr, demo.stdout + demo.stderr
    assert not (data_dir / "lake" / "failures" / "x").exists()
