"""Airflow's real services for end-to-end tests: a throwaway PostgreSQL metadata database, the
api-server, scheduler and dag-processor as subprocesses, and a small client for the REST API v2.

    with fresh_postgres_database() as db_url, AirflowServices(home, dags, plugins, db_url) as af:
        client = af.client()
        client.wait_for_dag("my_dag")
        client.unpause("my_dag")
        run_id = client.trigger("my_dag", {"x": 1})
        assert client.wait_for_run("my_dag", run_id) == "success"
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import pytest
import requests
import sqlalchemy as sa

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
VENV_BIN = Path(sys.executable).parent
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
# Task-instance states that explain why a run failed.
FAILED_TI_STATES = frozenset({"failed", "upstream_failed", "up_for_retry"})
# In the environment of every process started for one AirflowServices, and of what those start in
# turn, so teardown also finds the ones orphaned on the way.
MARKER_ENV = "RECFLOW_E2E_AIRFLOW_SERVICES"

T = TypeVar("T")


# --- the metadata database ---------------------------------------------------------------


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty `recflow_af_<random>` database, yield Airflow's URL for it, drop it after."""
    server_url = sa.make_url(os.environ.get("RECFLOW_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    admin = sa.create_engine(
        server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool, connect_args={"connect_timeout": 3}
    )
    name = f"recflow_af_{uuid.uuid4().hex[:12]}"
    try:
        conn = admin.connect()
    except sa.exc.OperationalError as error:
        _unavailable(
            f"PostgreSQL unreachable at {server_url.render_as_string(hide_password=True)} ({error.orig}); "
            f"start it with: {START_POSTGRES}"
        )
    with conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.set(drivername="postgresql+psycopg2", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


# --- the services --------------------------------------------------------------------------


class AirflowServices:
    """`airflow db migrate`, then api-server, scheduler and dag-processor (and the triggerer if
    asked) with the LocalExecutor, each in its own process group and logging to home/logs/<name>.log.

    Everything Airflow writes (airflow.cfg, logs, the passwords file) goes under `home`, which is
    also the services' working directory (Spark's derby.log and spark-warehouse land there).
    `extra_env` is applied last, so it can override any setting here."""

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        plugins_folder: Path,
        sql_alchemy_conn: str,
        extra_env: dict[str, str] | None = None,
        *,
        triggerer: bool = False,
        scheduled_runs: bool = True,
        parallelism: int = 2,
        username: str = "admin",
        password: str = "admin",
        startup_timeout: float = 180,
    ) -> None:
        self.home = Path(home).resolve()
        self.dags_folder = Path(dags_folder).resolve()
        self.plugins_folder = Path(plugins_folder).resolve()
        self.sql_alchemy_conn = sql_alchemy_conn
        self.extra_env = dict(extra_env or {})
        self.triggerer = triggerer
        self.scheduled_runs = scheduled_runs
        self.parallelism = parallelism
        self.username = username
        self.password = password
        self.startup_timeout = startup_timeout
        self.logs_dir = self.home / "logs"
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.marker = uuid.uuid4().hex
        self.secret = secrets.token_hex(32)  # 64 bytes: shorter HMAC keys make PyJWT warn
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        # Inherited Airflow config would leak a developer's setup into the test; connections and
        # variables (AIRFLOW_CONN_*, AIRFLOW_VAR_*) are kept.
        inherited = {
            k: v for k, v in os.environ.items() if k != "AIRFLOW_HOME" and not k.startswith("AIRFLOW__")
        }
        return {
            **inherited,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            MARKER_ENV: self.marker,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # Two cores: more concurrent task runners only thrash.
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.parallelism),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self._passwords_file),
            # Task runners started by the LocalExecutor talk to the api-server's execution API, not
            # the database; its default URL assumes port 8080.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            # The scheduler signs the task runners' tokens and the api-server checks them: one
            # secret for all, not one generated per process.
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secret,
            "AIRFLOW__API__SECRET_KEY": self.secret,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            # New DAG files are found within seconds rather than the default five minutes; known
            # ones are re-parsed every 15 s (more often costs a core on a two-core machine).
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "15",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            # scheduled_runs=False: unpausing a scheduled DAG (backfills need it unpaused) starts no
            # run for its latest interval. Manual and backfill runs still run, but Asset-triggered
            # ones are not created either.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.scheduled_runs),
            # Nothing written next to the DAG and plugin files (the repository's, usually).
            "PYTHONDONTWRITEBYTECODE": "1",
            **self.extra_env,
        }

    @property
    def _passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def __enter__(self) -> AirflowServices:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        # The auth manager only generates passwords for users missing from this file.
        self._passwords_file.write_text(json.dumps({self.username: self.password}) + "\n")
        try:
            self._migrate()
            self._start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port))
            # Task logs are files under home/logs that the api-server reads itself; the log servers
            # would only bind fixed ports (8793, 8794) that parallel runs would fight over.
            self._start("scheduler", "scheduler", "--skip-serve-logs")
            self._start("dag-processor", "dag-processor")
            if self.triggerer:
                self._start("triggerer", "triggerer", "--skip-serve-logs")
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self) -> AirflowClient:
        return AirflowClient(self.base_url, self.username, self.password)

    def _migrate(self) -> None:
        log = self.logs_dir / "db-migrate.log"
        with log.open("w") as out:
            done = subprocess.run(
                [str(VENV_BIN / "airflow"), "db", "migrate"],
                env=self.env, cwd=self.home, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                timeout=600,
            )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"airflow db migrate exited {done.returncode}:\n{_tail(log)}")

    def _start(self, name: str, *args: str) -> None:
        with (self.logs_dir / f"{name}.log").open("w") as out:
            self.processes[name] = subprocess.Popen(
                [str(VENV_BIN / "airflow"), *args],
                env=self.env, cwd=self.home, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so teardown can signal all of it
            )  # fmt: skip

    def health(self) -> dict[str, Any] | None:
        try:
            return requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
        except (requests.RequestException, ValueError):
            return None

    def _is_healthy(self, health: dict[str, Any] | None) -> bool:
        wanted = ["metadatabase", "scheduler", "dag_processor"] + (["triggerer"] if self.triggerer else [])
        return bool(health) and all((health.get(part) or {}).get("status") == "healthy" for part in wanted)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        health = None
        while time.monotonic() < deadline:
            if dead := {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}:
                raise RuntimeError(f"Airflow services exited early {dead}:\n{self.log_tails()}")
            health = self.health()
            if self._is_healthy(health):
                return
            time.sleep(1)
        raise TimeoutError(
            f"Airflow not healthy after {self.startup_timeout:.0f}s (last health: {health}):\n{self.log_tails()}"
        )

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"----- {log.name} -----\n{_tail(log, lines)}" for log in sorted(self.logs_dir.glob("*.log"))
        )

    def stop(self, grace: float = 10) -> None:
        """End every process of the services and of what they started, and check that nothing
        is left: task runners first, then each service (SIGTERM, then SIGKILL to its process
        group and descendants after `grace` seconds), the api-server last."""
        leaders = {process.pid for process in self.processes.values()}
        # Task runners put themselves in process groups of their own, and a task process only
        # calls its operator's on_kill() on SIGTERM and carries on; the LocalExecutor, and so
        # the scheduler, would wait for it.
        runners = {p for p in self._family(list(self.processes)) if p.pgid not in leaders}
        _signal_groups(runners, signal.SIGKILL)
        seen = set(runners)
        first = [n for n in self.processes if n != "api-server"]
        # With the scheduler gone the api-server has nothing left to finish, yet its interpreter
        # takes seconds to exit after uvicorn has stopped.
        for names, later, timeout in ((first, ["api-server"], grace), (["api-server"], [], min(grace, 3))):
            family = self._phase(names, later)  # before the leaders exit and orphan their children
            # SIGTERM to the leader only: the scheduler stops its LocalExecutor workers itself,
            # while workers signalled directly run the scheduler's handler and hang its exit.
            for name in names:
                if self.processes[name].poll() is None:
                    self.processes[name].terminate()
            self._wait(names, timeout)
            family |= self._phase(names, later)
            _signal_groups(family, signal.SIGKILL)
            self._wait(names, timeout)
            seen |= family
        if not _wait_until(lambda: not _alive(seen | self._family([])), timeout=10):
            leftovers = sorted(p.pid for p in _alive(seen | self._family([])))
            raise RuntimeError(f"Airflow processes still running after teardown: {leftovers}")

    def _wait(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            if process := self.processes.get(name):
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass

    def _phase(self, names: list[str], later: list[str]) -> set[_Proc]:
        return self._family(names) - self._family(later, orphans=False)

    def _family(self, names: list[str], orphans: bool = True) -> set[_Proc]:
        """The named services and all their live descendants, plus (with `orphans`) any process
        still carrying this instance's marker in its environment (its parent died first).
        Processes that set their title (api-server, executor workers) overwrite their environ,
        so the marker alone would miss them."""
        table = _process_table()
        children: dict[int, list[int]] = {}
        for proc in table.values():
            children.setdefault(proc.ppid, []).append(proc.pid)
        todo = [self.processes[n].pid for n in names if n in self.processes]
        todo += _marked_pids(self.marker) if orphans else []
        found: set[_Proc] = set()
        while todo:
            pid = todo.pop()
            if (proc := table.get(pid)) and not proc.zombie and proc not in found:
                found.add(proc)
                todo.extend(children.get(pid, []))
        return found


@dataclass(frozen=True)
class _Proc:
    pid: int
    start: int  # clock ticks after boot: with the pid, one process even if the pid is reused
    ppid: int = field(compare=False)
    pgid: int = field(compare=False)
    zombie: bool = field(compare=False)


def _process_table() -> dict[int, _Proc]:
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ... starttime": comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        table[pid] = _Proc(pid, int(fields[19]), int(fields[1]), int(fields[2]), fields[0] == "Z")
    return table


def _alive(procs: set[_Proc]) -> set[_Proc]:
    table = _process_table()
    return {p for p in procs if (now := table.get(p.pid)) == p and not now.zombie}


def _signal_groups(procs: set[_Proc], sig: signal.Signals) -> None:
    """`sig` to each live process of `procs` and to its process group (never this process's)."""
    own_group = os.getpgid(0)
    live = _alive(procs)
    for pgid in {p.pgid for p in live} - {own_group}:
        _ignore_gone(os.killpg, pgid, sig)
    for proc in live:
        if proc.pid != os.getpid():
            _ignore_gone(os.kill, proc.pid, sig)


def _ignore_gone(send: Callable[[int, signal.Signals], None], target: int, sig: signal.Signals) -> None:
    try:
        send(target, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _marked_pids(marker: str) -> list[int]:
    """Processes whose environment holds MARKER_ENV=marker."""
    needle = f"{MARKER_ENV}={marker}".encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return [pid for pid in pids if pid != os.getpid()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"<unreadable: {error}>"


def _wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- the REST API v2 client ----------------------------------------------------------------


class AirflowClient:
    """The few calls of Airflow's public REST API v2 the end-to-end tests need."""

    def __init__(self, base_url: str, username: str, password: str, poll_interval: float = 1) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.poll_interval = poll_interval
        self.session = requests.Session()
        self._token: str | None = None

    def token(self) -> str:
        """A JWT from the SimpleAuthManager's `POST /auth/token`."""
        response = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        _check(response)
        return response.json()["access_token"]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """`method` /api/v2`path`; the decoded JSON body, or an HTTPError showing the body."""
        if self._token is None:
            self._token = self.token()
        kwargs.setdefault("timeout", 30)
        url = f"{self.base_url}/api/v2{path}"
        response = self.session.request(method, url, headers=self._auth(), **kwargs)
        if response.status_code == 401:  # expired: one fresh token
            self._token = self.token()
            response = self.session.request(method, url, headers=self._auth(), **kwargs)
        _check(response)
        return response.json() if response.content else None

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    # DAGs

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/importErrors")["import_errors"]

    def wait_for_dag(self, dag_id: str, timeout: float = 120, fail_on_import_error: bool = True) -> dict:
        """The DAG's details once the dag-processor has serialised it. An import error in the DAGs
        folder fails at once (with its stack trace) unless fail_on_import_error is False."""

        def serialised() -> dict | None:
            try:
                return self.request("GET", f"/dags/{_seg(dag_id)}/details")
            except requests.HTTPError as error:
                if error.response is not None and error.response.status_code == 404:
                    if fail_on_import_error and (errors := self.import_errors()):
                        raise AssertionError(
                            f"DAG {dag_id}: import errors:\n{_format_import_errors(errors)}"
                        ) from None
                    return None
                raise

        return self._poll(
            serialised, timeout,
            lambda: f"DAG {dag_id} not parsed; import errors:\n{_format_import_errors(self.import_errors())}",
        )  # fmt: skip

    def unpause(self, dag_id: str) -> dict:
        return self.request("PATCH", f"/dags/{_seg(dag_id)}", json={"is_paused": False})

    # DAG runs

    def trigger(
        self, dag_id: str, conf: dict | None = None, logical_date: str | datetime | None = None
    ) -> str:
        """A manual run; returns its run_id. Airflow 3 requires `logical_date` in the body, and a
        null one gives a run without a logical date (only run_after)."""
        body = {"conf": conf or {}, "logical_date": _iso(logical_date) if logical_date else None}
        return self.request("POST", f"/dags/{_seg(dag_id)}/dagRuns", json=body)["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}")

    def dag_runs(self, dag_id: str, **params: Any) -> list[dict]:
        """Runs of the DAG, oldest first; params are the endpoint's filters (e.g. logical_date_gte)."""
        params = {"limit": 100, "order_by": "id", **params}
        return self.request("GET", f"/dags/{_seg(dag_id)}/dagRuns", params=params)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances"
        return self.request("GET", path, params={"limit": 100})["task_instances"]

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 300, expect: str | None = "success"
    ) -> str:
        """The run's terminal state. Not `expect` (None: any state will do) is an AssertionError
        naming the failed task instances and their try numbers."""

        def terminal() -> str | None:
            state = self.dag_run(dag_id, run_id)["state"]
            return state if state in TERMINAL_RUN_STATES else None

        state = self._poll(terminal, timeout, lambda: self._describe_run(dag_id, run_id))
        if expect is not None and state != expect:
            raise AssertionError(
                f"run {dag_id}/{run_id} ended {state}, expected {expect}; "
                f"failed tasks: {self._ti_summary(dag_id, run_id)}"
            )
        return state

    def _describe_run(self, dag_id: str, run_id: str) -> str:
        paused = " (the DAG is paused)" if self.request("GET", f"/dags/{_seg(dag_id)}")["is_paused"] else ""
        return (
            f"run {dag_id}/{run_id} still {self.dag_run(dag_id, run_id)['state']}{paused}; "
            f"tasks: {self._ti_summary(dag_id, run_id, failed_only=False)}"
        )

    def _ti_summary(self, dag_id: str, run_id: str, failed_only: bool = True) -> str:
        rows = [
            f"{ti['task_id']}{_map_suffix(ti)} {ti['state']} (try {ti['try_number']})"
            for ti in self.task_instances(dag_id, run_id)
            if not failed_only or ti["state"] in FAILED_TI_STATES
        ]
        return ", ".join(rows) or "none"

    # Backfills

    def backfill(
        self,
        dag_id: str,
        from_date: str | date | datetime,
        to_date: str | date | datetime,
        conf: dict | None = None,
        max_active_runs: int = 1,
        reprocess_behavior: str = "failed",
    ) -> dict:
        """Create a backfill (`POST /backfills`); returns it, with its `id`."""
        body = {
            "dag_id": dag_id,
            "from_date": _iso(from_date),
            "to_date": _iso(to_date),
            "dag_run_conf": conf or {},
            "max_active_runs": max_active_runs,
            "reprocess_behavior": reprocess_behavior,
        }
        return self.request("POST", "/backfills", json=body)

    def wait_for_backfill(self, backfill: dict, timeout: float = 600) -> dict[str, str]:
        """{run_id: state} of the backfill's runs once the scheduler has marked it complete and
        every run in its date range is terminal. The API does not link runs to their backfill, so
        they are the DAG's runs with logical dates in the backfill's range (with reprocessing, a
        re-run keeps its original run type)."""

        def finished() -> dict[str, str] | None:
            if self.request("GET", f"/backfills/{backfill['id']}")["completed_at"] is None:
                return None
            states = self._backfill_runs(backfill)
            return states if all(s in TERMINAL_RUN_STATES for s in states.values()) else None

        return self._poll(
            finished, timeout,
            lambda: f"backfill {backfill['id']} of {backfill['dag_id']} not complete: {self._backfill_runs(backfill)}",
        )  # fmt: skip

    def _backfill_runs(self, backfill: dict) -> dict[str, str]:
        runs = self.dag_runs(
            backfill["dag_id"], logical_date_gte=backfill["from_date"], logical_date_lte=backfill["to_date"]
        )
        return {run["dag_run_id"]: run["state"] for run in runs}

    def _poll(self, check: Callable[[], T | None], timeout: float, describe: Callable[[], str]) -> T:
        deadline = time.monotonic() + timeout
        while True:
            if (result := check()) is not None:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"after {timeout:.0f}s: {describe()}")
            time.sleep(self.poll_interval)


def _check(response: requests.Response) -> None:
    try:
        response.raise_for_status()
    except requests.HTTPError as error:
        raise requests.HTTPError(f"{error}: {response.text[:2000]}", response=response) from None


def _seg(value: str) -> str:
    """One URL path segment (run ids hold ':' and '+')."""
    return quote(value, safe="")


def _iso(value: str | date | datetime) -> str:
    """ISO 8601 with a time zone; a bare date is midnight UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _map_suffix(ti: dict) -> str:
    return "" if ti["map_index"] < 0 else f"[{ti['map_index']}]"


def _format_import_errors(errors: list[dict]) -> str:
    return "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors) or "none"
