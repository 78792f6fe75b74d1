"""Apply the versioned DDL files ``sql/<dialect>/NNN_name.sql`` once each, in order."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import sqlalchemy as sa

from recflow.warehouse.engine import dialect_dir, named_lock

log = logging.getLogger(__name__)

_MIGRATION_FILE = re.compile(r"(\d{3})_\w+\.sql")
_LOCK_NAME = "migrate"
_LOCK_TIMEOUT_S = 300
# A migration's DDL waits for the metadata locks of open BI transactions on its table, and every
# new reader of that table queues behind it: give up after a minute (the task fails and Airflow
# retries it) rather than stall every dashboard for MySQL's default of a year.
_DDL_LOCK_WAIT_S = 60


def migrate(engine: sa.Engine, sql_root: Path) -> list[str]:
    """Apply the files of ``sql_root/<dialect>`` missing from schema_migrations; return their versions.

    A version is the file name without ``.sql`` (``001_core``). On SQLite a file and its
    schema_migrations row commit together. MySQL commits each DDL statement on its own, so a
    file that fails halfway is left unrecorded and re-run in full next time, which the
    IF NOT EXISTS statements make harmless. The writers' ``migrate`` lock keeps two concurrent
    runs from racing (recflow.warehouse.engine.named_lock).
    """
    dialect = dialect_dir(engine)
    files = migration_files(sql_root / dialect)
    applied_now: list[str] = []
    with named_lock(engine, _LOCK_NAME, _LOCK_TIMEOUT_S):
        done = _applied_versions(engine)
        for path in files:
            if path.stem in done:
                continue
            with engine.begin() as conn:
                if dialect == "mysql":
                    conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {_DDL_LOCK_WAIT_S}")
                for statement in split_statements(path.read_text(encoding="utf-8"), dialect):
                    conn.exec_driver_sql(_driver_text(statement, dialect))
                conn.execute(
                    sa.text("INSERT INTO schema_migrations (version) VALUES (:version)"),
                    {"version": path.stem},
                )
                if dialect == "mysql":
                    conn.exec_driver_sql("SET SESSION lock_wait_timeout = DEFAULT")
            log.info("applied migration %s", path)
            applied_now.append(path.stem)
    return applied_now


def _driver_text(statement: str, dialect: str) -> str:
    """PyMySQL formats every statement with Python's % operator, even without parameters, so a
    literal % (DATE_FORMAT(d, '%a')) must be doubled or it turns into something else."""
    return statement.replace("%", "%%") if dialect == "mysql" else statement


def migration_files(directory: Path) -> list[Path]:
    """The ``NNN_name.sql`` files of ``directory`` in version order; other .sql names are an error."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no migration directory {directory}")
    by_number: dict[str, Path] = {}
    for path in directory.glob("*.sql"):
        match = _MIGRATION_FILE.fullmatch(path.name)
        if match is None:
            raise ValueError(f"{path}: migration files are named NNN_name.sql")
        if match[1] in by_number:
            raise ValueError(f"{path} and {by_number[match[1]]} share the version number {match[1]}")
        by_number[match[1]] = path
    return [by_number[number] for number in sorted(by_number)]


def split_statements(sql: str, dialect: str) -> list[str]:
    """The statements of a SQL file: comments dropped, split at semicolons outside quotes.

    Quotes are '...', "..." and `...`; a doubled quote stays inside the string, and on MySQL
    a backslash escapes the next character (SQLite has no backslash escapes).
    """
    statements: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(sql):
        char = sql[i]
        if char in "'\"`":
            end = _end_of_quoted(sql, i, backslash_escapes=dialect == "mysql" and char != "`")
            current.append(sql[i:end])
            i = end
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = len(sql) if newline == -1 else newline
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            if close == -1:
                raise ValueError("unterminated /* comment")
            current.append(" ")
            i = close + 2
        elif char == ";":
            statements.append("".join(current).strip())
            current = []
            i += 1
        else:
            current.append(char)
            i += 1
    statements.append("".join(current).strip())
    return [statement for statement in statements if statement]


def _end_of_quoted(sql: str, start: int, *, backslash_escapes: bool) -> int:
    """Index just past the quoted token opening at ``start``."""
    quote = sql[start]
    i = start + 1
    while i < len(sql):
        if backslash_escapes and sql[i] == "\\":
            i += 2
        elif sql[i] == quote:
            return i + 1  # a doubled quote is read as two adjacent quoted tokens
        else:
            i += 1
    raise ValueError(f"unterminated {quote} quote starting at offset {start}")


def _applied_versions(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("schema_migrations"):
            return set()  # a fresh database; 001_core creates the table
        return set(conn.execute(sa.text("SELECT version FROM schema_migrations")).scalars())
