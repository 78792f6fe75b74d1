"""TV viewing logs: implicit feedback weighted by watch time.

Layout (files told apart by header, names are free):
  viewing   channel_id,cellid,program_date,program_hour,watch_time_portrait
            cellid is the viewing household, watch time in seconds within that hour (1..3600)
  channels  channel_id,channel_name,genre      optional catalogue
Both are read with RFC 4180 quoting (a name may hold commas, quotes and line breaks).

Canonical tables after cleaning:
  interactions(user_id = cellid, item_id = channel_id, event_type 'watch', weight = minutes
               watched (capped), ts = start of the program hour, program_date, program_hour,
               watch_seconds)
  items(item_id, title, genres)   from the catalogue, or the channel ids seen when there is none
  users(user_id, n_days, watch_seconds, first_seen, last_seen)       derived from the viewing
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recflow.cleaning import RowRule
from recflow.features import more_events_than, watch_minutes
from recflow.sources.base import Detected, Layout, TableCleaner, detect_by_header
from recflow.textfiles import TableFile, unclosed_quote_rule

TITLE = "TV viewing"
EVENT_TYPES = ("watch",)
VIEWING_COLUMNS = ("channel_id", "cellid", "program_date", "program_hour", "watch_time_portrait")
CHANNEL_COLUMNS = ("channel_id", "channel_name", "genre")
MAX_WATCH_SECONDS = 3600  # watch time is per program hour

LAYOUTS = (
    Layout(
        "tv-viewing",
        "*.csv",
        (TableFile("interactions", "*.csv", ",", VIEWING_COLUMNS, header=VIEWING_COLUMNS, quoted=True),),
        optional=(TableFile("items", "*.csv", ",", CHANNEL_COLUMNS, header=CHANNEL_COLUMNS, quoted=True),),
    ),
)


def layout_named(name: str) -> Layout:
    return next(layout for layout in LAYOUTS if layout.name == name)


def detect(location: str | Path) -> Detected:
    return detect_by_header(location, LAYOUTS, TITLE)


def _is_not_key(column: str) -> Column:
    return F.col(column).isNull() | ~F.col(column).rlike(r"^[A-Za-z0-9_.:-]{1,64}$")


def _program_date() -> Column:
    return F.try_to_timestamp(F.col("program_date"), F.lit("yyyy-MM-dd"))


def viewing_rules() -> list[RowRule]:
    hour = F.expr("try_cast(program_hour AS INT)")
    seconds = F.expr("try_cast(watch_time_portrait AS INT)")
    return [
        RowRule("_raw", ~F.col("_valid_utf8"), "text is not valid UTF-8"),
        unclosed_quote_rule(),
        RowRule(
            "_raw", F.col("_n_fields") != len(VIEWING_COLUMNS), f"expected {len(VIEWING_COLUMNS)} fields"
        ),
        RowRule("channel_id", _is_not_key("channel_id"), "channel_id is empty or not an id"),
        RowRule("cellid", _is_not_key("cellid"), "cellid is empty or not an id"),
        RowRule("program_date", _program_date().isNull(), "program_date is not a date like 2024-03-01"),
        RowRule("program_hour", hour.isNull() | ~hour.between(0, 23), "program_hour is not an hour 0..23"),
        RowRule("watch_time_portrait", seconds.isNull(), "watch_time_portrait is not whole seconds"),
        RowRule(
            "watch_time_portrait",
            ~seconds.between(1, MAX_WATCH_SECONDS),
            f"watch_time_portrait outside 1..{MAX_WATCH_SECONDS} seconds",
        ),
    ]


def typed_viewing(df: DataFrame, cap_seconds: int, time_zone: str) -> DataFrame:
    seconds = F.col("watch_time_portrait").cast("int")
    # Program dates are the broadcaster's local calendar: the hour starts at local midnight + hour.
    local_start = _program_date() + F.make_interval(hours=F.col("program_hour").cast("int"))
    return df.select(
        F.col("cellid").alias("user_id"),
        F.col("channel_id").alias("item_id"),
        F.lit("watch").alias("event_type"),
        watch_minutes(seconds, cap_seconds).alias("weight"),
        F.to_utc_timestamp(local_start, time_zone).alias("ts"),
        F.to_date(_program_date()).alias("program_date"),
        F.col("program_hour").cast("int").alias("program_hour"),
        seconds.alias("watch_seconds"),
        "_file",
        "_line",
        "_raw",
    )


def channel_rules() -> list[RowRule]:
    return [
        RowRule("_raw", ~F.col("_valid_utf8"), "text is not valid UTF-8"),
        unclosed_quote_rule(),
        RowRule(
            "_raw", F.col("_n_fields") != len(CHANNEL_COLUMNS), f"expected {len(CHANNEL_COLUMNS)} fields"
        ),
        RowRule("channel_id", _is_not_key("channel_id"), "channel_id is empty or not an id"),
    ]


def typed_channels(df: DataFrame) -> DataFrame:
    return df.select(
        F.col("channel_id").alias("item_id"),
        F.coalesce(F.nullif("channel_name", F.lit("")), F.col("channel_id")).alias("title"),
        F.coalesce(F.col("genre"), F.lit("")).alias("genres"),
        "_file",
        "_line",
        "_raw",
    )


def cleaners(layout: Layout, settings) -> dict[str, TableCleaner]:
    """One row per household, channel and program hour; a re-sent hour keeps its last line.
    A household with more rows in a day than `max_events_per_user_day` is a set-top box left
    running or a logging loop, and its rows of that day are quarantined."""
    limit = settings.max_events_per_user_day
    return {
        "interactions": TableCleaner(
            viewing_rules(),
            lambda df: typed_viewing(df, settings.watch_time_cap_s, settings.source_time_zone),
            key=["user_id", "item_id", "program_date", "program_hour"],
            order=[F.col("_file").desc(), F.col("_line").desc()],
            typed_rules=[
                RowRule(
                    "cellid",
                    more_events_than(limit),
                    f"bot-like activity: more than {limit} viewing rows by one household in a day",
                )
            ],
        ),
        "items": TableCleaner(channel_rules(), typed_channels, key=["item_id"], order=[F.col("_line")]),
    }


def derive(clean: dict[str, DataFrame]) -> dict[str, DataFrame]:
    viewing = clean["interactions"]
    users = viewing.groupBy("user_id").agg(
        F.countDistinct("program_date").alias("n_days"),
        F.sum("watch_seconds").alias("watch_seconds"),
        F.min("ts").alias("first_seen"),
        F.max("ts").alias("last_seen"),
    )
    derived = {"users": users}
    if "items" not in clean:
        # No catalogue given: the channels seen, named by their ids.
        derived["items"] = viewing.select(
            "item_id", F.col("item_id").alias("title"), F.lit("").alias("genres")
        ).distinct()
    return derived


def generate_sample(target: Path, settings) -> None:
    """sample_users households watching sample_items channels."""
    from recflow.generate.tv import generate_tv

    generate_tv(
        target, n_households=settings.sample_users, n_channels=settings.sample_items, seed=settings.seed
    )
