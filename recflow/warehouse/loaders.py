"""Bulk loading of Arrow tables into existing warehouse tables, inside the caller's transaction."""

from __future__ import annotations

import logging
import os
import tempfile

import pyarrow as pa
import sqlalchemy as sa

from recflow.warehouse.engine import dialect_dir

log = logging.getLogger(__name__)

INSERT_BATCH_ROWS = 5_000

# Refusals of LOAD DATA LOCAL that the INSERT path can work around: 1148 ER_NOT_ALLOWED_COMMAND
# (older servers), 3948 ER_CLIENT_LOCAL_FILES_DISABLED (MySQL 8, whose local_infile is OFF by
# default), 4166 ER_LOAD_INFILE_CAPABILITY_DISABLED (MariaDB 10.5+), 2068
# CR_LOAD_DATA_LOCAL_INFILE_REJECTED (refused by the client library).
LOCAL_INFILE_REFUSED = frozenset({1148, 2068, 3948, 4166})

# LOAD DATA's escapes for the default FIELDS ESCAPED BY '\\' (\N, reserved for NULL, is
# never produced from a string because the backslash itself is escaped first).
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})

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
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as tsv:
            tsv.writelines(_tsv_lines(rows.select(columns)))
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
    """Load with executemany, ``batch_rows`` rows per call.

    PyMySQL turns each executemany of an INSERT ... VALUES into multi-row INSERT
    statements, so on MySQL this is the multi-row fallback; on SQLite it is the native path.
    """
    quote = conn.dialect.identifier_preparer.quote_identifier
    statement = sa.text(
        f"INSERT INTO {quote(table)} ({', '.join(quote(column) for column in columns)})"
        f" VALUES ({', '.join(f':p{i}' for i in range(len(columns)))})"
    )
    names = [f"p{i}" for i in range(len(columns))]
    for batch in rows.select(columns).to_batches(max_chunksize=batch_rows):
        if batch.num_rows == 0:
            continue  # executemany needs at least one row
        values = [batch.column(i).to_pylist() for i in range(len(columns))]
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)])
    return rows.num_rows


def _tsv_lines(rows: pa.Table):
    for batch in rows.to_batches():
        columns = [[_tsv_field(value) for value in column.to_pylist()] for column in batch.columns]
        for fields in zip(*columns, strict=True):
            yield "\t".join(fields) + "\n"


def _tsv_field(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, str):
        return value.translate(_TSV_ESCAPES)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)  # shortest text that parses back to the same double
    return str(value)  # int, datetime.date (ISO), Decimal


def _log_refusal_once(refused: LoadDataRefused) -> None:
    global _refusal_logged
    if not _refusal_logged:
        _refusal_logged = True
        log.warning(
            "LOAD DATA LOCAL INFILE refused (%s); loading with multi-row INSERTs instead, which is slower. "
            "Start MySQL with --local-infile=1 to enable the fast path.",
            refused,
        )
