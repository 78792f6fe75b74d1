"""Params a careless or hostile user types into the trigger form (or a REST/CLI conf) are refused
twice, with a message naming the Param: by the form's JSON schema, before a run exists, and by
Settings in the run's first task, before any work (a conf sent over REST can carry NaN, which
JSON Schema cannot refuse)."""

from __future__ import annotations

import copy
import json

import pytest

from recflow.config import Settings

DAG_ID = "recommendations_daily"

# Each: the conf, the Param the messages must name. Refused by the form and by Settings.
REFUSED_EVERYWHERE = [
    ({"dataset": "x/../movielens"}, "dataset"),
    ({"dataset": ".."}, "dataset"),
    ({"dataset": "../../../escaped_lake"}, "dataset"),
    ({"dataset": "a/b"}, "dataset"),
    ({"dataset": "a\\b"}, "dataset"),
    ({"dataset": "ml\x00100k"}, "dataset"),
    ({"dataset": ""}, "dataset"),
    ({"dataset": "a" * 65}, "dataset"),
    ({"dataset": "movielens\n"}, "dataset"),
    ({"blend": float("inf")}, "blend"),
    ({"reg_param": float("-inf")}, "reg_param"),
    ({"event_weights": {"cart": 1e300}}, "event_weights"),
    ({"event_weights": {"klick": 1}}, "event_weights"),
    ({"search_space": {"rank": [100000]}}, "search_space"),
    ({"search_space": {"rnak": [32]}}, "search_space"),
    ({"search_space": {"rank": [0]}}, "search_space"),
    ({"search_space": {"max_iter": [10.5]}}, "search_space"),
    ({"search_space": {"alpha": []}}, "search_space"),
    ({"search_space": {"alpha": list(range(1, 22))}}, "search_space"),
    ({"search_space": {"alpha": [float("inf")]}}, "search_space"),
    ({"seed": 2**64}, "seed"),
    ({"path": "x" * 4097}, "path"),
]
# JSON Schema has no way to say "not NaN": the form lets these through, Settings does not.
REFUSED_BY_SETTINGS = [
    ({"blend": float("nan")}, "blend"),
    ({"alpha": float("nan")}, "alpha"),
    ({"event_weights": {"purchase": float("nan")}}, "event_weights"),
    ({"search_space": {"reg_param": [0.1, float("nan")]}}, "search_space"),
    # 20 values of 4 Params each: 160,000 grid points, more than the search can enumerate.
    ({"search_space": {k: list(range(1, 21)) for k in ("rank", "max_iter", "rating_rank", "rating_max_iter")}},
     "search_space"),
    ({"path": "data\x00/x"}, "path"),
]  # fmt: skip
ACCEPTED = [
    {"dataset": "ml-100k"},
    {"dataset": "Shop_2024-10"},
    {"dataset": "a" * 64},
    {"dataset": None},
    {"search_space": {"rank": [32, 64.0], "alpha": [1, 2.5]}},
    {"event_weights": {"cart": 4, "remove_from_cart": -2}},
]


def ids(cases) -> list[str]:
    return [repr(conf)[:60] for conf, _ in cases]


def form_check(dagbag, conf: dict) -> None:
    """What the trigger form and the REST API do with a conf: merge it into the DAG's Params and
    validate every one against its JSON schema (raises ParamValidationError)."""
    params = copy.deepcopy(dagbag.dags[DAG_ID].params)
    params.update(conf)
    params.validate()


@pytest.mark.parametrize(("conf", "param"), REFUSED_EVERYWHERE, ids=ids(REFUSED_EVERYWHERE))
def test_the_form_refuses_it_naming_the_param(dagbag, conf, param):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=f"param {param}:"):
        form_check(dagbag, conf)


@pytest.mark.parametrize(
    ("conf", "param"),
    REFUSED_EVERYWHERE + REFUSED_BY_SETTINGS,
    ids=ids(REFUSED_EVERYWHERE + REFUSED_BY_SETTINGS),
)
def test_settings_refuse_it_naming_the_param(conf, param):
    with pytest.raises(ValueError, match=f"'{param}'"):
        Settings.from_params(conf)
    # The same conf as the task receives it: JSON text (Python's json writes NaN and Infinity).
    with pytest.raises(ValueError, match=f"'{param}'"):
        Settings.from_params(json.dumps(conf))


@pytest.mark.parametrize("conf", ACCEPTED, ids=[repr(conf)[:60] for conf in ACCEPTED])
def test_good_values_pass_both(dagbag, conf):
    form_check(dagbag, conf)
    Settings.from_params(conf)


def test_a_settings_object_built_by_hand_is_checked_where_its_name_makes_a_path(tmp_path):
    """Settings(...) skips from_params; every path built from the name checks it again."""
    settings = Settings(dataset="x/../victim", data_dir=tmp_path, lake_uri=None)
    for build in (
        lambda: settings.lake_path("raw", "interactions", "2024-03-01"),
        lambda: settings.model_path("2024-03-01", "full_ranker"),
        lambda: settings.dataset_name,
    ):
        with pytest.raises(ValueError, match="'dataset'"):
            build()
    good = Settings(dataset="victim", data_dir=tmp_path, lake_uri=None)
    with pytest.raises(ValueError, match="logical date"):
        good.lake_path("raw", "interactions", "../../2024-03-01")
