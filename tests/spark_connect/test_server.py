"""The warm Spark Connect server's lifecycle (recflow.spark_connect): a real server, a real client.

The client runs in a subprocess: pyspark marks a process that opened a Connect session as remote
(SPARK_CONNECT_MODE_ENABLED) for good, which would turn the suite's classic session tests remote."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from recflow.spark_connect import Server, start, stop

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_starts_once_serves_a_client_and_stops(tmp_path, monkeypatch):
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

        done = subprocess.run(
            [sys.executable, "-c", CLIENT, url], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-3000:]
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        # The session runs on the server's settings (recflow.spark.server_conf), not Spark's:
        # local[2] gives ALS two blocks, where a Connect client without them would get 10.
        assert answer == {"count": 7, "tz": "UTC", "cores": 2}
    finally:
        was_running = stop(server)
    assert was_running
    assert server.pid() is None and not server.pid_file.exists() and not server.listening()
    assert stop(server) is False


def test_a_port_taken_by_another_process_is_named(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        server = Server(home=tmp_path / "connect", port=other.getsockname()[1])
        with pytest.raises(RuntimeError, match=f"Port {server.port} .* not this project's Spark Connect"):
            start(server)
