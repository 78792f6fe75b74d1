"""Analytics aggregates for the warehouse and the run report: pure DataFrame -> DataFrame functions.

Every function takes the run's clean tables (interactions, items, users) through `Activity`, the
interactions with the columns every aggregate needs, and returns one table shaped like its
warehouse twin (sql/mysql/005_analytics.sql) minus `dataset` and `run_date`, which publish adds.

Determinism: re-running a date must publish identical rows, so sums of money are DECIMAL, sums
of watch time are integers, rating sums are sums of half-stars (exact in a double), and every
ranking breaks its ties on an id.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from recflow.ordering import percent_rank

# MovieLens 1M's age buckets (README of ml-1m), used for 100K's exact ages too: (lower bound, label).
AGE_GROUPS = (
    (1, "Under 18"),
    (18, "18-24"),
    (25, "25-34"),
    (35, "35-44"),
    (45, "45-49"),
    (50, "50-55"),
    (56, "56+"),
)
# A rating at least this far up the scale counts as liked: 4 or 5 of 1..5, 4.0 and up of 0.5..5.
LIKED_SHARE = 0.7
# TV funnel: a household "watched" a channel in an hour at 5 minutes, "stayed" at 30.
TV_WATCHED_S, TV_STAYED_S = 5 * 60, 30 * 60
# activity_level: the bottom half of users by interactions are light, the top tenth heavy.
LIGHT_BELOW, HEAVY_FROM = 0.5, 0.9
TOP_N_PROFILE = 3  # top categories, hours and weekdays kept in a profile
NO_CATEGORY = "(none)"
MONEY = "decimal(18,2)"
WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")  # Spark's dayofweek: 1 = Sunday
TRENDING_DAYS = 7  # popular_items' trending segment: the last week of the data


@dataclass(frozen=True)
class Activity:
    """The run's interactions prepared for analytics, with the source facts that shape them.

    events: user_id, item_id, event_type, activity_date (UTC), hour, weekday, rating (rating
            sources, else NULL), is_purchase and revenue (e-commerce, else NULL), watch_seconds
            (TV, else NULL), plus the TV program_date and program_hour (else NULL).
    categories: item_id, category; an item in two genres has two rows, an item without any
            has one row with category NO_CATEGORY.
    """

    events: DataFrame
    categories: DataFrame
    source: str
    rating_scale: tuple[float, float] | None


def prepare(
    interactions: DataFrame, items: DataFrame, source: str, rating_scale: tuple[float, float] | None
) -> Activity:
    columns = set(interactions.columns)

    def optional(name: str, kind: str) -> Column:
        return F.col(name).cast(kind) if name in columns else F.lit(None).cast(kind)

    ecommerce = source == "ecommerce"
    is_purchase = F.col("event_type") == "purchase"
    events = interactions.select(
        "user_id",
        "item_id",
        "event_type",
        F.to_date("ts").alias("activity_date"),
        F.hour("ts").alias("hour"),
        F.dayofweek("ts").alias("weekday"),
        (F.col("weight") if rating_scale else F.lit(None)).cast("double").alias("rating"),
        (is_purchase if ecommerce else F.lit(None)).cast("boolean").alias("is_purchase"),
        # 0 for the other events, so a user or day without purchases sums to 0.00, not NULL.
        (
            F.when(is_purchase, F.coalesce(optional("price", MONEY), F.lit(0).cast(MONEY))).otherwise(
                F.lit(0).cast(MONEY)
            )
            if ecommerce
            else F.lit(None).cast(MONEY)
        ).alias("revenue"),
        optional("watch_seconds", "bigint").alias("watch_seconds"),
        optional("program_date", "date").alias("program_date"),
        optional("program_hour", "int").alias("program_hour"),
    )
    return Activity(events, item_categories(items, source), source, rating_scale)


def item_categories(items: DataFrame, source: str) -> DataFrame:
    """item_id -> category: MovieLens genres and TV channel genres as listed ('|'-separated),
    e-commerce the top level of category_code (electronics of electronics.smartphone)."""
    if source == "ecommerce" and "category_code" in items.columns:
        names = F.array(F.split(F.col("category_code"), r"\.").getItem(0))
    else:
        names = F.split(F.coalesce(F.col("genres"), F.lit("")), r"\|")
    exploded = items.select("item_id", F.explode_outer(names).alias("category"))
    named = F.when(F.trim(F.col("category")) != "", F.trim(F.col("category"))).otherwise(F.lit(NO_CATEGORY))
    return exploded.select("item_id", named.alias("category")).distinct()


def _avg_rating() -> Column:
    # Ratings are multiples of 0.5, so their double sum is exact in any order; round the mean
    # so the division cannot differ in the last bit between plans.
    return F.round(F.sum("rating") / F.count("rating"), 6).alias("avg_rating")


def _source_measures() -> list[Column]:
    """avg_rating, purchases, revenue, watch_seconds: each NULL where the source lacks it."""
    return [
        _avg_rating(),
        F.sum(F.col("is_purchase").cast("bigint")).alias("purchases"),
        F.sum("revenue").cast(MONEY).alias("revenue"),
        F.sum("watch_seconds").alias("watch_seconds"),
    ]


def daily_kpis(activity: Activity) -> DataFrame:
    """activity_date -> n_interactions, active_users, new_users, active_items, avg_rating,
    purchases, revenue, watch_seconds."""
    events = activity.events
    first_day = events.groupBy("user_id").agg(F.min("activity_date").alias("first_date"))
    new_users = first_day.groupBy(F.col("first_date").alias("activity_date")).agg(
        F.count("*").alias("new_users")
    )
    per_day = events.groupBy("activity_date").agg(
        F.count("*").alias("n_interactions"),
        F.countDistinct("user_id").cast("int").alias("active_users"),
        F.countDistinct("item_id").cast("int").alias("active_items"),
        *_source_measures(),
    )
    return per_day.join(new_users, "activity_date", "left").select(
        "activity_date",
        "n_interactions",
        "active_users",
        F.coalesce("new_users", F.lit(0)).cast("int").alias("new_users"),
        "active_items",
        "avg_rating",
        "purchases",
        "revenue",
        "watch_seconds",
    )


def daily_category_activity(activity: Activity) -> DataFrame:
    """(activity_date, category) -> n_interactions, active_users, revenue, watch_seconds."""
    return (
        activity.events.join(activity.categories, "item_id")
        .groupBy("activity_date", "category")
        .agg(
            F.count("*").alias("n_interactions"),
            F.countDistinct("user_id").cast("int").alias("active_users"),
            F.sum("revenue").cast(MONEY).alias("revenue"),
            F.sum("watch_seconds").alias("watch_seconds"),
        )
    )


def funnel_steps(activity: Activity) -> list[tuple[int, str, Column]]:
    """(step, name, condition on an event) from the top of the funnel down."""
    if activity.source == "ecommerce":
        return [
            (i, name, F.col("event_type") == name) for i, name in enumerate(("view", "cart", "purchase"), 1)
        ]
    if activity.rating_scale is not None:
        low, high = activity.rating_scale
        liked = F.col("rating") >= F.lit(low + LIKED_SHARE * (high - low))
        return [(1, "rated", F.lit(True)), (2, "liked", liked)]
    return [
        (1, "tuned in", F.lit(True)),
        (2, "watched 5+ min", F.col("watch_seconds") >= TV_WATCHED_S),
        (3, "watched 30+ min", F.col("watch_seconds") >= TV_STAYED_S),
    ]


def daily_funnel(activity: Activity) -> DataFrame:
    """(activity_date, step) -> step_name, n_events, n_users; every step of every active day,
    with zeros where nobody reached it."""
    steps = funnel_steps(activity)
    reached = F.filter(
        F.array(*[F.when(condition, F.lit(step)) for step, _, condition in steps]), lambda s: s.isNotNull()
    )
    counted = (
        activity.events.select("activity_date", "user_id", F.explode(reached).alias("step"))
        .groupBy("activity_date", "step")
        .agg(F.count("*").alias("n_events"), F.countDistinct("user_id").cast("int").alias("n_users"))
    )
    names = activity.events.sparkSession.createDataFrame(
        [(step, name) for step, name, _ in steps], "step int, step_name string"
    )
    grid = activity.events.select("activity_date").distinct().crossJoin(F.broadcast(names))
    return grid.join(counted, ["activity_date", "step"], "left").select(
        "activity_date",
        F.col("step").cast("tinyint").alias("step"),
        "step_name",
        F.coalesce("n_events", F.lit(0)).cast("bigint").alias("n_events"),
        F.coalesce("n_users", F.lit(0)).cast("int").alias("n_users"),
    )


def hourly_activity(activity: Activity) -> DataFrame:
    """(activity_date, hour) -> n_interactions, active_users."""
    return activity.events.groupBy("activity_date", F.col("hour").cast("tinyint").alias("hour")).agg(
        F.count("*").alias("n_interactions"), F.countDistinct("user_id").cast("int").alias("active_users")
    )


def watch_time_hourly(activity: Activity) -> DataFrame:
    """TV: (program date, channel, program hour) -> watch_seconds, viewers. The broadcaster's
    own calendar (source_time_zone), which is how schedules are planned; empty for other sources."""
    events = activity.events.where(F.col("program_date").isNotNull() & F.col("watch_seconds").isNotNull())
    return events.groupBy(
        F.col("program_date").alias("activity_date"),
        "item_id",
        F.col("program_hour").cast("tinyint").alias("hour"),
    ).agg(
        F.sum("watch_seconds").alias("watch_seconds"), F.countDistinct("user_id").cast("int").alias("viewers")
    )


def age_group(age: Column) -> Column:
    """MovieLens 1M's bucket label for an age (1M stores the bucket's lower bound, 100K the age)."""
    label = F.lit(None).cast("string")
    for lower, name in AGE_GROUPS:
        label = F.when(age >= lower, F.lit(name)).otherwise(label)
    return label


def users(activity: Activity, source_users: DataFrame | None, timestamps: DataFrame) -> DataFrame:
    """Every user with interactions: demographics where the source has them, first and last
    interaction. `timestamps` is (user_id, ts) from the clean interactions."""
    seen = timestamps.groupBy("user_id").agg(
        F.min("ts").alias("first_seen"), F.max("ts").alias("last_seen"), F.count("*").alias("n_interactions")
    )
    known = set(source_users.columns) if source_users is not None else set()
    if {"age", "gender", "occupation"} <= known:
        demographics = source_users.select(
            "user_id",
            F.col("gender").cast("string").alias("gender"),
            F.col("age").cast("smallint").alias("age"),
            age_group(F.col("age")).alias("age_group"),
            F.col("occupation").cast("string").alias("occupation"),
            F.col("zip").cast("string").alias("zip_code"),
        )
    else:
        demographics = seen.select(
            "user_id",
            *[F.lit(None).cast(kind).alias(name) for name, kind in _DEMOGRAPHICS],
        )
    return seen.join(demographics, "user_id", "left").select(
        "user_id", *[name for name, _ in _DEMOGRAPHICS], "first_seen", "last_seen", "n_interactions"
    )


_DEMOGRAPHICS = (
    ("gender", "string"),
    ("age", "smallint"),
    ("age_group", "string"),
    ("occupation", "string"),
    ("zip_code", "string"),
)


def _top_values(events: DataFrame, value: Column, name: str) -> DataFrame:
    """user_id -> `{name}s` (the TOP_N_PROFILE most frequent values, '|'-joined, busiest first),
    `top_{name}` and `top_{name}_count`; ties go to the smaller value."""
    counts = events.groupBy("user_id", value.alias(name)).agg(F.count("*").alias("n"))
    order = Window.partitionBy("user_id").orderBy(F.col("n").desc(), F.col(name))
    ranked = counts.withColumn("pos", F.row_number().over(order)).where(F.col("pos") <= TOP_N_PROFILE)
    return ranked.groupBy("user_id").agg(
        F.array_join(
            F.transform(
                F.array_sort(F.collect_list(F.struct("pos", name))), lambda s: s[name].cast("string")
            ),
            "|",
        ).alias(f"{name}s"),
        F.min_by(name, "pos").alias(f"top_{name}"),
        F.min_by("n", "pos").alias(f"top_{name}_count"),
    )


def user_profiles(activity: Activity) -> DataFrame:
    """Per user: volume, activity level, top categories, busiest hours and weekdays, and the
    source's own measure (average rating, purchases and revenue, watch time)."""
    events = activity.events
    volume = events.groupBy("user_id").agg(
        F.count("*").alias("n_interactions"),
        F.countDistinct("item_id").cast("int").alias("n_items"),
        F.countDistinct("activity_date").cast("int").alias("active_days"),
        *_source_measures(),
    )
    volume = percent_rank(volume, "n_interactions", "_share")
    share = F.col("_share")
    level = (
        F.when(share < LIGHT_BELOW, F.lit("light"))
        .when(share < HEAVY_FROM, F.lit("regular"))
        .otherwise(F.lit("heavy"))
    )
    categories = _top_values(events.join(activity.categories, "item_id"), F.col("category"), "category")
    hours = _top_values(events, F.col("hour"), "hour")
    weekdays = _top_values(events, F.col("weekday"), "weekday")
    return (
        volume.withColumn("activity_level", level)
        .join(categories, "user_id", "left")
        .join(hours, "user_id", "left")
        .join(weekdays, "user_id", "left")
        .select(
            "user_id",
            "n_interactions",
            "n_items",
            "active_days",
            "activity_level",
            F.col("categorys").alias("top_categories"),
            "top_category",
            F.round(F.col("top_category_count") / F.col("n_interactions"), 6).alias("top_category_share"),
            F.col("hours").alias("active_hours"),
            F.col("top_hour").cast("tinyint").alias("peak_hour"),
            _weekday_names(F.col("weekdays")).alias("active_weekdays"),
            F.element_at(F.array(*[F.lit(d) for d in WEEKDAYS]), F.col("top_weekday")).alias("peak_weekday"),
            "avg_rating",
            "purchases",
            "revenue",
            "watch_seconds",
        )
    )


def _weekday_names(joined: Column) -> Column:
    """'7|1|6' -> 'Sat|Sun|Fri'."""
    names = F.array(*[F.lit(d) for d in WEEKDAYS])
    return F.array_join(
        F.transform(F.split(joined, r"\|"), lambda d: F.element_at(names, d.cast("int"))), "|"
    )


def popular_items(
    activity: Activity,
    users_table: DataFrame,
    k: int,
    trending_days: int = TRENDING_DAYS,
    blocked: DataFrame | None = None,
) -> DataFrame:
    """The cold-start lists: k items per segment, for users the model has never seen.

    Segments: overall ('overall', 'all'); gender, age_group and occupation where the source knows
    them; item category; and trending (f'last_{trending_days}_days'), the events of the
    trending_days UTC days ending at the data's last interaction day, inclusive. Each segment is
    ranked by distinct users, then interactions, then item id. SUMs of NULL measures stay NULL.

    Every segment lists exactly k items whenever the catalogue has k (ranks 1..k, no item
    twice): a segment with fewer than k items of its own is padded with the overall items it
    lacks, in overall order. The overall list ranks every interacted item before it pads with
    the catalogue's untouched items, by id. A padded row keeps the item's counts within its
    segment, which are always 0 users and 0 interactions (a segment short of k has all of its
    own items ranked already), and a NULL avg_rating: so padding tells itself apart.

    `blocked(item_id)`: items blocked for every user (the warehouse's blocklist) never appear,
    since these lists are served as they are to users the recommend step never saw.
    """
    if k < 1 or trending_days < 1:
        raise ValueError(f"k and trending_days must be at least 1, got k={k}, trending_days={trending_days}")
    if blocked is not None:
        blocked = F.broadcast(blocked.select(F.col("item_id").cast("string")).distinct())
        activity = dataclasses.replace(
            activity,
            events=activity.events.join(blocked, "item_id", "left_anti"),
            categories=activity.categories.join(blocked, "item_id", "left_anti"),
        )
    events = activity.events
    # Every segment counts from (user, item) pairs, not from events: a segment's users of an item
    # are then its pairs, a count(*) that adds up map-side, where a distinct count over the
    # stacked events (six segment types, a movie in several genres: over 6x the events) shuffled
    # every row of them.
    pairs = _user_item_pairs(events)
    columns = ("user_id", "item_id", "n", "rating_sum", "rating_n")
    segments = [pairs.select(*columns, F.lit("overall").alias("segment_type"), F.lit("all").alias("segment"))]
    for column in ("gender", "age_group", "occupation"):
        members = users_table.where(F.col(column).isNotNull()).select(
            "user_id", F.col(column).alias("segment")
        )
        segments.append(
            pairs.join(members, "user_id").select(*columns, F.lit(column).alias("segment_type"), "segment")
        )
    segments.append(
        pairs.join(activity.categories, "item_id").select(
            *columns, F.lit("category").alias("segment_type"), F.col("category").alias("segment")
        )
    )
    # The window ends at the data's own last day, not the run date: a re-run or a backfill of old
    # data gets the same list, and data that stops early still has something trending.
    last_day = events.agg(F.max("activity_date").alias("last_day"))
    recent = events.crossJoin(F.broadcast(last_day)).where(
        F.col("activity_date") > F.date_sub(F.col("last_day"), trending_days)
    )
    segments.append(
        _user_item_pairs(recent).select(
            *columns,
            F.lit("trending").alias("segment_type"),
            F.lit(f"last_{trending_days}_days").alias("segment"),
        )
    )
    stacked = functools.reduce(DataFrame.unionByName, segments)
    counts = stacked.groupBy("segment_type", "segment", "item_id").agg(
        F.count("*").alias("n_users"),
        F.sum("n").alias("n_interactions"),
        # As _avg_rating: sums of multiples of 0.5 are exact in any order.
        F.round(F.sum("rating_sum") / F.sum("rating_n"), 6).alias("avg_rating"),
    )
    order = Window.partitionBy("segment_type", "segment").orderBy(
        F.col("n_users").desc(), F.col("n_interactions").desc(), F.col("item_id")
    )
    # (group, position, item_id) orders a segment's list: its own ranking (group 0), then the
    # padding: the overall ranking (1), then the catalogue's items nobody touched, by id (2).
    own = (
        counts.withColumn("position", F.row_number().over(order))
        .where(F.col("position") <= k)
        .withColumn("group", F.lit(0))
    )
    untouched = (
        activity.categories.select("item_id")
        .distinct()
        .join(events.select("item_id").distinct(), "item_id", "left_anti")
        .orderBy("item_id")
        .limit(k)  # a shop's catalogue can hold millions that nobody touched
    )
    reference = own.where(F.col("segment_type") == "overall").select(
        "item_id", "position", F.lit(1).alias("group")
    )
    reference = reference.unionByName(
        untouched.select("item_id", F.lit(None).cast("int").alias("position"), F.lit(2).alias("group"))
    )
    keys = ["segment_type", "segment", "item_id"]
    padding = (
        counts.select("segment_type", "segment")
        .distinct()
        .crossJoin(F.broadcast(reference))
        .join(own.select(*keys), keys, "left_anti")
        .select(
            *keys,
            F.lit(0).cast("bigint").alias("n_users"),
            F.lit(0).cast("bigint").alias("n_interactions"),
            F.lit(None).cast("double").alias("avg_rating"),
            "position",
            "group",
        )
    )
    listed = Window.partitionBy("segment_type", "segment").orderBy("group", "position", "item_id")
    return (
        own.unionByName(padding)
        .withColumn("rank", F.row_number().over(listed))
        .where(F.col("rank") <= k)
        .select(
            "segment_type",
            "segment",
            F.col("rank").cast("smallint").alias("rank"),
            "item_id",
            "n_users",
            "n_interactions",
            "avg_rating",
        )
    )


def _user_item_pairs(events: DataFrame) -> DataFrame:
    """(user_id, item_id) -> n events, and the sum and count of their ratings (a NULL sum and a
    count of 0 where the source has none, so a mean of them is NULL as _avg_rating's is)."""
    return events.groupBy("user_id", "item_id").agg(
        F.count("*").alias("n"), F.sum("rating").alias("rating_sum"), F.count("rating").alias("rating_n")
    )


def item_popularity(activity: Activity) -> DataFrame:
    """Every item's reach (distinct users) and volume: the long tail chart of the run report."""
    return activity.events.groupBy("item_id").agg(
        F.countDistinct("user_id").alias("n_users"), F.count("*").alias("n_interactions")
    )


# TV watch time per household and hour, in minutes: the buckets of the distribution chart.
WATCH_BUCKETS = ((0, "< 5 min"), (5, "5-15 min"), (15, "15-30 min"), (30, "30-45 min"), (45, "45-60 min"))


def value_distribution(activity: Activity) -> DataFrame:
    """What the feedback looks like: ratings per star value, events per type, or watch time per
    bucket. -> (position, label, n), position ordering the bars."""
    events = activity.events
    if activity.rating_scale is not None:
        value = F.col("rating")
        return (
            events.groupBy(value.alias("position"))
            .agg(F.count("*").alias("n"))
            .select(F.col("position").cast("double"), F.format_number("position", 1).alias("label"), "n")
        )
    if activity.source == "ecommerce":
        order = F.array_position(
            F.array(*[F.lit(t) for t in ("view", "cart", "remove_from_cart", "purchase")]),
            F.col("event_type"),
        )
        return (
            events.groupBy("event_type")
            .agg(F.count("*").alias("n"))
            .select(order.cast("double").alias("position"), F.col("event_type").alias("label"), "n")
        )
    minutes = F.col("watch_seconds") / 60
    bucket = F.lit(None).cast("int")
    for lower, _ in WATCH_BUCKETS:
        bucket = F.when(minutes >= lower, F.lit(lower)).otherwise(bucket)
    labels = F.create_map(*[x for lower, label in WATCH_BUCKETS for x in (F.lit(lower), F.lit(label))])
    return (
        events.where(F.col("watch_seconds").isNotNull())
        .groupBy(bucket.alias("b"))
        .agg(F.count("*").alias("n"))
        .select(F.col("b").cast("double").alias("position"), labels[F.col("b")].alias("label"), "n")
    )
