"""Implicit feedback in one place: event weights, watch-time confidence, and the preference table
ALS trains on. Pure DataFrame functions; every number comes from the run's Settings.

Why these shapes:
- A purchase says more than a view, so events are weighted per type (view 1, cart 3,
  purchase 5 by default). remove_from_cart carries the negative of cart: a carted-then-removed
  product falls back to what its views say, instead of counting as a strong preference.
- Watch time is minutes watched, capped (a TV left on for hours is not ten times the interest).
- Implicit ALS reads the preference as confidence (1 + alpha * r). Sums of events are heavy-tailed
  (one user viewing a product 300 times), so implicit preferences are log-scaled: log1p(sum).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def event_weight(event_type: Column, weights: dict[str, float]) -> Column:
    """The weight of each event type; an unconfigured type weighs 0 (it cannot occur: unknown
    types are quarantined before this runs)."""
    lookup = F.create_map(*[F.lit(x) for pair in sorted(weights.items()) for x in pair])
    return F.coalesce(lookup[event_type].cast("double"), F.lit(0.0))


def watch_minutes(seconds: Column, cap_seconds: int) -> Column:
    """Minutes watched, capped at `cap_seconds`."""
    return F.least(seconds.cast("double"), F.lit(float(cap_seconds))) / 60.0


def more_events_than(limit: int, user: str = "user_id", ts: str = "ts") -> Column:
    """True on every row of a user-day with more than `limit` events (bots, crawlers, TVs left on)."""
    per_day = Window.partitionBy(user, F.to_date(ts))
    return F.count(F.lit(1)).over(per_day) > limit


def preferences(
    interactions: DataFrame,
    explicit: bool,
    min_user_interactions: int = 1,
    min_item_interactions: int = 1,
) -> DataFrame:
    """interactions(user_idx, item_idx, weight, ts) -> (user_idx, item_idx, rating, ts), one row
    per pair, the table ALS fits (`rating` is ALS's name for it).

    explicit: the rating itself (cleaning kept one per pair). implicit: log1p of the summed
    event weights, pairs whose sum is not positive dropped. Then users and items with fewer
    pairs than the minimum support are dropped, once (not iterated to a fixed point, so the
    result is easy to explain: "items seen by fewer than N users")."""
    if explicit:
        pairs = interactions.select("user_idx", "item_idx", F.col("weight").alias("rating"), "ts")
    else:
        pairs = (
            interactions.groupBy("user_idx", "item_idx")
            .agg(F.sum("weight").alias("total"), F.max("ts").alias("ts"))
            .where(F.col("total") > 0)
            .select("user_idx", "item_idx", F.log1p("total").alias("rating"), "ts")
        )
    user_support = Window.partitionBy("user_idx")
    item_support = Window.partitionBy("item_idx")
    return (
        pairs.withColumn("_u", F.count(F.lit(1)).over(user_support))
        .withColumn("_i", F.count(F.lit(1)).over(item_support))
        .where((F.col("_u") >= min_user_interactions) & (F.col("_i") >= min_item_interactions))
        .drop("_u", "_i")
    )
