"""recommendations_daily: MovieLens-style interactions -> validated, cleaned -> ALS -> warehouse.

Wiring only: every step lives in spark_jobs/ (Spark) or recflow/ (Python). Parsing this file
imports nothing heavier than the operators.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param, task
from recflow_callbacks import DURATION_KEY, record_duration

SPARK_JOBS = Path(__file__).resolve().parents[1] / "spark_jobs"

# task_id -> spark_jobs/<script>.py, in pipeline order.
SPARK_TASKS = {
    "ingest_raw_files": "ingest",
    "validate_raw_data": "validate_raw",
    "clean_interactions": "clean",
    "validate_clean_data": "validate_clean",
    "train_als": "train",
    "evaluate_models": "evaluate",
    "generate_recommendations": "recommend",
}

PARAMS = {
    "source": Param("movielens", type="string", enum=["movielens"], title="Source",
                    description="Kind of business data: the layout family to read."),
    "path": Param(None, type=["null", "string"], title="Path",
                  description="Folder holding a MovieLens layout (100K, 1M or latest), or a data set name "
                              "to download (ml-100k, ml-1m, ml-latest-small). Empty: the generated sample."),
    "dataset": Param(None, type=["null", "string"], title="Dataset name", maxLength=64,
                     description="Name the results are published under (default: the source). Use one per "
                                 "id space, e.g. ml-100k and ml-1m."),
    "top_k": Param(10, type="integer", minimum=1, maximum=500, title="Top K",
                   description="Recommendations per user."),
    "feedback": Param("implicit", type="string", enum=["implicit", "explicit"], title="Feedback",
                      description="implicit: ALS on ratings as confidence (best ranking); explicit: ALS on rating values."),
    "rank": Param(50, type="integer", minimum=1, maximum=500, title="ALS rank", description="Latent factors."),
    "reg_param": Param(1.0, type="number", minimum=0, title="ALS regParam", description="L2 regularisation."),
    "alpha": Param(10.0, type="number", minimum=0, title="ALS alpha", description="Implicit confidence scale."),
    "max_iter": Param(10, type="integer", minimum=1, maximum=100, title="ALS maxIter",
                      description="Alternating iterations."),
    "rating_rank": Param(10, type="integer", minimum=1, title="Rating model rank",
                         description="Explicit ALS for predicted ratings (RMSE/MAE)."),
    "rating_reg_param": Param(0.1, type="number", minimum=0, title="Rating model regParam",
                              description="Explicit ALS regularisation."),
    "seed": Param(42, type="integer", title="Seed", description="Seeds the split and ALS: same seed, same result."),
    "test_fraction": Param(0.2, type="number", exclusiveMinimum=0, exclusiveMaximum=1, title="Test fraction",
                           description="Share of interactions held out for evaluation."),
    "max_bad_row_fraction": Param(0.01, type="number", minimum=0, maximum=1, title="Max bad row fraction",
                                  description="Above this share of bad rows a file is rejected; below, bad rows are quarantined."),
}  # fmt: skip

DEFAULT_ARGS = {
    "owner": "recflow",
    "retries": int(os.environ.get("RECFLOW_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=2),
}

with DAG(
    dag_id="recommendations_daily",
    description="Daily ALS recommendations: ingest, validate, clean, train, evaluate, recommend, publish",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["recflow", "recommendations", "als"],
    doc_md=__doc__,
) as dag:
    spark_steps = [
        SparkSubmitOperator(
            task_id=task_id,
            conn_id="spark_default",
            application=str(SPARK_JOBS / f"{script}.py"),
            name=f"recflow-{script}",
            application_args=["--ds", "{{ ds }}", "--params", "{{ params | tojson }}"],
            post_execute=record_duration,
        )
        for task_id, script in SPARK_TASKS.items()
    ]

    @task(post_execute=record_duration)
    def publish_recommendations(params=None, ds=None, run_id=None, ti=None) -> dict:
        """Load recommendations, items, metrics and data quality into the warehouse atomically."""
        from recflow.config import Settings
        from recflow.publish_run import publish_run

        durations = ti.xcom_pull(task_ids=list(SPARK_TASKS), key=DURATION_KEY)
        timings = dict(zip(SPARK_TASKS, durations, strict=True))
        return publish_run(Settings.from_params(params), ds, run_id, timings)

    for upstream, downstream in zip(spark_steps, spark_steps[1:], strict=False):
        upstream >> downstream
    spark_steps[-1] >> publish_recommendations()
