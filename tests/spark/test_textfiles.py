"""Raw text files become string columns with the file and the exact line each row came from."""

from __future__ import annotations

import contextlib

import pytest

from recflow.sources import movielens
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


# The layout's own spec, so the tests read movies.csv as ingest does.
MOVIES = next(spec for layout in movielens.LAYOUTS for spec in layout.files if spec.filename == "movies.csv")


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
    rows = _split(spark, path, MOVIES)
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


# --- RFC 4180 quoting: separators and line breaks inside quotes ------------------------------


def _rows(rows: list[dict], *columns: str) -> list[tuple]:
    return [tuple(r[c] for c in columns) for r in rows]


def test_quoted_line_break_makes_one_row_numbered_by_its_first_line(spark, tmp_path):
    path = tmp_path / "movies.csv"
    path.write_bytes(
        b"movieId,title,genres\r\n"
        b'1,"Foo\r\nBar (1995)",Comedy\r\n'  # CRLF, like RFC 4180 and Excel
        b"2,Heat (1995),Action\r\n"
        b'3,"Three\r\n""quoted"" lines, and a comma\r\n(1999)",Drama\r\n'
        b"4,Last (2000),Western\r\n"
    )
    rows = _split(spark, path, MOVIES)
    assert _rows(rows, "_line", "item_id", "title", "genres", "_n_fields", "_unclosed_quote") == [
        (2, "1", "Foo\nBar (1995)", "Comedy", 3, False),
        (4, "2", "Heat (1995)", "Action", 3, False),
        (5, "3", 'Three\n"quoted" lines, and a comma\n(1999)', "Drama", 3, False),
        (8, "4", "Last (2000)", "Western", 3, False),
    ]
    # The row as it was in the file, its lines joined by "\n", for the quarantine to show.
    assert rows[0]["_raw"] == '1,"Foo\nBar (1995)",Comedy'
    assert all(r["_file"] == f"file:{path}" for r in rows)


def test_line_that_closes_one_quoted_field_and_opens_another_continues_the_record(spark, tmp_path):
    path = tmp_path / "channels.csv"
    path.write_text('1,"A\nB",x,"C\nD"\n2,"E\nF,G"\n3,plain\n')
    spec = TableFile("items", "channels.csv", ",", ("a", "b", "c", "d"), quoted=True)
    rows = _split(spark, path, spec)
    assert _rows(rows, "_line", "a", "b", "c", "d", "_n_fields") == [
        (1, "1", "A\nB", "x", "C\nD", 4),
        (4, "2", "E\nF,G", None, None, 2),
        (6, "3", "plain", None, None, 2),
    ]


def test_multi_line_record_across_a_block_boundary_is_joined_in_line_order(spark, tmp_path):
    path = tmp_path / "channels.csv"
    lines = [f"{n},name {n},news" for n in range(1, 3001)]
    lines[1499] = '1500,"a name\n' + "\n".join(f"part {i}" for i in range(40)) + '\nend",news'
    path.write_text("\n".join(lines) + "\n")
    spec = TableFile("items", "channels.csv", ",", ("channel_id", "channel_name", "genre"), quoted=True)
    with spark_conf(spark, "spark.sql.files.maxPartitionBytes", "4096"):
        assert read_lines(spark, str(path)).rdd.getNumPartitions() >= 8  # the premise
        rows = _split(spark, path, spec)
    assert len(rows) == 3000
    record = next(r for r in rows if r["channel_id"] == "1500")
    assert record["_line"] == 1500
    assert record["channel_name"] == "a name\n" + "\n".join(f"part {i}" for i in range(40)) + "\nend"
    # The lines after it keep their own numbers, 41 lines further down the file.
    assert [(r["_line"], r["channel_id"]) for r in rows[1500:1502]] == [(1542, "1501"), (1543, "1502")]
    assert {r["_n_fields"] for r in rows} == {3}


def test_records_are_joined_within_their_own_file(spark, tmp_path):
    # Same line numbers in two files: an open quote at the end of one file never takes the
    # other file's lines.
    (tmp_path / "a.csv").write_text('1,"A\nB",x\n2,"open at the end,x\n')
    (tmp_path / "b.csv").write_text('3,"C\nD",y\n4,"E",y\n')
    spec = TableFile("items", "*.csv", ",", ("id", "name", "genre"), quoted=True)
    rows = split_fields(read_lines(spark, str(tmp_path)), spec).collect()
    found = {(r["_file"].rsplit("/", 1)[-1], r["_line"], r["name"], r["_unclosed_quote"]) for r in rows}
    assert found == {
        ("a.csv", 1, "A\nB", False),
        ("a.csv", 3, '"open at the end', True),
        ("b.csv", 1, "C\nD", False),
        ("b.csv", 3, "E", False),
    }


def test_rees46_brand_quoted_with_a_comma_is_one_field(spark, tmp_path):
    from recflow.sources import ecommerce

    spec = ecommerce.layout_named("rees46").files[0]
    path = tmp_path / "2019-Oct.csv"
    path.write_text(
        ",".join(ecommerce.REES46_COLUMNS) + "\n"
        '2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,"acme, inc",35.79,541312140,72d76fde\n'
        '2019-10-01 00:00:01 UTC,view,3900821,2053013552326770905,appliances.water_heater,"say ""hi""",33.20,554748717,9333dfbd\n'
    )
    rows = _split(spark, path, spec)
    assert _rows(rows, "_line", "brand", "price", "user_id", "_n_fields") == [
        (2, "acme, inc", "35.79", "541312140", 9),
        (3, 'say "hi"', "33.20", "554748717", 9),
    ]


def test_stray_quote_inside_an_unquoted_field_is_a_character(spark, tmp_path):
    # RFC 4180: a quote opens a quoted field only as the field's first character. `tv 55"`
    # holds a literal quote, and must neither swallow the next lines nor shift the columns.
    path = tmp_path / "items.csv"
    path.write_text('1,tv 55",screens\n2,plain,x\n3,"quoted",y\n4,5" ruler,tools\n5,a""b,z\n6,end,w\n')
    spec = TableFile("items", "items.csv", ",", ("id", "name", "genre"), quoted=True)
    rows = _split(spark, path, spec)
    assert _rows(rows, "_line", "id", "name", "genre", "_n_fields", "_unclosed_quote") == [
        (1, "1", 'tv 55"', "screens", 3, False),
        (2, "2", "plain", "x", 3, False),
        (3, "3", "quoted", "y", 3, False),
        (4, "4", '5" ruler', "tools", 3, False),
        (5, "5", 'a""b', "z", 3, False),  # quotes are only undoubled inside quoted fields
        (6, "6", "end", "w", 3, False),
    ]


def test_unclosed_quote_is_flagged_and_the_lines_after_it_are_rows_of_their_own(spark, tmp_path):
    from recflow.textfiles import MAX_RECORD_LINES

    path = tmp_path / "items.csv"
    lines = [f"{n},name {n},news" for n in range(1, 451)]
    lines[9] = '10,"acme, inc,news'  # never closed
    # A record of exactly MAX_RECORD_LINES lines is still one record...
    lines[149] = '150,"long'
    lines[150 + MAX_RECORD_LINES - 2] = 'tail",news'
    # ... one line more is not: its first line is flagged, the others are read as rows.
    lines[299] = '300,"longer'
    lines[300 + MAX_RECORD_LINES - 1] = 'tail",news'
    path.write_text("\n".join(lines) + "\n")
    spec = TableFile("items", "items.csv", ",", ("id", "name", "genre"), quoted=True)
    rows = {r["_line"]: r for r in _split(spark, path, spec)}
    assert sorted(n for n, r in rows.items() if r["_unclosed_quote"]) == [10, 300]
    assert rows[10]["_raw"] == '10,"acme, inc,news'
    assert all(n in rows for n in range(11, 150))  # nothing swallowed after line 10
    assert rows[150]["name"].startswith("long\n151,name 151,news\n")
    last = 150 + MAX_RECORD_LINES - 2  # the line before the closing one
    assert rows[150]["name"].endswith(f"\n{last},name {last},news\ntail")
    assert (rows[150]["genre"], rows[150]["_n_fields"]) == ("news", 3)
    assert all(n not in rows for n in range(151, 150 + MAX_RECORD_LINES))
    assert all(n in rows and not rows[n]["_unclosed_quote"] for n in range(301, 451))
    assert rows[300 + MAX_RECORD_LINES]["_raw"] == 'tail",news'
    # Records, not lines: the long record counts once.
    assert len(rows) == 450 - (MAX_RECORD_LINES - 1)


def _ends_inside_quotes(line: str, inside: bool) -> bool:
    """A plain character-by-character reading of one line (the rules of recflow.textfiles, one
    character at a time): is the line, begun inside or outside quotes, left inside them?"""
    i = 0

    def to_closing_quote(i: int) -> int | None:  # index after the closing quote, None if none
        while (q := line.find('"', i)) >= 0:
            if line[q + 1 : q + 2] != '"':
                return q + 1
            i = q + 2
        return None

    if inside:
        i = to_closing_quote(i)
        if i is None:
            return True
        if (i := line.find(",", i)) < 0:
            return False
        i += 1
    while True:
        start = i
        while line[start : start + 1] == " ":  # spaces before an opening quote
            start += 1
        if line[start : start + 1] == '"':
            i = to_closing_quote(start + 1)
            if i is None:
                return True
        if (i := line.find(",", i)) < 0:
            return False
        i += 1


def _reference_records(lines: list[str], max_lines: int) -> list[tuple[int, str, bool]]:
    """(first line, text, unclosed) of each record, reading the lines in order."""
    records, i = [], 0
    while i < len(lines):
        if not _ends_inside_quotes(lines[i], inside=False):
            records.append((i + 1, lines[i], False))
            i += 1
            continue
        j, inside = i, True
        while inside and j + 1 < len(lines) and j + 1 - i < max_lines:
            j += 1
            inside = _ends_inside_quotes(lines[j], inside=True)
        if inside:
            records.append((i + 1, lines[i], True))
            i += 1
        else:
            records.append((i + 1, "\n".join(lines[i : j + 1]), False))
            i = j + 1
    return records


def test_records_match_a_line_by_line_reading_of_random_quoting(spark, tmp_path):
    # Quotes opening, closing, reopening, doubled, stray and never closed, in random lines:
    # the records must be those of reading the file in order, one line after the other.
    import random

    from recflow.textfiles import MAX_RECORD_LINES

    pieces = [
        "a",
        "b c",
        '"q"',
        '"x,y"',
        '"open',
        'close"',
        'tv 55"',
        '""',
        ' "sp"',
        'a""b',
        '"z""',
        '"""',
        "",
    ]
    rng = random.Random(7)
    lines = []
    for _ in range(4000):
        if rng.random() < 0.85:
            lines.append(f"{rng.randrange(1000)},plain")
        else:
            lines.append(",".join(rng.choice(pieces) for _ in range(rng.randrange(1, 5))))
    # A stretch without quotes longer than a record may span, after an opening quote.
    lines[2000:2000] = ['1,"left open'] + [f"{n},plain" for n in range(MAX_RECORD_LINES + 5)]
    path = tmp_path / "random.csv"
    path.write_text("\n".join(lines) + "\n")
    spec = TableFile("items", "random.csv", ",", ("a", "b"), quoted=True)
    with spark_conf(spark, "spark.sql.files.maxPartitionBytes", "8192"):
        rows = _split(spark, path, spec)
    expected = _reference_records(lines, MAX_RECORD_LINES)
    assert (
        sum(len(text.split("\n")) > 1 for _, text, _ in expected) > 50
    )  # the premise: many records span lines
    assert sum(unclosed for _, _, unclosed in expected) > 0
    assert [(r["_line"], r["_raw"], r["_unclosed_quote"]) for r in rows] == expected


def test_quoted_file_needs_a_one_character_separator():
    with pytest.raises(ValueError, match="one-character separator"):
        TableFile("items", "movies.dat", "::", ("a", "b"), quoted=True)


# --- declared Latin-1, saved as UTF-8 ------------------------------------------------------------


@pytest.mark.parametrize("saved_as", ["latin-1", "utf-8"])
def test_latin1_declared_file_reads_right_whichever_encoding_it_was_saved_in(spark, tmp_path, saved_as):
    path = tmp_path / "u.item"
    path.write_bytes("1|Störy (1995)\n2|Plain (1996)\n3|Café Noir, Niño (1997)\n".encode(saved_as))
    spec = TableFile("items", "u.item", "|", ("item_id", "title"), encoding="ISO-8859-1")
    rows = _split(spark, path, spec)
    assert [r["title"] for r in rows] == ["Störy (1995)", "Plain (1996)", "Café Noir, Niño (1997)"]
    assert rows[0]["_raw"] == "1|Störy (1995)"


def test_latin1_file_with_lines_appended_in_utf8_reads_right_on_every_line(spark, tmp_path):
    path = tmp_path / "movies.dat"
    path.write_bytes("1::Störy (1995)::Drama\n".encode("latin-1") + "2::Störy 2 (1997)::Drama\n".encode())
    spec = TableFile("items", "movies.dat", "::", ("item_id", "title", "genres"), encoding="ISO-8859-1")
    assert [r["title"] for r in _split(spark, path, spec)] == ["Störy (1995)", "Störy 2 (1997)"]
