"""User tiers, business rules and similar items in publish(): tier metrics and the rule log are run
facts replaced per run, similar items a model output replaced only by a promoted run, and a bundle
with a bad tier, rule or similar item writes nothing."""

from __future__ import annotations

import collections
import dataclasses
import datetime

import pyarrow as pa
import pytest
import sqlalchemy as sa

from recflow.warehouse.publish import publish

BOTH_DIALECTS = pytest.mark.parametrize(
    "engine_fixture", [pytest.param("mariadb_engine", marks=pytest.mark.warehouse), "sqlite_engine"]
)
DAY1, DAY2, DAY3 = (datetime.date(2024, 5, day) for day in (1, 2, 3))


@pytest.fixture
def engine(request, engine_fixture) -> sa.Engine:
    return request.getfixturevalue(engine_fixture)


def query(engine: sa.Engine, sql: str, **params) -> list[tuple]:
    """Rows as tuples, dates as ISO text and booleans as 0/1, so both dialects compare alike."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).all()
    return [
        tuple(str(v) if isinstance(v, datetime.date) else int(v) if isinstance(v, bool) else v for v in row)
        for row in rows
    ]


def checksum(engine: sa.Engine, table: str) -> int | None:
    if engine.dialect.name == "sqlite":
        return None
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"CHECKSUM TABLE {table}").one()[1]


def published_similar_items(engine: sa.Engine, dataset: str = "A") -> list[tuple]:
    return sorted(
        query(
            engine,
            "SELECT item_id, `rank`, similar_item_id, score, model_version, run_date FROM similar_items"
            " WHERE dataset = :d",
            d=dataset,
        )
    )


def bundle_similar_items(bundle) -> list[tuple]:
    return sorted(
        (
            r["item_id"],
            r["rank"],
            r["similar_item_id"],
            r["score"],
            bundle.model_version,
            str(bundle.run_date),
        )
        for r in bundle.similar_items.to_pylist()
    )


def rules_of(engine: sa.Engine, run_date: datetime.date, dataset: str = "A") -> list[tuple]:
    return query(
        engine,
        "SELECT rule, enabled, setting, items_removed, users_affected, model_version FROM recommendation_rules"
        " WHERE dataset = :d AND run_date = :r ORDER BY rule",
        d=dataset,
        r=run_date.isoformat(),
    )


def log_rows(bundle) -> list[tuple]:
    return sorted(
        (
            r["rule"],
            int(r["enabled"]),
            r["setting"],
            r["items_removed"],
            r["users_affected"],
            bundle.model_version,
        )
        for r in bundle.rule_log
    )


@BOTH_DIALECTS
def test_tier_metrics_rules_and_the_mix_reach_the_tables_and_views(engine, make_bundle, sql_root):
    bundle = make_bundle("A", run_date=DAY1)
    publish(engine, bundle, sql_root)

    metrics = query(
        engine, "SELECT user_tier, model, metric, k, value FROM model_metrics WHERE dataset = 'A'"
    )
    expected = [
        ("all", m, *split(key), v) for m, values in bundle.metrics.items() for key, v in values.items()
    ]
    expected += [
        (tier, m, *split(key), v)
        for tier, models in bundle.tier_metrics.items()
        for m, values in models.items()
        for key, v in values.items()
    ]
    assert sorted(metrics) == sorted(expected)
    assert ("cold", "content", "n_users", 0, 12.0) in metrics  # the tier's size, as a metric

    # v_model_performance keeps one row per model and metric: the 'all' rows only.
    overall = query(engine, "SELECT model, metric_label, user_tier FROM v_model_performance")
    assert sorted(overall) == sorted(
        (m, key, "all") for m, values in bundle.metrics.items() for key in values
    )
    # v_model_tier_performance has every tier beside 'all', in tier order, with the gate's decision.
    tiers = query(
        engine,
        "SELECT user_tier, tier_order, model, metric_label, value, decision, run_status"
        " FROM v_model_tier_performance WHERE metric = 'ndcg' ORDER BY tier_order, model",
    )
    assert tiers == [
        ("all", 0, "als", "ndcg@10", 0.21, "promoted", "published"),
        ("all", 0, "popularity", "ndcg@10", 0.1, "promoted", "published"),
        ("cold", 2, "content", "ndcg@10", 0.08, "promoted", "published"),
        ("cold", 2, "popularity", "ndcg@10", 0.04, "promoted", "published"),
        ("warm", 3, "als", "ndcg@10", 0.23, "promoted", "published"),
    ]

    assert rules_of(engine, DAY1) == log_rows(bundle)
    rules = query(
        engine,
        "SELECT rule, items_removed_per_user, decision, run_status, is_champion FROM v_recommendation_rules"
        " ORDER BY rule",
    )
    assert rules == [
        ("availability", None, "promoted", "published", 1),
        ("blocklist", 1.0, "promoted", "published", 1),
        ("diversity", 77 / 20, "promoted", "published", 1),
        ("seen", 1200 / 48, "promoted", "published", 1),
    ]

    # Which users got what: per tier and source, from the recommendations themselves.
    recs = bundle.recommendations.to_pylist()
    users = collections.defaultdict(set)
    counts = collections.Counter()
    for r in recs:
        users[r["user_tier"], r["source"]].add(r["user_id"])
        counts[r["user_tier"], r["source"]] += 1
    mix = query(
        engine,
        "SELECT user_tier, source, n_users, n_recommendations, share_of_recommendations, run_date,"
        " model_version FROM v_recommendation_mix WHERE dataset = 'A' ORDER BY tier_order",
    )
    assert [row[0] for row in mix] == ["new", "cold", "warm", "heavy"]
    assert {(t, s): (n, c, share) for t, s, n, c, share, _, _ in mix} == {
        key: (len(users[key]), counts[key], pytest.approx(counts[key] / len(recs))) for key in counts
    }
    assert {row[5:] for row in mix} == {("2024-05-01", "als-1")}
    assert sum(row[4] for row in mix) == pytest.approx(1.0)
    tiers_served = query(engine, "SELECT DISTINCT user_id, user_tier FROM v_user_recommendations")
    assert sorted(tiers_served) == sorted({(r["user_id"], r["user_tier"]) for r in recs})

    similar = query(
        engine,
        "SELECT item_id, title, similarity_rank, similar_item_id, similar_title, score FROM v_similar_items"
        " WHERE item_id = 'i3' ORDER BY similarity_rank",
    )
    first = bundle.similar_items.to_pylist()[15]  # i3's first similar item
    assert similar[0] == (
        "i3",
        "Film 3 (A, seed 0) — «é»",
        1,
        first["similar_item_id"],
        f"Film {first['similar_item_id'][1:]} (A, seed 0) — «é»",
        first["score"],
    )
    assert len(similar) == 5


def split(key: str) -> tuple[str, int]:
    metric, _, k = key.partition("@")
    return metric, int(k or 0)


@BOTH_DIALECTS
def test_the_rule_log_is_replaced_when_a_run_is_republished(engine, make_bundle, warehouse_state, sql_root):
    first = make_bundle("A", run_date=DAY1)
    publish(engine, first, sql_root)
    other_day = make_bundle("A", run_date=DAY2, seed=2, model_version="als-2")
    publish(engine, other_day, sql_root)
    publish(engine, make_bundle("B", run_date=DAY1, seed=3), sql_root)

    # The day is re-run: the availability rule is gone, the others removed other amounts.
    rerun = dataclasses.replace(
        first,
        rule_log=[
            {**rule, "items_removed": rule["items_removed"] + 10, "setting": f"v2 {rule['setting']}"}
            for rule in first.rule_log
            if rule["rule"] != "availability"
        ],
    )
    assert publish(engine, rerun, sql_root).rows["recommendation_rules"] == 3
    assert rules_of(engine, DAY1) == log_rows(rerun)
    assert rules_of(engine, DAY2) == log_rows(other_day)  # other runs keep theirs
    assert rules_of(engine, DAY1, "B") != []
    # Re-publishing the same run again changes nothing.
    state = warehouse_state(engine)
    publish(engine, rerun, sql_root)
    assert warehouse_state(engine) == state
    # An empty log is a valid log: the run's rows go.
    publish(engine, dataclasses.replace(rerun, rule_log=[]), sql_root)
    assert rules_of(engine, DAY1) == []


@BOTH_DIALECTS
def test_similar_items_follow_the_promoted_model(engine, make_bundle, warehouse_state, sql_root):
    champion = make_bundle("A", run_date=DAY1)
    assert publish(engine, champion, sql_root).rows["similar_items"] == champion.similar_items.num_rows
    other = make_bundle("B", run_date=DAY1, seed=4)
    publish(engine, other, sql_root)
    assert published_similar_items(engine) == bundle_similar_items(champion)
    served = checksum(engine, "similar_items")

    # A challenger the gate rejected: its similar items are not published.
    rejected = make_bundle(
        "A", run_date=DAY2, seed=2, model_version="als-2", promote=False, champion=("als-1", 0.3)
    )
    assert bundle_similar_items(rejected) != bundle_similar_items(champion)
    assert publish(engine, rejected, sql_root).rows["similar_items"] == 0
    assert published_similar_items(engine) == bundle_similar_items(champion)
    assert checksum(engine, "similar_items") == served
    # and its rules are recorded all the same (a run fact)
    assert rules_of(engine, DAY2) == log_rows(rejected)

    # A promoted run replaces the dataset's whole set (a smaller one here) and nothing of B's.
    winner = make_bundle("A", run_date=DAY3, seed=3, model_version="als-3", champion=("als-1", 0.2))
    winner = dataclasses.replace(winner, similar_items=winner.similar_items.slice(0, 50))
    assert publish(engine, winner, sql_root).rows["similar_items"] == 50
    assert published_similar_items(engine) == bundle_similar_items(winner)
    assert published_similar_items(engine, "B") == bundle_similar_items(other)
    state = warehouse_state(engine)
    crc = checksum(engine, "similar_items")
    publish(engine, winner, sql_root)
    assert warehouse_state(engine) == state
    assert checksum(engine, "similar_items") == crc


def _recs(change):
    return lambda b: {"recommendations": change(b.recommendations)}


def _set(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(
        table.schema.get_field_index(name), name, pa.array(values, table.schema.field(name).type)
    )


def _tiers(change):
    return lambda b: {"tier_metrics": change(b.tier_metrics)}


def _rules(change):
    return lambda b: {"rule_log": change(b.rule_log)}


BAD_BUNDLES = {
    "unknown user_tier": (_recs(lambda t: _set(t, "user_tier", ["vip"] * t.num_rows)), "user_tier"),
    "null user_tier": (
        _recs(lambda t: _set(t, "user_tier", [None] * t.num_rows)),
        "nulls in \\['user_tier'\\]",
    ),
    "recommendations without user_tier": (
        _recs(lambda t: t.drop_columns(["user_tier"])),
        "lacks the columns",
    ),
    "similar_items without score": (
        lambda b: {"similar_items": b.similar_items.drop_columns(["score"])},
        "lacks the columns",
    ),
    "similar_items repeat a rank": (
        lambda b: {"similar_items": _set(b.similar_items, "rank", [1] * b.similar_items.num_rows)},
        "repeat an",
    ),
    "similar_items null id": (
        lambda b: {
            "similar_items": _set(b.similar_items, "similar_item_id", [None] * b.similar_items.num_rows)
        },
        "nulls",
    ),
    "similar_items NaN score": (
        lambda b: {
            "similar_items": _set(b.similar_items, "score", [float("nan")] * b.similar_items.num_rows)
        },
        "non-finite",
    ),
    "similar_items not a table": (lambda b: {"similar_items": b.similar_items.to_pylist()}, "pyarrow Table"),
    "tier 'all' in tier_metrics": (_tiers(lambda m: {**m, "all": {"als": {"ndcg@10": 0.2}}}), "has tiers"),
    "unknown tier": (_tiers(lambda m: {**m, "vip": {}}), "has tiers"),
    "NaN tier metric": (_tiers(lambda m: {**m, "heavy": {"als": {"ndcg@10": float("nan")}}}), "heavy"),
    "tier metric not a number": (_tiers(lambda m: {**m, "heavy": {"als": {"ndcg@10": None}}}), "heavy"),
    "tier model not a dict": (_tiers(lambda m: {**m, "warm": {"als": 0.2}}), "metric -> value"),
    "rule without a key": (
        _rules(lambda log: [{k: v for k, v in r.items() if k != "users_affected"} for r in log]),
        "has keys",
    ),
    "negative count": (_rules(lambda log: [{**log[0], "items_removed": -1}, *log[1:]]), "expected a count"),
    "rule twice": (_rules(lambda log: [*log, log[0]]), "names a rule twice"),
    "enabled not a bool": (_rules(lambda log: [{**log[0], "enabled": "yes"}, *log[1:]]), "True or False"),
    "rule log not a list": (lambda b: {"rule_log": {"seen": 3}}, "list of dicts"),
}


@BOTH_DIALECTS
@pytest.mark.parametrize("broken", sorted(BAD_BUNDLES))
def test_a_bad_tier_rule_or_similar_item_writes_nothing(
    engine, make_bundle, warehouse_state, sql_root, broken
):
    publish(engine, make_bundle("A", run_date=DAY1), sql_root)
    before = warehouse_state(engine)
    change, message = BAD_BUNDLES[broken]
    good = make_bundle("A", run_date=DAY2, seed=5, model_version="als-2", champion=("als-1", 0.2))
    with pytest.raises(ValueError, match=message):
        publish(engine, dataclasses.replace(good, **change(good)), sql_root)
    assert warehouse_state(engine) == before
