"""The read-only bi_reader account on the real MariaDB: it reads every BI view and nothing else.

Each test logs in as a throwaway account (bi_reader_t<random>, dropped afterwards: accounts are
server-wide, databases are not) on its own throwaway database, filled with one row per table.
"""

from __future__ import annotations

import datetime
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sqlalchemy as sa

from recflow.warehouse import grants
from recflow.warehouse.grants import GrantError, grant_bi_reader
from recflow.warehouse.migrate import migrate, migration_files, split_statements

ROOT = Path(__file__).resolve().parents[2]
GRANT_FILE = ROOT / "sql" / "grants" / "bi_reader.sql"
TDS = ROOT / "bi" / "tableau" / "recflow.tds"
DAY = datetime.date(2024, 5, 1)
SEEN = datetime.datetime(2024, 5, 1, 20, 15)
# One row for every table a BI view reads, keyed alike (dataset A, user u1, item i1, the day
# DAY) so that the views' joins find each other.
ROWS: dict[str, dict[str, object]] = {
    "recommendations": dict(dataset="A", user_id="u1", item_id="i1", rank=1, score=0.9,
                            model_version="als-1", run_date=DAY, source="als", reason="liked by people like you",
                            user_tier="heavy"),
    "items": dict(dataset="A", item_id="i1", title="Film «é»", genres="Comedy|Drama", category="drama"),
    "model_runs": dict(run_id="A/2024-05-01", dataset="A", run_date=DAY, dag_run_id="manual__1",
                       model_version="als-1", status="published", params="{}", metrics="{}",
                       task_timings="{}", n_interactions=3, n_users=1, n_items=1, n_recommendations=1),
    "model_metrics": dict(dataset="A", run_date=DAY, model_version="als-1", model="als", metric="ndcg",
                          k=10, value=0.21),
    "model_registry": dict(dataset="A", run_date=DAY, model_version="als-1", decision="promoted", forced=False,
                           primary_metric="ndcg@10", challenger_value=0.21, tolerance=0.01,
                           reason="promoted: no champion yet", params="{}", tuning="{}", data_snapshot="{}",
                           metrics="{}", model_path="file:/lake/models/als-1", is_champion=True),
    "data_quality_results": dict(dataset="A", run_date=DAY, suite="ratings", expectation_key="rating_range",
                                 expectation_type="expect_column_values_to_be_between", column_name="rating",
                                 severity="critical", success=False, observed_value="7.5",
                                 unexpected_count=1, element_count=4),
    "data_reconciliation": dict(dataset="A", run_date=DAY, table_name="ratings", raw_rows=4, clean_rows=3,
                                quarantined_rows=1, duplicate_rows=0),
    "quarantine_summary": dict(dataset="A", run_date=DAY, table_name="ratings", reason="rating out of range",
                               column_name="rating", rows_quarantined=1, sample_file="ratings.csv",
                               sample_line=3, sample_row="u1,i9,7.5,1714594500"),
    "users": dict(dataset="A", user_id="u1", gender="F", age=25, age_group="25-34", occupation="writer",
                  zip_code="12345", first_seen=SEEN, last_seen=SEEN, n_interactions=3, run_date=DAY),
    "user_profiles": dict(dataset="A", user_id="u1", n_interactions=3, n_items=1, active_days=1,
                          activity_level="light", top_categories="Drama", top_category="Drama",
                          top_category_share=1.0, active_hours="20", peak_hour=20, active_weekdays="Wed",
                          peak_weekday="Wed", avg_rating=4.0, run_date=DAY),
    "popular_items": dict(dataset="A", segment_type="overall", segment="all", rank=1, item_id="i1", n_users=1,
                          n_interactions=3, avg_rating=4.0, run_date=DAY),
    "daily_kpis": dict(dataset="A", activity_date=DAY, n_interactions=3, active_users=1, new_users=1,
                       active_items=1, avg_rating=4.0, watch_seconds=7200, run_date=DAY),
    "daily_category_activity": dict(dataset="A", activity_date=DAY, category="Drama", n_interactions=3,
                                    active_users=1, watch_seconds=7200, run_date=DAY),
    "daily_funnel": dict(dataset="A", activity_date=DAY, step=1, step_name="rated", n_events=3, n_users=1,
                         run_date=DAY),
    "hourly_activity": dict(dataset="A", activity_date=DAY, hour=20, n_interactions=3, active_users=1,
                            run_date=DAY),
    "watch_time_hourly": dict(dataset="A", activity_date=DAY, item_id="i1", hour=20, watch_seconds=7200,
                              viewers=1, run_date=DAY),
    "similar_items": dict(dataset="A", item_id="i1", rank=1, similar_item_id="i1", score=0.75,
                          model_version="als-1", run_date=DAY),
    "recommendation_rules": dict(dataset="A", run_date=DAY, model_version="als-1", rule="diversity", enabled=True,
                                 setting="max 4 per category", items_removed=6, users_affected=4),
    "recommendation_blocklist": dict(dataset="A", item_id="i1", user_id="", reason="licence expired",
                                     added_by="ops", added_at=SEEN),
}  # fmt: skip
ACCESS_DENIED = 1142  # "<command> command denied to user ... for table ..."
DB_ACCESS_DENIED = 1044  # "Access denied for user ... to database ..."
BAD_LOGIN = 1045
NO_SUCH_ACCOUNT = {1045, 1698}  # MySQL 8 says 1045; MariaDB 1698 when no account matches the host
_GRANT = re.compile(r"GRANT (.+?) ON (\S+) TO ")

pytestmark = pytest.mark.warehouse


def migration_views() -> list[str]:
    """The views the migrations create, read from the SQL files."""
    names = set()
    for path in migration_files(ROOT / "sql" / "mysql"):
        names |= set(
            re.findall(r"CREATE\s+OR\s+REPLACE\s+(?:SQL\s+SECURITY\s+\w+\s+)?VIEW\s+(\w+)", path.read_text())
        )
    return sorted(names)


@pytest.fixture
def warehouse(mariadb_engine: sa.Engine, sql_root: Path) -> sa.Engine:
    """A migrated warehouse with one row in every table the views read, inserted as root."""
    migrate(mariadb_engine, sql_root)
    with mariadb_engine.begin() as conn:
        for table, row in ROWS.items():
            columns = ", ".join(f"`{column}`" for column in row)
            values = ", ".join(f":{column}" for column in row)
            conn.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)
    return mariadb_engine


def login(warehouse: sa.Engine, user: str, password: str) -> sa.Engine:
    """An engine on the same database as ``user`` (the password travels in the URL object, unquoted)."""
    return sa.create_engine(warehouse.url.set(username=user, password=password), poolclass=sa.NullPool)


def errno(error: sa.exc.DBAPIError) -> int:
    return error.orig.args[0]


def refused(engine: sa.Engine, statement: str) -> int:
    """The server's error number for ``statement``; fails the test if it was allowed."""
    with engine.connect() as conn:
        try:
            conn.execute(sa.text(statement))
        except sa.exc.DBAPIError as error:
            return errno(error)
        conn.rollback()
    pytest.fail(f"the reader was allowed to run {statement!r}")


def server_grants(warehouse: sa.Engine, user: str, host: str = "%") -> list[tuple[str, str]]:
    """(privileges, target) of every SHOW GRANTS line of the account, as root sees it."""
    with warehouse.connect() as conn:
        lines = conn.execute(sa.text("SHOW GRANTS FOR :u@:h"), {"u": user, "h": host}).scalars().all()
    return sorted(_GRANT.match(line).groups() for line in lines)


def expected_grants(database: str, views: list[str]) -> list[tuple[str, str]]:
    return sorted([("USAGE", "*.*")] + [("SELECT", f"`{database}`.`{view}`") for view in views])


def base_tables(warehouse: sa.Engine) -> list[str]:
    with warehouse.connect() as conn:
        return (
            conn.execute(
                sa.text(
                    "SELECT TABLE_NAME FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
                )
            )
            .scalars()
            .all()
        )


# --- what the account may do -----------------------------------------------------------------


def test_the_reader_selects_every_view_and_sees_the_rows(warehouse, new_account):
    user = new_account()
    granted = grant_bi_reader(warehouse, "s3cret-pw", user)
    assert granted == migration_views()
    assert len(granted) == 16
    reader = login(warehouse, user, "s3cret-pw")
    with reader.connect() as conn:
        for view in granted:
            rows = conn.execute(sa.text(f"SELECT * FROM `{view}`")).mappings().all()
            assert len(rows) == 1, view
            assert rows[0]["dataset"] == "A", view
        # Joins read through to tables the reader may not touch (SQL SECURITY DEFINER).
        recommendation = conn.execute(sa.text("SELECT * FROM v_user_recommendations")).mappings().one()
        assert (recommendation["title"], recommendation["recommendation_rank"]) == ("Film «é»", 1)
        kpis = conn.execute(sa.text("SELECT watch_hours, returning_users FROM v_daily_kpis")).one()
        assert (float(kpis.watch_hours), kpis.returning_users) == (2.0, 0)
        performance = conn.execute(
            sa.text("SELECT metric_label, decision, run_status FROM v_model_performance")
        ).one()
        assert tuple(performance) == ("ndcg@10", "promoted", "published")
        quality = conn.execute(sa.text("SELECT outcome, unexpected_share FROM v_data_quality")).one()
        assert (quality.outcome, float(quality.unexpected_share)) == ("failed", 0.25)
        watch = conn.execute(sa.text("SELECT channel_name, viewers FROM v_watch_time_hourly")).one()
        assert tuple(watch) == ("Film «é»", 1)
        tiers = conn.execute(
            sa.text("SELECT user_tier, metric_label, decision FROM v_model_tier_performance")
        )
        assert tuple(tiers.one()) == ("all", "ndcg@10", "promoted")
        rules = conn.execute(
            sa.text("SELECT rule, enabled, items_removed_per_user, run_status FROM v_recommendation_rules")
        ).one()
        assert tuple(rules) == ("diversity", 1, 1.5, "published")
        blocked = conn.execute(sa.text("SELECT title, applies_to, reason FROM v_blocklist")).one()
        assert tuple(blocked) == ("Film «é»", "all users", "licence expired")
        similar = conn.execute(
            sa.text("SELECT title, similar_title, similarity_rank FROM v_similar_items")
        ).one()
        assert tuple(similar) == ("Film «é»", "Film «é»", 1)
        mix = conn.execute(
            sa.text("SELECT user_tier, source, n_users, n_recommendations FROM v_recommendation_mix")
        ).one()
        assert tuple(mix) == ("heavy", "als", 1, 1)
    reader.dispose()


def test_the_reader_cannot_select_any_table(warehouse, new_account):
    user = new_account()
    grant_bi_reader(warehouse, "s3cret-pw", user)
    tables = base_tables(warehouse)
    assert {
        "recommendations", "items", "model_runs", "users", "schema_migrations", "similar_items",
        "recommendation_rules", "recommendation_blocklist",
    } <= set(tables)  # fmt: skip
    assert set(ROWS) <= set(tables)
    reader = login(warehouse, user, "s3cret-pw")
    for table in tables:
        assert refused(reader, f"SELECT * FROM `{table}`") == ACCESS_DENIED, table
    assert refused(reader, "SELECT * FROM mysql.user") == ACCESS_DENIED
    reader.dispose()


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        ("INSERT INTO items (dataset, item_id) VALUES ('A', 'i2')", ACCESS_DENIED),
        ("UPDATE items SET title = 'changed'", ACCESS_DENIED),
        ("DELETE FROM recommendations", ACCESS_DENIED),
        ("INSERT INTO v_daily_kpis (dataset) VALUES ('B')", ACCESS_DENIED),
        ("UPDATE v_user_recommendations SET title = 'changed'", ACCESS_DENIED),
        ("DELETE FROM v_popular_items", ACCESS_DENIED),
        ("CREATE TABLE t_reader (a INT)", ACCESS_DENIED),
        ("CREATE VIEW v_reader AS SELECT 1 AS a", ACCESS_DENIED),
        ("DROP TABLE items", ACCESS_DENIED),
        ("DROP VIEW v_daily_kpis", ACCESS_DENIED),
        ("ALTER TABLE items ADD COLUMN z INT", ACCESS_DENIED),
        ("TRUNCATE TABLE daily_kpis", ACCESS_DENIED),
        ("SHOW CREATE VIEW v_daily_kpis", ACCESS_DENIED),
        ("CREATE TEMPORARY TABLE t_reader (a INT)", DB_ACCESS_DENIED),
        ("CREATE DATABASE recflow_reader_db", DB_ACCESS_DENIED),
    ],
)
def test_the_reader_cannot_write_or_change_the_schema(warehouse, new_account, statement, code):
    user = new_account()
    grant_bi_reader(warehouse, "s3cret-pw", user)
    reader = login(warehouse, user, "s3cret-pw")
    assert refused(reader, statement) == code
    reader.dispose()
    with warehouse.connect() as conn:
        assert conn.execute(sa.text("SELECT title FROM items")).scalars().all() == ["Film «é»"]
        assert conn.execute(sa.text("SELECT COUNT(*) FROM v_daily_kpis")).scalar_one() == 1


def test_show_grants_lists_usage_and_select_on_the_views_only(warehouse, new_account):
    user = new_account()
    views = grant_bi_reader(warehouse, "s3cret-pw", user)
    database = warehouse.url.database
    reader = login(warehouse, user, "s3cret-pw")
    with reader.connect() as conn:
        own = sorted(_GRANT.match(line).groups() for line in conn.execute(sa.text("SHOW GRANTS")).scalars())
    reader.dispose()
    assert own == expected_grants(database, views)
    assert server_grants(warehouse, user) == own


def test_information_schema_shows_the_reader_only_the_views(warehouse, new_account):
    user = new_account()
    views = grant_bi_reader(warehouse, "s3cret-pw", user)
    reader = login(warehouse, user, "s3cret-pw")
    with reader.connect() as conn:
        visible = conn.execute(
            sa.text(
                "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            )
        ).all()
        columns_of = conn.execute(
            sa.text(
                "SELECT DISTINCT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            )
        ).scalars()
        definitions = conn.execute(
            sa.text("SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()")
        ).scalars()
        databases = set(conn.execute(sa.text("SHOW DATABASES")).scalars())
        assert sorted(visible) == [(view, "VIEW") for view in views]
        assert sorted(columns_of) == views
        # Without SHOW VIEW the definitions, which name the base tables, stay hidden.
        assert [definition for definition in definitions if definition] == []
    reader.dispose()
    # information_schema always; performance_schema on MySQL 8; no other database of the server.
    assert warehouse.url.database in databases
    assert databases - {warehouse.url.database} <= {"information_schema", "performance_schema"}


# --- re-running, rotating, odd passwords -----------------------------------------------------


def test_regranting_is_idempotent_drops_stale_grants_and_rotates_the_password(warehouse, new_account):
    user = new_account()
    database = warehouse.url.database
    first = grant_bi_reader(warehouse, "first-pw", user)
    assert grant_bi_reader(warehouse, "first-pw", user) == first
    assert server_grants(warehouse, user) == expected_grants(database, first)
    # Grants someone added by hand, which the next run must take away.
    with warehouse.connect() as conn:
        conn.execute(sa.text("GRANT SELECT, INSERT ON items TO :u@'%'"), {"u": user})
        conn.execute(sa.text("GRANT INSERT ON v_daily_kpis TO :u@'%'"), {"u": user})
        conn.execute(sa.text("GRANT SELECT ON v_daily_kpis TO :u@'%' WITH GRANT OPTION"), {"u": user})
    with login(warehouse, user, "first-pw").connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM items")).scalar_one() == 1

    assert grant_bi_reader(warehouse, "second-pw", user) == first
    assert server_grants(warehouse, user) == expected_grants(database, first)
    with pytest.raises(sa.exc.OperationalError) as old:
        login(warehouse, user, "first-pw").connect()
    assert errno(old.value) == BAD_LOGIN
    reader = login(warehouse, user, "second-pw")
    assert refused(reader, "SELECT * FROM items") == ACCESS_DENIED
    assert refused(reader, "INSERT INTO v_daily_kpis (dataset) VALUES ('B')") == ACCESS_DENIED
    with reader.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM v_daily_kpis")).scalar_one() == 1
    reader.dispose()


@pytest.mark.parametrize(
    "password", ['it\'s a \\ "test"', "%s %(x)s '; DROP USER root; --", "`~!@#$^&*()_+-={}[]|:;<>,.?/ \\'"]
)
def test_passwords_with_quotes_backslashes_and_placeholders_work_as_typed(warehouse, new_account, password):
    user = new_account()
    grant_bi_reader(warehouse, password, user)
    with login(warehouse, user, password).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM v_user_recommendations")).scalar_one() == 1
    # Stored as typed: the escaped spelling is a different password.
    mangled = (
        password.replace("\\", "\\\\").replace("'", "''")
        if "\\" in password or "'" in password
        else password + "x"
    )
    with pytest.raises(sa.exc.OperationalError) as wrong:
        login(warehouse, user, mangled).connect()
    assert errno(wrong.value) == BAD_LOGIN
    with warehouse.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM mysql.user WHERE User = 'root'")).scalar_one() >= 1


def test_a_narrower_host_keeps_other_hosts_out(warehouse, new_account):
    user = new_account()
    views = grant_bi_reader(warehouse, "s3cret-pw", user, host="10.255.255.%")
    assert server_grants(warehouse, user, "10.255.255.%") == expected_grants(warehouse.url.database, views)
    with pytest.raises(sa.exc.OperationalError) as outside:
        login(warehouse, user, "s3cret-pw").connect()  # from 127.0.0.1
    assert errno(outside.value) in NO_SUCH_ACCOUNT


# --- refusals, and the password kept out of logs and errors ----------------------------------


def test_refuses_sqlite(sqlite_engine, sql_root):
    with pytest.raises(GrantError, match="SQLite"):
        grant_bi_reader(sqlite_engine, "s3cret-pw", sql_root=sql_root)


@pytest.mark.parametrize(
    ("password", "user", "host", "message"),
    [
        ("", "bi_reader_x", "%", "RECFLOW_BI_READER_PASSWORD"),
        ("pâss wörd", "bi_reader_x", "%", "printable ASCII"),
        ("line\nbreak", "bi_reader_x", "%", "printable ASCII"),
        ("pw", "bi reader", "%", "user name"),
        ("pw", "x" * 33, "%", "user name"),
        ("pw", "bi_reader_x", "%' OR '1", "host"),
    ],
)
def test_refuses_bad_arguments_before_touching_the_server(mariadb_engine, password, user, host, message):
    with pytest.raises(GrantError, match=message):
        grant_bi_reader(mariadb_engine, password, user, host)
    with mariadb_engine.connect() as conn:
        assert conn.execute(sa.text("SHOW TABLES")).all() == []  # not even migrated


def test_refuses_a_database_without_views(mariadb_engine, new_account):
    user = new_account()
    with pytest.raises(GrantError, match="no v_\\* views"):
        grant_bi_reader(mariadb_engine, "s3cret-pw", user, apply_migrations=False)
    with mariadb_engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT COUNT(*) FROM mysql.user WHERE User = :u"), {"u": user}).scalar()
            == 0
        )


def test_refuses_an_engine_that_would_log_the_password(warehouse, new_account):
    user = new_account()
    noisy = sa.create_engine(warehouse.url, echo=True, poolclass=sa.NullPool)
    with pytest.raises(GrantError, match="log the password"):
        grant_bi_reader(noisy, "s3cret-pw", user)
    with warehouse.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT COUNT(*) FROM mysql.user WHERE User = :u"), {"u": user}).scalar()
            == 0
        )


def test_a_refused_statement_reports_the_server_error_without_the_password(warehouse, new_account, caplog):
    caplog.set_level(logging.DEBUG)
    reader_name, other = new_account(), new_account()
    grant_bi_reader(warehouse, "s3cret-pw", reader_name)
    # The reader itself may not create accounts: the server refuses CREATE USER.
    as_reader = login(warehouse, reader_name, "s3cret-pw")
    with pytest.raises(GrantError) as refusal:
        grant_bi_reader(as_reader, "t0p'secret\\pw", other, apply_migrations=False)
    as_reader.dispose()
    assert "CREATE USER" in str(refusal.value) and "1227" in str(refusal.value)
    assert "t0p" not in str(refusal.value)
    # Nothing chained either: SQLAlchemy's own error text lists the bound parameters.
    assert refusal.value.__cause__ is None and refusal.value.__suppress_context__
    assert "s3cret-pw" not in caplog.text and "t0p" not in caplog.text


def test_main_reads_the_environment_and_prints_the_views_not_the_password(
    warehouse, new_account, monkeypatch, capsys, caplog
):
    caplog.set_level(logging.DEBUG)
    user = new_account()
    url = warehouse.url.render_as_string(hide_password=False)
    monkeypatch.setenv("RECFLOW_WAREHOUSE_URL", url)
    monkeypatch.delenv("RECFLOW_BI_READER_PASSWORD", raising=False)
    assert grants.main(["--user", user]) == 2
    assert "RECFLOW_BI_READER_PASSWORD" in capsys.readouterr().err
    with warehouse.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT COUNT(*) FROM mysql.user WHERE User = :u"), {"u": user}).scalar()
            == 0
        )

    monkeypatch.setenv("RECFLOW_BI_READER_PASSWORD", "env-pw-Zq9")
    monkeypatch.setenv("RECFLOW_BI_READER_HOST", "%")
    assert grants.main(["--user", user]) == 0
    out, err = capsys.readouterr()
    assert f"'{user}'@'%'" in out
    assert [line.strip() for line in out.splitlines()[1:]] == migration_views()
    assert "env-pw-Zq9" not in out + err + caplog.text
    with login(warehouse, user, "env-pw-Zq9").connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM v_daily_kpis")).scalar_one() == 1


def test_main_refuses_without_a_warehouse_url(monkeypatch, capsys):
    monkeypatch.delenv("RECFLOW_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("RECFLOW_BI_READER_PASSWORD", "pw")
    assert grants.main([]) == 2
    assert "RECFLOW_WAREHOUSE_URL" in capsys.readouterr().err


# --- the by-hand SQL file and the Tableau data source, against the server --------------------


def apply_grant_file(engine: sa.Engine, variables: dict[str, str]) -> list[int]:
    """sql/grants/bi_reader.sql on one session, the way the mysql client sources it: after
    SET @name = ... for each variable, statement by statement, going on after errors. Returns
    the error numbers met."""
    errors = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name, value in variables.items():
            conn.execute(sa.text(f"SET @{name} = :value"), {"value": value})
        for statement in split_statements(GRANT_FILE.read_text(encoding="utf-8"), "mysql"):
            try:
                conn.exec_driver_sql(statement.replace("%", "%%"))
            except sa.exc.DBAPIError as error:
                errors.append(errno(error))
    return errors


def test_the_grant_file_names_every_view_of_the_migrations():
    granted = re.findall(r"GRANT SELECT ON (\w+) TO", GRANT_FILE.read_text(encoding="utf-8"))
    assert sorted(granted) == migration_views()


def test_the_grant_file_grants_what_grant_bi_reader_grants(warehouse, new_account):
    by_module, by_file = new_account(), new_account()
    password = "it's a \\ test"
    views = grant_bi_reader(warehouse, "s3cret-pw", by_module)
    assert apply_grant_file(warehouse, {"bi_reader_user": by_file, "bi_reader_password": password}) == []
    assert server_grants(warehouse, by_file) == server_grants(warehouse, by_module)
    assert server_grants(warehouse, by_file) == expected_grants(warehouse.url.database, views)
    with login(warehouse, by_file, password).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM v_popular_items")).scalar_one() == 1
    # Sourced again with a new password: same grants, the old password no longer works.
    assert apply_grant_file(warehouse, {"bi_reader_user": by_file, "bi_reader_password": "new-pw"}) == []
    assert server_grants(warehouse, by_file) == expected_grants(warehouse.url.database, views)
    with pytest.raises(sa.exc.OperationalError):
        login(warehouse, by_file, password).connect()


def test_the_grant_file_without_a_password_changes_nothing(warehouse, new_account):
    user = new_account()
    errors = apply_grant_file(warehouse, {"bi_reader_user": user})
    assert errors and set(errors) <= {1064, 1243}  # PREPARE FROM NULL; EXECUTE of nothing
    with warehouse.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT COUNT(*) FROM mysql.user WHERE User = :u"), {"u": user}).scalar()
            == 0
        )


TABLEAU_TYPES = {
    "varchar": "string", "text": "string", "char": "string",
    "tinyint": "integer", "smallint": "integer", "int": "integer", "bigint": "integer",
    "double": "real", "decimal": "real", "float": "real",
    "date": "date", "datetime": "datetime", "timestamp": "datetime",
}  # fmt: skip


def test_the_tableau_datasource_matches_the_server_views(warehouse):
    """bi/tableau/recflow.tds declares each view's columns as the server reports them."""
    declared: dict[str, dict[str, str]] = {}
    for record in ET.parse(TDS).getroot().iter():
        if record.tag.rsplit("...", 1)[-1] != "metadata-record" or record.get("class") != "column":
            continue
        fields = {child.tag.rsplit("...", 1)[-1]: child.text for child in record}
        declared.setdefault(fields["parent-name"].strip("[]"), {})[fields["remote-name"]] = fields[
            "local-type"
        ]
    with warehouse.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE FROM information_schema.COLUMNS c"
                " JOIN information_schema.VIEWS v ON v.TABLE_SCHEMA = c.TABLE_SCHEMA AND v.TABLE_NAME = c.TABLE_NAME"
                " WHERE c.TABLE_SCHEMA = DATABASE()"
            )
        ).all()
    server: dict[str, dict[str, str]] = {}
    for view, column, data_type in rows:
        server.setdefault(view, {})[column] = TABLEAU_TYPES[data_type]
    assert set(declared) <= set(server)
    assert {view: server[view] for view in declared} == declared
