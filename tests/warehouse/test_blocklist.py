"""The recommendation blocklist: edited in the warehouse (block_item / unblock_item, `recflow.cli
block`), exported to the lake for the recommend step, and the rules and mix in `recflow.cli summary`."""

from __future__ import annotations

import dataclasses
import datetime

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from pyarrow import fs as pafs

from recflow import cli
from recflow.warehouse.blocklist import (
    BLOCKLIST_SCHEMA,
    block_item,
    export_blocklist,
    read_blocklist,
    unblock_item,
)
from recflow.warehouse.migrate import migrate
from recflow.warehouse.publish import publish

BOTH_DIALECTS = pytest.mark.parametrize(
    "engine_fixture", [pytest.param("mariadb_engine", marks=pytest.mark.warehouse), "sqlite_engine"]
)
DS = "2024-05-01"
WHEN = datetime.datetime(2024, 5, 1, 9, 30, 15, 123456)


@pytest.fixture
def engine(request, engine_fixture, sql_root) -> sa.Engine:
    engine = request.getfixturevalue(engine_fixture)
    migrate(engine, sql_root)
    return engine


@pytest.fixture
def settings(engine, settings_factory):
    """Run settings for dataset A whose warehouse is ``engine`` and whose lake is the test's."""
    return dataclasses.replace(
        settings_factory({"dataset": "A"}), warehouse_url=engine.url.render_as_string(hide_password=False)
    )


def entries(engine: sa.Engine, dataset: str = "A") -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT item_id, user_id, reason, added_by, added_at FROM recommendation_blocklist"
                " WHERE dataset = :d ORDER BY item_id, user_id"
            ),
            {"d": dataset},
        ).all()
    return [(*row[:4], str(row[4])) for row in rows]


@BOTH_DIALECTS
def test_block_and_unblock_items_per_dataset_and_user(engine):
    assert block_item(engine, "A", "50", "licence expired", added_by="ops", added_at=WHEN) is True
    assert block_item(engine, "A", "7", "complained about it", user_id="u1", added_at=WHEN) is True
    assert block_item(engine, "B", "50", "other dataset", added_at=WHEN) is True
    # Blocking again updates the entry rather than adding one.
    later = datetime.datetime(2024, 5, 2, 8, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert (
        block_item(engine, "A", "50", "  licence expired in the EU  ", added_by="legal", added_at=later)
        is False
    )
    assert entries(engine) == [
        ("50", "", "licence expired in the EU", "legal", "2024-05-02 06:00:00"),  # UTC, whole seconds
        ("7", "u1", "complained about it", None, "2024-05-01 09:30:15"),
    ]
    assert read_blocklist(engine, "A").to_pylist() == [
        {"item_id": "50", "user_id": "", "reason": "licence expired in the EU"},
        {"item_id": "7", "user_id": "u1", "reason": "complained about it"},
    ]
    with engine.connect() as conn:
        view = conn.execute(
            sa.text("SELECT item_id, applies_to FROM v_blocklist WHERE dataset = 'A' ORDER BY item_id")
        ).all()
    assert [tuple(row) for row in view] == [("50", "all users"), ("7", "one user")]

    assert unblock_item(engine, "A", "7") is False  # blocked for u1 only, not for everyone
    assert unblock_item(engine, "A", "7", user_id="u1") is True
    assert unblock_item(engine, "A", "7", user_id="u1") is False
    assert [row[:2] for row in entries(engine)] == [("50", "")]
    assert [row[:2] for row in entries(engine, "B")] == [("50", "")]


@BOTH_DIALECTS
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"item_id": ""}, "item_id"),
        ({"item_id": "x" * 65}, "item_id"),
        ({"item_id": " 50"}, "spaces"),
        ({"dataset": ""}, "dataset"),
        ({"reason": "  "}, "reason"),
        ({"reason": "r" * 256}, "reason"),
        ({"user_id": None}, "user_id"),
        ({"added_by": "x" * 65}, "added_by"),
    ],
)
def test_a_bad_entry_is_refused_and_nothing_is_written(engine, kwargs, message):
    entry = {"dataset": "A", "item_id": "50", "reason": "licence expired", "user_id": "", **kwargs}
    with pytest.raises(ValueError, match=message):
        block_item(engine, **entry)
    assert entries(engine) == []


@BOTH_DIALECTS
def test_export_writes_the_blocklist_to_the_lake_and_reads_back(engine, settings):
    block_item(engine, "A", "50", "licence expired", added_at=WHEN)
    block_item(engine, "A", "7", "complained about it", user_id="u1", added_at=WHEN)
    block_item(engine, "B", "8", "another dataset's", added_at=WHEN)

    summary = export_blocklist(settings, DS)
    uri = settings.lake_path("rules", "blocklist", DS)
    assert summary == {"blocked_items": 2, "path": uri}
    assert uri.endswith(f"/rules/A/blocklist/dt={DS}")
    filesystem = pafs.LocalFileSystem()
    names = sorted(info.base_name for info in filesystem.get_file_info(pafs.FileSelector(uri)))
    assert names == ["_SUCCESS", "part-00000.parquet"]
    table = pq.read_table(uri)  # the folder, as Spark reads it
    assert table.schema == BLOCKLIST_SCHEMA
    assert table.to_pylist() == [
        {"item_id": "50", "user_id": "", "reason": "licence expired"},
        {"item_id": "7", "user_id": "u1", "reason": "complained about it"},
    ]

    # Re-exporting the date replaces the partition, and an empty blocklist still writes a file.
    unblock_item(engine, "A", "50")
    unblock_item(engine, "A", "7", user_id="u1")
    assert export_blocklist(settings, DS) == {"blocked_items": 0, "path": uri}
    assert sorted(info.base_name for info in filesystem.get_file_info(pafs.FileSelector(uri))) == names
    empty = pq.read_table(uri)
    assert (empty.num_rows, empty.schema) == (0, BLOCKLIST_SCHEMA)


def test_export_migrates_a_new_warehouse_first(settings_factory):
    settings = dataclasses.replace(settings_factory({"dataset": "A"}), warehouse_url=None)
    assert export_blocklist(settings, DS)["blocked_items"] == 0
    assert settings.sqlite_path.is_file()


@BOTH_DIALECTS
def test_cli_block_adds_and_removes_entries(engine, settings, monkeypatch, capsys):
    monkeypatch.setenv("RECFLOW_WAREHOUSE_URL", settings.warehouse_url)
    cli.main(["block", "--dataset", "A", "--item", "50", "--reason", "licence expired", "--by", "ops"])
    assert "Blocked item 50 for every user of A: licence expired" in capsys.readouterr().out
    cli.main(["block", "--dataset", "A", "--item", "7", "--user", "u1", "--reason", "asked not to see it"])
    assert "Blocked item 7 for user u1 of A" in capsys.readouterr().out
    assert [row[:4] for row in entries(engine)] == [
        ("50", "", "licence expired", "ops"),
        ("7", "u1", "asked not to see it", cli._current_user()),
    ]

    cli.main(["block", "--dataset", "A", "--item", "50", "--remove"])
    out = capsys.readouterr().out
    assert "Unblocked item 50 for every user of A" in out and "1 blocklist entries for A" in out
    cli.main(["block", "--dataset", "A", "--item", "50", "--remove"])
    assert "Was not blocked: item 50" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--reason"):
        cli.main(["block", "--dataset", "A", "--item", "9"])
    with pytest.raises(SystemExit, match="item_id"):
        cli.main(["block", "--dataset", "A", "--item", "x" * 65, "--reason", "too long an id"])
    assert [row[:2] for row in entries(engine)] == [("7", "u1")]


@BOTH_DIALECTS
def test_cli_summary_shows_the_rules_and_the_mix(engine, settings, make_bundle, sql_root):
    bundle = make_bundle("A", run_date=datetime.date.fromisoformat(DS))
    publish(engine, bundle, sql_root)
    text = cli.summary(settings, DS)
    assert f"Rules of the {DS} run:" in text
    lines = [line.split() for line in text.splitlines()]
    assert ["seen", "yes", "1200", "48", "items", "seen", "in", "the", "last", "30", "days"] in lines
    assert ["availability", "no", "0", "0"] in lines
    assert "Recommendation mix (the lists being served):" in text
    assert ["new", "popular", "13", "130"] in lines  # users u0, u4, ..., u48 of 50, 10 each
    assert ["heavy", "als", "12", "120"] in lines
    by_tier = next(line for line in text.splitlines() if line.split()[:3] == ["by", "user", "tier"])
    assert by_tier.split()[3:] == ["users", "content", "ndcg@10", "popularity", "ndcg@10", "als", "ndcg@10"]
    assert ["cold", "12", "0.0800", "0.0400"] in lines
    assert ["warm", "30", "0.2300"] in lines
    # A day without rules of its own shows the latest run's before it.
    with engine.connect() as conn:
        days = conn.execute(cli.RULES_SQL, {"d": "A", "ds": "2024-05-09"}).scalars().all()
        assert {str(day) for day in days} == {DS}
        assert conn.execute(cli.RULES_SQL, {"d": "A", "ds": "2024-04-30"}).all() == []
