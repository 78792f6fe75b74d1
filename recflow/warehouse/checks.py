"""Is what the warehouse serves for a dataset one consistent set? Checked after every publish
(the recommendations_bi_refresh DAG) and by the backfill tests.

Consistent means: every served recommendation comes from one run, that run is the dataset's only
champion and is 'published' in model_runs, the similar items come from the same model, no user
has two rows for one item or one rank, and the analytics snapshots are the newest run's (a late
run, as in a backfill, never replaces them; recflow.warehouse.publish).
"""

from __future__ import annotations

import sqlalchemy as sa

# Snapshot tables that carry the run_date of the run that wrote them.
_SNAPSHOTS = ("users", "user_profiles", "popular_items")


class InconsistentPublishedSet(RuntimeError):
    """The served tables of a dataset disagree with each other."""


def served_set(engine: sa.Engine, dataset: str) -> dict:
    """What is served for ``dataset``, and ``problems``: every inconsistency found, in words."""
    with engine.connect() as conn:

        def one(sql: str):
            return conn.execute(sa.text(sql), {"dataset": dataset}).one()

        def values(sql: str) -> list:
            return sorted(str(v) for v in conn.execute(sa.text(sql), {"dataset": dataset}).scalars())

        n_rows, n_users = one(
            "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM recommendations WHERE dataset = :dataset"
        )
        served_runs = [
            (str(d), v)
            for d, v in conn.execute(
                sa.text(
                    "SELECT DISTINCT run_date, model_version FROM recommendations WHERE dataset = :dataset"
                ),
                {"dataset": dataset},
            )
        ]
        duplicate_items = one(
            "SELECT COUNT(*) FROM (SELECT user_id, item_id FROM recommendations WHERE dataset = :dataset"
            " GROUP BY user_id, item_id HAVING COUNT(*) > 1) d"
        )[0]
        champions = [
            (str(d), v)
            for d, v in conn.execute(
                sa.text(
                    "SELECT run_date, model_version FROM model_registry"
                    " WHERE dataset = :dataset AND is_champion = 1"
                ),
                {"dataset": dataset},
            )
        ]
        champion_status = values(
            "SELECT r.status FROM model_runs r JOIN model_registry g"
            " ON g.dataset = r.dataset AND g.run_date = r.run_date"
            " WHERE r.dataset = :dataset AND g.is_champion = 1"
        )
        similar_versions = values("SELECT DISTINCT model_version FROM similar_items WHERE dataset = :dataset")
        newest_run = one("SELECT MAX(run_date) FROM model_runs WHERE dataset = :dataset")[0]
        snapshot_dates = {
            table: values(f"SELECT DISTINCT run_date FROM {table} WHERE dataset = :dataset")
            for table in _SNAPSHOTS
        }

    problems = []
    if n_rows == 0:
        problems.append("no recommendations are served")
    if len(served_runs) > 1:
        problems.append(f"recommendations come from {len(served_runs)} runs: {sorted(served_runs)}")
    if duplicate_items:
        problems.append(f"{duplicate_items} (user, item) pairs are recommended twice")
    if len(champions) != 1:
        problems.append(f"{len(champions)} champions in model_registry: {sorted(champions)}")
    elif served_runs and served_runs != champions:
        problems.append(f"the served run {served_runs[0]} is not the champion {champions[0]}")
    if champions and champion_status != ["published"]:
        problems.append(f"the champion's model_runs status is {champion_status}, not published")
    if champions and similar_versions and similar_versions != [champions[0][1]]:
        problems.append(f"similar items come from {similar_versions}, not the champion {champions[0][1]}")
    newest = None if newest_run is None else str(newest_run)
    for table, dates in snapshot_dates.items():
        if dates and dates != [newest]:
            problems.append(f"{table} holds run dates {dates}, not the newest run's {newest}")
    return {
        "dataset": dataset,
        "recommendations": n_rows,
        "users": n_users,
        "served_run": served_runs[0] if len(served_runs) == 1 else None,
        "champion": champions[0] if len(champions) == 1 else None,
        "newest_run": newest,
        "problems": problems,
    }


def check_served_set(engine: sa.Engine, dataset: str) -> dict:
    """served_set, raising InconsistentPublishedSet when it found a problem."""
    found = served_set(engine, dataset)
    if found["problems"]:
        raise InconsistentPublishedSet(f"{dataset}: " + "; ".join(found["problems"]))
    return found
