"""Fixtures for the warehouse tests: a throwaway MariaDB/MySQL database per test, SQLite files, bundles."""

from __future__ import annotations

import datetime
import decimal
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from recflow.warehouse.engine import make_engine
from recflow.warehouse.publish import ANALYTICS, PublishBundle

SQL_ROOT = Path(__file__).resolve().parents[2] / "sql"

TABLES = [
    "recommendations",
    "items",
    "model_runs",
    "model_metrics",
    "data_quality_results",
    "data_reconciliation",
    "quarantine_summary",
    "model_registry",
    "similar_items",
    "recommendation_rules",
    "recommendation_blocklist",
    *ANALYTICS,
]
# A user's tier and where the user's list comes from (spark_jobs/recommend.py picks the source
# by tier); the bundles give user u<n> the tier TIERS[n % 4].
TIERS = ("new", "cold", "warm", "heavy")
TIER_SOURCES = {"new": "popular", "cold": "content", "warm": "hybrid", "heavy": "als"}


@pytest.fixture(scope="session")
def sql_root() -> Path:
    return SQL_ROOT


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(None, default_sqlite_path=tmp_path / "warehouse" / "recflow.db")
    yield engine
    engine.dispose()


@pytest.fixture
def make_bundle() -> Callable[..., PublishBundle]:
    return build_bundle


@pytest.fixture(name="metric_rows")
def metric_rows_fixture() -> Callable[[PublishBundle], int]:
    return metric_rows


def build_bundle(
    dataset: str = "A",
    run_date: datetime.date = datetime.date(2024, 5, 1),
    n_users: int = 50,
    k: int = 10,
    seed: int = 0,
    model_version: str = "als-1",
    promote: bool = True,
    champion: tuple[str, float] | None = None,
    days: int = 3,
) -> PublishBundle:
    """A deterministic bundle with n_users * k recommendations.

    The registry row says the gate promoted the run (or rejected it, with ``promote=False``)
    after comparing its ndcg@10 with ``champion`` = (model_version, ndcg@10), or with none.
    User u<n> is in tier TIERS[n % 4]; similar_items, rule_log and tier_metrics vary with ``seed``."""
    rng = random.Random(seed)
    n_items = 200
    tiers = [TIERS[user % len(TIERS)] for user in range(n_users) for _ in range(k)]
    recommendations = pa.table(
        {
            "user_id": [f"u{user}" for user in range(n_users) for _ in range(k)],
            # k distinct items per user, as a real list has (check_served_set flags repeats)
            "item_id": [f"i{item}" for _ in range(n_users) for item in rng.sample(range(n_items), k)],
            "rank": pa.array([rank for _ in range(n_users) for rank in range(1, k + 1)], pa.int32()),
            "score": [rng.uniform(0, 5) for _ in range(n_users * k)],
            "source": [TIER_SOURCES[tier] for tier in tiers],
            "reason": [
                f"people with tastes like yours rated it ({dataset}) — «é» 🎬" for _ in range(n_users * k)
            ],
            "user_tier": tiers,
        }
    )
    items = pa.table(
        {
            "item_id": [f"i{item}" for item in range(n_items)],
            "title": [f"Film {item} ({dataset}, seed {seed}) — «é»" for item in range(n_items)],
            "genres": ["Comedy|Drama" if item % 2 else None for item in range(n_items)],
            "category": [None if item % 3 else "electronics.smartphone" for item in range(n_items)],
            "brand": [None if item % 3 else "acme" for item in range(n_items)],
            "price": [None if item % 3 else item + 0.99 for item in range(n_items)],
        }
    )
    params = {"rank": 16, "reg_param": 0.1, "max_iter": 10, "seed": seed}
    metrics = {
        "als": {"rmse": 0.91 + seed / 100, "ndcg@10": 0.21, "precision@10": 0.12},
        "popularity": {"ndcg@10": 0.1, "precision@10": 0.05},
    }
    challenger = metrics["als"]["ndcg@10"]
    if champion is None:
        reason = f"promoted: no champion yet, {model_version} has ndcg@10 {challenger}"
    else:
        verb = "promoted" if promote else "rejected"
        reason = f"{verb}: {model_version} has ndcg@10 {challenger} against {champion[0]}'s {champion[1]}"
    registry = {
        "model_version": model_version,
        "decision": "promoted" if promote else "rejected",
        "forced": False,
        "primary_metric": "ndcg@10",
        "challenger_value": challenger,
        "champion_version": champion[0] if champion else None,
        "champion_value": champion[1] if champion else None,
        "tolerance": 0.01,
        "reason": reason,
        "params": params,
        "tuning": {
            "trials": [{"params": {"rank": 8}, "ndcg@10": 0.18}, {"params": {"rank": 16}, "ndcg@10": 0.21}],
            "wall_time_s": 12.5,
        },
        "data_snapshot": {
            "lake_path": f"file:/lake/{dataset}/clean/interactions/{run_date.isoformat()}",
            "rows": {"train": 80_000 + seed, "test": 20_000},
            "date": run_date.isoformat(),
        },
        "metrics": metrics,
        "model_path": f"file:/lake/{dataset}/models/{model_version}",
    }
    return PublishBundle(
        dataset=dataset,
        run_date=run_date,
        dag_run_id=f"scheduled__{run_date.isoformat()}T00:00:00+00:00",
        model_version=model_version,
        params=params,
        metrics=metrics,
        task_timings={"extract": 1.5, "train": 42.0, "publish": 3.25},
        counts={"n_interactions": 100_000 + seed, "n_users": n_users, "n_items": n_items},
        recommendations=recommendations,
        items=items,
        quality_results=[
            {
                "suite": "ratings",
                "expectation_key": "rating_between_0_5",
                "expectation_type": "expect_column_values_to_be_between",
                "column_name": "rating",
                "severity": "critical",
                "success": True,
                "observed_value": {"min": 0.5, "max": 5.0},
                "unexpected_count": 0,
                "element_count": 100_000,
            },
            {
                "suite": "ratings",
                "expectation_key": "row_count",
                "expectation_type": "expect_table_row_count_to_be_between",
                "column_name": None,
                "severity": "warning",
                "success": False,
                "observed_value": "100000",
                "unexpected_count": None,
                "element_count": None,
            },
        ],
        reconciliation=[
            {
                "table_name": "ratings",
                "raw_rows": 100_010,
                "clean_rows": 100_000,
                "quarantined_rows": 7,
                "duplicate_rows": 3,
            }
        ],
        quarantine=[
            {
                "table_name": "ratings",
                "reason": "rating out of range",
                "column_name": "rating",
                "rows_quarantined": 7,
                "sample_file": "ratings.csv",
                "sample_line": 1234,
                "sample_row": "1,31,7.5,1260759144",
            }
        ],
        promote=promote,
        registry=registry,
        analytics=build_analytics(run_date, n_users, n_items, days, seed),
        similar_items=build_similar_items(n_items, seed),
        rule_log=build_rule_log(seed),
        tier_metrics=build_tier_metrics(seed),
    )


def build_similar_items(n_items: int, seed: int, per_item: int = 5, items: int = 40) -> pa.Table:
    """The first ``items`` items' top ``per_item`` similar items, as spark_jobs/recommend.py writes them
    (item ids as strings, rank an int, score a double)."""
    rng = random.Random(seed + 2)
    return pa.table(
        {
            "item_id": [f"i{item}" for item in range(items) for _ in range(per_item)],
            "rank": pa.array([rank for _ in range(items) for rank in range(1, per_item + 1)], pa.int32()),
            "similar_item_id": [f"i{rng.randrange(n_items)}" for _ in range(items * per_item)],
            "score": [round(rng.uniform(0.2, 1.0), 6) for _ in range(items * per_item)],
        }
    )


def build_rule_log(seed: int) -> list[dict]:
    """The recommend facts' "rules": what each business rule removed."""
    return [
        {"rule": "seen", "enabled": True, "setting": "items seen in the last 30 days",
         "items_removed": 1200 + seed, "users_affected": 48},
        {"rule": "blocklist", "enabled": True, "setting": None, "items_removed": 3 + seed, "users_affected": 3},
        {"rule": "availability", "enabled": False, "setting": None, "items_removed": 0, "users_affected": 0},
        {"rule": "diversity", "enabled": True, "setting": "max 4 per category — «é»",
         "items_removed": 77, "users_affected": 20 + seed},
    ]  # fmt: skip


def build_tier_metrics(seed: int) -> dict:
    """The evaluate facts' "tier_metrics": cold and warm filled, heavy empty (a tier may be)."""
    return {
        "cold": {
            "content": {"ndcg@10": 0.08 + seed / 1000, "recall@10": 0.05, "n_users": 12.0},
            "popularity": {"ndcg@10": 0.04, "recall@10": 0.03, "n_users": 12.0},
        },
        "warm": {"als": {"ndcg@10": 0.23, "recall@10": 0.2, "n_users": 30.0}},
        "heavy": {},
    }


def metric_rows(bundle: PublishBundle) -> int:
    """How many model_metrics rows a bundle's metrics and tier metrics make."""
    return sum(
        len(values)
        for models in (bundle.metrics, *bundle.tier_metrics.values())
        for values in models.values()
    )


def build_analytics(
    run_date: datetime.date, n_users: int, n_items: int, days: int, seed: int
) -> dict[str, pa.Table]:
    """Small analytics tables like spark_jobs/analytics.py writes: `days` days of daily rows
    ending the day before ``run_date``, values varying with ``seed``."""
    rng = random.Random(seed + 1)
    dates = [run_date - datetime.timedelta(days=days - d) for d in range(days)]
    users = [f"u{user}" for user in range(n_users)]
    seen = datetime.datetime(2024, 1, 1, 12, 30, 5)
    money = pa.decimal128(18, 2)
    return {
        "users": pa.table(
            {
                "user_id": users,
                "gender": ["F" if u % 2 else "M" for u in range(n_users)],
                "age": pa.array([18 + u % 40 for u in range(n_users)], pa.int16()),
                "age_group": ["25-34" if u % 2 else "18-24" for u in range(n_users)],
                "occupation": ["writer" if u % 3 else "médecin" for u in range(n_users)],
                "zip_code": [f"{10000 + u}" for u in range(n_users)],
                "first_seen": pa.array([seen] * n_users, pa.timestamp("us", tz="UTC")),
                "last_seen": pa.array(
                    [seen + datetime.timedelta(days=u, microseconds=999) for u in range(n_users)],
                    pa.timestamp("us", tz="UTC"),
                ),
                "n_interactions": [rng.randrange(1, 100) for _ in users],
            }
        ),
        "user_profiles": pa.table(
            {
                "user_id": users,
                "n_interactions": [rng.randrange(1, 100) for _ in users],
                "n_items": pa.array([rng.randrange(1, 50) for _ in users], pa.int32()),
                "active_days": pa.array([rng.randrange(1, 9) for _ in users], pa.int32()),
                "activity_level": [rng.choice(["light", "regular", "heavy"]) for _ in users],
                "top_categories": ["Drama|Comedy|Film-Noir" for _ in users],
                "top_category": ["Drama" for _ in users],
                "top_category_share": [round(rng.random(), 6) for _ in users],
                "active_hours": ["20|21|9" for _ in users],
                "peak_hour": pa.array([20] * n_users, pa.int8()),
                "active_weekdays": ["Sat|Sun|Fri" for _ in users],
                "peak_weekday": ["Sat" for _ in users],
                "avg_rating": [round(rng.uniform(1, 5), 6) for _ in users],
                "purchases": pa.nulls(n_users, pa.int64()),
                "revenue": pa.nulls(n_users, money),
                "watch_seconds": pa.nulls(n_users, pa.int64()),
            }
        ),
        "popular_items": pa.table(
            {
                "segment_type": ["overall"] * 3 + ["gender"] * 3,
                "segment": ["all"] * 3 + ["F"] * 3,
                "rank": pa.array([1, 2, 3] * 2, pa.int16()),
                "item_id": [f"i{rng.randrange(n_items)}" for _ in range(6)],
                "n_users": [30, 20, 10, 15, 9, 3],
                "n_interactions": [31, 22, 10, 15, 9, 4],
                "avg_rating": [4.5, 4.0, None, 3.5, 3.25, 3.0],
            }
        ),
        "daily_kpis": pa.table(
            {
                "activity_date": dates,
                "n_interactions": [rng.randrange(100, 1000) for _ in dates],
                "active_users": pa.array([rng.randrange(1, n_users) for _ in dates], pa.int32()),
                "new_users": pa.array([rng.randrange(0, 5) for _ in dates], pa.int32()),
                "active_items": pa.array([rng.randrange(1, n_items) for _ in dates], pa.int32()),
                "avg_rating": [round(rng.uniform(1, 5), 6) for _ in dates],
                "purchases": [rng.randrange(0, 9) for _ in dates],
                "revenue": pa.array(
                    [decimal.Decimal(f"{rng.randrange(0, 10**6)}.{rng.randrange(100):02d}") for _ in dates],
                    money,
                ),
                "watch_seconds": pa.nulls(days, pa.int64()),
            }
        ),
        "daily_category_activity": pa.table(
            {
                "activity_date": [d for d in dates for _ in range(2)],
                "category": ["Drama", "Comédie"] * days,
                "n_interactions": [rng.randrange(1, 99) for _ in range(2 * days)],
                "active_users": pa.array([rng.randrange(1, 9) for _ in range(2 * days)], pa.int32()),
                "revenue": pa.nulls(2 * days, money),
                "watch_seconds": pa.nulls(2 * days, pa.int64()),
            }
        ),
        "daily_funnel": pa.table(
            {
                "activity_date": [d for d in dates for _ in range(3)],
                "step": pa.array([1, 2, 3] * days, pa.int8()),
                "step_name": ["view", "cart", "purchase"] * days,
                "n_events": [n for _ in dates for n in (100 + seed, 20, 5)],
                "n_users": pa.array([n for _ in dates for n in (40, 10, 4)], pa.int32()),
            }
        ),
        "hourly_activity": pa.table(
            {
                "activity_date": [d for d in dates for _ in range(24)],
                "hour": pa.array(list(range(24)) * days, pa.int8()),
                "n_interactions": [rng.randrange(0, 50) for _ in range(24 * days)],
                "active_users": pa.array([rng.randrange(0, 9) for _ in range(24 * days)], pa.int32()),
            }
        ),
        "watch_time_hourly": pa.table(
            {
                "activity_date": dates,
                "item_id": ["ch1"] * days,
                "hour": pa.array([20] * days, pa.int8()),
                "watch_seconds": [rng.randrange(60, 3600) for _ in dates],
                "viewers": pa.array([rng.randrange(1, 9) for _ in dates], pa.int32()),
            }
        ),
    }


@pytest.fixture
def table_rows() -> Callable[..., list[tuple]]:
    return all_rows


def all_rows(engine: sa.Engine, table: str, where: str = "") -> list[tuple]:
    """Every row of ``table`` (optionally filtered), in a stable order, for exact comparisons."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT * FROM {table} {where}").all()
    return sorted((tuple(row) for row in rows), key=repr)


@pytest.fixture
def warehouse_state() -> Callable[[sa.Engine], dict[str, list[tuple]]]:
    """All rows of every published table (and schema_migrations), to compare whole warehouses."""
    return lambda engine: {table: all_rows(engine, table) for table in [*TABLES, "schema_migrations"]}


# --- accounts (the BI reader) -----------------------------------------------------------------


@pytest.fixture
def new_account(mysql_server_url: sa.URL) -> Iterator[Callable[[], str]]:
    """`new_account()` -> an unused account name; every one is dropped at the end of the test."""
    names: list[str] = []

    def make() -> str:
        names.append(f"bi_reader_t{uuid.uuid4().hex[:10]}")
        return names[-1]

    yield make
    admin = sa.create_engine(mysql_server_url, poolclass=sa.NullPool)
    with admin.connect() as conn:
        for name in names:
            for host in conn.execute(
                sa.text("SELECT Host FROM mysql.user WHERE User = :u"), {"u": name}
            ).scalars():
                conn.execute(sa.text("DROP USER :u@:h"), {"u": name, "h": host})
    admin.dispose()


@pytest.fixture
def bi_reader(new_account) -> Callable[[sa.Engine], sa.Engine]:
    """`bi_reader(warehouse)` -> an engine logged in as a new read-only BI account of that
    (migrated) warehouse, created by recflow.warehouse.grants as `make bi-reader` creates it."""
    from recflow.warehouse.grants import grant_bi_reader

    def make(warehouse: sa.Engine) -> sa.Engine:
        user, password = new_account(), "reader-password"
        grant_bi_reader(warehouse, password, user, apply_migrations=False)
        return sa.create_engine(warehouse.url.set(username=user, password=password), poolclass=sa.NullPool)

    return make
