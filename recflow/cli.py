"""Command line helpers: `python -m recflow.cli summary|quality|report --ds DATE --conf JSON`.

`summary` reads back what a run published, from the warehouse, the way an analyst would see it;
`quality` what its validation and cleaning recorded (also for a run that validation stopped);
`report` (re)writes the run's HTML report and prints where it is.
"""

from __future__ import annotations

import argparse
import json

import sqlalchemy as sa

from recflow.config import Settings
from recflow.validation import docs_index
from recflow.warehouse.engine import make_engine

SAMPLE_SQL = sa.text(
    """
    SELECT r.user_id, r.`rank`, r.item_id, i.title, i.genres, r.score, r.reason
    FROM recommendations r
    LEFT JOIN items i ON i.dataset = r.dataset AND i.item_id = r.item_id
    WHERE r.dataset = :dataset AND r.user_id IN (
        SELECT user_id FROM (SELECT DISTINCT user_id FROM recommendations WHERE dataset = :dataset
                             ORDER BY LENGTH(user_id), user_id LIMIT 3) AS first_users)
    ORDER BY LENGTH(r.user_id), r.user_id, r.`rank`
    """
)


def quality(settings: Settings, ds: str) -> str:
    """Reconciliation, quarantine and failed expectations of a run, as recorded in the warehouse."""
    engine = make_engine(settings.warehouse_url, settings.sqlite_path)
    key = {"d": settings.dataset_name, "ds": ds}
    with engine.connect() as conn:
        counts = (
            conn.execute(
                sa.text(
                    "SELECT table_name, raw_rows, clean_rows, quarantined_rows, duplicate_rows"
                    " FROM data_reconciliation WHERE dataset = :d AND run_date = :ds ORDER BY table_name"
                ),
                key,
            )
            .mappings()
            .all()
        )
        reasons = (
            conn.execute(
                sa.text(
                    "SELECT table_name, reason, rows_quarantined, sample_file, sample_line FROM quarantine_summary"
                    " WHERE dataset = :d AND run_date = :ds ORDER BY rows_quarantined DESC, reason"
                ),
                key,
            )
            .mappings()
            .all()
        )
        checks = (
            conn.execute(
                sa.text(
                    "SELECT suite, expectation_key, severity, success, observed_value, unexpected_count"
                    " FROM data_quality_results WHERE dataset = :d AND run_date = :ds ORDER BY suite, expectation_key"
                ),
                key,
            )
            .mappings()
            .all()
        )
    engine.dispose()
    lines = ["", f"  Data quality of {settings.dataset_name} {ds}:"]
    for c in counts:
        lines.append(
            f"  {c['table_name']:<13} raw {c['raw_rows']} = clean {c['clean_rows']} + quarantined "
            f"{c['quarantined_rows']} + duplicates {c['duplicate_rows']}"
        )
    for r in reasons[:8]:
        lines.append(
            f"  quarantined {r['rows_quarantined']:>6} {r['table_name']}: {r['reason']} "
            f"(first: {r['sample_file']} line {r['sample_line']})"
        )
    if not checks and not counts:
        return "\n".join(
            [*lines, "  nothing recorded: the run stopped before validation (see the error above)"]
        )
    failed = [c for c in checks if not c["success"]]
    lines.append(f"  expectations: {len(checks) - len(failed)} of {len(checks)} met")
    for c in failed:
        lines.append(
            f"  FAILED {c['severity']:<8} {c['suite']}.{c['expectation_key']}: observed {c['observed_value']}"
            + (f", {c['unexpected_count']} unexpected" if c["unexpected_count"] is not None else "")
        )
    docs = docs_index(settings.data_docs_dir)
    if docs.exists():
        lines.append(f"  Data Docs: file://{docs}")
    return "\n".join(lines)


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
        registry = (
            conn.execute(
                sa.text(
                    "SELECT reason, params, champion_version FROM model_registry"
                    " WHERE dataset = :d AND run_date = :ds"
                ),
                {"d": settings.dataset_name, "ds": ds},
            )
            .mappings()
            .first()
        )
        champion = conn.execute(
            sa.text("SELECT model_version FROM model_registry WHERE dataset = :d AND is_champion"),
            {"d": settings.dataset_name},
        ).scalar()
        views = view_rows(conn, settings.dataset_name)
    engine.dispose()
    if run is None:
        raise SystemExit(f"No published run for dataset {settings.dataset_name!r} on {ds} in {engine.url}")
    metrics = json.loads(run["metrics"])
    verb = "Published" if run["status"] == "published" else f"Trained ({run['status']})"
    lines = [
        "",
        f"{verb} {settings.dataset_name} {ds}: model {run['model_version']}; serving {champion}, "
        f"{totals['n']} recommendations for {totals['users']} users",
        f"  warehouse: {engine.url.render_as_string(hide_password=True)}",
        f"  lake:      {settings.lake}",
    ]
    if registry is not None:
        lines += [f"  gate:      {registry['reason']}", f"  settings:  {registry['params']}"]
    models = [m for m in ("als", "champion", "popularity", "bias") if m in metrics]
    lines += ["", f"  {'metric':<20}" + "".join(f"{m:>12}" for m in models)]
    for metric in sorted({key for m in models for key in metrics[m]}):
        cells = [metrics[m].get(metric) for m in models]
        lines.append(
            f"  {metric:<20}" + "".join(f"{c:>12.4f}" if c is not None else f"{'':>12}" for c in cells)
        )
    lines += ["", "  Sample recommendations:"]
    for row in sample:
        if row["rank"] <= 5:
            lines.append(
                f"  user {row['user_id']:>6}  #{row['rank']}  {row['title'] or row['item_id']}"
                f"  [{row['genres'] or ''}]  ({row['reason']})"
            )
    timings = json.loads(run["task_timings"] or "{}")
    if timings:
        lines += ["", "  Task wall times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    lines += ["", f"  BI views ({len(views)}): " + ", ".join(f"{name} {n}" for name, n in views.items())]
    from recflow.report import report_path  # matplotlib: only where a report is involved

    report = report_path(settings, ds)
    if report.exists():
        lines.append(f"  Run report: {report.as_uri()}")
    return "\n".join(lines) + "\n" + quality(settings, ds)


def view_rows(conn: sa.Connection, dataset: str) -> dict[str, int]:
    """Rows per BI view for the dataset: what Tableau will find."""
    names = sorted(name for name in sa.inspect(conn).get_view_names() if name.startswith("v_"))
    return {
        name: conn.execute(
            sa.text(f"SELECT COUNT(*) FROM {name} WHERE dataset = :d"), {"d": dataset}
        ).scalar_one()
        for name in names
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="recflow")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("summary", help="what a run published")
    show.add_argument("--ds", required=True)
    show.add_argument(
        "--conf", default="{}", help="the run's Params as JSON (dataset/source pick the data set)"
    )
    check = commands.add_parser("quality", help="what a run's validation and cleaning found")
    page = commands.add_parser("report", help="write the run's HTML report and print its location")
    for sub in (check, page):
        sub.add_argument("--ds", required=True)
        sub.add_argument("--conf", default="{}", help="the run's Params as JSON")
    args = parser.parse_args(argv)
    command = {"summary": summary, "quality": quality, "report": report}[args.command]
    print(command(Settings.from_params(args.conf), args.ds))


def report(settings: Settings, ds: str) -> str:
    from recflow.report import write_run_report

    return write_run_report(settings, ds).as_uri()


if __name__ == "__main__":
    main()
