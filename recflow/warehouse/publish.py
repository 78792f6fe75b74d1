"""Publish one run (dataset x run_date) into the warehouse, all-or-nothing for readers and idempotent.

Every run is recorded; only a run the champion/challenger gate promoted replaces the dataset's
recommendations and similar items. The whole publish is ONE transaction of plain DML (DELETE,
INSERT, LOAD DATA, UPDATE; no RENAME, no DDL on a table readers see):
1. validate and shape every row in memory (a bad bundle writes nothing);
2. take the writers' ``publish`` lock (a row no BI account can lock: recflow.warehouse.engine),
   migrate, repair what a publish that died midway left behind (its 'publishing' mark in
   pipeline_run_log becomes 'interrupted', logged), and mark this attempt 'publishing';
3. in one transaction: replace the run's facts (items, model_runs, metrics overall and per user
   tier, quality, reconciliation, quarantine, recommendation_rules, model_registry), replace the
   dataset's analytics snapshots (users, user_profiles, popular_items) and upsert its daily
   aggregates (recflow.warehouse.upsert); a promoted run also replaces the dataset's
   similar_items and recommendations and becomes the dataset's only champion; the attempt's mark
   is deleted; commit.

So a reader sees the old served set or the new one, whole, across every table (under REPEATABLE
READ, a BI transaction open across the publish keeps seeing the old one until it ends); a
publish killed at any point is rolled back by the server, whole; and since readers take no
locks and DML does not wait for their metadata locks, a long BI query never delays a publish.
A session that does lock what it reads (FOR UPDATE, SERIALIZABLE) is ended after a few seconds'
grace if it has changed nothing (recflow.warehouse.blocking_readers).

A late run (the warehouse already holds a run of the dataset with a later run_date, as when a
backfill or a re-run of an old date finishes after newer runs) records only its own run facts:
the dataset's current state (recommendations, similar items, champion, snapshots and daily
aggregates) stays the newest run's, so a backfill in any order leaves one consistent set. A late
run the gate promoted says 'superseded' in model_runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from recflow.config import USER_TIERS
from recflow.warehouse import run_log
from recflow.warehouse.blocking_readers import DEFAULT_GRACE_S, ending_blocking_readers
from recflow.warehouse.engine import dialect_dir, named_lock
from recflow.warehouse.loaders import bulk_load, insert_rows
from recflow.warehouse.migrate import migrate
from recflow.warehouse.run_log import AttemptKey
from recflow.warehouse.upsert import upsert_days

log = logging.getLogger(__name__)

_LOCK_NAME = "publish"
# Publishes queue behind each other; one may take minutes at scale.
_LOCK_TIMEOUT_S = 1800
# How long the publish transaction waits for a row lock. Only a writer can hold one that long
# (a blocklist edit; readers that lock what they read are ended: blocking_readers).
_ROW_LOCK_WAIT_S = 600
# The steps of a publish, in order, each logged as it starts with the record attribute
# ``publish_step``: an operator reading the task log sees where a publish was when it died,
# and the tests kill a publishing process at each one.
STEPS = (
    "lock",
    "repair",
    "mark",
    "facts",
    "similar_items",
    "recommendations",
    "champion",
    "commit",
    "committed",
)
# The task attempt a publish is recorded as when its caller does not say (tests, the CLI).
DEFAULT_ATTEMPT = {"dag_id": "recommendations_daily", "task_id": "publish_recommendations", "try_number": 1}

_RECOMMENDATIONS = pa.schema(
    [
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("rank", pa.int16()),
        ("score", pa.float64()),
        ("source", pa.string()),
        ("reason", pa.string()),
        ("user_tier", pa.string()),
    ]
)
# recommendations.user_tier (sql/mysql/007): how much history the user had, which decides the
# source of the list. model_metrics.user_tier is one of these, or 'all' for every test user.
ALL_USERS = "all"
# The similar items of a promoted run's model (recs/similar_items), minus dataset, model_version
# and run_date, which publish adds.
_SIMILAR_ITEMS = pa.schema(
    [
        ("item_id", pa.string()),
        ("rank", pa.int16()),
        ("similar_item_id", pa.string()),
        ("score", pa.float64()),
    ]
)
_ITEMS = pa.schema(
    [
        ("item_id", pa.string()),
        ("title", pa.string()),
        ("genres", pa.string()),
        ("category", pa.string()),
        ("brand", pa.string()),
        ("price", pa.float64()),
    ]
)
_MONEY = pa.decimal128(18, 2)
_DAY = ("activity_date", pa.date32())
# DATETIME columns travel as UTC without a zone (MariaDB rejects "+00:00") and whole seconds.
_SECONDS = pa.timestamp("s")
# The analytics tables (sql/*/005_analytics.sql) as spark_jobs/analytics.py writes them, minus
# dataset and run_date, which publish adds.
ANALYTICS = {
    "users": pa.schema(
        [
            ("user_id", pa.string()),
            ("gender", pa.string()),
            ("age", pa.int16()),
            ("age_group", pa.string()),
            ("occupation", pa.string()),
            ("zip_code", pa.string()),
            ("first_seen", _SECONDS),
            ("last_seen", _SECONDS),
            ("n_interactions", pa.int64()),
        ]
    ),
    "user_profiles": pa.schema(
        [
            ("user_id", pa.string()),
            ("n_interactions", pa.int64()),
            ("n_items", pa.int32()),
            ("active_days", pa.int32()),
            ("activity_level", pa.string()),
            ("top_categories", pa.string()),
            ("top_category", pa.string()),
            ("top_category_share", pa.float64()),
            ("active_hours", pa.string()),
            ("peak_hour", pa.int8()),
            ("active_weekdays", pa.string()),
            ("peak_weekday", pa.string()),
            ("avg_rating", pa.float64()),
            ("purchases", pa.int64()),
            ("revenue", _MONEY),
            ("watch_seconds", pa.int64()),
        ]
    ),
    "popular_items": pa.schema(
        [
            ("segment_type", pa.string()),
            ("segment", pa.string()),
            ("rank", pa.int16()),
            ("item_id", pa.string()),
            ("n_users", pa.int64()),
            ("n_interactions", pa.int64()),
            ("avg_rating", pa.float64()),
        ]
    ),
    "daily_kpis": pa.schema(
        [
            _DAY,
            ("n_interactions", pa.int64()),
            ("active_users", pa.int32()),
            ("new_users", pa.int32()),
            ("active_items", pa.int32()),
            ("avg_rating", pa.float64()),
            ("purchases", pa.int64()),
            ("revenue", _MONEY),
            ("watch_seconds", pa.int64()),
        ]
    ),
    "daily_category_activity": pa.schema(
        [
            _DAY,
            ("category", pa.string()),
            ("n_interactions", pa.int64()),
            ("active_users", pa.int32()),
            ("revenue", _MONEY),
            ("watch_seconds", pa.int64()),
        ]
    ),
    "daily_funnel": pa.schema(
        [
            _DAY,
            ("step", pa.int8()),
            ("step_name", pa.string()),
            ("n_events", pa.int64()),
            ("n_users", pa.int32()),
        ]
    ),
    "hourly_activity": pa.schema(
        [_DAY, ("hour", pa.int8()), ("n_interactions", pa.int64()), ("active_users", pa.int32())]
    ),
    "watch_time_hourly": pa.schema(
        [
            _DAY,
            ("item_id", pa.string()),
            ("hour", pa.int8()),
            ("watch_seconds", pa.int64()),
            ("viewers", pa.int32()),
        ]
    ),
}
# Daily aggregates: their key after (dataset, activity_date). The other analytics tables are
# snapshots of the dataset, replaced whole.
DAILY_KEYS = {
    "daily_kpis": [],
    "daily_category_activity": ["category"],
    "daily_funnel": ["step"],
    "hourly_activity": ["hour"],
    "watch_time_hourly": ["item_id", "hour"],
}
SNAPSHOTS = ("items", "users", "user_profiles", "popular_items")
# Columns the bundle supplies as dicts; publish adds dataset and run_date. Dates travel as ISO
# strings, which both MySQL DATE and SQLite's text dates accept unchanged.
_RUN_KEY = [("dataset", pa.string()), ("run_date", pa.string())]
_QUALITY = pa.schema(
    [
        ("suite", pa.string()),
        ("expectation_key", pa.string()),
        ("expectation_type", pa.string()),
        ("column_name", pa.string()),
        ("severity", pa.string()),
        ("success", pa.bool_()),
        ("observed_value", pa.string()),
        ("unexpected_count", pa.int64()),
        ("element_count", pa.int64()),
    ]
)
_RECONCILIATION = pa.schema(
    [
        ("table_name", pa.string()),
        ("raw_rows", pa.int64()),
        ("clean_rows", pa.int64()),
        ("quarantined_rows", pa.int64()),
        ("duplicate_rows", pa.int64()),
    ]
)
_QUARANTINE = pa.schema(
    [
        ("table_name", pa.string()),
        ("reason", pa.string()),
        ("column_name", pa.string()),
        ("rows_quarantined", pa.int64()),
        ("sample_file", pa.string()),
        ("sample_line", pa.int64()),
        ("sample_row", pa.string()),
    ]
)
_MODEL_RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        *_RUN_KEY,
        ("dag_run_id", pa.string()),
        ("model_version", pa.string()),
        ("status", pa.string()),
        ("params", pa.string()),
        ("metrics", pa.string()),
        ("task_timings", pa.string()),
        ("n_interactions", pa.int64()),
        ("n_users", pa.int64()),
        ("n_items", pa.int64()),
        ("n_recommendations", pa.int64()),
    ]
)
_MODEL_METRICS = pa.schema(
    [
        *_RUN_KEY,
        ("model_version", pa.string()),
        ("model", pa.string()),
        ("user_tier", pa.string()),
        ("metric", pa.string()),
        ("k", pa.int64()),
        ("value", pa.float64()),
    ]
)
# One row per business rule of the run's recommend step (facts "recommend" -> "rules"); the keys
# of each PublishBundle.rule_log entry are these columns.
_RULES = pa.schema(
    [
        ("rule", pa.string()),
        ("enabled", pa.bool_()),
        ("setting", pa.string()),
        ("items_removed", pa.int64()),
        ("users_affected", pa.int64()),
    ]
)
_MODEL_REGISTRY = pa.schema(
    [
        *_RUN_KEY,
        ("model_version", pa.string()),
        ("decision", pa.string()),
        ("forced", pa.bool_()),
        ("primary_metric", pa.string()),
        ("challenger_value", pa.float64()),
        ("champion_version", pa.string()),
        ("champion_value", pa.float64()),
        ("tolerance", pa.float64()),
        ("reason", pa.string()),
        ("params", pa.string()),
        ("tuning", pa.string()),
        ("data_snapshot", pa.string()),
        ("metrics", pa.string()),
        ("model_path", pa.string()),
        ("is_champion", pa.bool_()),
    ]
)
# The keys of PublishBundle.registry: the model_registry columns publish does not fill itself.
REGISTRY_KEYS = frozenset(_MODEL_REGISTRY.names) - {"dataset", "run_date", "is_champion"}
_REGISTRY_JSON = ("params", "tuning", "data_snapshot", "metrics")
_REGISTRY_TEXT = ("model_version", "decision", "primary_metric", "reason", "model_path")
DECISIONS = ("promoted", "rejected")
_METRIC_KEY = re.compile(r"([^@]+)@(\d+)")


@dataclass(frozen=True)
class PublishBundle:
    dataset: str
    run_date: datetime.date
    dag_run_id: str
    model_version: str
    params: dict
    metrics: dict[str, dict[str, float]]  # {"als": {"rmse": 0.93, "ndcg@10": 0.21}, "popularity": {...}}
    task_timings: dict[str, float]  # task_id -> seconds
    counts: dict[str, int]  # n_interactions, n_users, n_items
    recommendations: pa.Table  # user_id, item_id, rank, score, source, reason, user_tier
    items: pa.Table  # item_id, title, genres, category, brand, price
    quality_results: list[dict]  # keys = data_quality_results columns minus dataset/run_date
    reconciliation: list[dict]  # keys = data_reconciliation columns minus dataset/run_date
    quarantine: list[dict]  # keys = quarantine_summary columns minus dataset/run_date
    promote: bool  # the gate's verdict: True swaps in these recommendations, False keeps the champion's
    registry: dict  # keys = REGISTRY_KEYS: model_registry columns minus dataset/run_date/is_champion
    analytics: dict[str, pa.Table]  # keys = ANALYTICS: each table's columns minus dataset/run_date
    # item_id, rank, similar_item_id, score: the run's model's top similar items per item,
    # published only when the run is promoted
    similar_items: pa.Table
    # one dict per rule, keys = _RULES: rule, enabled, setting, items_removed, users_affected
    rule_log: list[dict]
    # {tier: {model: {"ndcg@10": 0.2, ..., "n_users": 120.0}}} for tiers of USER_TIERS; a tier may
    # be missing or empty. model_metrics rows with that user_tier (metrics are user_tier 'all').
    tier_metrics: dict[str, dict[str, dict[str, float]]]

    @property
    def run_id(self) -> str:
        return f"{self.dataset}/{self.run_date.isoformat()}"


@dataclass(frozen=True)
class Published:
    """What a publish did."""

    rows: dict[str, int]  # rows written per table; 0 for a table the run left alone
    status: str  # the run's model_runs.status: published (now served), rejected or superseded
    late_after: str | None = None  # a late run: the newer run_date whose set stays served
    repaired: list[dict] = field(default_factory=list)  # interrupted attempts found and logged
    ended_sessions: list[dict] = field(default_factory=list)  # readers ended for blocking it


def publish(
    engine: sa.Engine,
    bundle: PublishBundle,
    sql_root: Path,
    attempt: AttemptKey | None = None,
    reader_grace_s: float | None = DEFAULT_GRACE_S,
) -> Published:
    """Publish ``bundle`` as task attempt ``attempt``; say what was written.

    A rejected run (``promote`` False) writes its facts and registry row but leaves the
    recommendations and similar items alone and reports 0 for them. A reader that has blocked
    the publish for ``reader_grace_s`` seconds without changing anything is ended (None: waited for).

    Raises ValueError, having written nothing, for an empty recommendations table, duplicate
    (user_id, rank) pairs, nulls, non-finite scores or an unknown user_tier, malformed similar
    items, metrics, tier metrics, rule log, result or registry rows, or a rejected re-run of the
    run that is the dataset's champion (its registry row describes the recommendations being
    served, so a rejected attempt may not overwrite it). Any error rolls the whole publish back
    and records the attempt as failed in pipeline_run_log.
    """
    recommendations = _recommendation_rows(bundle)
    similar_items = _similar_item_rows(bundle)
    facts = _fact_rows(bundle, n_recommendations=recommendations.num_rows)
    attempt = attempt or AttemptKey(dag_run_id=bundle.dag_run_id, **DEFAULT_ATTEMPT)
    _step(bundle, "lock")
    with named_lock(engine, _LOCK_NAME, _LOCK_TIMEOUT_S):
        migrate(engine, sql_root)
        _step(bundle, "repair")
        repaired = _repair(engine, attempt)
        _step(bundle, "mark")
        run_log.mark_publishing(engine, attempt, bundle.dataset, bundle.run_date, _now())
        try:
            with engine.begin() as conn, ending_blocking_readers(engine, conn, reader_grace_s) as ended:
                if dialect_dir(engine) == "mysql":
                    conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {_ROW_LOCK_WAIT_S}")
                result = _write(conn, bundle, facts, recommendations, similar_items)
                run_log.clear_publishing(conn, attempt)
                if dialect_dir(engine) == "mysql":
                    conn.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = DEFAULT")
                _step(bundle, "commit")
        except BaseException as error:
            with contextlib.suppress(Exception):  # the error itself matters more than its record
                run_log.mark_failed(engine, attempt, bundle.dataset, bundle.run_date, error)
            raise
        _step(bundle, "committed")
    return dataclasses.replace(result, repaired=repaired, ended_sessions=list(ended))


def _write(
    conn: sa.Connection,
    bundle: PublishBundle,
    facts: dict[str, pa.Table],
    recommendations: pa.Table,
    similar_items: pa.Table,
) -> Published:
    """Everything the run changes, in the caller's transaction."""
    is_champion = _is_champion(conn, bundle)
    if is_champion and not bundle.promote:
        raise ValueError(
            f"{bundle.run_id} is the champion of {bundle.dataset}: a rejected re-run cannot replace "
            "the record of the model being served (promote it, or keep the published run)"
        )
    newer = _newer_run_date(conn, bundle)
    if newer is not None:
        return _publish_late(conn, bundle, facts, newer, is_champion)
    facts["model_registry"] = _registry_rows(bundle, is_champion=is_champion)
    _step(bundle, "facts")
    rows = {table: _replace(conn, table, table_rows, bundle) for table, table_rows in facts.items()}
    if not bundle.promote:
        return Published(rows | {"similar_items": 0, "recommendations": 0}, "rejected")
    # The model's outputs: only a promoted run's replace the champion's.
    _step(bundle, "similar_items")
    rows["similar_items"] = _replace_model_output(conn, "similar_items", similar_items, bundle)
    _step(bundle, "recommendations")
    rows["recommendations"] = _replace_model_output(conn, "recommendations", recommendations, bundle)
    _step(bundle, "champion")
    conn.execute(
        sa.text(
            "UPDATE model_registry SET is_champion = CASE WHEN run_date = :run_date THEN 1 ELSE 0 END"
            " WHERE dataset = :dataset"
        ),
        {"dataset": bundle.dataset, "run_date": _iso(bundle)},
    )
    return Published(rows, "published")


def _repair(engine: sa.Engine, attempt: AttemptKey) -> list[dict]:
    """Log what publishes that died midway left: their 'publishing' marks (this publish holds the
    lock, so they are dead) and stage tables of the RENAME-based publish of earlier versions.
    The server rolled their transactions back, so nothing else needs undoing."""
    with engine.connect() as conn:
        served = dict(
            conn.execute(
                sa.text("SELECT dataset, model_version FROM model_registry WHERE is_champion = 1")
            ).all()
        )
        leftovers = [
            t for t in ("recommendations_stage", "recommendations_old") if sa.inspect(conn).has_table(t)
        ]
        for table in leftovers:
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.commit()
    repaired = run_log.repair_interrupted(engine, attempt, served)
    for mark in repaired:
        log.warning("Repaired an interrupted publish: %s", mark["error"])
    if leftovers:
        log.warning("Dropped %s, left by a publish of an earlier RecFlow version that died midway", leftovers)
        repaired.append({"state": "interrupted", "error": f"dropped leftover tables {leftovers}"})
    return repaired


def _step(bundle: PublishBundle, step: str) -> None:
    log.info(
        "publish %s: %s", bundle.run_id, step, extra={"publish_step": step, "publish_run": bundle.run_id}
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class QualityBundle:
    """What the validation and cleaning steps found, whether or not the run goes on."""

    dataset: str
    run_date: datetime.date
    quality_results: list[dict]
    reconciliation: list[dict]
    quarantine: list[dict]


def publish_quality(engine: sa.Engine, bundle: QualityBundle, sql_root: Path) -> dict[str, int]:
    """Replace the run's data-quality rows, and nothing else, in one transaction.

    Runs even when validation stopped the run: the failed expectations are what an analyst needs
    to see, while the recommendations of the last good run stay in place."""
    tables = _quality_rows(bundle)
    with named_lock(engine, _LOCK_NAME, _LOCK_TIMEOUT_S):
        migrate(engine, sql_root)
        with engine.begin() as conn:
            return {table: _replace(conn, table, rows, bundle) for table, rows in tables.items()}


def _recommendation_rows(bundle: PublishBundle) -> pa.Table:
    """The bundle's recommendations, checked, with the recommendations table's columns."""
    recs = _shaped(bundle.recommendations, _RECOMMENDATIONS, f"recommendations of {bundle.run_id}")
    if recs.num_rows == 0:
        raise ValueError(f"refusing to publish an empty recommendations table for {bundle.run_id}")
    nulls = [name for name in recs.column_names if recs.column(name).null_count]
    if nulls:
        raise ValueError(f"recommendations of {bundle.run_id} have nulls in {nulls}")
    if not pc.all(pc.is_finite(recs.column("score"))).as_py():
        raise ValueError(f"recommendations of {bundle.run_id} have non-finite scores")
    if recs.group_by(["user_id", "rank"]).aggregate([]).num_rows != recs.num_rows:
        raise ValueError(f"recommendations of {bundle.run_id} repeat a (user_id, rank) pair")
    tiers = set(pc.unique(recs.column("user_tier")).to_pylist())
    if not tiers <= set(USER_TIERS):
        raise ValueError(
            f"recommendations of {bundle.run_id} have user_tier {sorted(tiers - set(USER_TIERS))}; "
            f"expected one of {USER_TIERS}"
        )
    return _with_constants(
        recs, {"dataset": bundle.dataset, "model_version": bundle.model_version, "run_date": _iso(bundle)}
    )


def _similar_item_rows(bundle: PublishBundle) -> pa.Table:
    """The bundle's similar items, checked, with the similar_items table's columns."""
    what = f"similar_items of {bundle.run_id}"
    if not isinstance(bundle.similar_items, pa.Table):
        raise ValueError(f"{what} is {type(bundle.similar_items).__name__}; expected a pyarrow Table")
    similar = _shaped(bundle.similar_items, _SIMILAR_ITEMS, what)
    nulls = [name for name in similar.column_names if similar.column(name).null_count]
    if nulls:
        raise ValueError(f"{what} have nulls in {nulls}")
    if not pc.all(pc.is_finite(similar.column("score"))).as_py():
        raise ValueError(f"{what} have non-finite scores")
    if similar.group_by(["item_id", "rank"]).aggregate([]).num_rows != similar.num_rows:
        raise ValueError(f"{what} repeat an (item_id, rank) pair")
    return _with_constants(
        similar, {"dataset": bundle.dataset, "model_version": bundle.model_version, "run_date": _iso(bundle)}
    )


def _fact_rows(bundle: PublishBundle, n_recommendations: int) -> dict[str, pa.Table]:
    """Every table replaced for the run but model_registry, in load order, with the table's column names.

    The registry row is checked here too (a bad one writes nothing); publish shapes it under
    the lock, once it knows whether the run is already the champion."""
    _check_registry(bundle)
    run = {"dataset": bundle.dataset, "run_date": _iso(bundle)}
    model_run = {
        "run_id": bundle.run_id,
        **run,
        "dag_run_id": bundle.dag_run_id,
        "model_version": bundle.model_version,
        # written with the recommendations, in one transaction: there is no in-between state
        "status": "published" if bundle.promote else "rejected",
        "params": _json(bundle.params),
        "metrics": _json(bundle.metrics),
        "task_timings": _json(bundle.task_timings),
        **{name: bundle.counts[name] for name in ("n_interactions", "n_users", "n_items")},
        "n_recommendations": n_recommendations,
    }
    return {
        "items": _with_constants(
            _shaped(bundle.items, _ITEMS, f"items of {bundle.run_id}"), {"dataset": bundle.dataset}
        ),
        "model_runs": pa.Table.from_pylist([model_run], schema=_MODEL_RUNS),
        "model_metrics": pa.Table.from_pylist(_metric_rows(bundle, run), schema=_MODEL_METRICS),
        "recommendation_rules": _rule_rows(bundle, run),
        **_quality_rows(bundle),
        **_analytics_rows(bundle, run),
    }


def _analytics_rows(bundle: PublishBundle, run: dict) -> dict[str, pa.Table]:
    """Each analytics table with the run's dataset and run_date added."""
    if set(bundle.analytics) != set(ANALYTICS):
        raise ValueError(
            f"analytics of {bundle.run_id} has tables {sorted(bundle.analytics)}; expected {sorted(ANALYTICS)}"
        )
    return {
        name: _with_constants(_shaped(bundle.analytics[name], schema, f"{name} of {bundle.run_id}"), run)
        for name, schema in ANALYTICS.items()
    }


def _shaped(table: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """``table``'s columns of ``schema``, cast to it; a missing column or a lossy cast is a ValueError
    (raised before anything is written)."""
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise ValueError(f"{what} lacks the columns {missing}")
    selected = table.select(schema.names)
    try:
        return pa.Table.from_arrays(
            [
                _cast(selected.column(name), field.type)
                for name, field in zip(schema.names, schema, strict=True)
            ],
            schema=schema,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"{what}: {error}") from error


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        # Spark writes UTC instants; keep the UTC wall time and drop the zone.
        column = column.cast(pa.timestamp(column.type.unit))
    if pa.types.is_timestamp(target):
        # Whole seconds, truncated explicitly (a plain cast refuses to lose the microseconds).
        return (
            pc.cast(column, target, safe=False) if pa.types.is_timestamp(column.type) else column.cast(target)
        )
    return column.cast(target)


def _check_registry(bundle: PublishBundle) -> None:
    """Raise ValueError unless ``bundle.registry`` is a well-formed row agreeing with the bundle."""
    registry = bundle.registry
    where = f"registry row of {bundle.run_id}"
    if not isinstance(registry, dict) or set(registry) != REGISTRY_KEYS:
        keys = sorted(registry) if isinstance(registry, dict) else type(registry).__name__
        raise ValueError(
            f"{where} has keys {keys}; expected {sorted(REGISTRY_KEYS)} (use None for a missing value)"
        )
    if not isinstance(bundle.promote, bool):
        raise ValueError(f"promote of {bundle.run_id} is {bundle.promote!r}; expected True or False")
    if registry["decision"] not in DECISIONS:
        raise ValueError(f"{where}: decision {registry['decision']!r} is not one of {DECISIONS}")
    if bundle.promote != (registry["decision"] == "promoted"):
        raise ValueError(f"{where}: decision {registry['decision']!r} contradicts promote={bundle.promote}")
    if registry["model_version"] != bundle.model_version:
        raise ValueError(
            f"{where}: model_version {registry['model_version']!r} is not the run's {bundle.model_version!r}"
        )
    if not isinstance(registry["forced"], bool):
        raise ValueError(f"{where}: forced is {registry['forced']!r}; expected True or False")
    for key in _REGISTRY_TEXT:
        if not isinstance(registry[key], str) or not registry[key]:
            raise ValueError(f"{where}: {key} is {registry[key]!r}; expected a non-empty string")
    if registry["champion_version"] is not None and not isinstance(registry["champion_version"], str):
        raise ValueError(
            f"{where}: champion_version is {registry['champion_version']!r}; expected a string or None"
        )
    for key in ("challenger_value", "champion_value", "tolerance"):
        value = registry[key]
        if value is None and key != "tolerance":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{where}: {key} is {value!r}; expected a finite number")
    for key in _REGISTRY_JSON:
        if not isinstance(registry[key], dict):
            raise ValueError(f"{where}: {key} is {type(registry[key]).__name__}; expected a dict")
    if not all(isinstance(values, dict) for values in registry["metrics"].values()):
        raise ValueError(f"{where}: metrics must map each model to a dict of metric -> value")
    for key in _REGISTRY_JSON:
        try:
            _json(registry[key])
        except ValueError as error:  # NaN or infinity somewhere inside
            raise ValueError(f"{where}: {key} is not valid JSON ({error})") from error


def _registry_rows(bundle: PublishBundle, is_champion: bool) -> pa.Table:
    """The run's model_registry row; JSON columns as stable JSON so a re-publish writes the same bytes."""
    row = {
        **bundle.registry,
        **{key: _json(bundle.registry[key]) for key in _REGISTRY_JSON},
        "dataset": bundle.dataset,
        "run_date": _iso(bundle),
        "is_champion": is_champion,
    }
    return pa.Table.from_pylist([row], schema=_MODEL_REGISTRY)


# The dataset's current state, which only the newest run may replace: snapshots, daily
# aggregates (a newer run recomputes the same days from more data) and the model outputs.
_DATASET_STATE = (*SNAPSHOTS, *DAILY_KEYS)


def _newer_run_date(conn: sa.Connection, bundle: PublishBundle) -> str | None:
    """The latest run_date of the dataset after the bundle's, if the warehouse holds one."""
    newest = conn.execute(
        sa.text("SELECT MAX(run_date) FROM model_runs WHERE dataset = :dataset AND run_date > :run_date"),
        {"dataset": bundle.dataset, "run_date": _iso(bundle)},
    ).scalar_one_or_none()
    return None if newest is None else str(newest)


def _publish_late(
    conn: sa.Connection, bundle: PublishBundle, facts: dict[str, pa.Table], newer: str, is_champion: bool
) -> Published:
    """Record a late run's own facts (model_runs, metrics, rules, quality, its registry row) and
    nothing of the dataset's current state, which belongs to the run of ``newer``.

    A late re-run of the champion (newer runs were all rejected) stays the published champion:
    its recommendations are the ones being served."""
    status = ("published" if is_champion else "superseded") if bundle.promote else "rejected"
    if bundle.promote:
        runs = facts["model_runs"]
        column = runs.schema.get_field_index("status")
        facts["model_runs"] = runs.set_column(column, "status", pa.array([status], pa.string()))
    facts["model_registry"] = _registry_rows(bundle, is_champion=is_champion)
    counts = {
        table: _replace(conn, table, rows, bundle) if table not in _DATASET_STATE else 0
        for table, rows in facts.items()
    }
    return Published(counts | {"similar_items": 0, "recommendations": 0}, status, late_after=newer)


def _is_champion(conn: sa.Connection, bundle: PublishBundle) -> bool:
    """Whether the run's current model_registry row (if any) is the dataset's champion."""
    flag = conn.execute(
        sa.text("SELECT is_champion FROM model_registry WHERE dataset = :dataset AND run_date = :run_date"),
        {"dataset": bundle.dataset, "run_date": _iso(bundle)},
    ).scalar_one_or_none()
    return bool(flag)


def _quality_rows(bundle) -> dict[str, pa.Table]:
    run = {"dataset": bundle.dataset, "run_date": _iso(bundle)}
    quality = [
        {**row, "observed_value": _observed_value(row["observed_value"])}
        for row in _checked_dicts("quality_results", bundle.quality_results, _QUALITY)
    ]
    reconciliation = _checked_dicts("reconciliation", bundle.reconciliation, _RECONCILIATION)
    quarantine = _checked_dicts("quarantine", bundle.quarantine, _QUARANTINE)
    return {
        "data_quality_results": _table(run, quality, _QUALITY),
        "data_reconciliation": _table(run, reconciliation, _RECONCILIATION),
        "quarantine_summary": _table(run, quarantine, _QUARANTINE),
    }


def _metric_rows(bundle: PublishBundle, run: dict) -> list[dict]:
    """One row per model x metric of ``metrics`` (user_tier 'all') and per tier x model x metric of
    ``tier_metrics``; "ndcg@10" becomes metric 'ndcg' with k 10, "rmse" and "n_users" k 0."""
    if not isinstance(bundle.tier_metrics, dict):
        raise ValueError(
            f"tier_metrics of {bundle.run_id} is {type(bundle.tier_metrics).__name__}; expected a dict"
        )
    unknown = sorted(set(bundle.tier_metrics) - set(USER_TIERS), key=str)
    if unknown:
        raise ValueError(
            f"tier_metrics of {bundle.run_id} has tiers {unknown}; expected some of {USER_TIERS}"
        )
    by_tier = {ALL_USERS: bundle.metrics, **bundle.tier_metrics}
    rows = []
    for tier, models in by_tier.items():
        where = "metrics" if tier == ALL_USERS else f"tier_metrics[{tier!r}]"
        if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
            raise ValueError(f"{where} of {bundle.run_id} must map each model to a dict of metric -> value")
        for model, values in sorted(models.items()):
            for key, value in sorted(values.items()):
                cut = _METRIC_KEY.fullmatch(key)
                metric, k = (cut[1], int(cut[2])) if cut else (key, 0)
                if "@" in metric:
                    raise ValueError(f"metric {key!r} of {model}: expected name or name@k")
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ValueError(f"{where} {model}.{key} of {bundle.run_id} is {value!r}")
                rows.append(
                    {
                        **run,
                        "model_version": bundle.model_version,
                        "model": model,
                        "user_tier": tier,
                        "metric": metric,
                        "k": k,
                        "value": value,
                    }
                )
    return rows


def _rule_rows(bundle: PublishBundle, run: dict) -> pa.Table:
    """The run's recommendation_rules rows, one per entry of ``rule_log``, checked."""
    where = f"rule_log of {bundle.run_id}"
    if not isinstance(bundle.rule_log, list) or not all(isinstance(r, dict) for r in bundle.rule_log):
        raise ValueError(f"{where} must be a list of dicts")
    for row in _checked_dicts("rule_log", bundle.rule_log, _RULES):
        rule = row["rule"]
        if not isinstance(rule, str) or not 0 < len(rule) <= 32:
            raise ValueError(f"{where}: rule {rule!r}; expected a name of 1 to 32 characters")
        if not isinstance(row["enabled"], bool):
            raise ValueError(f"{where}: enabled of {rule} is {row['enabled']!r}; expected True or False")
        if row["setting"] is not None and (not isinstance(row["setting"], str) or len(row["setting"]) > 255):
            raise ValueError(
                f"{where}: setting of {rule} is {row['setting']!r}; expected None or up to 255 characters"
            )
        for key in ("items_removed", "users_affected"):
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{where}: {key} of {rule} is {value!r}; expected a count (int >= 0)")
    rules = [row["rule"] for row in bundle.rule_log]
    if len(set(rules)) != len(rules):
        raise ValueError(f"{where} names a rule twice: {rules}")
    rows = [
        {**run, "model_version": bundle.model_version, **row}
        for row in sorted(bundle.rule_log, key=lambda r: r["rule"])
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema([*_RUN_KEY, ("model_version", pa.string()), *_RULES]))


def _checked_dicts(field: str, rows: list[dict], schema: pa.Schema) -> list[dict]:
    """``rows`` unchanged, once each is known to have exactly the columns of ``schema``."""
    for row in rows:
        if set(row) != set(schema.names):
            raise ValueError(
                f"{field} row has keys {sorted(row)}; expected {sorted(schema.names)} "
                "(use None for a missing value)"
            )
    return rows


def _table(run: dict, rows: list[dict], schema: pa.Schema) -> pa.Table:
    full = pa.schema([*_RUN_KEY, *schema])
    return pa.Table.from_pylist([{**run, **row} for row in rows], schema=full)


def _with_constants(table: pa.Table, constants: dict[str, str]) -> pa.Table:
    """``table`` with one constant string column per entry of ``constants``."""
    for name, value in constants.items():
        table = table.append_column(name, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
    return table


def _observed_value(value) -> str | None:
    """observed_value as text; structured values (lists, dicts, numbers) as stable JSON."""
    return value if value is None or isinstance(value, str) else _json(value)


def _json(value) -> str:
    """Stable JSON so that re-publishing writes identical bytes; NaN is not valid JSON for MySQL."""
    return json.dumps(value, sort_keys=True, allow_nan=False, default=str)


def _iso(bundle: PublishBundle) -> str:
    return bundle.run_date.isoformat()


def _replace(conn: sa.Connection, table: str, rows: pa.Table, bundle: PublishBundle) -> int:
    """Load ``rows`` in place of the run's rows of ``table``: the dataset's, for a snapshot; the
    days the rows cover, for a daily aggregate (an upsert); the run's, for the rest."""
    if table in DAILY_KEYS:
        return upsert_days(conn, table, DAILY_KEYS[table], rows)
    where = "dataset = :dataset" if table in SNAPSHOTS else "dataset = :dataset AND run_date = :run_date"
    conn.execute(
        sa.text(f"DELETE FROM {table} WHERE {where}"), {"dataset": bundle.dataset, "run_date": _iso(bundle)}
    )
    # snapshots can be large, everything else is a handful of rows and not worth a temp file
    load = bulk_load if table in SNAPSHOTS else insert_rows
    return load(conn, table, rows.column_names, rows)


def _replace_model_output(conn: sa.Connection, table: str, rows: pa.Table, bundle: PublishBundle) -> int:
    """Replace the dataset's rows of ``table`` with ``rows`` (the promoted run's model output)."""
    conn.execute(sa.text(f"DELETE FROM {table} WHERE dataset = :dataset"), {"dataset": bundle.dataset})
    return bulk_load(conn, table, rows.column_names, rows)
