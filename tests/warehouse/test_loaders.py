from __future__ import annotations

import datetime
import decimal
import io
import logging
import math
import random
import re
import struct

import pyarrow as pa
import pytest
import sqlalchemy as sa

from recflow.warehouse import loaders
from recflow.warehouse.loaders import (
    LoadDataRefused,
    bulk_load,
    insert_rows,
    load_data_local,
)
from recflow.warehouse.migrate import migrate

TRICKY_TITLES = [
    "Amélie",
    "Die Straße",
    "日本のいちばん長い日",
    "🎬 Popcorn 🍿",
    "tab\there",
    "new\nline",
    "carriage\r\nreturn",
    "back\\slash",
    "\\N",  # the text, not NULL
    "ends with a backslash\\",
    "nul\0byte",
    "  padded  ",
    "",
    None,
]
ITEM_COLUMNS = ["dataset", "item_id", "title", "genres"]
REC_COLUMNS = ["dataset", "user_id", "item_id", "rank", "score", "model_version", "run_date"]


def tricky_items(dataset: str) -> pa.Table:
    n = len(TRICKY_TITLES)
    return pa.table(
        {
            "dataset": [dataset] * n,
            "item_id": [f"item-{i}" for i in range(n)],
            "title": TRICKY_TITLES,
            "genres": ["Drama|Comédie", None] * (n // 2),
        }
    )


def many_recommendations(dataset: str, n: int) -> pa.Table:
    return pa.table(
        {
            "dataset": [dataset] * n,
            "user_id": [f"u{i // 10}" for i in range(n)],
            "item_id": [f"i{i * 7919 % 1000}" for i in range(n)],
            "rank": pa.array([i % 10 + 1 for i in range(n)], pa.int16()),
            "score": [(i * 0.1 + 0.2) / 3 for i in range(n)],  # values with no short decimal form
            "model_version": ["v1"] * n,
            "run_date": ["2024-05-01"] * n,
        }
    )


def loaded(conn: sa.Connection, table: str, dataset: str) -> list[tuple]:
    """Rows of ``dataset`` without the dataset column, keyed by id, in a stable order.

    Only the columns the tests load: later migrations may add columns with defaults."""
    columns = {"items": ITEM_COLUMNS, "recommendations": REC_COLUMNS}[table]
    quote = conn.dialect.identifier_preparer.quote_identifier
    rows = conn.execute(
        sa.text(f"SELECT {', '.join(map(quote, columns[1:]))} FROM {table} WHERE dataset = :dataset"),
        {"dataset": dataset},
    )
    return sorted(tuple(row) for row in rows)


def expected(rows: pa.Table) -> list[tuple]:
    return sorted(tuple(row.values())[1:] for row in rows.to_pylist())


@pytest.mark.warehouse
def test_load_data_round_trips_non_ascii_and_escapes_exactly(mariadb_engine, sql_root):
    migrate(mariadb_engine, sql_root)
    items = tricky_items("L")
    with mariadb_engine.begin() as conn:
        assert load_data_local(conn, "items", ITEM_COLUMNS, items) == items.num_rows
    with mariadb_engine.connect() as conn:
        assert loaded(conn, "items", "L") == expected(items)


@pytest.mark.warehouse
def test_insert_fallback_loads_the_same_rows_as_load_data(mariadb_engine, sql_root):
    migrate(mariadb_engine, sql_root)
    recs = many_recommendations("L", 12_345)
    with mariadb_engine.begin() as conn:
        assert load_data_local(conn, "recommendations", REC_COLUMNS, recs) == recs.num_rows
        assert (
            insert_rows(
                conn,
                "recommendations",
                REC_COLUMNS,
                recs.set_column(0, "dataset", pa.array(["I"] * recs.num_rows)),
            )
            == recs.num_rows
        )
        assert load_data_local(conn, "items", ITEM_COLUMNS, tricky_items("L")) == len(TRICKY_TITLES)
        assert insert_rows(conn, "items", ITEM_COLUMNS, tricky_items("I")) == len(TRICKY_TITLES)
    with mariadb_engine.connect() as conn:
        via_load_data = loaded(conn, "recommendations", "L")
        assert via_load_data == loaded(conn, "recommendations", "I")
        assert loaded(conn, "items", "L") == loaded(conn, "items", "I") == expected(tricky_items("L"))
    scores = [row[3] for row in via_load_data]
    assert sorted(scores) == sorted(recs.column("score").to_pylist())  # doubles survive bit for bit


@pytest.mark.warehouse
def test_bulk_load_falls_back_to_inserts_when_local_infile_is_refused(
    fresh_mysql_database, sql_root, monkeypatch, caplog
):
    engine = fresh_mysql_database(connect_args={"local_infile": False, "charset": "utf8mb4"})
    migrate(engine, sql_root)
    monkeypatch.setattr(loaders, "_refusal_logged", False)
    items = tricky_items("F")
    with engine.begin() as conn:
        with pytest.raises(LoadDataRefused):
            load_data_local(conn, "items", ITEM_COLUMNS, items)
        with caplog.at_level(logging.WARNING, logger=loaders.__name__):
            assert bulk_load(conn, "items", ITEM_COLUMNS, items) == items.num_rows
            assert bulk_load(conn, "items", ITEM_COLUMNS, tricky_items("G")) == items.num_rows
    # Only this module's records: other libraries (py4j, Airflow) may log during the suite.
    ours = [record for record in caplog.records if record.name == loaders.__name__]
    assert [record.message.startswith("LOAD DATA LOCAL INFILE refused") for record in ours] == [True]
    with engine.connect() as conn:
        assert loaded(conn, "items", "F") == expected(items)


@pytest.mark.warehouse
def test_load_data_raises_instead_of_skipping_duplicates(mariadb_engine, sql_root):
    """LOAD DATA LOCAL only warns about duplicate keys; the loader must not drop rows silently."""
    migrate(mariadb_engine, sql_root)
    items = tricky_items("D")
    with mariadb_engine.begin() as conn, pytest.raises(ValueError, match="Duplicate entry"):
        load_data_local(conn, "items", ITEM_COLUMNS, pa.concat_tables([items, items]))


def test_sqlite_bulk_load_round_trips(sqlite_engine, sql_root):
    migrate(sqlite_engine, sql_root)
    items = tricky_items("S")
    with sqlite_engine.begin() as conn:
        assert bulk_load(conn, "items", ITEM_COLUMNS, items) == items.num_rows
        assert bulk_load(conn, "items", ITEM_COLUMNS, items.slice(0, 0)) == 0
    with sqlite_engine.connect() as conn:
        assert loaded(conn, "items", "S") == expected(items)


# --- the vectorised LOAD DATA file, checked without a server --------------------------------

# Doubles whose shortest text is unusual: exponents either way, subnormals, the extremes, values
# with 17 significant digits, integers past 2**53, and -0.0.
AWKWARD_DOUBLES = [
    1e-300,
    0.1 + 0.2,
    -0.0,
    0.0,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    5e-324,
    2.2250738585072014e-308,
    2.225073858507201e-308,
    1e21,
    1e22,
    1e15,
    1e16,
    123456789012345680.0,
    9007199254740994.0,
    1.5e-7,
    1e-5,
    4.35,
    1 / 3,
    -2 / 3,
    100.0,
]


def awkward_doubles(n_random: int = 2_000, seed: int = 7) -> list[float]:
    """AWKWARD_DOUBLES and ``n_random`` finite doubles drawn uniformly over the bit patterns."""
    rng = random.Random(seed)
    values = list(AWKWARD_DOUBLES)
    while len(values) < len(AWKWARD_DOUBLES) + n_random:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            values.append(value)
    return values


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "0": "\0", "\\": "\\"}


def decode_tsv(data: bytes) -> list[list[str | None]]:
    """Read LOAD DATA text back the way the server does: \\N is NULL, a backslash escapes."""
    assert data.endswith(b"\n")
    rows = []
    for line in data.decode("utf-8").split("\n")[:-1]:
        rows.append(
            [
                None if field == "\\N" else re.sub(r"\\(.)", lambda m: _UNESCAPE[m[1]], field, flags=re.S)
                for field in line.split("\t")
            ]
        )
    return rows


def tsv_of(table: pa.Table) -> bytes:
    out = io.BytesIO()
    loaders._write_tsv(table, out)
    return out.getvalue()


def every_type_table() -> pa.Table:
    n = len(TRICKY_TITLES)
    doubles = awkward_doubles(0)[:n]
    return pa.table(
        {
            "s": pa.array(TRICKY_TITLES),
            "ls": pa.array(list(reversed(TRICKY_TITLES)), pa.large_string()),
            "dict": pa.array(
                ["a\tb", None, "\\N", "", "é"] * (n // 5) + ["a\tb"] * (n % 5)
            ).dictionary_encode(),
            "b": pa.array([True, False, None] * (n // 3) + [True] * (n % 3)),
            "i16": pa.array([-(2**15), 2**15 - 1, None, 0] * (n // 4) + [1] * (n % 4), pa.int16()),
            "i64": pa.array([-(2**63), 2**63 - 1] * (n // 2), pa.int64()),
            "f64": pa.array(doubles, pa.float64()),
            "f32": pa.array([0.1, 1 / 3, None, 3.4e38, 1e-45] * (n // 5) + [2.5] * (n % 5), pa.float32()),
            "date": pa.array([datetime.date(2024, 5, 1), None] * (n // 2), pa.date32()),
            "ts": pa.array(
                [datetime.datetime(2024, 5, 1, 12, 30, 0, 250_000), None] * (n // 2), pa.timestamp("us")
            ),
            "dec": pa.array([decimal.Decimal("-1.250"), None] * (n // 2), pa.decimal128(12, 3)),
            "nothing": pa.nulls(n),
        }
    )


def expected_text(column: pa.ChunkedArray) -> list[str | None]:
    """What the server should read for each value of ``column`` (floats compared separately)."""
    texts = []
    for value in column.to_pylist():
        if value is None or isinstance(value, str):
            texts.append(value)
        elif isinstance(value, bool):
            texts.append("1" if value else "0")
        else:
            texts.append(str(value))  # int, date and datetime in ISO form, Decimal
    return texts


def test_tsv_file_decodes_to_every_value_of_every_supported_type():
    table = every_type_table()
    decoded = decode_tsv(tsv_of(table))
    assert len(decoded) == table.num_rows
    columns = list(zip(*decoded, strict=True))
    for name, texts in zip(table.column_names, columns, strict=True):
        if name in ("f64", "f32"):
            # the exact double, float32 widened first (the DOUBLE column gets its exact value)
            wanted = [None if v is None else bits(v) for v in table.column(name).to_pylist()]
            assert [None if t is None else bits(float(t)) for t in texts] == wanted, name
        else:
            assert list(texts) == expected_text(table.column(name)), name


def test_tsv_file_writes_doubles_as_their_shortest_round_trip_text():
    values = awkward_doubles()
    texts = [row[0] for row in decode_tsv(tsv_of(pa.table({"v": pa.array(values, pa.float64())})))]
    assert [bits(float(text)) for text in texts] == [bits(value) for value in values]
    # shortest: no more significant digits than Python's repr (which is the shortest)
    assert [significant(text) for text in texts] == [significant(repr(value)) for value in values]


def significant(text: str) -> str:
    """The significant digits of a float's text: '1.5e-07' and '0.00000015' both give '15'."""
    mantissa = re.split("[eE]", text)[0].replace("-", "").replace(".", "")
    return mantissa.strip("0") or "0"


def test_tsv_file_keeps_null_empty_and_backslash_n_apart():
    values = [None, "", "\\N", "\\\\N", "N", "NULL", "\\", "\\\\"]
    data = tsv_of(pa.table({"s": values, "d": pa.array(values).dictionary_encode()}))
    assert data.split(b"\n")[:3] == [b"\\N\t\\N", b"\t", b"\\\\N\t\\\\N"]
    assert [row[0] for row in decode_tsv(data)] == [row[1] for row in decode_tsv(data)] == values


def test_tsv_file_of_sliced_and_chunked_tables(monkeypatch):
    """Offsets into shared buffers, chunk boundaries that differ between columns, small batches."""
    n = 1_000
    titles = [TRICKY_TITLES[i % len(TRICKY_TITLES)] for i in range(n)]
    whole = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "title": titles,
            "score": pa.array(awkward_doubles(n)[:n], pa.float64()),
        }
    )
    chunked = pa.table(
        {
            "id": pa.chunked_array([whole.column("id").slice(0, 333), whole.column("id").slice(333)]),
            "title": pa.chunked_array([whole.column("title").slice(i, 100) for i in range(0, n, 100)]),
            "score": whole.column("score"),
        }
    )
    wanted = tsv_of(whole)
    assert tsv_of(chunked) == wanted
    lines = wanted.split(b"\n")
    assert tsv_of(chunked.slice(17, 500)) == b"\n".join(lines[17:517]) + b"\n"
    assert tsv_of(chunked.slice(n)) == b""
    monkeypatch.setattr(loaders, "TSV_BATCH_ROWS", 7)
    monkeypatch.setattr(loaders, "_BATCH_BYTES", 64)  # splits every batch down to single rows
    assert tsv_of(chunked.slice(17, 500)) == b"\n".join(lines[17:517]) + b"\n"


def test_tsv_batches_count_a_dictionary_by_the_values_their_rows_use(monkeypatch):
    """A slice shares its column's whole dictionary: that must not split it into single rows."""
    titles = pa.array([f"{i:04d} " + "x" * 95 for i in range(1_000)]).dictionary_encode()  # 100 kB
    batch = pa.record_batch([titles], names=["title"])
    monkeypatch.setattr(loaders, "_BATCH_BYTES", 20_000)
    assert [len(part) for part in loaders._bounded(batch.slice(100, 50))] == [50]
    assert 4 <= len(list(loaders._bounded(batch))) <= 8
    assert tsv_of(pa.Table.from_batches([batch])) == tsv_of(pa.table({"title": titles.dictionary_decode()}))


def test_tsv_file_refuses_types_it_cannot_write_exactly():
    with pytest.raises(TypeError, match="column 'blob'"):
        tsv_of(pa.table({"id": [1], "blob": pa.array([b"\x00\xff"], pa.binary())}))
    with pytest.raises(TypeError, match="column 'tags'"):
        tsv_of(pa.table({"tags": pa.array([["a", "b"]], pa.list_(pa.string()))}))


def test_tsv_file_writes_zoned_timestamps_as_utc():
    at = datetime.datetime(2024, 5, 1, 23, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-2)))
    table = pa.table({"at": pa.array([at, None], pa.timestamp("s", tz="America/Sao_Paulo"))})
    assert tsv_of(table) == b"2024-05-02 01:30:00\n\\N\n"


# --- the same, through MariaDB ---------------------------------------------------------------

TYPES_DDL = """
CREATE TABLE loader_types (
    id   INT            NOT NULL PRIMARY KEY,
    s    VARCHAR(64)    NULL,
    ls   TEXT           NULL,
    dict VARCHAR(16)    NULL,
    b    BOOLEAN        NULL,
    i16  SMALLINT       NULL,
    i64  BIGINT         NULL,
    f64  DOUBLE         NULL,
    f32  DOUBLE         NULL,
    date DATE           NULL,
    ts   DATETIME(6)    NULL,
    `dec` DECIMAL(12,3) NULL,
    nothing INT         NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
"""


def stored(conn: sa.Connection, table: str, columns: list[str]) -> list[tuple]:
    quote = conn.dialect.identifier_preparer.quote_identifier
    return [
        tuple(row)
        for row in conn.exec_driver_sql(f"SELECT {', '.join(map(quote, columns))} FROM {table} ORDER BY id")
    ]


@pytest.mark.warehouse
def test_load_data_and_insert_rows_store_every_supported_type_as_bound_parameters_do(
    mariadb_engine, monkeypatch
):
    table = every_type_table()
    table = table.add_column(0, "id", pa.array(range(table.num_rows), pa.int32()))
    columns = table.column_names
    with mariadb_engine.begin() as conn:
        for name in ("loader_types", "insert_types", "bound_types"):
            conn.exec_driver_sql(TYPES_DDL.replace("loader_types", name))
        assert load_data_local(conn, "loader_types", columns, table) == table.num_rows
        assert insert_rows(conn, "insert_types", columns, table) == table.num_rows
        # the reference: PyMySQL's executemany, every value escaped by the driver
        monkeypatch.setattr(loaders, "_sql_style", lambda conn: None)
        assert insert_rows(conn, "bound_types", columns, table) == table.num_rows
    with mariadb_engine.connect() as conn:
        via_load_data = stored(conn, "loader_types", columns)
        assert via_load_data == stored(conn, "insert_types", columns) == stored(conn, "bound_types", columns)
    by_column = dict(zip(columns, zip(*via_load_data, strict=True), strict=True))
    assert list(by_column["s"]) == TRICKY_TITLES
    assert list(by_column["dict"]) == table.column("dict").to_pylist()
    assert list(by_column["ts"]) == table.column("ts").to_pylist()
    assert list(by_column["dec"]) == table.column("dec").to_pylist()
    assert list(by_column["f32"]) == [
        None if v is None else float(v) for v in table.column("f32").to_pylist()
    ]


@pytest.mark.warehouse
def test_load_data_keeps_doubles_bit_exact(mariadb_engine, sql_root):
    migrate(mariadb_engine, sql_root)
    values = awkward_doubles()
    n = len(values)
    recs = pa.table(
        {
            "dataset": ["F"] * n,
            "user_id": [f"u{i}" for i in range(n)],
            "item_id": ["i1"] * n,
            "rank": pa.array([1] * n, pa.int16()),
            "score": pa.array(values, pa.float64()),
            "model_version": ["v1"] * n,
            "run_date": pa.array([datetime.date(2024, 5, 1)] * n, pa.date32()),
        }
    )
    with mariadb_engine.begin() as conn:
        assert load_data_local(conn, "recommendations", REC_COLUMNS, recs) == n
    with mariadb_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT user_id, score FROM recommendations WHERE dataset = 'F'")).all()
    scores = {user: score for user, score in rows}
    back = [scores[f"u{i}"] for i in range(n)]
    # MariaDB stores -0.0 as +0.0 whichever way it arrives (the INSERT path too): equal, not identical
    assert [bits(v if v != 0 else 0.0) for v in back] == [bits(v if v != 0 else 0.0) for v in values]
    assert back == values


@pytest.mark.warehouse
def test_load_data_keeps_null_empty_and_backslash_n_apart(mariadb_engine, sql_root):
    migrate(mariadb_engine, sql_root)
    titles = [None, "", "\\N", "\\\\N", "N", "NULL", "\\", "'quoted'", '"double"']
    items = pa.table(
        {
            "dataset": pa.array(["E"] * len(titles)).dictionary_encode(),
            "item_id": pa.array([f"item-{i}" for i in range(len(titles))], pa.large_string()),
            "title": titles,
            "genres": pa.array(titles).dictionary_encode(),
        }
    )
    with mariadb_engine.begin() as conn:
        assert load_data_local(conn, "items", ITEM_COLUMNS, items) == len(titles)
    with mariadb_engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT item_id, title, genres, title IS NULL FROM items WHERE dataset = 'E'")
        ).all()
    by_id = {item_id: (title, genres, is_null) for item_id, title, genres, is_null in rows}
    assert [by_id[f"item-{i}"] for i in range(len(titles))] == [(t, t, int(t is None)) for t in titles]


@pytest.mark.warehouse
def test_load_data_of_a_sliced_chunked_table_in_many_batches(mariadb_engine, sql_root, monkeypatch):
    migrate(mariadb_engine, sql_root)
    recs = many_recommendations("C", 2_000)
    chunked = pa.concat_tables([recs.slice(0, 700), recs.slice(700, 1_000), recs.slice(1_700)])
    part = chunked.slice(123, 1_500)
    monkeypatch.setattr(loaders, "TSV_BATCH_ROWS", 256)
    with mariadb_engine.begin() as conn:
        assert load_data_local(conn, "recommendations", REC_COLUMNS, part) == 1_500
    with mariadb_engine.connect() as conn:
        rows = loaded(conn, "recommendations", "C")
    assert rows == [
        (*row[:-1], datetime.date.fromisoformat(row[-1])) for row in expected(recs.slice(123, 1_500))
    ]


@pytest.mark.warehouse
def test_load_data_raises_on_values_the_server_would_mangle(mariadb_engine, sql_root):
    """A NaN score, a too-long id: LOAD DATA LOCAL only warns (and stores 0 or a cut string)."""
    migrate(mariadb_engine, sql_root)
    recs = many_recommendations("N", 3)
    nan = recs.set_column(4, "score", pa.array([0.5, float("nan"), 1.0]))
    long_id = recs.set_column(1, "user_id", pa.array(["u1", "u" * 65, "u3"]))
    for bad in (nan, long_id):
        with pytest.raises(ValueError, match="warnings"), mariadb_engine.begin() as conn:
            load_data_local(conn, "recommendations", REC_COLUMNS, bad)
    with mariadb_engine.connect() as conn:
        assert loaded(conn, "recommendations", "N") == []


# --- the multi-row INSERT fallback -------------------------------------------------------------

# Text that breaks a hand-built statement: quotes, escapes, the driver's placeholders, ^Z.
HOSTILE_TITLES = [
    "O'Brien",
    "'); DROP TABLE items; --",
    "\\'",
    "''",
    '"',
    "\x1a",
    "50% off",
    "%s",
    "%(p0)s",
    "{0}",
    "?",
]


def statements_of(engine: sa.Engine) -> list[str]:
    """Every statement sent on ``engine`` from now on (appended to the returned list)."""
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


@pytest.mark.warehouse
@pytest.mark.parametrize("sql_mode", ["default", "NO_BACKSLASH_ESCAPES"])
def test_insert_rows_writes_any_text_literally_in_statements_of_bounded_size(
    mariadb_engine, sql_root, monkeypatch, sql_mode
):
    migrate(mariadb_engine, sql_root)
    titles = TRICKY_TITLES + HOSTILE_TITLES
    items = pa.table(
        {
            "dataset": ["Q"] * len(titles),
            "item_id": [f"item-{i}" for i in range(len(titles))],
            "title": titles,
            "genres": pa.array(list(reversed(titles))).dictionary_encode(),
        }
    )
    monkeypatch.setattr(loaders, "INSERT_STATEMENT_BYTES", 120)
    sent = statements_of(mariadb_engine)
    with mariadb_engine.begin() as conn:
        if sql_mode != "default":
            conn.exec_driver_sql(f"SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',{sql_mode}')")
        assert insert_rows(conn, "items", ITEM_COLUMNS, items) == len(titles)
        conn.exec_driver_sql("SET SESSION sql_mode = DEFAULT")
    with mariadb_engine.connect() as conn:
        assert loaded(conn, "items", "Q") == expected(items)
    inserts = [statement for statement in sent if statement.startswith("INSERT")]
    assert len(inserts) > 3
    values = [statement.split(" VALUES ", 1)[1].encode() for statement in inserts]
    assert all(len(text) <= 120 or text.count(b"'item-") == 1 for text in values)


@pytest.mark.warehouse
def test_insert_rows_refuses_nan_and_infinity(mariadb_engine, sql_root):
    migrate(mariadb_engine, sql_root)
    recs = many_recommendations("N", 3)
    for bad in (float("nan"), float("inf"), float("-inf")):
        rows = recs.set_column(4, "score", pa.array([0.5, bad, 1.0]))
        with pytest.raises(ValueError, match="NaN or infinity"), mariadb_engine.begin() as conn:
            insert_rows(conn, "recommendations", REC_COLUMNS, rows)
    with mariadb_engine.connect() as conn:
        assert loaded(conn, "recommendations", "N") == []


@pytest.mark.warehouse
def test_insert_rows_binds_parameters_when_the_client_does_not_speak_utf8(fresh_mysql_database, sql_root):
    engine = fresh_mysql_database(connect_args={"charset": "latin1"})
    migrate(engine, sql_root)
    items = pa.table(
        {
            "dataset": ["L"] * 4,
            "item_id": ["a", "b", "c", "d"],
            "title": ["Amélie", "O'Brien", "back\\slash", None],
            "genres": ["Drama|Comédie", "%s", None, ""],
        }
    )
    sent = statements_of(engine)
    with engine.begin() as conn:
        assert insert_rows(conn, "items", ITEM_COLUMNS, items) == 4
    assert any("%(p0)s" in statement for statement in sent)  # executemany, not literals
    with engine.connect() as conn:
        assert loaded(conn, "items", "L") == expected(items)
