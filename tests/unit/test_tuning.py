"""The ranker search's choice among its trials (recflow.tuning.choose_trial): no Spark needed."""

from __future__ import annotations

from recflow.tuning import choose_trial, fit_cost

METRIC, ERROR = "ndcg@10", "ndcg_se@10"


def trial(rank, max_iter, ndcg, se=0.003, **rest):
    return {"rank": rank, "max_iter": max_iter, METRIC: ndcg, ERROR: se, **rest}


def test_the_cheapest_trial_within_one_standard_error_of_the_best_is_chosen():
    best = trial(128, 20, 0.2100)
    cheap = trial(32, 10, 0.2075)  # 0.0025 below: within the best's 0.003
    cheaper_but_worse = trial(16, 10, 0.2060)  # 0.004 below: outside
    assert choose_trial([best, cheap, cheaper_but_worse], METRIC, ERROR) is cheap
    # A noisier best widens the band: the cheaper trial is then as good as the best.
    noisy = dict(best, **{ERROR: 0.005})
    assert choose_trial([noisy, cheap, cheaper_but_worse], METRIC, ERROR) is cheaper_but_worse


def test_a_best_trial_that_wins_by_more_than_its_noise_is_kept():
    best = trial(128, 20, 0.2100, se=0.001)
    assert choose_trial([trial(32, 10, 0.2050), best, trial(64, 15, 0.2080)], METRIC, ERROR) is best


def test_equally_cheap_trials_go_to_the_better_then_to_the_first():
    first = trial(64, 15, 0.2070, reg_param=0.3)
    better = trial(64, 15, 0.2080, reg_param=1.0)
    assert choose_trial([first, better, trial(128, 20, 0.2090)], METRIC, ERROR) is better
    twin = trial(64, 15, 0.2070, reg_param=1.0)
    assert choose_trial([first, twin], METRIC, ERROR) is first  # the run's own settings come first


def test_fit_cost_grows_with_iterations_and_the_square_of_the_rank():
    assert fit_cost({"rank": 64, "max_iter": 10}) == 2 * fit_cost({"rank": 64, "max_iter": 5})
    assert fit_cost({"rank": 128, "max_iter": 10}) == 4 * fit_cost({"rank": 64, "max_iter": 10})
