"""Settings.from_params: what a UI user types becomes typed, checked settings, and the derived
names (model version, lake paths) follow from them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from recflow.config import Settings


def test_strings_from_the_trigger_form_are_coerced():
    settings = Settings.from_params(
        {"top_k": "10", "rank": "20", "reg_param": "0.5", "alpha": "40", "test_fraction": "0.25", "seed": "7"}
    )
    assert settings.top_k == 10 and isinstance(settings.top_k, int)
    assert settings.rank == 20 and isinstance(settings.rank, int)
    assert settings.reg_param == 0.5
    assert settings.alpha == 40.0 and isinstance(settings.alpha, float)
    assert settings.test_fraction == 0.25
    assert settings.seed == 7


def test_json_text_and_none_values_are_accepted():
    settings = Settings.from_params(json.dumps({"max_iter": 3, "dataset": None, "path": None}))
    assert settings.max_iter == 3
    # None means "not given": the defaults stay.
    assert settings.dataset is None and settings.path is None
    assert Settings.from_params("") == Settings.from_params(None) == Settings.from_params({})


def test_whole_floats_become_ints_but_fractions_do_not():
    assert Settings.from_params({"rank": 12.0}).rank == 12
    with pytest.raises(ValueError, match=r"'rank' must be int, got 12\.5"):
        Settings.from_params({"rank": 12.5})
    with pytest.raises(ValueError, match=r"'top_k' must be int, got 'ten'"):
        Settings.from_params({"top_k": "ten"})
    with pytest.raises(ValueError, match=r"'alpha' must be float"):
        Settings.from_params({"alpha": "a lot"})


def test_unknown_keys_are_rejected_by_name():
    with pytest.raises(ValueError) as excinfo:
        Settings.from_params({"top_k": 5, "topk": 5, "ranc": 3})
    message = str(excinfo.value)
    assert "['ranc', 'topk']" in message
    assert "top_k" in message  # the known names are listed, to spot the typo


def test_deployment_fields_cannot_be_set_from_params():
    # A UI user must not redirect the lake or the warehouse.
    for key in ("data_dir", "lake_uri", "warehouse_url"):
        with pytest.raises(ValueError, match=key):
            Settings.from_params({key: "/elsewhere"})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"test_fraction": 1.5}, "Run parameter 'test_fraction' must be below 1, got 1.5"),
        ({"test_fraction": "0"}, "Run parameter 'test_fraction' must be above 0, got 0.0"),
        ({"feedback": "x"}, "feedback must be one of ('implicit', 'explicit'), got 'x'"),
        ({"source": "y"}, "source must be one of ('movielens', 'ecommerce', 'tv'), got 'y'"),
        ({"split": "by_time"}, "split must be one of ('random', 'stratified', 'temporal'), got 'by_time'"),
        ({"top_k": 0}, "Run parameter 'top_k' must be at least 1, got 0"),
        ({"reg_param": "-0.1"}, "Run parameter 'reg_param' must be at least 0, got -0.1"),
        (
            {"event_weights": {"click": 1}},
            "Run parameter 'event_weights' names unknown event type(s) ['click']; known: "
            "['view', 'cart', 'remove_from_cart', 'purchase']",
        ),
        ({"event_weights": "[1, 2]"}, "Run parameter 'event_weights' must be dict, got '[1, 2]'"),
        ({"source_time_zone": "Mars/Olympus"}, "source_time_zone 'Mars/Olympus' is not an IANA time zone"),
        ({"max_events_per_user_day": 0}, "Run parameter 'max_events_per_user_day' must be at least 1, got 0"),
        ({"test_since": "yesterday"}, "test_since must be a date YYYY-MM-DD, got 'yesterday'"),
        ({"test_last_n": 0}, "Run parameter 'test_last_n' must be at least 1, got 0"),
        ({"tuning_trials": -1}, "Run parameter 'tuning_trials' must be at least 0, got -1"),
        ({"force_publish": "maybe"}, "Run parameter 'force_publish' must be bool, got 'maybe'"),
        (
            {"search_space": {"rank": 64}},
            "Run parameter 'search_space' of 'rank' must be a list of 1 to 20 values, got 64",
        ),
        (
            {"primary_metric": "auc"},
            "primary_metric must be one of ('ndcg', 'precision', 'recall', 'map', 'rmse'), got 'auc'",
        ),
    ],
)
def test_invalid_values_are_rejected(params, message):
    with pytest.raises(ValueError) as excinfo:
        Settings.from_params(params)
    assert str(excinfo.value) == message


def test_model_version_is_stable_for_the_same_settings_and_date():
    a = Settings.from_params({"rank": 20, "alpha": 5})
    b = Settings.from_params({"alpha": "5", "rank": "20"})  # same values, other order and types
    version = a.model_version("2024-03-01")
    assert version == b.model_version("2024-03-01")
    assert version.startswith("als-20240301-")
    assert len(version) == len("als-20240301-") + 8


def test_model_version_changes_with_the_date_and_every_model_setting():
    base = Settings.from_params({})
    version = base.model_version("2024-03-01")
    assert base.model_version("2024-03-02") != version
    changed = {
        "feedback": "explicit", "rank": 51, "reg_param": 0.5, "alpha": 1.0, "max_iter": 11, "seed": 1,
        "rating_rank": 11, "rating_reg_param": 0.2, "test_fraction": 0.3,
    }  # fmt: skip
    for key, value in changed.items():
        other = dataclasses.replace(base, **{key: value})
        assert other.model_version("2024-03-01") != version, key


def test_lake_path_layout(tmp_path):
    settings = dataclasses.replace(Settings.from_params({}), data_dir=tmp_path, lake_uri=None)
    assert settings.lake_path("raw", "interactions", "2024-03-01") == (
        f"{tmp_path}/lake/raw/movielens/interactions/dt=2024-03-01"
    )
    named = dataclasses.replace(settings, dataset="ml-1m")
    assert (
        named.lake_path("clean", "items", "2024-03-01") == f"{tmp_path}/lake/clean/ml-1m/items/dt=2024-03-01"
    )
    remote = dataclasses.replace(named, lake_uri="s3a://bucket/lake")
    assert remote.lake_path("recs", "recommendations", "2024-03-01") == (
        "s3a://bucket/lake/recs/ml-1m/recommendations/dt=2024-03-01"
    )
    assert remote.model_path("2024-03-01", "full_ranker") == (
        f"s3a://bucket/lake/models/ml-1m/{remote.model_version('2024-03-01')}/full_ranker"
    )


def test_dataset_defaults_to_source():
    assert Settings.from_params({}).dataset_name == "movielens"
    assert Settings.from_params({"dataset": "ml-100k"}).dataset_name == "ml-100k"


def test_settings_factory_puts_everything_under_tmp_path(settings_factory, tmp_path):
    settings = settings_factory(top_k="3")
    assert settings.top_k == 3
    assert Path(settings.lake).is_relative_to(tmp_path)
    assert settings.sample_dir.is_relative_to(tmp_path)


def test_emptied_form_fields_fall_back_to_defaults():
    settings = Settings.from_params({"path": "", "dataset": None, "top_k": 7})
    assert settings.path is None and settings.dataset_name == "movielens" and settings.top_k == 7


def test_model_version_changes_with_the_data_and_top_k():
    base = Settings.from_params({})
    versions = {
        Settings.from_params(change).model_version("2024-03-01")
        for change in ({}, {"path": "/data/ml-100k"}, {"top_k": 20}, {"sample_users": 50})
    }
    assert len(versions) == 4
    assert base.model_version("2024-03-01") in versions


def test_event_weights_override_only_the_types_given_even_as_json_text():
    settings = Settings.from_params({"event_weights": '{"cart": 4, "purchase": "8"}'})
    assert settings.event_weights == {"view": 1.0, "cart": 4.0, "remove_from_cart": -3.0, "purchase": 8.0}
    assert Settings().event_weights == {"view": 1.0, "cart": 3.0, "remove_from_cart": -3.0, "purchase": 5.0}
    assert settings.model_version("2024-03-01") != Settings().model_version("2024-03-01")
