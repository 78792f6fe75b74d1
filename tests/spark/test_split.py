"""The stratified and temporal splits, and split() picking one from the settings, on frames small
enough to check by hand."""

from __future__ import annotations

import dataclasses
import datetime
from collections import Counter

import pytest
from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.split import random_split, split, stratified_split, temporal_split

pytestmark = pytest.mark.spark

UTC = datetime.UTC
SCHEMA = "user_idx int, item_idx int, rating double, ts timestamp"
# Rows per user for the stratified tests.
SIZES = {1: 8, 2: 3, 3: 1, 4: 2, 5: 20, 6: 6}


def _frame(spark, sizes=SIZES):
    start = datetime.datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        (user, 100 + item, float(item % 5), start + datetime.timedelta(hours=user * 100 + item))
        for user, n in sizes.items()
        for item in range(n)
    ]
    return spark.createDataFrame(rows, SCHEMA)


def _rows(df):
    return sorted(tuple(r) for r in df.collect())


def _per_user(df):
    return Counter(r["user_idx"] for r in df.select("user_idx").collect())


def _assert_partition(df, train, test):
    assert train.columns == df.columns and test.columns == df.columns
    train_rows, test_rows = _rows(train), _rows(test)
    assert not set(train_rows) & set(test_rows)
    assert sorted(train_rows + test_rows) == _rows(df)


def test_stratified_split_counts_per_user(spark):
    df = _frame(spark)
    train, test = stratified_split(df, 0.25, seed=42)
    _assert_partition(df, train, test)
    # train = round(0.75 * n), half up: 8 -> 6, 3 -> round(2.25) = 2, 1 -> round(0.75) = 1,
    # 2 -> round(1.5) = 2, 20 -> 15, 6 -> round(4.5) = 5 (Python's round would give 4).
    assert _per_user(train) == {1: 6, 2: 2, 3: 1, 4: 2, 5: 15, 6: 5}
    assert _per_user(test) == {1: 2, 2: 1, 5: 5, 6: 1}


def test_stratified_split_one_row_user_goes_to_test_above_one_half(spark):
    df = _frame(spark, {1: 1, 2: 10})
    train, test = stratified_split(df, 0.6, seed=42)
    _assert_partition(df, train, test)
    # round(0.4 * 1) = 0 train rows; round(0.4 * 10) = 4.
    assert _per_user(train) == {2: 4}
    assert _per_user(test) == {1: 1, 2: 6}


def test_stratified_split_is_deterministic_whatever_the_partitioning(spark):
    df = _frame(spark, {u: 3 + u % 9 for u in range(40)})
    one = [_rows(side) for side in stratified_split(df.repartition(1), 0.3, seed=7)]
    seven = [_rows(side) for side in stratified_split(df.repartition(7).orderBy(F.rand(3)), 0.3, seed=7)]
    assert one == seven


def test_stratified_split_changes_rows_with_the_seed(spark):
    df = _frame(spark, {u: 10 for u in range(20)})
    test_1 = _rows(stratified_split(df, 0.3, seed=1)[1])
    test_2 = _rows(stratified_split(df, 0.3, seed=2)[1])
    # Same counts per user, different rows.
    assert len(test_1) == len(test_2) == 20 * 3
    assert test_1 != test_2
    assert len(set(test_1) & set(test_2)) < 0.7 * len(test_1)


def _events(spark, rows):
    return spark.createDataFrame(
        [(u, i, 1.0, None if ts is None else datetime.datetime.fromisoformat(ts).replace(tzinfo=UTC))
         for u, i, ts in rows],
        SCHEMA,
    )  # fmt: skip


def test_temporal_split_last_n_per_user(spark):
    df = _events(
        spark,
        [
            # user 1: five rows, the last two by ts are 14 and 12.
            (1, 10, "2024-01-01T00:00:00"), (1, 11, "2024-01-02T00:00:00"), (1, 12, "2024-01-04T00:00:00"),
            (1, 13, "2024-01-03T00:00:00"), (1, 14, "2024-01-05T00:00:00"),
            # user 2: the latest ts is shared by items 3 and 7: the larger item, 7, counts as
            # later; the row without ts counts as the earliest.
            (2, 3, "2024-02-01T00:00:00"), (2, 7, "2024-02-01T00:00:00"), (2, 5, "2024-01-15T00:00:00"),
            (2, 9, None),
            # user 3: exactly last_n rows, user 4: fewer: both keep everything in train.
            (3, 1, "2024-01-01T00:00:00"), (3, 2, "2024-01-02T00:00:00"),
            (4, 1, "2024-01-01T00:00:00"),
        ],
    )  # fmt: skip
    train, test = temporal_split(df, last_n=2)
    _assert_partition(df, train, test)
    assert sorted((r["user_idx"], r["item_idx"]) for r in test.collect()) == [
        (1, 12),
        (1, 14),
        (2, 3),
        (2, 7),
    ]

    train_1, test_1 = temporal_split(df, last_n=1)
    _assert_partition(df, train_1, test_1)
    assert sorted((r["user_idx"], r["item_idx"]) for r in test_1.collect()) == [(1, 14), (2, 7), (3, 2)]


def test_temporal_split_is_deterministic_whatever_the_partitioning(spark):
    df = _frame(spark, {u: 1 + u % 6 for u in range(30)})
    one = [_rows(side) for side in temporal_split(df.repartition(1), last_n=2)]
    seven = [_rows(side) for side in temporal_split(df.repartition(7).orderBy(F.rand(3)), last_n=2)]
    assert one == seven


def test_temporal_split_since_a_date_in_utc(spark):
    df = _events(
        spark,
        [
            (1, 1, "2024-02-29T23:59:59"), (1, 2, "2024-03-01T00:00:00"), (1, 3, "2024-03-02T12:00:00"),
            # Every row of user 2 is recent: all of them are test, no protection with `since`.
            (2, 1, "2024-03-05T00:00:00"), (2, 2, "2024-03-06T00:00:00"),
            (3, 1, None),
        ],
    )  # fmt: skip
    zone = spark.conf.get("spark.sql.session.timeZone")
    try:
        # Midnight UTC, whatever zone the session reads literals in.
        spark.conf.set("spark.sql.session.timeZone", "America/New_York")
        train, test = temporal_split(df, last_n=1, since="2024-03-01")
        _assert_partition(df, train, test)
        got = sorted((r["user_idx"], r["item_idx"]) for r in test.collect())
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert got == [(1, 2), (1, 3), (2, 1), (2, 2)]


def test_temporal_split_needs_last_n_or_since(spark):
    df = _frame(spark, {1: 2})
    with pytest.raises(ValueError, match="last_n or since"):
        temporal_split(df)
    with pytest.raises(ValueError, match="at least 1"):
        temporal_split(df, last_n=0)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"split": "random", "test_fraction": 0.3, "seed": 5}, lambda df: random_split(df, 0.3, 5)),
        ({"split": "stratified", "test_fraction": 0.25, "seed": 5}, lambda df: stratified_split(df, 0.25, 5)),
        ({"split": "temporal", "test_last_n": 2}, lambda df: temporal_split(df, last_n=2)),
        (
            {"split": "temporal", "test_last_n": 2, "test_since": "2024-01-02"},
            lambda df: temporal_split(df, since="2024-01-02"),
        ),
    ],
)
def test_split_dispatches_on_the_settings(spark, params, expected):
    df = _frame(spark)
    train, test = split(df, Settings.from_params(params))
    _assert_partition(df, train, test)
    want_train, want_test = expected(df)
    assert (_rows(train), _rows(test)) == (_rows(want_train), _rows(want_test))


def test_split_refuses_an_unknown_name(spark):
    settings = dataclasses.replace(Settings(), split="by_item")
    with pytest.raises(ValueError, match="Unknown split 'by_item'"):
        split(_frame(spark, {1: 2}), settings)


def test_search_sample_keeps_whole_users_about_the_wanted_number_and_the_same_ones(settings_factory, spark):
    from recflow.tuning import search_sample

    df = _frame(spark, {u: 2 + u % 5 for u in range(2_000)})
    sample = search_sample(df, settings_factory(tuning_sample_users=500))
    kept = _per_user(sample)
    assert 400 <= len(kept) <= 600  # a hash share of 1/4, not an exact count
    full = _per_user(df)
    assert all(kept[u] == full[u] for u in kept)  # every row of a user drawn, none of the others
    again = search_sample(df.repartition(5), settings_factory(tuning_sample_users=500))
    assert _rows(again) == _rows(sample)  # same users on a re-run, whatever the partitioning
    other_seed = search_sample(df, settings_factory(tuning_sample_users=500, seed=7))
    assert set(_per_user(other_seed)) != set(kept)


def test_search_sample_is_everything_for_few_users_or_zero(settings_factory, spark):
    from recflow.tuning import search_sample

    df = _frame(spark, {u: 3 for u in range(50)})
    assert search_sample(df, settings_factory(tuning_sample_users=50)) is df
    big = _frame(spark, {u: 1 for u in range(300)})
    assert search_sample(big, settings_factory(tuning_sample_users=0)) is big
