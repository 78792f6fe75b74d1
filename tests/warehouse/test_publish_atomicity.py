"""A publish is atomic as a whole, for real readers on a real server: every table of the served set
(recommendations, similar items, the champion, the snapshots) shows one run or the next, never a
mix, whatever a reader does and wherever the publishing process dies.

The readers are BI accounts made as `make bi-reader` makes them, reading the views Tableau reads.
A killed publisher is a forked process that SIGKILLs itself when the publish logs the step
(recflow.warehouse.publish.STEPS): no Python runs after that, as when a worker is OOM-killed.
"""

from __future__ import annotations

import datetime
import logging
import multiprocessing
import os
import signal
import threading
import time

import pytest
import sqlalchemy as sa

from recflow.warehouse.checks import check_served_set
from recflow.warehouse.engine import LOCK_TABLE, make_engine
from recflow.warehouse.migrate import migrate
from recflow.warehouse.publish import STEPS, publish
from recflow.warehouse.run_log import AttemptKey

DAY = datetime.date(2024, 5, 1)
SERVED_SQL = {
    "recommendations": "SELECT DISTINCT model_version AS v FROM v_user_recommendations WHERE dataset = 'A'",
    "similar_items": "SELECT DISTINCT model_version AS v FROM v_similar_items WHERE dataset = 'A'",
    "champion": "SELECT DISTINCT model_version AS v FROM v_model_performance WHERE dataset = 'A' AND is_champion = 1",
    "user_profiles": "SELECT DISTINCT CAST(run_date AS CHAR) AS v FROM v_user_profiles WHERE dataset = 'A'",
    "popular_items": "SELECT DISTINCT CAST(run_date AS CHAR) AS v FROM v_popular_items WHERE dataset = 'A'",
}
# The same in one statement, as a dashboard query joining sheets sees it.
ONE_STATEMENT = " UNION ALL ".join(
    f"SELECT '{name}' AS what, v FROM ({sql}) AS t{i}" for i, (name, sql) in enumerate(SERVED_SQL.items())
)


def run(make_bundle, day: int):
    """Dataset A's run of day ``day`` (1, 2, ...): model als-<day>, a list size of its own."""
    return make_bundle(
        "A",
        run_date=DAY + datetime.timedelta(days=day - 1),
        n_users=300 + 100 * day,
        seed=day,
        model_version=f"als-{day}",
    )


def state_of(bundle) -> dict[str, list[str]]:
    """What a reader is served once ``bundle`` is published: its model everywhere, its snapshots."""
    version, day = [bundle.model_version], [bundle.run_date.isoformat()]
    return {"recommendations": version, "similar_items": version, "champion": version,
            "user_profiles": day, "popular_items": day}  # fmt: skip


def served(conn: sa.Connection) -> dict[str, list[str]]:
    """What ``conn``'s reader is served, read in its current transaction (or statement by statement)."""
    return {name: sorted(conn.exec_driver_sql(sql).scalars()) for name, sql in SERVED_SQL.items()}


def served_in_one_snapshot(reader: sa.Engine) -> dict[str, list[str]]:
    with reader.connect() as conn:
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        seen = served(conn)
        conn.exec_driver_sql("COMMIT")
    return seen


def served_in_one_statement(conn: sa.Connection) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {name: [] for name in SERVED_SQL}
    for what, value in conn.exec_driver_sql(ONE_STATEMENT):
        seen[what].append(value)
    return {name: sorted(values) for name, values in seen.items()}


@pytest.fixture
def warehouse(mariadb_engine, sql_root, make_bundle) -> sa.Engine:
    """A warehouse serving dataset A's run of day 1, with another dataset beside it."""
    migrate(mariadb_engine, sql_root)
    publish(mariadb_engine, make_bundle("B", n_users=50, seed=9), sql_root)
    publish(mariadb_engine, run(make_bundle, 1), sql_root)
    return mariadb_engine


@pytest.mark.warehouse
def test_a_reader_polling_through_publishes_only_ever_sees_one_whole_set(
    warehouse, bi_reader, make_bundle, sql_root
):
    reader = bi_reader(warehouse)
    seen: list[tuple[str, dict]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def poll() -> None:
        with reader.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while not stop.is_set():
                try:
                    seen.append(("statement", served_in_one_statement(conn)))
                    seen.append(("snapshot", served_in_one_snapshot(reader)))
                except sa.exc.DBAPIError as error:
                    errors.append(error)

    runs = [run(make_bundle, day) for day in range(2, 7)]
    thread = threading.Thread(target=poll)
    thread.start()
    try:
        for bundle in runs:
            publish(warehouse, bundle, sql_root)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    states = [state_of(bundle) for bundle in [run(make_bundle, 1), *runs]]
    assert [(how, state) for how, state in seen if state not in states] == []  # never a mix
    assert {how for how, _ in seen} == {"statement", "snapshot"} and len(seen) > 20
    assert len({repr(state) for _, state in seen}) > 2  # the reader saw the sets change
    assert check_served_set(warehouse, "A")["problems"] == []


@pytest.mark.warehouse
def test_a_bi_transaction_open_across_the_publish_neither_delays_nor_splits_it(
    warehouse, bi_reader, make_bundle, sql_root
):
    reader = bi_reader(warehouse)
    # How long a publish takes with no reader: day 2 over day 1.
    started = time.monotonic()
    publish(warehouse, run(make_bundle, 2), sql_root)
    alone = time.monotonic() - started

    with reader.connect() as bi:
        bi.exec_driver_sql("START TRANSACTION")  # REPEATABLE READ: MariaDB's and MySQL's default
        # The snapshot is taken and the views' and tables' metadata locks are held from here on.
        assert served(bi) == state_of(run(make_bundle, 2))
        started = time.monotonic()
        publish(warehouse, run(make_bundle, 3), sql_root)
        with_reader = time.monotonic() - started
        assert served(bi) == state_of(run(make_bundle, 2))  # the open transaction keeps its whole set
        bi.exec_driver_sql("COMMIT")
        assert served(bi) == state_of(run(make_bundle, 3))
    assert with_reader < alone + 2.0, (with_reader, alone)


# Every lock a read-only account can take. GET_LOCK needs no privilege; the others lock the
# rows the views read (MariaDB allows a locking read with SELECT alone).
BLOCKERS = {
    "get_lock": [
        "SELECT GET_LOCK('recflow_publish', 0)",
        "SELECT GET_LOCK('recflow_migrate', 0)",
        "SELECT GET_LOCK('publish', 0)",
        "SELECT GET_LOCK('migrate', 0)",
    ],
    "for_update": ["START TRANSACTION", *(f"{sql} FOR UPDATE" for sql in SERVED_SQL.values())],
    "share_mode": ["START TRANSACTION", *(f"{sql} LOCK IN SHARE MODE" for sql in SERVED_SQL.values())],
    "serializable": [
        "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "START TRANSACTION",
        *SERVED_SQL.values(),
    ],
}


@pytest.mark.warehouse
@pytest.mark.parametrize("blocker", list(BLOCKERS))
def test_locks_a_bi_reader_can_take_hold_a_publish_up_for_seconds_at_most(
    warehouse, bi_reader, make_bundle, sql_root, blocker
):
    reader = bi_reader(warehouse)
    bi = reader.connect()
    for statement in BLOCKERS[blocker]:
        bi.exec_driver_sql(statement)
    grace = 1.0
    started = time.monotonic()
    published = publish(warehouse, run(make_bundle, 2), sql_root, reader_grace_s=grace)
    took = time.monotonic() - started
    assert published.status == "published"
    assert took < grace + 5.0, took
    assert check_served_set(warehouse, "A")["problems"] == []
    with warehouse.connect() as conn:
        assert served(conn) == state_of(run(make_bundle, 2))
    if blocker == "get_lock":  # nothing of RecFlow's waits on a named lock: the reader stays
        assert published.ended_sessions == []
        assert bi.exec_driver_sql("SELECT 1").scalar_one() == 1
    else:  # the reader, which had changed nothing, was ended after the grace
        (ended,) = published.ended_sessions
        assert ended["user"] == reader.url.username and ended["blocked_s"] >= grace
        with pytest.raises(sa.exc.OperationalError):
            bi.exec_driver_sql("SELECT 1")
    bi.invalidate()
    bi.close()


@pytest.mark.warehouse
def test_a_bi_reader_cannot_take_the_writers_lock(warehouse, bi_reader):
    reader = bi_reader(warehouse)
    with reader.connect() as bi, pytest.raises(sa.exc.DBAPIError) as refused:
        bi.exec_driver_sql(f"SELECT name FROM {LOCK_TABLE} FOR UPDATE")
    assert refused.value.orig.args[0] == 1142  # SELECT command denied to user


def _publish_and_die_at(url: str, bundle, sql_root, step: str, try_number: int) -> None:
    """Child process: publish ``bundle`` and SIGKILL itself when the publish logs ``step``."""

    class KillAt(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "publish_step", None) == step:
                os.kill(os.getpid(), signal.SIGKILL)

    logger = logging.getLogger("recflow.warehouse.publish")
    logger.setLevel(logging.INFO)
    logger.addHandler(KillAt())
    engine = make_engine(url)
    attempt = AttemptKey("recommendations_daily", bundle.dag_run_id, "publish_recommendations", try_number)
    publish(engine, bundle, sql_root, attempt)
    os._exit(0)  # the step never came: the test fails on the exit code


KILL_STEPS = [step for step in STEPS if step not in ("lock", "repair", "mark")]
# From "facts" on, the attempt's 'publishing' mark is committed (it is written after "mark").
MARKED = set(KILL_STEPS) - {"committed"}


@pytest.mark.parametrize(
    "engine_fixture", [pytest.param("mariadb_engine", marks=pytest.mark.warehouse), "sqlite_engine"]
)
@pytest.mark.parametrize("step", KILL_STEPS)
def test_a_publish_killed_at_any_step_leaves_one_whole_set_and_the_next_attempt_repairs_it(
    request, engine_fixture, make_bundle, sql_root, step
):
    engine = request.getfixturevalue(engine_fixture)
    publish(engine, run(make_bundle, 1), sql_root)
    bundle = run(make_bundle, 2)
    url = engine.url.render_as_string(hide_password=False)
    child = multiprocessing.get_context("fork").Process(
        target=_publish_and_die_at, args=(url, bundle, sql_root, step, 1)
    )
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL

    # Readers see the old set whole (or, killed after the commit, the new one), at once.
    survivor = make_engine(url)
    expected = state_of(bundle if step == "committed" else run(make_bundle, 1))
    with survivor.connect() as conn:
        assert served(conn) == expected
        marks = conn.execute(sa.text("SELECT try_number, state FROM pipeline_run_log")).all()
    assert check_served_set(survivor, "A")["problems"] == []
    assert marks == ([(1, "publishing")] if step in MARKED else [])

    # The next attempt converges, and logs what it found.
    retry = AttemptKey("recommendations_daily", bundle.dag_run_id, "publish_recommendations", 2)
    published = publish(survivor, bundle, sql_root, retry)
    assert published.status == "published"
    with survivor.connect() as conn:
        assert served(conn) == state_of(bundle)
        statuses = sorted(conn.execute(sa.text("SELECT run_id, status FROM model_runs")).all())
        log_rows = conn.execute(
            sa.text("SELECT try_number, state, error_type, error FROM pipeline_run_log")
        ).all()
    assert check_served_set(survivor, "A")["problems"] == []
    if step in MARKED:
        ((try_number, state, error_type, error),) = log_rows
        assert (try_number, state, error_type) == (1, "interrupted", "PublishInterrupted")
        assert "died before it committed" in error and "readers kept model als-1" in error
        assert [mark["try_number"] for mark in published.repaired] == [1]
    else:
        assert log_rows == [] and published.repaired == []
    assert statuses == [("A/2024-05-01", "published"), ("A/2024-05-02", "published")]
    tables = set(sa.inspect(survivor).get_table_names())
    assert not tables & {"recommendations_stage", "recommendations_old"}
    survivor.dispose()
