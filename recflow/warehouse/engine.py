"""Engine construction for the warehouse: MySQL/MariaDB for BI, SQLite as the embedded default."""

from __future__ import annotations

import contextlib
import decimal
import fcntl
import sqlite3
import time
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


# The writers' locks (publish, migrate): rows of a table no BI account can read. GET_LOCK would
# need no privilege at all, so any account, a read-only BI one included, could take the lock's
# name and stop every publish (found by a probe: GET_LOCK('recflow_publish', 0), SLEEP(3600)).
LOCK_TABLE = "recflow_locks"
_LOCK_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} (name VARCHAR(64) NOT NULL PRIMARY KEY)"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
)
_LOCK_WAIT_TIMEOUT = 1205  # ER_LOCK_WAIT_TIMEOUT


@contextlib.contextmanager
def named_lock(engine: sa.Engine, name: str, timeout_s: int) -> Iterator[None]:
    """Hold the writers' lock ``name`` for the duration of the block; TimeoutError after ``timeout_s``.

    MySQL: the row ``name`` of recflow_locks, locked FOR UPDATE by a transaction on a dedicated
    connection, so the caller's own transactions and DDL commits neither release it nor wait for
    it. Only an account that may read that table can take it (the BI accounts read views only),
    and a holder that dies loses its connection, which releases the row.
    SQLite: an exclusive lock on a file beside the database (the embedded warehouse lives on one
    machine); a process that dies releases it too.
    """
    if dialect_dir(engine) != "mysql":
        with _file_lock(engine, name, timeout_s):
            yield
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(_LOCK_TABLE_DDL)
        row = {"name": name}
        # INSERT IGNORE only when the row is missing: on a locked existing row it would wait.
        if conn.execute(sa.text(f"SELECT name FROM {LOCK_TABLE} WHERE name = :name"), row).first() is None:
            conn.execute(sa.text(f"INSERT IGNORE INTO {LOCK_TABLE} (name) VALUES (:name)"), row)
        conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {int(timeout_s)}")
        conn.exec_driver_sql("START TRANSACTION")
        try:
            conn.execute(sa.text(f"SELECT name FROM {LOCK_TABLE} WHERE name = :name FOR UPDATE"), row)
        except sa.exc.OperationalError as error:
            _release(conn)
            if error.orig is not None and error.orig.args and error.orig.args[0] == _LOCK_WAIT_TIMEOUT:
                raise TimeoutError(
                    f"could not take the warehouse lock {name!r} within {timeout_s}s: another RecFlow "
                    f"process holds it (information_schema.INNODB_TRX shows which)"
                ) from None
            raise
        try:
            yield
        finally:
            _release(conn)


def _release(conn: sa.Connection) -> None:
    # The connection goes back to the pool: it must not keep the lock's wait timeout.
    conn.exec_driver_sql("ROLLBACK")
    conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = DEFAULT")


@contextlib.contextmanager
def _file_lock(engine: sa.Engine, name: str, timeout_s: int) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # a private in-memory database has no other writer
        return
    path = Path(f"{database}.{name}.lock")
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not take the lock {path} within {timeout_s}s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
