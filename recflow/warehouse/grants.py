"""The read-only ``bi_reader`` account: SELECT on the BI views (``v_*``) and nothing else.

Tableau and other BI tools log in as this account. It may read every ``v_*`` view of the
warehouse database and nothing else: no base table, no write, no DDL. The views are
``SQL SECURITY DEFINER`` (sql/mysql/006_bi_views.sql, 010_recommendation_views.sql), so they
read the base tables with their creator's rights, and SELECT on the view alone is enough.

Create the account, or rotate its password, with an account that may create users and grant
(root, or a DBA with CREATE USER and SELECT ... WITH GRANT OPTION on the warehouse database)::

    export RECFLOW_WAREHOUSE_URL=mysql+pymysql://root:...@db:3306/recflow
    scripts/create_bi_reader.sh          # prompts for the password when it is not set
    # or: RECFLOW_BI_READER_PASSWORD=... python -m recflow.warehouse.grants [--user U] [--host H]

It applies the migrations first (so the views exist), then runs, idempotently::

    CREATE USER IF NOT EXISTS 'bi_reader'@'%' IDENTIFIED BY <password>
    ALTER USER 'bi_reader'@'%' IDENTIFIED BY <password>        -- rotates an existing password
    REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'bi_reader'@'%'   -- stale grants go
    GRANT SELECT ON `<database>`.`<view>` TO 'bi_reader'@'%'   -- for every v_* view

and checks with SHOW GRANTS that the account holds nothing else. REVOKE ALL works on every
database of the server, so give each warehouse its own reader account (``--user``). The host
defaults to '%' (any); RECFLOW_BI_READER_HOST narrows it (e.g. '10.0.%'). The password comes
from RECFLOW_BI_READER_PASSWORD only (a command-line argument would show in ``ps``); it is bound
as a query parameter, never logged, and removed from any error message. sql/grants/bi_reader.sql
is the same, by hand, for a DBA at the mysql prompt. MySQL 8 and MariaDB 10.11+; SQLite has no
accounts, so there is nothing to grant on the embedded warehouse.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from recflow.config import PROJECT_ROOT
from recflow.warehouse.engine import make_engine
from recflow.warehouse.migrate import migrate

log = logging.getLogger(__name__)

SQL_ROOT = PROJECT_ROOT / "sql"
DEFAULT_USER = "bi_reader"
DEFAULT_HOST = "%"
VIEW_PREFIX = "v_"
PASSWORD_ENV = "RECFLOW_BI_READER_PASSWORD"
HOST_ENV = "RECFLOW_BI_READER_HOST"
URL_ENV = "RECFLOW_WAREHOUSE_URL"

# Conservative on purpose: the name ends up in SQL (bound as a string literal, but also in
# messages and in the DBA's hands). 32 characters is MySQL 8's limit (MariaDB allows 80).
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
# Host names, IPv4/IPv6 addresses, netmasks and the % / _ wildcards.
_HOST = re.compile(r"[A-Za-z0-9_.%:/-]{1,255}")
# Printable ASCII: see grant_bi_reader for why.
_PASSWORD = re.compile(r"[ -~]{1,256}")
# SHOW GRANTS lines the account may hold: USAGE ("may log in") and SELECT on one table or view.
_GRANT_LINE = re.compile(r"GRANT (?P<privileges>.+?) ON (?P<target>\S+) TO ")
_QUOTED_NAME = re.compile(r"`((?:[^`]|``)*)`\.`((?:[^`]|``)*)`")


class GrantError(RuntimeError):
    """The account could not be set up as asked; the message says why (never the password)."""


def grant_bi_reader(
    engine: sa.Engine,
    password: str,
    user: str = DEFAULT_USER,
    host: str = DEFAULT_HOST,
    *,
    sql_root: Path = SQL_ROOT,
    apply_migrations: bool = True,
) -> list[str]:
    """Create or update ``user@host`` so that it may SELECT every v_* view and nothing else.

    Returns the views granted, sorted. Idempotent; a new ``password`` replaces the old one.
    Raises GrantError on SQLite, without a database in the URL, without views, with an empty
    password or an unusual user / host name, when the server refuses a statement, and when the
    account ends up holding anything but USAGE and SELECT on the views (a role, say).
    """
    if engine.dialect.name not in ("mysql", "mariadb"):
        raise GrantError(
            f"bi_reader needs a MySQL or MariaDB warehouse, not {engine.dialect.name}: the embedded "
            f"SQLite warehouse has no accounts to grant to (set {URL_ENV} to the server's URL)"
        )
    if not isinstance(password, str) or not password:
        raise GrantError(f"no password for {user}: set {PASSWORD_ENV}")
    if not _PASSWORD.fullmatch(password):
        # Client drivers disagree on how to encode anything else when they log in (PyMySQL sends
        # latin-1, others UTF-8), so such a password would work for one tool and not another.
        raise GrantError(
            f"the password for {user} must be printable ASCII (letters, digits, punctuation, space)"
        )
    if not _USER.fullmatch(user):
        raise GrantError(f"user name {user!r}: use 1-32 letters, digits, '_', '.' or '-'")
    if not _HOST.fullmatch(host):
        raise GrantError(f"host {host!r}: use a host name, an IP address, a netmask or % wildcards")
    if engine.logger.isEnabledFor(logging.INFO) and not getattr(engine, "hide_parameters", False):
        # echo=True, or sqlalchemy.engine logging at INFO: SQLAlchemy would log the bound password.
        raise GrantError(
            "this engine logs its statements with their parameters, which would log the password: "
            "create it with echo=False or hide_parameters=True"
        )
    account = {"user": user, "host": host}
    shown = account_name(user, host)

    if apply_migrations:
        migrate(engine, sql_root)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        database = conn.execute(sa.text("SELECT DATABASE()")).scalar()
        if not database:
            raise GrantError("the warehouse URL names no database: bi_reader is granted the views of one")
        views = bi_views(conn)
        if not views:
            raise GrantError(
                f"database {database!r} has no {VIEW_PREFIX}* views to grant: apply the migrations "
                f"(sql/mysql/006_bi_views.sql, 010_recommendation_views.sql) first"
            )
        # Account statements commit on their own in MySQL; there is no transaction to wrap them
        # in. Between REVOKE and the last GRANT a reader briefly lacks some views; re-running
        # converges, and nothing is ever granted beyond the views.
        for statement in (
            "CREATE USER IF NOT EXISTS :user@:host IDENTIFIED BY :password",
            "ALTER USER :user@:host IDENTIFIED BY :password",
        ):
            _execute(conn, statement, {**account, "password": password}, shown, password)
        _execute(conn, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM :user@:host", account, shown, password)
        quote = conn.dialect.identifier_preparer.quote_identifier
        for view in views:
            # A colon in a name would read as a bind parameter to sa.text(); \: is a literal one.
            target = f"{quote(database)}.{quote(view)}".replace(":", "\\:")
            _execute(conn, f"GRANT SELECT ON {target} TO :user@:host", account, shown, password)
        unexpected = unexpected_grants(_show_grants(conn, account, shown, password), database, views)
    if unexpected:
        raise GrantError(
            f"{shown} holds more than SELECT on the views after the REVOKE (a role or a proxy grant?); "
            "revoke these by hand: " + "; ".join(unexpected)
        )
    log.info("%s may SELECT %d views of %s and nothing else", shown, len(views), database)
    return views


def bi_views(conn: sa.Connection) -> list[str]:
    """The v_* views of the connection's current database, sorted."""
    names = conn.execute(
        sa.text("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()")
    ).scalars()
    # Filtered here rather than with LIKE, where '_' is a wildcard and needs escaping.
    return sorted(name for name in names if name.startswith(VIEW_PREFIX))


def unexpected_grants(grant_lines: Sequence[str], database: str, views: Sequence[str]) -> list[str]:
    """The SHOW GRANTS lines that are neither USAGE ON *.* nor SELECT on one of ``views``.

    Lines come back with any IDENTIFIED BY PASSWORD '<hash>' suffix cut off, so that a message
    built from them never carries even the password's hash.
    """
    allowed = set(views)
    unexpected = []
    for line in grant_lines:
        match = _GRANT_LINE.match(line)
        if match and match["privileges"] == "USAGE" and match["target"] == "*.*":
            continue
        if match and match["privileges"] == "SELECT":
            name = _QUOTED_NAME.fullmatch(match["target"])
            if name and name[1].replace("``", "`") == database and name[2].replace("``", "`") in allowed:
                continue
        unexpected.append(line.split(" IDENTIFIED BY ", 1)[0])
    return unexpected


def account_name(user: str, host: str) -> str:
    """``'user'@'host'`` as MySQL spells an account (for messages; statements bind the parts)."""
    return f"'{user}'@'{host}'"


def _show_grants(conn: sa.Connection, account: dict[str, str], shown: str, password: str) -> list[str]:
    result = _execute(conn, "SHOW GRANTS FOR :user@:host", account, shown, password)
    return [row[0] for row in result]


def _execute(
    conn: sa.Connection, statement: str, params: dict[str, str], shown: str, password: str
) -> sa.CursorResult:
    """Run one account statement; a refusal becomes a GrantError that names no password.

    SQLAlchemy's own error text lists the bound parameters, password included, and a server
    message may quote the statement; so the driver's error is re-raised as the server's code and
    message with the password cut out, and without the original exception attached.
    """
    try:
        return conn.execute(sa.text(statement), params)
    except sa.exc.DBAPIError as error:
        reason = " ".join(str(arg) for arg in getattr(error.orig, "args", ()) or (type(error.orig).__name__,))
        reason = _redact(reason, password)
        verb = " ".join(statement.split()[:2])
        raise GrantError(f"{verb} for {shown} was refused: {reason}") from None


def _redact(text: str, password: str) -> str:
    """``text`` without ``password``, also as a MySQL string literal would escape it."""
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    for form in sorted({password, escaped, password.replace("'", "''")}, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m recflow.warehouse.grants``: create or update the reader; print what it may read."""
    parser = argparse.ArgumentParser(
        prog="python -m recflow.warehouse.grants",
        description=(
            f"Create or update the read-only BI account: SELECT on the v_* views only. Reads {URL_ENV} "
            f"(an account that may create users and grant) and {PASSWORD_ENV}."
        ),
    )
    parser.add_argument("--user", default=DEFAULT_USER, help="account name (default: %(default)s)")
    parser.add_argument(
        "--host",
        default=os.environ.get(HOST_ENV) or DEFAULT_HOST,
        help=f"hosts it may connect from (default: {HOST_ENV} or %(default)s)",
    )
    args = parser.parse_args(argv)
    url = os.environ.get(URL_ENV)
    password = os.environ.get(PASSWORD_ENV)
    if not url:
        print(
            f"error: {URL_ENV} is not set; bi_reader lives on the MySQL/MariaDB warehouse "
            "(the embedded SQLite warehouse has no accounts)",
            file=sys.stderr,
        )
        return 2
    if not password:
        print(
            f"error: {PASSWORD_ENV} is not set; refusing to create an account without a password",
            file=sys.stderr,
        )
        return 2
    engine = make_engine(url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        views = grant_bi_reader(engine, password, args.user, args.host)
    except GrantError as error:
        print(f"error: {error} ({where})", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"{account_name(args.user, args.host)} may SELECT these {len(views)} views of {where}:")
    for view in views:
        print(f"  {view}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
