"""User tiers and the simulated cold users of evaluation."""

from __future__ import annotations

import datetime

from pyspark.sql import functions as F

from recflow.tiers import simulate_cold_users, user_tiers


def _rows(spark, rows):
    return spark.createDataFrame(rows, "user_idx int, item_idx int, rating double, ts timestamp")


def test_tiers_by_distinct_items(spark):
    day = datetime.datetime(2024, 1, 1)
    rows = [(1, i, 1.0, day) for i in range(2)] + [(2, i, 1.0, day) for i in range(5)]
    rows += [(3, i, 1.0, day) for i in range(6)] + [(4, i, 1.0, day) for i in range(9)] + [(4, 0, 1.0, day)]
    tiers = {r["user_idx"]: (r["n_items"], r["tier"]) for r in user_tiers(_rows(spark, rows), 5, 9).collect()}
    assert tiers == {1: (2, "cold"), 2: (5, "cold"), 3: (6, "warm"), 4: (9, "heavy")}


def test_simulated_cold_users_keep_their_earliest_rows_only(spark):
    start = datetime.datetime(2024, 1, 1)
    rows = [(u, i, 1.0, start + datetime.timedelta(days=20 - i)) for u in range(200) for i in range(8)]
    train = _rows(spark, rows)
    cut = simulate_cold_users(train, fraction=0.25, keep=3, seed=7)
    per_user = {
        r["user_idx"]: sorted(r["items"])
        for r in cut.groupBy("user_idx").agg(F.collect_list("item_idx").alias("items")).collect()
    }
    cold = [u for u, items in per_user.items() if len(items) == 3]
    assert set(per_user) == set(range(200))  # nobody disappears
    assert all(len(items) in (3, 8) for items in per_user.values())
    assert 30 <= len(cold) <= 70  # about a quarter, chosen by hash
    # The earliest three: items 7, 6, 5 have the earliest timestamps.
    assert all(per_user[u] == [5, 6, 7] for u in cold)
    # Seeded: the same users every time; another seed picks others.
    again = simulate_cold_users(train, fraction=0.25, keep=3, seed=7)
    assert sorted(r[0] for r in again.groupBy("user_idx").count().where("count = 3").collect()) == sorted(
        cold
    )
    other = simulate_cold_users(train, fraction=0.25, keep=3, seed=8)
    assert sorted(r[0] for r in other.groupBy("user_idx").count().where("count = 3").collect()) != sorted(
        cold
    )
    assert simulate_cold_users(train, 0.0, 3, 7).count() == train.count()
