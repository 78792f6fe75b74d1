"""The shared shape of every Spark job: arguments in, one step, small facts out."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from recflow.config import Settings
from recflow.facts import write_facts

Step = Callable[..., dict]


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--ds", required=True, help="logical date YYYY-MM-DD: the partition to write")
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
    finally:
        spark.stop()
