"""The whole chain of Spark steps in one process on a small generated sample, each step's facts
kept in the lake the way recflow.jobs.Job keeps them, so later steps find what they need."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recflow import registry
from recflow.clean import clean
from recflow.config import Settings
from recflow.facts import read_facts, write_facts_file
from recflow.ingest import ingest
from recflow.jobs import run_step
from recflow.publish_run import registry_entry
from recflow.tuning import choose_trial
from recflow.validation import ValidationFailed, enforce
from spark_jobs.evaluate import evaluate
from spark_jobs.pipeline import STEPS
from spark_jobs.recommend import recommend
from spark_jobs.validate_raw import validate_raw

pytestmark = pytest.mark.spark

DS = "2024-03-01"
SAMPLE = {"sample_users": 120, "sample_items": 100, "max_iter": 5, "rank": 10, "tuning_trials": 2}


def _settings(data_dir: Path, **params) -> Settings:
    return dataclasses.replace(Settings.from_params({**SAMPLE, **params}), data_dir=data_dir, lake_uri=None)


def _read_u_data(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def pipeline(spark, tmp_path_factory):
    settings = _settings(tmp_path_factory.mktemp("pipeline"))
    facts = {}
    for name, step in STEPS.items():
        facts[name] = run_step(spark, name, step, settings, DS)
    recs = spark.read.parquet(settings.lake_path("recs", "recommendations", DS))
    return settings, facts, [r.asDict() for r in recs.collect()]


@pytest.fixture(scope="module")
def ratings(pipeline) -> list[list[str]]:
    settings, _, _ = pipeline
    return _read_u_data(settings.sample_dir / "u.data")


def test_every_user_gets_k_unseen_items_ranked_1_to_k(pipeline, ratings):
    settings, facts, recs = pipeline
    by_user = defaultdict(list)
    for r in recs:
        by_user[r["user_id"]].append(r)
    rated = defaultdict(set)
    for user, item, _, _ in ratings:
        rated[user].add(item)

    assert set(by_user) == set(rated)  # every user of the sample, and no one else
    for user, rows in by_user.items():
        rows.sort(key=lambda r: r["rank"])
        assert [r["rank"] for r in rows] == list(range(1, settings.top_k + 1)), user
        items = [r["item_id"] for r in rows]
        assert len(set(items)) == settings.top_k, user
        assert not set(items) & rated[user], f"user {user} is recommended items they rated"
        scores = [r["score"] for r in rows]
        assert scores == sorted(scores, reverse=True), user
    assert facts["recommend"]["rows"] == len(recs) == settings.top_k * len(rated)
    assert facts["recommend"]["users_short_of_k"] == 0
    assert facts["recommend"]["model_version"] == settings.model_version(DS)


def test_metrics_for_the_model_and_both_baselines_and_als_beats_them(pipeline):
    settings, facts, _ = pipeline
    metrics = facts["evaluate"]["metrics"]
    k = settings.top_k
    ranking = {f"{m}@{k}" for m in ("precision", "recall", "f1", "ndcg", "map", "hit_rate", "mrr",
                                    "coverage", "long_tail_share")}  # fmt: skip
    rating = {"rmse", "mse", "mae"}
    # The first run of a dataset has no champion to be compared with.
    assert set(metrics) == {"als", "popularity", "bias", "content", "hybrid"}
    assert set(metrics["als"]) == ranking | rating
    assert (
        set(metrics["hybrid"])
        == set(metrics["content"])
        == ranking - {f"coverage@{k}", f"long_tail_share@{k}"}
    )
    assert set(metrics["popularity"]) == ranking
    assert set(metrics["bias"]) == rating
    for model in ("als", "popularity"):
        assert 0 < metrics[model][f"ndcg@{k}"] <= 1, model
    # The sample has personal taste a factor model can learn and popularity cannot, and the
    # blend of ALS with the biases predicts ratings better than the biases alone.
    assert metrics["als"][f"ndcg@{k}"] > metrics["popularity"][f"ndcg@{k}"]
    assert metrics["als"][f"coverage@{k}"] > metrics["popularity"][f"coverage@{k}"]
    assert 0.3 < metrics["als"]["rmse"] < metrics["bias"]["rmse"] < 2


def test_the_search_ran_its_trials_and_recorded_the_winner(pipeline):
    settings, facts, _ = pipeline
    trained = facts["train"]
    ranker = trained["tuning"]["ranker"]
    # 2 fitted trials x every blend value of the grid (plus the run's own blend).
    fitted = {(t["rank"], t["reg_param"], t["alpha"], t["max_iter"]) for t in ranker["trials"]}
    assert len(fitted) == settings.tuning_trials
    # The cheapest trial within one standard error of the best (recflow.tuning.choose_trial).
    metric = ranker["metric"]
    picked = choose_trial(ranker["trials"], metric, metric.replace("@", "_se@"))
    keys = ("rank", "reg_param", "alpha", "max_iter", "blend")
    assert {key: trained["chosen"][key] for key in keys} == {key: picked[key] for key in keys}
    assert ranker["chosen"] == picked[metric] <= ranker["best"]
    assert all(t[metric.replace("@", "_se@")] > 0 for t in ranker["trials"])
    assert ranker["trials"][0]["rank"] == settings.rank  # the run's own settings are trial one
    rating = trained["tuning"]["rating"]
    assert len(rating["trials"]) == settings.tuning_trials
    # Every trial was really scored (a NaN RMSE once made the search keep its first trial).
    assert all(0.3 < t["rmse"] < 2 for t in rating["trials"])
    assert all(0 < t[ranker["metric"]] <= 1 for t in ranker["trials"])
    assert trained["chosen"]["rating_rank"] == min(rating["trials"], key=lambda t: t["rmse"])["rating_rank"]


def test_first_model_of_a_dataset_is_promoted(pipeline):
    _, facts, _ = pipeline
    decision = facts["evaluate"]["decision"]
    assert decision["promote"] is True
    assert decision["champion_version"] is None
    assert decision["reason"].startswith("No champion yet")


def test_a_worse_challenger_is_rejected_unless_forced(spark, pipeline):
    """The next day's challenger (here: the same ALS drowned in popularity) is scored beside the
    champion on that day's split, and loses."""
    settings, facts, _ = pipeline
    registry.record(settings, DS, registry_entry(settings, DS, facts["train"], facts["evaluate"]))
    next_day = "2024-03-02"
    for stage, name in (("splits", "train"), ("splits", "test"), ("clean", "items"), ("idmap", "item"),
                        ("features", "item_content")):  # fmt: skip
        shutil.copytree(settings.lake_path(stage, name, DS), settings.lake_path(stage, name, next_day))
    worse = facts["train"] | {"chosen": facts["train"]["chosen"] | {"blend": 1000.0}}
    write_facts_file(settings.lake_path("facts", "train", next_day), worse)

    evaluated = evaluate(spark, settings, next_day)
    k = settings.top_k
    champion = evaluated["metrics"]["champion"]
    assert champion[f"ndcg@{k}"] == pytest.approx(facts["evaluate"]["metrics"]["als"][f"ndcg@{k}"])
    decision = evaluated["decision"]
    assert decision["promote"] is False
    assert decision["champion_version"] == settings.model_version(DS)
    assert decision["challenger_value"] < decision["champion_value"] - settings.champion_tolerance
    assert decision["reason"].startswith("Rejected, the champion's recommendations stay")

    forced = evaluate(spark, dataclasses.replace(settings, force_publish=True), next_day)["decision"]
    assert forced["promote"] is True and forced["reason"].startswith("Forced by force_publish")


def test_counts_reconcile_for_every_table(pipeline, ratings):
    settings, facts, _ = pipeline
    reconciliation = {r["table_name"]: r for r in facts["clean"]["reconciliation"]}
    assert set(reconciliation) == {"interactions", "items", "users"}
    for table, r in reconciliation.items():
        assert r["raw_rows"] == r["clean_rows"] + r["quarantined_rows"] + r["duplicate_rows"], table
        assert r["raw_rows"] == facts["ingest"]["raw_rows"][table], table
    # Counted from the file by the test itself: ingest lost no line.
    assert facts["ingest"]["raw_rows"]["interactions"] == len(ratings)
    assert facts["ingest"]["raw_rows"]["users"] == SAMPLE["sample_users"]
    assert facts["ingest"]["raw_rows"]["items"] == SAMPLE["sample_items"]
    # The generated sample is clean: nothing quarantined, no pair rated twice.
    assert reconciliation["interactions"]["clean_rows"] == len(ratings)
    assert facts["clean"]["quarantine"] == []
    split_rows = facts["train"]["split_rows"]
    assert split_rows["train"] + split_rows["test"] + split_rows["cold_start_cut"] == len(ratings)
    assert split_rows["cold_start_cut"] > 0  # the simulated cold users lost training rows
    assert facts["train"]["counts"]["n_users"] == SAMPLE["sample_users"]


def test_validation_results_all_succeed(pipeline):
    _, facts, _ = pipeline
    for step in ("validate_raw", "validate_clean"):
        results = facts[step]["results"]
        assert results, step
        assert [r["expectation_key"] for r in results if not r["success"]] == [], step
    suites = {r["suite"] for step in ("validate_raw", "validate_clean") for r in facts[step]["results"]}
    assert suites == {
        "movielens_raw_interactions", "movielens_raw_items", "movielens_raw_referential_integrity",
        "movielens_clean_interactions", "movielens_clean_items", "movielens_clean_referential_integrity",
    }  # fmt: skip


def test_facts_are_kept_in_the_lake(pipeline):
    settings, facts, _ = pipeline
    assert read_facts(settings.lake_path("facts", "evaluate", DS))["metrics"] == facts["evaluate"]["metrics"]
    assert read_facts(settings.lake_path("facts", "ingest", DS))["layout"] == "ml-100k"


def test_recommend_again_gives_identical_rows(spark, pipeline):
    settings, facts, recs = pipeline
    again = run_step(spark, "recommend", recommend, settings, DS)
    rerun = [
        r.asDict() for r in spark.read.parquet(settings.lake_path("recs", "recommendations", DS)).collect()
    ]

    def key(r):
        return (r["user_id"], r["rank"])

    assert sorted(rerun, key=key) == sorted(recs, key=key)
    assert again == facts["recommend"]


def test_every_recommendation_says_why(pipeline, ratings):
    _, _, recs = pipeline
    titles = dict(
        (line.split("|")[0], line.split("|")[1])
        for line in (pipeline[0].sample_dir / "u.item").read_text(encoding="latin-1").splitlines()
    )
    rated = defaultdict(set)
    for user, item, _, _ in ratings:
        rated[user].add(item)
    kinds = defaultdict(int)
    for r in recs:
        assert r["source"] in ("als", "hybrid", "content"), r  # every sample user has a history
        because = re.fullmatch(r"because you rated (.+)", r["reason"])
        if because:
            # The reason names one of the user's own items, by its title.
            assert because[1] in {titles[item] for item in rated[r["user_id"]]}, r
            kinds["because"] += 1
        else:
            assert r["reason"] in ("people with tastes like yours rated it", "like what you rated"), r
    assert kinds["because"] > len(recs) / 2


def test_users_are_served_by_tier_with_tuned_weights(pipeline, ratings):
    settings, facts, recs = pipeline
    rated = defaultdict(set)
    for user, item, _, _ in ratings:
        rated[user].add(item)
    for r in recs:
        n = len(rated[r["user_id"]])
        expected = (
            "cold"
            if n <= settings.cold_max_interactions
            else "heavy"
            if n >= settings.heavy_min_interactions
            else "warm"
        )
        assert r["user_tier"] == expected, r
    weights = facts["train"]["chosen"]["hybrid_weights"]
    assert set(weights) == {"cold", "warm", "heavy"} and all(0 <= w <= 1 for w in weights.values())
    grid = facts["train"]["tuning"]["hybrid"]["trials"]
    assert {t["weight"] for t in grid} >= {0.0, 1.0}
    assert sum(facts["recommend"]["tiers"].values()) == len(rated)
    assert sum(facts["recommend"]["sources"].values()) == len(recs)


def test_every_tier_is_evaluated_for_every_model(pipeline):
    settings, facts, _ = pipeline
    k = settings.top_k
    tiers = facts["evaluate"]["tier_metrics"]
    # The simulated cold users (cold_user_fraction of them) make a cold tier on this sample too.
    assert tiers["cold"]["als"]["n_users"] > 0
    for tier, models in tiers.items():
        for model in ("als", "content", "hybrid", "popularity"):
            if models:
                assert 0 <= models[model][f"recall@{k}"] <= 1, (tier, model)
                assert models[model]["n_users"] == models["als"]["n_users"], (tier, model)


def test_rules_are_logged_and_similar_items_cover_the_catalogue(pipeline):
    settings, facts, recs = pipeline
    rules = {r["rule"]: r for r in facts["recommend"]["rules"]}
    assert list(rules) == ["seen", "blocklist", "availability", "diversity"]
    assert rules["seen"]["enabled"] and rules["seen"]["items_removed"] > 0
    assert not rules["diversity"]["enabled"] and rules["diversity"]["items_removed"] == 0
    similar = pq.read_table(settings.lake_path("recs", "similar_items", DS)).to_pylist()
    assert facts["recommend"]["similar_items"] == len(similar) > 0
    assert all(s["item_id"] != s["similar_item_id"] and -1 <= s["score"] <= 1 for s in similar)


def test_analytics_reconcile_with_the_ratings(pipeline, ratings):
    settings, facts, _ = pipeline

    def table(name: str) -> list[dict]:
        return pq.read_table(settings.lake_path("analytics", name, DS)).to_pylist()

    n = len(ratings)
    assert sum(r["n_interactions"] for r in table("daily_kpis")) == n
    assert sum(r["new_users"] for r in table("daily_kpis")) == len({u for u, *_ in ratings})
    assert sum(r["n_interactions"] for r in table("hourly_activity")) == n
    assert sum(r["n_events"] for r in table("daily_funnel") if r["step"] == 1) == n
    liked = sum(1 for _, _, rating, _ in ratings if float(rating) >= 4)
    assert sum(r["n_events"] for r in table("daily_funnel") if r["step"] == 2) == liked
    assert sum(r["n"] for r in table("value_distribution")) == n
    assert len(table("users")) == len(table("user_profiles")) == len({u for u, *_ in ratings})
    assert table("watch_time_hourly") == []
    raters = defaultdict(set)
    for user, item, _, _ in ratings:
        raters[item].add(user)
    most = sorted(raters, key=lambda item: (-len(raters[item]), item))[: settings.top_k]
    overall = sorted(
        (r for r in table("popular_items") if r["segment_type"] == "overall"), key=lambda r: r["rank"]
    )
    assert [r["item_id"] for r in overall] == most
    assert facts["analytics"]["rows"]["daily_kpis"] == len(table("daily_kpis"))
    assert facts["analytics"]["first_day"] == min(r["activity_date"] for r in table("daily_kpis")).isoformat()


# --- bad input -------------------------------------------------------------------------------


def _copy_sample(pipeline, folder: Path) -> Path:
    settings, _, _ = pipeline
    folder.mkdir()
    for name in ("u.data", "u.item", "u.user"):
        shutil.copy(settings.sample_dir / name, folder / name)
    return folder


def test_wrong_delimiter_in_30_percent_of_lines_stops_the_run(spark, pipeline, tmp_path):
    source = _copy_sample(pipeline, tmp_path / "source")
    lines = (source / "u.data").read_text().splitlines()
    broken = {n for n in range(1, len(lines) + 1) if n % 10 in (3, 6, 9)}
    (source / "u.data").write_text(
        "".join(
            (line.replace("\t", ",") if n in broken else line) + "\n" for n, line in enumerate(lines, start=1)
        )
    )
    settings = _settings(tmp_path / "data", path=str(source))
    run_step(spark, "ingest", ingest, settings, DS)
    facts = run_step(spark, "validate_raw", validate_raw, settings, DS)

    with pytest.raises(ValidationFailed) as excinfo:
        enforce(facts["results"])
    message = str(excinfo.value)
    assert "(column _n_fields)" in message
    assert "each line has 4 fields (right delimiter)" in message
    # The sampled line really is one of the broken ones.
    where = re.search(r"first at (\S+) line (\d+)", message.split("(column _n_fields)", 1)[1])
    assert where, message
    assert where.group(1).endswith("/source/u.data")
    assert int(where.group(2)) in broken


def test_a_few_bad_lines_are_quarantined_and_the_run_goes_on(spark, pipeline, tmp_path):
    source = _copy_sample(pipeline, tmp_path / "source")
    lines = (source / "u.data").read_text().splitlines()
    assert len(lines) > 3000  # a few bad lines among thousands
    user, item, _, ts = lines[9].split("\t")
    lines[9] = f"{user}\t{item}\t9\t{ts}"  # line 10
    lines[1999] = "\t".join(["abc"] + lines[1999].split("\t")[1:])  # line 2000
    lines[2999] = lines[2999].replace("\t", ",")  # line 3000
    (source / "u.data").write_text("\n".join(lines) + "\n")
    settings = _settings(tmp_path / "data", path=str(source))

    run_step(spark, "ingest", ingest, settings, DS)
    enforce(run_step(spark, "validate_raw", validate_raw, settings, DS)["results"])  # must not raise
    facts = run_step(spark, "clean", clean, settings, DS)

    quarantined = spark.read.parquet(settings.lake_path("quarantine", "interactions", DS)).collect()
    assert sorted((r["_line"], r["column"], r["reason"]) for r in quarantined) == [
        (10, "rating", "rating outside 1..5"),
        (2000, "user_id", "user_id is not an integer id within int32"),
        (3000, "_raw", "expected 4 fields"),
    ]
    assert {r["_file"].rsplit("/", 1)[-1] for r in quarantined} == {"u.data"}
    assert {r["_line"]: r["_raw"] for r in quarantined}[3000] == lines[2999]

    summary = {q["reason"]: q for q in facts["quarantine"]}
    assert {reason: (q["rows_quarantined"], q["sample_line"]) for reason, q in summary.items()} == {
        "rating outside 1..5": (1, 10),
        "user_id is not an integer id within int32": (1, 2000),
        "expected 4 fields": (1, 3000),
    }
    interactions = next(r for r in facts["reconciliation"] if r["table_name"] == "interactions")
    assert (interactions["raw_rows"], interactions["quarantined_rows"]) == (len(lines), 3)
    assert interactions["clean_rows"] == len(lines) - 3 - interactions["duplicate_rows"]


def test_duplicate_ratings_are_counted_and_reconcile(spark, pipeline, tmp_path):
    """An exact re-send and a later re-rating of the same pair: one row each survives, and the
    two dropped rows are counted as duplicates, not lost."""
    source = _copy_sample(pipeline, tmp_path / "source")
    lines = (source / "u.data").read_text().splitlines()
    user, item, _, ts = lines[1].split("\t")
    rerated = f"{user}\t{item}\t1\t{int(ts) + 60}"
    (source / "u.data").write_text("\n".join([*lines, lines[0], rerated]) + "\n")
    settings = _settings(tmp_path / "data", path=str(source))

    run_step(spark, "ingest", ingest, settings, DS)
    facts = run_step(spark, "clean", clean, settings, DS)

    interactions = next(r for r in facts["reconciliation"] if r["table_name"] == "interactions")
    assert (interactions["raw_rows"], interactions["clean_rows"]) == (len(lines) + 2, len(lines))
    assert (interactions["quarantined_rows"], interactions["duplicate_rows"]) == (0, 2)
    clean_rows = spark.read.parquet(settings.lake_path("clean", "interactions", DS))
    (kept,) = clean_rows.where((clean_rows.user_id == user) & (clean_rows.item_id == item)).collect()
    assert kept["weight"] == 1.0  # the later rating wins
