"""What a Spark task costs beyond its work: the same `make demo` day with spark-submit
(RECFLOW_SPARK_BACKEND=submit) and on the warm Spark Connect server (connect, the default), and
the warm server's behaviour over many runs.

Every run is `airflow dags test recommendations_daily` (what make demo runs) in a work folder of
its own per backend (Airflow metadata in SQLite, the embedded SQLite warehouse), never committed
(default data/benchmarks/spark_overhead). Phases:

  overhead (always)  --repeats runs per backend of --conf (default {}: the 600-user generated
                     sample, default Params). Per Spark task: its wall time (Airflow's metadata),
                     the job's own step time (`job_seconds` in its facts: from a ready session
                     to its facts) and the difference, the overhead: the process, the JVM and the
                     session, and Airflow's own per-task cost. The server is stopped before the
                     first Connect run, which pays its start as a first make demo does and is
                     shown apart. The two backends' published tables are compared row for row.
  --soak N           N consecutive Connect runs (consecutive days) of an 80-user sample: each
                     run's wall time, that none hung (a run past --run-timeout counts as hung),
                     and the server's RSS after each run.
  --concurrent       two runs of different datasets (MovieLens, e-commerce) on the one server
                     at once: both must succeed and publish every user's list.
  --kill-server      a run whose server is killed (SIGKILL) while train_als runs, with one retry
                     per task: what the run log says and whether the retry, which starts the
                     server again, publishes.

    .venv/bin/python benchmarks/spark_overhead.py [--repeats 3] [--conf '{}'] [--soak 20]
        [--concurrent] [--kill-server]

Ends with one line of JSON. Quote medians; say what else ran on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "benchmarks"))

from scale import AIRFLOW, VENV_BIN, last_run, spark_task_of_job  # noqa: E402

from recflow.config import Settings  # noqa: E402
from recflow.facts import read_facts  # noqa: E402
from recflow.spark_connect import Server, stop  # noqa: E402

DS = "2024-03-01"
SMALL = {"sample_users": 150, "sample_items": 120, "top_k": 5, "max_iter": 5, "rank": 10, "tuning_trials": 1}
# The soak's runs: what matters is their number (what the server keeps between runs), not size.
SOAK = SMALL | {"sample_users": 80, "sample_items": 60, "tuning_trials": 0}
# The published tables compared across backends: everything a run publishes except the
# registry and run log, whose rows carry the wall-clock time they were written at.
COMPARED = ("recommendations", "similar_items", "items", "users", "user_profiles", "popular_items",
            "model_metrics", "recommendation_rules", "daily_kpis", "data_quality_results",
            "data_reconciliation")  # fmt: skip


@dataclass
class Deployment:
    """One Airflow home, data folder and embedded warehouse, on one Spark backend."""

    work: Path
    backend: str
    server: Server
    retries: int = 0

    def env(self) -> dict[str, str]:
        return os.environ | {
            "AIRFLOW_HOME": str(self.work / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "RECFLOW_SPARK_BACKEND": self.backend,
            "AIRFLOW_CONN_SPARK_DEFAULT": '{"conn_type": "spark", "host": "local[2]"}',
            "AIRFLOW_CONN_SPARK_CONNECT_DEFAULT": json.dumps(
                {"conn_type": "spark_connect", "host": "127.0.0.1", "port": self.server.port}
            ),
            "RECFLOW_SPARK_CONNECT_HOME": str(self.server.home),
            "RECFLOW_SPARK_CONNECT_PORT": str(self.server.port),
            "RECFLOW_DATA_DIR": str(self.work / "data"),
            "RECFLOW_WAREHOUSE_URL": "",  # the embedded SQLite warehouse of the data folder
            "RECFLOW_TASK_RETRIES": str(self.retries),
            "PYSPARK_PYTHON": sys.executable,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def migrate(self) -> None:
        if not (self.work / "airflow" / "airflow.db").exists():
            subprocess.run([AIRFLOW, "db", "migrate"], env=self.env(), check=True, capture_output=True)

    def settings(self, conf: dict) -> Settings:
        return dataclasses.replace(Settings.from_params(conf), data_dir=self.work / "data", lake_uri=None)

    def start_run(self, conf: dict, ds: str, log: Path) -> subprocess.Popen:
        self.migrate()
        log.parent.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [AIRFLOW, "dags", "test", "recommendations_daily", ds, "--conf", json.dumps(conf)],
            env=self.env(), stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=self.work,
        )  # fmt: skip

    def run(self, conf: dict, ds: str = DS, timeout: float = 1800) -> dict:
        log = self.work / "logs" / f"{ds}-{time.monotonic_ns()}.log"
        started = time.monotonic()
        process = self.start_run(conf, ds, log)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return {"state": "hung", "wall_s": round(time.monotonic() - started, 1), "log": str(log)}
        wall = time.monotonic() - started
        state, tasks = last_run(self.work / "airflow" / "airflow.db")
        settings = self.settings(conf)
        job_s = {}
        for job, task in spark_task_of_job().items():
            try:
                job_s[task] = read_facts(settings.lake_path("facts", job, ds))["job_seconds"]
            except (FileNotFoundError, KeyError):
                pass
        return {
            "state": state,
            "wall_s": round(wall, 1),
            "tasks": tasks,
            "job_s": job_s,
            "overhead_s": {t: round(tasks[t] - s, 2) for t, s in job_s.items() if t in tasks},
            "log": str(log),
        }

    def warehouse(self) -> Path:
        return self.work / "data" / "warehouse.db"


def server_rss_mb(server: Server) -> float | None:
    pid = server.pid()
    if pid is None:
        return None
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return round(kib / 1024, 1)


def table_digests(db: Path) -> dict[str, str]:
    """sha256 of each compared table's rows, sorted."""
    digests = {}
    with sqlite3.connect(db) as con:
        for table in COMPARED:
            rows = sorted(repr(row) for row in con.execute(f"SELECT * FROM {table}"))
            digests[table] = (
                f"{len(rows)} rows {hashlib.sha256(chr(10).join(rows).encode()).hexdigest()[:16]}"
            )
    return digests


def median(values) -> float:
    values = list(values)
    return round(statistics.median(values), 2) if values else float("nan")


def overhead(args, server: Server) -> dict:
    results, digests = {}, {}
    for backend in ("submit", "connect"):
        deployment = Deployment(args.work / backend, backend, server)
        if backend == "connect":
            stop(server)  # the first Connect run starts it, as a first make demo does
        runs = [deployment.run(args.conf) for _ in range(args.repeats)]
        assert all(r["state"] == "success" for r in runs), [(r["state"], r["log"]) for r in runs]
        # The first Connect run pays the server's start; the medians are over the rest when
        # there are at least three runs, and the cold run is shown apart.
        warm = runs[1:] if backend == "connect" and len(runs) >= 3 else runs
        tasks = sorted(warm[0]["overhead_s"])
        results[backend] = {
            "wall_s": [r["wall_s"] for r in runs],
            "median_wall_s": median(r["wall_s"] for r in warm),
            "task_s": {t: median(r["tasks"][t] for r in warm) for t in tasks},
            "overhead_s": {t: median(r["overhead_s"][t] for r in warm) for t in tasks},
            "median_task_overhead_s": median(r["overhead_s"][t] for r in warm for t in tasks),
        }
        digests[backend] = table_digests(deployment.warehouse())
    results["same_tables"] = digests["submit"] == digests["connect"]
    results["tables"] = digests
    submit, connect = results["submit"], results["connect"]
    print(f"\nPer Spark task, medians of {args.repeats} runs (connect: of the warm runs)")
    print("| task | submit s | submit overhead s | connect s | connect overhead s |")
    print("|---|---|---|---|---|")
    for task in submit["task_s"]:
        print(f"| {task} | {submit['task_s'][task]} | {submit['overhead_s'][task]} "
              f"| {connect['task_s'][task]} | {connect['overhead_s'][task]} |")  # fmt: skip
    print(
        f"| median per-task overhead | | {submit['median_task_overhead_s']} | | {connect['median_task_overhead_s']} |"
    )
    print(f"| whole run wall (median) | {submit['median_wall_s']} | | {connect['median_wall_s']} | |")
    print(f"runs: submit {submit['wall_s']} s, connect {connect['wall_s']} s (the first starts the server)")
    print(f"published tables identical: {results['same_tables']}")
    return results


def soak(args, server: Server) -> dict:
    deployment = Deployment(args.work / "soak", "connect", server)
    runs = []
    for n in range(args.soak):
        day = (datetime.date.fromisoformat(DS) + datetime.timedelta(days=n)).isoformat()
        run = deployment.run(SOAK, day, timeout=args.run_timeout)
        run["server_rss_mb"] = server_rss_mb(server)
        runs.append({k: run.get(k) for k in ("state", "wall_s", "server_rss_mb")} | {"ds": day})
        print(
            f"soak run {n + 1}/{args.soak} {day}: {run['state']} in {run['wall_s']} s, server RSS {run['server_rss_mb']} MB"
        )
    rss = [r["server_rss_mb"] for r in runs]
    return {
        "runs": runs,
        "hung": sum(r["state"] == "hung" for r in runs),
        "failed": sum(r["state"] != "success" for r in runs),
        "median_wall_s": median(r["wall_s"] for r in runs),
        "rss_after_run_2_mb": rss[1] if len(rss) > 1 else None,
        "rss_after_last_mb": rss[-1],
        "rss_change": round(rss[-1] / rss[1] - 1, 3) if len(rss) > 1 and rss[1] else None,
    }


def concurrent(args, server: Server) -> dict:
    confs = {
        "movielens": SMALL | {"dataset": "ml_a"},
        "ecommerce": SMALL | {"source": "ecommerce", "dataset": "shop_b"},
    }
    deployments = {name: Deployment(args.work / f"concurrent-{name}", "connect", server) for name in confs}
    for deployment in deployments.values():
        deployment.migrate()
    results: dict[str, dict] = {}
    threads = [
        threading.Thread(target=lambda n=name: results.__setitem__(n, deployments[n].run(confs[n], timeout=args.run_timeout)))
        for name in confs
    ]  # fmt: skip
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = {"wall_s": round(time.monotonic() - started, 1)}
    for name, deployment in deployments.items():
        with sqlite3.connect(deployment.warehouse()) as con:
            dataset = confs[name]["dataset"]
            recs, users = con.execute(
                "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM recommendations WHERE dataset = ?", (dataset,)
            ).fetchone()
            known = con.execute("SELECT COUNT(*) FROM users WHERE dataset = ?", (dataset,)).fetchone()[0]
        out[name] = {"state": results[name]["state"], "wall_s": results[name]["wall_s"],
                     "recommendations": recs, "users_with_lists": users, "users": known,
                     "every_user_listed": recs == known * SMALL["top_k"] and users == known}  # fmt: skip
        print(f"concurrent {name}: {out[name]}")
    return out


def kill_server(args, server: Server) -> dict:
    deployment = Deployment(args.work / "kill", "connect", server, retries=1)
    log = deployment.work / "logs" / "kill.log"
    started = time.monotonic()
    process = deployment.start_run(SMALL, DS, log)
    killed_pid = None
    deadline = time.monotonic() + args.run_timeout
    while time.monotonic() < deadline and process.poll() is None:
        if "running train over Spark Connect" in log.read_text(errors="replace"):
            time.sleep(5)  # in the middle of training
            killed_pid = server.pid()
            os.kill(killed_pid, signal.SIGKILL)
            break
        time.sleep(0.5)
    try:
        process.wait(timeout=max(deadline - time.monotonic(), 1))  # one --run-timeout for the whole run
    except subprocess.TimeoutExpired:
        process.kill()
        out = {"state": "hung", "killed_pid": killed_pid, "wall_s": round(time.monotonic() - started, 1)}
        print(f"kill-server: {out}")
        return out
    state, _ = last_run(deployment.work / "airflow" / "airflow.db")
    with sqlite3.connect(deployment.warehouse()) as con:
        attempts = con.execute(
            "SELECT task_id, try_number, state, error_type, substr(error, 1, 160) FROM pipeline_run_log ORDER BY logged_at"
        ).fetchall()
        published = con.execute("SELECT status FROM model_runs WHERE run_date = ?", (DS,)).fetchall()
    out = {
        "state": state,
        "wall_s": round(time.monotonic() - started, 1),
        "killed_pid": killed_pid,
        "restarted_pid": server.pid(),
        "run_log": attempts,
        "model_runs": [s for (s,) in published],
        "task_log_says_restarted": "it was not running, so this task started it"
        in log.read_text(errors="replace"),
    }
    print(f"kill-server: {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=PROJECT / "data" / "benchmarks" / "spark_overhead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conf", type=json.loads, default={})
    parser.add_argument("--no-overhead", dest="overhead", action="store_false")
    parser.add_argument("--soak", type=int, default=0)
    parser.add_argument("--concurrent", action="store_true")
    parser.add_argument("--kill-server", action="store_true")
    parser.add_argument("--run-timeout", type=float, default=900)
    parser.add_argument(
        "--port", type=int, default=15012, help="the benchmark's own server (not make spark-connect's)"
    )
    args = parser.parse_args()
    args.work = args.work.resolve()  # AIRFLOW_HOME and the data folder must be absolute
    shutil.rmtree(args.work, ignore_errors=True)
    server = Server(home=args.work / "spark-connect", port=args.port)
    report: dict = {"machine": {"cores": os.cpu_count()}}
    try:
        if args.overhead:
            report["overhead"] = overhead(args, server)
        if args.soak:
            report["soak"] = soak(args, server)
        if args.concurrent:
            report["concurrent"] = concurrent(args, server)
        if args.kill_server:
            report["kill_server"] = kill_server(args, server)
    finally:
        stop(server)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
