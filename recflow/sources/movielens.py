"""MovieLens: the 100K, 1M and "latest" layouts, read as they are published.

The layout is detected from the files present, so a user points `path` at the unpacked folder
and nothing else. Canonical tables after cleaning:
  interactions(user_id, item_id, event_type 'rating', weight = the rating, ts)
  items(item_id, title, genres)           genres "Action|Comedy"
  users(user_id, age, gender, occupation, zip)
"""

from __future__ import annotations

import logging
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recflow.cleaning import RowRule
from recflow.sources.base import Detected, Layout, SourceError, TableCleaner, check_inside
from recflow.textfiles import TableFile, unclosed_quote_rule

log = logging.getLogger(__name__)

TITLE = "MovieLens"
DOWNLOAD_URL = "https://files.grouplens.org/datasets/movielens/{name}.zip"
DOWNLOADABLE = ("ml-100k", "ml-1m", "ml-latest-small", "ml-latest")

# u.genre order: the 19 flags at the end of each u.item line.
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

# ML-1M users.dat stores occupation as a code; its README gives the names.
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip

_RATINGS = ("user_id", "item_id", "rating", "timestamp")
# 2100-01-01: anything later is milliseconds or garbage, and would overflow timestamp_seconds().
MAX_UNIX_SECONDS = 4_102_444_800


LAYOUTS = (
    Layout(
        "ml-100k",
        "u.data",
        (
            TableFile("interactions", "u.data", "\t", _RATINGS),
            TableFile(
                "items",
                "u.item",
                "|",
                ("item_id", "title", "release_date", "video_release_date", "imdb_url")
                + tuple(f"genre_{i}" for i in range(len(GENRES_100K))),
                encoding="ISO-8859-1",
            ),
            TableFile("users", "u.user", "|", ("user_id", "age", "gender", "occupation", "zip")),
        ),
        1.0,
        5.0,
    ),
    Layout(
        "ml-1m",
        "ratings.dat",
        (
            TableFile("interactions", "ratings.dat", "::", _RATINGS),
            TableFile("items", "movies.dat", "::", ("item_id", "title", "genres"), encoding="ISO-8859-1"),
            TableFile("users", "users.dat", "::", ("user_id", "gender", "age", "occupation", "zip")),
        ),
        1.0,
        5.0,
    ),
    Layout(
        "ml-latest",
        "ratings.csv",
        (
            TableFile(
                "interactions",
                "ratings.csv",
                ",",
                _RATINGS,
                header=("userId", "movieId", "rating", "timestamp"),
                quoted=True,
            ),
            TableFile(
                "items",
                "movies.csv",
                ",",
                ("item_id", "title", "genres"),
                header=("movieId", "title", "genres"),
                quoted=True,
            ),
        ),
        0.5,
        5.0,
    ),
)


def layout_named(name: str) -> Layout:
    return next(layout for layout in LAYOUTS if layout.name == name)


def detect_layout(directory: str | Path) -> Layout:
    directory = Path(directory)
    if not directory.is_dir():
        raise SourceError(f"MovieLens path {directory} is not a directory (or does not exist)")
    present = {p.name for p in directory.iterdir()}
    for layout in LAYOUTS:
        if layout.marker in present:
            missing = [f.filename for f in layout.files if f.filename not in present]
            if missing:
                raise SourceError(
                    f"{directory} looks like MovieLens {layout.name} ({layout.marker} is there) "
                    f"but lacks {', '.join(missing)}"
                )
            return layout
    raise SourceError(
        f"No MovieLens layout recognised in {directory}: expected one of "
        f"{', '.join(layout.marker for layout in LAYOUTS)}; found {sorted(present)[:20]}"
    )


def download(name: str, target_root: Path, url_template: str = DOWNLOAD_URL, timeout: float = 30) -> Path:
    """Fetch and unpack an official archive; return the folder that holds its files."""
    if name not in DOWNLOADABLE:
        raise SourceError(f"Unknown MovieLens data set {name!r}; downloadable: {', '.join(DOWNLOADABLE)}")
    target = target_root / name
    if target.is_dir() and any(target.iterdir()):
        return target
    url = url_template.format(name=name)
    archive = target_root / f"{name}.zip.part"
    target_root.mkdir(parents=True, exist_ok=True)
    log.info("Downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, archive.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        archive.unlink(missing_ok=True)
        raise SourceError(
            f"Could not download MovieLens {name} from {url}: {exc}. This machine may have no "
            f"internet access: fetch the archive elsewhere, unpack it, and pass its folder as `path`."
        ) from exc
    staging = target_root / f".{name}.unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(staging)
    # Archives hold one top-level folder named like the data set.
    inner = staging / name if (staging / name).is_dir() else staging
    shutil.rmtree(target, ignore_errors=True)
    inner.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    archive.unlink(missing_ok=True)
    return target


# --- typing and row rules (pure DataFrame functions) -----------------------------------------


def _int32(column: str) -> Column:
    return F.expr(f"try_cast({column} AS INT)")


def _is_not_int32_id(column: str) -> Column:
    # try_cast to INT is NULL for text, decimals and anything beyond 2^31-1: ALS needs int32.
    return (
        F.col(column).isNull()
        | ~F.col(column).rlike(r"^[0-9]+$")
        | _int32(column).isNull()
        | (_int32(column) < 0)
    )


def interaction_rules(layout: Layout, expected_fields: int) -> list[RowRule]:
    rating = F.expr("try_cast(rating AS DOUBLE)")
    return [
        RowRule("_raw", ~F.col("_valid_utf8"), "text is not valid UTF-8"),
        unclosed_quote_rule(),  # never true for the unquoted layouts
        RowRule("_raw", F.col("_n_fields") != expected_fields, f"expected {expected_fields} fields"),
        RowRule("user_id", _is_not_int32_id("user_id"), "user_id is not an integer id within int32"),
        RowRule("item_id", _is_not_int32_id("item_id"), "item_id is not an integer id within int32"),
        RowRule("rating", rating.isNull() | F.isnan(rating), "rating is not a number"),
        RowRule(
            "rating",
            (rating < layout.rating_min) | (rating > layout.rating_max),
            f"rating outside {layout.rating_min:g}..{layout.rating_max:g}",
        ),
        RowRule(
            "timestamp",
            F.expr("try_cast(timestamp AS BIGINT)").isNull()
            | ~F.expr("try_cast(timestamp AS BIGINT)").between(0, MAX_UNIX_SECONDS),
            "timestamp is not a unix time in seconds before 2100",
        ),
    ]


def typed_interactions(df: DataFrame) -> DataFrame:
    """Canonical interactions from rows that passed the rules: a rating is an event whose
    weight is the rating. Ids are normalised ("007" -> "7") so that a file and its catalogue agree."""
    return df.select(
        F.col("user_id").cast("int").cast("string").alias("user_id"),
        F.col("item_id").cast("int").cast("string").alias("item_id"),
        F.lit("rating").alias("event_type"),
        F.col("rating").cast("double").alias("weight"),
        F.timestamp_seconds(F.col("timestamp").cast("bigint")).alias("ts"),
        "_file",
        "_line",
        "_raw",
    )


def item_rules(expected_fields: int) -> list[RowRule]:
    return [
        RowRule("_raw", ~F.col("_valid_utf8"), "text is not valid UTF-8"),
        unclosed_quote_rule(),
        RowRule("_raw", F.col("_n_fields") != expected_fields, f"expected {expected_fields} fields"),
        RowRule("item_id", _is_not_int32_id("item_id"), "item_id is not an integer id within int32"),
        RowRule("title", F.coalesce(F.length("title"), F.lit(0)) == 0, "title is empty"),
    ]


def typed_items(df: DataFrame, layout: Layout) -> DataFrame:
    if layout.name == "ml-100k":
        # 19 0/1 flags -> "Action|Comedy"; concat_ws skips the NULLs of unset flags.
        genres = F.concat_ws(
            "|", *[F.when(F.col(f"genre_{i}") == "1", F.lit(name)) for i, name in enumerate(GENRES_100K)]
        )
    else:
        genres = F.col("genres")
    return df.select(
        F.col("item_id").cast("int").cast("string").alias("item_id"),
        F.col("title"),
        F.when(genres == "(no genres listed)", F.lit("")).otherwise(genres).alias("genres"),
        "_file",
        "_line",
        "_raw",
    )


def user_rules(expected_fields: int) -> list[RowRule]:
    return [
        # u.user and users.dat are read as UTF-8 like the ratings: without this rule a bad byte
        # became U+FFFD and the row went to the clean table instead of quarantine.
        RowRule("_raw", ~F.col("_valid_utf8"), "text is not valid UTF-8"),
        RowRule("_raw", F.col("_n_fields") != expected_fields, f"expected {expected_fields} fields"),
        RowRule("user_id", _is_not_int32_id("user_id"), "user_id is not an integer id within int32"),
    ]


def typed_users(df: DataFrame, layout: Layout) -> DataFrame:
    occupation = F.col("occupation")
    if layout.name == "ml-1m":
        codes = F.create_map(
            *[x for i, name in enumerate(OCCUPATIONS_1M) for x in (F.lit(str(i)), F.lit(name))]
        )
        occupation = F.coalesce(codes[F.col("occupation")], F.col("occupation"))
    return df.select(
        F.col("user_id").cast("int").cast("string").alias("user_id"),
        F.expr("try_cast(age AS INT)").alias("age"),
        F.col("gender"),
        occupation.alias("occupation"),
        F.col("zip"),
        "_file",
        "_line",
        "_raw",
    )


# --- the source interface (see recflow.sources) ----------------------------------------------


def detect(location: str | Path) -> Detected:
    layout = detect_layout(location)
    return Detected(
        layout,
        {spec.table: [check_inside(Path(location) / spec.filename, Path(location))] for spec in layout.files},
    )


def cleaners(layout: Layout, settings) -> dict[str, TableCleaner]:
    """A user who rated an item twice keeps the latest rating: that is what the user thinks now."""
    n_fields = {spec.table: len(spec.columns) for spec in layout.files}
    cleaners = {
        "interactions": TableCleaner(
            interaction_rules(layout, n_fields["interactions"]),
            typed_interactions,
            key=["user_id", "item_id"],
            order=[F.col("ts").desc(), F.col("_line").desc()],
        ),
        "items": TableCleaner(
            item_rules(n_fields["items"]),
            lambda df: typed_items(df, layout),
            key=["item_id"],
            order=[F.col("_line")],
        ),
    }
    if "users" in n_fields:
        cleaners["users"] = TableCleaner(
            user_rules(n_fields["users"]),
            lambda df: typed_users(df, layout),
            key=["user_id"],
            order=[F.col("_line")],
        )
    return cleaners


def generate_sample(target: Path, settings) -> None:
    from recflow.generate.movielens import generate_movielens

    generate_movielens(
        target, n_users=settings.sample_users, n_items=settings.sample_items, seed=settings.seed
    )
