"""publish_run.build_bundle: what the Spark steps leave in the lake (recommendations with their user
tier, similar items, the recommend facts' rule log, the evaluate facts' tier metrics) becomes one
PublishBundle, and publish_run puts it in the embedded warehouse."""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from recflow.facts import lake_filesystem, write_facts_file
from recflow.publish_run import build_bundle, publish_run
from recflow.warehouse.engine import make_engine
from recflow.warehouse.publish import ANALYTICS

DS = "2024-05-01"


def write_table(uri: str, table: pa.Table) -> None:
    """A lake partition as Spark leaves it: a folder with a part file and _SUCCESS."""
    filesystem, root = lake_filesystem(uri)
    filesystem.create_dir(root, recursive=True)
    pq.write_table(table, f"{root}/part-00000.parquet", filesystem=filesystem)
    with filesystem.open_output_stream(f"{root}/_SUCCESS"):
        pass


@pytest.fixture
def lake(settings_factory, make_bundle):
    """Settings whose lake holds one finished run (before publish) of dataset A, and the bundle
    whose tables and facts it was written from."""
    settings = dataclasses.replace(settings_factory({"dataset": "A"}), warehouse_url=None)
    bundle = make_bundle("A")
    path = lambda stage, table: settings.lake_path(stage, table, DS)  # noqa: E731
    # Spark's recommendations carry more columns than publish reads.
    write_table(
        path("recs", "recommendations"),
        bundle.recommendations.append_column("user_idx", pa.array(range(bundle.recommendations.num_rows))),
    )
    write_table(path("recs", "similar_items"), bundle.similar_items)
    write_table(path("clean", "items"), bundle.items.select(["item_id", "title", "genres"]))
    for name, table in bundle.analytics.items():
        write_table(path("analytics", name), table)
    decision = {key: bundle.registry[key] for key in ("decision", "forced", "primary_metric", "challenger_value",
                                                      "champion_version", "champion_value", "tolerance", "reason")}  # fmt: skip
    write_facts_file(
        path("facts", "train"),
        {
            "counts": bundle.counts,
            "chosen": bundle.params,
            "tuning": {
                "als": {"seconds": 2.5, "trials": [{"params": {"rank": 8}, "ndcg@10": 0.2, "seconds": 1.0}]}
            },
            "model_dir": "file:/lake/models/A/als-1",
            "split_rows": {"train": 400, "test": 100},
        },
    )
    write_facts_file(
        path("facts", "evaluate"),
        {
            "decision": {**decision, "promote": True},
            "metrics": bundle.metrics,
            "tier_metrics": bundle.tier_metrics,
        },
    )
    write_facts_file(path("facts", "recommend"), {"rules": bundle.rule_log, "n_users": 50})
    write_facts_file(path("facts", "validate_raw"), {"results": []})
    write_facts_file(path("facts", "validate_clean"), {"results": []})
    write_facts_file(path("facts", "clean"), {"reconciliation": bundle.reconciliation, "quarantine": []})
    return settings, bundle


def test_build_bundle_reads_tiers_similar_items_rules_and_tier_metrics(lake):
    settings, written = lake
    bundle = build_bundle(settings, DS, "manual__1", {"publish": 1.0})
    assert bundle.recommendations.column_names == [
        "user_id", "item_id", "rank", "score", "source", "reason", "user_tier",
    ]  # fmt: skip
    assert (
        bundle.recommendations.column("user_tier").to_pylist()
        == written.recommendations.column("user_tier").to_pylist()
    )
    assert bundle.similar_items.to_pylist() == written.similar_items.to_pylist()
    assert bundle.rule_log == written.rule_log
    assert bundle.tier_metrics == written.tier_metrics
    assert set(bundle.analytics) == set(ANALYTICS)


def test_publish_run_publishes_them_into_the_warehouse(lake):
    settings, written = lake
    summary = publish_run(settings, DS, "manual__1", {"publish": 1.0})
    assert summary["rows_written"]["similar_items"] == written.similar_items.num_rows
    assert summary["rows_written"]["recommendation_rules"] == len(written.rule_log)
    first = summary["sample"][0]
    assert (first["user_id"], first["rank"], first["user_tier"], first["source"]) == (
        "u0",
        1,
        "new",
        "popular",
    )
    engine = make_engine(None, settings.sqlite_path)
    with engine.connect() as conn:
        tiers = (
            conn.execute(sa.text("SELECT DISTINCT user_tier FROM model_metrics ORDER BY 1")).scalars().all()
        )
        rules = conn.execute(sa.text("SELECT COUNT(*) FROM v_recommendation_rules")).scalar_one()
    engine.dispose()
    assert tiers == ["all", "cold", "warm"]
    assert rules == len(written.rule_log)


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        (lambda s: s.lake_path("facts", "recommend", DS), "facts/A/recommend/dt="),
        (lambda s: s.lake_path("recs", "similar_items", DS), "similar_items"),
    ],
)
def test_a_missing_output_of_the_recommend_step_is_an_error(lake, remove, message):
    settings, _ = lake
    filesystem, root = lake_filesystem(remove(settings))
    filesystem.delete_dir(root)
    with pytest.raises((FileNotFoundError, OSError), match=message):
        build_bundle(settings, DS, "manual__1", {})


@pytest.mark.parametrize(("step", "key"), [("recommend", "rules"), ("evaluate", "tier_metrics")])
def test_facts_without_the_new_keys_are_an_error_naming_the_file(lake, step, key):
    settings, written = lake
    uri = settings.lake_path("facts", step, DS)
    filesystem, root = lake_filesystem(uri)
    with filesystem.open_input_stream(f"{root}/part-00000.json") as stream:
        facts = json.loads(stream.read())
    del facts[key]
    write_facts_file(uri, facts)
    with pytest.raises(KeyError, match=f"{step} facts at .*{step}/dt={DS} have no '{key}'"):
        build_bundle(settings, DS, "manual__1", {})
