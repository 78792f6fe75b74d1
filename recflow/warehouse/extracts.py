"""BI extracts: each BI view's rows for one dataset as a CSV file, refreshed after a publish.

For the tools and people that read files rather than MySQL (a Tableau extract built from text
files, a spreadsheet, the API's warm cache). ``<out>/<dataset>/<view>.csv`` plus
``manifest.json`` (the served run, rows per view). Each file is written beside its final name and
renamed over it, so a reader sees the old extract or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from recflow.config import check_dataset_name

VIEW_PREFIX = "v_"


def refresh_extracts(engine: sa.Engine, dataset: str, out_dir: Path, served: dict | None = None) -> dict:
    """Write every v_* view's rows of ``dataset``; return the manifest (rows per view)."""
    # The name comes from an Asset event's extra: checked, since it names a folder here.
    folder = out_dir / check_dataset_name(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    views = sorted(v for v in sa.inspect(engine).get_view_names() if v.startswith(VIEW_PREFIX))
    rows: dict[str, int] = {}
    with engine.connect() as conn:
        for view in views:
            result = conn.execute(
                sa.text(f"SELECT * FROM {view} WHERE dataset = :dataset"), {"dataset": dataset}
            )
            columns = list(result.keys())
            records = [dict(zip(columns, (_plain(v) for v in row), strict=True)) for row in result]
            table = (
                pa.Table.from_pylist(records)
                if records
                else pa.table({c: pa.array([], pa.string()) for c in columns})
            )
            _atomic(folder / f"{view}.csv", lambda path, table=table: pacsv.write_csv(table, path))
            rows[view] = table.num_rows
    manifest = {"dataset": dataset, "served": served, "rows": rows}
    _atomic(
        folder / "manifest.json",
        lambda path: Path(path).write_text(json.dumps(manifest, indent=2, default=str)),
    )
    return manifest


def _plain(value):
    """Decimal and date values as CSV-friendly text or floats (pyarrow infers the rest)."""
    if value is None or isinstance(value, int | float | str):
        return value
    try:
        return float(value)  # Decimal
    except (TypeError, ValueError):
        return str(value)  # dates, datetimes


def _atomic(path: Path, write) -> None:
    partial = path.with_name(path.name + ".partial")
    write(str(partial))
    os.replace(partial, path)
