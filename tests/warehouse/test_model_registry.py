"""The model registry and the champion/challenger gate of publish(): every run is recorded, only a
promoted one replaces the dataset's recommendations and becomes its champion."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pytest
import sqlalchemy as sa

from recflow.warehouse.publish import ANALYTICS, REGISTRY_KEYS, publish

BOTH_DIALECTS = pytest.mark.parametrize(
    "engine_fixture", [pytest.param("mariadb_engine", marks=pytest.mark.warehouse), "sqlite_engine"]
)
DAY1, DAY2, DAY3 = (datetime.date(2024, 5, day) for day in (1, 2, 3))
JSON_COLUMNS = ("params", "tuning", "data_snapshot", "metrics")


@pytest.fixture
def engine(request, engine_fixture) -> sa.Engine:
    return request.getfixturevalue(engine_fixture)


def registry(engine: sa.Engine, dataset: str = "A") -> dict[str, dict]:
    """The dataset's model_registry rows by ISO run_date; JSON decoded, booleans as bool."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM model_registry WHERE dataset = :dataset"), {"dataset": dataset}
        ).mappings()
        rows = [dict(row) for row in rows]
    for row in rows:
        row["run_date"] = str(row["run_date"])
        row.update({key: json.loads(row[key]) for key in JSON_COLUMNS})
        row.update({key: bool(row[key]) for key in ("forced", "is_champion")})
    return {row["run_date"]: row for row in rows}


def champions(engine: sa.Engine, dataset: str = "A") -> list[str]:
    return sorted(day for day, row in registry(engine, dataset).items() if row["is_champion"])


def statuses(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT run_id, status FROM model_runs")).all())


def metric_history(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT run_date, model_version, model, metric, k FROM model_metrics WHERE user_tier = 'all'"
            )
        )
        return sorted((str(row[0]), *row[1:]) for row in rows)


def checksum(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"CHECKSUM TABLE {table}").one()[1]


def rejected(make_bundle, run_date=DAY2, seed=2, model_version="als-2"):
    """A challenger whose gate lost against the first run's als-1."""
    return make_bundle(
        "A",
        run_date=run_date,
        seed=seed,
        model_version=model_version,
        promote=False,
        champion=("als-1", 0.25),
    )


@BOTH_DIALECTS
def test_promoted_run_records_its_registry_row_and_becomes_the_champion(
    engine, make_bundle, table_rows, sql_root
):
    bundle = make_bundle("A", run_date=DAY1)
    written = publish(engine, bundle, sql_root)
    assert written.rows["model_registry"] == 1
    assert written.rows["recommendations"] == bundle.recommendations.num_rows

    (row,) = registry(engine).values()
    assert row == {**bundle.registry, "dataset": "A", "run_date": "2024-05-01", "is_champion": True}
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT params, metrics FROM model_registry")).one()
    assert raw == (
        '{"max_iter": 10, "rank": 16, "reg_param": 0.1, "seed": 0}',
        json.dumps(bundle.metrics, sort_keys=True),
    )  # stable JSON, so a re-publish writes the same bytes
    assert statuses(engine) == {"A/2024-05-01": "published"}
    assert champions(engine) == ["2024-05-01"]
    # a second dataset has a champion of its own
    publish(engine, make_bundle("B", run_date=DAY2, seed=4), sql_root)
    assert champions(engine, "A") == ["2024-05-01"]
    assert champions(engine, "B") == ["2024-05-02"]


@BOTH_DIALECTS
def test_rejected_run_is_recorded_but_the_champion_keeps_serving(
    engine, make_bundle, table_rows, warehouse_state, sql_root, metric_rows
):
    champion = make_bundle("A", run_date=DAY1)
    publish(engine, champion, sql_root)
    served = table_rows(engine, "recommendations")
    crc = checksum(engine, "recommendations") if engine.dialect.name != "sqlite" else None

    challenger = rejected(make_bundle)
    written = publish(engine, challenger, sql_root)
    assert written.rows == {
        "items": challenger.items.num_rows,
        "model_runs": 1,
        "model_metrics": metric_rows(challenger),
        "data_quality_results": 2,
        "data_reconciliation": 1,
        "quarantine_summary": 1,
        "model_registry": 1,
        "recommendation_rules": 4,
        "recommendations": 0,
        "similar_items": 0,
        **{name: table.num_rows for name, table in challenger.analytics.items()},
    }
    assert table_rows(engine, "recommendations") == served
    if crc is not None:
        assert checksum(engine, "recommendations") == crc

    rows = registry(engine)
    assert rows["2024-05-02"]["decision"] == "rejected"
    assert rows["2024-05-02"]["reason"] == "rejected: als-2 has ndcg@10 0.21 against als-1's 0.25"
    assert (rows["2024-05-02"]["champion_version"], rows["2024-05-02"]["champion_value"]) == ("als-1", 0.25)
    assert champions(engine) == ["2024-05-01"]
    assert statuses(engine) == {"A/2024-05-01": "published", "A/2024-05-02": "rejected"}
    # the metric history keeps every model of both runs, promoted or not
    assert metric_history(engine) == sorted(
        (day, version, model, metric, k)
        for day, version in (("2024-05-01", "als-1"), ("2024-05-02", "als-2"))
        for model, metric, k in (
            ("als", "ndcg", 10),
            ("als", "precision", 10),
            ("als", "rmse", 0),
            ("popularity", "ndcg", 10),
            ("popularity", "precision", 10),
        )
    )

    # re-publishing the rejected run (an Airflow retry) changes nothing and demotes no one
    after = warehouse_state(engine)
    assert publish(engine, challenger, sql_root) == written
    assert warehouse_state(engine) == after
    if crc is not None:
        assert checksum(engine, "recommendations") == crc


@pytest.mark.warehouse
def test_republishing_a_rejected_run_leaves_identical_checksums(mariadb_engine, make_bundle, sql_root):
    publish(mariadb_engine, make_bundle("A", run_date=DAY1), sql_root)
    challenger = rejected(make_bundle)
    publish(mariadb_engine, challenger, sql_root)
    tables = sorted(sa.inspect(mariadb_engine).get_table_names())
    with mariadb_engine.connect() as conn:
        before = conn.exec_driver_sql(f"CHECKSUM TABLE {', '.join(tables)}").all()
    publish(mariadb_engine, challenger, sql_root)
    with mariadb_engine.connect() as conn:
        assert conn.exec_driver_sql(f"CHECKSUM TABLE {', '.join(tables)}").all() == before
    assert "model_registry" in tables


@BOTH_DIALECTS
def test_a_later_promoted_run_takes_over_as_champion(
    engine, make_bundle, table_rows, warehouse_state, sql_root
):
    publish(engine, make_bundle("A", run_date=DAY1), sql_root)
    publish(engine, rejected(make_bundle), sql_root)
    winner = make_bundle("A", run_date=DAY3, seed=3, model_version="als-3", champion=("als-1", 0.2))
    assert publish(engine, winner, sql_root).rows["recommendations"] == winner.recommendations.num_rows

    assert champions(engine) == ["2024-05-03"]
    assert {day: row["decision"] for day, row in registry(engine).items()} == {
        "2024-05-01": "promoted",
        "2024-05-02": "rejected",
        "2024-05-03": "promoted",
    }
    with engine.connect() as conn:
        served = conn.execute(sa.text("SELECT DISTINCT model_version, run_date FROM recommendations")).all()
    assert [(version, str(day)) for version, day in served] == [("als-3", "2024-05-03")]
    assert statuses(engine) == {
        "A/2024-05-01": "published",
        "A/2024-05-02": "rejected",
        "A/2024-05-03": "published",
    }

    # re-publishing the new champion keeps it the only one, byte for byte
    after = warehouse_state(engine)
    publish(engine, winner, sql_root)
    assert warehouse_state(engine) == after
    # a rejected re-run of an older day does not demote it; only what describes the data (the
    # catalogue and the analytics: always the last published run's) changes
    publish(engine, rejected(make_bundle), sql_root)
    data_tables = {table: None for table in ("items", *ANALYTICS)}
    assert {**warehouse_state(engine), **data_tables} == {**after, **data_tables}


@BOTH_DIALECTS
def test_a_rejected_first_run_publishes_no_recommendations(engine, make_bundle, table_rows, sql_root):
    bundle = make_bundle("A", run_date=DAY1, promote=False, champion=("als-0", 0.3))
    assert publish(engine, bundle, sql_root).rows["recommendations"] == 0
    assert table_rows(engine, "recommendations") == []
    assert champions(engine) == []
    assert statuses(engine) == {"A/2024-05-01": "rejected"}


@BOTH_DIALECTS
def test_a_rejected_rerun_of_the_champions_day_is_refused(engine, make_bundle, warehouse_state, sql_root):
    """Its row describes the model being served: a losing re-run may not overwrite it."""
    publish(engine, make_bundle("A", run_date=DAY1), sql_root)
    before = warehouse_state(engine)
    rerun = make_bundle("A", run_date=DAY1, seed=9, promote=False, champion=("als-1", 0.25))
    with pytest.raises(ValueError, match="is the champion of A"):
        publish(engine, rerun, sql_root)
    assert warehouse_state(engine) == before


def _without_model_path(registry: dict) -> dict:
    return {key: value for key, value in registry.items() if key != "model_path"}


BAD_REGISTRIES = {
    "missing key": (lambda b: {"registry": _without_model_path(b.registry)}, "has keys"),
    "extra key": (lambda b: {"registry": {**b.registry, "published_at": "now"}}, "has keys"),
    "unknown decision": (lambda b: {"registry": {**b.registry, "decision": "maybe"}}, "not one of"),
    "decision contradicts promote": (lambda b: {"promote": False}, "contradicts promote=False"),
    "other model_version": (
        lambda b: {"registry": {**b.registry, "model_version": "als-9"}},
        "not the run's",
    ),
    "forced not a bool": (lambda b: {"registry": {**b.registry, "forced": "no"}}, "forced is"),
    "NaN challenger_value": (
        lambda b: {"registry": {**b.registry, "challenger_value": float("nan")}},
        "expected a finite number",
    ),
    "NaN inside metrics": (
        lambda b: {"registry": {**b.registry, "metrics": {"als": {"rmse": float("nan")}}}},
        "not valid JSON",
    ),
    "params not a dict": (lambda b: {"registry": {**b.registry, "params": [1, 2]}}, "expected a dict"),
}


@BOTH_DIALECTS
@pytest.mark.parametrize("broken", sorted(BAD_REGISTRIES))
def test_a_bad_registry_row_writes_nothing(engine, make_bundle, warehouse_state, sql_root, broken):
    publish(engine, make_bundle("A", run_date=DAY1), sql_root)
    before = warehouse_state(engine)
    change, message = BAD_REGISTRIES[broken]
    good = make_bundle("A", run_date=DAY2, seed=5, model_version="als-2", champion=("als-1", 0.2))
    with pytest.raises(ValueError, match=message):
        publish(engine, dataclasses.replace(good, **change(good)), sql_root)
    assert warehouse_state(engine) == before


def test_registry_keys_are_the_documented_ones():
    assert sorted(REGISTRY_KEYS) == sorted(
        [
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
        ]
    )
