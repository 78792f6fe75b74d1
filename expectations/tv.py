"""Expectation suites for TV viewing logs and the optional channel catalogue, raw and clean."""

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
    in_catalogue,
    matches,
    meta,
    suite,
    with_catalogue_flag,
)
from recflow.sources import tv
from recflow.validation import CRITICAL, WARNING

_KEY = r"^[A-Za-z0-9_.:-]{1,64}$"


def raw_viewing_view(raw: DataFrame) -> DataFrame:
    return raw.withColumns(
        {
            "program_day": F.try_to_timestamp(F.col("program_date"), F.lit("yyyy-MM-dd")),
            "hour": F.expr("try_cast(program_hour AS INT)"),
            "seconds": F.expr("try_cast(watch_time_portrait AS INT)"),
        }
    )


def raw_viewing_suite(max_bad_row_fraction: float):
    mostly = 1 - max_bad_row_fraction
    expectations = columns_exist(tv.VIEWING_COLUMNS)
    expectations += has_rows("viewing log has rows")
    expectations += field_count(len(tv.VIEWING_COLUMNS), mostly)
    expectations += matches("channel_id", _KEY, mostly, "channel_id is an id")
    expectations += matches("cellid", _KEY, mostly, "cellid is an id")
    expectations += [
        E.ExpectColumnValuesToNotBeNull(
            column="program_day", mostly=mostly, meta=meta(CRITICAL, "program_date is a date like 2024-03-01")
        ),
        E.ExpectColumnValuesToBeBetween(
            column="hour", min_value=0, max_value=23, mostly=mostly, meta=meta(CRITICAL, "program_hour is 0..23")
        ),
        E.ExpectColumnValuesToNotBeNull(
            column="hour", mostly=mostly, meta=meta(CRITICAL, "program_hour is a whole number")
        ),
        E.ExpectColumnValuesToBeBetween(
            column="seconds", min_value=1, max_value=tv.MAX_WATCH_SECONDS, mostly=mostly,
            meta=meta(CRITICAL, f"watch_time_portrait is 1..{tv.MAX_WATCH_SECONDS} seconds"),
        ),
        E.ExpectColumnValuesToNotBeNull(
            column="seconds", mostly=mostly, meta=meta(CRITICAL, "watch_time_portrait is whole seconds")
        ),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["cellid", "channel_id", "program_date", "program_hour"], mostly=0.99,
            meta=meta(WARNING, "one row per household, channel and hour (re-sends are removed)"),
        ),
    ]  # fmt: skip
    return suite("tv_raw_viewing", expectations)


def raw_channels_suite():
    return suite(
        "tv_raw_channels",
        [
            *has_rows("channel catalogue has rows"),
            E.ExpectColumnValuesToBeUnique(column="channel_id", meta=meta(WARNING, "one line per channel")),
            E.ExpectColumnValuesToNotBeNull(
                column="channel_name", mostly=0.99, meta=meta(WARNING, "channels have names")
            ),
        ],
    )


def raw_checks(raw: dict[str, DataFrame], detected, settings) -> list:
    checks = [(raw_viewing_view(raw["interactions"]), raw_viewing_suite(settings.max_bad_row_fraction))]
    if "items" in raw:
        checks.append((raw["items"], raw_channels_suite()))
        flagged = with_catalogue_flag(
            raw["interactions"].select("_file", "_line", "channel_id"),
            raw["items"],
            "channel_id",
            "channel_id",
        )
        checks.append(
            (
                flagged,
                suite(
                    "tv_raw_referential_integrity",
                    in_catalogue(
                        1 - settings.max_bad_row_fraction, "every watched channel is in the catalogue"
                    ),
                ),
            )
        )
    return checks


def clean_checks(clean: dict[str, DataFrame], detected, settings) -> list:
    viewing = clean["interactions"]
    checks = [
        (
            viewing,
            clean_interactions_suite(
                "tv", tv.EVENT_TYPES, (0.0, settings.watch_time_cap_s / 60),
                ["user_id", "item_id", "program_date", "program_hour"],
            ),
        ),
        (clean["items"], clean_items_suite("tv")),
        (
            viewing.groupBy("user_id", "program_date").agg(F.sum("watch_seconds").alias("seconds_per_day")),
            suite(
                "tv_clean_household_days",
                [
                    # More than 24 hours of viewing in a day means several screens or a logging loop.
                    E.ExpectColumnValuesToBeBetween(
                        column="seconds_per_day", min_value=1, max_value=24 * 3600, mostly=0.999,
                        meta=meta(WARNING, "a household watches at most 24 hours a day"),
                    )
                ],
            ),
        ),
    ]  # fmt: skip
    if "items" in detected.files:  # a catalogue was given, not derived from the viewing
        checks.append(
            (
                with_catalogue_flag(viewing.select("item_id"), clean["items"], "item_id", "item_id"),
                suite(
                    "tv_clean_referential_integrity",
                    in_catalogue(1.0, "every watched channel is in the catalogue"),
                ),
            )
        )
    return checks
