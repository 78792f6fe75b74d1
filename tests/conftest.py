"""Suite-wide fixtures: one local SparkSession for every Spark test, and run settings whose lake
lives in the test's own temporary folder."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

# Read by recflow.spark when it is first imported (its DEFAULTS are module constants), so set
# here, before any test module imports it: two cores need two shuffle partitions, not eight.
os.environ.setdefault("RECFLOW_SHUFFLE_PARTITIONS", "2")
# Spark's Python workers (the hybrid scorer, the similarity blocks) need this environment's
# numpy, pandas and scipy, not whatever `python3` is first on PATH; `make test` sets it too.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
START_MARIADB = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"


def pytest_collection_modifyitems(config, items):
    """Spread the end-to-end tests (minutes each) evenly through the run's order. `make test`
    runs on two workers with pytest-xdist's worksteal, which first hands each worker one
    contiguous share of the tests: spread out, each share begins with a long test, the short
    ones fill in around them, and neither worker is left waiting on two long ones at the end."""
    long = [item for item in items if item.get_closest_marker("e2e")]
    if not long:
        return
    rest = [item for item in items if not item.get_closest_marker("e2e")]
    share = len(items) / len(long)
    for n, item in enumerate(long):
        rest.insert(round(n * share), item)
    items[:] = rest


@pytest.fixture(scope="session", autouse=True)
def input_roots(tmp_path_factory) -> Iterator[str]:
    """The folders runs may read (RECFLOW_INPUT_ROOTS, recflow.config): pytest's temporary
    folder, where tests write their inputs, and the shared MovieLens sets. Set in the
    environment, so the Airflow processes of the end-to-end tests inherit it."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    roots = os.pathsep.join([str(tmp_path_factory.getbasetemp()), str(shared)])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RECFLOW_INPUT_ROOTS", roots)
        yield roots


@pytest.fixture(scope="session")
def spark(tmp_path_factory) -> Iterator:
    """The one SparkSession of the test run: local[2], two shuffle partitions, UI off.

    Starting a JVM per test would cost minutes; every Spark test shares this one."""
    from recflow.spark import get_spark

    checkpoint_dir = str(tmp_path_factory.mktemp("spark-checkpoints"))
    with pytest.MonkeyPatch.context() as env:
        # get_spark has no way to turn the UI off, so pass it the way spark-submit would, read
        # only when the JVM starts. Off because several test runs on one machine would
        # otherwise race for port 4040 and up. Unset again so no later subprocess inherits it.
        if "PYSPARK_SUBMIT_ARGS" not in os.environ:
            env.setenv("PYSPARK_SUBMIT_ARGS", "--conf spark.ui.enabled=false pyspark-shell")
        session = get_spark("recflow-tests", checkpoint_dir=checkpoint_dir)
    # In case recflow.spark was imported (with its default of 8) before this conftest ran.
    session.conf.set("spark.sql.shuffle.partitions", os.environ["RECFLOW_SHUFFLE_PARTITIONS"])
    yield session
    session.stop()
    # py4j logs its shutdown from __del__ after pytest has closed the streams ("Logging error").
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """`free_port()` -> a TCP port on 127.0.0.1 that nothing listens on now."""
    return _free_port


@pytest.fixture(scope="session")
def spark_connect_server(tmp_path_factory) -> Iterator[dict[str, str]]:
    """One warm Spark Connect server (recflow.spark_connect) for every test that runs the DAG on
    its default backend, as a deployment has one: -> the environment that points the DAG's Spark
    tasks at it, for the Airflow processes of a test. Its own port and folder, so a developer's
    server (make spark-connect) is left alone."""
    from recflow.spark_connect import Server, start, stop

    home = tmp_path_factory.mktemp("spark-connect")
    server = Server(home=home, port=_free_port())
    with pytest.MonkeyPatch.context() as env:
        # The heap the DAG tests' small samples need, beside the suite's own Spark; the server's
        # checkpoint folder in the test's temporary folder.
        env.setenv("RECFLOW_SPARK_DRIVER_MEMORY", "2g")
        env.setenv("RECFLOW_DATA_DIR", str(home / "data"))
        start(server)
    yield {
        "RECFLOW_SPARK_BACKEND": "connect",
        "RECFLOW_SPARK_CONNECT_HOME": str(home),
        "RECFLOW_SPARK_CONNECT_PORT": str(server.port),
        "AIRFLOW_CONN_SPARK_CONNECT_DEFAULT": json.dumps(
            {"conn_type": "spark_connect", "host": "127.0.0.1", "port": server.port}
        ),
    }
    stop(server)


@pytest.fixture
def settings_factory(tmp_path) -> Callable[..., Any]:
    """`make(**params)` -> Settings.from_params(params) with its data and lake under tmp_path."""
    from recflow.config import Settings

    def make(params: dict[str, Any] | None = None, **more: Any) -> Settings:
        settings = Settings.from_params({**(params or {}), **more})
        # lake_uri too: a RECFLOW_LAKE_URI in the environment must not send test data elsewhere.
        return dataclasses.replace(settings, data_dir=tmp_path, lake_uri=None)

    return make


# --- the real MariaDB (warehouse and end-to-end tests) -------------------------------------


@pytest.fixture(scope="session")
def mysql_server_url() -> sa.URL:
    """The test server's URL, probed once per session so an absent server costs one timeout."""
    url = sa.make_url(os.environ.get("RECFLOW_TEST_MYSQL_URL") or DEFAULT_MYSQL_URL)
    probe = sa.create_engine(url, connect_args={"connect_timeout": 3}, poolclass=sa.NullPool)
    try:
        with probe.connect():
            pass
    except sa.exc.DBAPIError as error:
        message = (
            f"MariaDB/MySQL unreachable at {url.render_as_string(hide_password=True)} ({error.orig}); "
            f"start it with: {START_MARIADB}"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        probe.dispose()
    return url


@pytest.fixture
def mariadb_engine(mysql_server_url: sa.URL) -> Iterator[sa.Engine]:
    """An engine on a fresh database recflow_t_<random>, dropped afterwards, so tests never
    clash with each other or with a developer's own data."""
    engine, drop = _fresh_database(mysql_server_url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop()


@pytest.fixture
def fresh_mysql_database(mysql_server_url: sa.URL) -> Iterator[Callable[..., sa.Engine]]:
    """Factory for extra throwaway databases (for instance with other connect_args)."""
    drops = []

    def create(**engine_kwargs) -> sa.Engine:
        engine, drop = _fresh_database(mysql_server_url, **engine_kwargs)
        drops.append((engine, drop))
        return engine

    yield create
    for engine, drop in drops:
        engine.dispose()
        drop()


def _fresh_database(server_url: sa.URL, **engine_kwargs) -> tuple[sa.Engine, Callable[[], None]]:
    name = f"recflow_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    url = server_url.set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url, **engine_kwargs) if engine_kwargs else _make_engine(url)

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()

    return engine, drop


def _make_engine(url: str) -> sa.Engine:
    from recflow.warehouse.engine import make_engine

    return make_engine(url)
