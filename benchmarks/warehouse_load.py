"""Bulk-load throughput into the MySQL/MariaDB warehouse: RecFlow's loader beside pandas to_sql,
measured in one run on the same data.

Loads N synthetic recommendation rows (default 1,000,000: 100,000 users x their top 10 from a
20,000-item catalogue) into an empty copy of the warehouse's `recommendations` table
(CREATE TABLE bench_recommendations LIKE recommendations, after applying the project's
migrations, so the load hits the real schema: its primary key, its index, every column that
exists, including those of later migrations such as `source` and `reason`). Loaders:

a. RecFlow, the way publish replaces a dataset's recommendations: in one transaction, DELETE the
   dataset's previous N rows (loaded before the clock starts) and bulk_load the new ones (LOAD
   DATA LOCAL INFILE of a TSV file built with pyarrow.compute) into the indexed table, then
   COMMIT. Readers keep the old set until the commit; a publish killed midway is rolled back;
a'. bulk_load into the empty indexed table (how bulk_load appends anywhere else);
b. RecFlow's fallback when the server refuses LOCAL INFILE: loaders.insert_rows, multi-row
   INSERT statements whose VALUES lists are also built with pyarrow.compute;
c. pandas DataFrame.to_sql(if_exists="append", index=False), default method and chunksize;
d. pandas DataFrame.to_sql(..., method="multi", chunksize=5000).

Each load is timed with the wall clock from the rows in memory (an Arrow table for RecFlow, a
DataFrame for pandas) to COMMIT, building the file or the statements included; the row count
is checked afterwards (not timed) and the table dropped. Every loader gets a fresh empty table.
Reported: median and min over the repeats, rows/s of the median, and the ratio to to_sql's.
A loader whose first load is so slow that the others would not fit the time budget
(--budget-s, 8 minutes by default) is repeated fewer times, and the table says so. Prints the
machine, the table, whether the target is met, then one line of JSON.

    .venv/bin/python benchmarks/warehouse_load.py [--url mysql+pymysql://root@127.0.0.1:3306/test]
        [--rows 1000000] [--repeats 3] [--skip-to-sql] [--budget-s 480]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from recflow.config import PROJECT_ROOT  # noqa: E402
from recflow.warehouse.engine import make_engine  # noqa: E402
from recflow.warehouse.loaders import bulk_load, insert_rows  # noqa: E402
from recflow.warehouse.migrate import migrate  # noqa: E402

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
TABLE = "bench_recommendations"
SOURCE_TABLE = "recommendations"
TARGET_ROWS_PER_S = 150_000
K = 10  # ranks per user
N_ITEMS = 20_000
SEED = 42
RUN_DATE = datetime.date(2024, 5, 1)
# Titles for the reason sentences; some with accents, CJK and emoji, as real catalogues have.
TITLES = [
    "Toy Story", "Heat", "Amélie", "Léon: The Professional", "Das Boot", "Die Straße",
    "千と千尋の神隠し", "Crouching Tiger", "La Haine", "Fargo", "Être et avoir", "Oldboy 올드보이",
    "Cidade de Deus", "Pan's Labyrinth", "Smörgåsbord", "Brazil", "Alien", "🎬 Popcorn Time",
]  # fmt: skip
# Each {title} sentence is 40 to 60 characters with the titles above.
REASONS = [
    "Because you watched {title} last week",
    "Viewers who liked {title} also enjoyed this",
    "Similar in tone and cast to {title}",
    "Popular this week among fans of {title}",
]
SOURCES = ["als", "als", "als", "als", "als", "als", "als", "popular", "segment_popular", "content"]


@dataclass
class Result:
    loader: str
    times: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def synthetic_rows(columns: list[dict], n_rows: int, seed: int = SEED) -> pa.Table:
    """``n_rows`` recommendations (users x K ranks), one Arrow column per loadable column.

    Known names get realistic values; other columns get values of their type. A nullable
    column or one with a server default that is not known is left out (the server fills it);
    an unknown NOT NULL column without a default is an error."""
    rng = np.random.default_rng(seed)
    n_users = -(-n_rows // K)
    user = np.repeat(np.arange(n_users), K)[:n_rows]
    rank = np.tile(np.arange(1, K + 1), n_users)[:n_rows]
    # K distinct items per user: a random start and a step coprime with the catalogue's size
    steps = np.array([s for s in range(1, 400, 2) if s % 5])
    start = rng.integers(0, N_ITEMS, n_users)[user]
    step = rng.choice(steps, n_users)[user]
    item = (start + (rank - 1) * step) % N_ITEMS
    # scores fall with the rank, as a top-K list's do
    score = -np.sort(-rng.uniform(0.2, 5.0, (n_users, K)), axis=1).ravel()[:n_rows]
    values = {
        "dataset": lambda: pa.repeat(pa.scalar("bench", pa.string()), n_rows),
        "user_id": lambda: _prefixed("u", user),
        "item_id": lambda: _prefixed("i", item),
        "rank": lambda: pa.array(rank, pa.int16()),
        "score": lambda: pa.array(score, pa.float64()),
        "model_version": lambda: pa.repeat(pa.scalar("als-2024-05-01-r64", pa.string()), n_rows),
        "run_date": lambda: pa.repeat(pa.scalar(RUN_DATE, pa.date32()), n_rows),
        "source": lambda: pa.array(np.array(SOURCES)[rng.integers(0, len(SOURCES), n_rows)]),
        "reason": lambda: _sentences(rng, n_rows),
    }
    arrays, names = [], []
    for column in columns:
        name = column["name"]
        if name in values:
            array = values[name]()
        else:
            array = _generic(column, n_rows, rng)
            if array is None:
                continue
        arrays.append(array)
        names.append(name)
    return pa.table(arrays, names=names)


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _sentences(rng: np.random.Generator, n_rows: int) -> pa.Array:
    choices = pa.array([reason.format(title=title) for reason in REASONS for title in TITLES])
    return pc.take(choices, pa.array(rng.integers(0, len(choices), n_rows)))


def _generic(column: dict, n_rows: int, rng: np.random.Generator) -> pa.Array | None:
    """Values for a column the generator has no name for; None to leave it to the server."""
    kind = column["type"]
    if column["nullable"] or column.get("default") is not None:
        return None
    if isinstance(kind, sa.Boolean):
        return pa.array(np.arange(n_rows) % 2 == 0)
    if isinstance(kind, sa.Integer):
        return pa.array(np.arange(n_rows) % 100, pa.int64())
    if isinstance(kind, sa.Float | sa.Numeric):
        return pa.array(rng.uniform(0, 1, n_rows))
    if isinstance(kind, sa.DateTime):
        return pa.repeat(pa.scalar(datetime.datetime(2024, 5, 1, 12), pa.timestamp("s")), n_rows)
    if isinstance(kind, sa.Date):
        return pa.repeat(pa.scalar(RUN_DATE, pa.date32()), n_rows)
    if isinstance(kind, sa.String):
        length = getattr(kind, "length", None) or 64
        return pc.utf8_slice_codeunits(_prefixed(f"{column['name']}-", np.arange(n_rows) % 1000), 0, length)
    raise SystemExit(
        f"{SOURCE_TABLE}.{column['name']} is NOT NULL without a default and of type {kind}, "
        "which this benchmark cannot generate: teach synthetic_rows about it"
    )


def fresh_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        conn.exec_driver_sql(f"CREATE TABLE {TABLE} LIKE {SOURCE_TABLE}")


def drop_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")


def measure(
    engine: sa.Engine,
    result: Result,
    load: Callable[[], None],
    n_rows: int,
    prepare: Callable[[], None] | None,
) -> float:
    """Time one load into a fresh table (filled by ``prepare`` first, untimed); check the row
    count afterwards, untimed."""
    fresh_table(engine)
    if prepare is not None:
        prepare()
    try:
        started = time.perf_counter()
        load()
        seconds = time.perf_counter() - started
        with engine.connect() as conn:
            count = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {TABLE}").scalar_one()
    finally:
        drop_table(engine)
    if count != n_rows:
        raise SystemExit(f"{result.loader}: {count} rows in {TABLE} after loading {n_rows}")
    result.times.append(seconds)
    print(f"  {result.loader}: {seconds:.2f} s", file=sys.stderr, flush=True)
    return seconds


def run_loader(
    engine: sa.Engine,
    name: str,
    load: Callable[[], None],
    n_rows: int,
    repeats: int,
    deadline: float,
    optional: bool = False,
    prepare: Callable[[], None] | None = None,
) -> Result:
    """``repeats`` loads, or fewer when the first says the rest would pass ``deadline``; none
    for an ``optional`` loader once the deadline has passed."""
    result = Result(name)
    if optional and time.perf_counter() > deadline:
        result.note = "skipped: time budget spent"
        return result
    first = measure(engine, result, load, n_rows, prepare)
    more = repeats - 1
    left = deadline - time.perf_counter()
    if more > 0 and first * more > left:
        more = max(0, int(left // first))
        result.note = f"{1 + more} of {repeats} repeats: a load takes {first:.0f} s (time budget)"
    for _ in range(more):
        measure(engine, result, load, n_rows, prepare)
    return result


def machine_line(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        version, local_infile, pool, flush = conn.exec_driver_sql(
            "SELECT VERSION(), @@local_infile, @@innodb_buffer_pool_size, @@innodb_flush_log_at_trx_commit"
        ).one()
    return (
        f"Machine: {os.cpu_count()} CPUs; server {version}, local_infile={'ON' if local_infile else 'OFF'}, "
        f"innodb_buffer_pool_size={pool // 2**20} MiB, innodb_flush_log_at_trx_commit={flush}; "
        f"Python {sys.version.split()[0]}, pyarrow {pa.__version__}; "
        f"load average {' '.join(f'{load:.1f}' for load in os.getloadavg())}"
    )


def table_lines(results: list[Result], n_rows: int, to_sql: Result | None) -> list[str]:
    header = ["loader", "median s", "min s", "rows/s (median)", "ratio vs to_sql"]
    rows = []
    notes = []
    for result in results:
        name = result.loader
        if result.note:
            notes.append(f"{'*' * (len(notes) + 1)} {result.note}")
            name += f" {'*' * len(notes)}"
        if not result.times:
            rows.append([name, "", "", "", ""])
            continue
        ratio = f"{to_sql.median / result.median:.1f}x" if to_sql else "n/a"
        rows.append(
            [
                name,
                f"{result.median:.2f}",
                f"{min(result.times):.2f}",
                f"{n_rows / result.median:,.0f}",
                ratio,
            ]
        )
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return [line(header), rule, *map(line, rows), *notes]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("RECFLOW_WAREHOUSE_URL") or DEFAULT_URL)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-to-sql", action="store_true", help="measure RecFlow's loaders only")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=480.0,
        help="time for all the loads; a slow loader is repeated fewer times to keep within it",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeats < 1:
        parser.error("--rows and --repeats must be at least 1")

    started = time.perf_counter()
    deadline = started + args.budget_s
    engine = make_engine(args.url)
    if engine.dialect.name not in ("mysql", "mariadb"):
        parser.error(f"{args.url}: this benchmark needs MySQL or MariaDB")
    migrate(engine, PROJECT_ROOT / "sql")
    columns = sa.inspect(engine).get_columns(SOURCE_TABLE)
    rows = synthetic_rows(columns, args.rows)
    names = rows.column_names
    print(machine_line(engine))
    print(
        f"Data: {args.rows:,} rows of {SOURCE_TABLE} ({', '.join(names)}), "
        f"{-(-args.rows // K):,} users x top {K} of {N_ITEMS:,} items; {rows.nbytes / 2**20:.0f} MiB in Arrow"
    )

    previous = rows.set_column(
        names.index("model_version"), "model_version", pa.repeat(pa.scalar("als-previous"), rows.num_rows)
    )

    def previous_set() -> None:
        with engine.begin() as conn:
            bulk_load(conn, TABLE, names, previous)

    def recflow_publish() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {TABLE} WHERE dataset = :dataset"), {"dataset": "bench"})
            bulk_load(conn, TABLE, names, rows)

    def recflow_indexed() -> None:
        with engine.begin() as conn:
            bulk_load(conn, TABLE, names, rows)

    def fallback() -> None:
        with engine.begin() as conn:
            insert_rows(conn, TABLE, names, rows)

    results = [
        run_loader(
            engine,
            "RecFlow publish: DELETE the previous set + LOAD DATA, one transaction",
            recflow_publish,
            args.rows,
            args.repeats,
            deadline,
            prepare=previous_set,
        ),
        run_loader(
            engine,
            "RecFlow bulk_load into the empty indexed table",
            recflow_indexed,
            args.rows,
            args.repeats,
            deadline,
        ),
        run_loader(
            engine, "RecFlow insert_rows (INSERT fallback)", fallback, args.rows, args.repeats, deadline
        ),
    ]
    to_sql = None
    if not args.skip_to_sql:
        frame = rows.to_pandas()

        def pandas_default() -> None:
            frame.to_sql(TABLE, engine, if_exists="append", index=False)

        def pandas_multi() -> None:
            frame.to_sql(TABLE, engine, if_exists="append", index=False, method="multi", chunksize=5000)

        to_sql = run_loader(
            engine, "pandas to_sql (defaults)", pandas_default, args.rows, args.repeats, deadline
        )
        results.append(to_sql)
        results.append(
            run_loader(
                engine,
                'pandas to_sql (method="multi", chunksize=5000)',
                pandas_multi,
                args.rows,
                args.repeats,
                deadline,
                optional=True,
            )
        )
    engine.dispose()

    print(
        f"\nLoading {args.rows:,} rows into {TABLE} (a fresh copy of {SOURCE_TABLE}; for the publish, holding "
        "the previous set), up to COMMIT:"
    )
    for line in table_lines(results, args.rows, to_sql):
        print(line)
    recflow_rate = args.rows / results[0].median
    met = "met" if recflow_rate >= TARGET_ROWS_PER_S else "MISSED"
    print(
        f"Target: RecFlow's loader >= {TARGET_ROWS_PER_S:,} rows/s: {met} ({recflow_rate:,.0f} rows/s). "
        f"Whole benchmark {time.perf_counter() - started:.0f} s; "
        f"load average at the end {' '.join(f'{load:.1f}' for load in os.getloadavg())}."
    )
    summary = {
        "recflow_rows_per_s": round(recflow_rate),
        "to_sql_rows_per_s": round(args.rows / to_sql.median) if to_sql else None,
        "indexed_bulk_load_rows_per_s": round(args.rows / results[1].median),
        "insert_fallback_rows_per_s": round(args.rows / results[2].median),
        "rows": args.rows,
        "repeats": args.repeats,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
