"""Command line helpers: `python -m recflow.cli summary|quality|report --ds DATE --conf JSON`,
and `python -m recflow.cli block --dataset D --item I --reason TEXT [--user U] [--remove]`.

`summary` reads back what a run published, from the warehouse, the way an analyst would see it;
`quality` what its validation and cleaning recorded (also for a run that validation stopped);
`report` (re)writes the run's HTML report and prints where it is; `block` adds an item to the
dataset's recommendation blocklist (or removes it), which the next run's recommend step applies.
"""

from __future__ import annotations

import argparse
import getpass
import json

import sqlalchemy as sa

from recflow.config import BUSINESS_RULES, PROJECT_ROOT, Settings
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


RULES_SQL = sa.text(
    """
    SELECT run_date, rule, enabled, setting, items_removed, users_affected
    FROM recommendation_rules
    WHERE dataset = :d AND run_date = (SELECT MAX(run_date) FROM recommendation_rules
                                       WHERE dataset = :d AND run_date <= :ds)
    ORDER BY rule
    """
)
MIX_SQL = sa.text(
    "SELECT user_tier, source, n_users, n_recommendations FROM v_recommendation_mix"
    " WHERE dataset = :d ORDER BY tier_order, user_tier, source"
)
TIER_SQL = sa.text(
    "SELECT user_tier, model, metric_label, value FROM v_model_tier_performance"
    " WHERE dataset = :d AND run_date = :ds AND user_tier <> 'all' AND (metric = 'ndcg' OR metric = 'n_users')"
    " ORDER BY tier_order, model, metric_label"
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
        key = {"d": settings.dataset_name, "ds": ds}
        rules = conn.execute(RULES_SQL, key).mappings().all()
        mix = conn.execute(MIX_SQL, key).mappings().all()
        tiers = conn.execute(TIER_SQL, key).mappings().all()
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
    models = [m for m in ("als", "content", "hybrid", "champion", "popularity", "bias") if m in metrics]
    lines += ["", f"  {'metric':<20}" + "".join(f"{m:>12}" for m in models)]
    for metric in sorted({key for m in models for key in metrics[m]}):
        cells = [metrics[m].get(metric) for m in models]
        lines.append(
            f"  {metric:<20}" + "".join(f"{c:>12.4f}" if c is not None else f"{'':>12}" for c in cells)
        )
    lines += tier_lines(tiers)
    lines += rule_lines(rules) + mix_lines(mix)
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


def rule_lines(rules) -> list[str]:
    """The business rules of the latest run up to the summary's date: what each one removed, in
    the order the recommend step applies them."""
    if not rules:
        return ["", "  Rules: none recorded"]
    lines = [
        "",
        f"  Rules of the {rules[0]['run_date']} run:",
        f"    {'rule':<14}{'enabled':>8}{'items removed':>15}{'users':>8}  setting",
    ]
    for r in sorted(
        rules,
        key=lambda r: (
            BUSINESS_RULES.index(r["rule"]) if r["rule"] in BUSINESS_RULES else len(BUSINESS_RULES),
            r["rule"],
        ),
    ):
        lines.append(
            f"    {r['rule']:<14}{'yes' if r['enabled'] else 'no':>8}{r['items_removed']:>15}"
            f"{r['users_affected']:>8}  {r['setting'] or ''}"
        )
    return lines


def mix_lines(mix) -> list[str]:
    """The served lists by user tier and source: which users got what."""
    if not mix:
        return []
    lines = ["", "  Recommendation mix (the lists being served):"]
    lines.append(f"    {'tier':<8}{'source':<18}{'users':>8}{'recommendations':>17}")
    for m in mix:
        lines.append(f"    {m['user_tier']:<8}{m['source']:<18}{m['n_users']:>8}{m['n_recommendations']:>17}")
    return lines


def tier_lines(tiers) -> list[str]:
    """ndcg per user tier and model for the run, with the tier's size."""
    if not tiers:
        return []
    cells: dict[str, dict[str, float]] = {}
    sizes: dict[str, float] = {}
    models: list[str] = []
    for t in tiers:
        if t["metric_label"] == "n_users":
            sizes[t["user_tier"]] = t["value"]
            continue
        label = f"{t['model']} {t['metric_label']}"
        cells.setdefault(t["user_tier"], {})[label] = t["value"]
        models += [label] if label not in models else []
    lines = ["", f"  {'by user tier':<20}{'users':>8}" + "".join(f"{m:>20}" for m in models)]
    for tier in dict.fromkeys([t["user_tier"] for t in tiers]):
        size = f"{sizes[tier]:>8.0f}" if tier in sizes else f"{'':>8}"
        values = [cells.get(tier, {}).get(m) for m in models]
        lines.append(
            f"  {tier:<20}{size}" + "".join(f"{v:>20.4f}" if v is not None else f"{'':>20}" for v in values)
        )
    return lines


def block(args: argparse.Namespace) -> str:
    """Add an item to the dataset's blocklist, or with --remove take it off; list what is blocked."""
    from recflow.warehouse.blocklist import block_item, read_blocklist, unblock_item
    from recflow.warehouse.migrate import migrate

    settings = Settings.from_params({"dataset": args.dataset} if args.dataset else {})
    dataset = settings.dataset_name
    whom = f"user {args.user}" if args.user else "every user"
    engine = make_engine(settings.warehouse_url, settings.sqlite_path)
    try:
        migrate(engine, PROJECT_ROOT / "sql")
        if args.remove:
            done = unblock_item(engine, dataset, args.item, args.user)
            verb = "Unblocked" if done else "Was not blocked:"
            line = f"{verb} item {args.item} for {whom} of {dataset}"
        else:
            if not args.reason:
                raise SystemExit("block needs --reason (why the item may not be recommended)")
            new = block_item(engine, dataset, args.item, args.reason, args.user, added_by=args.by or None)
            verb = "Blocked" if new else "Already blocked; updated"
            line = f"{verb} item {args.item} for {whom} of {dataset}: {args.reason}"
        blocked = read_blocklist(engine, dataset)
    finally:
        engine.dispose()
    return (
        f"{line}\n  {blocked.num_rows} blocklist entries for {dataset}; the next run's recommend step applies"
        f" them\n  warehouse: {engine.url.render_as_string(hide_password=True)}"
    )


def _current_user() -> str | None:
    try:
        return getpass.getuser()[:64]
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return None


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
    stop = commands.add_parser(
        "block", help="keep an item out of a dataset's recommendations (from the next run on), or --remove it"
    )
    stop.add_argument(
        "--dataset", required=True, help="the dataset's name (the run's dataset, or its source)"
    )
    stop.add_argument("--item", required=True, help="the item id, as the source spells it")
    stop.add_argument("--reason", help="why, in a few words (required unless --remove)")
    stop.add_argument("--user", default="", help="block it for this user only (default: every user)")
    stop.add_argument("--remove", action="store_true", help="take the entry off the blocklist")
    stop.add_argument("--by", default=_current_user(), help="who blocks it (default: the login name)")
    args = parser.parse_args(argv)
    if args.command == "block":
        try:
            print(block(args))
        except ValueError as error:
            raise SystemExit(f"block: {error}") from None
        return
    command = {"summary": summary, "quality": quality, "report": report}[args.command]
    print(command(Settings.from_params(args.conf), args.ds))


def report(settings: Settings, ds: str) -> str:
    from recflow.report import write_run_report

    return write_run_report(settings, ds).as_uri()


if __name__ == "__main__":
    main()
