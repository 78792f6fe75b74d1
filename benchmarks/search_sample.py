"""What searching on a sample of users costs in quality, and what it saves in time.

The ranker search (recflow.tuning.tune_ranker) fits `tuning_trials` ALS models; at scale it
fits them on a seeded sample of `tuning_sample_users` users (recflow.tuning.search_sample) and
the run then fits the chosen settings once on everything. This benchmark measures the trade on
one generated MovieLens-shaped set (benchmarks/scale.py's generator and sizes): for each sample
size, and for no sample at all ("full"), it runs the same search (same trials, same seed) on the
train split, fits the chosen settings on the whole train split, and scores them on the test
split the way the evaluate task scores the holdout ranker (NDCG@K and recall@K over every test
user). It prints the search's seconds, what it chose, and the test figures side by side, each
sample's NDCG as a share of the full search's, and ends with one JSON line. Beside the search's
choice (the cheapest trial within one standard error of the best, recflow.tuning.choose_trial)
it fits and scores the trial that was best on validation, so the rule's cost in quality and
its saving in fit time are measured too.

The split is the DAG's (recflow.split with default Params, the evaluation's simulated cold
users included); the ratings are read straight from the generator's u.data, so no DAG run is
needed first.

    .venv/bin/python benchmarks/search_sample.py [--size ml-5m] [--samples 5000,10000,20000,0]
        [--work data/benchmarks/scale]

A sample of 0 is the full search. One round: a search at 5M ratings takes tens of minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "benchmarks"))

from scale import SIZES, generate  # noqa: E402


def ratings_frame(spark, path: Path):
    """u.data (user, item, rating, unix seconds) as the clean interactions train reads."""
    from pyspark.sql import functions as F

    raw = spark.read.csv(str(path), sep="\t", schema="user_idx int, item_idx int, weight double, unix long")
    return raw.select("user_idx", "item_idx", "weight", F.timestamp_seconds("unix").alias("ts"))


def holdout(spark, settings, interactions):
    """(train, test) as the train task splits them, cached."""
    from recflow.features import preferences
    from recflow.split import split
    from recflow.tiers import simulate_cold_users

    prefs = preferences(interactions, True, settings.min_user_interactions, settings.min_item_interactions)
    train, test = split(prefs, settings)
    train = simulate_cold_users(
        train, settings.cold_user_fraction, settings.cold_max_interactions, settings.seed
    ).cache()
    return train, test.cache()


def test_figures(train, test, chosen: dict, settings) -> dict:
    """The chosen settings fitted on train, scored on test as the evaluate task does."""
    from recflow.metrics import ranking_metrics, scorable
    from recflow.models.als import BLEND_MARGIN, blended_top_k, fit_ranker, ranker_candidates
    from recflow.models.baselines import popularity
    from recflow.recommend import candidate_groups

    k = settings.top_k
    started = time.monotonic()
    model = fit_ranker(train, chosen, settings.seed, implicit=True)
    fit_s = time.monotonic() - started
    users, scored_test = scorable(train, test)
    groups = candidate_groups(users, train, k, BLEND_MARGIN)
    lists = blended_top_k(
        ranker_candidates(model, groups), popularity(train), train, float(chosen["blend"]), k
    )
    metrics = ranking_metrics(lists, scored_test, k)
    return {
        "fit_s": round(fit_s, 1),
        f"ndcg@{k}": metrics[f"ndcg@{k}"],
        f"recall@{k}": metrics[f"recall@{k}"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="ml-5m", choices=[s for s in SIZES if s.startswith("ml-")])
    parser.add_argument("--samples", default="5000,10000,20000,0", help="sample sizes in users; 0 = full")
    parser.add_argument("--work", type=Path, default=PROJECT / "data" / "benchmarks" / "scale")
    args = parser.parse_args()
    samples = [int(s) for s in args.samples.split(",")]

    from recflow.config import Settings
    from recflow.resources import driver_memory
    from recflow.spark import get_spark
    from recflow.tuning import search_sample, tune_ranker

    size = SIZES[args.size]
    inputs = args.work / size.name / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    counts = generate(size, inputs)
    # The driver's heap is fixed when its JVM starts, which get_spark does.
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", f"--driver-memory {driver_memory()} pyspark-shell")
    spark = get_spark("search-sample", checkpoint_dir=str(args.work / "checkpoints"))
    base = Settings(source="movielens", dataset=size.name.replace("-", "_"))
    train, test = holdout(spark, base, ratings_frame(spark, inputs / "u.data"))
    n_train, n_users = train.count(), train.select("user_idx").distinct().count()
    print(f"{size.name}: {counts}; train {n_train:,} rows of {n_users:,} users, test {test.count():,} rows")

    rows, fitted, k = [], {}, base.top_k
    for sample in samples:
        settings = dataclasses.replace(base, tuning_sample_users=sample)
        started = time.monotonic()
        searched = search_sample(train, settings)
        sample_rows = searched.count()
        chosen, record = tune_ranker(searched, settings, implicit=True)
        search_s = time.monotonic() - started
        for settings_ in (chosen, record["best_settings"]):
            key = json.dumps(settings_, sort_keys=True)
            if key not in fitted:  # two searches that choose alike share one test fit
                fitted[key] = test_figures(train, test, settings_, settings)
        best = fitted[json.dumps(record["best_settings"], sort_keys=True)]
        rows.append(
            {"sample_users": sample or n_users, "full": sample == 0 or sample >= n_users,
             "search_rows": sample_rows, "search_s": round(search_s, 1), "chosen": chosen,
             "validation_ndcg": record["chosen"], "best_validation_ndcg": record["best"],
             "best_settings": record["best_settings"], f"best_ndcg@{k}": best[f"ndcg@{k}"],
             "best_fit_s": best["fit_s"]} | fitted[json.dumps(chosen, sort_keys=True)]
        )  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)

    full = next((r for r in rows if r["full"]), None)
    print(
        f"\n| sample users | search rows | search s | chosen (one SE) rank/reg/alpha/iter/blend | fit s "
        f"| test NDCG@{k} | vs full | best on validation | its fit s | its test NDCG@{k} |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    def shown(c: dict) -> str:
        return f"{c['rank']}/{c['reg_param']}/{c['alpha']}/{c['max_iter']}/{c['blend']}"

    for r in rows:
        share = f"{r[f'ndcg@{k}'] / full[f'ndcg@{k}']:.3f}" if full else "-"
        print(
            f"| {r['sample_users']:,}{' (all)' if r['full'] else ''} | {r['search_rows']:,} | {r['search_s']:.0f} "
            f"| {shown(r['chosen'])} | {r['fit_s']:.0f} | {r[f'ndcg@{k}']:.4f} | {share} "
            f"| {shown(r['best_settings'])} | {r['best_fit_s']:.0f} | {r[f'best_ndcg@{k}']:.4f} |"
        )
    print(json.dumps({"benchmark": "search_sample", "size": size.name, "train_rows": n_train,
                      "users": n_users, "rows": rows}))  # fmt: skip
    spark.stop()


if __name__ == "__main__":
    main()
