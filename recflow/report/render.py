"""Fill the run report's template and write the page: `write_run_report(settings, ds)`.

Every piece of text from the data (titles, reasons, step names, sample rows) goes through
jinja2's autoescaping; only the chart SVG, which matplotlib has already escaped, is marked safe.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from recflow.config import Settings, check_date
from recflow.report import charts
from recflow.report.data import (
    FACT_NAMES,
    REC_SOURCES,
    TIERS,
    ReportData,
    funnel_totals,
    gather,
    history_labels,
    in_order,
    long_tail,
    tier_table,
)

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "run_report.html.j2"
HEAD_FRACTION = 0.2
HISTORY_ROWS = 20  # runs listed in the history table (the chart shows them all)
# Metric rows of the current-run table in this order; others follow alphabetically.
METRIC_ORDER = ("ndcg", "precision", "recall", "map", "mrr", "hit_rate", "f1", "coverage", "long_tail_share",
                "rmse", "mae", "mse")  # fmt: skip
STEP_TITLES = {
    "validate_raw": "validate_raw_data",
    "clean": "clean_interactions",
    "validate_clean": "validate_clean_data",
    "train": "train_als",
    "evaluate": "evaluate_models",
    "recommend": "generate_recommendations",
    "analytics": "build_analytics",
}


def report_path(settings: Settings, ds: str) -> Path:
    return settings.data_dir / "reports" / settings.dataset_name / f"{check_date(ds)}.html"


def write_run_report(settings: Settings, ds: str) -> Path:
    """Write the run's report page; return its path. Re-running a date replaces the page."""
    page = render(gather(settings, ds))
    path = report_path(settings, ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so a reader never opens half a page.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
    return path


def render(data: ReportData) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(TEMPLATE).render(**context(data))


def context(data: ReportData) -> dict[str, Any]:
    evaluated = data.facts.get("evaluate") or {}
    decision = evaluated.get("decision")
    primary = decision.get("primary_metric") if decision else None
    tail = long_tail(data.item_popularity, HEAD_FRACTION)
    funnel = funnel_totals(data.funnel)
    labels = history_labels(data.history, data.top_k, primary)
    trained = data.facts.get("train") or {}
    recommended = data.facts.get("recommend") or {}
    tiers = tier_quality(evaluated, trained, data.top_k, primary)
    return {
        "data": data,
        "date_range": data.date_range,
        "decision": decision,
        "missing": [
            {"name": name, "task": STEP_TITLES[name]} for name in FACT_NAMES if data.facts.get(name) is None
        ],
        "tiles": kpi_tiles(data),
        "charts": {
            "feedback": _safe(charts.feedback_distribution(data.value_distribution, data.feedback_kind)),
            "long_tail": _safe(charts.long_tail_chart(tail)),
            "activity_heatmap": _safe(charts.activity_heatmap(data.hourly)),
            "daily_activity": _safe(charts.daily_activity(data.kpis)),
            "funnel": _safe(charts.funnel_chart(funnel)),
            "metric_history": _safe(charts.metric_history_chart(data.history, labels)),
            # Runs from before the tier evaluation have no such chart (nor section).
            **(
                {"tier_quality": _safe(charts.tier_quality_chart(tiers["table"], data.top_k))}
                if tiers
                else {}
            ),
        },
        "tail": tail,
        "funnel": [
            {
                "step": int(r.step),
                "name": r.step_name,
                "users": _int(r.n_users),
                "events": _int(r.n_events),
                "conversion": _percent(r.conversion),
            }
            for r in funnel.itertuples()
        ],
        "top_items": [
            {
                "rank": int(r.rank),
                "item_id": r.item_id,
                "title": r.title if isinstance(r.title, str) else None,
                "users": _int(r.n_users),
                "interactions": _int(r.n_interactions),
                "avg_rating": _number(r.avg_rating, 2),
            }
            for r in data.top_items.itertuples()
        ],
        "show_rating": data.top_items["avg_rating"].notna().any(),
        "categories": [
            {"name": r.category, "interactions": _int(r.n_interactions), "share": _percent(r.share)}
            for r in data.categories.itertuples()
        ],
        "metrics": current_metrics(evaluated.get("metrics") or {}, primary),
        "history_runs": history_runs(data.history, primary),
        "single_run": data.history["run_date"].nunique() == 1,
        # Scalars only: the tuned hybrid weights per tier go with the tier table.
        "chosen": {
            name: value
            for name, value in (trained.get("chosen") or {}).items()
            if not isinstance(value, dict | list)
        },
        "quality": quality(data.facts),
        "tiers": tiers,
        "rules": business_rules(recommended.get("rules")),
        "served": served(recommended),
    }


def kpi_tiles(data: ReportData) -> list[dict[str, str]]:
    kpis = data.kpis
    interactions = kpis["n_interactions"].sum()
    tiles = [
        {"label": "interactions", "value": _int(interactions)},
        # new_users counts each user once, on the day of their first interaction.
        {"label": "users", "value": _int(kpis["new_users"].sum())},
        {"label": "items", "value": _int(len(data.item_popularity))},
        {"label": "days with activity", "value": _int(len(kpis))},
    ]
    if kpis["avg_rating"].notna().any() and interactions:
        rated = kpis.dropna(subset=["avg_rating"])
        mean = (rated["avg_rating"] * rated["n_interactions"]).sum() / rated["n_interactions"].sum()
        tiles.append({"label": "average rating", "value": f"{mean:.2f}"})
    if kpis["purchases"].notna().any():
        tiles.append({"label": "purchases", "value": _int(kpis["purchases"].sum())})
        revenue = sum(float(v) for v in kpis["revenue"] if v is not None and not pd.isna(v))
        tiles.append({"label": "revenue", "value": f"{revenue:,.2f}"})
    if kpis["watch_seconds"].notna().any():
        tiles.append({"label": "hours watched", "value": _int(kpis["watch_seconds"].sum() / 3600)})
    return tiles


def current_metrics(metrics: dict[str, dict[str, float]], primary: str | None) -> dict[str, Any]:
    """{models, rows: [{label, primary, values: [text per model]}]} for the run's metrics table."""
    models = [m for m in charts.MODEL_STYLES if m in metrics] + sorted(
        set(metrics) - set(charts.MODEL_STYLES)
    )
    labels = sorted({label for values in metrics.values() for label in values}, key=_metric_order)
    rows = [
        {
            "label": label,
            "primary": label == primary,
            "cells": [_number(metrics[m].get(label), 4) for m in models],
        }
        for label in labels
    ]
    return {"models": models, "rows": rows}


def _metric_order(label: str) -> tuple[int, str]:
    name = label.split("@")[0]
    return (METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER), label)


def tier_quality(evaluated: dict, trained: dict, k: int, primary: str | None) -> dict[str, Any] | None:
    """The "Quality by user tier" table: per tier its models' metrics at k and test users, the
    best model by the gate's metric (ndcg@k without a gate) marked, the hybrid's tuned content
    weight, and the validation grid it was chosen from. None for a run without tier metrics."""
    tier_metrics = evaluated.get("tier_metrics")
    if not tier_metrics:
        return None
    table = tier_table(tier_metrics)
    labels = sorted((c for c in table.columns if c not in ("tier", "model", "n_users")), key=_metric_order)
    best_by = next(
        (label for label in (primary, f"ndcg@{k}") if label in labels), labels[0] if labels else None
    )
    weights = (trained.get("chosen") or {}).get("hybrid_weights") or {}
    tiers = []
    for tier, rows in table.groupby("tier", sort=False):
        best = rows[best_by].max() if best_by else float("nan")
        # All-zero tiers (no test users, say) have no best model; a tie marks every tied model.
        has_best = not _missing(best) and best > 0
        tiers.append(
            {
                "name": tier,
                "weight": _number(weights[tier], 2) if tier in weights else None,
                "rows": [
                    {
                        "model": row["model"],
                        "best": has_best and row[best_by] == best,
                        "cells": [_number(row[label], 4) for label in labels],
                        "users": _int(row["n_users"]),
                    }
                    for row in rows.to_dict("records")
                ],
            }
        )
    return {
        "table": table,
        "labels": labels,
        "best_by": best_by,
        "tiers": tiers,
        "grid": hybrid_grid(((trained.get("tuning") or {}).get("hybrid") or {}).get("trials") or [], weights),
    }


def hybrid_grid(grid: list[dict], chosen: dict[str, float]) -> dict[str, Any] | None:
    """The validation grid of the hybrid's content weight: one row per tier, one column per
    weight, cells the grid's NDCG, the chosen weight marked. None without a grid."""
    metric = next((key for entry in grid for key in entry if key.startswith("ndcg@")), None)
    if not grid or metric is None:
        return None
    weights = sorted({float(entry["weight"]) for entry in grid})
    rows = []
    for tier in in_order({entry["tier"] for entry in grid}, TIERS):
        by_weight = {float(e["weight"]): e for e in grid if e["tier"] == tier}
        rows.append(
            {
                "tier": tier,
                "users": _int(max((e.get("n_users") or 0) for e in by_weight.values())),
                "cells": [
                    {
                        "value": _number(by_weight[w].get(metric), 4) if w in by_weight else "–",
                        "chosen": tier in chosen and math.isclose(w, float(chosen[tier])),
                    }
                    for w in weights
                ],
            }
        )
    return {"metric": metric, "weights": [_number(w, 2) for w in weights], "rows": rows}


def business_rules(rules: list[dict] | None) -> list[dict[str, Any]] | None:
    """The recommend step's business rules as table rows, in the order they were applied; None
    for a run from before the rules (an empty list is a run with no rules)."""
    if rules is None:
        return None
    return [
        {
            "rule": r.get("rule"),
            "enabled": bool(r.get("enabled")),
            "setting": _setting(r.get("setting")),
            "items_removed": _int(r.get("items_removed")),
            "users_affected": _int(r.get("users_affected")),
        }
        for r in rules
    ]


def served(recommended: dict) -> dict[str, list[dict[str, str]]] | None:
    """Who got what: users per tier and recommendation rows per source, each with its share.
    None for a run from before the recommend step counted them."""
    tiers, sources = recommended.get("tiers"), recommended.get("sources")
    if tiers is None and sources is None:
        return None
    return {"tiers": _shares(tiers or {}, TIERS), "sources": _shares(sources or {}, REC_SOURCES)}


def _shares(counts: dict[str, float], order: tuple[str, ...]) -> list[dict[str, str]]:
    total = sum(float(n) for n in counts.values() if not _missing(n))
    return [
        {
            "name": name,
            "count": _int(counts[name]),
            "share": _percent(float(counts[name]) / total) if total and not _missing(counts[name]) else "–",
        }
        for name in in_order(counts, order)
    ]


def _setting(value: Any) -> str:
    """A rule's setting as short text: 'yes'/'no', 0.5, 'a, b', 'max: 3'."""
    if _missing(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_setting(v) for v in value) or "–"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_setting(v)}" for k, v in value.items()) or "–"
    return str(value)


def history_runs(history: pd.DataFrame, primary: str | None) -> dict[str, Any]:
    """One row per run (newest first, at most HISTORY_ROWS): version, gate decision and the
    primary metric of the run's model and of the champion it was compared with."""
    if history.empty:
        return {"rows": [], "total": 0, "metric": primary}
    runs = []
    for run_date, rows in history.groupby("run_date", sort=True):
        first = rows.iloc[0]
        metric = primary or first["primary_metric"]
        values = rows[rows["metric_label"] == metric].set_index("model")["value"]
        runs.append(
            {
                "run_date": run_date,
                "model_version": first["model_version"],
                "decision": first["decision"],
                "forced": bool(first["forced"]) if not pd.isna(first["forced"]) else False,
                "is_champion": bool(first["is_champion"]) if not pd.isna(first["is_champion"]) else False,
                "status": first["run_status"],
                "als": _number(values.get("als"), 4),
                "champion": _number(values.get("champion"), 4),
            }
        )
    return {"rows": runs[::-1][:HISTORY_ROWS], "total": len(runs), "metric": primary}


def quality(facts: dict[str, dict | None]) -> dict[str, Any]:
    cleaned = facts.get("clean") or {}
    suites = []
    for name in ("validate_raw", "validate_clean"):
        results = (facts.get(name) or {}).get("results")
        if results is None:
            continue
        outcome = [_outcome(r) for r in results]
        suites.append(
            {
                "step": STEP_TITLES[name],
                "passed": outcome.count("passed"),
                "warned": outcome.count("warned"),
                "failed": outcome.count("failed"),
                "problems": [
                    {
                        "outcome": o,
                        "suite": r.get("suite"),
                        "key": r.get("expectation_key"),
                        "description": r.get("description"),
                        "observed": r.get("observed_value"),
                    }
                    for r, o in zip(results, outcome, strict=True)
                    if o != "passed"
                ],
            }
        )
    return {
        "reconciliation": [
            {
                "table": r["table_name"],
                "raw": _int(r["raw_rows"]),
                "clean": _int(r["clean_rows"]),
                "quarantined": _int(r["quarantined_rows"]),
                "duplicates": _int(r["duplicate_rows"]),
                "lost": _percent(1 - r["clean_rows"] / r["raw_rows"]) if r["raw_rows"] else "–",
            }
            for r in cleaned.get("reconciliation", [])
        ],
        "quarantine": [
            {
                "table": r["table_name"],
                "reason": r["reason"],
                "column": r.get("column_name"),
                "rows": _int(r["rows_quarantined"]),
                "sample": _sample(r),
            }
            for r in cleaned.get("quarantine", [])
        ],
        "suites": suites,
    }


def _outcome(result: dict) -> str:
    if result.get("success"):
        return "passed"
    return "warned" if result.get("severity") == "warning" else "failed"


def _sample(row: dict) -> str | None:
    where = row.get("sample_file")
    if where and row.get("sample_line") is not None:
        where = f"{Path(where).name}:{row['sample_line']}"
    text = row.get("sample_row")
    if text and len(text) > 160:
        text = text[:157] + "..."
    return " ".join(part for part in (where, text and f"“{text}”") if part) or None


def _safe(svg: str) -> Markup:
    # matplotlib escapes the text it writes into SVG, so the element can go in as it is.
    return Markup(svg)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _int(value: Any) -> str:
    return "–" if _missing(value) else f"{int(round(float(value))):,}"


def _number(value: Any, digits: int) -> str:
    return "–" if _missing(value) else f"{float(value):.{digits}f}"


def _percent(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):.1%}"
