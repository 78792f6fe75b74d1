"""The champion/challenger rule on numbers (recflow.gate): no Spark needed."""

from __future__ import annotations

import pytest

from recflow.config import Settings
from recflow.gate import decide, primary_key

CHAMPION = {"model_version": "als-20240301-aaaa"}


def _decide(value, champion_value, basis="both on this run's test split", **params):
    settings = Settings.from_params(params)
    key = primary_key(settings)
    champion_metrics = None if champion_value is None else {key: champion_value}
    return decide(
        {key: value}, CHAMPION if champion_value is not None else None, champion_metrics, settings, basis
    )


def test_first_model_is_promoted():
    decision = _decide(0.30, None)
    assert decision["promote"] is True and decision["decision"] == "promoted"
    assert decision["champion_version"] is None and decision["champion_value"] is None
    assert decision["reason"].startswith("No champion yet: ndcg@10 0.3000")


@pytest.mark.parametrize(
    ("value", "champion_value", "promote"),
    [
        (0.45, 0.40, True),  # better
        (0.40, 0.40, True),  # equal
        (0.391, 0.40, True),  # worse, but within the 0.01 tolerance
        (0.389, 0.40, False),  # worse beyond it
    ],
)
def test_higher_is_better_metrics_within_tolerance(value, champion_value, promote):
    decision = _decide(value, champion_value)
    assert decision["promote"] is promote
    assert (
        decision["champion_value"] == champion_value
        and decision["champion_version"] == CHAMPION["model_version"]
    )
    assert ("Promoted" if promote else "Rejected, the champion's recommendations stay") in decision["reason"]
    assert "ndcg@10" in decision["reason"] and CHAMPION["model_version"] in decision["reason"]


@pytest.mark.parametrize(("value", "promote"), [(0.90, True), (0.905, True), (0.93, False)])
def test_rmse_is_lower_is_better(value, promote):
    decision = _decide(value, 0.90, primary_metric="rmse", champion_tolerance=0.005)
    assert decision["primary_metric"] == "rmse"
    assert decision["promote"] is promote


def test_force_publish_promotes_a_worse_model_and_says_so():
    decision = _decide(0.20, 0.40, force_publish=True)
    assert decision["promote"] is True and decision["forced"] is True
    assert decision["reason"].startswith("Forced by force_publish although worse")


def test_primary_metric_at_the_runs_k():
    assert primary_key(Settings.from_params({"top_k": 20, "primary_metric": "precision"})) == "precision@20"


def test_a_metric_the_source_does_not_measure_is_an_error():
    settings = Settings.from_params({"primary_metric": "rmse", "source": "ecommerce"})
    with pytest.raises(ValueError, match="primary_metric 'rmse' is not measured"):
        decide({"ndcg@10": 0.3}, None, None, settings, "no champion")


def test_unknown_primary_metric_is_refused_when_the_run_starts():
    with pytest.raises(ValueError, match="primary_metric must be one of"):
        Settings.from_params({"primary_metric": "auc"})
