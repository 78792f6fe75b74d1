"""Runs published out of date order (a backfill, a re-run of an old date) leave one consistent
served set; the served-set check that the BI refresh DAG runs; the run log; the BI extracts."""

from __future__ import annotations

import dataclasses
import datetime
import json

import pyarrow as pa
import pytest
import sqlalchemy as sa

from recflow.warehouse.checks import InconsistentPublishedSet, check_served_set, served_set
from recflow.warehouse.extracts import refresh_extracts
from recflow.warehouse.publish import publish
from recflow.warehouse.run_log import TaskAttempt, read_attempts, record_attempt

BOTH_DIALECTS = pytest.mark.parametrize(
    "engine_fixture", [pytest.param("mariadb_engine", marks=pytest.mark.warehouse), "sqlite_engine"]
)
D1, D2, D3 = (datetime.date(2024, 5, day) for day in (1, 2, 3))
SERVED_TABLES = ("recommendations", "similar_items", "users", "user_profiles", "popular_items", "items")


@pytest.fixture
def engine(request, engine_fixture) -> sa.Engine:
    return request.getfixturevalue(engine_fixture)


def run(make_bundle, day: datetime.date, promote: bool = True, **more):
    """A bundle for ``day`` whose users each get distinct items (the check rejects repeats)."""
    bundle = make_bundle(
        run_date=day, seed=day.day, model_version=f"als-{day.isoformat()}", promote=promote, **more
    )
    recs = bundle.recommendations
    k = max(recs.column("rank").to_pylist())
    distinct = [f"i{(day.day * 7 + n % k) % 200}" for n in range(recs.num_rows)]
    return dataclasses.replace(bundle, recommendations=recs.set_column(1, "item_id", pa.array(distinct)))


def served(engine: sa.Engine, table_rows) -> dict[str, list[tuple]]:
    return {table: table_rows(engine, table) for table in SERVED_TABLES}


def statuses(engine: sa.Engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.run_date, r.status, g.is_champion FROM model_runs r"
                " JOIN model_registry g ON g.dataset = r.dataset AND g.run_date = r.run_date"
            )
        ).all()
    return {str(d): (status, bool(champion)) for d, status, champion in rows}


@BOTH_DIALECTS
def test_a_late_run_records_its_facts_and_leaves_the_newest_run_served(
    engine, make_bundle, sql_root, table_rows
):
    publish(engine, run(make_bundle, D2), sql_root)
    newest = served(engine, table_rows)
    written = publish(engine, run(make_bundle, D1), sql_root)  # the backfill reaches an older day

    assert (written.late_after, written.status) == (D2.isoformat(), "superseded")
    assert (
        written.rows["recommendations"] == written.rows["similar_items"] == written.rows["popular_items"] == 0
    )
    assert served(engine, table_rows) == newest
    assert statuses(engine) == {"2024-05-01": ("superseded", False), "2024-05-02": ("published", True)}
    # The late run's own facts are kept: its metrics are history the dashboards chart.
    assert table_rows(engine, "model_metrics", "WHERE run_date = '2024-05-01'")
    found = check_served_set(engine, "A")
    assert found["served_run"] == found["champion"] == ("2024-05-02", "als-2024-05-02")
    assert found["newest_run"] == "2024-05-02"

    # The next day in order is served; re-running an old day changes nothing that is served.
    publish(engine, run(make_bundle, D3), sql_root)
    latest = served(engine, table_rows)
    for day in (D1, D2):
        publish(engine, run(make_bundle, day), sql_root)
    assert served(engine, table_rows) == latest
    assert statuses(engine) == {
        "2024-05-01": ("superseded", False),
        "2024-05-02": ("superseded", False),
        "2024-05-03": ("published", True),
    }
    assert check_served_set(engine, "A")["served_run"] == ("2024-05-03", "als-2024-05-03")


@BOTH_DIALECTS
def test_a_late_rerun_of_the_champion_stays_the_champion(engine, make_bundle, sql_root):
    """Newer runs were all rejected: the old champion is still served, and re-running its day
    must not leave the dataset without a champion."""
    publish(engine, run(make_bundle, D1), sql_root)
    publish(engine, run(make_bundle, D2, promote=False, champion=("als-2024-05-01", 0.2)), sql_root)
    assert publish(engine, run(make_bundle, D1), sql_root).status == "published"
    assert statuses(engine) == {"2024-05-01": ("published", True), "2024-05-02": ("rejected", False)}
    found = check_served_set(engine, "A")
    assert found["served_run"] == ("2024-05-01", "als-2024-05-01")


@BOTH_DIALECTS
def test_the_check_names_each_inconsistency(engine, make_bundle, sql_root):
    publish(engine, run(make_bundle, D1), sql_root)
    publish(engine, run(make_bundle, D2), sql_root)
    assert served_set(engine, "A")["problems"] == []
    rank = engine.dialect.identifier_preparer.quote("rank")
    with engine.begin() as conn:
        # a served row from another run, a repeated item, an old snapshot row, no champion
        for sql in (
            f"UPDATE recommendations SET run_date = '2024-05-01' WHERE user_id = 'u1' AND {rank} = 1",
            f"UPDATE recommendations SET item_id = 'i999' WHERE user_id = 'u2' AND {rank} IN (1, 2)",
            f"UPDATE popular_items SET run_date = '2024-05-01' WHERE {rank} = 1",
            "UPDATE model_registry SET is_champion = 0",
        ):
            conn.execute(sa.text(sql))
    problems = served_set(engine, "A")["problems"]
    assert len(problems) == 4, problems
    assert problems[0].startswith("recommendations come from 2 runs")
    assert problems[1] == "1 (user, item) pairs are recommended twice"
    assert problems[2].startswith("0 champions")
    assert problems[3].startswith("popular_items holds run dates ['2024-05-01', '2024-05-02']")
    with pytest.raises(InconsistentPublishedSet, match="A: recommendations come from 2 runs"):
        check_served_set(engine, "A")
    assert served_set(engine, "B")["problems"] == [
        "no recommendations are served",
        "0 champions in model_registry: []",
    ]


def attempt(try_number: int = 1, **more) -> TaskAttempt:
    return TaskAttempt(
        **{
            "dag_id": "recommendations_daily",
            "dag_run_id": "manual__2024-05-01T00:00:00+00:00",
            "task_id": "validate_raw_data",
            "try_number": try_number,
            "state": "failed",
            "dataset": "movielens",
            "run_date": D1,
            "error_type": "ValidationFailed",
            "error": "u.data line 3, column rating: 'x' is not a number",
            "log_url": "http://localhost:8080/dags/recommendations_daily/runs/x",
            "logged_at": datetime.datetime(2024, 5, 1, 6, 30, 15, 123456, tzinfo=datetime.UTC),
        }
        | more
    )


@BOTH_DIALECTS
def test_the_run_log_keeps_one_row_per_attempt(engine, sql_root):
    record_attempt(engine, attempt(1, state="up_for_retry", error="first"), sql_root)
    record_attempt(engine, attempt(2), sql_root)
    record_attempt(engine, attempt(2, error="x" * 20_000), sql_root)  # the same attempt again
    rows = read_attempts(engine, "manual__2024-05-01T00:00:00+00:00")
    assert [(r["try_number"], r["state"]) for r in rows] == [(1, "up_for_retry"), (2, "failed")]
    assert rows[0]["error"] == "first"
    assert len(rows[1]["error"]) == 16_000 and rows[1]["error"].endswith("…")
    assert str(rows[1]["run_date"]) == "2024-05-01"
    assert str(rows[1]["logged_at"]) == "2024-05-01 06:30:15"
    with pytest.raises(ValueError, match="state 'running'"):
        record_attempt(engine, attempt(3, state="running"), sql_root)


@BOTH_DIALECTS
def test_bi_extracts_hold_each_views_rows_of_the_dataset(engine, make_bundle, sql_root, tmp_path):
    publish(engine, run(make_bundle, D1), sql_root)
    publish(engine, dataclasses.replace(run(make_bundle, D1), dataset="B"), sql_root)
    manifest = refresh_extracts(engine, "A", tmp_path, served=check_served_set(engine, "A"))
    views = sorted(v for v in sa.inspect(engine).get_view_names() if v.startswith("v_"))
    assert sorted(manifest["rows"]) == views
    with engine.connect() as conn:
        for view in views:
            expected = conn.execute(sa.text(f"SELECT COUNT(*) FROM {view} WHERE dataset = 'A'")).scalar_one()
            lines = (tmp_path / "A" / f"{view}.csv").read_text().splitlines()
            assert manifest["rows"][view] == expected == len(lines) - 1, view
    assert manifest["rows"]["v_user_recommendations"] == 500
    on_disk = json.loads((tmp_path / "A" / "manifest.json").read_text())
    assert on_disk["served"]["served_run"] == ["2024-05-01", "als-2024-05-01"]
    assert not list(tmp_path.rglob("*.partial"))
