"""The analytics aggregates on tiny hand-made data, one source at a time: every figure here is
counted by hand from the rows below."""

from __future__ import annotations

import datetime
import decimal

import pytest

from recflow import analytics

pytestmark = pytest.mark.spark

D1, D2 = datetime.date(2024, 3, 2), datetime.date(2024, 3, 3)  # a Saturday and a Sunday


def ts(day: datetime.date, hour: int) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, hour, 15, tzinfo=datetime.UTC)


def rows_of(frame, *order) -> list[dict]:
    return [row.asDict() for row in frame.orderBy(*order).collect()]


@pytest.fixture(scope="module")
def ratings(spark):
    interactions = spark.createDataFrame(
        [
            # user, item, rating, time
            ("u1", "i1", 5.0, ts(D1, 20)),
            ("u1", "i2", 3.0, ts(D1, 20)),
            ("u1", "i3", 4.0, ts(D2, 9)),
            ("u2", "i1", 4.0, ts(D2, 21)),
            ("u2", "i3", 1.0, ts(D2, 21)),
            ("u3", "i1", 2.0, ts(D2, 21)),
        ],
        "user_id string, item_id string, weight double, ts timestamp",
    ).withColumn("event_type", analytics.F.lit("rating"))
    items = spark.createDataFrame(
        [("i1", "Heat (1995)", "Action|Crime"), ("i2", "Amélie (2001)", "Comedy"), ("i3", "Nada", "")],
        "item_id string, title string, genres string",
    )
    users = spark.createDataFrame(
        [("u1", 24, "F", "writer", "10001"), ("u2", 56, "M", "artist", "2000"), ("u3", 1, "F", "K-12", "3")],
        "user_id string, age int, gender string, occupation string, zip string",
    )
    activity = analytics.prepare(interactions, items, "movielens", (1.0, 5.0))
    return activity, interactions, users


def test_ratings_daily_kpis_count_reach_and_new_users(ratings):
    activity, _, _ = ratings
    assert rows_of(analytics.daily_kpis(activity), "activity_date") == [
        dict(activity_date=D1, n_interactions=2, active_users=1, new_users=1, active_items=2, avg_rating=4.0,
             purchases=None, revenue=None, watch_seconds=None),
        dict(activity_date=D2, n_interactions=4, active_users=3, new_users=2, active_items=2, avg_rating=2.75,
             purchases=None, revenue=None, watch_seconds=None),
    ]  # fmt: skip


def test_ratings_funnel_counts_liked_as_four_of_five_and_up(ratings):
    activity, _, _ = ratings
    funnel = [
        (r["activity_date"], r["step"], r["step_name"], r["n_events"], r["n_users"])
        for r in rows_of(analytics.daily_funnel(activity), "activity_date", "step")
    ]
    assert funnel == [
        (D1, 1, "rated", 2, 1),
        (D1, 2, "liked", 1, 1),
        (D2, 1, "rated", 4, 3),
        (D2, 2, "liked", 2, 2),
    ]


def test_category_activity_counts_an_item_in_each_of_its_genres(ratings):
    activity, _, _ = ratings
    got = [
        (r["activity_date"], r["category"], r["n_interactions"], r["active_users"])
        for r in rows_of(analytics.daily_category_activity(activity), "activity_date", "category")
    ]
    assert got == [
        (D1, "Action", 1, 1),
        (D1, "Comedy", 1, 1),
        (D1, "Crime", 1, 1),
        (D2, "(none)", 2, 2),
        (D2, "Action", 2, 2),
        (D2, "Crime", 2, 2),
    ]


def test_users_carry_demographics_with_movielens_age_groups(ratings):
    activity, interactions, users = ratings
    got = rows_of(analytics.users(activity, users, interactions.select("user_id", "ts")), "user_id")
    assert [(r["user_id"], r["age_group"], r["gender"], r["n_interactions"]) for r in got] == [
        ("u1", "18-24", "F", 3),
        ("u2", "56+", "M", 2),
        ("u3", "Under 18", "F", 1),
    ]
    assert got[0]["first_seen"] == datetime.datetime(2024, 3, 2, 20, 15)  # UTC session zone
    no_demographics = analytics.users(activity, None, interactions.select("user_id", "ts"))
    assert {r["gender"] for r in no_demographics.collect()} == {None}


def test_profiles_rank_categories_hours_and_weekdays(ratings):
    activity, _, _ = ratings
    by_user = {r["user_id"]: r for r in analytics.user_profiles(activity).collect()}
    u1 = by_user["u1"]
    # u1: i1 (Action|Crime), i2 (Comedy), i3 (none): four categories once each -> alphabetical
    assert u1["top_categories"] == "(none)|Action|Comedy"
    assert (u1["top_category"], u1["top_category_share"]) == ("(none)", round(1 / 3, 6))
    assert (u1["active_hours"], u1["peak_hour"]) == ("20|9", 20)
    assert (u1["active_weekdays"], u1["peak_weekday"]) == ("Sat|Sun", "Sat")
    assert (u1["n_interactions"], u1["n_items"], u1["active_days"], u1["avg_rating"]) == (3, 3, 2, 4.0)
    assert {u: r["activity_level"] for u, r in by_user.items()} == {
        "u3": "light",
        "u2": "regular",
        "u1": "heavy",
    }


def test_popular_items_rank_by_users_then_interactions_then_id_per_segment(ratings):
    activity, interactions, users = ratings
    table = analytics.users(activity, users, interactions.select("user_id", "ts"))
    popular = rows_of(analytics.popular_items(activity, table, k=2), "segment_type", "segment", "rank")
    overall = [(r["rank"], r["item_id"], r["n_users"]) for r in popular if r["segment_type"] == "overall"]
    assert overall == [(1, "i1", 3), (2, "i3", 2)]
    women = [
        (r["item_id"], r["avg_rating"])
        for r in popular
        if (r["segment_type"], r["segment"]) == ("gender", "F")
    ]
    assert women == [("i1", 3.5), ("i2", 3.0)]  # u1 and u3; i2 and i3 tie on one user each
    assert {(r["segment_type"], r["segment"]) for r in popular} >= {
        ("age_group", "56+"),
        ("category", "Comedy"),
    }


# --- popular_items as a cold-start source: trending, and always k items ---------------------------

LAST = datetime.date(2024, 3, 20)  # the data's last day: the trending week is 03-14 .. 03-20


def day(d: int) -> datetime.date:
    return datetime.date(2024, 3, d)


@pytest.fixture(scope="module")
def cold_start(spark):
    interactions = spark.createDataFrame(
        [
            # "old": five users, all on 03-13 at 23:00 UTC: the evening before the window opens
            *[(u, "old", 4.0, ts(day(13), 23)) for u in ("u1", "u2", "u3", "u4", "u5")],
            # "mix": three users before the window, one (u6) inside it
            *[(u, "mix", 3.0, ts(day(10), 12)) for u in ("u1", "u2", "u3")],
            ("u6", "mix", 5.0, ts(day(16), 8)),
            # "t2": two users, three interactions in the window (u3 twice, once on the last day)
            ("u3", "t2", 4.0, ts(day(19), 10)),
            ("u3", "t2", 5.0, ts(LAST, 23)),
            ("u4", "t2", 2.0, ts(day(15), 10)),
            # "t1": two users, two interactions, the first just after midnight of the first day
            ("u1", "t1", 4.0, datetime.datetime(2024, 3, 14, 0, 5, tzinfo=datetime.UTC)),
            ("u2", "t1", 3.0, ts(day(17), 10)),
            # "t3": one user, one interaction: ties with "mix" inside the window
            ("u5", "t3", 1.0, ts(day(18), 10)),
        ],
        "user_id string, item_id string, weight double, ts timestamp",
    ).withColumn("event_type", analytics.F.lit("rating"))
    # Seven items in the catalogue; "aa" and "zz" were never touched.
    items = spark.createDataFrame(
        [("old", "Drama"), ("mix", "Drama"), ("t1", "Comedy"), ("t2", "Comedy"), ("t3", ""),
         ("aa", "Drama"), ("zz", "Comedy")],
        "item_id string, genres string",
    )  # fmt: skip
    users = spark.createDataFrame(
        # u6, the only man, touched one item: a segment far short of k
        [(u, 30, "M" if u == "u6" else "F", "writer", "1") for u in ("u1", "u2", "u3", "u4", "u5", "u6")],
        "user_id string, age int, gender string, occupation string, zip string",
    )
    activity = analytics.prepare(interactions, items, "movielens", (1.0, 5.0))
    table = analytics.users(activity, users, interactions.select("user_id", "ts")).cache()
    return activity, table


def segment_rows(popular: list[dict], segment_type: str, segment: str) -> list[tuple]:
    return [
        (r["rank"], r["item_id"], r["n_users"], r["n_interactions"], r["avg_rating"])
        for r in popular
        if (r["segment_type"], r["segment"]) == (segment_type, segment)
    ]


def test_trending_counts_only_the_last_seven_days_of_the_data(cold_start):
    activity, users = cold_start
    popular = rows_of(analytics.popular_items(activity, users, k=4), "segment_type", "segment", "rank")

    # "old" (five users on 03-13) is out; "mix" counts only u6's one rating inside the window and
    # ties with "t3" on one user and one interaction: the smaller id first.
    assert segment_rows(popular, "trending", "last_7_days") == [
        (1, "t2", 2, 3, 3.666667),
        (2, "t1", 2, 2, 3.5),
        (3, "mix", 1, 1, 5.0),
        (4, "t3", 1, 1, 1.0),
    ]
    assert [r[1] for r in segment_rows(popular, "overall", "all")] == ["old", "mix", "t2", "t1"]


def test_the_trending_window_length_is_a_parameter(cold_start):
    activity, users = cold_start
    popular = rows_of(
        analytics.popular_items(activity, users, k=2, trending_days=1), "segment_type", "segment", "rank"
    )

    # 03-20 alone: u3's late rating of "t2"; then padding from the overall ranking.
    assert segment_rows(popular, "trending", "last_1_days") == [
        (1, "t2", 1, 1, 5.0),
        (2, "old", 0, 0, None),
    ]
    assert not segment_rows(popular, "trending", "last_7_days")


def test_a_small_segment_is_padded_with_the_overall_ranking_in_order(cold_start):
    activity, users = cold_start
    popular = rows_of(analytics.popular_items(activity, users, k=5), "segment_type", "segment", "rank")

    # Overall: old 5 users, mix 4, t2 2 (3 interactions), t1 2 (2), t3 1.
    assert segment_rows(popular, "gender", "M") == [
        (1, "mix", 1, 1, 5.0),  # u6's own item
        (2, "old", 0, 0, None),  # then the overall items it lacks, in overall order
        (3, "t2", 0, 0, None),
        (4, "t1", 0, 0, None),
        (5, "t3", 0, 0, None),
    ]
    # Trending has four items of its own, then the overall best it lacks.
    assert segment_rows(popular, "trending", "last_7_days")[4:] == [(5, "old", 0, 0, None)]


@pytest.mark.parametrize("k", [3, 7, 9])
def test_every_segment_lists_k_distinct_items_when_the_catalogue_has_them(cold_start, k):
    activity, users = cold_start
    popular = rows_of(analytics.popular_items(activity, users, k=k), "segment_type", "segment", "rank")

    by_segment: dict[tuple[str, str], list[dict]] = {}
    for r in popular:
        by_segment.setdefault((r["segment_type"], r["segment"]), []).append(r)
    assert set(by_segment) == {
        ("overall", "all"), ("trending", "last_7_days"), ("gender", "F"), ("gender", "M"),
        ("age_group", "25-34"), ("occupation", "writer"),
        ("category", "Drama"), ("category", "Comedy"), ("category", "(none)"),
    }  # fmt: skip
    catalogue = 7
    for segment, rows in by_segment.items():
        items = [r["item_id"] for r in rows]
        assert [r["rank"] for r in rows] == list(range(1, min(k, catalogue) + 1)), segment
        assert len(set(items)) == len(items), segment
    # Past the five interacted items, the overall list goes on with the untouched ones by id.
    overall = [(r["item_id"], r["n_users"]) for r in by_segment[("overall", "all")]]
    assert overall == [("old", 5), ("mix", 4), ("t2", 2), ("t1", 2), ("t3", 1), ("aa", 0), ("zz", 0)][:k]


def test_rating_distribution_counts_each_star(ratings):
    activity, _, _ = ratings
    got = [(r["label"], r["n"]) for r in rows_of(analytics.value_distribution(activity), "position")]
    assert got == [("1.0", 1), ("2.0", 1), ("3.0", 1), ("4.0", 2), ("5.0", 1)]


@pytest.fixture(scope="module")
def shop(spark):
    interactions = spark.createDataFrame(
        [
            ("a", "p1", "view", ts(D1, 10), "electronics.smartphone", "19.99"),
            ("a", "p1", "cart", ts(D1, 10), "electronics.smartphone", "19.99"),
            ("a", "p1", "purchase", ts(D1, 11), "electronics.smartphone", "19.99"),
            ("a", "p1", "purchase", ts(D1, 11), "electronics.smartphone", "0.02"),
            ("b", "p2", "view", ts(D1, 12), None, "5.00"),
            ("b", "p2", "view", ts(D2, 12), None, "5.00"),
        ],
        "user_id string, item_id string, event_type string, ts timestamp, category_code string, price string",
    ).withColumn("price", analytics.F.col("price").cast("double"))
    items = spark.createDataFrame(
        [("p1", "acme electronics.smartphone", "electronics|smartphone", "electronics.smartphone"),
         ("p2", "product p2", "", None)],
        "item_id string, title string, genres string, category_code string",
    )  # fmt: skip
    return analytics.prepare(interactions, items, "ecommerce", None)


def test_shop_funnel_has_every_step_every_day_with_zeros(shop):
    got = [
        (r["activity_date"], r["step_name"], r["n_events"], r["n_users"])
        for r in rows_of(analytics.daily_funnel(shop), "activity_date", "step")
    ]
    assert got == [
        (D1, "view", 2, 2),
        (D1, "cart", 1, 1),
        (D1, "purchase", 2, 1),
        (D2, "view", 1, 1),
        (D2, "cart", 0, 0),
        (D2, "purchase", 0, 0),
    ]


def test_shop_revenue_is_an_exact_decimal_and_zero_without_purchases(shop):
    kpis = {r["activity_date"]: r for r in analytics.daily_kpis(shop).collect()}
    assert (kpis[D1]["purchases"], kpis[D1]["revenue"]) == (2, decimal.Decimal("20.01"))
    assert (kpis[D2]["purchases"], kpis[D2]["revenue"]) == (0, decimal.Decimal("0.00"))
    categories = {
        (r["activity_date"], r["category"]) for r in analytics.daily_category_activity(shop).collect()
    }
    assert categories == {(D1, "electronics"), (D1, "(none)"), (D2, "(none)")}  # the top level only
    profiles = {r["user_id"]: (r["purchases"], r["revenue"]) for r in analytics.user_profiles(shop).collect()}
    assert profiles == {"a": (2, decimal.Decimal("20.01")), "b": (0, decimal.Decimal("0.00"))}


@pytest.fixture(scope="module")
def tv(spark):
    interactions = spark.createDataFrame(
        [
            # household, channel, watch seconds, UTC time, the broadcaster's program date and hour
            ("h1", "c1", 120, ts(D1, 22), D2, 0),
            ("h1", "c1", 2000, ts(D1, 23), D2, 1),
            ("h2", "c1", 400, ts(D1, 23), D2, 1),
        ],
        "user_id string, item_id string, watch_seconds int, ts timestamp, program_date date, program_hour int",
    ).withColumn("event_type", analytics.F.lit("watch"))
    items = spark.createDataFrame(
        [("c1", "Canal Uno", "News")], "item_id string, title string, genres string"
    )
    return analytics.prepare(interactions, items, "tv", None)


def test_tv_funnel_and_watch_time_per_program_hour(tv):
    funnel = [
        (r["step_name"], r["n_events"], r["n_users"]) for r in rows_of(analytics.daily_funnel(tv), "step")
    ]
    assert funnel == [("tuned in", 3, 2), ("watched 5+ min", 2, 2), ("watched 30+ min", 1, 1)]
    watch = [
        (r["activity_date"], r["item_id"], r["hour"], r["watch_seconds"], r["viewers"])
        for r in rows_of(analytics.watch_time_hourly(tv), "hour")
    ]
    assert watch == [(D2, "c1", 0, 120, 1), (D2, "c1", 1, 2400, 2)]  # the program calendar, not UTC
    (kpi,) = analytics.daily_kpis(tv).collect()
    assert (kpi["activity_date"], kpi["watch_seconds"], kpi["purchases"]) == (D1, 2520, None)
    buckets = [(r["label"], r["n"]) for r in rows_of(analytics.value_distribution(tv), "position")]
    assert buckets == [("< 5 min", 1), ("5-15 min", 1), ("30-45 min", 1)]


def test_blocked_items_never_reach_the_cold_start_lists_which_still_hold_k(spark, cold_start):
    activity, users = cold_start
    blocked = spark.createDataFrame([("old",), ("t2",)], "item_id string")
    popular = rows_of(
        analytics.popular_items(activity, users, k=5, blocked=blocked), "segment_type", "segment", "rank"
    )
    assert not {r["item_id"] for r in popular} & {"old", "t2"}
    by_segment: dict[tuple[str, str], list[str]] = {}
    for r in popular:
        by_segment.setdefault((r["segment_type"], r["segment"]), []).append(r["item_id"])
    # Seven items less two blocked: five left, so every segment still lists five.
    assert all(len(items) == 5 for items in by_segment.values()), by_segment
    assert by_segment[("overall", "all")] == ["mix", "t1", "t3", "aa", "zz"]


def test_popular_items_count_users_without_a_distinct_count_over_stacked_events(cold_start):
    # A distinct count beside other aggregates makes Spark Expand every stacked event row and
    # shuffle them all (over 6x the events; more than 325 s of the task's 578 at 20M ratings);
    # counting (user, item) pairs per segment adds up map-side instead.
    activity, users = cold_start
    plan = analytics.popular_items(activity, users, k=4)._jdf.queryExecution().optimizedPlan().toString()
    assert "Expand" not in plan and "count(distinct" not in plan.lower(), plan
