"""Expectation building blocks shared by every source's suites.

Every expectation carries a severity: `critical` stops the run before anything is published (the
last good recommendations stay); `warning` is recorded and the run goes on. Row-level rules on
raw data use `mostly = 1 - max_bad_row_fraction`: a handful of bad rows is normal and goes to
quarantine in the clean step, but a file where many rows break a rule is the wrong file or the
wrong layout.
"""

from __future__ import annotations

import great_expectations as gx
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from recflow.validation import CRITICAL, WARNING

E = gx.expectations
INT32_MAX = 2**31 - 1


def meta(severity: str, description: str) -> dict:
    return {"severity": severity, "description": description}


def suite(name: str, expectations: list):
    # Built with its expectations in one go: add_expectation() on a free-standing suite asks
    # for a data context, and these builders must be callable anywhere (tests, docs).
    return gx.ExpectationSuite(name=name, expectations=expectations)


def columns_exist(columns, description: str = "column {} exists") -> list:
    return [E.ExpectColumnToExist(column=c, meta=meta(CRITICAL, description.format(c))) for c in columns]


def has_rows(description: str) -> list:
    return [E.ExpectTableRowCountToBeBetween(min_value=1, meta=meta(CRITICAL, description))]


def field_count(n_fields: int, mostly: float) -> list:
    return [
        E.ExpectColumnValuesToBeBetween(
            column="_n_fields", min_value=n_fields, max_value=n_fields, mostly=mostly,
            meta=meta(CRITICAL, f"each line has {n_fields} fields (right delimiter)"),
        )
    ]  # fmt: skip


def matches(column: str, regex: str, mostly: float, description: str, severity: str = CRITICAL) -> list:
    return [
        E.ExpectColumnValuesToMatchRegex(
            column=column, regex=regex, mostly=mostly, meta=meta(severity, description)
        )
    ]


def with_catalogue_flag(
    interactions: DataFrame, items: DataFrame, item_col: str, catalogue_col: str
) -> DataFrame:
    """interactions + `item_in_catalogue` (true or false, never NULL), for referential integrity."""
    known = items.select(F.col(catalogue_col).alias("_known_item")).distinct()
    joined = interactions.join(F.broadcast(known), interactions[item_col] == known["_known_item"], "left")
    return joined.withColumn("item_in_catalogue", F.col("_known_item").isNotNull()).drop("_known_item")


def in_catalogue(mostly: float, description: str) -> list:
    return [
        E.ExpectColumnValuesToBeInSet(
            column="item_in_catalogue", value_set=[True], mostly=mostly, meta=meta(CRITICAL, description)
        )
    ]


def clean_interactions_suite(
    source: str, event_types, weight_range: tuple[float, float], unique_key: list[str]
):
    """What every source's clean interactions must satisfy before ALS sees them."""
    low, high = weight_range
    expectations = has_rows("interactions left after cleaning")
    for column in ("user_id", "item_id", "user_idx", "item_idx", "event_type", "weight", "ts"):
        expectations.append(
            E.ExpectColumnValuesToNotBeNull(column=column, meta=meta(CRITICAL, f"{column} set"))
        )
    # The types ALS and the warehouse rely on (a string weight would train silently wrong).
    types = {"user_id": "StringType", "item_id": "StringType", "user_idx": "IntegerType",
             "item_idx": "IntegerType", "event_type": "StringType", "weight": "DoubleType", "ts": "TimestampType"}  # fmt: skip
    for column, type_ in types.items():
        expectations.append(
            E.ExpectColumnValuesToBeOfType(
                column=column, type_=type_, meta=meta(CRITICAL, f"{column} is {type_}")
            )
        )
    for column in ("user_idx", "item_idx"):
        expectations.append(
            E.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=0,
                max_value=INT32_MAX,
                meta=meta(CRITICAL, f"{column} is an int32 id"),
            )
        )
    expectations += [
        E.ExpectColumnValuesToBeInSet(
            column="event_type", value_set=list(event_types), meta=meta(CRITICAL, "known event types only")
        ),
        E.ExpectColumnValuesToBeBetween(
            column="weight",
            min_value=low,
            max_value=high,
            meta=meta(CRITICAL, f"weight within {low:g}..{high:g}"),
        ),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=unique_key, meta=meta(CRITICAL, f"no duplicates of ({', '.join(unique_key)})")
        ),
        # With a single user there is nothing collaborative to learn.
        E.ExpectColumnUniqueValueCountToBeBetween(
            column="user_idx", min_value=2, meta=meta(CRITICAL, "at least two users")
        ),
        E.ExpectColumnUniqueValueCountToBeBetween(
            column="item_idx", min_value=2, meta=meta(CRITICAL, "at least two items")
        ),
    ]
    return suite(f"{source}_clean_interactions", expectations)


def clean_items_suite(source: str):
    return suite(
        f"{source}_clean_items",
        [
            E.ExpectColumnValuesToBeUnique(column="item_id", meta=meta(CRITICAL, "item_id unique")),
            E.ExpectColumnValuesToNotBeNull(column="title", meta=meta(CRITICAL, "title set")),
        ],
    )


def run_over_run_checks(
    spark: SparkSession,
    source: str,
    interactions: DataFrame,
    previous: dict | None,
    max_row_count_change: float,
    max_event_mix_change: float,
) -> list[tuple[DataFrame, object]]:
    """Row count and event mix against the previous run's clean facts (warnings: a sale day
    doubles the traffic, and a person should look, but the data is not wrong).

    The mix check runs on a small frame (event_type, share, previous_share, change) so that the
    Data Docs show every type's shares side by side."""
    if not previous:
        return []
    before = next(r["clean_rows"] for r in previous["reconciliation"] if r["table_name"] == "interactions")
    low, high = int(before * (1 - max_row_count_change)), int(before * (1 + max_row_count_change)) + 1
    count_suite = suite(
        f"{source}_run_over_run_rows",
        [
            E.ExpectTableRowCountToBeBetween(
                min_value=low, max_value=high,
                meta=meta(WARNING, f"clean interactions within ±{max_row_count_change:.0%} of the previous "
                                   f"run's {before} ({previous.get('ds', 'previous run')})"),
            )
        ],
    )  # fmt: skip
    previous_mix = previous.get("event_mix") or {}
    previous_total = sum(previous_mix.values()) or 1
    previous_frame = spark.createDataFrame(
        [(k, v / previous_total) for k, v in previous_mix.items()], "event_type string, previous_share double"
    )
    current = interactions.groupBy("event_type").count()
    total = F.sum("count").over(Window.partitionBy())
    mix = (
        current.withColumn("share", F.col("count") / total)
        .join(previous_frame, "event_type", "full_outer")
        .fillna({"share": 0.0, "previous_share": 0.0})
        .withColumn("change", F.abs(F.col("share") - F.col("previous_share")))
    )
    mix_suite = suite(
        f"{source}_run_over_run_event_mix",
        [
            E.ExpectColumnValuesToBeBetween(
                column="change", min_value=0, max_value=max_event_mix_change,
                meta=meta(WARNING, f"each event type's share moved by at most {max_event_mix_change:.0%}"),
            ),
            E.ExpectColumnDistinctValuesToBeInSet(
                column="event_type", value_set=sorted(previous_mix),
                meta=meta(WARNING, "no event type the previous run did not have"),
            ),
        ],
    )  # fmt: skip
    return [(interactions, count_suite), (mix, mix_suite)]
