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
import os
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


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


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

    PARAM_FIELDS = (
        "source", "path", "dataset", "top_k", "feedback", "rank", "reg_param", "alpha", "max_iter", "blend",
        "seed", "rating_rank", "rating_reg_param", "rating_max_iter",
        "test_fraction", "split", "test_last_n", "test_since", "tuning_trials", "search_space",
        "primary_metric", "champion_tolerance", "force_publish", "max_bad_row_fraction", "sample_users", "sample_items",
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
        # An emptied field in the trigger form arrives as "": it means "use the default".
        params = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        unknown = sorted(set(params) - set(cls.PARAM_FIELDS))
        if unknown:
            raise ValueError(f"Unknown run parameter(s) {unknown}; known: {list(cls.PARAM_FIELDS)}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        coerced = {k: _coerce(k, v, types[k]) for k, v in params.items()}
        settings = cls(**coerced)
        settings.check()
        return settings

    def check(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {self.source!r}")
        if self.feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {FEEDBACK}, got {self.feedback!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.primary_metric not in PRIMARY_METRICS:
            raise ValueError(f"primary_metric must be one of {PRIMARY_METRICS}, got {self.primary_metric!r}")
        if self.test_since is not None:
            try:
                datetime.date.fromisoformat(self.test_since)
            except ValueError:
                raise ValueError(f"test_since must be a date YYYY-MM-DD, got {self.test_since!r}") from None
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be between 0 and 1, got {self.test_fraction}")
        unknown_events = sorted(set(self.event_weights) - set(DEFAULT_EVENT_WEIGHTS))
        if unknown_events:
            raise ValueError(
                f"event_weights names unknown event type(s) {unknown_events}; known: {list(DEFAULT_EVENT_WEIGHTS)}"
            )
        try:
            ZoneInfo(self.source_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"source_time_zone {self.source_time_zone!r} is not an IANA time zone") from None
        for name in ("top_k", "rank", "rating_rank", "max_iter", "rating_max_iter", "sample_users", "sample_items",
                     "max_events_per_user_day", "watch_time_cap_s", "min_user_interactions",
                     "min_item_interactions", "test_last_n", "cold_max_interactions"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.heavy_min_interactions <= self.cold_max_interactions:
            raise ValueError(
                f"heavy_min_interactions ({self.heavy_min_interactions}) must exceed cold_max_interactions "
                f"({self.cold_max_interactions})"
            )
        if not 0 <= self.cold_user_fraction < 1:
            raise ValueError(f"cold_user_fraction must be in [0, 1), got {self.cold_user_fraction}")
        if self.hybrid_weight is not None and not 0 <= self.hybrid_weight <= 1:
            raise ValueError(f"hybrid_weight must be between 0 and 1, got {self.hybrid_weight}")
        if self.available_within_days is not None and self.available_within_days < 1:
            raise ValueError(f"available_within_days must be at least 1, got {self.available_within_days}")
        for name in (
            "max_per_category",
            "reg_param",
            "rating_reg_param",
            "alpha",
            "max_row_count_change",
            "max_event_mix_change",
            "champion_tolerance",
            "tuning_trials",
            "blend",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    # --- derived names -------------------------------------------------------------------

    @property
    def dataset_name(self) -> str:
        return self.dataset or self.source

    @property
    def lake(self) -> str:
        return self.lake_uri or str(self.data_dir / "lake")

    def lake_path(self, stage: str, table: str, ds: str) -> str:
        """`<lake>/<stage>/<dataset>/<table>/dt=<ds>`: every task overwrites only its date."""
        return f"{self.lake}/{stage}/{self.dataset_name}/{table}/dt={ds}"

    def model_path(self, ds: str, which: str) -> str:
        return f"{self.lake}/models/{self.dataset_name}/{self.model_version(ds)}/{which}"

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
                "min_item_interactions", "tuning_trials", "search_space", "cold_max_interactions",
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
        return f"als-{ds.replace('-', '')}-{digest}"

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
                return {str(k): list(v) for k, v in given.items()}
            # A partial override ({"cart": 4}) keeps the other defaults.
            return {**DEFAULT_EVENT_WEIGHTS, **{str(k): float(v) for k, v in given.items()}}
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"Run parameter {name!r} must be {annotation}, got {value!r}") from None
    return value
