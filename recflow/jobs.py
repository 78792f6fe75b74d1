"""The shared shape of every Spark job: arguments in, one step, small facts out."""

from __future__ import annotations

import argparse
import datetime
import importlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from recflow.config import Settings, check_date
from recflow.facts import read_facts, write_facts, write_facts_file

Step = Callable[..., dict]


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--ds", required=True, type=check_date, help="logical date YYYY-MM-DD: the partition to write"
    )
    parser.add_argument(
        "--params", default="{}", help="the run's Params as JSON (recflow.config.Settings fields)"
    )
    return parser.parse_args(argv)


def run_step(spark, name: str, step: Step, settings: Settings, ds: str) -> dict:
    """`step(spark, settings, ds) -> facts`, its facts kept in the lake for later tasks."""
    facts = step(spark, settings, ds)
    write_facts(spark, settings.lake_path("facts", name, ds), facts)
    return facts


@dataclass(frozen=True)
class Job:
    """One Spark step of the DAG as a job: `step(spark, settings, ds) -> facts`, and
    `check(facts)`, which runs after the facts are written, so that a step failing its check (a
    failed validation, say) still leaves the evidence behind for the run report.

    Two ways in, the same work: `main()` is the script's entry point under spark-submit (it makes
    the session from the launcher's settings), `run()` takes a session someone else made (the
    Spark Connect task, recflow.jobs.run_on_session)."""

    name: str
    step: Step
    description: str
    check: Callable[[dict], None] | None = None

    def run(self, spark, settings: Settings, ds: str) -> dict:
        # job_seconds: the step's own time, from a ready session to its facts. What the task
        # spends beyond it is overhead (benchmarks/spark_overhead.py): a spark-submit's JVM and
        # session start, a Connect session, Airflow's own.
        started = time.monotonic()

        def timed(*step_args) -> dict:
            return self.step(*step_args) | {"job_seconds": round(time.monotonic() - started, 3)}

        try:
            facts = run_step(spark, self.name, timed, settings, ds)
            # Validation results are long; the log shows their tally, the lake keeps them whole.
            shown = {k: (f"{len(v)} results" if k == "results" else v) for k, v in facts.items()}
            logging.getLogger(self.name).info("facts: %s", shown)
            if self.check is not None:
                self.check(facts)
            return facts
        except Exception as error:
            record_failure(settings, self.name, ds, error)
            raise

    def main(self, argv: list[str] | None = None) -> dict:
        """spark-submit spark_jobs/<name>.py --ds YYYY-MM-DD --params JSON"""
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
        )
        args = parse_args(self.description, argv)
        settings = Settings.from_params(args.params)
        from recflow.spark import get_spark  # after argument errors, which need no JVM

        spark = get_spark(f"recflow-{self.name}-{settings.dataset_name}-{args.ds}", settings.checkpoint_dir)
        try:
            return self.run(spark, settings, args.ds)
        finally:
            spark.stop()


def job(script: str) -> Job:
    """The Job of spark_jobs/<script>.py (its module-level JOB)."""
    return importlib.import_module(f"spark_jobs.{script}").JOB


def run_on_session(spark, script: str, params, ds: str) -> None:
    """The DAG's Spark Connect task (RECFLOW_SPARK_BACKEND=connect): spark_jobs/<script>.py's
    job on the session the provider's @task.pyspark opened on the warm server. The session gets
    the run-time settings a spark-submit job gets from recflow.spark.DEFAULTS; what only a
    server's start can set (memory, master, checkpoint folder) comes from server_conf."""
    from recflow.spark import session_conf

    settings = Settings.from_params(dict(params or {}))
    check_date(ds)
    for key, value in session_conf().items():
        spark.conf.set(key, value)
    logging.getLogger(script).info(
        "running %s over Spark Connect (session %s)", script, getattr(spark, "session_id", "?")
    )
    # Facts stay in the lake, where the later tasks read them; XCom would carry whole
    # validation results through the metadata database.
    job(script).run(spark, settings, ds)


FAILURES = "failures"


def record_failure(settings: Settings, name: str, ds: str, error: BaseException) -> None:
    """Leave the job's own error in the lake (``failures/<dataset>/<job>/dt=<ds>``).

    spark-submit reports only an exit code to Airflow; this message is the one that names the
    file, line and column, and the DAG's failure callback copies it into the warehouse run log."""
    try:
        write_facts_file(
            settings.lake_path(FAILURES, name, ds),
            {
                "job": name,
                "error_type": type(error).__name__,
                "error": str(error),
                "failed_at": datetime.datetime.now(datetime.UTC).isoformat(),
            },
        )
    except Exception:  # the original error matters more than this record of it
        logging.getLogger(name).exception("could not record the failure in the lake")


def read_failure(settings: Settings, name: str, ds: str, since: datetime.datetime) -> dict | None:
    """The error ``record_failure`` left for the job and date at or after ``since``, else None
    (an older file belongs to an earlier attempt)."""
    try:
        failure = read_facts(settings.lake_path(FAILURES, name, ds))
    except (FileNotFoundError, OSError, ValueError):
        return None
    if datetime.datetime.fromisoformat(failure["failed_at"]) < since:
        return None
    return failure
