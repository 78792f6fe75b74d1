"""Implicit feedback (event weights, watch time, preferences) and the persisted int32 id map."""

from __future__ import annotations

import datetime
import math

import pytest
from pyspark.sql import functions as F

from recflow.config import DEFAULT_EVENT_WEIGHTS, Settings
from recflow.features import event_weight, more_events_than, preferences, watch_minutes
from recflow.idmap import extend_mapping

pytestmark = pytest.mark.spark

T0 = datetime.datetime(2024, 3, 1, 12)


def test_event_weights_and_a_removed_cart_falls_back_to_the_views(spark):
    events = spark.createDataFrame(
        [
            (1, 10, "view", T0),
            (1, 10, "cart", T0),
            (1, 10, "remove_from_cart", T0),  # carted then removed: only the view is left
            (1, 11, "view", T0),
            (1, 11, "purchase", T0),
            (2, 10, "remove_from_cart", T0),  # a removal alone is no preference at all
            (2, 12, "view", T0),
            (2, 12, "view", T0),
        ],
        "user_idx int, item_idx int, event_type string, ts timestamp",
    ).withColumn("weight", event_weight(F.col("event_type"), DEFAULT_EVENT_WEIGHTS))
    prefs = {
        (r["user_idx"], r["item_idx"]): r["rating"] for r in preferences(events, explicit=False).collect()
    }
    assert prefs == pytest.approx({(1, 10): math.log1p(1), (1, 11): math.log1p(6), (2, 12): math.log1p(2)})


def test_overridden_weights_come_from_the_run_params(spark):
    settings = Settings.from_params({"source": "ecommerce", "event_weights": {"purchase": 20}})
    frame = spark.createDataFrame([("purchase",), ("view",)], "event_type string")
    weights = [
        r[0] for r in frame.select(event_weight(F.col("event_type"), settings.event_weights)).collect()
    ]
    assert weights == [20.0, 1.0]


def test_explicit_ratings_pass_through_and_minimum_support_drops_thin_users_and_items(spark):
    ratings = spark.createDataFrame(
        [
            (1, 10, 4.0, T0),
            (1, 11, 3.0, T0),
            (2, 10, 5.0, T0),
            (2, 11, 1.0, T0),
            (3, 10, 2.0, T0),
            (1, 12, 5.0, T0),
        ],
        "user_idx int, item_idx int, weight double, ts timestamp",
    )
    assert preferences(ratings, explicit=True).count() == 6
    kept = preferences(ratings, explicit=True, min_user_interactions=2, min_item_interactions=2)
    # user 3 has one rating, item 12 one rater.
    assert sorted((r["user_idx"], r["item_idx"], r["rating"]) for r in kept.collect()) == [
        (1, 10, 4.0), (1, 11, 3.0), (2, 10, 5.0), (2, 11, 1.0),
    ]  # fmt: skip


def test_watch_minutes_are_capped(spark):
    frame = spark.createDataFrame([(60,), (1800,), (3600,)], "s int")
    assert [r[0] for r in frame.select(watch_minutes(F.col("s"), 1800)).collect()] == [1.0, 30.0, 30.0]


def test_more_events_than_flags_the_whole_user_day(spark):
    rows = [("bot", T0 + datetime.timedelta(minutes=i)) for i in range(4)]
    rows += [("bot", T0 + datetime.timedelta(days=1)), ("person", T0), ("person", T0)]
    frame = spark.createDataFrame(rows, "user_id string, ts timestamp").withColumn(
        "flag", more_events_than(3)
    )
    flagged = sorted((r["user_id"], r["ts"].date().day) for r in frame.where("flag").collect())
    assert flagged == [("bot", 1)] * 4


def test_id_map_extends_without_renumbering(spark):
    first = extend_mapping(
        spark.createDataFrame([("b",), ("a",), ("c",), ("a",)], "user_id string"), None, "user_id", "user_idx"
    )
    assert {r["user_id"]: r["user_idx"] for r in first.collect()} == {"a": 0, "b": 1, "c": 2}
    later = extend_mapping(
        spark.createDataFrame([("9999999999",), ("b",), ("0",)], "user_id string"),
        first,
        "user_id",
        "user_idx",
    )
    # Old ids keep their numbers; new ones follow in sorted order, whatever their size.
    assert {r["user_id"]: r["user_idx"] for r in later.collect()} == {
        "a": 0, "b": 1, "c": 2, "0": 3, "9999999999": 4,
    }  # fmt: skip
