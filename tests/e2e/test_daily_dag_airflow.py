"""recommendations_daily end to end with real Airflow (`airflow dags test`), real spark-submit in
local mode and the real MariaDB, on a small generated sample."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from recflow.publish_run import SQL_ROOT
from recflow.warehouse.blocklist import block_item
from recflow.warehouse.migrate import migrate

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DS = "2024-03-01"
CONF = {"sample_users": 150, "sample_items": 120, "top_k": 5, "max_iter": 5, "rank": 10, "tuning_trials": 1}
SPARK_TASKS = [
    "ingest_raw_files", "validate_raw_data", "clean_interactions", "validate_clean_data",
    "train_als", "evaluate_models", "generate_recommendations", "build_analytics",
]  # fmt: skip
# The analytics tables a run publishes (the BI views read them).
BLOCKED = "1"
ANALYTICS_TABLES = (
    "users", "user_profiles", "popular_items", "daily_kpis", "daily_category_activity", "daily_funnel",
    "hourly_activity",
)  # fmt: skip


def airflow_env(home: Path, data_dir: Path, warehouse_url: str) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return dict(
        os.environ,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": "local[2]"}),
        RECFLOW_DATA_DIR=str(data_dir),
        RECFLOW_WAREHOUSE_URL=warehouse_url,
        RECFLOW_TASK_RETRIES="0",
        RECFLOW_SHUFFLE_PARTITIONS="2",
        PYSPARK_PYTHON=sys.executable,
        PATH=f"{venv_bin}:{os.environ['PATH']}",
    )


def run_dag(tmp_path: Path, name: str, data_dir: Path, warehouse_url: str, conf: dict) -> tuple[str, str]:
    """One `airflow dags test` run in its own metadata database; returns (final state, log)."""
    home = tmp_path / f"airflow-{name}"
    env = airflow_env(home, data_dir, warehouse_url)
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    done = subprocess.run(
        ["airflow", "dags", "test", "recommendations_daily", DS, "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
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


def test_daily_dag_publishes_idempotently_and_bad_input_publishes_nothing(mariadb_engine, tmp_path):
    url = mariadb_engine.url.render_as_string(hide_password=False)
    data_dir = tmp_path / "data"
    # A blocked item: the run's export_blocklist task hands it to the recommend job.
    migrate(mariadb_engine, SQL_ROOT)
    block_item(mariadb_engine, "movielens", BLOCKED, "licence expired")

    state, log = run_dag(tmp_path, "first", data_dir, url, CONF)
    assert state == "success", log[-4000:]

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
    # The same logical date again (a fresh Airflow metadata DB, the same lake and warehouse):
    # the published tables are identical, with no duplicates.
    state, log = run_dag(tmp_path, "rerun", data_dir, url, CONF)
    assert state == "success", log[-4000:]
    assert checksums() == before

    # A file with the wrong delimiter stops the run at validation: no recommendations, items or
    # metrics are published and the last good ones stay; the failed expectations are recorded.
    bad_dir = tmp_path / "bad"
    shutil.copytree(sample_dir, bad_dir)
    (bad_dir / "u.data").write_text((sample_dir / "u.data").read_text().replace("\t", ","))
    state, log = run_dag(tmp_path, "bad", data_dir, url, CONF | {"path": str(bad_dir)})
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


def test_an_ecommerce_file_publishes_in_the_shops_own_ids(mariadb_engine, tmp_path):
    """A user's REES46 file given by path, through the whole DAG. (TV publishes through the same
    code; tests/unit/test_pipeline_sources.py publishes it into MariaDB in-process.)"""
    from recflow.generate.ecommerce import generate_ecommerce

    url = mariadb_engine.url.render_as_string(hide_password=False)
    data_dir = tmp_path / "data"
    generate_ecommerce(tmp_path / "shop", n_users=150, n_items=120, seed=5)
    (events_file,) = (tmp_path / "shop").glob("*.csv")
    lines = events_file.read_text().splitlines()[1:]
    touched = {(f.split(",")[7], f.split(",")[2]) for f in lines}
    conf = CONF | {"source": "ecommerce", "path": str(events_file), "dataset": "shop"}
    state, log = run_dag(tmp_path, "shop", data_dir, url, conf)
    assert state == "success", log[-4000:]
    recs = table_rows(mariadb_engine, "SELECT user_id, item_id FROM recommendations WHERE dataset = 'shop'")
    assert {u for u, _ in recs} == {u for u, _ in touched}
    assert not set(recs) & touched
    assert {i for _, i in recs} <= {i for _, i in touched}
    (reconciled,) = table_rows(
        mariadb_engine,
        "SELECT raw_rows, clean_rows, quarantined_rows, duplicate_rows FROM data_reconciliation"
        " WHERE dataset = 'shop'",
    )
    assert reconciled == (len(lines), len(lines), 0, 0)
    (metrics,) = table_rows(mariadb_engine, "SELECT metrics FROM model_runs WHERE dataset = 'shop'")
    metrics = json.loads(metrics[0])
    ranking = {f"{m}@5" for m in ("precision", "recall", "f1", "ndcg", "map", "hit_rate", "mrr",
                                  "coverage", "long_tail_share")}  # fmt: skip
    assert set(metrics["als"]) == ranking  # clicks: no RMSE
    assert metrics["als"]["ndcg@5"] > metrics["popularity"]["ndcg@5"]

    assert table_rows(mariadb_engine, "SELECT COUNT(DISTINCT dataset) FROM recommendations") == [(1,)]
    # The shop's funnel and revenue reach the BI views.
    steps = table_rows(mariadb_engine, "SELECT DISTINCT step, step_name FROM v_funnel_daily ORDER BY step")
    assert steps == [(1, "view"), (2, "cart"), (3, "purchase")]
    purchases = [line for line in lines if ",purchase," in line]
    (revenue,) = table_rows(mariadb_engine, "SELECT SUM(revenue) FROM v_daily_kpis WHERE dataset = 'shop'")[0]
    assert float(revenue) == pytest.approx(sum(float(line.split(",")[6]) for line in purchases))
