"""Engine construction for the warehouse: MySQL/MariaDB for BI, SQLite as the embedded default."""

from __future__ import annotations

import contextlib
import decimal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import sqlalchemy as sa


def make_engine(url: str | None = None, default_sqlite_path: Path | None = None) -> sa.Engine:
    """Engine for ``url``, or for a SQLite file at ``default_sqlite_path`` when url is None or empty."""
    if not url:
        if default_sqlite_path is None:
            raise ValueError("make_engine needs a database url or a default_sqlite_path")
        default_sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        parsed = sa.URL.create("sqlite", database=str(default_sqlite_path))
    else:
        parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Money columns arrive as Decimal, which sqlite3 cannot bind; as text they keep every
        # digit and SQLite's NUMERIC affinity stores them as numbers.
        sqlite3.register_adapter(decimal.Decimal, str)
        engine = sa.create_engine(parsed)
        _make_sqlite_ddl_transactional(engine)
        return engine
    if parsed.get_backend_name() in ("mysql", "mariadb") and parsed.get_driver_name() == "pymysql":
        # local_infile lets loaders use LOAD DATA LOCAL INFILE (the server must allow it too);
        # utf8mb4 so that emoji survive the connection; pre-ping because MySQL drops idle
        # connections (wait_timeout) between daily DAG runs.
        return sa.create_engine(
            parsed,
            connect_args={"local_infile": True, "charset": "utf8mb4"},
            pool_pre_ping=True,
        )
    return sa.create_engine(parsed, pool_pre_ping=True)


def dialect_dir(engine: sa.Engine | sa.Connection) -> Literal["mysql", "sqlite"]:
    """Name of the sql/<dir> holding this engine's DDL; MariaDB shares MySQL's."""
    name = engine.dialect.name
    if name in ("mysql", "mariadb"):
        return "mysql"
    if name == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported warehouse dialect {name!r}: RecFlow supports MySQL, MariaDB and SQLite")


@contextlib.contextmanager
def named_lock(engine: sa.Engine, name: str, timeout_s: int) -> Iterator[None]:
    """Hold the server-wide MySQL lock ``name`` (GET_LOCK) for the duration of the block.

    The lock lives on a dedicated autocommit connection, so the caller's own transactions
    and implicit DDL commits neither release it nor keep a snapshot open. On SQLite this is
    a no-op: the embedded warehouse has one writer process and SQLite serialises writers.
    """
    if dialect_dir(engine) != "mysql":
        yield
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        got = conn.execute(sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout_s})
        if got.scalar_one() != 1:
            raise TimeoutError(f"could not take the MySQL lock {name!r} within {timeout_s}s")
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})


def _make_sqlite_ddl_transactional(engine: sa.Engine) -> None:
    """Let SQLAlchemy emit BEGIN so DDL joins the transaction (SQLAlchemy's documented recipe).

    Python 3.11's sqlite3 only opens a transaction before INSERT/UPDATE/DELETE, so CREATE and
    DROP would otherwise autocommit on their own and a migration file could half-apply.
    """

    @sa.event.listens_for(engine, "connect")
    def _no_driver_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")
