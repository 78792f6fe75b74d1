from __future__ import annotations

import dataclasses
import datetime
import json

import pyarrow as pa
import pytest
import sqlalchemy as sa

from recflow.warehouse import publish as publish_module
from recflow.warehouse.publish import ANALYTICS, publish

PUBLISHED_TABLES = {
    "schema_migrations",
    "recommendations",
    "items",
    "model_runs",
    "model_metrics",
    "data_quality_results",
    "data_reconciliation",
    "quarantine_summary",
    "model_registry",
    "similar_items",
    "recommendation_rules",
    "recommendation_blocklist",  # edited by operators, never by publish
    "pipeline_run_log",  # the DAGs' failure callbacks; publish marks its attempt there while it runs
    *ANALYTICS,
}
# MySQL only: the writers' locks (recflow.warehouse.engine.named_lock); SQLite locks a file.
LOCK_TABLES = {"mysql": {"recflow_locks"}, "mariadb": {"recflow_locks"}, "sqlite": set()}


def published_tables(engine: sa.Engine) -> set[str]:
    return PUBLISHED_TABLES | LOCK_TABLES[engine.dialect.name]


BOTH_DIALECTS = pytest.mark.parametrize(
    "engine_fixture", [pytest.param("mariadb_engine", marks=pytest.mark.warehouse), "sqlite_engine"]
)


@pytest.fixture
def engine(request, engine_fixture) -> sa.Engine:
    return request.getfixturevalue(engine_fixture)


def rows_where(engine: sa.Engine, table: str, **where) -> list[tuple]:
    """Rows of ``table`` matching ``where``, dates as ISO text so both dialects compare alike."""
    condition = " AND ".join(f"{column} = :{column}" for column in where) or "1 = 1"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {table} WHERE {condition}"), where).all()
    return sorted(tuple(str(v) if isinstance(v, datetime.date) else v for v in row) for row in rows)


def bundle_recommendations(bundle) -> list[tuple]:
    run_date = bundle.run_date.isoformat()
    return sorted(
        (
            bundle.dataset,
            r["user_id"],
            r["item_id"],
            r["rank"],
            r["score"],
            bundle.model_version,
            run_date,
            r["source"],
            r["reason"],
            r["user_tier"],
        )
        for r in bundle.recommendations.to_pylist()
    )


def expected_counts(bundle) -> dict[str, int]:
    return {
        "recommendations": bundle.recommendations.num_rows,
        "items": bundle.items.num_rows,
        "model_runs": 1,
        # overall: als rmse, ndcg@10, precision@10, popularity ndcg@10, precision@10; and per tier
        "model_metrics": 5 + sum(len(v) for models in bundle.tier_metrics.values() for v in models.values()),
        "recommendation_rules": len(bundle.rule_log),
        "similar_items": bundle.similar_items.num_rows if bundle.promote else 0,
        "data_quality_results": 2,
        "data_reconciliation": 1,
        "quarantine_summary": 1,
        "model_registry": 1,
        **{name: table.num_rows for name, table in bundle.analytics.items()},
    }


def checksums(engine: sa.Engine) -> dict[str, int]:
    """CHECKSUM TABLE of every table in the database; a leftover stage table would show up too."""
    tables = sorted(sa.inspect(engine).get_table_names())
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"CHECKSUM TABLE {', '.join(tables)}").all()
    return {name.rsplit(".", 1)[1]: checksum for name, checksum in rows}


@BOTH_DIALECTS
def test_publish_writes_every_table_and_republishing_changes_nothing(
    engine, make_bundle, warehouse_state, sql_root
):
    bundle = make_bundle("A")
    assert publish(engine, bundle, sql_root).rows == expected_counts(bundle)

    assert rows_where(engine, "recommendations") == bundle_recommendations(bundle)
    assert len(rows_where(engine, "items", dataset="A")) == bundle.items.num_rows
    with engine.connect() as conn:
        run = conn.execute(sa.text("SELECT * FROM model_runs")).mappings().one()
        metrics = conn.execute(
            sa.text("SELECT model, metric, k, value FROM model_metrics WHERE user_tier = 'all'")
        ).all()
        quality = conn.execute(
            sa.text("SELECT expectation_key, success, observed_value FROM data_quality_results")
        )
        quality = sorted(tuple(row) for row in quality)
    assert (run["run_id"], run["status"], run["n_recommendations"]) == ("A/2024-05-01", "published", 500)
    assert json.loads(run["params"]) == bundle.params
    assert json.loads(run["metrics"]) == bundle.metrics
    assert sorted(tuple(m) for m in metrics) == [
        ("als", "ndcg", 10, 0.21),
        ("als", "precision", 10, 0.12),
        ("als", "rmse", 0, 0.91),
        ("popularity", "ndcg", 10, 0.1),
        ("popularity", "precision", 10, 0.05),
    ]
    assert quality == [("rating_between_0_5", 1, '{"max": 5.0, "min": 0.5}'), ("row_count", 0, "100000")]

    before = warehouse_state(engine)
    assert publish(engine, bundle, sql_root).rows == expected_counts(bundle)
    assert warehouse_state(engine) == before
    assert set(sa.inspect(engine).get_table_names()) == published_tables(engine)  # no stage table
    indexes = sa.inspect(engine).get_indexes("recommendations")
    assert [(ix["name"], ix["column_names"]) for ix in indexes] == [
        ("ix_recommendations_item", ["dataset", "item_id"])
    ]


@pytest.mark.warehouse
def test_republishing_leaves_identical_table_checksums(mariadb_engine, make_bundle, sql_root):
    bundle = make_bundle("A")
    publish(mariadb_engine, bundle, sql_root)
    before = checksums(mariadb_engine)
    publish(mariadb_engine, bundle, sql_root)
    assert checksums(mariadb_engine) == before
    assert set(before) == published_tables(mariadb_engine)


@BOTH_DIALECTS
def test_datasets_are_replaced_independently(engine, make_bundle, sql_root):
    a_first = make_bundle("A", n_users=60, seed=1)
    b = make_bundle("B", n_users=30, seed=2)
    publish(engine, a_first, sql_root)
    published_a = rows_where(engine, "recommendations", dataset="A")
    assert published_a == bundle_recommendations(a_first)

    publish(engine, b, sql_root)
    assert rows_where(engine, "recommendations", dataset="A") == published_a
    assert rows_where(engine, "recommendations", dataset="B") == bundle_recommendations(b)

    # a smaller, later set for A replaces the whole of A's old set and nothing of B's
    a_next = make_bundle("A", run_date=datetime.date(2024, 5, 2), n_users=20, seed=3, model_version="als-2")
    publish(engine, a_next, sql_root)
    assert rows_where(engine, "recommendations", dataset="A") == bundle_recommendations(a_next)
    assert rows_where(engine, "recommendations", dataset="B") == bundle_recommendations(b)
    titles = {row[2] for row in rows_where(engine, "items", dataset="A")}
    assert all("seed 3" in title for title in titles)
    # run history is kept per day, not replaced
    runs = rows_where(engine, "model_runs")
    assert [(run[0], run[5]) for run in runs] == [
        ("A/2024-05-01", "published"),
        ("A/2024-05-02", "published"),
        ("B/2024-05-01", "published"),
    ]


@BOTH_DIALECTS
@pytest.mark.parametrize("broken", ["empty", "duplicate (user_id, rank)"])
def test_bad_recommendations_are_refused_and_nothing_is_written(
    engine, make_bundle, warehouse_state, sql_root, broken
):
    publish(engine, make_bundle("A"), sql_root)
    before = warehouse_state(engine)
    bad = make_bundle("A", run_date=datetime.date(2024, 5, 2), seed=5)
    recs = bad.recommendations
    if broken == "empty":
        recs = recs.slice(0, 0)
    else:
        recs = recs.set_column(recs.schema.get_field_index("rank"), "rank", pa.array([1] * recs.num_rows))
    with pytest.raises(ValueError, match="empty|repeat a"):
        publish(engine, dataclasses.replace(bad, recommendations=recs), sql_root)
    assert warehouse_state(engine) == before


@BOTH_DIALECTS
def test_a_load_that_dies_midway_changes_nothing_and_a_retry_converges(
    engine, make_bundle, warehouse_state, sql_root, monkeypatch
):
    first = make_bundle("A")
    publish(engine, first, sql_root)
    before = warehouse_state(engine)
    retry = make_bundle("A", run_date=datetime.date(2024, 5, 2), seed=7)

    # The recommendations load dies midway, after part of the rows went in (and after the facts,
    # the snapshots and the similar items of the run were written in the same transaction).
    def fail(connectable, table, columns, rows, *more):
        if table == "recommendations":
            load(connectable, table, columns, rows.slice(0, rows.num_rows // 2), *more)
            raise RuntimeError("connection lost")
        return load(connectable, table, columns, rows, *more)

    load = publish_module.bulk_load
    with monkeypatch.context() as patched:
        patched.setattr(publish_module, "bulk_load", fail)
        with pytest.raises(RuntimeError):
            publish(engine, retry, sql_root)
    # Nothing of the failed attempt is left in any served table: no run row, no new similar
    # items or profiles beside the old recommendations.
    assert warehouse_state(engine) == before
    with engine.connect() as conn:
        (logged,) = conn.execute(sa.text("SELECT task_id, state, error FROM pipeline_run_log")).all()
    assert logged == ("publish_recommendations", "failed", "connection lost")

    publish(engine, retry, sql_root)
    after_retry = warehouse_state(engine)
    assert rows_where(engine, "recommendations") == bundle_recommendations(retry)
    assert [run[5] for run in rows_where(engine, "model_runs")] == ["published", "published"]
    assert set(sa.inspect(engine).get_table_names()) == published_tables(engine)
    publish(engine, retry, sql_root)
    assert warehouse_state(engine) == after_retry
