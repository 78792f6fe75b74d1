"""Analytics aggregates of the clean data (daily KPIs, funnel, activity, popularity, profiles)
for the warehouse and the run report. Needs only the clean tables, so it runs beside training."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recflow import analytics
from recflow.config import Settings
from recflow.facts import is_directory
from recflow.ingest import ingested
from recflow.jobs import run_job
from recflow.sources import SOURCES

# lake table -> its warehouse table (None: the run report's only).
TABLES = {
    "daily_kpis": "daily_kpis",
    "daily_category_activity": "daily_category_activity",
    "daily_funnel": "daily_funnel",
    "hourly_activity": "hourly_activity",
    "watch_time_hourly": "watch_time_hourly",
    "users": "users",
    "user_profiles": "user_profiles",
    "popular_items": "popular_items",
    "item_popularity": None,
    "value_distribution": None,
}


def extract(spark, settings: Settings, ds: str) -> dict[str, DataFrame | None]:
    def clean(table: str) -> DataFrame | None:
        path = settings.lake_path("clean", table, ds)
        return spark.read.parquet(path) if is_directory(path) else None

    return {table: clean(table) for table in ("interactions", "items", "users")}


def rating_scale(settings: Settings, ds: str) -> tuple[float, float] | None:
    if not SOURCES[settings.source].explicit:
        return None
    layout = ingested(settings, ds).layout
    return float(layout.rating_min), float(layout.rating_max)


def transform(
    clean: dict[str, DataFrame | None], source: str, scale: tuple[float, float] | None, k: int
) -> dict[str, DataFrame]:
    activity = analytics.prepare(clean["interactions"], clean["items"], source, scale)
    activity = analytics.Activity(activity.events.cache(), activity.categories.cache(), source, scale)
    users = analytics.users(activity, clean["users"], clean["interactions"].select("user_id", "ts")).cache()
    return {
        "daily_kpis": analytics.daily_kpis(activity),
        "daily_category_activity": analytics.daily_category_activity(activity),
        "daily_funnel": analytics.daily_funnel(activity),
        "hourly_activity": analytics.hourly_activity(activity),
        "watch_time_hourly": analytics.watch_time_hourly(activity),
        "users": users,
        "user_profiles": analytics.user_profiles(activity),
        "popular_items": analytics.popular_items(activity, users, k),
        "item_popularity": analytics.item_popularity(activity),
        "value_distribution": analytics.value_distribution(activity),
    }


def build_analytics(spark, settings: Settings, ds: str) -> dict:
    tables = transform(
        extract(spark, settings, ds), settings.source, rating_scale(settings, ds), settings.top_k
    )
    rows = {}
    for name, frame in tables.items():
        path = settings.lake_path("analytics", name, ds)
        # Small tables: one file each, read back whole by the publish task and the report.
        frame.coalesce(1).write.mode("overwrite").parquet(path)
        rows[name] = spark.read.parquet(path).count()
    kpis = spark.read.parquet(settings.lake_path("analytics", "daily_kpis", ds))
    first, last = kpis.agg(F.min("activity_date"), F.max("activity_date")).first()
    # The days the run's aggregates cover: publish replaces exactly these days' rows.
    return {"rows": rows, "first_day": str(first), "last_day": str(last)}


if __name__ == "__main__":
    run_job("analytics", build_analytics, __doc__)
