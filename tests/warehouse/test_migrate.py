from __future__ import annotations

import datetime
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from recflow.warehouse.engine import LOCK_TABLE, dialect_dir, make_engine
from recflow.warehouse.migrate import migrate, migration_files, split_statements
from recflow.warehouse.publish import publish

EXPECTED_COLUMNS = {
    "schema_migrations": ["version", "applied_at"],
    "recommendations": [
        "dataset", "user_id", "item_id", "rank", "score", "model_version", "run_date", "source", "reason",
        "user_tier",
    ],
    "items": ["dataset", "item_id", "title", "genres", "category", "brand", "price"],
    "model_runs": [
        "run_id",
        "dataset",
        "run_date",
        "dag_run_id",
        "model_version",
        "status",
        "params",
        "metrics",
        "task_timings",
        "n_interactions",
        "n_users",
        "n_items",
        "n_recommendations",
    ],
    "model_metrics": ["dataset", "run_date", "model_version", "model", "metric", "k", "value", "user_tier"],
    "data_quality_results": [
        "dataset",
        "run_date",
        "suite",
        "expectation_key",
        "expectation_type",
        "column_name",
        "severity",
        "success",
        "observed_value",
        "unexpected_count",
        "element_count",
    ],
    "data_reconciliation": [
        "dataset",
        "run_date",
        "table_name",
        "raw_rows",
        "clean_rows",
        "quarantined_rows",
        "duplicate_rows",
    ],
    "quarantine_summary": [
        "dataset",
        "run_date",
        "table_name",
        "reason",
        "column_name",
        "rows_quarantined",
        "sample_file",
        "sample_line",
        "sample_row",
    ],
    "model_registry": [
        "dataset",
        "run_date",
        "model_version",
        "decision",
        "forced",
        "primary_metric",
        "challenger_value",
        "champion_version",
        "champion_value",
        "tolerance",
        "reason",
        "params",
        "tuning",
        "data_snapshot",
        "metrics",
        "model_path",
        "is_champion",
    ],
    "users": [
        "dataset", "user_id", "gender", "age", "age_group", "occupation", "zip_code", "first_seen", "last_seen",
        "n_interactions", "run_date",
    ],
    "user_profiles": [
        "dataset", "user_id", "n_interactions", "n_items", "active_days", "activity_level", "top_categories",
        "top_category", "top_category_share", "active_hours", "peak_hour", "active_weekdays", "peak_weekday",
        "avg_rating", "purchases", "revenue", "watch_seconds", "run_date",
    ],
    "popular_items": [
        "dataset", "segment_type", "segment", "rank", "item_id", "n_users", "n_interactions", "avg_rating", "run_date",
    ],
    "similar_items": ["dataset", "item_id", "rank", "similar_item_id", "score", "model_version", "run_date"],
    "daily_kpis": [
        "dataset", "activity_date", "n_interactions", "active_users", "new_users", "active_items", "avg_rating",
        "purchases", "revenue", "watch_seconds", "run_date",
    ],
    "daily_category_activity": [
        "dataset", "activity_date", "category", "n_interactions", "active_users", "revenue", "watch_seconds",
        "run_date",
    ],
    "daily_funnel": ["dataset", "activity_date", "step", "step_name", "n_events", "n_users", "run_date"],
    "hourly_activity": ["dataset", "activity_date", "hour", "n_interactions", "active_users", "run_date"],
    "watch_time_hourly": ["dataset", "activity_date", "item_id", "hour", "watch_seconds", "viewers", "run_date"],
    "recommendation_blocklist": ["dataset", "item_id", "user_id", "reason", "added_by", "added_at"],
    "recommendation_rules": [
        "dataset", "run_date", "model_version", "rule", "enabled", "setting", "items_removed", "users_affected",
    ],
    "pipeline_run_log": [
        "dag_id", "dag_run_id", "task_id", "try_number", "dataset", "run_date", "state", "error_type", "error",
        "log_url", "logged_at",
    ],
}  # fmt: skip
MIGRATIONS = [
    "001_core",
    "002_model_registry",
    "003_recommendation_reasons",
    "004_item_attributes",
    "005_analytics",
    "006_bi_views",
    "007_recommendation_user_tier",
    "008_model_metrics_user_tier",
    "009_recommendation_rules",
    "010_recommendation_views",
    "011_pipeline_run_log",
]
BI_VIEWS = [
    "v_activity_by_hour", "v_blocklist", "v_category_daily", "v_daily_kpis", "v_data_quality", "v_funnel_daily",
    "v_model_performance", "v_model_tier_performance", "v_popular_items", "v_quarantine",
    "v_recommendation_mix", "v_recommendation_rules", "v_similar_items", "v_user_profiles",
    "v_user_recommendations", "v_watch_time_hourly",
]  # fmt: skip
EXPECTED_KEYS = {
    "recommendations": ["dataset", "user_id", "rank"],
    "model_runs": ["run_id"],
    "model_metrics": ["dataset", "run_date", "model", "user_tier", "metric", "k"],
    "model_registry": ["dataset", "run_date"],
    "daily_kpis": ["dataset", "activity_date"],
    "daily_category_activity": ["dataset", "activity_date", "category"],
    "daily_funnel": ["dataset", "activity_date", "step"],
    "hourly_activity": ["dataset", "activity_date", "hour"],
    "watch_time_hourly": ["dataset", "activity_date", "item_id", "hour"],
    "popular_items": ["dataset", "segment_type", "segment", "rank"],
    "users": ["dataset", "user_id"],
    "user_profiles": ["dataset", "user_id"],
    "similar_items": ["dataset", "item_id", "rank"],
    "recommendation_blocklist": ["dataset", "item_id", "user_id"],
    "recommendation_rules": ["dataset", "run_date", "rule"],
    "pipeline_run_log": ["dag_id", "dag_run_id", "task_id", "try_number"],
}


def schema_of(engine: sa.Engine) -> dict[str, list[str]]:
    """The migrated tables' columns. The writers' lock table is left out: migrate itself needs it
    before any migration runs (recflow.warehouse.engine.named_lock creates it)."""
    inspector = sa.inspect(engine)
    return {
        table: [column["name"] for column in inspector.get_columns(table)]
        for table in inspector.get_table_names()
        if table != LOCK_TABLE
    }


def assert_migrates_once(engine: sa.Engine, sql_root) -> None:
    assert migrate(engine, sql_root) == MIGRATIONS
    assert migrate(engine, sql_root) == []
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version FROM schema_migrations ORDER BY version"))
        assert versions.scalars().all() == MIGRATIONS
    assert schema_of(engine) == EXPECTED_COLUMNS
    assert sorted(sa.inspect(engine).get_view_names()) == BI_VIEWS
    inspector = sa.inspect(engine)
    for table, key in EXPECTED_KEYS.items():
        assert inspector.get_pk_constraint(table)["constrained_columns"] == key
    assert {tuple(ix["column_names"]) for ix in inspector.get_indexes("recommendations")} == {
        ("dataset", "item_id")
    }
    assert {tuple(ix["column_names"]) for ix in inspector.get_indexes("model_registry")} == {
        ("dataset", "is_champion")
    }


@pytest.mark.warehouse
def test_migrate_mariadb_applies_once(mariadb_engine, sql_root):
    assert_migrates_once(mariadb_engine, sql_root)
    with mariadb_engine.connect() as conn:
        charsets = conn.execute(
            sa.text(
                "SELECT DISTINCT engine, table_collation FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
            )
        ).all()
    assert charsets == [("InnoDB", "utf8mb4_bin")]


def test_migrate_sqlite_applies_once(sqlite_engine, sql_root):
    assert_migrates_once(sqlite_engine, sql_root)


@pytest.mark.warehouse
def test_dialect_files_declare_the_same_columns(mariadb_engine, sqlite_engine, sql_root):
    migrate(mariadb_engine, sql_root)
    migrate(sqlite_engine, sql_root)
    assert schema_of(mariadb_engine) == schema_of(sqlite_engine)
    assert views_of(mariadb_engine) == views_of(sqlite_engine)


def views_of(engine: sa.Engine) -> dict[str, list[str]]:
    inspector = sa.inspect(engine)
    return {
        view: [column["name"] for column in inspector.get_columns(view)]
        for view in inspector.get_view_names()
    }


@pytest.mark.warehouse
def test_concurrent_migrations_apply_each_file_once(mariadb_engine, sql_root):
    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(migrate(mariadb_engine, sql_root))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [[], MIGRATIONS]


def test_migrate_sqlite_file_is_atomic(tmp_path):
    """A failing statement leaves neither earlier tables of the file nor a schema_migrations row."""
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "sqlite" / "001_core.sql").write_text(
        "CREATE TABLE schema_migrations (version VARCHAR(64) PRIMARY KEY);\n"
        "CREATE TABLE kept_only_if_the_file_succeeds (x INT);\n"
        "CREATE TABLE broken (;\n"
    )
    engine = make_engine(None, tmp_path / "wh.db")
    with pytest.raises(sa.exc.OperationalError):
        migrate(engine, tmp_path)
    assert sa.inspect(engine).get_table_names() == []


def test_split_statements_ignores_comments_and_quoted_semicolons():
    sql = """
    -- header; with a semicolon and a 'quote
    CREATE TABLE a (x VARCHAR(8) DEFAULT 'a;b', `y;z` INT); /* block; comment */
    CREATE TABLE b (s VARCHAR(8) DEFAULT 'it''s; \\' ok;');
    """
    assert split_statements(sql, "mysql") == [
        "CREATE TABLE a (x VARCHAR(8) DEFAULT 'a;b', `y;z` INT)",
        "CREATE TABLE b (s VARCHAR(8) DEFAULT 'it''s; \\' ok;')",
    ]
    # SQLite has no backslash escapes: the quote after the backslash closes the string
    assert split_statements("SELECT 'a\\'; SELECT 2", "sqlite") == ["SELECT 'a\\'", "SELECT 2"]


def test_dialect_dir():
    assert dialect_dir(sa.create_engine("sqlite://")) == "sqlite"
    assert dialect_dir(sa.create_engine("mysql+pymysql://u@h/db")) == "mysql"
    assert dialect_dir(sa.create_engine("mariadb+pymysql://u@h/db")) == "mysql"
    with pytest.raises(ValueError, match="unsupported warehouse dialect 'postgresql'"):
        dialect_dir(SimpleNamespace(dialect=SimpleNamespace(name="postgresql")))


def test_the_runs_migration_step_brings_the_embedded_warehouse_up_to_date(settings_factory):
    import dataclasses

    from recflow.publish_run import migrate_warehouse

    # the embedded warehouse even where RECFLOW_WAREHOUSE_URL names a server
    settings = dataclasses.replace(settings_factory(), warehouse_url=None)
    assert migrate_warehouse(settings)["applied"] == MIGRATIONS
    assert migrate_warehouse(settings)["applied"] == []
    assert settings.sqlite_path.is_file()


# --- upgrading a warehouse that holds data ---------------------------------------------------

BOTH_DIALECTS = pytest.mark.parametrize(
    "engine_fixture", [pytest.param("mariadb_engine", marks=pytest.mark.warehouse), "sqlite_engine"]
)
BEFORE_TIERS = "006_bi_views"  # the last migration before user tiers, rules and the blocklist
OLD_DAY = datetime.date(2024, 4, 30)
OLD_METRICS = [("als", "ndcg", 10, 0.21), ("als", "rmse", 0, 0.93), ("popularity", "ndcg", 10, 0.1)]


def migrations_up_to(sql_root: Path, last: str, into: Path) -> Path:
    """A copy of sql_root holding the migration files up to ``last`` only, for both dialects."""
    for dialect in ("mysql", "sqlite"):
        (into / dialect).mkdir(parents=True)
        for path in migration_files(sql_root / dialect):
            if path.stem <= last:
                shutil.copy(path, into / dialect / path.name)
    return into


def insert(conn: sa.Connection, table: str, **row) -> None:
    quote = conn.dialect.identifier_preparer.quote_identifier
    columns = ", ".join(quote(column) for column in row)
    conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(f':{c}' for c in row)})"), row)


def plain(rows) -> list[tuple]:
    """Rows as tuples with dates as ISO text and 0/1 flags as ints, so both dialects compare alike."""
    return sorted(
        tuple(str(v) if isinstance(v, datetime.date) else int(v) if isinstance(v, bool) else v for v in row)
        for row in rows
    )


@BOTH_DIALECTS
def test_a_warehouse_of_006_with_data_migrates_and_keeps_its_rows(
    request, engine_fixture, sql_root, tmp_path, make_bundle, metric_rows
):
    engine = request.getfixturevalue(engine_fixture)
    old_root = migrations_up_to(sql_root, BEFORE_TIERS, tmp_path / "sql_006")
    assert migrate(engine, old_root) == MIGRATIONS[: MIGRATIONS.index(BEFORE_TIERS) + 1]
    run = {"dataset": "A", "run_date": OLD_DAY}
    with engine.begin() as conn:
        for model, metric, k, value in OLD_METRICS:
            insert(
                conn,
                "model_metrics",
                **run,
                model_version="als-0",
                model=model,
                metric=metric,
                k=k,
                value=value,
            )
        for rank, item in enumerate(["i1", "i2"], start=1):
            insert(conn, "recommendations", **run, user_id="u1", item_id=item, rank=rank, score=1.0 / rank,
                   model_version="als-0", source="als", reason="liked by people like you")  # fmt: skip
        insert(conn, "model_runs", **run, run_id="A/2024-04-30", dag_run_id="manual__0", model_version="als-0",
               status="published", params="{}", metrics="{}", task_timings="{}", n_interactions=9, n_users=1,
               n_items=2, n_recommendations=2)  # fmt: skip
        insert(conn, "model_registry", **run, model_version="als-0", decision="promoted", forced=False,
               primary_metric="ndcg@10", challenger_value=0.21, tolerance=0.01, reason="promoted: first model",
               params="{}", tuning="{}", data_snapshot="{}", metrics="{}", model_path="file:/m",
               is_champion=True)  # fmt: skip
    with engine.connect() as conn:
        performance = conn.execute(sa.text("SELECT * FROM v_model_performance")).all()
        served = conn.execute(sa.text("SELECT * FROM v_user_recommendations")).all()

    assert migrate(engine, sql_root) == MIGRATIONS[MIGRATIONS.index(BEFORE_TIERS) + 1 :]
    assert schema_of(engine) == EXPECTED_COLUMNS
    assert (
        sa.inspect(engine).get_pk_constraint("model_metrics")["constrained_columns"]
        == (EXPECTED_KEYS["model_metrics"])
    )
    with engine.connect() as conn:
        metrics = conn.execute(
            sa.text("SELECT model_version, model, user_tier, metric, k, value FROM model_metrics")
        ).all()
        tiers = conn.execute(sa.text("SELECT item_id, user_tier FROM recommendations")).all()
        # The views keep their rows and columns, with user_tier appended.
        assert plain(conn.execute(sa.text("SELECT * FROM v_model_performance"))) == plain(
            (*row, "all") for row in performance
        )
        assert plain(conn.execute(sa.text("SELECT * FROM v_user_recommendations"))) == plain(
            (*row, "warm") for row in served
        )
    assert sorted(metrics) == sorted(("als-0", m, "all", metric, k, v) for m, metric, k, v in OLD_METRICS)
    assert sorted(tiers) == [("i1", "warm"), ("i2", "warm")]

    # A publish on the upgraded warehouse replaces the old run's metrics with overall and tier rows.
    bundle = make_bundle("A", run_date=OLD_DAY, model_version="als-1")
    assert publish(engine, bundle, sql_root).rows["model_metrics"] == metric_rows(bundle)
    with engine.connect() as conn:
        by_tier = conn.execute(
            sa.text("SELECT user_tier, COUNT(*) FROM model_metrics GROUP BY user_tier ORDER BY user_tier")
        ).all()
    assert [tuple(row) for row in by_tier] == [("all", 5), ("cold", 6), ("warm", 3)]
