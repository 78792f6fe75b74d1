"""The cost curve of recommendations_daily from 1M to 20M
interactions on this machine, and Spark ALS beside the `implicit` library on the same matrix.

Per size, with the project's own generators (recflow/generate), into a work folder that is never
committed (default data/benchmarks/scale):
  ml-1m, ml-5m, ml-20m   MovieLens-100K-layout ratings; users = ratings / 144.4 (ML-20M's ratio:
                         20,000,263 ratings of 138,493 users), items growing like ML's releases
                         (3,706 at 1M to 26,744 at 20M: items = 3,706 * (n / 1M) ** 0.66)
  shop-20m               a REES46-layout month: 900,900 users, 100,000 products, 31 days,
                         the generator's view / cart / purchase funnel (~90 / 6 / 1.7 %)
the daily DAG runs once with default Params (`airflow dags test`, as `make demo` runs it) into
the MariaDB at --url, and the benchmark prints, per size: every task's wall time (from Airflow's
metadata), the peak RSS of each Spark task's driver (JVM + driver Python) and of its Python
workers (local mode: the executors' Python side), the rows published and the users left short of
top_k, then each task's log-log slope of time against size between consecutive sizes.

With --als it also fits Spark ALS (rank 64, implicit, local[2]; with the native BLAS netlib finds
and with Java BLAS forced) and implicit's AlternatingLeastSquares (64 factors, 2 threads) on the
largest MovieLens size's matrix, and prints seconds per iteration: (fit of 1 + N iterations -
fit of 1) / N, so the setup each library does once is left out of both.

    make bench-scale ARGS='--sizes ml-1m,ml-5m --repeats 1'
    .venv/bin/python benchmarks/scale.py [--sizes ml-1m,ml-5m,ml-20m,shop-20m] [--als]
        [--url mysql+pymysql://root@127.0.0.1:3306/recflow_scale] [--work data/benchmarks/scale]

Ends with one line of JSON. Quote medians (--repeats); say what else ran on the machine.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from recflow.config import Settings  # noqa: E402
from recflow.resources import driver_memory  # noqa: E402

ML_RATINGS_PER_USER = 20_000_263 / 138_493
ML_ITEMS_AT_1M, ML_ITEM_EXPONENT = 3_706, 0.66
# Events per user of the e-commerce generator over 31 days at 4 sessions a user (measured:
# 20,096,900 events from 900,900 users and 100,000 products, in 139 s and 5.3 GB).
SHOP_EVENTS_PER_USER = 22.31
DS = "2024-03-01"
# The virtualenv's own Airflow and spark-submit, whether or not its bin/ is on PATH (make puts it
# there; a direct `.venv/bin/python benchmarks/scale.py` does not).
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")


@dataclass(frozen=True)
class Size:
    name: str
    source: str  # the DAG's `source` Param
    rows: int  # interactions asked of the generator


SIZES = {
    "ml-1m": Size("ml-1m", "movielens", 1_000_000),
    "ml-5m": Size("ml-5m", "movielens", 5_000_000),
    "ml-20m": Size("ml-20m", "movielens", 20_000_000),
    "shop-20m": Size("shop-20m", "ecommerce", 20_000_000),
}


def generate(size: Size, folder: Path) -> dict:
    """The size's input files under folder (kept: a marker file holds the generator's counts)."""
    marker = folder / "generated.json"
    if marker.exists():
        return json.loads(marker.read_text())
    if size.source == "movielens":
        from recflow.generate.movielens import generate_movielens

        users = round(size.rows / ML_RATINGS_PER_USER)
        items = round(ML_ITEMS_AT_1M * (size.rows / 1e6) ** ML_ITEM_EXPONENT)
        counts = generate_movielens(folder, n_users=users, n_items=items, mean_ratings_per_user=145)
    else:
        from recflow.generate.ecommerce import generate_ecommerce

        counts = generate_ecommerce(
            folder, n_users=round(size.rows / SHOP_EVENTS_PER_USER), n_items=100_000, days=31,
            mean_sessions_per_user=4,
        )  # fmt: skip
    marker.write_text(json.dumps(counts))
    return counts


@dataclass
class Peaks:
    """Peak RSS per Spark task, sampled from /proc once a second."""

    driver: dict = field(default_factory=dict)
    workers: dict = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.sample()

    def sample(self) -> None:
        by_task: dict[str, list[int]] = {}
        parents, rss, owner = {}, {}, {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                status = (proc / "status").read_text()
            except OSError:
                continue
            pid = int(proc.name)
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            parents[pid] = int(fields.get("PPid", "0").strip())
            rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
            job = next((c.decode() for c in cmd if c.endswith(b".py") and b"spark_jobs/" in c), None)
            if job:
                owner[pid] = Path(job).stem
        for pid in rss:
            task, walk, is_worker = None, pid, False
            while walk and task is None:
                task = owner.get(walk)
                if task is None:
                    is_worker = True
                walk = parents.get(walk, 0)
            if task is None:
                continue
            by_task.setdefault(task, [0, 0])[1 if is_worker and pid not in owner else 0] += rss[pid]
        for task, (driver, workers) in by_task.items():
            self.driver[task] = max(self.driver.get(task, 0), driver)
            self.workers[task] = max(self.workers.get(task, 0), workers)


@functools.cache
def spark_task_of_job() -> dict[str, str]:
    """spark_jobs/<job>.py -> the DAG's task id, from the DAG file itself."""
    import importlib.util

    sys.path.insert(0, str(PROJECT / "plugins"))  # the DAG's own imports, as Airflow puts them there
    spec = importlib.util.spec_from_file_location("daily", PROJECT / "dags" / "recommendations_daily.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {job: task for task, job in module.SPARK_TASKS.items()}


def run_dag(size: Size, inputs: Path, work: Path, url: str) -> dict:
    airflow_home = work / "airflow"
    env = os.environ | {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # One spark-submit per task, so that each task's driver is a process of its own whose
        # peak memory the sampler can attribute (on the Connect server every task shares one).
        "RECFLOW_SPARK_BACKEND": "submit",
        "AIRFLOW_CONN_SPARK_DEFAULT": '{"conn_type": "spark", "host": "local[2]"}',
        "RECFLOW_DATA_DIR": str(work / size.name),
        "RECFLOW_INPUT_ROOTS": str(work),
        "RECFLOW_WAREHOUSE_URL": url,
        "RECFLOW_TASK_RETRIES": "0",
        "PYSPARK_PYTHON": sys.executable,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if not (airflow_home / "airflow.db").exists():
        subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    dataset = size.name.replace("-", "_")
    conf = {"source": size.source, "path": str(inputs), "dataset": dataset}
    peaks = Peaks()
    sampler = threading.Thread(target=peaks.run, daemon=True)
    sampler.start()
    started = time.monotonic()
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "recommendations_daily", DS, "--conf", json.dumps(conf)],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    wall = time.monotonic() - started
    peaks.stop.set()
    task_of = spark_task_of_job()
    (work / size.name / "dag.log").write_text(done.stdout + done.stderr)
    state, tasks = last_run(airflow_home / "airflow.db")
    return {
        "wall_s": round(wall, 1),
        "ok": state == "success",
        "tasks": tasks,
        "driver_peak_mb": {task_of[j]: round(b / 2**20) for j, b in peaks.driver.items() if j in task_of},
        "workers_peak_mb": {task_of[j]: round(b / 2**20) for j, b in peaks.workers.items() if j in task_of},
        "published": published(url, dataset),
    }


def last_run(db: Path) -> tuple[str, dict[str, float]]:
    """(state, {task: wall seconds}) of the latest daily run, from Airflow's metadata."""
    with sqlite3.connect(db) as con:
        run_id, state = con.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = 'recommendations_daily' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        rows = con.execute(
            "SELECT task_id, (julianday(end_date) - julianday(start_date)) * 86400 FROM task_instance "
            "WHERE dag_id = 'recommendations_daily' AND run_id = ?",
            (run_id,),
        ).fetchall()
    return state, {task: round(seconds, 1) for task, seconds in rows if seconds is not None}


def ensure_database(url: str) -> None:
    """CREATE DATABASE for a MySQL URL (the DAG's publish step migrates the tables itself)."""
    from sqlalchemy import create_engine, make_url, text

    parsed = make_url(url)
    if not parsed.drivername.startswith("mysql") or not parsed.database:
        return
    engine = create_engine(parsed.set(database=""))
    with engine.begin() as con:
        con.execute(text(f"CREATE DATABASE IF NOT EXISTS `{parsed.database}`"))
    engine.dispose()


def published(url: str, dataset: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as con:
        rows = con.execute(
            text("SELECT COUNT(*) FROM recommendations WHERE dataset = :d"), {"d": dataset}
        ).scalar()
        short = con.execute(
            text(
                "SELECT COUNT(*) FROM users u LEFT JOIN (SELECT user_id, COUNT(*) n FROM recommendations "
                "WHERE dataset = :d GROUP BY user_id) r ON r.user_id = u.user_id "
                "WHERE u.dataset = :d AND u.n_interactions > 0 AND COALESCE(r.n, 0) < :k"
            ),
            {"d": dataset, "k": Settings().top_k},  # the runs use default Params
        ).scalar()
    engine.dispose()
    return {"recommendations": rows, "users_short_of_top_k": short}


def slopes(results: dict[str, dict], sizes: list[Size]) -> dict[str, dict[str, float]]:
    """Per task, log(t2 / t1) / log(n2 / n1) between consecutive MovieLens sizes."""
    ml = [s for s in sizes if s.source == "movielens" and s.name in results]
    out: dict[str, dict[str, float]] = {}
    for small, large in zip(ml, ml[1:], strict=False):
        a, b = results[small.name]["tasks"], results[large.name]["tasks"]
        out[f"{small.name}->{large.name}"] = {
            task: round(math.log(b[task] / a[task]) / math.log(large.rows / small.rows), 2)
            for task in a
            if task in b and a[task] > 0 and b[task] > 0
        }
    return out


# ----------------------------------------------------------------------------- ALS side by side

ALS_RANK, ALS_REG, ALS_ALPHA = 64, 0.1, 1.0
# A forced Java BLAS: netlib dlopens this name instead of libblas.so.3, fails, and falls back.
JAVA_BLAS = "-Ddev.ludovic.netlib.blas.nativeLib=librecflow-no-blas.so"


def als_seconds_per_iteration(u_data: Path, iterations: int, repeats: int, work: Path) -> dict:
    """Seconds per ALS iteration on u_data's matrix: Spark (native and Java BLAS) and implicit
    (conjugate gradient, its default, and Cholesky, the solve Spark does), each in its own
    process, (fit of 1 + N - fit of 1) / N; the median of `repeats` rounds, engines taking turns."""
    engines = ("spark-native-blas", "spark-java-blas", "implicit-cg", "implicit-cholesky")
    rounds: dict[str, list[dict]] = {engine: [] for engine in engines}
    for _ in range(repeats):
        for engine in engines:
            done = subprocess.run(
                [sys.executable, __file__, "--als-worker", engine, "--als-data", str(u_data),
                 "--als-iterations", str(iterations), "--work", str(work)],
                capture_output=True, text=True,
            )  # fmt: skip
            (work / f"als-{engine}.log").write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                raise SystemExit(f"ALS worker {engine} failed; see {work / f'als-{engine}.log'}")
            rounds[engine].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        engine: runs[-1]
        | {
            "s_per_iter": statistics.median(r["s_per_iter"] for r in runs),
            "rounds_s_per_iter": [r["s_per_iter"] for r in runs],
        }  # fmt: skip
        for engine, runs in rounds.items()
    }


def _als_worker(engine: str, u_data: Path, iterations: int, work: Path) -> dict:
    if engine.startswith("spark"):
        return _spark_als(engine == "spark-java-blas", u_data, iterations, work)
    return _implicit_als(engine == "implicit-cg", u_data, iterations)


def _spark_als(java_blas: bool, u_data: Path, iterations: int, work: Path) -> dict:
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    from recflow.models.als import blocks

    builder = SparkSession.builder.master("local[2]").config("spark.driver.memory", driver_memory())
    if java_blas:
        builder = builder.config("spark.driver.extraJavaOptions", JAVA_BLAS)
    spark = builder.getOrCreate()
    spark.sparkContext.setCheckpointDir(str(work / "checkpoints"))
    frame = (
        spark.read.csv(str(u_data), sep="\t", schema="user INT, item INT, rating FLOAT, ts LONG")
        .drop("ts")
        .cache()
    )
    rows = frame.count()
    times = {}
    n_blocks = blocks(spark)  # as the DAG's fits (recflow.models.als)
    for n in (1, 1 + iterations):
        als = ALS(rank=ALS_RANK, maxIter=n, regParam=ALS_REG, alpha=ALS_ALPHA, implicitPrefs=True,
                  userCol="user", itemCol="item", ratingCol="rating", checkpointInterval=5, seed=42,
                  numUserBlocks=n_blocks, numItemBlocks=n_blocks)  # fmt: skip
        started = time.perf_counter()
        model = als.fit(frame)
        model.userFactors.count()  # the factors are lazy; make the last iteration happen
        times[n] = time.perf_counter() - started
    blas = spark.sparkContext._jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getName()
    spark.stop()
    return {"rows": rows, "fit_1_s": round(times[1], 2), "fit_n_s": round(times[1 + iterations], 2),
            "s_per_iter": round((times[1 + iterations] - times[1]) / iterations, 3), "blas": blas}  # fmt: skip


def _implicit_als(use_cg: bool, u_data: Path, iterations: int) -> dict:
    import numpy as np
    import pandas as pd
    from implicit.cpu.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix
    from threadpoolctl import threadpool_limits

    ratings = pd.read_csv(u_data, sep="\t", header=None, usecols=[0, 1, 2], dtype=np.int32)
    user, item, value = (ratings[c].to_numpy() for c in (0, 1, 2))
    matrix = csr_matrix((value.astype(np.float32), (user, item)), shape=(user.max() + 1, item.max() + 1))
    times = {}
    with threadpool_limits(1, "blas"):  # implicit's own threads, as its docs ask
        for n in (1, 1 + iterations):
            model = AlternatingLeastSquares(factors=ALS_RANK, regularization=ALS_REG, alpha=ALS_ALPHA,
                                            iterations=n, use_cg=use_cg, num_threads=2, random_state=42)  # fmt: skip
            started = time.perf_counter()
            model.fit(matrix, show_progress=False)
            times[n] = time.perf_counter() - started
    return {"rows": int(matrix.nnz), "fit_1_s": round(times[1], 2), "fit_n_s": round(times[1 + iterations], 2),
            "s_per_iter": round((times[1 + iterations] - times[1]) / iterations, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="ml-1m,ml-5m,ml-20m,shop-20m")
    parser.add_argument("--url", default="mysql+pymysql://root@127.0.0.1:3306/recflow_scale")
    parser.add_argument("--work", type=Path, default=PROJECT / "data" / "benchmarks" / "scale")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--dag", action=argparse.BooleanOptionalAction, default=True,
                        help="run the daily DAG per size (--no-dag: only generate, e.g. for --als)")  # fmt: skip
    parser.add_argument("--als", action="store_true", help="Spark ALS beside implicit on the largest size")
    parser.add_argument("--als-iterations", type=int, default=5)
    parser.add_argument("--als-worker", help=argparse.SUPPRESS)
    parser.add_argument("--als-data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.als_worker:
        print(json.dumps(_als_worker(args.als_worker, args.als_data, args.als_iterations, args.work)))
        return
    sizes = [SIZES[name] for name in args.sizes.split(",")]
    ensure_database(args.url)
    results: dict[str, dict] = {}
    for size in sizes:
        inputs = args.work / size.name / "inputs"
        counts = generate(size, inputs)
        if not args.dag:
            continue
        runs = [run_dag(size, inputs, args.work, args.url) for _ in range(args.repeats)]
        tasks = {
            t: statistics.median(r["tasks"][t] for r in runs if t in r["tasks"]) for t in runs[0]["tasks"]
        }
        results[size.name] = runs[-1] | {"tasks": tasks, "generated": counts}
        print(f"{size.name}: {counts} -> {results[size.name]['wall_s']} s, {results[size.name]['published']}")
        for task, seconds in sorted(tasks.items(), key=lambda kv: -kv[1]):
            print(
                f"  {task:<28} {seconds:>8.1f} s  driver {results[size.name]['driver_peak_mb'].get(task, '-')} MB"
                f"  workers {results[size.name]['workers_peak_mb'].get(task, '-')} MB"
            )
    als = {}
    if args.als:
        largest = max((s for s in sizes if s.source == "movielens"), key=lambda s: s.rows)
        als = als_seconds_per_iteration(
            args.work / largest.name / "inputs" / "u.data", args.als_iterations, args.repeats, args.work
        )
        print(f"ALS rank {ALS_RANK}, implicit, 2 cores, on {largest.name}: seconds per iteration")
        for engine, figures in als.items():
            print(f"  {engine:<20} {figures['s_per_iter']:>8.2f}  (fit 1: {figures['fit_1_s']} s)")
    print(json.dumps({"sizes": results, "slopes": slopes(results, sizes), "als": als}))


if __name__ == "__main__":
    main()
