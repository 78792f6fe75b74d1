"""The run report's charts: pure functions from data to SVG text, one figure each.

Figures are built with matplotlib's object API (`Figure`, never pyplot), so no GUI backend is
involved and no global figure registry keeps them alive: a figure is garbage once its SVG text
is returned. The SVG keeps its text as text (svg.fonttype "none"): it stays small, searchable
and selectable in the browser, which draws it in its own sans-serif. svg.hashsalt and an
empty Date make the output identical for identical inputs; the salt differs per chart so that
the ids of two charts inlined in one page never collide.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from functools import wraps

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from recflow.report.data import TIER_MODELS, LongTail

WIDTH_IN = 9.0  # about 860 px in the page: readable at 800 px wide
PALETTE = {
    "primary": "#2b6cb0",
    "secondary": "#dd6b20",
    "accent": "#2f855a",
    "violet": "#6b46c1",
    "teal": "#319795",
    "red": "#c53030",
    "muted": "#a0aec0",
    "head": "#fefcbf",
    "text": "#2d3748",
}
# model -> (colour, line style, marker): the same model looks the same in every chart.
MODEL_STYLES = {
    "als": (PALETTE["primary"], "-", "o"),
    "content": (PALETTE["teal"], "-", "v"),
    "hybrid": (PALETTE["red"], "-", "P"),
    "champion": (PALETTE["accent"], "--", "s"),
    "popularity": (PALETTE["secondary"], ":", "^"),
    "bias": (PALETTE["violet"], "-.", "D"),
}
HEATMAP_CMAP = "Blues"
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # pandas dayofweek 0..6
LOWER_IS_BETTER = {"rmse", "mse", "mae"}
MAX_TAIL_POINTS = 1500  # the long tail of a big catalogue, drawn from this many items
MAX_DATE_TICKS = 12  # up to this many runs, every run date is a labelled tick

_STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "sans-serif"],
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 11,
    "axes.labelcolor": PALETTE["text"],
    "axes.edgecolor": "#718096",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e2e8f0",
    "grid.linewidth": 0.8,
    "xtick.color": "#4a5568",
    "ytick.color": "#4a5568",
    "legend.frameon": False,
    "text.color": PALETTE["text"],
}


def chart(name: str) -> Callable[[Callable[..., Figure]], Callable[..., str]]:
    """Decorate a function that draws a Figure into one returning the figure's inline SVG."""

    def decorate(draw: Callable[..., Figure]) -> Callable[..., str]:
        @wraps(draw)
        def to_svg(*args, **kwargs) -> str:
            with matplotlib.rc_context(_STYLE | {"svg.hashsalt": f"recflow-report-{name}"}):
                figure = draw(*args, **kwargs)
                return inline_svg(figure, name)

        return to_svg

    return decorate


def inline_svg(figure: Figure, name: str) -> str:
    """The figure as an <svg> element for an HTML page: no XML prolog or doctype, sized by the
    page (viewBox kept) rather than in points, and its element ids prefixed with `name`, since
    every figure numbers its own (figure_1, axes_1, ...) and ids must be unique in a page."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    title = figure.get_label() or name
    figure.clear()
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<[^<>]+>", lambda tag: _prefix_ids(tag[0], name), text)  # tags only, never text
    return re.sub(
        r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
        lambda m: (
            f'<svg {m[1]}class="chart" data-chart="{name}" role="img" aria-label="{html.escape(title)}"'
        ),
        text,
        count=1,
    )


def _prefix_ids(tag: str, prefix: str) -> str:
    tag = re.sub(r'(\s)id="([^"]+)"', rf'\1id="{prefix}-\2"', tag)
    tag = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", tag)
    return re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', tag)


def _figure(height_in: float, label: str, **subplots) -> tuple[Figure, object]:
    figure = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    figure.set_label(label)
    return figure, figure.subplots(**subplots)


def _plain(text: object) -> str:
    """Data as literal chart text: a '$' would otherwise start matplotlib's math mode."""
    return str(text).replace("$", r"\$")


def _count(n: float) -> str:
    n = float(n)
    if abs(n) >= 1e9:
        return f"{n / 1e9:.1f}B"
    if abs(n) >= 1e6:
        return f"{n / 1e6:.1f}M"
    if abs(n) >= 1e4:
        return f"{n / 1e3:.1f}k"
    return f"{n:,.0f}"


def _no_data(ax, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#718096")


# --- 1. what the feedback looks like ------------------------------------------------------------

FEEDBACK_LABELS = {
    # kind -> (title, x label, y label)
    "ratings": ("Ratings per star value", "rating", "ratings"),
    "events": ("Events per type", "event type", "events"),
    "watch time": (
        "Watch time per household and program hour",
        "minutes watched in the hour",
        "household-hours",
    ),
}


@chart("feedback")
def feedback_distribution(distribution: pd.DataFrame, kind: str) -> Figure:
    """Bars of value_distribution (position, label, n), ordered by position."""
    title, xlabel, ylabel = FEEDBACK_LABELS[kind]
    figure, ax = _figure(3.6, title)
    ax.set_title(title)
    if distribution.empty:
        _no_data(ax, "no feedback rows")
        return figure
    rows = distribution.sort_values("position")
    labels = [_plain(label) for label in rows["label"]]
    counts = rows["n"].astype(float).to_numpy()
    bars = ax.bar(range(len(rows)), counts, color=PALETTE["primary"], width=0.7)
    total = counts.sum()
    ax.bar_label(bars, labels=[f"{_count(n)}  ({n / total:.0%})" for n in counts], padding=3, fontsize=10)
    ax.set_xticks(range(len(rows)), labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_formatter(lambda y, _: _count(y))
    ax.grid(axis="x", visible=False)
    ax.margins(y=0.15)
    return figure


# --- 2. the long tail ---------------------------------------------------------------------------


@chart("long_tail")
def long_tail_chart(tail: LongTail) -> Figure:
    """Items by interactions (log y), the head shaded and labelled with its share of the volume."""
    title = "Long tail of item popularity"
    figure, ax = _figure(3.8, title)
    ax.set_title(title)
    if not tail.counts:
        _no_data(ax, "no items with interactions")
        return figure
    n = len(tail.counts)
    counts = np.asarray(tail.counts, dtype=float)
    # Sorted counts are monotonic, so a sample of ranks draws the same curve as all of them.
    ranks = np.unique(
        np.concatenate([np.arange(min(n, 200)), np.linspace(0, n - 1, MAX_TAIL_POINTS).round()])
    )
    ranks = ranks.astype(int)
    # The outer half-items too, so the curve spans the axis from edge to edge.
    x = np.concatenate([[0.5], ranks + 1, [n + 0.5]])
    y = np.concatenate([[counts[0]], counts[ranks], [counts[-1]]])
    ax.set_yscale("log")
    ax.axvspan(0.5, tail.head_items + 0.5, color=PALETTE["head"], zorder=0)
    # Item r covers [r - 0.5, r + 0.5], like a bar: the head's edge falls between two items.
    ax.fill_between(x, y, 0.8 * counts.min(), step="mid", color=PALETTE["primary"], alpha=0.25, lw=0)
    ax.step(x, y, where="mid", color=PALETTE["primary"], lw=1.6)
    ax.axvline(tail.head_items + 0.5, color=PALETTE["secondary"], lw=1.2, ls="--")
    ax.annotate(
        f"top {tail.head_fraction:.0%} of items ({tail.head_items:,}):\n"
        f"{tail.head_share:.0%} of interactions",
        xy=(tail.head_items + 0.5, counts[min(tail.head_items, n - 1)]),
        xytext=(0.55, 0.85),
        textcoords="axes fraction",
        ha="left",
        va="top",
        fontsize=11,
        color=PALETTE["text"],
        bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": PALETTE["secondary"]},
        arrowprops={"arrowstyle": "->", "color": PALETTE["secondary"]},
    )
    ax.set_xlim(0.5, n + 0.5)
    ax.set_ylim(bottom=0.8 * counts.min())
    ax.set_xlabel(f"items, most interacted first ({n:,} items)")
    ax.set_ylabel("interactions (log scale)")
    return figure


# --- 3. when people are active ------------------------------------------------------------------


def weekday_hour_matrix(hourly: pd.DataFrame) -> np.ndarray:
    """7 x 24 interactions, rows Monday..Sunday, columns hours 0..23 (UTC)."""
    matrix = np.zeros((7, 24))
    if hourly.empty:
        return matrix
    weekday = pd.to_datetime(hourly["activity_date"]).dt.dayofweek.to_numpy()
    hour = hourly["hour"].astype(int).to_numpy()
    np.add.at(matrix, (weekday, hour), hourly["n_interactions"].astype(float).to_numpy())
    return matrix


@chart("activity_heatmap")
def activity_heatmap(hourly: pd.DataFrame) -> Figure:
    title = "Activity by weekday and hour (UTC)"
    figure, ax = _figure(3.6, title)
    days = hourly["activity_date"].nunique()
    ax.set_title(f"{title}, interactions over {days:,} day{'s' if days != 1 else ''}")
    if hourly.empty:
        _no_data(ax, "no activity")
        return figure
    mesh = ax.pcolormesh(
        np.arange(25),
        np.arange(8),
        weekday_hour_matrix(hourly),
        cmap=HEATMAP_CMAP,
        edgecolors="white",
        lw=0.5,
    )
    ax.invert_yaxis()  # Monday on top, like a calendar
    ax.set_yticks(np.arange(7) + 0.5, WEEKDAY_NAMES)
    ax.set_xticks(np.arange(0, 24, 2) + 0.5, [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel("hour of day (UTC)")
    ax.grid(False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = figure.colorbar(mesh, ax=ax, pad=0.01, fraction=0.04)
    bar.set_label("interactions")
    bar.ax.yaxis.set_major_formatter(lambda y, _: _count(y))
    bar.outline.set_visible(False)
    return figure


def _date_axis(ax, dates: pd.Series) -> None:
    if dates.nunique() <= MAX_DATE_TICKS:
        ticks = sorted(dates.unique())
        ax.set_xticks(ticks, [pd.Timestamp(t).strftime("%Y-%m-%d") for t in ticks], rotation=30, ha="right")
    else:
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


@chart("daily_activity")
def daily_activity(kpis: pd.DataFrame) -> Figure:
    """Interactions and active users per day, one above the other on a shared date axis."""
    title = "Daily interactions and active users"
    figure, (top, bottom) = _figure(4.6, title, nrows=2, sharex=True)
    top.set_title(title)
    if kpis.empty:
        _no_data(top, "no days")
        bottom.set_axis_off()
        return figure
    # A day without a row had no activity: draw it as zero rather than bridging the gap.
    by_day = kpis.set_index(pd.to_datetime(kpis["activity_date"]))[["n_interactions", "active_users"]]
    by_day = by_day.reindex(pd.date_range(by_day.index.min(), by_day.index.max(), freq="D"), fill_value=0)
    days = by_day.index.to_series()
    marker = "o" if len(days) <= 60 else None
    for ax, column, colour, label in (
        (top, "n_interactions", PALETTE["primary"], "interactions"),
        (bottom, "active_users", PALETTE["secondary"], "active users"),
    ):
        values = by_day[column].astype(float)
        ax.plot(days, values, color=colour, lw=1.4, marker=marker, ms=4)
        ax.fill_between(days, values, color=colour, alpha=0.12, lw=0)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(lambda y, _: _count(y))
    _date_axis(bottom, days)
    bottom.set_xlabel("day (UTC)")
    return figure


# --- 4. the funnel ------------------------------------------------------------------------------


@chart("funnel")
def funnel_chart(totals: pd.DataFrame) -> Figure:
    """Users (user-days) and events per step over all days, with each step's share of the first."""
    title = "Funnel over all days"
    figure, axes = _figure(0.9 + 0.55 * max(len(totals), 2), title, ncols=2, sharey=True)
    figure.suptitle(title, x=0.01, ha="left", fontsize=13, fontweight="bold")
    if totals.empty:
        _no_data(axes[0], "no funnel steps")
        axes[1].set_axis_off()
        return figure
    names = [_plain(name) for name in totals["step_name"]]
    positions = np.arange(len(totals))
    for ax, column, colour, label in (
        (axes[0], "n_users", PALETTE["primary"], "users (distinct per day, summed)"),
        (axes[1], "n_events", PALETTE["secondary"], "events"),
    ):
        values = totals[column].astype(float).to_numpy()
        first = values[0]
        bars = ax.barh(positions, values, color=colour, height=0.6)
        shares = [f"{_count(v)}  ({v / first:.1%})" if first else _count(v) for v in values]
        ax.bar_label(bars, labels=shares, padding=4, fontsize=10)
        ax.set_xlabel(label)
        ax.xaxis.set_major_formatter(lambda x, _: _count(x))
        ax.margins(x=0.35)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(positions, names)
    axes[1].tick_params(axis="y", left=False)
    axes[0].invert_yaxis()  # the first step on top
    axes[0].set_title("users, % of the first step", fontsize=11, fontweight="normal")
    axes[1].set_title("events, % of the first step", fontsize=11, fontweight="normal")
    return figure


# --- 5. model metrics across runs ---------------------------------------------------------------


@chart("metric_history")
def metric_history_chart(history: pd.DataFrame, labels: list[str]) -> Figure:
    """One panel per metric label: its value per run date for every model that has it."""
    title = "Model metrics across runs"
    panels = max(len(labels), 1)
    figure, axes = _figure(3.8, title, ncols=panels, squeeze=False)
    axes = axes[0]
    figure.suptitle(title, x=0.01, ha="left", fontsize=13, fontweight="bold")
    if history.empty or not labels:
        _no_data(axes[0], "no metrics in the warehouse for this dataset yet")
        return figure
    dates = pd.to_datetime(history["run_date"])
    runs = dates.nunique()
    for ax, label in zip(axes, labels, strict=True):
        rows = history[history["metric_label"] == label]
        for model, (colour, style, marker) in MODEL_STYLES.items():
            series = rows[rows["model"] == model].sort_values("run_date")
            if series.empty:
                continue
            ax.plot(
                pd.to_datetime(series["run_date"]),
                series["value"],
                color=colour,
                ls=style,
                marker=marker,
                ms=6,
                lw=1.6,
                label=model,
            )
        direction = "lower is better" if label.split("@")[0] in LOWER_IS_BETTER else "higher is better"
        ax.set_title(f"{_plain(label)} ({direction})", fontsize=11)
        _date_axis(ax, dates)
        ax.margins(x=0.12, y=0.15)
        ax.set_xlabel("run date")
        if runs == 1:
            # A single date has no span: give the axis one day either side to sit in.
            only = dates.iloc[0]
            ax.set_xlim(only - pd.Timedelta(days=1), only + pd.Timedelta(days=1))
    handles, names = [], []
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            if name not in names:
                handles.append(handle)
                names.append(name)
    figure.legend(handles, names, loc="outside lower center", ncols=len(names))
    if runs == 1:
        figure.text(
            0.99,
            0.99,
            "first run of this dataset: one point per model, lines come with later runs",
            ha="right",
            va="top",
            fontsize=10,
            color="#718096",
        )
    return figure


# --- 6. model quality per user tier -------------------------------------------------------------


@chart("tier_quality")
def tier_quality_chart(tiers: pd.DataFrame, k: int) -> Figure:
    """Recall@k and NDCG@k per user tier, one group of bars per tier and one bar per model of
    TIER_MODELS. `tiers` is data.tier_table's frame: tier, model, n_users and metric columns."""
    title = f"Recall@{k} and NDCG@{k} per user tier"
    labels = [f"recall@{k}", f"ndcg@{k}"]
    figure, axes = _figure(4.0, title, ncols=len(labels), sharey=True)
    figure.suptitle(title, x=0.01, ha="left", fontsize=13, fontweight="bold")
    rows = tiers[tiers["model"].isin(TIER_MODELS)]
    if rows.empty:
        _no_data(axes[0], "no tier metrics")
        axes[1].set_axis_off()
        return figure
    names = list(dict.fromkeys(rows["tier"]))  # tier_table's order
    models = [m for m in TIER_MODELS if m in set(rows["model"])]
    users = rows.groupby("tier")["n_users"].max()
    ticks = [f"{_plain(t)}\n{_count(users[t])} users" if pd.notna(users[t]) else _plain(t) for t in names]
    width = 0.8 / len(models)
    positions = np.arange(len(names))
    for ax, label in zip(axes, labels, strict=True):
        for i, model in enumerate(models):
            by_tier = rows[rows["model"] == model].set_index("tier")
            values = [
                float(by_tier.at[t, label]) if t in by_tier.index and label in by_tier else np.nan
                for t in names
            ]
            bars = ax.bar(
                positions - 0.4 + width * (i + 0.5),
                np.nan_to_num(values),
                width=width * 0.92,
                color=MODEL_STYLES[model][0],
                label=model,
            )
            texts = ["–" if np.isnan(v) else f"{v:.3f}" for v in values]
            ax.bar_label(bars, labels=texts, padding=2, fontsize=8, rotation=90)
        ax.set_title(label, fontsize=11)
        ax.set_xticks(positions, ticks)
        ax.grid(axis="x", visible=False)
        ax.margins(y=0.25)
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel(f"mean over the tier's test users (k = {k})")
    handles, legend = axes[0].get_legend_handles_labels()
    figure.legend(handles, legend, loc="outside lower center", ncols=len(legend))
    return figure
