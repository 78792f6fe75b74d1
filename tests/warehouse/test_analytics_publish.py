"""Analytics in the warehouse: snapshots replaced per dataset, daily aggregates upserted by
(dataset, day, key), the BI views over them, and bad analytics refused before anything is written."""

from __future__ import annotations

import dataclasses
import datetime
import decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa

from recflow.warehouse.blocklist import block_item
from recflow.warehouse.publish import ANALYTICS, publish

BOTH_DIALECTS = pytest.mark.parametrize(
    "engine_fixture", [pytest.param("mariadb_engine", marks=pytest.mark.warehouse), "sqlite_engine"]
)
DAY1, DAY2 = datetime.date(2024, 5, 1), datetime.date(2024, 5, 2)
REQUIRED_VIEWS = (
    "v_user_recommendations", "v_daily_kpis", "v_funnel_daily", "v_popular_items", "v_model_performance",
    "v_data_quality",
)  # fmt: skip


@pytest.fixture
def engine(request, engine_fixture) -> sa.Engine:
    return request.getfixturevalue(engine_fixture)


def query(engine: sa.Engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).all()
    return [tuple(str(v) if isinstance(v, datetime.date) else v for v in row) for row in rows]


def with_analytics(bundle, **tables):
    return dataclasses.replace(bundle, analytics={**bundle.analytics, **tables})


@BOTH_DIALECTS
def test_a_later_run_upserts_its_days_and_keeps_older_history(engine, make_bundle, sql_root):
    first = make_bundle("A", run_date=DAY1, days=3)  # activity 2024-04-28 .. 04-30
    publish(engine, first, sql_root)
    # The next day's run sees one more day, and its figures for the overlapping days changed.
    second = make_bundle("A", run_date=DAY2, days=3, seed=7, model_version="als-2")  # 04-29 .. 05-01
    publish(engine, second, sql_root)

    kpis = query(
        engine, "SELECT activity_date, n_interactions, run_date FROM daily_kpis ORDER BY activity_date"
    )
    expected = {
        "2024-04-28": (first.analytics["daily_kpis"].to_pylist()[0]["n_interactions"], "2024-05-01"),
        **{
            row["activity_date"].isoformat(): (row["n_interactions"], "2024-05-02")
            for row in second.analytics["daily_kpis"].to_pylist()
        },
    }
    assert {day: (n, run) for day, n, run in kpis} == expected
    funnel = query(engine, "SELECT activity_date, step, n_events FROM daily_funnel WHERE step = 1")
    assert sorted(funnel) == [
        ("2024-04-28", 1, 100),  # seed 0's figure, outside the second run's days
        ("2024-04-29", 1, 107),
        ("2024-04-30", 1, 107),
        ("2024-05-01", 1, 107),
    ]


@BOTH_DIALECTS
def test_a_key_the_rerun_no_longer_produces_is_deleted_within_its_days(engine, make_bundle, sql_root):
    bundle = make_bundle("A", run_date=DAY1, days=3)
    publish(engine, bundle, sql_root)
    categories = bundle.analytics["daily_category_activity"]
    # A data fix: "Comédie" disappears from the last two days.
    fixed = categories.filter(
        pc.invert(
            pc.and_(
                pc.equal(categories.column("category"), "Comédie"),
                pc.greater(categories.column("activity_date"), pa.scalar(datetime.date(2024, 4, 28))),
            )
        )
    )
    publish(engine, with_analytics(bundle, daily_category_activity=fixed), sql_root)
    rows = query(engine, "SELECT activity_date, category FROM daily_category_activity ORDER BY 1, 2")
    assert rows == [
        ("2024-04-28", "Comédie"),
        ("2024-04-28", "Drama"),
        ("2024-04-29", "Drama"),
        ("2024-04-30", "Drama"),
    ]


@BOTH_DIALECTS
def test_snapshots_are_replaced_per_dataset(engine, make_bundle, sql_root):
    publish(engine, make_bundle("A", n_users=40), sql_root)
    publish(engine, make_bundle("B", n_users=10, seed=2), sql_root)
    publish(engine, make_bundle("A", run_date=DAY2, n_users=25, seed=3, model_version="als-2"), sql_root)
    assert query(engine, "SELECT dataset, COUNT(*) FROM users GROUP BY dataset ORDER BY dataset") == [
        ("A", 25),
        ("B", 10),
    ]
    assert query(engine, "SELECT dataset, COUNT(*) FROM user_profiles GROUP BY dataset ORDER BY dataset") == [
        ("A", 25),
        ("B", 10),
    ]
    assert query(engine, "SELECT DISTINCT run_date FROM popular_items WHERE dataset = 'A'") == [
        ("2024-05-02",)
    ]


@BOTH_DIALECTS
def test_values_round_trip_money_times_and_text(engine, make_bundle, sql_root):
    bundle = make_bundle("A")
    publish(engine, bundle, sql_root)
    revenue = [row["revenue"] for row in bundle.analytics["daily_kpis"].to_pylist()]
    stored = [r for (r,) in query(engine, "SELECT revenue FROM daily_kpis ORDER BY activity_date")]
    assert [decimal.Decimal(str(r)).quantize(decimal.Decimal("0.01")) for r in stored] == revenue
    # Spark's UTC instants land as the UTC wall time, in whole seconds.
    (seen,) = query(engine, "SELECT first_seen, last_seen FROM users WHERE user_id = 'u3'")
    assert [str(value) for value in seen] == ["2024-01-01 12:30:05", "2024-01-04 12:30:05"]
    assert query(engine, "SELECT occupation FROM users WHERE user_id = 'u0'") == [("médecin",)]


@BOTH_DIALECTS
def test_every_bi_view_returns_the_published_rows(engine, make_bundle, sql_root):
    bundle = make_bundle("A", n_users=20)
    publish(engine, bundle, sql_root)
    block_item(engine, "A", "i1", "licence expired")  # the blocklist is the operators', not publish's
    views = sorted(sa.inspect(engine).get_view_names())
    assert set(REQUIRED_VIEWS) <= set(views)
    for view in views:
        assert query(engine, f"SELECT COUNT(*) FROM {view}")[0][0] > 0, view

    title, reason = query(
        engine,
        "SELECT title, reason FROM v_user_recommendations WHERE user_id = 'u0' AND recommendation_rank = 1",
    )[0]
    first_item = bundle.recommendations.to_pylist()[0]["item_id"]
    assert title == f"Film {first_item[1:]} (A, seed 0) — «é»"
    assert reason.startswith("people with tastes like yours")
    # Funnel 40 -> 10 -> 4 users: 25 % of the top reach the cart, 40 % of carts buy.
    steps = query(
        engine,
        "SELECT step_name, conversion_from_first, conversion_from_previous FROM v_funnel_daily"
        " WHERE activity_date = '2024-04-30' ORDER BY step",
    )
    assert [(name, float(first), None if prev is None else float(prev)) for name, first, prev in steps] == [
        ("view", 1.0, None),
        ("cart", 0.25, 0.25),
        ("purchase", 0.1, 0.4),
    ]
    labels = {label for (label,) in query(engine, "SELECT DISTINCT metric_label FROM v_model_performance")}
    assert labels == {"ndcg@10", "precision@10", "rmse"}
    (weekday,) = query(
        engine, "SELECT DISTINCT weekday FROM v_activity_by_hour WHERE activity_date = '2024-04-28'"
    )
    assert weekday == ("Sun",)


@BOTH_DIALECTS
@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda a: {k: v for k, v in a.items() if k != "daily_funnel"}, id="missing-table"),
        pytest.param(
            lambda a: {**a, "daily_kpis": a["daily_kpis"].drop_columns(["new_users"])}, id="missing-column"
        ),
        pytest.param(
            lambda a: {
                **a,
                "hourly_activity": a["hourly_activity"].set_column(1, "hour", pa.array(["x"] * 72)),
            },
            id="bad-type",
        ),
    ],
)
def test_bad_analytics_write_nothing(engine, make_bundle, warehouse_state, sql_root, broken):
    publish(engine, make_bundle("A"), sql_root)
    before = warehouse_state(engine)
    bundle = make_bundle("A", run_date=DAY2, seed=5, model_version="als-2")
    with pytest.raises(ValueError):
        publish(engine, dataclasses.replace(bundle, analytics=broken(bundle.analytics)), sql_root)
    assert warehouse_state(engine) == before


def test_analytics_tables_are_the_documented_ones():
    assert set(ANALYTICS) == {
        "users", "user_profiles", "popular_items", "daily_kpis", "daily_category_activity", "daily_funnel",
        "hourly_activity", "watch_time_hourly",
    }  # fmt: skip


@BOTH_DIALECTS
def test_view_measures_sum_once_per_day_and_per_table(engine, make_bundle, sql_root):
    bundle = make_bundle("A")
    more = dict(bundle.quarantine[0], reason="user_id is not an integer id", rows_quarantined=2)
    few_bad = dict(bundle.quality_results[0], unexpected_count=3, success=False)
    bundle = dataclasses.replace(
        bundle, quarantine=[*bundle.quarantine, more], quality_results=[few_bad, *bundle.quality_results[1:]]
    )
    publish(engine, bundle, sql_root)
    # two reasons for one table: its counts once, the reasons each
    ((raw, quarantined, reasons),) = query(
        engine, "SELECT SUM(raw_rows), SUM(rows_quarantined), COUNT(*) FROM v_quarantine WHERE dataset = 'A'"
    )
    assert (raw, quarantined, reasons) == (100_010, 9, 2)
    # the day's revenue once, not once per funnel step
    funnel_revenue = query(
        engine, "SELECT activity_date, SUM(revenue) FROM v_funnel_daily GROUP BY activity_date ORDER BY 1"
    )
    day_revenue = query(engine, "SELECT activity_date, revenue FROM v_daily_kpis ORDER BY 1")
    assert [(d, float(r)) for d, r in funnel_revenue] == [(d, float(r)) for d, r in day_revenue]
    # 3 of 100,000 is not rounded away
    shares = query(engine, "SELECT unexpected_share FROM v_data_quality WHERE unexpected_count IS NOT NULL")
    assert [float(s) for (s,) in shares] == [3 / 100_000]
