"""The publish task: gather what the Spark tasks left in the lake and publish it in one go.

Runs in the Airflow worker without Spark: Parquet through pyarrow, facts as JSON, the warehouse
through SQLAlchemy.
"""

from __future__ import annotations

import datetime
import logging

import pyarrow as pa
import pyarrow.compute as pc

from recflow import registry
from recflow.config import PROJECT_ROOT, Settings
from recflow.facts import read_facts, read_lake_table
from recflow.warehouse.engine import make_engine
from recflow.warehouse.migrate import migrate
from recflow.warehouse.publish import ANALYTICS, PublishBundle, QualityBundle, publish, publish_quality
from recflow.warehouse.run_log import AttemptKey

log = logging.getLogger(__name__)

SQL_ROOT = PROJECT_ROOT / "sql"
GATE_KEYS = ("decision", "forced", "primary_metric", "challenger_value", "champion_version",
             "champion_value", "tolerance", "reason")  # fmt: skip
RECOMMENDATION_COLUMNS = ["user_id", "item_id", "rank", "score", "source", "reason", "user_tier"]
SIMILAR_ITEM_COLUMNS = ["item_id", "rank", "similar_item_id", "score"]
QUALITY_COLUMNS = (
    "suite", "expectation_key", "expectation_type", "column_name", "severity", "success",
    "observed_value", "unexpected_count", "element_count",
)  # fmt: skip


def build_bundle(
    settings: Settings, ds: str, dag_run_id: str, task_timings: dict[str, float]
) -> PublishBundle:
    facts = {
        name: read_facts(settings.lake_path("facts", name, ds)) for name in ("train", "evaluate", "recommend")
    }
    quality = quality_bundle(settings, ds, required=True)
    decision = facts["evaluate"]["decision"]
    return PublishBundle(
        dataset=settings.dataset_name,
        run_date=datetime.date.fromisoformat(ds),
        dag_run_id=dag_run_id,
        model_version=settings.model_version(ds),
        params=settings.model_params()
        | {"source": settings.source, "path": settings.path, "top_k": settings.top_k},
        metrics=facts["evaluate"]["metrics"],
        task_timings=task_timings | search_timings(facts["train"]),
        counts=facts["train"]["counts"],
        recommendations=read_lake_table(
            settings.lake_path("recs", "recommendations", ds), RECOMMENDATION_COLUMNS
        ),
        items=catalogue(settings, ds),
        quality_results=quality.quality_results,
        reconciliation=quality.reconciliation,
        quarantine=quality.quarantine,
        promote=decision["promote"],
        registry=registry_entry(settings, ds, facts["train"], facts["evaluate"]),
        analytics={name: read_lake_table(settings.lake_path("analytics", name, ds)) for name in ANALYTICS},
        similar_items=read_lake_table(settings.lake_path("recs", "similar_items", ds), SIMILAR_ITEM_COLUMNS),
        rule_log=required_fact(settings, ds, facts, "recommend", "rules"),
        tier_metrics=required_fact(settings, ds, facts, "evaluate", "tier_metrics"),
    )


def required_fact(settings: Settings, ds: str, facts: dict[str, dict], step: str, key: str):
    """``facts[step][key]``; a KeyError naming the facts file when the step did not write it."""
    try:
        return facts[step][key]
    except KeyError:
        raise KeyError(
            f"the {step} facts at {settings.lake_path('facts', step, ds)} have no {key!r}: "
            f"was the {step} step run by an older version?"
        ) from None


def catalogue(settings: Settings, ds: str) -> pa.Table:
    """The clean items with the warehouse's attribute columns: e-commerce keeps its
    category_code, brand and price; a TV channel's genre is its category; MovieLens has genres only."""
    items = read_lake_table(settings.lake_path("clean", "items", ds))
    n = items.num_rows

    def column(name: str, kind: pa.DataType) -> pa.Array | pa.ChunkedArray:
        return items.column(name).cast(kind) if name in items.column_names else pa.nulls(n, kind)

    category = column("category_code", pa.string())
    if settings.source == "tv":
        category = column("genres", pa.string())
    return pa.table(
        {
            "item_id": column("item_id", pa.string()),
            "title": column("title", pa.string()),
            "genres": column("genres", pa.string()),
            "category": category,
            "brand": column("brand", pa.string()),
            "price": column("price", pa.float64()),
        }
    )


def registry_entry(settings: Settings, ds: str, trained: dict, evaluated: dict) -> dict:
    """The model registry row: version, chosen settings, search, data snapshot, metrics, decision."""
    decision = evaluated["decision"]
    return {
        "model_version": settings.model_version(ds),
        **{key: decision[key] for key in GATE_KEYS},
        "params": trained["chosen"],
        "tuning": {model: _without_timings(search) for model, search in trained["tuning"].items()},
        "data_snapshot": {
            "run_date": ds,
            "preferences": settings.lake_path("features", "preferences", ds),
            "clean_interactions": settings.lake_path("clean", "interactions", ds),
            "source": settings.source,
            "path": settings.path,
            **trained["counts"],
            "split": settings.split,
            "split_rows": trained["split_rows"],
        },
        "metrics": evaluated["metrics"],
        "model_path": trained["model_dir"],
    }


def _without_timings(search: dict) -> dict:
    """A search record without its wall times: the registry row must be identical when a date is
    re-run (the times go to model_runs.task_timings, which is a log and may differ)."""
    return {key: value for key, value in search.items() if key != "seconds"} | {
        "trials": [{k: v for k, v in trial.items() if k != "seconds"} for trial in search["trials"]]
    }


def search_timings(trained: dict) -> dict[str, float]:
    return {f"train_als.search_{model}": search["seconds"] for model, search in trained["tuning"].items()}


def quality_bundle(settings: Settings, ds: str, required: bool = False) -> QualityBundle:
    """The data-quality facts the run has produced so far. A step that never ran has none,
    unless `required` (publishing a finished run, where a missing step is an error)."""
    facts = {}
    for name in ("validate_raw", "clean", "validate_clean"):
        try:
            facts[name] = read_facts(settings.lake_path("facts", name, ds))
        except FileNotFoundError:
            if required:
                raise
            facts[name] = {}
    return QualityBundle(
        dataset=settings.dataset_name,
        run_date=datetime.date.fromisoformat(ds),
        quality_results=[
            {k: r[k] for k in QUALITY_COLUMNS}
            for name in ("validate_raw", "validate_clean")
            for r in facts[name].get("results", [])
        ],
        reconciliation=facts["clean"].get("reconciliation", []),
        quarantine=facts["clean"].get("quarantine", []),
    )


def migrate_warehouse(settings: Settings) -> dict:
    """Bring the warehouse schema up to date; publishing migrates again, which is then a no-op."""
    engine = make_engine(settings.warehouse_url, settings.sqlite_path)
    try:
        applied = migrate(engine, SQL_ROOT)
    finally:
        engine.dispose()
    summary = {"warehouse": engine.url.render_as_string(hide_password=True), "applied": applied}
    log.info("Warehouse schema up to date %s", summary)
    return summary


def publish_quality_run(settings: Settings, ds: str) -> dict:
    """Record the run's validation results, reconciliation and quarantine summary, even when
    validation stopped the run (then they are the evidence of why)."""
    bundle = quality_bundle(settings, ds)
    engine = make_engine(settings.warehouse_url, settings.sqlite_path)
    try:
        written = publish_quality(engine, bundle, SQL_ROOT)
    finally:
        engine.dispose()
    failed = [
        f"{r['suite']}.{r['expectation_key']} ({r['severity']})"
        for r in bundle.quality_results
        if not r["success"]
    ]
    summary = {"dataset": bundle.dataset, "rows_written": written, "failed_expectations": failed}
    log.info("Recorded data quality %s", summary)
    return summary


def publish_run(
    settings: Settings,
    ds: str,
    dag_run_id: str,
    task_timings: dict[str, float],
    attempt: AttemptKey | None = None,
) -> dict:
    """Publish the run of ``ds`` as task attempt ``attempt`` (default: try 1 of the DAG's publish
    task); return its summary."""
    bundle = build_bundle(settings, ds, dag_run_id, task_timings)
    engine = make_engine(settings.warehouse_url, settings.sqlite_path)
    try:
        published = publish(engine, bundle, SQL_ROOT, attempt, settings.blocking_reader_grace_s)
    finally:
        engine.dispose()
    # After the warehouse holds the run: a failed publish must not leave a champion behind in
    # the lake that readers never saw.
    registry.record(settings, ds, bundle.registry)
    summary = {
        "warehouse": engine.url.render_as_string(hide_password=True),
        "dataset": bundle.dataset,
        "run_date": ds,
        "status": published.status,
        "model_version": bundle.model_version,
        "decision": bundle.registry["reason"],
        "chosen": bundle.registry["params"],
        "rows_written": published.rows,
        # what this publish repaired (attempts that died midway) and which readers it ended
        "repaired": published.repaired,
        "ended_sessions": published.ended_sessions,
        "metrics": bundle.metrics,
        "sample": sample_with_titles(bundle, users=3),
    }
    log.info("Published %s", summary)
    return summary


def sample_with_titles(bundle: PublishBundle, users: int) -> list[dict]:
    """A few users' lists with titles, to show a person what was published."""
    recs = bundle.recommendations
    first_users = sorted(set(recs.column("user_id").to_pylist()), key=lambda u: (len(u), u))[:users]
    picked = recs.filter(
        pc.is_in(
            recs.column("user_id"), value_set=pa.array(first_users, type=recs.schema.field("user_id").type)
        )
    )
    titles = dict(
        zip(bundle.items.column("item_id").to_pylist(), bundle.items.column("title").to_pylist(), strict=True)
    )
    rows = sorted(picked.to_pylist(), key=lambda r: (first_users.index(r["user_id"]), r["rank"]))
    return [
        {
            "user_id": r["user_id"],
            "rank": r["rank"],
            "item_id": r["item_id"],
            "title": titles.get(r["item_id"]),
            "score": round(r["score"], 4),
            "source": r["source"],
            "user_tier": r["user_tier"],
            "reason": r["reason"],
        }
        for r in rows
        if r["rank"] <= 5
    ]
