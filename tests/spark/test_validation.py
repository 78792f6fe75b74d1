"""Great Expectations on Spark frames: results flattened per expectation, and enforce() stopping
the run only on failed critical expectations, with a message that points at the file and line."""

from __future__ import annotations

import html
import logging
import re
from types import SimpleNamespace

import great_expectations as gx
import pytest

from expectations.movielens import raw_interactions_suite, raw_interactions_view
from recflow.validation import CRITICAL, WARNING, ValidationFailed, enforce, run_suite, run_suites

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
    assert "1 critical expectation(s) failed in movielens_raw_interactions:" in message
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


# --- Data Docs: run_suites with a docs_dir ------------------------------------------------------

RUN = "movielens/2024-03-01/validate_raw"
STORED_RUN = "movielens__2024-03-01__validate_raw"  # GX refuses '/' in a stored key
OTHER_RUN = "other/2024-03-02/validate_raw"
HALF_BAD_ROWS = [(u, i, "9" if n % 2 else r, t) for n, (u, i, r, t) in enumerate(GOOD_ROWS)]


def _twice_suite():
    E = gx.expectations
    return gx.ExpectationSuite(
        name="twice",
        expectations=[
            E.ExpectColumnValuesToNotBeNull(column="user_id"),
            E.ExpectColumnValuesToMatchRegex(column="item_id", regex="^[0-4]$"),
        ],
    )


def _one_field_per_line(spark):
    data = [
        (f"{u},{u + 1},3,881250000", None, None, None, 1, FILE, n)
        for n, u in enumerate(range(1, 30), start=1)
    ]
    return raw_interactions_view(spark.createDataFrame(data, RAW_SCHEMA))


def _text(path) -> str:
    """What a person reads on a page: no scripts, no tags, entities decoded, one space."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", path.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture(scope="module")
def docs(spark, tmp_path_factory):
    """One docs_dir shared, as in production, by two runs of one logical date (a re-run) and a
    run of another dataset: three runs, four validations, two suites."""
    docs_dir = tmp_path_factory.mktemp("docs")
    half_bad = _raw(spark, HALF_BAD_ROWS)
    checks = [(half_bad, _suite()), (_raw(spark, GOOD_ROWS), _twice_suite())]
    first = run_suites(checks, docs_dir, RUN)
    again = run_suites([(half_bad, _suite())], docs_dir, RUN)
    other = run_suites([(_one_field_per_line(spark), _suite())], docs_dir, OTHER_RUN)
    site = docs_dir / "gx" / "uncommitted" / "data_docs" / "local_site"
    return SimpleNamespace(dir=docs_dir, site=site, checks=checks, first=first, again=again, other=other)


def _pages(docs, suite_name: str, stored_run: str) -> list:
    return sorted((docs.site / "validations" / suite_name / stored_run).glob("*/*.html"))


def test_run_suites_returns_what_the_ephemeral_path_returns(docs):
    results, index = docs.first
    ephemeral, no_index = run_suites(docs.checks, None, RUN)
    assert no_index is None
    assert results == ephemeral
    assert [r["suite"] for r in results] == ["movielens_raw_interactions"] * len(_suite().expectations) + [
        "twice",
        "twice",
    ]
    failed = [(r["expectation_key"], r["unexpected_count"]) for r in results if not r["success"]]
    assert failed == [
        ("expect_column_values_to_be_between:rating_value", 10),
        ("expect_column_values_to_match_regex:item_id", 4),
    ]
    # The file and line are still what enforce() reports.
    with pytest.raises(ValidationFailed, match=f"first at {FILE} line 2"):
        enforce(results)
    # The caller's suites are left as they were: no id stamped on them by the file context.
    assert all(suite.id is None for _, suite in docs.checks)


def test_index_lists_every_validation_of_every_run(docs):
    for _, index in (docs.first, docs.again, docs.other):
        assert index == str(docs.site / "index.html")
    index_html = (docs.site / "index.html").read_text()
    for name in ("movielens_raw_interactions", "twice", STORED_RUN, "other__2024-03-02__validate_raw"):
        assert name in index_html
    pages = sorted((docs.site / "validations").rglob("*.html"))
    assert len(pages) == 4
    for page in pages:
        assert page.relative_to(docs.site).as_posix() in index_html
    assert (docs.site / "expectations" / "twice.html").is_file()


def test_a_rerun_of_the_same_run_name_adds_a_page(docs):
    assert docs.again[0] == docs.first[0][: len(_suite().expectations)]
    pages = _pages(docs, "movielens_raw_interactions", STORED_RUN)
    assert len(pages) == 2  # two run times under one run name, the first one kept
    assert len(_pages(docs, "twice", STORED_RUN)) == 1


def test_the_validation_page_shows_the_failing_rows_with_file_and_line(docs):
    page = _text(_pages(docs, "movielens_raw_interactions", STORED_RUN)[0])
    assert "Expectation Suite: movielens_raw_interactions" in page
    assert f"Run Name {STORED_RUN}" in page
    assert "Status: Failed" in page
    assert "10 unexpected values found. 50% of 20 total rows." in page
    # The first three bad rows (odd n: lines 2, 4, 6) under their file, from the SUMMARY sample.
    assert f"Sampled Unexpected Values Count _file _line 9.0 3 {FILE}, {FILE}, {FILE} 2, 4, 6" in page

    twice = _text(_pages(docs, "twice", STORED_RUN)[0])
    assert "Status: Failed" in twice and "4 unexpected values found" in twice


def test_the_page_of_a_file_with_the_wrong_delimiter_names_its_lines(docs):
    with pytest.raises(ValidationFailed, match="each line has 4 fields"):
        enforce(docs.other[0])
    (page_path,) = _pages(docs, "movielens_raw_interactions", "other__2024-03-02__validate_raw")
    page = _text(page_path)
    assert "Run Name other__2024-03-02__validate_raw" in page
    lines_1_to_3 = f"3 {FILE}, {FILE}, {FILE} 1, 2, 3"
    # Every line one field (_n_fields = 1), and no rating at all (NULL): both name their lines.
    assert f"Sampled Unexpected Values Count _file _line 1 {lines_1_to_3}" in page
    assert f"Sampled Unexpected Values Count _file _line null {lines_1_to_3}" in page
