"""Upsert daily aggregates by (dataset, activity_date, key), inside the caller's transaction.

A run's aggregates cover the days of its data. Each row is inserted or, when its key exists,
updated in place; rows of the covered days whose key the run no longer produces (a category
that vanished after a data fix) are deleted. Days outside the run's range are left alone, so
history published by earlier runs stays. Re-running a date therefore leaves the table identical.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from recflow.warehouse.engine import dialect_dir
from recflow.warehouse.loaders import bulk_load

DAY = "activity_date"


def upsert_days(conn: sa.Connection, table: str, keys: list[str], rows: pa.Table) -> int:
    """Upsert ``rows`` (every column of ``table``) into ``table`` whose primary key is
    (dataset, activity_date, *keys); all rows must share one dataset. Returns the rows loaded."""
    if rows.num_rows == 0:
        return 0
    datasets = pc.unique(rows.column("dataset")).to_pylist()
    if len(datasets) != 1:
        raise ValueError(f"{table}: one dataset per upsert, got {datasets}")
    quote = conn.dialect.identifier_preparer.quote_identifier
    mysql = dialect_dir(conn) == "mysql"
    stage = f"{table}_incoming"
    columns = rows.column_names
    key = ["dataset", DAY, *keys]
    listed = ", ".join(quote(c) for c in columns)
    # A temporary table is private to this connection and, unlike CREATE TABLE, does not end
    # MySQL's transaction.
    if mysql:
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} LIKE {table}")
    else:
        conn.exec_driver_sql(f"CREATE TEMP TABLE {stage} AS SELECT * FROM {table} WHERE 0")
    try:
        loaded = bulk_load(conn, stage, columns, rows)
        updates = [c for c in columns if c not in key]
        if mysql:
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {stage}"
                f" ON DUPLICATE KEY UPDATE {', '.join(f'{quote(c)} = VALUES({quote(c)})' for c in updates)}"
            )
        else:
            # WHERE true: SQLite's parser needs it to tell ON CONFLICT from a join constraint.
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {stage} WHERE true"
                f" ON CONFLICT ({', '.join(quote(c) for c in key)})"
                f" DO UPDATE SET {', '.join(f'{quote(c)} = excluded.{quote(c)}' for c in updates)}"
            )
        first, last = pc.min_max(rows.column(DAY)).values()
        same_key = " AND ".join(f"s.{quote(c)} = {table}.{quote(c)}" for c in key)
        conn.execute(
            sa.text(
                f"DELETE FROM {table} WHERE dataset = :dataset AND {DAY} BETWEEN :first AND :last"
                f" AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {same_key})"
            ),
            {"dataset": datasets[0], "first": first.as_py().isoformat(), "last": last.as_py().isoformat()},
        )
    finally:
        conn.exec_driver_sql(f"DROP {'TEMPORARY ' if mysql else ''}TABLE {stage}")
    return loaded
