"""The warm Spark Connect server: one long-lived Spark that thin clients talk to over gRPC.

A spark-submit pays 10-28 s of JVM start-up before any work, once per task. A Connect server
pays it once; each client then opens a session in well under a second. The server is Spark's
own (`sbin/start-connect-server.sh`, a daemon with a pid file and a log file), started with the
settings of `recflow.spark.server_conf`, which are the settings every spark-submit job gets, so a
deployment has one place to change them.

    python -m recflow.spark_connect start | stop | status     (make spark-connect / spark-connect-stop)
    python -m recflow.spark_connect serve                     (in the foreground: a container's process)

It listens on 127.0.0.1 only: a Connect server runs whatever code its clients send, with no
authentication unless a token is configured, so it must not be reachable from other machines.
Its pid and log files live in RECFLOW_SPARK_CONNECT_HOME (default <project>/.spark-connect).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyspark

from recflow.config import PROJECT_ROOT

HOST = "127.0.0.1"
DEFAULT_PORT = 15002  # Spark Connect's own default
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
# spark-daemon.sh names its pid and log files after this (instead of the login name).
IDENT = "recflow"
START_TIMEOUT_S = 180
SPARK_HOME = Path(pyspark.__file__).parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    return True


def _answers(host: str, port: int, timeout: float) -> bool:
    """Whether something accepts TCP connections at host:port."""
    with socket.socket() as probe:
        probe.settimeout(timeout)
        return probe.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class Server:
    home: Path
    port: int
    # The address it listens on: loopback, but in a container (docker-compose.yaml's
    # spark-connect) every address of the container, on a network only the stack's services reach.
    bind: str = HOST

    @classmethod
    def from_env(cls, environ=os.environ) -> Server:
        home = Path(environ.get("RECFLOW_SPARK_CONNECT_HOME", PROJECT_ROOT / ".spark-connect"))
        return cls(
            home=home,
            port=int(environ.get("RECFLOW_SPARK_CONNECT_PORT", DEFAULT_PORT)),
            bind=environ.get("RECFLOW_SPARK_CONNECT_BIND", HOST),
        )

    @property
    def url(self) -> str:
        return f"sc://{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / f"spark-{IDENT}-{SERVER_CLASS}-1.pid"

    @property
    def log_files(self) -> list[Path]:
        return sorted(self.home.glob(f"spark-{IDENT}-{SERVER_CLASS}-1-*.out"))

    def pid(self) -> int | None:
        """The server's pid while that process is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def listening(self) -> bool:
        return _answers(HOST, self.port, timeout=1.0)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_files:
            return "(no log file)"
        return "\n".join(self.log_files[-1].read_text(errors="replace").splitlines()[-lines:])


def _daemon_env(server: Server) -> dict[str, str]:
    return dict(
        os.environ,
        SPARK_HOME=str(SPARK_HOME),
        SPARK_PID_DIR=str(server.home),
        SPARK_LOG_DIR=str(server.home),
        SPARK_IDENT_STRING=IDENT,
        # The server's Python workers (mapInPandas, UDFs) need this environment's numpy and pandas.
        PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON", sys.executable),
    )


def _command(server: Server) -> list[str]:
    """Spark's start script with recflow.spark.server_conf's settings."""
    from recflow.spark import server_conf

    settings = server_conf(port=server.port, bind=server.bind)
    master = settings.pop("spark.master")
    return [
        str(SPARK_HOME / "sbin" / "start-connect-server.sh"),
        "--master", master,
        *[arg for key, value in sorted(settings.items()) for arg in ("--conf", f"{key}={value}")],
    ]  # fmt: skip


def serve(server: Server) -> None:
    """Run the server in the foreground, as a container's main process (docker-compose.yaml's
    spark-connect service): the same script and settings, without the daemon's pid and log files."""
    server.home.mkdir(parents=True, exist_ok=True)
    command = _command(server)
    os.execve(command[0], command, _daemon_env(server) | {"SPARK_NO_DAEMONIZE": "1"})


@contextlib.contextmanager
def _start_lock(server: Server):
    """One start at a time: two tasks of a run (the model chain and the analytics) may find the
    server down at the same moment, and Spark's daemon script refuses a second start."""
    server.home.mkdir(parents=True, exist_ok=True)
    with open(server.home / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def start(server: Server) -> str:
    """Start the server unless one answers already; -> its URL once it accepts connections."""
    with _start_lock(server):
        return _start(server)


def _start(server: Server) -> str:
    if server.pid() is not None and server.listening():
        return server.url
    if server.listening():
        raise RuntimeError(
            f"Port {server.port} on {HOST} is taken by a process that is not this project's Spark "
            f"Connect server ({server.pid_file} names none): stop it, or set RECFLOW_SPARK_CONNECT_PORT"
        )
    subprocess.run(_command(server), env=_daemon_env(server), check=True, capture_output=True, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.listening():
            return server.url
        if server.pid() is None:
            break
        time.sleep(0.5)
    stop(server)
    raise RuntimeError(
        f"The Spark Connect server did not come up on {server.url} within {START_TIMEOUT_S} s. "
        f"Its log ({server.home}):\n{server.log_tail()}"
    )


def stop(server: Server) -> bool:
    """Stop the server; -> whether one was running."""
    pid = server.pid()
    if pid is None:
        server.pid_file.unlink(missing_ok=True)
        return False
    subprocess.run(
        [str(SPARK_HOME / "sbin" / "stop-connect-server.sh")],
        env=_daemon_env(server), check=False, capture_output=True,
    )  # fmt: skip
    # The stop script removes the pid file before the JVM has exited: wait on the process.
    for _ in range(60):
        if not _alive(pid):
            break
        time.sleep(0.5)
    server.pid_file.unlink(missing_ok=True)
    return True


def ensure(url: str, environ=os.environ) -> str:
    """Before a task connects to `url` (its Spark Connect connection): the project's own server
    (127.0.0.1 on RECFLOW_SPARK_CONNECT_PORT) is started if it is not running, so that a server
    that died between two tasks costs the next one a start, not the run. Any other server must
    answer already: a task cannot start a server elsewhere, and the error says which one and how
    to switch. -> what the task log should say about it."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or DEFAULT_PORT
    server = Server.from_env(environ)
    if host in (HOST, "localhost") and port == server.port:
        was_up = server.pid() is not None and server.listening()
        start(server)
        return f"Spark Connect server {server.url} (pid {server.pid()})" + (
            "" if was_up else f": it was not running, so this task started it (log in {server.home})"
        )
    if not _answers(host, port, timeout=5.0):
        raise RuntimeError(
            f"The Spark Connect server at {host}:{port} (the task's spark_connect connection) does "
            "not answer. Start it there, point the connection at a running one, or run the Spark "
            "tasks with spark-submit instead (RECFLOW_SPARK_BACKEND=submit)."
        )
    return f"Spark Connect server {host}:{port} answers"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The warm Spark Connect server (see recflow/spark_connect.py)"
    )
    parser.add_argument("action", choices=["start", "stop", "status", "serve"])
    args = parser.parse_args(argv)
    server = Server.from_env()
    if args.action == "serve":
        serve(server)
    elif args.action == "start":
        print(f"Spark Connect server on {start(server)} (pid {server.pid()}, log in {server.home})")
    elif args.action == "stop":
        print("stopped" if stop(server) else "not running")
    else:
        pid = server.pid()
        up = pid is not None and server.listening()
        print(f"running on {server.url} (pid {pid})" if up else "not running")
        return 0 if up else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
