"""MovieLens rows through the row rules and cleaning, layout detection and the download's errors."""

from __future__ import annotations

import datetime

import pytest

from recflow.clean import clean_table
from recflow.cleaning import split_bad_rows
from recflow.sources import movielens
from recflow.textfiles import read_lines, split_fields

ML100K = movielens.layout_named("ml-100k")
RATINGS_SPEC = ML100K.file_for("interactions")


def _cleaner(table):
    return movielens.cleaners(ML100K, settings=None)[table]  # Column rules need a live Spark


def _raw(spark, path, spec):
    return split_fields(read_lines(spark, str(path)), spec)


# --- row rules -------------------------------------------------------------------------------

# (line, first rule it breaks: (column, reason)); None for a good line.
INTERACTION_LINES = [
    (b"196\t242\t3\t881250949", None),
    (b"1\t2\t3", ("_raw", "expected 4 fields")),
    # Also a bad user and item: the field count is reported, not the NULLs that follow from it.
    (b"abc\tdef\t9", ("_raw", "expected 4 fields")),
    (b"x\t2\t3\t881250949", ("user_id", "user_id is not an integer id within int32")),
    (b"3000000000\t2\t3\t881250949", ("user_id", "user_id is not an integer id within int32")),
    (b"-4\t2\t3\t881250949", ("user_id", "user_id is not an integer id within int32")),
    (b"1\t2.5\t3\t881250949", ("item_id", "item_id is not an integer id within int32")),
    (b"1\t2\t9\t881250949", ("rating", "rating outside 1..5")),
    (b"1\t2\t0.5\t881250949", ("rating", "rating outside 1..5")),
    # Out of range and a bad timestamp: the rating rule comes first.
    (b"1\t2\t9\tsoon", ("rating", "rating outside 1..5")),
    (b"1\t2\tabc\t881250949", ("rating", "rating is not a number")),
    (b"1\t2\tNaN\t881250949", ("rating", "rating is not a number")),
    (b"1\t2\t3\t-5", ("timestamp", "timestamp is not a unix time in seconds before 2100")),
    (b"1\t2\t3\tsoon", ("timestamp", "timestamp is not a unix time in seconds before 2100")),
    (b"1\t2\t3\t8812509.49", ("timestamp", "timestamp is not a unix time in seconds before 2100")),
    # Milliseconds, and a value that would overflow timestamp_seconds(), are quarantined too.
    (b"1\t2\t3\t1700000000000", ("timestamp", "timestamp is not a unix time in seconds before 2100")),
    (b"1\t2\t3\t99999999999999", ("timestamp", "timestamp is not a unix time in seconds before 2100")),
    (b"\xff\tx\t3", ("_raw", "text is not valid UTF-8")),
    (b"7\t8\t4.5\t881250950", None),
]


@pytest.mark.spark
def test_each_bad_row_goes_to_quarantine_with_its_first_broken_rule(spark, tmp_path):
    path = tmp_path / "u.data"
    path.write_bytes(b"\n".join(line for line, _ in INTERACTION_LINES) + b"\n")
    raw = _raw(spark, path, RATINGS_SPEC)
    good, bad = split_bad_rows(raw, movielens.interaction_rules(ML100K, len(RATINGS_SPEC.columns)))

    expected_bad = {n: rule for n, (_, rule) in enumerate(INTERACTION_LINES, start=1) if rule is not None}
    found = {r["_line"]: (r["column"], r["reason"]) for r in bad.collect()}
    assert found == expected_bad
    assert sorted(r["_line"] for r in good.collect()) == [1, len(INTERACTION_LINES)]
    # The quarantined row is kept as it was, with the file it came from.
    row = bad.where("_line = 5").first()
    assert row["_raw"] == "3000000000\t2\t3\t881250949"
    assert row["_file"] == f"file:{path}"
    assert set(bad.columns) == {"_file", "_line", "_raw", "column", "reason"}


@pytest.mark.spark
def test_clean_interactions_keeps_the_latest_rating_and_reconciles(spark, tmp_path):
    path = tmp_path / "u.data"
    path.write_text(
        "1\t10\t5\t881250999\n"  # line 1: the latest of user 1 on item 10
        "1\t10\t2\t881250000\n"  # line 2: an older rating of the same pair, read later
        "1\t11\t4\t881250100\n"
        "2\t10\t3\t881250200\n"
        "2\t10\t3\t881250200\n"  # line 5: an exact re-send of line 4
        "2\t11\tbad\t881250300\n"  # line 6: quarantined
        "3\t12\t1\t881250400\n"
        "3\t12\t4\t881250500\n"  # line 8: the latest of user 3 on item 12
    )
    raw = _raw(spark, path, RATINGS_SPEC)
    clean, bad, _ = clean_table(raw, _cleaner("interactions"))
    rows = {(r["user_id"], r["item_id"]): r for r in clean.collect()}

    assert sorted(rows) == [("1", "10"), ("1", "11"), ("2", "10"), ("3", "12")]
    assert rows[("1", "10")]["weight"] == 5.0 and rows[("1", "10")]["_line"] == 1
    assert rows[("3", "12")]["weight"] == 4.0 and rows[("3", "12")]["_line"] == 8
    assert {r["event_type"] for r in rows.values()} == {"rating"}
    # Same timestamp: the later line wins.
    assert rows[("2", "10")]["_line"] == 5
    assert rows[("1", "10")]["ts"] == datetime.datetime.fromtimestamp(881250999, datetime.UTC).replace(
        tzinfo=None
    )
    assert [r["_line"] for r in bad.collect()] == [6]

    n_raw, n_clean, n_bad = raw.count(), clean.count(), bad.count()
    n_duplicates = 3  # lines 2, 4 and 7 each lose to a newer (or, at the same time, later) row
    assert (n_raw, n_clean, n_bad) == (8, 4, 1)
    assert n_raw == n_clean + n_bad + n_duplicates


@pytest.mark.spark
def test_clean_items_turns_100k_genre_flags_into_names(spark, tmp_path):
    def item(item_id, title, flags):
        bits = ["0"] * len(movielens.GENRES_100K)
        for name in flags:
            bits[movielens.GENRES_100K.index(name)] = "1"
        return f"{item_id}|{title}|01-Jan-1995||http://us.imdb.com/M/title-exact?x|{'|'.join(bits)}"

    path = tmp_path / "u.item"
    lines = [
        item(1, "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
        item(2, "Heat (1995)", ["Action", "Comedy"]),
        item(3, "Café Noir (1995)", ["unknown"]),
        item(4, "Nothing At All (1995)", []),
        "5|Short Line (1995)|01-Jan-1995",
        item(6, "", ["Drama"]),
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    raw = _raw(spark, path, ML100K.file_for("items"))
    clean, bad, _ = clean_table(raw, _cleaner("items"))

    assert {r["item_id"]: (r["title"], r["genres"]) for r in clean.collect()} == {
        "1": ("Toy Story (1995)", "Animation|Children's|Comedy"),
        "2": ("Heat (1995)", "Action|Comedy"),
        "3": ("Café Noir (1995)", "unknown"),
        "4": ("Nothing At All (1995)", ""),
    }
    assert {r["_line"]: r["reason"] for r in bad.collect()} == {5: "expected 24 fields", 6: "title is empty"}


@pytest.mark.spark
@pytest.mark.parametrize("saved_as", ["latin-1", "utf-8"])
@pytest.mark.parametrize("layout", ["ml-100k", "ml-1m"])
def test_catalogue_declared_latin1_gets_its_titles_right_in_either_encoding(
    spark, tmp_path, layout, saved_as
):
    # The published u.item and movies.dat are Latin-1; a copy re-saved by an editor is UTF-8,
    # and read as Latin-1 every accented title came out as "StÃ¶ry" with every check passing.
    spec = movielens.layout_named(layout).file_for("items")
    flags = "|".join(["0"] * len(movielens.GENRES_100K))
    lines = {
        "ml-100k": [
            f"1|Störy (1995)|01-Jan-1995||http://x|{flags}",
            f"2|Plain (1996)|01-Jan-1996||http://x|{flags}",
        ],
        "ml-1m": ["1::Störy (1995)::Drama", "2::Plain (1996)::Comedy"],
    }[layout]
    path = tmp_path / spec.filename
    path.write_bytes(("\n".join(lines) + "\n").encode(saved_as))
    cleaner = movielens.cleaners(movielens.layout_named(layout), settings=None)["items"]
    clean, bad, _ = clean_table(_raw(spark, path, spec), cleaner)
    assert {r["item_id"]: r["title"] for r in clean.collect()} == {"1": "Störy (1995)", "2": "Plain (1996)"}
    assert bad.count() == 0


@pytest.mark.spark
def test_latest_movies_csv_title_across_lines_is_one_item_and_an_unclosed_quote_is_quarantined(
    spark, tmp_path
):
    from recflow.textfiles import UNCLOSED_QUOTE_REASON

    latest = movielens.layout_named("ml-latest")
    path = tmp_path / "movies.csv"
    path.write_text(
        "movieId,title,genres\n"
        '1,"Toy Story, The\n(1995)",Adventure|Animation\n'  # a line break inside quotes
        '2,"Jumanji (1995),Adventure\n'  # never closed
        "3,Heat (1995),Action|Crime\n"
    )
    cleaner = movielens.cleaners(latest, settings=None)["items"]
    raw = _raw(spark, path, latest.file_for("items"))
    clean, bad, _ = clean_table(raw, cleaner)
    assert {r["item_id"]: (r["title"], r["genres"], r["_line"]) for r in clean.collect()} == {
        "1": ("Toy Story, The\n(1995)", "Adventure|Animation", 2),
        "3": ("Heat (1995)", "Action|Crime", 5),
    }
    assert [(r["_line"], r["column"], r["reason"], r["_raw"]) for r in bad.collect()] == [
        (4, "_raw", UNCLOSED_QUOTE_REASON, '2,"Jumanji (1995),Adventure')
    ]
    # One raw row per record: raw = clean + quarantined.
    assert raw.count() == clean.count() + bad.count() == 3


# --- layout detection ------------------------------------------------------------------------


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x\n")
    return folder


@pytest.mark.parametrize(
    ("files", "layout"),
    [
        (("u.data", "u.item", "u.user", "u.genre", "README"), "ml-100k"),
        (("ratings.dat", "movies.dat", "users.dat"), "ml-1m"),
        (("ratings.csv", "movies.csv", "links.csv", "tags.csv"), "ml-latest"),
    ],
)
def test_detect_layout(tmp_path, files, layout):
    found = movielens.detect_layout(_touch(tmp_path / "set", *files))
    assert found.name == layout
    assert {f.filename for f in found.files} <= set(files)


def test_detect_layout_names_the_missing_companion_file(tmp_path):
    folder = _touch(tmp_path / "ml-1m", "ratings.dat", "movies.dat")
    with pytest.raises(movielens.SourceError) as excinfo:
        movielens.detect_layout(folder)
    message = str(excinfo.value)
    assert str(folder) in message
    assert "ml-1m" in message and "ratings.dat is there" in message
    assert message.endswith("lacks users.dat")


def test_detect_layout_without_a_known_layout_lists_what_it_found(tmp_path):
    folder = _touch(tmp_path / "mystery", "ratings.txt", "notes.md")
    with pytest.raises(movielens.SourceError) as excinfo:
        movielens.detect_layout(folder)
    message = str(excinfo.value)
    assert str(folder) in message
    assert "u.data, ratings.dat, ratings.csv" in message
    assert "['notes.md', 'ratings.txt']" in message


def test_detect_layout_of_a_file_or_nothing(tmp_path):
    a_file = tmp_path / "u.data"
    a_file.write_text("1\t2\t3\t4\n")
    for path in (a_file, tmp_path / "missing"):
        with pytest.raises(movielens.SourceError, match="is not a directory") as excinfo:
            movielens.detect_layout(path)
        assert str(path) in str(excinfo.value)


# --- download --------------------------------------------------------------------------------


def test_download_failure_names_the_url_and_the_way_out(tmp_path):
    # Port 9 (discard) on localhost: refused at once, no internet needed.
    with pytest.raises(movielens.SourceError) as excinfo:
        movielens.download("ml-100k", tmp_path, url_template="http://127.0.0.1:9/{name}.zip", timeout=2)
    message = str(excinfo.value)
    assert "http://127.0.0.1:9/ml-100k.zip" in message
    assert "pass its folder as `path`" in message
    # No half-downloaded archive is left behind to be mistaken for a good one.
    assert list(tmp_path.iterdir()) == []


def test_download_of_an_unknown_name_is_refused(tmp_path):
    with pytest.raises(movielens.SourceError) as excinfo:
        movielens.download("ml-25x", tmp_path, url_template="http://127.0.0.1:9/{name}.zip", timeout=2)
    assert "'ml-25x'" in str(excinfo.value)
    assert "ml-100k, ml-1m, ml-latest-small, ml-latest" in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []
