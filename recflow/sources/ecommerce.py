"""E-commerce clickstreams: implicit feedback from view / cart / purchase events.

Two public layouts, told apart by their header line (file names are free, e.g. 2019-Oct.csv):
  rees46        event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
                ("eCommerce behavior data from multi category store"; event_time "2019-10-01 00:00:00 UTC")
  retailrocket  timestamp,visitorid,event,itemid,transactionid   (epoch milliseconds)

Canonical tables after cleaning:
  interactions(user_id, item_id, event_type, weight, ts, session_id, category_id, category_code,
               brand, price)   event_type in view, cart, remove_from_cart, purchase
  items(item_id, title, genres, category_id, category_code, brand, price)   derived from the events
  users(user_id, first_seen, last_seen, n_events, n_sessions, n_purchases)  derived from the events
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recflow.cleaning import RowRule
from recflow.features import event_weight, more_events_than
from recflow.sources.base import Detected, Layout, TableCleaner, detect_by_header
from recflow.textfiles import TableFile, unclosed_quote_rule

TITLE = "e-commerce"
EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")
# Retailrocket's names for the same funnel steps (it has no removal event).
RETAILROCKET_EVENTS = {"view": "view", "addtocart": "cart", "transaction": "purchase"}

REES46_COLUMNS = (
    "event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price", "user_id",
    "user_session",
)  # fmt: skip
RETAILROCKET_COLUMNS = ("timestamp", "visitorid", "event", "itemid", "transactionid")

# Both are RFC 4180 CSV: REES46 exports quote a brand or category that holds a comma.
LAYOUTS = (
    Layout(
        "rees46",
        "*.csv",
        (TableFile("interactions", "*.csv", ",", REES46_COLUMNS, header=REES46_COLUMNS, quoted=True),),
    ),
    Layout(
        "retailrocket",
        "*.csv",
        (
            TableFile(
                "interactions", "*.csv", ",", RETAILROCKET_COLUMNS, header=RETAILROCKET_COLUMNS, quoted=True
            ),
        ),
    ),
)

# Events before the web existed or after 2100 are corrupt clocks, not shoppers.
_FIRST_PLAUSIBLE = "2000-01-01"
_LAST_PLAUSIBLE = "2100-01-01"
_MS_RANGE = (946_684_800_000, 4_102_444_800_000)


def layout_named(name: str) -> Layout:
    return next(layout for layout in LAYOUTS if layout.name == name)


def detect(location: str | Path) -> Detected:
    return detect_by_header(location, LAYOUTS, TITLE)


# --- row rules and typing (pure DataFrame functions) ------------------------------------------


def _is_not_id(column: str) -> Column:
    # Shop ids are positive integers of any size (REES46 user ids pass 2^31); they are mapped to
    # int32 later, so only the shape matters here.
    return F.col(column).isNull() | ~F.col(column).rlike(r"^[0-9]{1,18}$")


def parse_event_time(column: str, time_zone: str) -> Column:
    """`2019-10-01 00:00:00 UTC` at its own zone; a time without zone is in `time_zone`."""
    with_zone = F.try_to_timestamp(F.col(column), F.lit("yyyy-MM-dd HH:mm:ss z"))
    local = F.try_to_timestamp(F.col(column), F.lit("yyyy-MM-dd HH:mm:ss"))
    return F.coalesce(with_zone, F.to_utc_timestamp(local, time_zone))


def _implausible(ts: Column) -> Column:
    return (ts < F.lit(_FIRST_PLAUSIBLE).cast("timestamp")) | (ts >= F.lit(_LAST_PLAUSIBLE).cast("timestamp"))


def rees46_rules(time_zone: str) -> list[RowRule]:
    ts = parse_event_time("event_time", time_zone)
    price = F.expr("try_cast(price AS DOUBLE)")
    return [
        RowRule("_raw", ~F.col("_valid_utf8"), "text is not valid UTF-8"),
        unclosed_quote_rule(),
        RowRule("_raw", F.col("_n_fields") != len(REES46_COLUMNS), f"expected {len(REES46_COLUMNS)} fields"),
        RowRule("event_time", ts.isNull(), "event_time is not a time like 2019-10-01 00:00:00 UTC"),
        RowRule("event_time", _implausible(ts), "event_time outside 2000..2100"),
        RowRule(
            "event_type",
            ~F.col("event_type").isin(*EVENT_TYPES),
            f"unknown event_type (allowed: {', '.join(EVENT_TYPES)})",
        ),
        RowRule("product_id", _is_not_id("product_id"), "product_id is not a positive integer id"),
        RowRule("user_id", _is_not_id("user_id"), "user_id is not a positive integer id"),
        RowRule(
            "price",
            (F.col("price") != "") & (price.isNull() | F.isnan(price) | (price < 0)),
            "price is not a non-negative number",
        ),
    ]


def typed_rees46(df: DataFrame, weights: dict[str, float], time_zone: str) -> DataFrame:
    return df.select(
        F.col("user_id").cast("bigint").cast("string").alias("user_id"),
        F.col("product_id").cast("bigint").cast("string").alias("item_id"),
        F.col("event_type"),
        event_weight(F.col("event_type"), weights).alias("weight"),
        parse_event_time("event_time", time_zone).alias("ts"),
        F.nullif(F.col("user_session"), F.lit("")).alias("session_id"),
        F.nullif(F.col("category_id"), F.lit("")).alias("category_id"),
        F.nullif(F.col("category_code"), F.lit("")).alias("category_code"),
        F.nullif(F.col("brand"), F.lit("")).alias("brand"),
        F.expr("try_cast(price AS DOUBLE)").alias("price"),
        "_file",
        "_line",
        "_raw",
    )


def retailrocket_rules() -> list[RowRule]:
    ms = F.expr("try_cast(timestamp AS BIGINT)")
    return [
        RowRule("_raw", ~F.col("_valid_utf8"), "text is not valid UTF-8"),
        unclosed_quote_rule(),
        RowRule(
            "_raw",
            F.col("_n_fields") != len(RETAILROCKET_COLUMNS),
            f"expected {len(RETAILROCKET_COLUMNS)} fields",
        ),
        RowRule(
            "timestamp",
            ms.isNull() | ~ms.between(*_MS_RANGE),
            "timestamp is not unix milliseconds between 2000 and 2100",
        ),
        RowRule("visitorid", _is_not_id("visitorid"), "visitorid is not a positive integer id"),
        RowRule(
            "event",
            ~F.col("event").isin(*RETAILROCKET_EVENTS),
            f"unknown event (allowed: {', '.join(RETAILROCKET_EVENTS)})",
        ),
        RowRule("itemid", _is_not_id("itemid"), "itemid is not a positive integer id"),
        RowRule(
            "transactionid",
            (F.col("transactionid") != "") & ~F.col("transactionid").rlike(r"^[0-9]+$"),
            "transactionid is not an integer",
        ),
    ]


def typed_retailrocket(df: DataFrame, weights: dict[str, float]) -> DataFrame:
    event_type = F.create_map(*[F.lit(x) for pair in RETAILROCKET_EVENTS.items() for x in pair])[
        F.col("event")
    ]
    return df.select(
        F.col("visitorid").cast("bigint").cast("string").alias("user_id"),
        F.col("itemid").cast("bigint").cast("string").alias("item_id"),
        event_type.alias("event_type"),
        event_weight(event_type, weights).alias("weight"),
        F.timestamp_millis(F.col("timestamp").cast("bigint")).alias("ts"),
        F.nullif(F.col("transactionid"), F.lit("")).alias("session_id"),
        F.lit(None).cast("string").alias("category_id"),
        F.lit(None).cast("string").alias("category_code"),
        F.lit(None).cast("string").alias("brand"),
        F.lit(None).cast("double").alias("price"),
        "_file",
        "_line",
        "_raw",
    )


def cleaners(layout: Layout, settings) -> dict[str, TableCleaner]:
    """Exact re-sends (same user, item, event, time and session) are duplicates; a user with more
    events in a day than a person makes is a bot, and all their rows of that day are quarantined."""
    if layout.name == "rees46":
        rules = rees46_rules(settings.source_time_zone)
        typed = lambda df: typed_rees46(df, settings.event_weights, settings.source_time_zone)  # noqa: E731
    else:
        rules = retailrocket_rules()
        typed = lambda df: typed_retailrocket(df, settings.event_weights)  # noqa: E731
    limit = settings.max_events_per_user_day
    return {
        "interactions": TableCleaner(
            rules,
            typed,
            key=["user_id", "item_id", "event_type", "ts", "session_id"],
            order=[F.col("_file"), F.col("_line")],
            typed_rules=[
                RowRule(
                    "user_id",
                    more_events_than(limit),
                    f"bot-like activity: more than {limit} events by one user in a day",
                )
            ],
        )
    }


def derive(clean: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Items and users from the events themselves: the layouts carry no catalogue. An item's
    attributes are those of its latest event (prices and categories change)."""
    events = clean["interactions"]
    latest = {c: F.max_by(c, "ts").alias(c) for c in ("category_id", "category_code", "brand", "price")}
    items = events.groupBy("item_id").agg(*latest.values())
    title = F.nullif(F.concat_ws(" ", "brand", "category_code"), F.lit(""))
    items = items.select(
        "item_id",
        F.coalesce(title, F.concat(F.lit("product "), "item_id")).alias("title"),
        F.regexp_replace(F.coalesce("category_code", F.lit("")), r"\.", "|").alias("genres"),
        *latest,
    )
    users = events.groupBy("user_id").agg(
        F.min("ts").alias("first_seen"),
        F.max("ts").alias("last_seen"),
        F.count("*").alias("n_events"),
        F.countDistinct("session_id").alias("n_sessions"),
        F.count_if(F.col("event_type") == "purchase").alias("n_purchases"),
    )
    return {"items": items, "users": users}


def generate_sample(target: Path, settings) -> None:
    from recflow.generate.ecommerce import generate_ecommerce

    generate_ecommerce(
        target, n_users=settings.sample_users, n_items=settings.sample_items, seed=settings.seed
    )
