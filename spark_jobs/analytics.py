"""Analytics aggregates of the clean data (daily KPIs, funnel, activity, popularity, profiles)
for the warehouse and the run report. Needs only the clean tables, so it runs beside training."""

from __future__ import annotations

import dataclasses

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recflow import analytics
from recflow.config import Settings
from recflow.facts import is_directory
from recflow.ingest import rating_scale
from recflow.jobs import Job


def extract(spark, settings: Settings, ds: str) -> dict[str, DataFrame | None]:
    def clean(table: str) -> DataFrame | None:
        path = settings.lake_path("clean", table, ds)
        return spark.read.parquet(path) if is_directory(path) else None

    tables = {table: clean(table) for table in ("interactions", "items", "users")}
    # Items blocked for every user stay out of the cold-start lists (the DAG exports the
    # warehouse's blocklist before this task; a run without one blocks nothing).
    blocklist = settings.lake_path("rules", "blocklist", ds)
    blocked = spark.read.parquet(blocklist).where(F.col("user_id") == "") if is_directory(blocklist) else None
    return tables | {"blocked": blocked}


def transform(
    clean: dict[str, DataFrame | None],
    source: str,
    scale: tuple[float, float] | None,
    k: int,
    trending_days: int = analytics.TRENDING_DAYS,
) -> dict[str, DataFrame]:
    activity = analytics.prepare(clean["interactions"], clean["items"], source, scale)
    # Every aggregate starts from these two.
    activity = dataclasses.replace(
        activity, events=activity.events.cache(), categories=activity.categories.cache()
    )
    users = analytics.users(activity, clean["users"], clean["interactions"].select("user_id", "ts")).cache()
    return {
        "daily_kpis": analytics.daily_kpis(activity),
        "daily_category_activity": analytics.daily_category_activity(activity),
        "daily_funnel": analytics.daily_funnel(activity),
        "hourly_activity": analytics.hourly_activity(activity),
        "watch_time_hourly": analytics.watch_time_hourly(activity),
        "users": users,
        "user_profiles": analytics.user_profiles(activity),
        "popular_items": analytics.popular_items(
            activity, users, k, trending_days=trending_days, blocked=clean.get("blocked")
        ),
        "item_popularity": analytics.item_popularity(activity),
        "value_distribution": analytics.value_distribution(activity),
    }


# A row per user: 1M rows for a month of a large shop. Written by as many tasks as computed
# them; one file would funnel the last stage of the job through a single core.
PER_USER_TABLES = frozenset({"users", "user_profiles"})


def build_analytics(spark, settings: Settings, ds: str) -> dict:
    tables = transform(
        extract(spark, settings, ds), settings.source, rating_scale(settings, ds), settings.top_k
    )
    written = {}
    for name, frame in tables.items():
        path = settings.lake_path("analytics", name, ds)
        # The others are small (a row per day, hour, category or top item): one file each.
        (frame if name in PER_USER_TABLES else frame.coalesce(1)).write.mode("overwrite").parquet(path)
        written[name] = spark.read.parquet(path)
    rows = {name: frame.count() for name, frame in written.items()}
    first, last = written["daily_kpis"].agg(F.min("activity_date"), F.max("activity_date")).first()
    # The days the run's aggregates cover: publish replaces exactly these days' rows.
    return {"rows": rows, "first_day": str(first), "last_day": str(last)}


JOB = Job("analytics", build_analytics, __doc__)

if __name__ == "__main__":
    JOB.main()
