"""Great Expectations on Spark frames: results flattened per expectation, and enforce() stopping
the run only on failed critical expectations, with a message that points at the file and line."""

from __future__ import annotations

import logging

import great_expectations as gx
import pytest

from expectations.movielens import raw_interactions_suite, raw_interactions_view
from recflow.validation import CRITICAL, WARNING, ValidationFailed, enforce, run_suite

pytestmark = pytest.mark.spark

RAW_SCHEMA = (
    "user_id string, item_id string, rating string, timestamp string, _n_fields int, _file string, _line long"
)
FILE = "file:/data/ml-100k/u.data"


def _raw(spark, rows):
    """Rows (user, item, rating, timestamp) as the raw table ingest writes: strings plus
    the field count and the file and line each one came from."""
    data = [(u, i, r, t, 4, FILE, n) for n, (u, i, r, t) in enumerate(rows, start=1)]
    return raw_interactions_view(spark.createDataFrame(data, RAW_SCHEMA))


def _suite():
    return raw_interactions_suite(n_fields=4, rating_min=1, rating_max=5, max_bad_row_fraction=0.01)


GOOD_ROWS = [
    (str(u), str(i), str(1 + (u + i) % 5), str(881250000 + u * 10 + i))
    for u in range(1, 5)
    for i in range(1, 6)
]


@pytest.fixture(scope="module")
def good_results(spark):
    return run_suite(_raw(spark, GOOD_ROWS), _suite())


def test_good_rows_pass_every_expectation(good_results):
    failed = [r for r in good_results if not r["success"]]
    assert failed == []
    assert len(good_results) == len(_suite().expectations)
    enforce(good_results)  # must not raise
    by_key = {r["expectation_key"]: r for r in good_results}
    rating = by_key["expect_column_values_to_be_between:rating_value"]
    assert (rating["element_count"], rating["unexpected_count"]) == (20, 0)
    assert rating["severity"] == CRITICAL
    assert rating["suite"] == "movielens_raw_interactions"


def test_expectation_keys_are_unique(good_results):
    keys = [r["expectation_key"] for r in good_results]
    assert len(keys) == len(set(keys))
    assert "expect_compound_columns_to_be_unique:user_id,item_id" in keys
    assert "expect_table_row_count_to_be_between" in keys


def test_repeated_expectations_get_numbered_keys(spark):
    E = gx.expectations
    suite = gx.ExpectationSuite(
        name="twice",
        expectations=[
            E.ExpectColumnValuesToNotBeNull(column="user_id"),
            E.ExpectColumnValuesToNotBeNull(column="user_id", mostly=0.5),
            E.ExpectColumnValuesToNotBeNull(column="item_id"),
        ],
    )
    results = run_suite(_raw(spark, GOOD_ROWS[:3]), suite)
    assert [r["expectation_key"] for r in results] == [
        "expect_column_values_to_not_be_null:user_id",
        "expect_column_values_to_not_be_null:user_id#2",
        "expect_column_values_to_not_be_null:item_id",
    ]


def test_half_the_ratings_out_of_range_stops_the_run(spark):
    rows = [(u, i, "9" if n % 2 else r, t) for n, (u, i, r, t) in enumerate(GOOD_ROWS)]
    results = run_suite(_raw(spark, rows), _suite())
    failed = {r["expectation_key"]: r for r in results if not r["success"]}
    assert list(failed) == ["expect_column_values_to_be_between:rating_value"]
    assert (failed["expect_column_values_to_be_between:rating_value"]["unexpected_count"]) == 10

    with pytest.raises(ValidationFailed) as excinfo:
        enforce(results)
    message = str(excinfo.value)
    assert "1 critical expectation(s) failed in suite movielens_raw_interactions" in message
    assert "(column rating_value)" in message
    assert "10 of 20 rows unexpected" in message
    # The first bad row is the second line (n = 1 is odd).
    assert f"first at {FILE} line 2" in message


def test_failed_warning_is_logged_but_does_not_stop_the_run(spark, caplog):
    # Two ratings re-sent: 4 of 22 rows share their (user, item) with another row, over the 1% allowed.
    rows = GOOD_ROWS + [GOOD_ROWS[0], GOOD_ROWS[5]]
    results = run_suite(_raw(spark, rows), _suite())
    failed = [r for r in results if not r["success"]]
    assert [(r["expectation_key"], r["severity"], r["unexpected_count"]) for r in failed] == [
        ("expect_compound_columns_to_be_unique:user_id,item_id", WARNING, 4)
    ]
    with caplog.at_level(logging.WARNING, logger="recflow.validation"):
        enforce(results)  # must not raise
    assert "Data quality warning: one rating per user and item" in caplog.text


def test_a_few_bad_rows_pass_under_mostly(spark):
    # 1 bad rating in 200 rows is within max_bad_row_fraction=0.01: cleaning quarantines it.
    rows = [(str(n), "1", "3", "881250000") for n in range(200)]
    rows[17] = ("17", "1", "9", "881250000")
    results = run_suite(_raw(spark, rows), _suite())
    rating = next(
        r for r in results if r["expectation_key"] == "expect_column_values_to_be_between:rating_value"
    )
    assert rating["success"] is True
    assert rating["unexpected_count"] == 1
    enforce(results)


def test_a_file_with_the_wrong_delimiter_fails_with_file_and_line(spark):
    """Every line one field: item, rating and timestamp all NULL. GX then reports no unexpected
    percentage for those columns; the message must still name the file and the first line."""
    data = [
        (f"{u},{u + 1},3,881250000", None, None, None, 1, FILE, n)
        for n, u in enumerate(range(1, 30), start=1)
    ]
    raw = raw_interactions_view(spark.createDataFrame(data, RAW_SCHEMA))
    results = run_suite(raw, _suite())
    with pytest.raises(ValidationFailed) as failure:
        enforce(results)
    message = str(failure.value)
    assert "each line has 4 fields" in message and "(column _n_fields)" in message
    assert f"first at {FILE} line 1" in message
