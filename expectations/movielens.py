"""Expectation suites for MovieLens, raw and clean, as code (see expectations.common)."""

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
from recflow.validation import CRITICAL, WARNING


def raw_interactions_view(raw: DataFrame) -> DataFrame:
    """Raw text plus parsed shadows of the numeric fields, so ranges can be checked."""
    return raw.withColumn("rating_value", F.expr("try_cast(rating AS DOUBLE)"))


def raw_interactions_suite(n_fields: int, rating_min: float, rating_max: float, max_bad_row_fraction: float):
    mostly = 1 - max_bad_row_fraction
    expectations = columns_exist(("user_id", "item_id", "rating", "timestamp"))
    expectations += has_rows("file has rows")
    expectations += field_count(n_fields, mostly)
    for column in ("user_id", "item_id"):
        expectations += matches(column, r"^[0-9]+$", mostly, f"{column} is an integer id")
    expectations += [
        E.ExpectColumnValuesToNotBeNull(column="rating_value", mostly=mostly, meta=meta(CRITICAL, "rating is a number")),
        E.ExpectColumnValuesToBeBetween(
            column="rating_value", min_value=rating_min, max_value=rating_max, mostly=mostly,
            meta=meta(CRITICAL, f"rating within {rating_min:g}..{rating_max:g}"),
        ),
    ]  # fmt: skip
    expectations += matches("timestamp", r"^[0-9]+$", mostly, "timestamp is unix seconds")
    # Exact re-sends happen; they are removed in cleaning, so only worth a warning.
    expectations.append(
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["user_id", "item_id"],
            mostly=0.99,
            meta=meta(WARNING, "one rating per user and item"),
        )
    )
    return suite("movielens_raw_interactions", expectations)


def raw_items_suite(max_bad_row_fraction: float):
    mostly = 1 - max_bad_row_fraction
    expectations = has_rows("catalogue has rows")
    expectations += matches("item_id", r"^[0-9]+$", mostly, "item_id is an integer id")
    expectations += [
        E.ExpectColumnValuesToNotBeNull(
            column="title", mostly=mostly, meta=meta(CRITICAL, "every movie has a title")
        ),
        E.ExpectColumnValuesToBeUnique(column="item_id", meta=meta(WARNING, "one catalogue line per movie")),
    ]
    return suite("movielens_raw_items", expectations)


def raw_referential_suite(max_bad_row_fraction: float):
    return suite(
        "movielens_raw_referential_integrity",
        in_catalogue(1 - max_bad_row_fraction, "every rated movie is in the catalogue"),
    )


def raw_checks(raw: dict[str, DataFrame], detected, settings) -> list:
    layout = detected.layout
    n_fields = len(layout.file_for("interactions").columns)
    interactions = raw_interactions_view(raw["interactions"])  # raw is cached by the caller
    checks = [
        (
            interactions,
            raw_interactions_suite(
                n_fields, layout.rating_min, layout.rating_max, settings.max_bad_row_fraction
            ),
        ),
        (raw["items"], raw_items_suite(settings.max_bad_row_fraction)),
        (
            with_catalogue_flag(
                interactions.select("_file", "_line", "item_id"), raw["items"], "item_id", "item_id"
            ),
            raw_referential_suite(settings.max_bad_row_fraction),
        ),
    ]
    return checks


def clean_checks(clean: dict[str, DataFrame], detected, settings) -> list:
    layout = detected.layout
    interactions = clean["interactions"]
    return [
        (
            interactions,
            clean_interactions_suite(
                "movielens", ("rating",), (layout.rating_min, layout.rating_max), ["user_idx", "item_idx"]
            ),
        ),
        (clean["items"], clean_items_suite("movielens")),
        (
            with_catalogue_flag(interactions.select("item_id"), clean["items"], "item_id", "item_id"),
            suite(
                "movielens_clean_referential_integrity",
                in_catalogue(1.0, "every rated movie is in the catalogue"),
            ),
        ),
    ]
