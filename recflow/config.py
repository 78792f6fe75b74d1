"""One settings object for a run: environment (`RECFLOW_*`) first, then the run's Params.

Every task of a DAG run builds the same `Settings` from the same inputs (the environment of the
deployment and the JSON of the run's Params), so the tasks agree on paths and model settings
without passing anything but that JSON between them.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SOURCES = ("movielens", "ecommerce", "tv")
# Implicit feedback per e-commerce event type (see recflow.features for why these values).
DEFAULT_EVENT_WEIGHTS = {"view": 1.0, "cart": 3.0, "remove_from_cart": -3.0, "purchase": 5.0}
SPLITS = ("random", "stratified", "temporal")
PRIMARY_METRICS = ("ndcg", "precision", "recall", "map", "rmse")
FEEDBACK = ("implicit", "explicit")
# How much history a user has (recflow.tiers): new (none), cold, warm, heavy. A trained model is
# scored, and its hybrid weight tuned, for the last three.
USER_TIERS = ("new", "cold", "warm", "heavy")
SCORED_TIERS = ("cold", "warm", "heavy")
# The business rules the recommend step applies after scoring, in their order (recflow.hybrid).
BUSINESS_RULES = ("seen", "blocklist", "availability", "diversity")

# How the DAG's Spark tasks reach Spark (RECFLOW_SPARK_BACKEND, read where the DAG is parsed):
# connect: a client session on the warm Spark Connect server (recflow.spark_connect) through
# the spark_connect_default connection, no JVM start per task; submit: spark-submit through
# spark_default, for a standalone, YARN or Kubernetes cluster.
SPARK_BACKENDS = ("connect", "submit")


def spark_backend(environ=os.environ) -> str:
    backend = environ.get("RECFLOW_SPARK_BACKEND", SPARK_BACKENDS[0]).strip().lower()
    if backend not in SPARK_BACKENDS:
        raise ValueError(f"RECFLOW_SPARK_BACKEND={backend!r}: expected one of {', '.join(SPARK_BACKENDS)}")
    return backend


# A dataset name becomes a folder of the lake, of the reports and the BI extracts, and a key of
# every warehouse table (VARCHAR(64)): letters, digits, '-' and '_' only, so that no name can
# climb out of its folder ('..', '/', '\\'), smuggle a NUL or be empty. The DAG's trigger form
# applies the same pattern. It ends with "(?![\s\S])", not "$": Python's "$" (which the form's
# JSON-schema check uses) also matches before a final newline, so "movielens\n" would pass.
DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(?![\s\S])"
_DATASET_NAME = re.compile(DATASET_NAME_PATTERN)
# Longest `path` Param accepted (PATH_MAX on Linux).
MAX_PATH_CHARS = 4096


@dataclass(frozen=True)
class Bound:
    """The range a numeric run Param must lie in; None: unbounded on that side. The trigger
    form's JSON schema (dags/) and Settings.check both read it, and so do the values of
    `search_space`, which stand in for the same Params."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def schema(self) -> dict[str, float]:
        """The JSON-schema keywords of this range."""
        schema = {}
        if self.minimum is not None:
            schema["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            schema["exclusiveMaximum" if self.exclusive_maximum else "maximum"] = self.maximum
        return schema

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range (in words), or None when it is in."""
        if isinstance(value, float) and not math.isfinite(value):
            return "a finite number"
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.exclusive_minimum else value < low):
            return f"{'above' if self.exclusive_minimum else 'at least'} {low}"
        if high is not None and (value >= high if self.exclusive_maximum else value > high):
            return f"{'below' if self.exclusive_maximum else 'at most'} {high}"
        return None


# Every numeric run Param's range. A nullable Param (hybrid_weight, available_within_days) is
# checked when it is set. Every float Param has a maximum, generous but finite, so that the
# trigger form refuses Infinity too (JSON Schema cannot refuse NaN: Settings.check does).
BOUNDS = {
    "top_k": Bound(1, 500),
    "rank": Bound(1, 500),
    "reg_param": Bound(0, 100),
    "alpha": Bound(0, 1000),
    "max_iter": Bound(1, 100),
    "blend": Bound(0, 100),
    # Spark seeds are Java longs.
    "seed": Bound(-(2**63), 2**63 - 1),
    "rating_rank": Bound(1, 500),
    "rating_reg_param": Bound(0, 100),
    "rating_max_iter": Bound(1, 100),
    "test_fraction": Bound(0, 1, exclusive_minimum=True, exclusive_maximum=True),
    "test_last_n": Bound(1),
    "tuning_trials": Bound(0, 200),
    "tuning_sample_users": Bound(0),
    "champion_tolerance": Bound(0, 10),
    "cold_max_interactions": Bound(1),
    "heavy_min_interactions": Bound(2),
    "cold_user_fraction": Bound(0, 1, exclusive_maximum=True),
    "hybrid_weight": Bound(0, 1),
    "max_per_category": Bound(0),
    "available_within_days": Bound(1),
    "max_bad_row_fraction": Bound(0, 1),
    "max_events_per_user_day": Bound(1),
    "max_row_count_change": Bound(0, 100),
    "max_event_mix_change": Bound(0, 1),
    "watch_time_cap_s": Bound(1, 3600),
    "min_user_interactions": Bound(1),
    "min_item_interactions": Bound(1),
    "sample_users": Bound(1),
    "sample_items": Bound(1),
}
# The Params `search_space` may give candidate values for (recflow.tuning.DEFAULT_SPACE), at most
# SEARCH_MAX_VALUES each and SEARCH_MAX_POINTS grid points in all: the search enumerates the
# grid before drawing its trials, so a grid of 50 values for each of 8 Params (4e13 points)
# would never get to train anything.
SEARCH_PARAMS = (
    "rank", "reg_param", "alpha", "max_iter", "blend", "rating_rank", "rating_reg_param", "rating_max_iter",
)  # fmt: skip
SEARCH_MAX_VALUES = 20
SEARCH_MAX_POINTS = 100_000
# Weights of e-commerce event types: any finite number in this range (negative: a removal).
EVENT_WEIGHT_BOUND = Bound(-1000, 1000)


def bounds_schema(name: str) -> dict[str, float]:
    """The JSON-schema range keywords of the numeric Param ``name``, for the trigger form."""
    return BOUNDS[name].schema()


def search_space_schema() -> dict[str, Any]:
    """The trigger form's JSON schema of `search_space`: the searchable Params only (a typo such
    as "rnak" is refused, not ignored), each a short list of values the Param itself accepts."""
    integer = {f.name for f in dataclasses.fields(Settings) if f.type == "int"}
    return {
        "additionalProperties": False,
        "properties": {
            name: {
                "type": "array",
                "minItems": 1,
                "maxItems": SEARCH_MAX_VALUES,
                "items": {"type": "integer" if name in integer else "number", **bounds_schema(name)},
            }
            for name in SEARCH_PARAMS
        },
    }


def event_weights_schema() -> dict[str, Any]:
    """The trigger form's JSON schema of `event_weights`: known event types, bounded weights."""
    return {
        "additionalProperties": False,
        "properties": {
            event: {"type": "number", **EVENT_WEIGHT_BOUND.schema()} for event in DEFAULT_EVENT_WEIGHTS
        },
    }


def check_date(ds: object) -> str:
    """``ds`` if it is a logical date YYYY-MM-DD, else ValueError (it is part of every path)."""
    try:
        if isinstance(ds, str) and len(ds) == 10 and datetime.date.fromisoformat(ds):
            return ds
    except ValueError:
        pass
    raise ValueError(f"the logical date must be YYYY-MM-DD, got {ds!r}")


def check_dataset_name(name: object, what: str = "dataset") -> str:
    """``name`` if it is a safe dataset name (DATASET_NAME_PATTERN), else ValueError naming ``what``."""
    if not isinstance(name, str) or not _DATASET_NAME.match(name):
        raise ValueError(
            f"Run parameter {what!r} must be 1 to 64 letters, digits, '-' or '_', starting with a letter or "
            f"digit (it names folders of the lake and rows of the warehouse), got {name!r}"
        )
    return name


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


# How long a BI session that locks what it reads may hold a publish up (recflow.warehouse.
# blocking_readers): an ordinary query never locks, so only a misuse waits this long.
DEFAULT_BLOCKING_READER_GRACE_S = 3.0


def _grace(value: str | None) -> float | None:
    if value is None:
        return DEFAULT_BLOCKING_READER_GRACE_S
    if value.strip().lower() == "off":
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < math.inf:
        raise ValueError(f"RECFLOW_BLOCKING_READER_GRACE_S must be seconds (>= 0) or 'off', got {value!r}")
    return seconds


@dataclass(frozen=True)
class Settings:
    """Run settings. Field names are the Param names of `recommendations_daily`."""

    # What to read.
    source: str = "movielens"
    # A folder (or, for ecommerce and tv, one file) in one of the source's layouts, a MovieLens
    # set name to download (ml-100k, ml-1m, ml-latest-small), or None for the generated sample.
    path: str | None = None
    # Name under which results are published; defaults to the source name. Two data sets of
    # one source (ml-100k and ml-1m, say) need two names, since their ids collide.
    dataset: str | None = None

    # The recommender (recflow.models.als): implicit ALS, ratings or event weights read as
    # confidence, its scores blended with popularity. Defaults are the best of the search on
    # MovieLens 100K (benchmarks/quality.py): NDCG@10 0.47 where ALS fitted to rating values
    # scores 0.03. feedback="explicit" ranks by predicted rating instead.
    top_k: int = 10
    feedback: str = "implicit"
    rank: int = 64
    reg_param: float = 0.3
    alpha: float = 2.0
    max_iter: int = 15
    blend: float = 0.6
    seed: int = 42
    # The rating model (rating sources): explicit ALS blended with the bias-only baseline
    # (recflow.models.rating), for predicted stars (RMSE, MAE).
    rating_rank: int = 20
    rating_reg_param: float = 0.1
    rating_max_iter: int = 15
    # Evaluation split (recflow.split): random pairs, a fraction of each user's rows
    # (stratified), or temporal: each user's last `test_last_n` rows, or every row from
    # `test_since` (a date, UTC) on when it is set.
    test_fraction: float = 0.2
    split: str = "random"
    test_last_n: int = 1
    test_since: str | None = None

    # Hyperparameter search (recflow.tuning): this many seeded trials drawn from the grid
    # `search_space` (Param name -> candidate values; empty: the built-in grid), scored on a
    # validation split carved out of train; 0 trains the settings above as they are.
    tuning_trials: int = 6
    search_space: dict = field(default_factory=dict)
    # The searches (ALS trials, the content weight per tier) fit and score a seeded sample of
    # about this many users (0: every user); the chosen settings are then fitted once on all.
    # Without it a search costs trials x the whole data: at 20M ratings, hours. MovieLens 100K
    # and 1M have fewer users, so their searches are unchanged. On 5M generated ratings
    # (benchmarks/search_sample.py) samples of 5,000 and 20,000 users chose the same settings.
    tuning_sample_users: int = 20_000

    # Champion/challenger: a new model replaces the published one only if its primary metric
    # (at top_k; rmse for explicit rating models) is no worse than the champion's, both scored
    # on this run's test split, by more than `champion_tolerance` (absolute).
    primary_metric: str = "ndcg"
    champion_tolerance: float = 0.01
    force_publish: bool = False

    # Beyond plain ALS (recflow.hybrid, recflow.tiers): users with at most cold_max_interactions
    # items are cold (the content model carries them), from heavy_min_interactions on heavy, in
    # between warm. Each tier's content weight in the ALS + content hybrid is tuned on
    # validation unless hybrid_weight fixes it (0: ALS alone, 1: content alone). Evaluation cuts
    # a seeded cold_user_fraction of the users down to cold_max_interactions training items,
    # so the cold tier is measured even where every real user has a long history.
    cold_max_interactions: int = 5
    heavy_min_interactions: int = 100
    cold_user_fraction: float = 0.1
    hybrid_weight: float | None = None
    # Business rules after scoring (seen items are always excluded; the warehouse's
    # recommendation_blocklist always applies): at most max_per_category items of one category
    # per list (0: no cap), and only items with an interaction in the data's last
    # available_within_days days (None: every item is available).
    max_per_category: int = 0
    available_within_days: int | None = None

    # Data quality: above this share of bad rows a file is rejected outright (likely the wrong
    # layout); below it, bad rows go to quarantine and the run goes on.
    max_bad_row_fraction: float = 0.01
    # Zone of timestamps written without one (TV program dates, e-commerce times lacking "UTC").
    source_time_zone: str = "UTC"
    # A user with more events than this in one day is a bot: their rows of that day are
    # quarantined (event sources only; MovieLens raters often rate hundreds in a day).
    max_events_per_user_day: int = 1000
    # Run-over-run checks (warnings): clean row count and event mix against the previous run.
    max_row_count_change: float = 0.5  # relative: 0.5 = between half and one and a half times
    max_event_mix_change: float = 0.1  # absolute change of any event type's share

    # Implicit feedback (recflow.features): weights per event type, watch time cap, scaling.
    event_weights: dict = field(default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS))
    watch_time_cap_s: int = 3600
    min_user_interactions: int = 1
    min_item_interactions: int = 1

    # Sample generator size, used when path is None.
    sample_users: int = 600
    sample_items: int = 400

    # Deployment, from the environment only (never from Params: a UI user must not redirect
    # the lake or the warehouse).
    data_dir: Path = field(default_factory=lambda: Path(_env("RECFLOW_DATA_DIR", str(PROJECT_ROOT / "data"))))
    lake_uri: str | None = field(default_factory=lambda: _env("RECFLOW_LAKE_URI"))
    warehouse_url: str | None = field(default_factory=lambda: _env("RECFLOW_WAREHOUSE_URL"))
    # The folders a run's `path` may point into (os.pathsep-separated); unset: <data_dir>/inputs.
    # A Param typed into the trigger form must not read any file the worker can read (a
    # .pgpass, another team's data): the operator decides where input lands.
    input_roots: str | None = field(default_factory=lambda: _env("RECFLOW_INPUT_ROOTS"))
    # Seconds a BI session that locks what it reads may hold a publish up before it is ended
    # (recflow.warehouse.blocking_readers); "off": never end one, the publish waits.
    blocking_reader_grace_s: float | None = field(
        default_factory=lambda: _grace(_env("RECFLOW_BLOCKING_READER_GRACE_S"))
    )

    PARAM_FIELDS = (
        "source", "path", "dataset", "top_k", "feedback", "rank", "reg_param", "alpha", "max_iter", "blend",
        "seed", "rating_rank", "rating_reg_param", "rating_max_iter",
        "test_fraction", "split", "test_last_n", "test_since", "tuning_trials", "search_space",
        "tuning_sample_users", "primary_metric", "champion_tolerance", "force_publish", "max_bad_row_fraction",
        "sample_users", "sample_items",
        "source_time_zone", "max_events_per_user_day", "max_row_count_change", "max_event_mix_change",
        "event_weights", "watch_time_cap_s", "min_user_interactions", "min_item_interactions",
        "cold_max_interactions", "heavy_min_interactions", "cold_user_fraction", "hybrid_weight",
        "max_per_category", "available_within_days",
    )  # fmt: skip

    @classmethod
    def from_params(cls, params: dict[str, Any] | str | None = None) -> Settings:
        """Build from a Params dict (or its JSON). Unknown keys are an error: a typo in a
        trigger form must not silently fall back to a default."""
        if isinstance(params, str):
            params = json.loads(params) if params.strip() else {}
        # None means "not given" (Airflow 3's form sends null for an emptied field), and so does ""
        # from a hand-written conf, except for the dataset: an empty name is not a name.
        params = {k: v for k, v in (params or {}).items() if v is not None and (v != "" or k == "dataset")}
        unknown = sorted(set(params) - set(cls.PARAM_FIELDS))
        if unknown:
            raise ValueError(f"Unknown run parameter(s) {unknown}; known: {list(cls.PARAM_FIELDS)}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        coerced = {k: _coerce(k, v, types[k]) for k, v in params.items()}
        settings = cls(**coerced)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ValueError, naming the Param, for any value a run cannot use."""
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {FEEDBACK}, got {self.feedback!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.primary_metric not in PRIMARY_METRICS:
            raise ValueError(f"primary_metric must be one of {PRIMARY_METRICS}, got {self.primary_metric!r}")
        if self.dataset is not None:
            check_dataset_name(self.dataset)
        if self.path is not None and (not 0 < len(self.path) <= MAX_PATH_CHARS or "\x00" in self.path):
            raise ValueError(
                f"Run parameter 'path' must be 1 to {MAX_PATH_CHARS} characters without NUL, got {self.path[:100]!r}"
            )
        if self.test_since is not None:
            try:
                datetime.date.fromisoformat(self.test_since)
            except ValueError:
                raise ValueError(f"test_since must be a date YYYY-MM-DD, got {self.test_since!r}") from None
        for name, bound in BOUNDS.items():
            value = getattr(self, name)
            problem = None if value is None else bound.problem(value)
            if problem:
                raise ValueError(f"Run parameter {name!r} must be {problem}, got {value!r}")
        unknown_events = sorted(set(self.event_weights) - set(DEFAULT_EVENT_WEIGHTS))
        if unknown_events:
            raise ValueError(
                f"Run parameter 'event_weights' names unknown event type(s) {unknown_events}; known: {list(DEFAULT_EVENT_WEIGHTS)}"
            )
        for event, weight in self.event_weights.items():
            problem = EVENT_WEIGHT_BOUND.problem(weight)
            if problem:
                raise ValueError(
                    f"Run parameter 'event_weights' of {event!r} must be {problem}, got {weight!r}"
                )
        self._check_search_space()
        try:
            ZoneInfo(self.source_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"source_time_zone {self.source_time_zone!r} is not an IANA time zone") from None
        if self.heavy_min_interactions <= self.cold_max_interactions:
            raise ValueError(
                f"heavy_min_interactions ({self.heavy_min_interactions}) must exceed cold_max_interactions "
                f"({self.cold_max_interactions})"
            )

    def _check_search_space(self) -> None:
        """search_space names searchable Params only, each with a short list of values that the
        Param itself would accept (same type, same bounds), and a grid the search can enumerate."""
        unknown = sorted(set(self.search_space) - set(SEARCH_PARAMS))
        if unknown:
            raise ValueError(
                f"Run parameter 'search_space' names unknown Param(s) {unknown}; searchable: {list(SEARCH_PARAMS)}"
            )
        types = {f.name: f.type for f in dataclasses.fields(self)}
        points = 1
        for name, values in self.search_space.items():
            where = f"Run parameter 'search_space' of {name!r}"
            if not isinstance(values, list) or not 0 < len(values) <= SEARCH_MAX_VALUES:
                raise ValueError(f"{where} must be a list of 1 to {SEARCH_MAX_VALUES} values, got {values!r}")
            for value in values:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{where} must hold numbers, got {value!r}")
                if types[name] == "int" and not float(value).is_integer():
                    raise ValueError(f"{where} must hold whole numbers, got {value!r}")
                problem = BOUNDS[name].problem(value)
                if problem:
                    raise ValueError(f"{where}: each value must be {problem}, got {value!r}")
            points *= len(values)
        if points > SEARCH_MAX_POINTS:
            raise ValueError(
                f"Run parameter 'search_space' spans {points} grid points; at most {SEARCH_MAX_POINTS} "
                "(tuning_trials draws from them)"
            )

    # --- derived names -------------------------------------------------------------------

    @property
    def dataset_name(self) -> str:
        """The name results are published under, checked wherever it is used: it is part of
        every path of the run (a Settings built without from_params is never checked otherwise)."""
        return check_dataset_name(self.dataset or self.source)

    @property
    def lake(self) -> str:
        return self.lake_uri or str(self.data_dir / "lake")

    def lake_path(self, stage: str, table: str, ds: str) -> str:
        """`<lake>/<stage>/<dataset>/<table>/dt=<ds>`: every task overwrites only its date.

        Every part is checked again here, whatever the caller checked: Spark overwrites what a
        path names, so a name that climbs out of its folder could replace another dataset's data."""
        for part in (stage, self.dataset_name, *([] if table == "*" else [table])):  # "*": every table
            check_dataset_name(part, "lake folder")
        return f"{self.lake}/{stage}/{self.dataset_name}/{table}/dt={check_date(ds)}"

    def model_dir(self, ds: str) -> str:
        """`<lake>/models/<dataset>/<model version>`: the run's fitted models."""
        return f"{self.lake}/models/{check_dataset_name(self.dataset_name)}/{self.model_version(ds)}"

    def model_path(self, ds: str, which: str) -> str:
        return f"{self.model_dir(ds)}/{check_dataset_name(which, 'model folder')}"

    @property
    def input_folders(self) -> tuple[Path, ...]:
        """The folders `path` may point into, resolved (symbolic links followed)."""
        if self.input_roots is None:
            return (Path(os.path.realpath(self.data_dir / "inputs")),)
        return tuple(
            Path(os.path.realpath(Path(root).expanduser()))
            for root in self.input_roots.split(os.pathsep)
            if root
        )

    def input_path(self, path: str) -> Path:
        """``path`` (absolute, or relative to the first input folder), resolved, when it lies in
        one of the input folders; else ValueError. Checked before the path is ever opened, so a
        path outside says nothing about what is there."""
        roots = self.input_folders
        candidate = Path(path).expanduser()
        if not candidate.is_absolute() and roots:
            candidate = roots[0] / candidate
        resolved = Path(os.path.realpath(candidate))
        if not any(resolved.is_relative_to(root) for root in roots):
            raise ValueError(
                f"Run parameter 'path' {path!r} is outside the folders runs may read "
                f"({os.pathsep.join(map(str, roots))}): put the data under one of them, or have the "
                "operator add its folder to RECFLOW_INPUT_ROOTS"
            )
        return resolved

    @property
    def checkpoint_dir(self) -> str:
        return f"{self.lake}/_checkpoints"

    @property
    def sample_dir(self) -> Path:
        return (
            self.data_dir
            / "samples"
            / f"{self.source}-{self.sample_users}u-{self.sample_items}i-s{self.seed}"
        )

    @property
    def data_docs_dir(self) -> Path:
        """Great Expectations' file context and Data Docs site: a local folder, for people."""
        return self.data_dir / "data_docs"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "warehouse.db"

    def model_params(self) -> dict[str, Any]:
        keys = ("feedback", "rank", "reg_param", "alpha", "max_iter", "blend", "seed", "rating_rank",
                "rating_reg_param", "rating_max_iter",
                "test_fraction", "split", "test_last_n", "test_since", "min_user_interactions",
                "min_item_interactions", "tuning_trials", "search_space", "tuning_sample_users",
                "cold_max_interactions",
                "heavy_min_interactions", "cold_user_fraction", "hybrid_weight", "max_per_category",
                "available_within_days")  # fmt: skip
        return {k: getattr(self, k) for k in keys}

    def model_version(self, ds: str) -> str:
        """Same date + same data + same settings -> same version, so a re-run publishes
        identical rows, and any change of input or setting gets a version of its own."""
        identity = self.model_params() | {
            k: getattr(self, k)
            for k in ("source", "path", "dataset", "top_k", "sample_users", "sample_items", "source_time_zone",
                      "max_events_per_user_day", "event_weights", "watch_time_cap_s")
        }  # fmt: skip
        digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
        return f"als-{check_date(ds).replace('-', '')}-{digest}"

    def params_json(self) -> str:
        return json.dumps({k: getattr(self, k) for k in self.PARAM_FIELDS}, sort_keys=True)


def _coerce(name: str, value: Any, annotation: str) -> Any:
    # Values typed into the UI's trigger form or a --conf JSON arrive as str/int/float.
    if annotation.endswith(" | None"):  # None never gets here: from_params drops it
        annotation = annotation.removesuffix(" | None")
    try:
        if annotation == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if annotation == "float":
            return float(value)
        if annotation == "bool":
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
                return value.strip().lower() in ("true", "1")
            if isinstance(value, bool | int) and value in (0, 1):
                return bool(value)
            raise ValueError
        if annotation == "dict":
            given = json.loads(value) if isinstance(value, str) else dict(value)
            if name == "search_space":
                # check() says what is wrong with a value that is not a list of numbers
                return {str(k): list(v) if isinstance(v, list | tuple) else v for k, v in given.items()}
            # A partial override ({"cart": 4}) keeps the other defaults.
            return {**DEFAULT_EVENT_WEIGHTS, **{str(k): float(v) for k, v in given.items()}}
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"Run parameter {name!r} must be {annotation}, got {value!r}") from None
    return value
