"""recommendations_daily: ratings, clickstreams or TV viewing -> validated, cleaned -> ALS -> warehouse.

Wiring only: every step lives in spark_jobs/ (Spark) or recflow/ (Python). Parsing this file
imports nothing heavier than the operators.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param, chain, task
from recflow_assets import PUBLISHED_RECOMMENDATIONS
from recflow_callbacks import (
    DURATION_KEY,
    ensure_spark_connect,
    record_duration,
    record_failure,
    record_retry,
)

from recflow.config import (
    DATASET_NAME_PATTERN,
    DEFAULT_EVENT_WEIGHTS,
    MAX_PATH_CHARS,
    bounds_schema,
    event_weights_schema,
    search_space_schema,
    spark_backend,
)
from recflow.resources import driver_memory

SPARK_JOBS = Path(__file__).resolve().parents[1] / "spark_jobs"

# task_id -> spark_jobs/<script>.py. The data chain (ingest .. validate_clean_data, whose facts
# publish_data_quality records), then two branches on the clean data: the model chain and the
# analytics aggregates.
DATA_TASKS = {
    "ingest_raw_files": "ingest",
    "validate_raw_data": "validate_raw",
    "clean_interactions": "clean",
    "validate_clean_data": "validate_clean",
}
MODEL_TASKS = {
    "train_als": "train",
    "evaluate_models": "evaluate",
    "generate_recommendations": "recommend",
}
ANALYTICS_TASKS = {"build_analytics": "analytics"}
SPARK_TASKS = DATA_TASKS | MODEL_TASKS | ANALYTICS_TASKS
# connect (the default): each Spark task is a client session on the warm Spark Connect server;
# submit: a spark-submit per task, for a cluster. Configuration, not code (recflow.config).
SPARK_BACKEND = spark_backend()

PARAMS = {
    "source": Param("movielens", type="string", enum=["movielens", "ecommerce", "tv"], title="Source",
                    description="Kind of business data: movielens (ratings), ecommerce (REES46 or Retailrocket "
                                "events), tv (viewing logs with an optional channel catalogue)."),
    "path": Param(None, type=["null", "string"], title="Path", minLength=1, maxLength=MAX_PATH_CHARS,
                  description="Folder (or, for ecommerce and tv, one file) in one of the source's layouts, inside "
                              "the deployment's input folders (RECFLOW_INPUT_ROOTS; relative: to the first), or a "
                              "MovieLens set to download (ml-100k, ml-1m, ml-latest-small). Empty: the generated sample."),
    "dataset": Param(None, type=["null", "string"], title="Dataset name", pattern=DATASET_NAME_PATTERN,
                     minLength=1, maxLength=64,
                     description="Name the results are published under (default: the source). Use one per "
                                 "id space, e.g. ml-100k and ml-1m: letters, digits, '-' and '_'."),
    "top_k": Param(10, type="integer", **bounds_schema("top_k"), title="Top K",
                   description="Recommendations per user."),
    "feedback": Param("implicit", type="string", enum=["implicit", "explicit"], title="Feedback",
                      description="implicit: ALS on ratings as confidence (best ranking); explicit: ALS on rating values."),
    "rank": Param(64, type="integer", **bounds_schema("rank"), title="ALS rank", description="Latent factors."),
    "reg_param": Param(0.3, type="number", **bounds_schema("reg_param"), title="ALS regParam", description="L2 regularisation."),
    "alpha": Param(2.0, type="number", **bounds_schema("alpha"), title="ALS alpha", description="Implicit confidence scale."),
    "max_iter": Param(15, type="integer", **bounds_schema("max_iter"), title="ALS maxIter",
                      description="Alternating iterations."),
    "blend": Param(0.6, type="number", **bounds_schema("blend"), title="Popularity blend",
                   description="Weight of log-scaled popularity added to the ALS score."),
    "rating_rank": Param(20, type="integer", **bounds_schema("rating_rank"), title="Rating model rank",
                         description="Explicit ALS for predicted ratings (RMSE/MAE), blended with the biases."),
    "rating_reg_param": Param(0.1, type="number", **bounds_schema("rating_reg_param"), title="Rating model regParam",
                              description="Explicit ALS regularisation."),
    "rating_max_iter": Param(15, type="integer", **bounds_schema("rating_max_iter"), title="Rating model maxIter",
                             description="Explicit ALS iterations."),
    "seed": Param(42, type="integer", **bounds_schema("seed"), title="Seed", description="Seeds the split, the search and ALS: same seed, same result."),
    "split": Param("random", type="string", enum=["random", "stratified", "temporal"], title="Split",
                   description="random pairs; stratified: a fraction of each user's rows; temporal: each "
                               "user's last N rows, or every row from a date on."),
    "test_fraction": Param(0.2, type="number", **bounds_schema("test_fraction"), title="Test fraction",
                           description="Random and stratified splits: share held out for evaluation."),
    "test_last_n": Param(1, type="integer", **bounds_schema("test_last_n"), title="Temporal: last N",
                         description="Temporal split: each user's last N rows are the test set."),
    "test_since": Param(None, type=["null", "string"], format="date", title="Temporal: test from",
                        description="Temporal split: every row from this date (UTC) on is test; overrides last N."),
    "tuning_trials": Param(6, type="integer", **bounds_schema("tuning_trials"), title="Search trials",
                           description="Seeded hyperparameter trials per model on a validation split; 0: no search."),
    "search_space": Param({}, type="object", **search_space_schema(), title="Search space",
                          description='Param name -> candidate values, e.g. {"rank": [32, 64], "alpha": [1, 5]}; '
                                      "names left out use the built-in grid."),
    "tuning_sample_users": Param(20_000, type="integer", **bounds_schema("tuning_sample_users"),
                                 title="Search sample (users)",
                                 description="The searches score a seeded sample of about this many users; "
                                             "the chosen settings are fitted on everyone. 0: every user."),
    "primary_metric": Param("ndcg", type="string", enum=["ndcg", "precision", "recall", "map", "rmse"],
                            title="Primary metric", description="What the champion/challenger gate compares (at Top K)."),
    "champion_tolerance": Param(0.01, type="number", **bounds_schema("champion_tolerance"), title="Champion tolerance",
                                description="A new model may be this much worse than the champion and still publish."),
    "force_publish": Param(False, type="boolean", title="Force publish",
                           description="Publish the new model even if the gate would keep the champion."),
    "max_bad_row_fraction": Param(0.01, type="number", **bounds_schema("max_bad_row_fraction"), title="Max bad row fraction",
                                  description="Above this share of bad rows a file is rejected; below, bad rows are quarantined."),
    "source_time_zone": Param("UTC", type="string", title="Source time zone",
                              description="IANA zone of timestamps written without one (TV program dates)."),
    "max_events_per_user_day": Param(1000, type="integer", **bounds_schema("max_events_per_user_day"), title="Bot limit",
                                     description="Event sources: a user with more events in a day is a bot; "
                                                 "those rows are quarantined."),
    "event_weights": Param(dict(DEFAULT_EVENT_WEIGHTS), type="object", **event_weights_schema(),
                           title="Event weights", description="E-commerce implicit feedback per event type; "
                           "a partial object overrides only the types it names."),
    "watch_time_cap_s": Param(3600, type="integer", **bounds_schema("watch_time_cap_s"), title="Watch time cap (s)",
                              description="TV: seconds per program hour beyond this count as this."),
    "min_user_interactions": Param(1, type="integer", **bounds_schema("min_user_interactions"), title="Min user support",
                                   description="Users with fewer distinct items are left out of training."),
    "min_item_interactions": Param(1, type="integer", **bounds_schema("min_item_interactions"), title="Min item support",
                                   description="Items with fewer distinct users are left out of training."),
    "cold_max_interactions": Param(5, type="integer", **bounds_schema("cold_max_interactions"), title="Cold user: max items",
                                   description="Users with at most this many items are cold: the content model "
                                               "carries most of their hybrid."),
    "heavy_min_interactions": Param(100, type="integer", **bounds_schema("heavy_min_interactions"), title="Heavy user: min items",
                                    description="Users with at least this many items are heavy; in between, warm."),
    "cold_user_fraction": Param(0.1, type="number", **bounds_schema("cold_user_fraction"), title="Simulated cold users",
                                description="Evaluation: share of users cut to their first few training items, "
                                            "so the cold tier is measured."),
    "hybrid_weight": Param(None, type=["null", "number"], **bounds_schema("hybrid_weight"), title="Hybrid content weight",
                           description="Weight of the content score in the ALS + content hybrid (0: ALS alone, "
                                       "1: content alone). Empty: tuned per tier on validation."),
    "max_per_category": Param(0, type="integer", **bounds_schema("max_per_category"), title="Diversity cap",
                              description="At most this many items of one category (genre, category_code, "
                                          "channel genre) per list; 0: no cap."),
    "available_within_days": Param(None, type=["null", "integer"], **bounds_schema("available_within_days"), title="Availability window (days)",
                                   description="Recommend only items with an interaction in the data's last N "
                                               "days. Empty: every item is available."),
    "max_row_count_change": Param(0.5, type="number", **bounds_schema("max_row_count_change"), title="Max row count change",
                                  description="Warn when clean rows move more than this share from the previous run."),
    "max_event_mix_change": Param(0.1, type="number", **bounds_schema("max_event_mix_change"), title="Max event mix change",
                                  description="Warn when an event type's share moves more than this from the previous run."),
}  # fmt: skip

DEFAULT_ARGS = {
    "owner": "recflow",
    "retries": int(os.environ.get("RECFLOW_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=2),
    # Every failed or retried attempt lands in the warehouse's pipeline_run_log, with the job's
    # own error message, where analysts and on-call people look first.
    "on_failure_callback": record_failure,
    "on_retry_callback": record_retry,
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
    user_defined_macros={"driver_memory": driver_memory},
) as dag:

    def spark_task(task_id: str, script: str):
        """spark_jobs/<script>.py's job, on the backend the deployment chose."""
        if SPARK_BACKEND == "submit":
            return SparkSubmitOperator(
                task_id=task_id,
                conn_id="spark_default",
                application=str(SPARK_JOBS / f"{script}.py"),
                name=f"recflow-{script}",
                application_args=["--ds", "{{ ds }}", "--params", "{{ params | tojson }}"],
                # Rendered where the task runs, from that machine's memory (recflow.resources).
                conf={"spark.driver.memory": "{{ driver_memory() }}"},
                post_execute=record_duration,
            )

        # The provider opens the session from the connection, hands it in as `spark` and stops
        # it after; pre_execute first makes sure the server is there (or says why not).
        @task.pyspark(
            task_id=task_id,
            conn_id="spark_connect_default",
            pre_execute=ensure_spark_connect,
            post_execute=record_duration,
        )
        def run_job(spark=None, params=None, ds=None) -> None:
            from recflow.jobs import run_on_session

            run_on_session(spark, script, params, ds)

        return run_job().operator

    spark = {task_id: spark_task(task_id, script) for task_id, script in SPARK_TASKS.items()}

    @task
    def migrate_warehouse(params=None) -> dict:
        """Apply the warehouse's pending DDL (sql/<dialect>/NNN_*.sql) before any work, so an
        unreachable warehouse or a broken migration fails the run in seconds, not after training."""
        from recflow.config import Settings
        from recflow.publish_run import migrate_warehouse

        return migrate_warehouse(Settings.from_params(params))

    @task
    def export_blocklist(params=None, ds=None) -> dict:
        """Copy the warehouse's recommendation_blocklist for the dataset into the run's lake
        partition, where the recommend job reads it: Spark jobs never connect to the warehouse,
        and the run keeps the list it applied."""
        from recflow.config import Settings
        from recflow.warehouse.blocklist import export_blocklist

        return export_blocklist(Settings.from_params(params), ds)

    # Runs whatever happened upstream: when validation stops the run, its results are the
    # evidence an analyst needs, and they reach the warehouse without any recommendations.
    @task(trigger_rule="all_done")
    def publish_data_quality(params=None, ds=None) -> dict:
        """Record validation results, row reconciliation and quarantine summary in the warehouse."""
        from recflow.config import Settings
        from recflow.publish_run import publish_quality_run

        return publish_quality_run(Settings.from_params(params), ds)

    @task(post_execute=record_duration, outlets=[PUBLISHED_RECOMMENDATIONS])
    def publish_recommendations(params=None, ds=None, run_id=None, ti=None, outlet_events=None) -> dict:
        """Load recommendations, items, analytics, metrics and data quality into the warehouse
        atomically, then tell the Asset's consumers which dataset changed."""
        from recflow.config import Settings
        from recflow.publish_run import publish_run
        from recflow.warehouse.run_log import AttemptKey

        durations = ti.xcom_pull(task_ids=list(SPARK_TASKS), key=DURATION_KEY)
        timings = dict(zip(SPARK_TASKS, durations, strict=True))
        # The attempt marks itself in the warehouse run log while it publishes: a kill leaves the mark.
        attempt = AttemptKey(ti.dag_id, run_id, ti.task_id, int(ti.try_number))
        summary = publish_run(Settings.from_params(params), ds, run_id, timings, attempt)
        outlet_events[PUBLISHED_RECOMMENDATIONS].extra = {
            key: summary[key] for key in ("dataset", "run_date", "model_version", "status")
        }
        return summary

    @task
    def write_run_report(params=None, ds=None) -> str:
        """Write the run's HTML report (charts of the data, the funnel, metric history)."""
        from recflow.config import Settings
        from recflow.report import write_run_report

        return str(write_run_report(Settings.from_params(params), ds))

    data = [spark[task_id] for task_id in DATA_TASKS]
    model = [spark[task_id] for task_id in MODEL_TASKS]
    migrated = migrate_warehouse()
    chain(migrated, *data)
    chain(data[-1], *model)
    blocklist = export_blocklist()
    migrated >> blocklist >> [spark["generate_recommendations"], spark["build_analytics"]]
    data[-1] >> spark["build_analytics"]
    quality = publish_data_quality()
    data >> quality
    [model[-1], spark["build_analytics"], quality] >> publish_recommendations() >> write_run_report()
