"""The warm Spark Connect server (recflow.spark_connect): its lifecycle, sessions that do not see
each other, a client killed mid-query that leaves it up, and a dead server started again by the
next task's check. A real server, real clients.

The client runs in a subprocess: pyspark marks a process that opened a Connect session as remote
(SPARK_CONNECT_MODE_ENABLED) for good, which would turn the suite's classic session tests remote."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from recflow.spark_connect import Server, ensure, start, stop

pytestmark = pytest.mark.spark

CLIENT = """
import json, sys
from pyspark.sql import SparkSession
from recflow.spark import cores
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
tz = spark.conf.get("spark.sql.session.timeZone")
print(json.dumps({"count": spark.range(7).count(), "tz": tz, "cores": cores(spark)}))
spark.stop()
"""
# A run's session: its own temporary view, cache and setting, held while another run does the same.
SESSION = """
import json, sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
mine = int(sys.argv[2])
spark.conf.set("spark.sql.shuffle.partitions", str(mine))
spark.range(mine).createOrReplaceTempView("facts")
spark.range(mine * 10).cache().count()
time.sleep(4)
print(json.dumps({
    "rows": spark.table("facts").count(),
    "partitions": spark.conf.get("spark.sql.shuffle.partitions"),
    "views": [t.name for t in spark.catalog.listTables()],
}))
spark.stop()
"""
# A task killed while its query runs (Airflow's timeout, an OOM kill of the worker).
LONG_QUERY = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
print("started", flush=True)
spark.range(10**12).selectExpr("sum(id * id)").collect()
"""

# A task on a server that stopped answering, under Airflow's own execution_timeout mechanism.
STUCK = """
import json, sys, time
from airflow.sdk.exceptions import AirflowTaskTimeout
from airflow.sdk.execution_time.timeout import timeout
from pyspark.sql import SparkSession
started = time.monotonic()
try:
    with timeout(int(sys.argv[2])):
        spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
        spark.range(7).count()
    outcome = "answered"
except AirflowTaskTimeout:
    outcome = "timed out"
print(json.dumps({"outcome": outcome, "after_s": round(time.monotonic() - started, 1)}), flush=True)
import os; os._exit(0)  # the session cannot be closed on a stopped server
"""


def run_client(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_server_isolates_sessions_outlives_killed_clients_times_out_stuck_ones_and_restarts(
    tmp_path, monkeypatch, free_port
):
    # A small heap: the test shares the machine with the suite's own Spark.
    monkeypatch.setenv("RECFLOW_SPARK_DRIVER_MEMORY", "1g")
    monkeypatch.setenv("RECFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECFLOW_SPARK_MASTER", "local[2]")
    server = Server(home=tmp_path / "connect", port=free_port())
    try:
        url = start(server)
        assert url == f"sc://127.0.0.1:{server.port}"
        pid = server.pid()
        assert pid is not None and server.log_files
        # Starting again finds the running server instead of a second one.
        assert start(server) == url and server.pid() == pid

        # The session runs on the server's settings (recflow.spark.server_conf), not Spark's:
        # local[2] gives ALS two blocks, where a Connect client without them would get 10.
        assert run_client(CLIENT, url) == {"count": 7, "tz": "UTC", "cores": 2}

        # Two runs at once on one server: each sees its own view, setting and data only.
        both = [
            subprocess.Popen([sys.executable, "-c", SESSION, url, str(n)], stdout=subprocess.PIPE, text=True)
            for n in (3, 5)
        ]
        answers = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in both]
        assert answers == [{"rows": n, "partitions": str(n), "views": ["facts"]} for n in (3, 5)], answers

        # A client killed in the middle of a query leaves the server serving the next one.
        killed = subprocess.Popen([sys.executable, "-c", LONG_QUERY, url], stdout=subprocess.PIPE, text=True)
        assert killed.stdout.readline().strip() == "started"
        time.sleep(3)
        killed.kill()
        killed.wait(timeout=30)
        assert server.pid() == pid
        assert run_client(CLIENT, url)["count"] == 7

        # A server that stops answering (SIGSTOP: alive, silent) fails the task at its Airflow
        # execution_timeout instead of hanging it, and serves again once it wakes.
        os.kill(pid, signal.SIGSTOP)
        try:
            stuck = run_client(STUCK, url, "5")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert stuck["outcome"] == "timed out" and stuck["after_s"] < 30, stuck
        assert run_client(CLIENT, url)["count"] == 7

        # The server dies between two tasks: the next task's check (the DAG's pre_execute)
        # starts it again and says so in the task log.
        os.kill(pid, signal.SIGKILL)
        for _ in range(40):
            if server.pid() is None:
                break
            time.sleep(0.25)
        environ = dict(os.environ, RECFLOW_SPARK_CONNECT_HOME=str(server.home),
                       RECFLOW_SPARK_CONNECT_PORT=str(server.port))  # fmt: skip
        said = ensure(f"{url}/;user_id=airflow", environ)
        assert "it was not running, so this task started it" in said, said
        assert server.pid() not in (None, pid)
        assert run_client(CLIENT, url)["count"] == 7
        # Running, it is left as it is.
        assert ensure(url, environ) == f"Spark Connect server {url} (pid {server.pid()})"
    finally:
        was_running = stop(server)
    assert was_running
    assert server.pid() is None and not server.pid_file.exists() and not server.listening()
    assert stop(server) is False


def test_a_server_elsewhere_that_does_not_answer_fails_the_task_saying_which(free_port):
    port = free_port()
    with pytest.raises(
        RuntimeError, match=f"server at 10.0.0.1:{port} .* does not answer.*RECFLOW_SPARK_BACKEND=submit"
    ):
        ensure(f"sc://10.0.0.1:{port}")
    # 127.0.0.1, but not the project's port: not ours to start either.
    with pytest.raises(RuntimeError, match=f"server at 127.0.0.1:{port} .* does not answer"):
        ensure(f"sc://127.0.0.1:{port}", {"RECFLOW_SPARK_CONNECT_PORT": str(free_port())})


def test_a_port_taken_by_another_process_is_named(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        server = Server(home=tmp_path / "connect", port=other.getsockname()[1])
        with pytest.raises(RuntimeError, match=f"Port {server.port} .* not this project's Spark Connect"):
            start(server)
