"""A real Spark standalone cluster on 127.0.0.1 (one master, one worker) for end-to-end tests.

Both daemons come from the installed pyspark package itself (`pyspark/bin/spark-class`, with
SPARK_HOME = the package folder), so the cluster runs exactly the Spark the jobs are linked
against, and needs nothing but Java. Usage::

    with standalone_cluster(tmp_path / "spark") as cluster:
        env["AIRFLOW_CONN_SPARK_DEFAULT"] = cluster.airflow_conn
        ...  # spark-submit --master cluster.master_url ...
        assert cluster.app_names(completed=True)

Ports: the master prefers 7077 and falls back to a free port when 7077 is taken (two test runs
on one machine); the web UIs always get free ports. The master's own spark.port.maxRetries is 0,
so it never silently moves to another port than the one it was given; the URLs yielded are the
ones the master reports it bound.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
PREFERRED_MASTER_PORT = 7077
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
LOG_TAIL_LINES = 40
MASTER_ATTEMPTS = 3


@dataclass(frozen=True)
class ClusterInfo:
    master_url: str  # spark://127.0.0.1:<port>
    web_ui_url: str  # http://127.0.0.1:<port>, the master's UI; its JSON status is <url>/json/
    master_log: Path
    worker_log: Path
    work_dir: Path  # the worker's --work-dir: app-*/<executor>/stderr are the executors' logs
    cores: int
    memory: str

    @property
    def host(self) -> str:
        return self.master_url.removeprefix("spark://").rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.master_url.rsplit(":", 1)[1])

    @property
    def airflow_conn(self) -> str:
        """The `spark_default` connection (AIRFLOW_CONN_SPARK_DEFAULT) that submits here. The
        Spark provider's hook joins host and port into `--master spark://127.0.0.1:<port>`."""
        return json.dumps({"conn_type": "spark", "host": f"spark://{self.host}", "port": self.port})

    def status(self) -> dict:
        """The master's JSON status: workers, activeapps, completedapps, ..."""
        return _get_json(f"{self.web_ui_url}/json/")

    def app_names(self, *, completed: bool = True) -> list[str]:
        """Names of the applications the master ran (completed=True) or runs now."""
        return [app["name"] for app in self.status()["completedapps" if completed else "activeapps"]]


@contextmanager
def standalone_cluster(
    work_dir: Path, *, cores: int = 2, memory: str = "3g", timeout: float = 120.0
) -> Iterator[ClusterInfo]:
    """Start a standalone master and one worker on 127.0.0.1, wait until the master lists the
    worker ALIVE, yield where they are, and stop both (and the worker's executors) on exit."""
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    spark_home = _pyspark_home()
    env = _cluster_env(spark_home, work_dir)
    spark_class = str(spark_home / "bin" / "spark-class")

    master_log, worker_log = work_dir / "master.log", work_dir / "worker.log"
    processes: list[tuple[subprocess.Popen, Path]] = []
    try:
        for attempt in range(MASTER_ATTEMPTS):
            # Another run may take a port between the probe and the master's bind: then the
            # master stops at once (no retries on other ports), and we try again on fresh ones.
            free = attempt == 0 and _port_is_free(PREFERRED_MASTER_PORT)
            master_port = PREFERRED_MASTER_PORT if free else _free_port()
            master_log.write_text("")
            master = _start(
                [spark_class, MASTER_CLASS, "--host", HOST, "--port", str(master_port),
                 "--webui-port", str(_free_port())],
                env, master_log,
            )  # fmt: skip
            try:
                master_url, web_ui_url = _wait_for_master(master, master_log, timeout)
                break
            except _PortTaken:
                _stop(master)
                if attempt == MASTER_ATTEMPTS - 1:
                    _fail(f"the Spark master found its ports taken {MASTER_ATTEMPTS} times", [master_log])
        processes.append((master, master_log))
        worker_ui_port = _free_port()

        worker = _start(
            [spark_class, WORKER_CLASS, master_url, "--host", HOST, "--cores", str(cores),
             "--memory", memory, "--webui-port", str(worker_ui_port),
             "--work-dir", str(work_dir / "worker")],
            env, worker_log,
        )  # fmt: skip
        processes.append((worker, worker_log))
        _wait_for_worker(web_ui_url, processes, timeout)
        yield ClusterInfo(
            master_url=master_url,
            web_ui_url=web_ui_url,
            master_log=master_log,
            worker_log=worker_log,
            work_dir=work_dir / "worker",
            cores=cores,
            memory=memory,
        )
    finally:
        # Worker first (it kills its executors), then the master.
        for process, _ in reversed(processes):
            _stop(process)


# --- helpers ---------------------------------------------------------------------------------


def _pyspark_home() -> Path:
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-class").is_file() or not (home / "jars").is_dir():
        raise RuntimeError(f"{home} has no bin/spark-class or jars/: is this the full pyspark package?")
    return home


def _cluster_env(spark_home: Path, work_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Left over from a pytest session or a driver: they would make the daemons' launcher or
    # the executors' Python act as if they were part of another application.
    for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "PYSPARK_SUBMIT_ARGS", "SPARK_CONF_DIR"):
        env.pop(name, None)
    env.update(
        SPARK_HOME=str(spark_home),
        # Bind everything (RPC, block manager, UIs) to loopback, never to the host's other
        # addresses, and say so in the addresses the master hands out.
        SPARK_LOCAL_IP=HOST,
        SPARK_LOCAL_HOSTNAME=HOST,
        SPARK_NO_DAEMONIZE="1",
        SPARK_LOG_DIR=str(work_dir / "logs"),
        SPARK_PID_DIR=str(work_dir / "pids"),
        # The executors' Python workers run the interpreter each application names (its
        # driver's spark.pyspark.python or PYSPARK_PYTHON, else `python3` on the executor's
        # PATH). Executors inherit this environment: make both fallbacks this environment's
        # interpreter, with its numpy, pandas, scipy and the editable recflow.
        PYSPARK_PYTHON=os.environ.get("PYSPARK_PYTHON") or sys.executable,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        # A fixed master port or nothing: with retries the master would quietly take 7078 when
        # another run holds 7077, and two test runs could then share one master. No REST
        # submission server (port 6066): it serves only `--deploy-mode cluster`, which standalone
        # does not offer Python applications, and a second cluster on the machine could not
        # bind it and would stay in STANDBY.
        SPARK_MASTER_OPTS=" ".join(
            [
                os.environ.get("SPARK_MASTER_OPTS", ""),
                "-Dspark.port.maxRetries=0",
                "-Dspark.master.rest.enabled=false",
            ]
        ).strip(),
    )
    return env


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        # A session (process group) of its own: stopping it also stops what it started
        # (spark-class's launcher, the worker's executor JVMs and their Python workers).
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def _stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=grace)
    # Executors the worker started may outlive it by a moment; they share its group.
    _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)  # start_new_session: the group id is the leader's pid
    except (ProcessLookupError, PermissionError):
        pass


MASTER_URL_RE = re.compile(r"Starting Spark master at (spark://\S+)")
MASTER_UI_RE = re.compile(r"MasterWebUI.*?started at (http://\S+?:\d+)")


class _PortTaken(Exception):
    pass


def _wait_for_master(master: subprocess.Popen, log: Path, timeout: float) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = _read(log)
        if "BindException" in text or "Address already in use" in text:
            raise _PortTaken
        url, ui = MASTER_URL_RE.search(text), MASTER_UI_RE.search(text)
        if url and ui:
            # The UI line names the host the UI bound to; we talk to it on loopback.
            ui_port = ui.group(1).rsplit(":", 1)[1]
            return url.group(1), f"http://{HOST}:{ui_port}"
        if master.poll() is not None:
            _fail(f"the Spark master exited with code {master.returncode} while starting", [log])
        time.sleep(0.5)
    _fail(f"the Spark master did not start within {timeout:.0f}s", [log])


def _wait_for_worker(web_ui_url: str, processes: list[tuple[subprocess.Popen, Path]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    logs = [log for _, log in processes]
    while time.monotonic() < deadline:
        for process, log in processes:
            if process.poll() is not None:
                _fail(f"{log.stem} exited with code {process.returncode}", logs)
            if "BindException" in _read(log):
                # A daemon that could not bind a port keeps running, useless (a master stays
                # in STANDBY): say so now rather than at the timeout.
                _fail(f"{log.stem} could not bind a port (another cluster on this machine?)", logs)
        try:
            status = _get_json(f"{web_ui_url}/json/")
            workers = [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]
            if workers:
                return
            last = f"status {status.get('status')}, workers {[w.get('state') for w in status.get('workers', [])]}"
        except (OSError, ValueError) as error:  # not listening yet, or a half-written answer
            last = repr(error)
        time.sleep(0.5)
    _fail(f"no ALIVE worker at {web_ui_url}/json/ within {timeout:.0f}s (last: {last})", logs)


def _fail(message: str, logs: list[Path]) -> None:
    tails = "\n".join(
        f"--- last {LOG_TAIL_LINES} lines of {log} ---\n"
        + "\n".join(_read(log).splitlines()[-LOG_TAIL_LINES:])
        for log in logs
    )
    raise RuntimeError(f"Spark standalone cluster: {message}\n{tails}")


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]
