"""Gather what the run report shows: the run's analytics tables and facts from the lake, and the
metric history of the dataset from the warehouse, into plain pandas / Python structures.

Analytics tables are required (the report is about them): a missing one is an error naming its
path. Facts of other steps are optional: a step that did not run leaves None, and the page says so.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from recflow.config import USER_TIERS as TIERS
from recflow.config import Settings
from recflow.facts import is_directory, lake_filesystem, read_facts, read_lake_table
from recflow.warehouse.engine import make_engine

log = logging.getLogger(__name__)

# analytics table -> the columns the report reads (spark_jobs/analytics.py writes them).
ANALYTICS_COLUMNS = {
    "daily_kpis": [
        "activity_date", "n_interactions", "active_users", "new_users", "active_items",
        "avg_rating", "purchases", "revenue", "watch_seconds",
    ],
    "daily_category_activity": ["activity_date", "category", "n_interactions", "active_users"],
    "daily_funnel": ["activity_date", "step", "step_name", "n_events", "n_users"],
    "hourly_activity": ["activity_date", "hour", "n_interactions", "active_users"],
    "popular_items": ["segment_type", "segment", "rank", "item_id", "n_users", "n_interactions", "avg_rating"],
    "item_popularity": ["item_id", "n_users", "n_interactions"],
    "value_distribution": ["position", "label", "n"],
}  # fmt: skip
FACT_NAMES = ("validate_raw", "clean", "validate_clean", "train", "evaluate", "recommend", "analytics")
# User tiers (by how much history the model has of a user) and the models compared within them:
# the order of rows, bars and legends. Names the facts hold beyond these follow alphabetically.
TIER_MODELS = ("als", "content", "hybrid", "popularity")
# Where a served recommendation came from: the models, then the popularity fallbacks.
REC_SOURCES = ("als", "content", "hybrid", "popular", "segment_popular")
HISTORY_VIEW = "v_model_performance"
HISTORY_COLUMNS = [
    "run_date", "model_version", "model", "metric", "k", "metric_label", "value",
    "decision", "forced", "primary_metric", "is_champion", "run_status",
]  # fmt: skip
TOP_ITEMS = 10
TOP_CATEGORIES = 10


class ReportInputMissing(FileNotFoundError):
    """A lake table the report cannot do without is not there."""


@dataclass(frozen=True, eq=False)  # eq=False: DataFrames do not compare to a bool
class ReportData:
    """Everything the page shows, for one dataset and run date."""

    dataset: str
    source: str
    ds: str
    model_version: str
    top_k: int
    kpis: pd.DataFrame  # daily_kpis, by activity_date
    funnel: pd.DataFrame  # daily_funnel
    hourly: pd.DataFrame  # hourly_activity
    categories: pd.DataFrame  # category, n_interactions, share: the busiest categories
    item_popularity: pd.DataFrame  # item_id, n_users, n_interactions
    value_distribution: pd.DataFrame  # position, label, n, by position
    top_items: pd.DataFrame  # rank, item_id, title, n_users, n_interactions, avg_rating
    history: pd.DataFrame  # v_model_performance rows of the dataset up to ds (HISTORY_COLUMNS)
    facts: dict[str, dict | None] = field(default_factory=dict)  # FACT_NAMES -> facts, None if absent
    inputs: dict[str, str] = field(default_factory=dict)  # what was read -> where

    @property
    def feedback_kind(self) -> str:
        """'events' (e-commerce), 'watch time' (TV) or 'ratings' (MovieLens)."""
        return {"ecommerce": "events", "tv": "watch time"}.get(self.source, "ratings")

    @property
    def date_range(self) -> tuple[str, str] | None:
        """First and last day of the data: the analytics facts', else the KPI table's."""
        analytics = self.facts.get("analytics") or {}
        if analytics.get("first_day") and analytics.get("last_day"):
            return str(analytics["first_day"]), str(analytics["last_day"])
        if self.kpis.empty:
            return None
        days = self.kpis["activity_date"].astype(str)
        return days.min(), days.max()


def gather(settings: Settings, ds: str) -> ReportData:
    tables = {name: read_analytics(settings, name, ds) for name in ANALYTICS_COLUMNS}
    facts = {name: optional_facts(settings, name, ds) for name in FACT_NAMES}
    trained = facts["train"] or {}
    evaluated = facts["evaluate"] or {}
    return ReportData(
        dataset=settings.dataset_name,
        source=settings.source,
        ds=ds,
        model_version=trained.get("model_version") or settings.model_version(ds),
        top_k=int(evaluated.get("k") or settings.top_k),
        kpis=tables["daily_kpis"].sort_values("activity_date", ignore_index=True),
        funnel=tables["daily_funnel"],
        hourly=tables["hourly_activity"],
        categories=busiest_categories(tables["daily_category_activity"], TOP_CATEGORIES),
        item_popularity=tables["item_popularity"],
        value_distribution=tables["value_distribution"].sort_values("position", ignore_index=True),
        top_items=top_items(settings, ds, tables["popular_items"], TOP_ITEMS),
        history=metric_history(settings, ds),
        facts=facts,
        inputs={
            **{f"analytics/{name}": settings.lake_path("analytics", name, ds) for name in ANALYTICS_COLUMNS},
            "facts": settings.lake_path("facts", "*", ds),
            "warehouse": _warehouse_label(settings),
        },
    )


def read_analytics(settings: Settings, table: str, ds: str) -> pd.DataFrame:
    uri = settings.lake_path("analytics", table, ds)
    if not is_directory(uri):
        raise ReportInputMissing(
            f"Analytics table {table!r} is missing at {uri}: has the analytics task run for {ds}?"
        )
    return read_lake_table(uri, ANALYTICS_COLUMNS[table]).to_pandas()


def optional_facts(settings: Settings, name: str, ds: str) -> dict | None:
    try:
        return read_facts(settings.lake_path("facts", name, ds))
    except FileNotFoundError:
        log.info("No %s facts for %s: that step did not run", name, ds)
        return None


def busiest_categories(daily: pd.DataFrame, n: int) -> pd.DataFrame:
    """The n categories with the most interactions over all days, with their share of the
    category rows (an item in two genres counts in both, so shares can add up past 100 %)."""
    totals = daily.groupby("category", as_index=False)["n_interactions"].sum()
    everything = totals["n_interactions"].sum()
    totals["share"] = totals["n_interactions"] / everything if everything else 0.0
    return totals.sort_values(
        ["n_interactions", "category"], ascending=[False, True], ignore_index=True
    ).head(n)


def top_items(settings: Settings, ds: str, popular: pd.DataFrame, n: int) -> pd.DataFrame:
    """The overall top n of popular_items, with titles from the clean catalogue where it has them."""
    overall = popular[popular["segment_type"] == "overall"].sort_values("rank").head(n)
    overall = overall.drop(columns=["segment_type", "segment"]).reset_index(drop=True)
    overall.insert(2, "title", overall["item_id"].map(item_titles(settings, ds, overall["item_id"].tolist())))
    return overall


def item_titles(settings: Settings, ds: str, item_ids: list[str]) -> dict[str, str]:
    """item_id -> title for the given ids; empty when the catalogue or its titles are missing."""
    uri = settings.lake_path("clean", "items", ds)
    if not item_ids or not is_directory(uri):
        return {}
    filesystem, path = lake_filesystem(uri)
    dataset = pq.ParquetDataset(path, filesystem=filesystem)
    if "title" not in dataset.schema.names:
        return {}
    # Only the wanted rows: an e-commerce catalogue can hold millions of products.
    wanted = pc.field("item_id").isin(item_ids)
    table = pq.read_table(path, filesystem=filesystem, columns=["item_id", "title"], filters=wanted)
    return {i: t for i, t in zip(table["item_id"].to_pylist(), table["title"].to_pylist(), strict=True) if t}


def metric_history(settings: Settings, ds: str) -> pd.DataFrame:
    """Every model metric of the dataset's runs up to ds (later runs stay out, so re-rendering
    an old date gives the page it had). Empty when the warehouse has no such view yet."""
    if not settings.warehouse_url and not settings.sqlite_path.exists():
        # make_engine would create an empty SQLite file: nothing has been published here yet.
        log.warning("No warehouse at %s: no metric history in the report", settings.sqlite_path)
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    engine = make_engine(settings.warehouse_url, settings.sqlite_path)
    try:
        if HISTORY_VIEW not in sa.inspect(engine).get_view_names():
            log.warning("The warehouse has no %s: no metric history in the report", HISTORY_VIEW)
            return pd.DataFrame(columns=HISTORY_COLUMNS)
        query = sa.text(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM {HISTORY_VIEW} "
            "WHERE dataset = :dataset AND run_date <= :ds ORDER BY run_date, model, metric, k"
        )
        with engine.connect() as conn:
            rows = conn.execute(query, {"dataset": settings.dataset_name, "ds": ds}).all()
    finally:
        engine.dispose()
    history = pd.DataFrame([tuple(r) for r in rows], columns=HISTORY_COLUMNS)
    # SQLite returns dates as text, MySQL as date: one spelling for both.
    history["run_date"] = history["run_date"].astype(str)
    history["value"] = history["value"].astype(float)
    return history


def in_order(names, order: tuple[str, ...]) -> list[str]:
    """The names in `order` first, in its order, then the others alphabetically."""
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order))


def tier_table(tier_metrics: dict[str, dict[str, dict[str, float]]]) -> pd.DataFrame:
    """The evaluate step's tier_metrics (tier -> model -> metric label -> value, n_users among
    them) as one row per tier and model: tier, model, n_users, then one column per metric label
    (NaN where a model lacks it), rows in TIERS and TIER_MODELS order."""
    rows = [
        {"tier": tier, "model": model, **tier_metrics[tier][model]}
        for tier in in_order(tier_metrics, TIERS)
        for model in in_order(tier_metrics[tier], TIER_MODELS)
    ]
    labels = sorted({key for row in rows for key in row} - {"tier", "model", "n_users"})
    return pd.DataFrame(rows, columns=["tier", "model", "n_users", *labels])


def funnel_totals(funnel: pd.DataFrame) -> pd.DataFrame:
    """The funnel over all days: step, step_name, n_events, n_users (user-days: distinct users
    per day, summed) and each step's conversion from the first step (by user-days)."""
    totals = (
        funnel.groupby(["step", "step_name"], as_index=False)[["n_events", "n_users"]]
        .sum()
        .sort_values("step", ignore_index=True)
    )
    first = totals["n_users"].iloc[0] if len(totals) else 0
    totals["conversion"] = totals["n_users"] / first if first else float("nan")
    return totals


@dataclass(frozen=True)
class LongTail:
    """Items by interactions, busiest first, and how much of the volume the head holds."""

    counts: list[int]  # n_interactions per item, descending
    head_items: int  # the first head_items items are the head
    head_fraction: float  # share of items in the head (e.g. 0.2)
    head_share: float  # share of interactions in the head


def long_tail(popularity: pd.DataFrame, head_fraction: float = 0.2) -> LongTail:
    counts = sorted((int(n) for n in popularity["n_interactions"]), reverse=True)
    head = math.ceil(head_fraction * len(counts)) if counts else 0
    total = sum(counts)
    return LongTail(counts, head, head_fraction, sum(counts[:head]) / total if total else 0.0)


def history_labels(history: pd.DataFrame, k: int, primary: str | None) -> list[str]:
    """The metrics worth a panel of the history chart, present in the history: the gate's
    primary metric, then ndcg@k, precision@k and rmse."""
    present = set(history["metric_label"])
    wanted = [primary, f"ndcg@{k}", f"precision@{k}", "rmse"]
    return list(dict.fromkeys(label for label in wanted if label and label in present))


def _warehouse_label(settings: Settings) -> str:
    if settings.warehouse_url:
        return sa.make_url(settings.warehouse_url).render_as_string(hide_password=True)
    return str(settings.sqlite_path)
