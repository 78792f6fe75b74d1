from __future__ import annotations

import logging

import pyarrow as pa
import pytest
import sqlalchemy as sa

from recflow.warehouse import loaders
from recflow.warehouse.loaders import LoadDataRefused, bulk_load, insert_rows, load_data_local
from recflow.warehouse.migrate import migrate

TRICKY_TITLES = [
    "Amélie",
    "Die Straße",
    "日本のいちばん長い日",
    "🎬 Popcorn 🍿",
    "tab\there",
    "new\nline",
    "carriage\r\nreturn",
    "back\\slash",
    "\\N",  # the text, not NULL
    "ends with a backslash\\",
    "nul\0byte",
    "  padded  ",
    "",
    None,
]
ITEM_COLUMNS = ["dataset", "item_id", "title", "genres"]
REC_COLUMNS = ["dataset", "user_id", "item_id", "rank", "score", "model_version", "run_date"]


def tricky_items(dataset: str) -> pa.Table:
    n = len(TRICKY_TITLES)
    return pa.table(
        {
            "dataset": [dataset] * n,
            "item_id": [f"item-{i}" for i in range(n)],
            "title": TRICKY_TITLES,
            "genres": ["Drama|Comédie", None] * (n // 2),
        }
    )


def many_recommendations(dataset: str, n: int) -> pa.Table:
    return pa.table(
        {
            "dataset": [dataset] * n,
            "user_id": [f"u{i // 10}" for i in range(n)],
            "item_id": [f"i{i * 7919 % 1000}" for i in range(n)],
            "rank": pa.array([i % 10 + 1 for i in range(n)], pa.int16()),
            "score": [(i * 0.1 + 0.2) / 3 for i in range(n)],  # values with no short decimal form
            "model_version": ["v1"] * n,
            "run_date": ["2024-05-01"] * n,
        }
    )


def loaded(conn: sa.Connection, table: str, dataset: str) -> list[tuple]:
    """Rows of ``dataset`` without the dataset column, keyed by id, in a stable order."""
    rows = conn.execute(sa.text(f"SELECT * FROM {table} WHERE dataset = :dataset"), {"dataset": dataset})
    return sorted(tuple(row)[1:] for row in rows)


def expected(rows: pa.Table) -> list[tuple]:
    return sorted(tuple(row.values())[1:] for row in rows.to_pylist())


@pytest.mark.warehouse
def test_load_data_round_trips_non_ascii_and_escapes_exactly(mariadb_engine, sql_root):
    migrate(mariadb_engine, sql_root)
    items = tricky_items("L")
    with mariadb_engine.begin() as conn:
        assert load_data_local(conn, "items", ITEM_COLUMNS, items) == items.num_rows
    with mariadb_engine.connect() as conn:
        assert loaded(conn, "items", "L") == expected(items)


@pytest.mark.warehouse
def test_insert_fallback_loads_the_same_rows_as_load_data(mariadb_engine, sql_root):
    migrate(mariadb_engine, sql_root)
    recs = many_recommendations("L", 12_345)
    with mariadb_engine.begin() as conn:
        assert load_data_local(conn, "recommendations", REC_COLUMNS, recs) == recs.num_rows
        assert (
            insert_rows(
                conn,
                "recommendations",
                REC_COLUMNS,
                recs.set_column(0, "dataset", pa.array(["I"] * recs.num_rows)),
            )
            == recs.num_rows
        )
        assert load_data_local(conn, "items", ITEM_COLUMNS, tricky_items("L")) == len(TRICKY_TITLES)
        assert insert_rows(conn, "items", ITEM_COLUMNS, tricky_items("I")) == len(TRICKY_TITLES)
    with mariadb_engine.connect() as conn:
        via_load_data = loaded(conn, "recommendations", "L")
        assert via_load_data == loaded(conn, "recommendations", "I")
        assert loaded(conn, "items", "L") == loaded(conn, "items", "I") == expected(tricky_items("L"))
    scores = [row[3] for row in via_load_data]
    assert sorted(scores) == sorted(recs.column("score").to_pylist())  # doubles survive bit for bit


@pytest.mark.warehouse
def test_bulk_load_falls_back_to_inserts_when_local_infile_is_refused(
    fresh_mysql_database, sql_root, monkeypatch, caplog
):
    engine = fresh_mysql_database(connect_args={"local_infile": False, "charset": "utf8mb4"})
    migrate(engine, sql_root)
    monkeypatch.setattr(loaders, "_refusal_logged", False)
    items = tricky_items("F")
    with engine.begin() as conn:
        with pytest.raises(LoadDataRefused):
            load_data_local(conn, "items", ITEM_COLUMNS, items)
        with caplog.at_level(logging.WARNING, logger=loaders.__name__):
            assert bulk_load(conn, "items", ITEM_COLUMNS, items) == items.num_rows
            assert bulk_load(conn, "items", ITEM_COLUMNS, tricky_items("G")) == items.num_rows
    # Only this module's records: other libraries (py4j, Airflow) may log during the suite.
    ours = [record for record in caplog.records if record.name == loaders.__name__]
    assert [record.message.startswith("LOAD DATA LOCAL INFILE refused") for record in ours] == [True]
    with engine.connect() as conn:
        assert loaded(conn, "items", "F") == expected(items)


@pytest.mark.warehouse
def test_load_data_raises_instead_of_skipping_duplicates(mariadb_engine, sql_root):
    """LOAD DATA LOCAL only warns about duplicate keys; the loader must not drop rows silently."""
    migrate(mariadb_engine, sql_root)
    items = tricky_items("D")
    with mariadb_engine.begin() as conn, pytest.raises(ValueError, match="Duplicate entry"):
        load_data_local(conn, "items", ITEM_COLUMNS, pa.concat_tables([items, items]))


def test_sqlite_bulk_load_round_trips(sqlite_engine, sql_root):
    migrate(sqlite_engine, sql_root)
    items = tricky_items("S")
    with sqlite_engine.begin() as conn:
        assert bulk_load(conn, "items", ITEM_COLUMNS, items) == items.num_rows
        assert bulk_load(conn, "items", ITEM_COLUMNS, items.slice(0, 0)) == 0
    with sqlite_engine.connect() as conn:
        assert loaded(conn, "items", "S") == expected(items)
