"""Expectation suites for e-commerce events (REES46 and Retailrocket layouts), raw and clean."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from expectations.common import (
    E,
    clean_interactions_suite,
    clean_items_suite,
    columns_exist,
    field_count,
    has_rows,
    matches,
    meta,
    suite,
)
from recflow.sources import ecommerce
from recflow.validation import CRITICAL, WARNING

_ID = r"^[0-9]{1,18}$"


def raw_rees46_view(raw: DataFrame, time_zone: str) -> DataFrame:
    return raw.withColumns(
        {
            "event_ts": ecommerce.parse_event_time("event_time", time_zone),
            "price_value": F.expr("try_cast(price AS DOUBLE)"),
        }
    )


def raw_rees46_suite(max_bad_row_fraction: float):
    mostly = 1 - max_bad_row_fraction
    expectations = columns_exist(ecommerce.REES46_COLUMNS)
    expectations += has_rows("file has rows")
    expectations += field_count(len(ecommerce.REES46_COLUMNS), mostly)
    expectations += [
        E.ExpectColumnValuesToNotBeNull(
            column="event_ts", mostly=mostly, meta=meta(CRITICAL, "event_time parses, like 2019-10-01 00:00:00 UTC")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="event_type", value_set=list(ecommerce.EVENT_TYPES), mostly=mostly,
            meta=meta(CRITICAL, "event_type is view, cart, remove_from_cart or purchase"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="price_value", min_value=0, mostly=mostly, meta=meta(CRITICAL, "price is not negative")
        ),
        # Real logs lose a session id now and then; many missing means a broken tracker.
        E.ExpectColumnValuesToNotBeNull(
            column="user_session", mostly=0.95, meta=meta(WARNING, "events carry a session id")
        ),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["user_id", "product_id", "event_type", "event_time", "user_session"], mostly=0.99,
            meta=meta(WARNING, "few exact re-sends (they are removed in cleaning)"),
        ),
    ]  # fmt: skip
    expectations += matches("product_id", _ID, mostly, "product_id is a positive integer id")
    expectations += matches("user_id", _ID, mostly, "user_id is a positive integer id")
    return suite("ecommerce_raw_events_rees46", expectations)


def raw_retailrocket_view(raw: DataFrame) -> DataFrame:
    # A transaction id belongs on transactions and nowhere else.
    consistent = (F.col("event") == "transaction") == (F.coalesce(F.col("transactionid"), F.lit("")) != "")
    return raw.withColumns(
        {"ms": F.expr("try_cast(timestamp AS BIGINT)"), "transaction_id_consistent": consistent}
    )


def raw_retailrocket_suite(max_bad_row_fraction: float):
    mostly = 1 - max_bad_row_fraction
    expectations = columns_exist(ecommerce.RETAILROCKET_COLUMNS)
    expectations += has_rows("file has rows")
    expectations += field_count(len(ecommerce.RETAILROCKET_COLUMNS), mostly)
    expectations += [
        E.ExpectColumnValuesToBeBetween(
            column="ms", min_value=946_684_800_000, max_value=4_102_444_800_000, mostly=mostly,
            meta=meta(CRITICAL, "timestamp is unix milliseconds between 2000 and 2100"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="event", value_set=list(ecommerce.RETAILROCKET_EVENTS), mostly=mostly,
            meta=meta(CRITICAL, "event is view, addtocart or transaction"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="transaction_id_consistent", value_set=[True], mostly=0.99,
            meta=meta(WARNING, "transactionid set exactly on transaction events"),
        ),
    ]  # fmt: skip
    expectations += matches("visitorid", _ID, mostly, "visitorid is a positive integer id")
    expectations += matches("itemid", _ID, mostly, "itemid is a positive integer id")
    return suite("ecommerce_raw_events_retailrocket", expectations)


def raw_checks(raw: dict[str, DataFrame], detected, settings) -> list:
    layout = detected.layout
    if layout.name == "rees46":
        return [
            (
                raw_rees46_view(raw["interactions"], settings.source_time_zone),
                raw_rees46_suite(settings.max_bad_row_fraction),
            )
        ]
    return [
        (raw_retailrocket_view(raw["interactions"]), raw_retailrocket_suite(settings.max_bad_row_fraction))
    ]


def clean_checks(clean: dict[str, DataFrame], detected, settings) -> list:
    weights = settings.event_weights
    weight_range = (min(0.0, *weights.values()), max(0.0, *weights.values()))
    interactions_suite = clean_interactions_suite(
        "ecommerce",
        ecommerce.EVENT_TYPES,
        weight_range,
        ["user_id", "item_id", "event_type", "ts", "session_id"],
    )
    # The bot rule quarantines single heavy days; a user heavy every day slips through it.
    events = clean["interactions"]
    return [
        (events, interactions_suite),
        (clean["items"], clean_items_suite("ecommerce")),
        (
            events.groupBy("user_id").agg(F.count("*").alias("events_per_user")),
            suite(
                "ecommerce_clean_users",
                [
                    E.ExpectColumnValuesToBeBetween(
                        column="events_per_user", min_value=1, max_value=settings.max_events_per_user_day * 31,
                        meta=meta(WARNING, "no user with more events than a month of the bot limit"),
                    )
                ],
            ),
        ),
    ]  # fmt: skip
