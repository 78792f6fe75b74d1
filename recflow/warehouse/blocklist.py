"""The recommendation blocklist: items that must not be recommended, kept in the warehouse.

Operators edit it in the warehouse (``python -m recflow.cli block ...``, or block_item /
unblock_item), per dataset: an entry blocks one item for every user (user_id '') or for one
user. The recommend step is a Spark job that never connects to the warehouse, so before it runs
the DAG exports the dataset's blocklist to the lake with export_blocklist; the job reads it from
``<lake>/rules/<dataset>/blocklist/dt=<ds>``. An edit therefore takes effect with the next run.
"""

from __future__ import annotations

import datetime
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from pyarrow import fs as pafs

from recflow.config import PROJECT_ROOT, Settings
from recflow.facts import lake_filesystem
from recflow.warehouse.engine import make_engine
from recflow.warehouse.migrate import migrate

log = logging.getLogger(__name__)

SQL_ROOT = PROJECT_ROOT / "sql"
EVERY_USER = ""
# What the lake export holds, and what the recommend step reads: one row per blocked item and
# user ('' = every user), sorted, never null.
BLOCKLIST_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
    ]
)
PART_FILE = "part-00000.parquet"
# The columns' sizes in sql/*/009_recommendation_rules.sql.
_ID_CHARS = 64
_REASON_CHARS = 255
_ADDED_BY_CHARS = 64


def read_blocklist(engine: sa.Engine | sa.Connection, dataset: str) -> pa.Table:
    """The dataset's blocklist as (item_id, user_id, reason), sorted by item_id then user_id."""
    query = sa.text(
        "SELECT item_id, user_id, reason FROM recommendation_blocklist WHERE dataset = :dataset"
        " ORDER BY item_id, user_id"
    )
    if isinstance(engine, sa.Connection):
        rows = engine.execute(query, {"dataset": dataset}).all()
    else:
        with engine.connect() as conn:
            rows = conn.execute(query, {"dataset": dataset}).all()
    # Sorted again here: MySQL's utf8mb4_bin and SQLite's BINARY agree, but the file must not
    # depend on a server's collation.
    rows = sorted(rows, key=lambda row: (row[0], row[1]))
    return pa.Table.from_pylist(
        [{"item_id": item, "user_id": user, "reason": reason} for item, user, reason in rows],
        schema=BLOCKLIST_SCHEMA,
    )


def block_item(
    engine: sa.Engine,
    dataset: str,
    item_id: str,
    reason: str,
    user_id: str = EVERY_USER,
    added_by: str | None = None,
    added_at: datetime.datetime | None = None,
) -> bool:
    """Block ``item_id`` for ``user_id`` ('' = every user) of ``dataset``; True when it was not
    blocked before. Blocking again replaces the reason, added_by and added_at (UTC, now by
    default). The blocklist table must exist (migrate first)."""
    _check_key(dataset, item_id, user_id)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > _REASON_CHARS:
        raise ValueError(f"reason {reason!r}: say why, in 1 to {_REASON_CHARS} characters")
    if added_by is not None and (not isinstance(added_by, str) or len(added_by) > _ADDED_BY_CHARS):
        raise ValueError(f"added_by {added_by!r}: a name of up to {_ADDED_BY_CHARS} characters, or None")
    when = added_at or datetime.datetime.now(datetime.UTC)
    if when.tzinfo is not None:
        when = when.astimezone(datetime.UTC).replace(tzinfo=None)
    row = {
        "dataset": dataset,
        "item_id": item_id,
        "user_id": user_id,
        "reason": reason.strip(),
        "added_by": added_by,
        # whole seconds as ISO text: both MySQL DATETIME and SQLite take it unchanged
        "added_at": when.replace(microsecond=0).isoformat(sep=" "),
    }
    # Delete and insert in one transaction rather than a dialect's upsert: the same SQL on both.
    with engine.begin() as conn:
        removed = _delete(conn, dataset, item_id, user_id)
        conn.execute(
            sa.text(
                "INSERT INTO recommendation_blocklist (dataset, item_id, user_id, reason, added_by, added_at)"
                " VALUES (:dataset, :item_id, :user_id, :reason, :added_by, :added_at)"
            ),
            row,
        )
    return removed == 0


def unblock_item(engine: sa.Engine, dataset: str, item_id: str, user_id: str = EVERY_USER) -> bool:
    """Remove the entry for ``item_id`` and ``user_id`` ('' = the every-user entry); True when there
    was one. An item blocked for every user and for some users separately has separate entries."""
    _check_key(dataset, item_id, user_id)
    with engine.begin() as conn:
        return _delete(conn, dataset, item_id, user_id) > 0


def export_blocklist(settings: Settings, ds: str) -> dict:
    """Write the dataset's blocklist to ``<lake>/rules/<dataset>/blocklist/dt=<ds>`` for the
    recommend step: one Parquet part file and _SUCCESS, replacing what the date held, written
    even when the blocklist is empty. Migrates the warehouse first (so the table exists).
    Returns {"blocked_items": number of entries, "path": the partition's URI}."""
    engine = make_engine(settings.warehouse_url, settings.sqlite_path)
    try:
        migrate(engine, SQL_ROOT)
        table = read_blocklist(engine, settings.dataset_name)
    finally:
        engine.dispose()
    uri = settings.lake_path("rules", "blocklist", ds)
    write_blocklist(uri, table)
    summary = {"blocked_items": table.num_rows, "path": uri}
    log.info("Exported the blocklist of %s: %s", settings.dataset_name, summary)
    return summary


def write_blocklist(uri: str, table: pa.Table) -> None:
    """``table`` as the partition ``uri``: the old content goes, the part file is written, then
    _SUCCESS, so a reader that waits for _SUCCESS never sees a half-written partition."""
    filesystem, root = lake_filesystem(uri)
    if filesystem.get_file_info(root).type == pafs.FileType.Directory:
        filesystem.delete_dir_contents(root)
    else:
        filesystem.create_dir(root, recursive=True)
    pq.write_table(table.cast(BLOCKLIST_SCHEMA), f"{root}/{PART_FILE}", filesystem=filesystem)
    with filesystem.open_output_stream(f"{root}/_SUCCESS"):
        pass


def _delete(conn: sa.Connection, dataset: str, item_id: str, user_id: str) -> int:
    return conn.execute(
        sa.text(
            "DELETE FROM recommendation_blocklist"
            " WHERE dataset = :dataset AND item_id = :item_id AND user_id = :user_id"
        ),
        {"dataset": dataset, "item_id": item_id, "user_id": user_id},
    ).rowcount


def _check_key(dataset: str, item_id: str, user_id: str) -> None:
    for name, value, may_be_empty in (
        ("dataset", dataset, False),
        ("item_id", item_id, False),
        ("user_id", user_id, True),
    ):
        if not isinstance(value, str) or len(value) > _ID_CHARS or (not value and not may_be_empty):
            raise ValueError(f"{name} {value!r}: expected a string of 1 to {_ID_CHARS} characters")
        if value != value.strip():
            raise ValueError(f"{name} {value!r} has leading or trailing spaces")
