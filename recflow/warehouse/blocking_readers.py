"""End a read-only session that blocks a publish, after a few seconds' grace.

Publishing is DML only, in one transaction (recflow.warehouse.publish): no RENAME, no DDL, so
an ordinary BI query, however long, and an open read transaction never delay it (InnoDB readers
take no row locks and their metadata locks do not conflict with DML). What can delay it is a
session that locks the rows it reads, and any account that may SELECT a view can: ``SELECT ...
FOR UPDATE`` or ``LOCK IN SHARE MODE`` through a view (MariaDB asks for SELECT alone), or any read
inside a SERIALIZABLE transaction. Left open, such a transaction would hold the publish up until
innodb_lock_wait_timeout and fail it.

So while a publish transaction runs, a watchdog on its own connection polls sys.innodb_lock_waits
(MySQL 8 and MariaDB 10.6+) for the sessions blocking it. One that has changed nothing (its
transaction modified no rows: a reader) and has blocked for ``grace_s`` seconds is ended with
KILL CONNECTION: its transaction rolls back, nothing is lost, the publish goes on, and the kill is
logged and reported in the publish's result. A blocking session that has modified rows (a
writer, such as someone editing the blocklist) is waited for, as any writer would be.

The publishing account needs PROCESS (to see other sessions' transactions), SELECT on sys and
performance_schema and EXECUTE on sys (MySQL 8's sys views read the former and call sys.format_statement), and CONNECTION_ADMIN (MySQL 8; MariaDB:
CONNECTION ADMIN, or SUPER) to end other accounts' sessions. Without them the watchdog says so
once in the log and the publish waits for the blocker as it would without it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import sqlalchemy as sa

from recflow.config import DEFAULT_BLOCKING_READER_GRACE_S as DEFAULT_GRACE_S
from recflow.warehouse.engine import dialect_dir

log = logging.getLogger(__name__)
_POLL_S = 0.5
_BLOCKERS = sa.text(
    "SELECT w.blocking_pid, w.wait_age_secs, w.locked_table, w.blocking_trx_rows_modified,"
    " p.USER AS user, p.HOST AS host"
    " FROM sys.innodb_lock_waits w JOIN information_schema.PROCESSLIST p ON p.ID = w.blocking_pid"
    " WHERE w.waiting_pid = :pid"
)


@contextlib.contextmanager
def ending_blocking_readers(
    engine: sa.Engine, conn: sa.Connection, grace_s: float | None = DEFAULT_GRACE_S
) -> Iterator[list[dict]]:
    """While the block runs, end read-only sessions that block ``conn`` for ``grace_s`` seconds.

    Yields the list the watchdog appends each ended session to (pid, user, host, table,
    blocked_s). A no-op on SQLite (one writer, no BI sessions) and when ``grace_s`` is None."""
    ended: list[dict] = []
    if dialect_dir(engine) != "mysql" or grace_s is None:
        yield ended
        return
    pid = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one()
    stop = threading.Event()
    watchdog = threading.Thread(
        target=_watch,
        args=(engine, pid, grace_s, stop, ended),
        name=f"recflow-blocking-readers-{pid}",
        daemon=True,
    )
    watchdog.start()
    try:
        yield ended
    finally:
        stop.set()
        watchdog.join(timeout=30)


def _watch(engine: sa.Engine, pid: int, grace_s: float, stop: threading.Event, ended: list[dict]) -> None:
    refused: set[int] = set()
    # When the watchdog first saw each session block the publish: the server's wait_age_secs is
    # whole seconds, too coarse for a grace of a few.
    first_seen: dict[int, float] = {}
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while not stop.wait(_POLL_S):
                for blocker in conn.execute(_BLOCKERS, {"pid": pid}).mappings().all():
                    session = int(blocker["blocking_pid"])
                    blocked_s = time.monotonic() - first_seen.setdefault(session, time.monotonic())
                    if session in refused or blocker["blocking_trx_rows_modified"] or blocked_s < grace_s:
                        continue
                    if _end(conn, session):
                        record = {
                            "pid": session,
                            "user": blocker["user"],
                            "host": blocker["host"],
                            "table": blocker["locked_table"],
                            "blocked_s": round(blocked_s, 1),
                        }
                        ended.append(record)
                        log.warning(
                            "Ended session %(pid)s of %(user)s@%(host)s: it had changed nothing and its locks on "
                            "%(table)s held the publish up for %(blocked_s)s s",
                            record,
                        )
                    else:
                        refused.add(session)
    except sa.exc.DBAPIError as error:
        # Most likely missing privileges (PROCESS, SELECT on sys) or no sys schema.
        log.warning(
            "Cannot watch for sessions blocking the publish (%s): a session holding locks on the served "
            "tables will delay it. Grant the publishing account PROCESS, SELECT and EXECUTE on sys.*, "
            "SELECT on performance_schema.*, and CONNECTION_ADMIN (recflow.warehouse.blocking_readers).",
            error.orig if error.orig is not None else error,
        )


def _end(conn: sa.Connection, session: int) -> bool:
    try:
        conn.exec_driver_sql(f"KILL CONNECTION {int(session)}")
    except sa.exc.DBAPIError as error:
        if "Unknown thread" in str(error.orig):
            return False  # it ended by itself meanwhile
        log.warning(
            "Session %s blocks the publish but cannot be ended (%s): grant the publishing account "
            "CONNECTION_ADMIN (MariaDB: CONNECTION ADMIN), or end it by hand",
            session,
            error.orig,
        )
        return False
    return True
