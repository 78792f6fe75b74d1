from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from recflow.warehouse.publish import publish


@pytest.mark.warehouse
def test_readers_only_ever_see_a_whole_set(mariadb_engine, make_bundle, sql_root):
    """A BI reader polling during five publishes sees 3,000 or 5,000 rows: never a mix, an
    empty table, or a missing one; through the table and through the view Tableau reads."""
    small = make_bundle("A", n_users=300, seed=1)  # 3,000 rows
    large = make_bundle("A", n_users=500, seed=2)  # 5,000 rows
    publish(mariadb_engine, make_bundle("B", n_users=100), sql_root)  # rows the swap must carry over
    publish(mariadb_engine, small, sql_root)

    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        # autocommit like a BI tool: every poll is a fresh statement on the current table
        with mariadb_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            counts = [
                sa.text("SELECT COUNT(*) FROM recommendations WHERE dataset = 'A'"),
                # the view joins items, which the run's facts transaction replaces before the swap
                sa.text("SELECT COUNT(title) FROM v_user_recommendations WHERE dataset = 'A'"),
            ]
            while not stop.is_set():
                for count in counts:
                    try:
                        seen.append(conn.execute(count).scalar_one())
                    except sa.exc.DBAPIError as error:
                        errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for bundle in [large, small, large, small, large]:
            publish(mariadb_engine, bundle, sql_root)
    finally:
        stop.set()
        reader.join()

    assert errors == []
    assert set(seen) == {3_000, 5_000}
    assert len(seen) > 50  # the reader really polled through the swaps
    with mariadb_engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT COUNT(*) FROM recommendations WHERE dataset = 'B'")) == 1_000
