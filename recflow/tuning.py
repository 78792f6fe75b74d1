"""Seeded hyperparameter search for the ranker and the rating model.

Trials are drawn without replacement from the grid of `search_space` (Param name -> candidate
values; the built-in grids below where a name is missing), always starting with the run's own
settings, so the search never picks something worse on validation than not searching. Each
trial is fitted on train minus a validation split carved out of train the same way the test
split was carved out of everything; the test split is never looked at. The ranker is chosen by
NDCG@K on validation, the rating model by RMSE. The ranker's `blend` is not a separate trial:
every fitted ALS is scored at every blend value, which costs a top-K ranking, not a fit.

The ranker is not simply the trial with the highest NDCG: it is the cheapest to fit of the
trials within one standard error of that (`choose_trial`). The chosen settings are fitted twice
more on everything, so their cost is paid again on every run; a rank-128, 20-iteration model
costs 32 times a rank-32, 10-iteration one in `fit_cost`, and the search's best often wins by
less than the noise of its validation users.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recflow.config import Settings
from recflow.metrics import ranking_metrics_per, rating_metrics, scorable
from recflow.models.als import (
    BLEND_MARGIN,
    RANKER_KEYS,
    RATING_KEYS,
    blended_top_ks,
    fit_ranker,
    ranker_candidates,
)
from recflow.models.baselines import popularity
from recflow.models.rating import fit_rating_model
from recflow.recommend import candidate_groups
from recflow.split import random_split, stratified_split, temporal_split

# Measured on MovieLens 100K (benchmarks/quality.py): implicit ALS wants a large rank, little
# regularisation and a small alpha once ratings are the confidence; the blend peaks at 0.3-0.45.
DEFAULT_SPACE = {
    "rank": [32, 64, 128],
    "reg_param": [0.1, 0.3, 1.0],
    "alpha": [1.0, 2.0, 5.0, 10.0],
    "max_iter": [10, 15, 20],
    "blend": [0.0, 0.2, 0.4, 0.6, 0.8],
    "rating_rank": [10, 20, 50],
    "rating_reg_param": [0.05, 0.08, 0.1, 0.15],
    "rating_max_iter": [15, 20],
}


VALIDATION_FRACTION = 0.1


def ranker_params(settings: Settings) -> dict:
    return {key: getattr(settings, key) for key in RANKER_KEYS}


def rating_params(settings: Settings) -> dict:
    return {key: getattr(settings, key) for key in RATING_KEYS}


def space(settings: Settings, keys: tuple[str, ...]) -> dict[str, list]:
    return {key: list(settings.search_space.get(key, DEFAULT_SPACE[key])) for key in keys}


def draw_trials(base: dict, grid: dict[str, list], n: int, seed: int) -> list[dict]:
    """`base` first, then up to n - 1 other grid points in a seeded random order."""
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    others = [p for p in points if p != base]
    random.Random(seed).shuffle(others)
    return [base, *others][: max(n, 1)]


def search_sample(train: DataFrame, settings: Settings) -> DataFrame:
    """train's rows of a seeded sample of about `tuning_sample_users` users (every row when there
    are no more users than that, or the Param is 0): what the searches fit and score.

    A user is in when a hash of (user_idx, seed) falls below the sample's share, so the same
    users are drawn by every search of the run and by every re-run, with no sort or collect."""
    wanted = settings.tuning_sample_users
    if wanted == 0:
        return train
    users = train.select("user_idx").distinct().count()
    if users <= wanted:
        return train
    bucket = F.xxhash64("user_idx", F.lit(settings.seed)).bitwiseAND(F.lit(2**31 - 1)) / F.lit(2.0**31)
    return train.where(bucket < F.lit(wanted / users))


def validation_split(train: DataFrame, settings: Settings) -> tuple[DataFrame, DataFrame]:
    """Train -> (fit, validation), the way the test split was made (a later seed, so not the
    same rows); a date cut becomes each user's last test_last_n rows before it.

    The validation share is small (VALIDATION_FRACTION of train), not test_fraction: the fit
    set must stay close to train's size, or the search picks the regularisation that suits
    less data. Measured on MovieLens 100K (75/25 stratified): carving 25 % out of train chose
    regParam 1.0, which scored NDCG@10 0.444 on test; carving 10 % chose 0.3, which scored 0.478."""
    if settings.split == "stratified":
        return stratified_split(train, VALIDATION_FRACTION, settings.seed + 1)
    if settings.split == "temporal":
        return temporal_split(train, last_n=settings.test_last_n)
    return random_split(train, VALIDATION_FRACTION, settings.seed + 1)


def tune_ranker(train: DataFrame, settings: Settings, implicit: bool = True) -> tuple[dict, dict]:
    """-> (chosen ranker params, search record). With tuning_trials 0, the settings as given.
    `train` is what the search may see: the train split, or its `search_sample`."""
    base = ranker_params(settings)
    if settings.tuning_trials == 0:
        return base, {"trials": [], "seconds": 0.0, "metric": None}
    k = settings.top_k
    metric, error = f"ndcg@{k}", f"ndcg_se@{k}"
    fit_rows, valid = validation_split(train, settings)
    fit_rows = fit_rows.cache()
    users, valid = (frame.cache() for frame in scorable(fit_rows, valid))
    pop = popularity(fit_rows).cache()
    groups = candidate_groups(users, fit_rows, k, BLEND_MARGIN)
    grid = space(settings, RANKER_KEYS)
    fit_grid = {key: values for key, values in grid.items() if key != "blend"}
    blends = sorted(set(grid["blend"]) | {settings.blend})
    fit_base = {key: base[key] for key in fit_grid}

    def run(params: dict) -> list[dict]:
        model = fit_ranker(fit_rows, params, settings.seed, implicit)
        candidates = ranker_candidates(model, groups)
        lists = blended_top_ks(candidates, pop, fit_rows, blends, k)
        by_blend = ranking_metrics_per(lists, valid, k, "blend", blends)
        return [
            params | {"blend": blend, metric: by_blend[blend][metric], error: by_blend[blend][error]}
            for blend in blends
        ]

    trials, seconds = _search(draw_trials(fit_base, fit_grid, settings.tuning_trials, settings.seed), run)
    best = max(trials, key=lambda t: t[metric])  # max keeps the first of equals: base wins ties
    picked = choose_trial(trials, metric, error)
    for frame in (fit_rows, users, valid, pop, groups):
        frame.unpersist()
    chosen = {key: picked[key] for key in RANKER_KEYS}
    record = {"metric": metric, "trials": trials, "seconds": seconds, "best": best[metric]}
    return chosen, record | {
        "chosen": picked[metric],
        "best_settings": {key: best[key] for key in RANKER_KEYS},
    }


def fit_cost(trial: dict) -> int:
    """What fitting a trial's settings costs, in relative units: iterations x rank^2. Each ALS
    iteration adds a rank x rank outer product per rated pair and solves a rank x rank system per
    user and item; on rating data (hundreds of ratings per user) the first term dominates."""
    return int(trial["max_iter"]) * int(trial["rank"]) ** 2


def choose_trial(trials: list[dict], metric: str, error: str) -> dict:
    """The cheapest trial (`fit_cost`) whose `metric` is within one standard error (`error`, of
    the best trial's mean) of the best; of equally cheap ones the best, then the first.

    The one-standard-error rule (Breiman et al.; Hastie, Tibshirani, Friedman 7.10), with the
    fit's cost as the simplicity it buys: a difference smaller than the noise of the validation
    users' mean is as likely to reverse on test as not, while the cost of the larger model is
    paid on every fit that follows. Measured on 5M generated ratings (benchmarks/search_sample.py):
    the best on validation was rank 64 x 20 iterations (NDCG@10 0.18848), the rule took the same
    settings at 15 iterations (0.18840); fitted on train, 90.3 s against 67.9 s, and on test
    NDCG@10 0.44121 against 0.44109."""
    best = max(trials, key=lambda t: t[metric])
    floor = best[metric] - best[error]
    near = [t for t in trials if t[metric] >= floor]
    cheapest = min(fit_cost(t) for t in near)
    return max((t for t in near if fit_cost(t) == cheapest), key=lambda t: t[metric])


def tune_rating(
    train: DataFrame, settings: Settings, rating_min: float, rating_max: float
) -> tuple[dict, dict]:
    """-> (chosen rating-model params, search record), chosen by validation RMSE."""
    base = rating_params(settings)
    if settings.tuning_trials == 0:
        return base, {"trials": [], "seconds": 0.0, "metric": None}
    fit_rows, valid = (frame.cache() for frame in validation_split(train, settings))

    def run(params: dict) -> list[dict]:
        model = fit_rating_model(fit_rows, params, settings.seed, rating_min, rating_max)
        return [params | {"rmse": rating_metrics(model.predict(valid))["rmse"]}]

    grid = space(settings, RATING_KEYS)
    trials, seconds = _search(draw_trials(base, grid, settings.tuning_trials, settings.seed), run)
    best = min(trials, key=lambda t: t["rmse"])
    fit_rows.unpersist()
    valid.unpersist()
    chosen = {key: best[key] for key in RATING_KEYS}
    return chosen, {"metric": "rmse", "trials": trials, "seconds": seconds, "best": best["rmse"]}


def _search(candidates: list[dict], run: Callable[[dict], list[dict]]) -> tuple[list[dict], float]:
    started = time.monotonic()
    trials = []
    for params in candidates:
        trial_started = time.monotonic()
        for scored in run(params):
            # A NaN would compare false with everything and silently pick the first trial.
            bad = [
                key for key, value in scored.items() if isinstance(value, float) and not math.isfinite(value)
            ]
            if bad:
                raise ValueError(f"Search trial {params} scored {bad} as not finite: {scored}")
            trials.append(scored | {"seconds": round(time.monotonic() - trial_started, 2)})
    return trials, round(time.monotonic() - started, 2)
