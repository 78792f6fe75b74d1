"""Command line helpers: `python -m recflow.cli summary --ds DATE --conf JSON`.

`summary` reads back what a run published, from the warehouse, the way an analyst would see it.
"""

from __future__ import annotations

import argparse
import json

import sqlalchemy as sa

from recflow.config import Settings
from recflow.warehouse.engine import make_engine

SAMPLE_SQL = sa.text(
    """
    SELECT r.user_id, r.`rank`, r.item_id, i.title, i.genres, r.score
    FROM recommendations r
    LEFT JOIN items i ON i.dataset = r.dataset AND i.item_id = r.item_id
    WHERE r.dataset = :dataset AND r.user_id IN (
        SELECT user_id FROM (SELECT DISTINCT user_id FROM recommendations WHERE dataset = :dataset
                             ORDER BY LENGTH(user_id), user_id LIMIT 3) AS first_users)
    ORDER BY LENGTH(r.user_id), r.user_id, r.`rank`
    """
)


def summary(settings: Settings, ds: str) -> str:
    engine = make_engine(settings.warehouse_url, settings.sqlite_path)
    # SQLite reads backquotes as identifier quotes too, so one statement serves both.
    with engine.connect() as conn:
        run = (
            conn.execute(
                sa.text("SELECT * FROM model_runs WHERE dataset = :d AND run_date = :ds"),
                {"d": settings.dataset_name, "ds": ds},
            )
            .mappings()
            .first()
        )
        totals = (
            conn.execute(
                sa.text(
                    "SELECT COUNT(*) AS n, COUNT(DISTINCT user_id) AS users FROM recommendations WHERE dataset = :d"
                ),
                {"d": settings.dataset_name},
            )
            .mappings()
            .first()
        )
        sample = conn.execute(SAMPLE_SQL, {"dataset": settings.dataset_name}).mappings().all()
    engine.dispose()
    if run is None:
        raise SystemExit(f"No published run for dataset {settings.dataset_name!r} on {ds} in {engine.url}")
    metrics = json.loads(run["metrics"])
    lines = [
        "",
        f"Published {settings.dataset_name} {ds}: model {run['model_version']}, "
        f"{totals['n']} recommendations for {totals['users']} users",
        f"  warehouse: {engine.url.render_as_string(hide_password=True)}",
        f"  lake:      {settings.lake}",
        "",
        f"  {'metric':<14}{'ALS':>10}{'popularity':>12}",
    ]
    for metric in sorted(metrics["als"]):
        lines.append(
            f"  {metric:<14}{metrics['als'][metric]:>10.4f}{metrics['popularity'].get(metric, float('nan')):>12.4f}"
        )
    lines += ["", "  Sample recommendations:"]
    for row in sample:
        if row["rank"] <= 5:
            lines.append(
                f"  user {row['user_id']:>6}  #{row['rank']}  {row['title'] or row['item_id']}  [{row['genres'] or ''}]"
            )
    timings = json.loads(run["task_timings"] or "{}")
    if timings:
        lines += ["", "  Task wall times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="recflow")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("summary", help="what a run published")
    show.add_argument("--ds", required=True)
    show.add_argument(
        "--conf", default="{}", help="the run's Params as JSON (dataset/source pick the data set)"
    )
    args = parser.parse_args(argv)
    print(summary(Settings.from_params(args.conf), args.ds))


if __name__ == "__main__":
    main()
