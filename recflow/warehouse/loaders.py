"""Bulk loading of Arrow tables into existing warehouse tables, inside the caller's transaction."""

from __future__ import annotations

import bisect
import logging
import os
import tempfile
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from recflow.warehouse.engine import dialect_dir

log = logging.getLogger(__name__)

INSERT_BATCH_ROWS = 5_000

# Refusals of LOAD DATA LOCAL that the INSERT path can work around: 1148 ER_NOT_ALLOWED_COMMAND
# (older servers), 3948 ER_CLIENT_LOCAL_FILES_DISABLED (MySQL 8, whose local_infile is OFF by
# default), 4166 ER_LOAD_INFILE_CAPABILITY_DISABLED (MariaDB 10.5+), 2068
# CR_LOAD_DATA_LOCAL_INFILE_REJECTED (refused by the client library).
LOCAL_INFILE_REFUSED = frozenset({1148, 2068, 3948, 4166})

# Rows per record batch when writing the LOAD DATA file: the Arrow intermediates of one batch
# (a few times its text) bound the memory used, whatever the size of the table.
TSV_BATCH_ROWS = 100_000
# The most text in one INSERT statement (PyMySQL's own cap for executemany; MySQL's smallest
# max_allowed_packet is 1 MiB); a single row may be larger.
INSERT_STATEMENT_BYTES = 1_000_000
# A batch whose columns take more memory than this is split further, so that one batch's text
# stays far below the 2 GiB that pa.string()'s 32-bit offsets can address.
_BATCH_BYTES = 64 << 20

_refusal_logged = False


class LoadDataRefused(Exception):
    """The server or the client does not allow LOAD DATA LOCAL INFILE."""


def bulk_load(conn: sa.Connection, table: str, columns: list[str], rows: pa.Table) -> int:
    """Append ``rows[columns]`` to ``table`` and return the number of rows loaded.

    MySQL/MariaDB use LOAD DATA LOCAL INFILE and fall back to batched INSERTs when the
    server refuses it; SQLite always uses batched INSERTs. Nothing is committed here.
    """
    if rows.num_rows == 0:
        return 0
    if dialect_dir(conn) == "mysql":
        try:
            return load_data_local(conn, table, columns, rows)
        except LoadDataRefused as refused:
            _log_refusal_once(refused)
    return insert_rows(conn, table, columns, rows)


def load_data_local(conn: sa.Connection, table: str, columns: list[str], rows: pa.Table) -> int:
    """Load through a temporary TSV file and LOAD DATA LOCAL INFILE (MySQL/MariaDB only).

    With LOCAL the server cannot abort the upload, so it treats duplicate keys and bad
    values like IGNORE does: it skips or truncates them and only warns. Any warning, or a
    row count that is off, is therefore raised as an error to keep the load exact.
    """
    quote = conn.dialect.identifier_preparer.quote_identifier
    fd, path = tempfile.mkstemp(prefix=f"recflow_{table}_", suffix=".tsv")
    try:
        with os.fdopen(fd, "wb") as tsv:
            _write_tsv(rows.select(columns), tsv)
        statement = (
            f"LOAD DATA LOCAL INFILE %s INTO TABLE {quote(table)} CHARACTER SET utf8mb4"
            r" FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'"
            f" ({', '.join(quote(column) for column in columns)})"
        )
        try:
            loaded = conn.exec_driver_sql(statement, (path,)).rowcount
        except sa.exc.DBAPIError as error:
            if error.orig is not None and error.orig.args and error.orig.args[0] in LOCAL_INFILE_REFUSED:
                raise LoadDataRefused(str(error.orig)) from error
            raise
    finally:
        os.unlink(path)
    warnings = conn.exec_driver_sql("SHOW WARNINGS LIMIT 5").all()
    if warnings or loaded != rows.num_rows:
        raise ValueError(
            f"LOAD DATA into {table} loaded {loaded} of {rows.num_rows} rows; warnings: {warnings}"
        )
    return loaded


def insert_rows(
    conn: sa.Connection, table: str, columns: list[str], rows: pa.Table, batch_rows: int = INSERT_BATCH_ROWS
) -> int:
    """Load with multi-row INSERT statements of at most ``batch_rows`` rows each.

    On MySQL/MariaDB over a UTF-8 connection the VALUES lists are built with pyarrow.compute,
    each value escaped exactly as PyMySQL escapes it (for the session's sql_mode) and each
    statement kept under INSERT_STATEMENT_BYTES: the multi-row fallback of bulk_load. Elsewhere
    (SQLite, where it is the native path, or another client character set) executemany with
    bound parameters.
    """
    quote = conn.dialect.identifier_preparer.quote_identifier
    into = f"INSERT INTO {quote(table)} ({', '.join(quote(column) for column in columns)}) VALUES "
    style = _sql_style(conn) if dialect_dir(conn) == "mysql" else None
    if style is not None:
        for batch in rows.select(columns).to_batches(max_chunksize=batch_rows):
            for part in _bounded(batch):
                for values in _values_lists(_lines(part, style), INSERT_STATEMENT_BYTES):
                    # no_parameters: the driver must not read a % in the values as a placeholder
                    conn.exec_driver_sql(into + values, execution_options={"no_parameters": True})
        return rows.num_rows
    statement = sa.text(into + f"({', '.join(f':p{i}' for i in range(len(columns)))})")
    names = [f"p{i}" for i in range(len(columns))]
    for batch in rows.select(columns).to_batches(max_chunksize=batch_rows):
        if batch.num_rows == 0:
            continue  # executemany needs at least one row
        values = [batch.column(i).to_pylist() for i in range(len(columns))]
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)])
    return rows.num_rows


@dataclass(frozen=True)
class _Style:
    """How values are written: as LOAD DATA fields, or as SQL literals in a VALUES list."""

    escapes: tuple[tuple[str, str], ...]  # applied in this order
    needs_escape: str  # RE2 class of the characters in ``escapes``
    sql: bool  # quote strings, dates and decimals; write doubles as double literals
    line_start: str
    separator: str
    line_end: str


# LOAD DATA's escapes for the default FIELDS ESCAPED BY '\\', the backslash first so that no
# escape is escaped again (and \N, reserved for NULL, is never produced from a string).
_TSV = _Style(
    escapes=(("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\0", "\\0")),
    needs_escape=r"[\\\t\n\r\x00]",
    sql=False,
    line_start="",
    separator="\t",
    line_end="\n",
)
# PyMySQL's escape_string (its table, in an order where no escape is escaped again) ...
_SQL = _Style(
    escapes=(
        ("\\", "\\\\"),
        ("\0", "\\0"),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\x1a", "\\Z"),
        ("'", "\\'"),
        ('"', '\\"'),
    ),
    needs_escape=r"[\\\x00\n\r\x1a'\"]",
    sql=True,
    line_start="(",
    separator=",",
    line_end="),",
)
# ... and what it does when the session's sql_mode has NO_BACKSLASH_ESCAPES.
_SQL_NO_BACKSLASH_ESCAPES = replace(_SQL, escapes=(("'", "''"),), needs_escape="'")
_UTF8 = frozenset({"utf8mb4", "utf8mb3", "utf8"})
_NULL = {False: r"\N", True: "NULL"}


def _sql_style(conn: sa.Connection) -> _Style | None:
    """How to write SQL literals on this MySQL session; None unless the client speaks UTF-8."""
    sql_mode, charset = conn.exec_driver_sql(
        "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client"
    ).one()
    if charset not in _UTF8:
        return None
    return _SQL_NO_BACKSLASH_ESCAPES if "NO_BACKSLASH_ESCAPES" in sql_mode.split(",") else _SQL


def _write_tsv(rows: pa.Table, out) -> None:
    """Write ``rows`` to the binary file ``out`` as LOAD DATA text, one bounded batch at a time."""
    for batch in rows.to_batches(max_chunksize=TSV_BATCH_ROWS):
        for part in _bounded(batch):
            lines = _lines(part, _TSV)
            offsets = _offsets(lines)
            out.write(lines.buffers()[2][offsets[0] : offsets[-1]])


def _bounded(batch: pa.RecordBatch):
    """``batch`` in slices of at most _BATCH_BYTES (a single row may be larger)."""
    if batch.num_rows <= 1 or sum(map(_spelled_bytes, batch.columns)) <= _BATCH_BYTES:
        if batch.num_rows:
            yield batch
        return
    half = batch.num_rows // 2
    yield from _bounded(batch.slice(0, half))
    yield from _bounded(batch.slice(half))


def _spelled_bytes(column: pa.Array) -> int:
    """The memory ``column`` takes, a dictionary column's counted as if its values were spelled out
    (its dictionary is shared by every slice, and may be larger than any one slice needs)."""
    if not pa.types.is_dictionary(column.type):
        return column.nbytes
    values = column.dictionary
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        spelled = pc.sum(pc.take(pc.binary_length(values), column.indices)).as_py() or 0
        return column.indices.nbytes + spelled
    return column.indices.nbytes * 8  # a number or a date: its text is a few bytes


def _lines(batch: pa.RecordBatch, style: _Style) -> pa.Array:
    """One pa.string() value per row of ``batch``: its fields written in ``style``, joined.

    No line is null, so the data buffer of the result, between its first and last offsets, is
    the text of all the lines one after the other."""
    fields = [
        pc.fill_null(_texts(column, name, style), _NULL[style.sql])
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    ]
    if style.line_start:
        fields[0] = pc.binary_join_element_wise(style.line_start, fields[0], "")
    fields[-1] = pc.binary_join_element_wise(fields[-1], style.line_end, "")
    return pc.binary_join_element_wise(*fields, style.separator)


def _offsets(lines: pa.Array) -> memoryview:
    """The len(lines) + 1 offsets of the pa.string() array ``lines`` into its data buffer."""
    offsets = memoryview(lines.buffers()[1]).cast("i")  # pa.string(): int32 offsets
    return offsets[lines.offset : lines.offset + len(lines) + 1]


def _values_lists(lines: pa.Array, max_bytes: int):
    """The text of ``lines`` ("(...)," each) as VALUES lists of at most ``max_bytes`` bytes (or
    one line), without the last comma."""
    offsets = _offsets(lines)
    data = lines.buffers()[2]
    first = 0
    while first < len(lines):
        last = max(first + 1, bisect.bisect_right(offsets, offsets[first] + max_bytes + 1, lo=first + 1) - 1)
        yield data[offsets[first] : offsets[last] - 1].to_pybytes().decode("utf-8")
        first = last


def _texts(column: pa.Array, name: str, style: _Style) -> pa.Array:
    """``column`` as pa.string() text in ``style``; a null stays null for the caller to fill."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        # write each distinct value once, then spread the texts over the rows
        return pc.take(_texts(column.dictionary, name, style), column.indices)
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or _is_string_view(kind):
        text = _escaped(column.cast(pa.string()), style)
        return _quoted(text) if style.sql else text
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "1", "0")
    if pa.types.is_integer(kind):
        return pc.cast(column, pa.string())
    if pa.types.is_floating(kind):
        return _double_texts(column, name, style)
    if pa.types.is_timestamp(kind) and kind.tz is not None:
        # the UTC date and time: Arrow stores zoned timestamps as UTC, and so does the warehouse
        column = column.view(pa.timestamp(kind.unit))
    if (
        pa.types.is_decimal(kind)
        or pa.types.is_date(kind)
        or pa.types.is_time(kind)
        or pa.types.is_timestamp(kind)
    ):
        # exact decimal digits, ISO dates, times and timestamps; quoted in SQL, where a bare
        # 1.5E-7 would be read as an (inexact) double
        text = pc.cast(column, pa.string())
        return _quoted(text) if style.sql else text
    raise TypeError(f"column {name!r}: cannot load Arrow type {kind}; cast it first")


def _double_texts(column: pa.Array, name: str, style: _Style) -> pa.Array:
    """Arrow writes a double as its shortest round-trip text (the digits of Python's repr).

    float16 and float32 are widened first: the DOUBLE column gets their exact value, not a short
    spelling that MySQL would read as a different double."""
    doubles = pc.cast(column, pa.float64())
    text = pc.cast(doubles, pa.string())
    if not style.sql:
        return text  # LOAD DATA warns about nan and inf, and load_data_local raises
    if pc.any(pc.invert(pc.is_finite(doubles))).as_py():
        # a bare nan or inf would name a column; MySQL has no such doubles anyway
        raise ValueError(f"column {name!r} holds NaN or infinity, which MySQL cannot store")
    # a double literal, as PyMySQL writes one (a bare 0.1 would be a DECIMAL literal)
    return pc.if_else(pc.match_substring(text, "e"), text, pc.binary_join_element_wise(text, "e0", ""))


def _escaped(text: pa.Array, style: _Style) -> pa.Array:
    if not pc.any(pc.match_substring_regex(text, style.needs_escape)).as_py():
        return text  # the usual case (ids, dates): one scan and no copy
    for plain, escaped in style.escapes:
        text = pc.replace_substring(text, plain, escaped)
    return text


def _quoted(text: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise("'", text, "'", "")


def _is_string_view(kind: pa.DataType) -> bool:
    return hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind)


def _log_refusal_once(refused: LoadDataRefused) -> None:
    global _refusal_logged
    if not _refusal_logged:
        _refusal_logged = True
        log.warning(
            "LOAD DATA LOCAL INFILE refused (%s); loading with multi-row INSERTs instead, which is slower. "
            "Start MySQL with --local-infile=1 to enable the fast path.",
            refused,
        )
