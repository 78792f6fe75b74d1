"""The shared shape of every Spark job: arguments in, one step, small facts out."""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import time
from collections.abc import Callable

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


def run_job(
    name: str,
    step: Step,
    description: str,
    check: Callable[[dict], None] | None = None,
    argv: list[str] | None = None,
) -> dict:
    """Run `step(spark, settings, ds) -> facts` and keep its facts in the lake for later tasks.

    `check(facts)` runs after the facts are written, so a step that fails its check (a failed
    validation, say) still leaves the evidence behind for the run report."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    args = parse_args(description, argv)
    settings = Settings.from_params(args.params)
    from recflow.spark import get_spark  # after argument errors, which need no JVM

    started = time.monotonic()
    spark = get_spark(f"recflow-{name}-{settings.dataset_name}-{args.ds}", settings.checkpoint_dir)
    try:

        def timed(*step_args) -> dict:
            return step(*step_args) | {"job_seconds": round(time.monotonic() - started, 3)}

        facts = run_step(spark, name, timed, settings, args.ds)
        # Validation results are long; the log shows their tally, the lake keeps them whole.
        shown = {k: (f"{len(v)} results" if k == "results" else v) for k, v in facts.items()}
        logging.getLogger(name).info("facts: %s", shown)
        if check is not None:
            check(facts)
        return facts
    except Exception as error:
        record_failure(settings, name, args.ds, error)
        raise
    finally:
        spark.stop()


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
