"""Expectation suites for MovieLens, raw and clean, as code.

Row-level rules on raw data use `mostly = 1 - max_bad_row_fraction`: a handful of bad rows is
normal and goes to quarantine in the clean step, but a file where many rows break a rule is the
wrong file or the wrong layout, and the run stops there.
"""

from __future__ import annotations

import great_expectations as gx
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recflow.validation import CRITICAL, WARNING

E = gx.expectations


def _meta(severity: str, description: str) -> dict:
    return {"severity": severity, "description": description}


def _suite(name: str, expectations: list):
    # Built with its expectations in one go: add_expectation() on a free-standing suite asks
    # for a data context, and these builders must be callable anywhere (tests, docs).
    return gx.ExpectationSuite(name=name, expectations=expectations)


def raw_interactions_view(raw: DataFrame) -> DataFrame:
    """Raw text plus parsed shadows of the numeric fields, so ranges can be checked."""
    return raw.withColumn("rating_value", F.expr("try_cast(rating AS DOUBLE)"))


def raw_interactions_suite(n_fields: int, rating_min: float, rating_max: float, max_bad_row_fraction: float):
    mostly = 1 - max_bad_row_fraction
    suite = []
    for column in ("user_id", "item_id", "rating", "timestamp"):
        suite.append(E.ExpectColumnToExist(column=column, meta=_meta(CRITICAL, f"column {column} exists")))
    suite.append(E.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta(CRITICAL, "file has rows")))
    suite.append(
        E.ExpectColumnValuesToBeBetween(
            column="_n_fields", min_value=n_fields, max_value=n_fields, mostly=mostly,
            meta=_meta(CRITICAL, f"each line has {n_fields} fields (right delimiter)"),
        )
    )  # fmt: skip
    for column in ("user_id", "item_id"):
        suite.append(
            E.ExpectColumnValuesToMatchRegex(
                column=column,
                regex=r"^[0-9]+$",
                mostly=mostly,
                meta=_meta(CRITICAL, f"{column} is an integer id"),
            )
        )
    suite.append(
        E.ExpectColumnValuesToNotBeNull(
            column="rating_value", mostly=mostly, meta=_meta(CRITICAL, "rating is a number")
        )
    )
    suite.append(
        E.ExpectColumnValuesToBeBetween(
            column="rating_value", min_value=rating_min, max_value=rating_max, mostly=mostly,
            meta=_meta(CRITICAL, f"rating within {rating_min:g}..{rating_max:g}"),
        )
    )  # fmt: skip
    suite.append(
        E.ExpectColumnValuesToMatchRegex(
            column="timestamp",
            regex=r"^[0-9]+$",
            mostly=mostly,
            meta=_meta(CRITICAL, "timestamp is unix seconds"),
        )
    )
    # Exact re-sends happen; they are removed in cleaning, so only worth a warning.
    suite.append(
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["user_id", "item_id"],
            mostly=0.99,
            meta=_meta(WARNING, "one rating per user and item"),
        )
    )
    return _suite("movielens_raw_interactions", suite)


def raw_items_suite(max_bad_row_fraction: float):
    mostly = 1 - max_bad_row_fraction
    suite = []
    suite.append(E.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta(CRITICAL, "catalogue has rows")))
    suite.append(
        E.ExpectColumnValuesToMatchRegex(
            column="item_id",
            regex=r"^[0-9]+$",
            mostly=mostly,
            meta=_meta(CRITICAL, "item_id is an integer id"),
        )
    )
    suite.append(
        E.ExpectColumnValuesToNotBeNull(
            column="title", mostly=mostly, meta=_meta(CRITICAL, "every movie has a title")
        )
    )
    suite.append(
        E.ExpectColumnValuesToBeUnique(column="item_id", meta=_meta(WARNING, "one catalogue line per movie"))
    )
    return _suite("movielens_raw_items", suite)


def clean_interactions_suite(rating_min: float, rating_max: float):
    suite = []
    suite.append(E.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta(CRITICAL, "interactions left")))
    for column in ("user_idx", "item_idx", "rating", "ts"):
        suite.append(E.ExpectColumnValuesToNotBeNull(column=column, meta=_meta(CRITICAL, f"{column} set")))
    suite.append(
        E.ExpectColumnValuesToBeBetween(
            column="rating",
            min_value=rating_min,
            max_value=rating_max,
            meta=_meta(CRITICAL, "rating in range"),
        )
    )
    suite.append(
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["user_idx", "item_idx"], meta=_meta(CRITICAL, "one row per user and item")
        )
    )
    # With a single user there is nothing collaborative to learn.
    suite.append(
        E.ExpectColumnUniqueValueCountToBeBetween(
            column="user_idx", min_value=2, meta=_meta(CRITICAL, "at least two users")
        )
    )
    return _suite("movielens_clean_interactions", suite)


def clean_items_suite():
    suite = []
    suite.append(E.ExpectColumnValuesToBeUnique(column="item_id", meta=_meta(CRITICAL, "item_id unique")))
    suite.append(E.ExpectColumnValuesToNotBeNull(column="title", meta=_meta(CRITICAL, "title set")))
    return _suite("movielens_clean_items", suite)
