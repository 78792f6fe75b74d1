"""Raw text files become string columns with the file and the exact line each row came from."""

from __future__ import annotations

import contextlib

import pytest

from recflow.textfiles import TableFile, read_lines, split_fields

pytestmark = pytest.mark.spark

RATINGS = ("user_id", "item_id", "rating", "timestamp")


@contextlib.contextmanager
def spark_conf(spark, key: str, value: str):
    previous = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)


def _split(spark, path, spec: TableFile) -> list[dict]:
    rows = split_fields(read_lines(spark, str(path)), spec).orderBy("_line").collect()
    return [r.asDict() for r in rows]


def test_line_numbers_are_exact_across_many_blocks(spark, tmp_path):
    path = tmp_path / "big.txt"
    # Lines of varying length, so block boundaries fall mid-line at irregular places.
    lines = [f"{n}\t{'x' * (n % 7)}" for n in range(1, 5001)]
    path.write_text("\n".join(lines) + "\n")
    with spark_conf(spark, "spark.sql.files.maxPartitionBytes", "4096"):
        df = read_lines(spark, str(path))
        n_partitions = df.rdd.getNumPartitions()
        rows = df.select("_bytes_as_text", "_line", "_file").collect()
    # The premise of the test: Spark really read the file as several blocks.
    assert n_partitions >= 8
    assert len(rows) == 5000
    # Each line says its own number, so the computed _line can be checked against it.
    mismatched = [
        (r["_line"], r["_bytes_as_text"])
        for r in rows
        if r["_bytes_as_text"].split("\t")[0] != str(r["_line"])
    ]
    assert mismatched == []
    assert sorted(r["_line"] for r in rows) == list(range(1, 5001))
    assert {r["_file"] for r in rows} == {f"file:{path}"}


def test_blank_lines_keep_their_numbers(spark, tmp_path):
    path = tmp_path / "gaps.txt"
    path.write_text("first\n\nthird\n\n\nsixth\n")
    rows = read_lines(spark, str(path)).orderBy("_line").collect()
    assert [(r["_line"], r["_bytes_as_text"]) for r in rows] == [
        (1, "first"), (2, ""), (3, "third"), (4, ""), (5, ""), (6, "sixth"),
    ]  # fmt: skip


def test_line_numbers_restart_in_each_file(spark, tmp_path):
    (tmp_path / "a.txt").write_text("a1\na2\na3\n")
    (tmp_path / "b.txt").write_text("b1\nb2\n")
    rows = read_lines(spark, str(tmp_path)).collect()
    found = {(r["_file"].rsplit("/", 1)[-1], r["_line"], r["_bytes_as_text"]) for r in rows}
    assert found == {
        ("a.txt", 1, "a1"),
        ("a.txt", 2, "a2"),
        ("a.txt", 3, "a3"),
        ("b.txt", 1, "b1"),
        ("b.txt", 2, "b2"),
    }


def test_split_on_double_colon(spark, tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_text("1::1193::5::978300760\n2::3:4::3::978302109\n")
    rows = _split(spark, path, TableFile("interactions", "ratings.dat", "::", RATINGS))
    assert [(r["user_id"], r["item_id"], r["rating"], r["timestamp"], r["_n_fields"]) for r in rows] == [
        ("1", "1193", "5", "978300760", 4),
        # A single colon is part of the field, not a separator.
        ("2", "3:4", "3", "978302109", 4),
    ]


def test_split_on_tab_trims_fields(spark, tmp_path):
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n 186 \t302\t 3\t891717742\n")
    rows = _split(spark, path, TableFile("interactions", "u.data", "\t", RATINGS))
    assert [(r["user_id"], r["item_id"], r["rating"], r["timestamp"]) for r in rows] == [
        ("196", "242", "3", "881250949"),
        ("186", "302", "3", "891717742"),
    ]
    assert [r["_line"] for r in rows] == [1, 2]
    assert all(r["_valid_utf8"] for r in rows)


def test_latin1_file_decodes_accents(spark, tmp_path):
    path = tmp_path / "u.item"
    path.write_bytes("1|Café Noir (1995)\n2|Niño (1996)\n".encode("latin-1"))
    spec = TableFile("items", "u.item", "|", ("item_id", "title"), encoding="ISO-8859-1")
    rows = _split(spark, path, spec)
    assert [r["title"] for r in rows] == ["Café Noir (1995)", "Niño (1996)"]
    assert rows[0]["_raw"] == "1|Café Noir (1995)"
    # UTF-8 validity is only checked for UTF-8 files: every byte is valid Latin-1.
    assert all(r["_valid_utf8"] for r in rows)


def test_invalid_utf8_is_flagged(spark, tmp_path):
    path = tmp_path / "u.data"
    path.write_bytes(b"1\t2\t3\t881250949\n1\t3\t4\t88125\xff0949\n" + "1\t4\t5\t881250949 é\n".encode())
    rows = _split(spark, path, TableFile("interactions", "u.data", "\t", RATINGS))
    assert [(r["_line"], r["_valid_utf8"]) for r in rows] == [(1, True), (2, False), (3, True)]
    # The bad line is still readable (for the quarantine), its bad byte shown as U+FFFD.
    assert rows[1]["_raw"] == "1\t3\t4\t88125\ufffd0949"
    assert rows[2]["timestamp"] == "881250949 é"


def test_quoted_csv_fields(spark, tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text(
        "movieId,title,genres\n"
        '1,"Toy Story, The (1995)",Adventure|Animation\n'
        '2,"The ""Best"" Movie, Ever (1999)",Comedy\n'
        "3,Heat (1995),Action|Crime|Thriller\n"
    )
    spec = TableFile(
        "items",
        "movies.csv",
        ",",
        ("item_id", "title", "genres"),
        header=("movieId", "title", "genres"),
        quoted=True,
    )
    rows = _split(spark, path, spec)
    assert [(r["_line"], r["item_id"], r["title"], r["genres"], r["_n_fields"]) for r in rows] == [
        (2, "1", "Toy Story, The (1995)", "Adventure|Animation", 3),
        (3, "2", 'The "Best" Movie, Ever (1999)', "Comedy", 3),
        (4, "3", "Heat (1995)", "Action|Crime|Thriller", 3),
    ]


def test_crlf_line_endings_are_stripped(spark, tmp_path):
    path = tmp_path / "u.data"
    path.write_bytes(b"1\t2\t3\t881250949\r\n4\t5\t1\t881250950\r\n")
    rows = _split(spark, path, TableFile("interactions", "u.data", "\t", RATINGS))
    assert [(r["_line"], r["timestamp"], r["_raw"]) for r in rows] == [
        (1, "881250949", "1\t2\t3\t881250949"),
        (2, "881250950", "4\t5\t1\t881250950"),
    ]


def test_header_line_is_skipped(spark, tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n")
    spec = TableFile(
        "interactions", "ratings.csv", ",", RATINGS, header=("userId", "movieId", "rating", "timestamp")
    )
    rows = _split(spark, path, spec)
    assert [(r["_line"], r["user_id"], r["item_id"], r["rating"]) for r in rows] == [
        (2, "1", "31", "2.5"),
        (3, "1", "1029", "3.0"),
    ]


def test_too_few_fields_are_counted_and_missing_ones_are_null(spark, tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t2\t3\t881250949\n1\t2\n1\t2\t3\t4\t5\n")
    rows = _split(spark, path, TableFile("interactions", "u.data", "\t", RATINGS))
    assert [r["_n_fields"] for r in rows] == [4, 2, 5]
    short = rows[1]
    assert (short["user_id"], short["item_id"], short["rating"], short["timestamp"]) == ("1", "2", None, None)
    assert short["_raw"] == "1\t2"
