"""The DAG parses cleanly, is wired as documented, and its trigger form matches Settings."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "recommendations_daily"
EXPECTED_CHAIN = [
    "ingest_raw_files",
    "validate_raw_data",
    "clean_interactions",
    "validate_clean_data",
    "train_als",
    "evaluate_models",
    "generate_recommendations",
    "publish_recommendations",
]


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert DAG_ID in dagbag.dags


def test_every_dag_has_tags_docs_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.retries >= 1 or os.environ.get("RECFLOW_TASK_RETRIES") == "0", (
                f"{task.task_id} has no retries"
            )
            assert task.execution_timeout is not None, f"{task.task_id} can run forever"


def test_task_graph_is_the_documented_chain(dagbag):
    dag = dagbag.dags[DAG_ID]
    assert sorted(dag.task_ids) == sorted(
        [
            *EXPECTED_CHAIN,
            "migrate_warehouse",
            "build_analytics",
            "publish_data_quality",
            "write_run_report",
            "export_blocklist",
        ]
    )
    for upstream, downstream in zip(EXPECTED_CHAIN[:-1], EXPECTED_CHAIN[1:-1], strict=False):
        extra = {"export_blocklist"} if downstream == "generate_recommendations" else set()
        assert dag.get_task(downstream).upstream_task_ids == {upstream} | extra
    # The warehouse's blocklist reaches the lake before the lists are made.
    assert dag.get_task("export_blocklist").upstream_task_ids == {"migrate_warehouse"}
    # The schema is brought up to date before any work.
    assert dag.get_task(EXPECTED_CHAIN[0]).upstream_task_ids == {"migrate_warehouse"}
    assert dag.get_task("migrate_warehouse").upstream_task_ids == set()
    # The aggregates need only the clean data, so they run beside the model chain.
    # (and the blocklist: blocked items stay out of the cold-start popularity lists).
    assert dag.get_task("build_analytics").upstream_task_ids == {"validate_clean_data", "export_blocklist"}
    # Publishing waits for the lists, the aggregates and the data-quality record; the report for
    # what was published.
    assert dag.get_task("publish_recommendations").upstream_task_ids == {
        "generate_recommendations", "build_analytics", "publish_data_quality",
    }  # fmt: skip
    assert dag.get_task("write_run_report").upstream_task_ids == {"publish_recommendations"}


def test_data_quality_is_recorded_even_when_validation_fails(dagbag):
    task = dagbag.dags[DAG_ID].get_task("publish_data_quality")
    assert task.trigger_rule == "all_done"
    assert task.upstream_task_ids == {
        "ingest_raw_files", "validate_raw_data", "clean_interactions", "validate_clean_data",
    }  # fmt: skip


def test_schedule_and_run_limits(dagbag):
    dag = dagbag.dags[DAG_ID]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.timetable.expression == "0 0 * * *"  # what Airflow 3 makes of "@daily"


SPARK_TASKS = {
    "ingest_raw_files": "ingest", "validate_raw_data": "validate_raw", "clean_interactions": "clean",
    "validate_clean_data": "validate_clean", "train_als": "train", "evaluate_models": "evaluate",
    "generate_recommendations": "recommend", "build_analytics": "analytics",
}  # fmt: skip


def test_spark_tasks_run_on_the_warm_spark_connect_server_by_default(dagbag):
    from airflow.providers.apache.spark.operators.spark_pyspark import PySparkOperator
    from recflow_callbacks import ensure_spark_connect, record_duration

    dag = dagbag.dags[DAG_ID]
    spark_tasks = {t.task_id: t for t in dag.tasks if isinstance(t, PySparkOperator)}
    assert sorted(spark_tasks) == sorted(SPARK_TASKS)
    for task in spark_tasks.values():
        assert task.conn_id == "spark_connect_default"
        # The server is checked (and the project's own started) before the session is opened.
        assert task._pre_execute_hook == ensure_spark_connect and task._post_execute_hook == record_duration
        assert task.op_kwargs == {}  # the job is the task's own, ds and params come from the context


def test_with_the_submit_backend_spark_tasks_use_spark_default_and_pass_ds_and_params(submit_dagbag):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    assert submit_dagbag.import_errors == {}
    dag = submit_dagbag.dags[DAG_ID]
    spark_tasks = [t for t in dag.tasks if isinstance(t, SparkSubmitOperator)]
    assert {t.task_id: Path(t.application).stem for t in spark_tasks} == SPARK_TASKS
    for task in spark_tasks:
        assert task._conn_id == "spark_default"
        assert Path(task.application).is_file(), task.application
        assert task.application_args[:4] == ["--ds", "{{ ds }}", "--params", "{{ params | tojson }}"]


def test_an_unknown_backend_is_an_import_error_that_names_it(parse):
    bag = parse(RECFLOW_SPARK_BACKEND="yarn")
    (error,) = [e for path, e in bag.import_errors.items() if path.endswith("recommendations_daily.py")]
    assert "RECFLOW_SPARK_BACKEND='yarn': expected one of connect, submit" in error


def test_trigger_form_params_match_settings(dagbag):
    """Every Param the UI shows is a Settings field with the same default, so a run triggered
    with the form's defaults behaves like `make demo` without CONF."""
    from recflow.config import Settings

    params = dagbag.dags[DAG_ID].params
    defaults = Settings()
    fields = {f.name for f in dataclasses.fields(Settings)}
    for name in params.keys():
        assert name in fields, f"Param {name} is not a Settings field"
        assert params[name] == getattr(defaults, name), f"Param {name} default differs from Settings"
    # The form's values, as JSON, build valid Settings.
    Settings.from_params(json.loads(json.dumps({name: params[name] for name in params.keys()})))


def test_dag_file_parses_without_heavy_imports():
    """Airflow re-parses DAG files every ~30 s: no Spark, GX or pandas at parse time."""
    code = (
        "import sys, runpy; sys.path.insert(0, 'plugins');"
        "runpy.run_path('dags/recommendations_daily.py');"
        "heavy = [m for m in ('pyspark', 'great_expectations', 'recflow.spark') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    env = dict(os.environ, AIRFLOW__CORE__LOAD_EXAMPLES="False")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), (
        f"heavy modules imported at parse time: {out.stdout}"
    )


def test_every_task_records_its_failures_in_the_run_log(dagbag):
    from recflow_callbacks import record_failure, record_retry

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert record_failure in _callbacks(task.on_failure_callback), f"{dag.dag_id}.{task.task_id}"
            assert record_retry in _callbacks(task.on_retry_callback), f"{dag.dag_id}.{task.task_id}"


def _callbacks(callback) -> list:
    return callback if isinstance(callback, list) else [callback]


def test_publish_updates_the_asset_the_bi_refresh_is_scheduled_on(dagbag):
    from recflow_assets import PUBLISHED_RECOMMENDATIONS

    publish = dagbag.dags[DAG_ID].get_task("publish_recommendations")
    assert publish.outlets == [PUBLISHED_RECOMMENDATIONS]
    refresh = dagbag.dags["recommendations_bi_refresh"]
    assert list(refresh.timetable.asset_condition.objects) == [PUBLISHED_RECOMMENDATIONS]
    assert refresh.get_task("refresh_bi_extracts").upstream_task_ids == {"check_served_sets"}
    # Only the daily DAG writes the Asset: nothing else may wake the refresh.
    writers = [(d.dag_id, t.task_id) for d in dagbag.dags.values() for t in d.tasks if t.outlets]
    assert writers == [(DAG_ID, "publish_recommendations")]


def test_the_trigger_form_explains_every_param(dagbag):
    """The UI builds its trigger form from these schemas: each field needs a title, a
    description and a type; a field with a fixed set of values offers it as a drop-down."""
    params = dagbag.dags[DAG_ID].params
    for name in params.keys():
        param = params.get_param(name)
        assert param.schema.get("title") and param.description and param.schema.get("type"), name
    for name in ("source", "feedback", "split", "primary_metric"):
        assert params.get_param(name).schema["enum"], name
    assert params.get_param("force_publish").schema["type"] == "boolean"
