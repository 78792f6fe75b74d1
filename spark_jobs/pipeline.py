"""The Spark steps of recommendations_daily in DAG order, as functions: for running the chain in
one process (the tests, a notebook) the way the DAG runs it task by task. The DAG itself names
the scripts instead, so that parsing it imports no Spark."""

from __future__ import annotations

from recflow.clean import clean
from recflow.ingest import ingest
from spark_jobs.analytics import build_analytics
from spark_jobs.evaluate import evaluate
from spark_jobs.recommend import recommend
from spark_jobs.train import train
from spark_jobs.validate_clean import validate_clean
from spark_jobs.validate_raw import validate_raw

STEPS = {
    "ingest": ingest,
    "validate_raw": validate_raw,
    "clean": clean,
    "validate_clean": validate_clean,
    "train": train,
    "evaluate": evaluate,
    "recommend": recommend,
    "analytics": build_analytics,  # needs only the clean data; the DAG runs it beside the model chain
}
THROUGH_VALIDATION = ("ingest", "validate_raw", "clean", "validate_clean")
