"""The run report (recflow.report) on a tiny lake and SQLite warehouse written here: no Spark."""

from __future__ import annotations

import datetime
import decimal
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from recflow.config import PROJECT_ROOT, Settings
from recflow.facts import write_facts_file
from recflow.report import report_path, write_run_report
from recflow.report.data import ReportInputMissing
from recflow.warehouse.engine import make_engine
from recflow.warehouse.migrate import migrate

DS = "2026-11-20"
EARLIER = "2026-11-19"
DAYS = [datetime.date(2026, 11, 9) + datetime.timedelta(days=d) for d in range(12)]
TRICKY_TITLE = 'Amélie & <Co> "Le Film" 🎬'
CHARTS = {
    "feedback",
    "long_tail",
    "activity_heatmap",
    "daily_activity",
    "funnel",
    "metric_history",
    "tier_quality",
}
# Item i of N_ITEMS has 1000 // i interactions: a long tail whose head is easy to reckon by hand.
N_ITEMS = 50

# source -> what differs: the feedback distribution and the funnel's steps.
VARIANTS = {
    "movielens": {
        "distribution": [(1.0, "1.0", 120), (2.0, "2.0", 260), (3.0, "3.0", 700), (4.0, "4.0", 900), (5.0, "5.0", 520)],
        "steps": ["rated", "liked"],
    },
    "ecommerce": {
        "distribution": [(1.0, "view", 9000), (2.0, "cart", 1200), (3.0, "remove_from_cart", 150), (4.0, "purchase", 400)],
        "steps": ["view", "cart", "purchase"],
    },
    "tv": {
        "distribution": [(0.0, "< 5 min", 800), (5.0, "5-15 min", 600), (15.0, "15-30 min", 450),
                         (30.0, "30-45 min", 300), (45.0, "45-60 min", 650)],
        "steps": ["tuned in", "watched 5+ min", "watched 30+ min"],
    },
}  # fmt: skip


# --- the lake and the warehouse ------------------------------------------------------------------


def _write(settings: Settings, stage: str, table: str, rows: list[dict], schema: pa.Schema) -> None:
    folder = Path(settings.lake_path(stage, table, DS))
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "part-00000.parquet")
    (folder / "_SUCCESS").touch()


def build_lake(settings: Settings) -> None:
    """Every analytics table the report reads, the clean catalogue and the run's facts."""
    source = settings.source
    variant = VARIANTS[source]
    rated, shop, tv = source == "movielens", source == "ecommerce", source == "tv"
    _write(
        settings,
        "analytics",
        "daily_kpis",
        [
            {
                "activity_date": day,
                "n_interactions": 200 + 15 * d,
                "active_users": 40 + d,
                "new_users": 10 if d < 6 else 0,
                "active_items": 30,
                "avg_rating": 3.5 + d / 100 if rated else None,
                "purchases": 5 + d if shop else None,
                "revenue": decimal.Decimal("123.45") * (d + 1) if shop else None,
                "watch_seconds": 36_000 + 600 * d if tv else None,
            }
            for d, day in enumerate(DAYS)
        ],
        pa.schema(
            [
                ("activity_date", pa.date32()),
                ("n_interactions", pa.int64()),
                ("active_users", pa.int32()),
                ("new_users", pa.int32()),
                ("active_items", pa.int32()),
                ("avg_rating", pa.float64()),
                ("purchases", pa.int64()),
                ("revenue", pa.decimal128(18, 2)),
                ("watch_seconds", pa.int64()),
            ]
        ),  # fmt: skip
    )
    _write(
        settings,
        "analytics",
        "daily_category_activity",
        [
            {"activity_date": day, "category": category, "n_interactions": n * (d + 1), "active_users": n}
            for d, day in enumerate(DAYS)
            for category, n in (("Drama", 30), ("Comedy", 20), ("Sci-Fi & <Fantasy>", 5))
        ],
        pa.schema(
            [
                ("activity_date", pa.date32()),
                ("category", pa.string()),
                ("n_interactions", pa.int64()),
                ("active_users", pa.int32()),
            ]
        ),  # fmt: skip
    )
    _write(
        settings,
        "analytics",
        "daily_funnel",
        [
            {"activity_date": day, "step": s, "step_name": name, "n_events": 300 // s, "n_users": 60 // s}
            for day in DAYS
            for s, name in enumerate(variant["steps"], 1)
        ],
        pa.schema(
            [
                ("activity_date", pa.date32()),
                ("step", pa.int8()),
                ("step_name", pa.string()),
                ("n_events", pa.int64()),
                ("n_users", pa.int32()),
            ]
        ),  # fmt: skip
    )
    _write(
        settings,
        "analytics",
        "hourly_activity",
        [
            {"activity_date": day, "hour": h, "n_interactions": 5 + (h * 7 + d * 3) % 40, "active_users": 3}
            for d, day in enumerate(DAYS)
            for h in range(24)
        ],
        pa.schema(
            [
                ("activity_date", pa.date32()),
                ("hour", pa.int8()),
                ("n_interactions", pa.int64()),
                ("active_users", pa.int32()),
            ]
        ),  # fmt: skip
    )
    _write(
        settings,
        "analytics",
        "item_popularity",
        [
            {"item_id": f"i{i}", "n_users": 500 // i + 1, "n_interactions": 1000 // i}
            for i in range(1, N_ITEMS + 1)
        ],
        pa.schema([("item_id", pa.string()), ("n_users", pa.int64()), ("n_interactions", pa.int64())]),
    )
    _write(
        settings,
        "analytics",
        "popular_items",
        [
            {
                "segment_type": segment_type,
                "segment": segment,
                "rank": r,
                "item_id": f"i{r + offset}",
                "n_users": 500 // r,
                "n_interactions": 1000 // r,
                "avg_rating": 4.0 - r / 20 if rated else None,
            }
            for segment_type, segment, offset in (("overall", "all", 0), ("category", "Drama", 3))
            for r in range(1, 13)
        ],
        pa.schema(
            [
                ("segment_type", pa.string()),
                ("segment", pa.string()),
                ("rank", pa.int16()),
                ("item_id", pa.string()),
                ("n_users", pa.int64()),
                ("n_interactions", pa.int64()),
                ("avg_rating", pa.float64()),
            ]
        ),  # fmt: skip
    )
    _write(
        settings,
        "analytics",
        "value_distribution",
        [{"position": p, "label": label, "n": n} for p, label, n in variant["distribution"]],
        pa.schema([("position", pa.float64()), ("label", pa.string()), ("n", pa.int64())]),
    )
    _write(
        settings,
        "clean",
        "items",
        [
            {"item_id": f"i{i}", "title": TRICKY_TITLE if i == 1 else f"Item number {i}", "genres": "Drama"}
            for i in range(1, N_ITEMS + 1)
        ],
        pa.schema([("item_id", pa.string()), ("title", pa.string()), ("genres", pa.string())]),
    )
    write_facts_file(settings.lake_path("facts", "clean", DS), clean_facts())
    write_facts_file(settings.lake_path("facts", "train", DS), train_facts(settings))
    write_facts_file(settings.lake_path("facts", "evaluate", DS), evaluate_facts(rated))
    write_facts_file(settings.lake_path("facts", "recommend", DS), recommend_facts(settings))
    write_facts_file(
        settings.lake_path("facts", "analytics", DS),
        {"rows": {}, "first_day": DAYS[0].isoformat(), "last_day": DAYS[-1].isoformat()},
    )
    write_facts_file(
        settings.lake_path("facts", "validate_clean", DS),
        {
            "results": [
                {"suite": "clean_interactions", "expectation_key": "rows", "severity": "critical",
                 "success": True, "observed_value": "2800", "description": "rows left"},
                {"suite": "clean_interactions", "expectation_key": "row_count_change", "severity": "warning",
                 "success": False, "observed_value": "+80 %", "description": "row count against the last run"},
            ]
        },
    )  # fmt: skip


# The hybrid's content weight per tier, as tuned on validation (each one a point of the grid).
HYBRID_WEIGHTS = {"cold": 0.7, "warm": 0.3, "heavy": 0.0}
# tier -> weight -> validation ndcg@10 of the hybrid
HYBRID_GRID = {
    "cold": {0.0: 0.05, 0.3: 0.09, 0.7: 0.13},
    "warm": {0.0: 0.20, 0.3: 0.23, 0.7: 0.18},
    "heavy": {0.0: 0.34, 0.3: 0.33, 0.7: 0.25},
}
# tier -> model -> (ndcg@10, recall@10); n_users per tier. Best by ndcg: hybrid, als, als.
TIER_NDCG_RECALL = {
    "cold": {"als": (0.05, 0.06), "content": (0.09, 0.11), "hybrid": (0.12, 0.14), "popularity": (0.08, 0.10)},
    "warm": {"als": (0.21, 0.25), "content": (0.10, 0.12), "hybrid": (0.20, 0.24), "popularity": (0.12, 0.15)},
    "heavy": {"als": (0.36, 0.31), "content": (0.08, 0.07), "hybrid": (0.35, 0.30), "popularity": (0.15, 0.12)},
}  # fmt: skip
TIER_USERS = {"cold": 40, "warm": 120, "heavy": 60}
RULES = [
    {"rule": "exclude_seen", "enabled": True, "setting": None, "items_removed": 5400, "users_affected": 600},
    {"rule": "exclude_categories", "enabled": True, "setting": ["<Adult>", "Horror & Gore"],
     "items_removed": 120, "users_affected": 45},
    {"rule": "max_per_category", "enabled": False, "setting": 3, "items_removed": 0, "users_affected": 0},
    {"rule": "min_score", "enabled": True, "setting": 0.25, "items_removed": 1234567, "users_affected": 7},
]  # fmt: skip
SERVED_TIERS = {"new": 25, "cold": 40, "warm": 120, "heavy": 15}  # 200 users
SOURCES = {"als": 900, "content": 100, "hybrid": 600, "popular": 250, "segment_popular": 150}  # 2,000 rows


def train_facts(settings: Settings) -> dict:
    return {
        "model_version": settings.model_version(DS),
        "chosen": {"rank": 64, "reg_param": 0.3, "alpha": 2.0, "blend": 0.4, "hybrid_weights": HYBRID_WEIGHTS},
        "tuning": {
            "hybrid": {"metric": "ndcg@10", "seconds": 1.0, "trials": [
                {"tier": tier, "weight": weight, "ndcg@10": ndcg, "recall@10": ndcg + 0.02,
                 "n_users": TIER_USERS[tier] // 2}
                for tier, grid in HYBRID_GRID.items()
                for weight, ndcg in grid.items()
            ]}
        },
        "counts": {"n_interactions": 2800, "n_users": 60, "n_items": N_ITEMS},
        "rating_scale": [1.0, 5.0] if settings.source == "movielens" else None,
    }  # fmt: skip


def tier_metrics() -> dict:
    """Every metric of the evaluate step per tier and model, derived from ndcg and recall."""
    return {
        tier: {
            model: {"ndcg@10": ndcg, "recall@10": recall, "precision@10": recall / 2, "map@10": ndcg * 0.8,
                    "mrr@10": ndcg * 0.9, "hit_rate@10": min(1.0, recall * 3), "f1@10": recall * 0.6,
                    "n_users": float(TIER_USERS[tier])}
            for model, (ndcg, recall) in models.items()
        }
        for tier, models in TIER_NDCG_RECALL.items()
    }  # fmt: skip


def evaluate_facts(rated: bool) -> dict:
    return {
        "k": 10,
        "metrics": run_metrics(rated)[DS],
        "decision": decision(DS),
        "tier_metrics": tier_metrics(),
    }


def recommend_facts(settings: Settings) -> dict:
    return {
        "rows": 2000,
        "users": 200,
        "users_short_of_k": 0,
        "model_version": settings.model_version(DS),
        "rules": RULES,
        "tiers": SERVED_TIERS,
        "sources": SOURCES,
    }


def clean_facts() -> dict:
    return {
        "reconciliation": [
            {"table_name": "items", "raw_rows": 52, "clean_rows": N_ITEMS, "quarantined_rows": 1, "duplicate_rows": 1},
            {"table_name": "interactions", "raw_rows": 2810, "clean_rows": 2800, "quarantined_rows": 7,
             "duplicate_rows": 3},
        ],
        "quarantine": [
            {"table_name": "interactions", "reason": "unparseable timestamp", "column_name": "ts",
             "rows_quarantined": 7, "sample_file": "/data/raw/u.data", "sample_line": 17,
             "sample_row": "42\t<script>alert('x')</script>\t5\tyesterday"},
            {"table_name": "items", "reason": "title is empty", "column_name": "title", "rows_quarantined": 1,
             "sample_file": None, "sample_line": None, "sample_row": None},
        ],
    }  # fmt: skip


def run_metrics(rated: bool) -> dict[str, dict[str, dict[str, float]]]:
    """run date -> model -> metric -> value, for two runs (the second with a champion)."""
    first = {
        "als": {"ndcg@10": 0.31, "precision@10": 0.22, "coverage@10": 0.6},
        "popularity": {"ndcg@10": 0.18, "precision@10": 0.12, "coverage@10": 0.1},
    }
    second = {
        "als": {"ndcg@10": 0.34, "precision@10": 0.24, "coverage@10": 0.65},
        "content": {"ndcg@10": 0.15, "precision@10": 0.11, "coverage@10": 0.8},
        "hybrid": {"ndcg@10": 0.33, "precision@10": 0.23, "coverage@10": 0.7},
        "champion": {"ndcg@10": 0.30, "precision@10": 0.21, "coverage@10": 0.6},
        "popularity": {"ndcg@10": 0.19, "precision@10": 0.13, "coverage@10": 0.1},
    }
    if rated:
        for run, bias in ((first, 0.99), (second, 0.98)):
            run["als"]["rmse"] = bias - 0.03
            run["bias"] = {"rmse": bias}
        second["champion"]["rmse"] = 0.965
    return {EARLIER: first, DS: second}


def decision(ds: str) -> dict:
    if ds == EARLIER:
        return {"decision": "promoted", "promote": True, "forced": False, "primary_metric": "ndcg@10",
                "reason": "No champion yet: ndcg@10 0.3100 is published as the first model."}  # fmt: skip
    return {"decision": "promoted", "promote": True, "forced": False, "primary_metric": "ndcg@10",
            "reason": "Promoted: ndcg@10 0.3400 vs champion als-x 0.3000 <both on this run's split> & more."}  # fmt: skip


def build_warehouse(settings: Settings, run_dates: tuple[str, ...] = (EARLIER, DS)) -> None:
    """The runs' rows that v_model_performance joins: model_metrics, model_registry, model_runs."""
    engine = make_engine(None, settings.sqlite_path)
    try:
        migrate(engine, PROJECT_ROOT / "sql")
        metrics = run_metrics(settings.source == "movielens")
        with engine.begin() as conn:
            for run_date in run_dates:
                version = f"als-{run_date.replace('-', '')}-test"
                for model, values in metrics[run_date].items():
                    for label, value in values.items():
                        metric, _, k = label.partition("@")
                        conn.execute(
                            sa.text(
                                "INSERT INTO model_metrics (dataset, run_date, model_version, model, metric, k, value)"
                                " VALUES (:d, :r, :v, :m, :metric, :k, :value)"
                            ),
                            {"d": settings.dataset_name, "r": run_date, "v": version, "m": model,
                             "metric": metric, "k": int(k or 0), "value": value},
                        )  # fmt: skip
                gate = decision(run_date)
                conn.execute(
                    sa.text(
                        "INSERT INTO model_registry VALUES (:d, :r, :v, :decision, 0, 'ndcg@10', 0.3, NULL, NULL,"
                        " 0.01, :reason, '{}', '{}', '{}', '{}', '/lake/models', :champion)"
                    ),
                    {"d": settings.dataset_name, "r": run_date, "v": version, "decision": gate["decision"],
                     "reason": gate["reason"], "champion": run_date == run_dates[-1]},
                )  # fmt: skip
                conn.execute(
                    sa.text(
                        "INSERT INTO model_runs VALUES (:id, :d, :r, 'manual__1', :v, 'success', '{}', '{}', '{}',"
                        " 2800, 60, 50, 600)"
                    ),
                    {"id": f"{settings.dataset_name}/{run_date}", "d": settings.dataset_name, "r": run_date,
                     "v": version},
                )  # fmt: skip
    finally:
        engine.dispose()


# --- reading the page back -----------------------------------------------------------------------


class Page(HTMLParser):
    """The parts of the page the tests look at: text outside charts, each chart's shapes and
    text, and every tag name seen."""

    SHAPES = {"path", "rect", "use", "polyline", "polygon", "line", "circle"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.charts: dict[str, dict] = {}
        self.tags: set[str] = set()
        self.ids: list[str] = []
        self.references: set[str] = set()
        self._chart: str | None = None
        self._depth = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        for value in attrs.values():
            self.references.update(re.findall(r"url\(#([^)]+)\)", value or ""))
        if (attrs.get("xlink:href") or "").startswith("#"):
            self.references.add(attrs["xlink:href"][1:])
        if tag == "svg" and self._chart is None:
            self._chart = attrs.get("data-chart", "?")
            assert self._chart not in self.charts, f"two charts named {self._chart}"
            self.charts[self._chart] = {"shapes": 0, "text": []}
        if self._chart is not None:
            self._depth += 1
            if tag in self.SHAPES:
                self.charts[self._chart]["shapes"] += 1

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if self._chart is not None:
            self._depth -= 1
            if self._depth == 0:
                self._chart = None

    def handle_data(self, data):
        if self._chart is not None:
            self.charts[self._chart]["text"].append(data)
        else:
            self.text.append(data)

    def chart_text(self, name: str) -> str:
        return " ".join(" ".join(self.charts[name]["text"]).split())

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


class Tables(HTMLParser):
    """The tables of one <section id=...> of the page: per table, its rows as (class of the
    row, [text of each cell]), and the class of each cell."""

    def __init__(self, html: str, section: str) -> None:
        super().__init__(convert_charrefs=True)
        self.section = section
        self.tables: list[list[tuple[str, list[str]]]] = []
        self.cell_classes: list[list[list[str]]] = []
        self.found = False
        self._inside = 0  # section depth, 0 outside
        self._cell: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            if self._inside:
                self._inside += 1
            elif attrs.get("id") == self.section:
                self.found, self._inside = True, 1
        if not self._inside:
            return
        if tag == "table":
            self.tables.append([])
            self.cell_classes.append([])
        elif tag == "tr":
            self.tables[-1].append((attrs.get("class") or "", []))
            self.cell_classes[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
            self.cell_classes[-1][-1].append(attrs.get("class") or "")

    def handle_endtag(self, tag):
        if tag == "section" and self._inside:
            self._inside -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture
def make_run(settings_factory):
    def make(source: str = "movielens", warehouse: tuple[str, ...] = (EARLIER, DS)) -> Settings:
        settings = settings_factory(source=source, dataset=f"{source}-report")
        build_lake(settings)
        if warehouse:
            build_warehouse(settings, warehouse)
        return settings

    return make


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(VARIANTS))
def test_every_source_gets_a_page_with_every_chart_drawn(make_run, source):
    settings = make_run(source)

    path = write_run_report(settings, DS)

    assert (
        path == settings.data_dir / "reports" / f"{source}-report" / f"{DS}.html" == report_path(settings, DS)
    )
    page = Page(path.read_text(encoding="utf-8"))
    assert set(page.charts) == CHARTS
    for name, chart in page.charts.items():
        assert chart["shapes"] > 10, f"{name} draws almost nothing: {chart['shapes']} shapes"
    # The 7 x 24 heat map is one quad per cell.
    assert page.charts["activity_heatmap"]["shapes"] >= 7 * 24
    assert not {"script", "link", "img", "iframe"} & page.tags  # self-contained: nothing to fetch
    # Six figures in one page: ids unique, and every reference (clip paths, markers) resolves.
    assert len(page.ids) == len(set(page.ids))
    assert page.references and page.references <= set(page.ids)
    for step in VARIANTS[source]["steps"]:
        assert step in page.chart_text("funnel")
        assert step in page.all_text
    for _, label, _ in VARIANTS[source]["distribution"]:
        assert label in page.chart_text("feedback")
    assert f"{source}-report" in page.all_text and DS in page.all_text
    assert settings.model_version(DS) in page.all_text


def test_funnel_conversion_is_from_the_first_step_over_all_days(make_run):
    page = Page(write_run_report(make_run("ecommerce"), DS).read_text(encoding="utf-8"))

    # Every day: view 60 users, cart 30, purchase 20 -> 12 days sum to 720, 360, 240.
    rows = re.findall(r"(\d) (view|cart|purchase) ([\d,]+) ([\d,]+) ([\d.]+%)", page.all_text)
    assert rows == [
        ("1", "view", "720", "3,600", "100.0%"),
        ("2", "cart", "360", "1,800", "50.0%"),
        ("3", "purchase", "240", "1,200", "33.3%"),
    ]
    assert "33.3%" in page.chart_text("funnel")


def test_the_long_tail_names_the_share_of_the_head(make_run):
    page = Page(write_run_report(make_run(), DS).read_text(encoding="utf-8"))

    counts = [1000 // i for i in range(1, N_ITEMS + 1)]
    head_share = sum(counts[:10]) / sum(counts)  # the top 20 % of 50 items is 10 items
    assert f"{head_share:.0%}" == "65%"
    text = page.chart_text("long_tail")
    assert "top 20% of items (10)" in text and "65% of interactions" in text


def test_text_from_the_data_is_escaped(make_run):
    html = write_run_report(make_run(), DS).read_text(encoding="utf-8")
    page = Page(html)

    assert TRICKY_TITLE in page.all_text  # shown as written, emoji and all
    assert "Amélie &amp; &lt;Co&gt; &#34;Le Film&#34; 🎬" in html
    assert "<Co>" not in html and "<Fantasy>" not in html
    assert "Sci-Fi & <Fantasy>" in page.all_text
    assert "<script>alert('x')</script>" in page.all_text  # the quarantined row, as text
    assert "script" not in page.tags
    assert "<both on this run's split> & more." in page.all_text  # the gate's reason


def test_metric_history_shows_every_run_date(make_run):
    page = Page(write_run_report(make_run(), DS).read_text(encoding="utf-8"))

    history = page.chart_text("metric_history")
    for run_date in (EARLIER, DS):
        assert run_date in history
        assert f"{run_date} als-{run_date.replace('-', '')}-test" in page.all_text  # the runs table
    for label in ("ndcg@10", "precision@10", "rmse"):
        assert label in history
    for model in ("als", "content", "hybrid", "champion", "popularity", "bias"):
        assert model in history  # legend
    # The current run's table: the gate's metric first and marked; models als, content, hybrid,
    # champion, popularity.
    assert re.search(r"ndcg@10 \(gate\) 0\.3400 0\.1500 0\.3300 0\.3000 0\.1900", page.all_text)
    assert "first run" not in history


def test_a_first_run_shows_points_and_says_so(make_run):
    page = Page(write_run_report(make_run(warehouse=(DS,)), DS).read_text(encoding="utf-8"))

    history = page.chart_text("metric_history")
    assert DS in history and EARLIER not in history
    assert "first run" in history
    assert page.charts["metric_history"]["shapes"] > 10


def test_later_runs_stay_out_of_an_earlier_date_s_history(make_run):
    settings = make_run()
    for name in ("evaluate", "train"):
        shutil.rmtree(settings.lake_path("facts", name, DS))
    # Re-render the page of the earlier date from the same lake: only its own run.
    for stage_root in Path(settings.lake).glob(f"*/{settings.dataset_name}/*/dt={DS}"):
        stage_root.rename(stage_root.with_name(f"dt={EARLIER}"))

    page = Page(write_run_report(settings, EARLIER).read_text(encoding="utf-8"))

    assert EARLIER in page.chart_text("metric_history")
    assert DS not in page.chart_text("metric_history")


def test_steps_that_did_not_run_are_named_not_fatal(make_run):
    settings = make_run(warehouse=())
    for name in ("evaluate", "train", "clean"):
        shutil.rmtree(settings.lake_path("facts", name, DS))

    page = Page(write_run_report(settings, DS).read_text(encoding="utf-8"))

    text = page.all_text
    assert "Steps without facts" in text
    for task in ("evaluate_models", "train_als", "clean_interactions", "validate_raw_data"):
        assert task in text
    assert "generate_recommendations" not in text  # its facts are there
    assert "no gate decision" in text
    assert "No row accounting" in text
    assert "no metrics in the warehouse" in page.chart_text("metric_history")
    assert set(page.charts) == CHARTS - {"tier_quality"}  # no evaluation, no tier metrics
    assert "Quality by user tier" not in text
    assert not settings.sqlite_path.exists()  # reading the history created no empty warehouse


def test_a_missing_analytics_table_is_an_error_naming_its_path(make_run):
    settings = make_run(warehouse=())
    missing = settings.lake_path("analytics", "hourly_activity", DS)
    shutil.rmtree(missing)

    with pytest.raises(ReportInputMissing, match=re.escape(missing)):
        write_run_report(settings, DS)
    assert not report_path(settings, DS).exists()


def test_the_same_inputs_give_the_same_bytes(make_run):
    settings = make_run("tv")
    first = write_run_report(settings, DS).read_bytes()
    second = write_run_report(settings, DS).read_bytes()

    assert first == second
    assert b"<svg" in first and b"<?xml" not in first


# --- model comparison per tier, business rules, who got what ---------------------------------------


def test_quality_by_user_tier_marks_the_best_model_and_the_tuned_weight(make_run):
    html = write_run_report(make_run(), DS).read_text(encoding="utf-8")
    tables = Tables(html, "tiers")

    assert tables.found
    table, grid = tables.tables
    header = table[0][1]
    # The metrics at k in the house order (ndcg first, as in the run's metrics table), then users.
    assert header == ["tier", "model", "ndcg@10", "precision@10", "recall@10", "map@10", "mrr@10",
                      "hit_rate@10", "f1@10", "users"]  # fmt: skip
    rows = table[1:]
    assert len(rows) == 3 * 4  # tier x model
    # The tier cell spans its four rows and carries the hybrid's tuned content weight.
    assert rows[0][1][0] == "cold hybrid content weight 0.70"
    assert rows[4][1][0] == "warm hybrid content weight 0.30"
    assert rows[8][1][0] == "heavy hybrid content weight 0.00"
    models = [cells[-9] for _, cells in rows]  # model, 7 metrics, users
    assert models == ["als", "content", "hybrid (best)", "popularity",
                      "als (best)", "content", "hybrid", "popularity",
                      "als (best)", "content", "hybrid", "popularity"]  # fmt: skip
    assert [cls for cls, _ in rows].count("primary") == 3
    assert rows[2][0] == "primary" and rows[4][0] == "primary" and rows[8][0] == "primary"
    # cold hybrid: ndcg 0.12, precision 0.07, recall 0.14, map 0.096, mrr 0.108, hit 0.42, f1 0.084
    assert rows[2][1][-8:] == ["0.1200", "0.0700", "0.1400", "0.0960", "0.1080", "0.4200", "0.0840", "40"]
    assert rows[4][1][-1] == "120" and rows[8][1][-1] == "60"

    # The validation grid: one row per tier, the chosen weight marked.
    assert grid[0][1] == ["tier", "users", "0.00", "0.30", "0.70"]
    assert [cells for _, cells in grid[1:]] == [
        ["cold", "20", "0.0500", "0.0900", "0.1300 ✓"],
        ["warm", "60", "0.2000", "0.2300 ✓", "0.1800"],
        ["heavy", "30", "0.3400 ✓", "0.3300", "0.2500"],
    ]
    chosen = [[c == "num chosen" for c in row] for row in tables.cell_classes[1][1:]]
    assert chosen == [[False, False, False, False, True], [False, False, False, True, False],
                      [False, False, True, False, False]]  # fmt: skip
    # The generic chosen-settings table keeps scalars; the weights dict is not dumped there.
    assert "{&#39;cold&#39;" not in html and "hybrid_weights" not in html


def test_the_tier_chart_draws_recall_and_ndcg_per_tier_and_model(make_run):
    page = Page(write_run_report(make_run(), DS).read_text(encoding="utf-8"))

    chart = page.charts["tier_quality"]
    assert chart["shapes"] > 3 * 4 * 2  # a bar per tier, model and metric, and the axes
    text = page.chart_text("tier_quality")
    for word in ("recall@10", "ndcg@10", "cold", "warm", "heavy", "120 users", "als", "content", "hybrid",
                 "popularity"):  # fmt: skip
        assert word in text
    # Bar labels: cold hybrid's recall and heavy als's ndcg.
    assert "0.140" in text and "0.360" in text


def test_business_rules_and_who_got_what(make_run):
    html = write_run_report(make_run("ecommerce"), DS).read_text(encoding="utf-8")

    (rules,) = Tables(html, "rules").tables
    assert rules[0][1] == ["rule", "enabled", "setting", "items removed", "users affected"]
    assert rules[1:] == [
        ("", ["exclude_seen", "yes", "–", "5,400", "600"]),
        ("", ["exclude_categories", "yes", "<Adult>, Horror & Gore", "120", "45"]),
        ("off", ["max_per_category", "no", "3", "0", "0"]),
        ("", ["min_score", "yes", "0.25", "1,234,567", "7"]),
    ]
    assert "&lt;Adult&gt;, Horror &amp; Gore" in html and "<Adult>" not in html

    tiers, sources = Tables(html, "served").tables
    # Tiers in their natural order, not the facts' alphabetical one.
    assert [cells for _, cells in tiers[1:]] == [
        ["new", "25", "12.5%"], ["cold", "40", "20.0%"], ["warm", "120", "60.0%"], ["heavy", "15", "7.5%"],
    ]  # fmt: skip
    assert [cells for _, cells in sources[1:]] == [
        ["als", "900", "45.0%"], ["content", "100", "5.0%"], ["hybrid", "600", "30.0%"],
        ["popular", "250", "12.5%"], ["segment_popular", "150", "7.5%"],
    ]  # fmt: skip


def test_runs_without_the_new_facts_leave_the_sections_out(make_run):
    settings = make_run()
    # A run from before tiers, hybrid and rules: the facts as those steps wrote them then.
    old_train = train_facts(settings)
    del old_train["tuning"]
    del old_train["chosen"]["hybrid_weights"]
    write_facts_file(settings.lake_path("facts", "train", DS), old_train)
    write_facts_file(
        settings.lake_path("facts", "evaluate", DS),
        {"k": 10, "metrics": run_metrics(True)[DS], "decision": decision(DS)},
    )
    write_facts_file(
        settings.lake_path("facts", "recommend", DS),
        {"rows": 2000, "users": 200, "users_short_of_k": 0, "model_version": settings.model_version(DS)},
    )

    html = write_run_report(settings, DS).read_text(encoding="utf-8")
    page = Page(html)

    assert set(page.charts) == CHARTS - {"tier_quality"}
    for section in ("tiers", "rules", "served"):
        assert not Tables(html, section).found, section
    for heading in ("Quality by user tier", "Business rules", "Who got what", "Hybrid weight tuning"):
        assert heading not in page.all_text
    assert "Chosen settings" in page.all_text and "reg_param" in page.all_text
    assert "generate_recommendations" not in page.all_text  # it ran: only its facts are older


def test_a_run_without_recommendations_names_the_step(make_run):
    settings = make_run(warehouse=())
    shutil.rmtree(settings.lake_path("facts", "recommend", DS))

    html = write_run_report(settings, DS).read_text(encoding="utf-8")
    page = Page(html)

    assert "generate_recommendations" in page.all_text
    assert not Tables(html, "rules").found and not Tables(html, "served").found
    assert Tables(html, "tiers").found  # the evaluation's tiers do not need the recommendations
