"""The hybrid scorer's per-user logic on a hand-made catalogue (no Spark): blends, rules, reasons."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recflow.hybrid import (
    Policy,
    best_first,
    blend_scores,
    build_catalogue,
    reason_item,
    score_user,
    score_users,
    select,
    user_scores,
)

# Six items: 0-2 comedies (attribute column 0), 3-5 dramas (column 1); item 5 is new (no ALS
# factor, no item_idx). ALS factors put 0, 1 and 3 close together.
CONTENT = sparse.csr_matrix(np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, 1]], dtype=float))
FACTORS = pd.DataFrame(
    {"id": [0, 1, 2, 3, 4], "features": [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.2], [0.1, 0.9]]}
)


def catalogue(**kwargs):
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e", "new"],
            "item_idx": [0, 1, 2, 3, 4, None],
            "category": ["Comedy", "Comedy", "Comedy", "Drama", "Drama", "Drama"],
        }
    )
    popularity = pd.DataFrame({"item_idx": [0, 1, 2, 3, 4], "popularity": [0.5, 1.0, 0.2, 0.9, 0.1]})
    ids = np.array(["a", "b", "c", "d", "e", "new"], dtype=object)
    return build_catalogue(items, ids, CONTENT, FACTORS, popularity, **kwargs)


def test_catalogue_positions_follow_item_idx_and_new_items_get_folded_in_factors():
    cat = catalogue()
    assert list(cat.item_id) == ["a", "b", "c", "d", "e", "new"]
    assert list(cat.item_idx) == [0, 1, 2, 3, 4, -1]
    # "new" shares its content with d and e only: its factor is their mean (equal similarity).
    np.testing.assert_allclose(cat.factors[5], (np.array([0.8, 0.2]) + np.array([0.1, 0.9])) / 2)
    assert cat.popularity[5] == 0.0


def test_blend_weights_zero_and_one_are_the_parts_alone():
    als, content = np.array([3.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.5])
    assert blend_scores(als, content, 0.0)[1] == "als"
    np.testing.assert_array_equal(blend_scores(als, content, 0.0)[0], als)
    assert blend_scores(als, content, 1.0) == (content, "content")
    scores, source = blend_scores(als, content, 0.5)
    assert source == "hybrid"
    np.testing.assert_allclose(scores, 0.5 * np.array([1.0, 0.0, 0.5]) + 0.5 * content)
    # No ALS factor: content alone whatever the weight.
    assert blend_scores(None, content, 0.2)[1] == "content"


def test_content_profile_scores_items_like_the_history():
    cat = catalogue()
    _, content = user_scores(cat, None, np.array([0]), np.array([5.0]), blend=0.0)
    np.testing.assert_allclose(content, [1, 1, 1, 0, 0, 0])


def test_rules_remove_seen_blocked_unavailable_and_cap_categories_in_order():
    cat = catalogue(blocked_ids={"b"}, available_ids={"a", "c", "d", "e"})
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    policy = Policy(k=3, blend=0.0, max_per_category=1, availability=True)
    accepted, removed = select(cat, scores, np.array([0]), policy, "u1")
    # a seen, b blocked, c comedy -> ok, d drama -> ok, e drama: capped (deferred), new: unavailable
    # and the list is short, so the cap yields e.
    assert accepted == [2, 3, 4]
    assert removed == [(0, "seen"), (1, "blocklist"), (5, "availability")]


def test_diversity_cap_removes_only_when_the_list_fills_without_it():
    cat = catalogue()
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    accepted, removed = select(
        cat, scores, np.array([], dtype=np.int64), Policy(k=3, blend=0.0, max_per_category=2), "u"
    )
    assert accepted == [0, 1, 3]
    assert removed == [(2, "diversity")]


def test_user_blocks_apply_to_that_user_only():
    cat = catalogue()
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    policy = Policy(k=2, blend=0.0, user_blocks={"u1": {0}})
    assert select(cat, scores, np.array([], dtype=np.int64), policy, "u1")[0] == [1, 2]
    assert select(cat, scores, np.array([], dtype=np.int64), policy, "u2")[0] == [0, 1]


def test_reason_is_the_history_item_closest_to_the_recommendation():
    cat = catalogue()
    history = np.array([2, 3])  # c (factor [0, 1]) and d ([0.8, 0.2])
    assert reason_item(cat, 0, history, "als") == 3  # a = [1, 0] is closest to d
    assert reason_item(cat, 4, history, "content") == 3  # e shares drama with d, not c
    assert reason_item(cat, 0, np.array([], dtype=np.int64), "als") == -1


@pytest.mark.parametrize("segment, source", [("people aged 25-34", "segment_popular"), (None, "popular")])
def test_a_user_without_history_gets_segment_or_overall_popularity(segment, source):
    cat = catalogue(segments={"people aged 25-34": pd.DataFrame({"item_idx": [4, 2], "score": [1.0, 0.5]})})
    row = SimpleNamespace(user_key="new-user", history=None, weights=None, factor=None, segment=segment)
    out = score_user(cat, Policy(k=2, blend=0.0), row, {"serve": float("nan")})
    assert {r[4] for r in out} == {source}
    listed = [r[2] for r in out if r[6] is None]
    assert listed == ([4, 2] if segment else [1, 3])  # by segment score; else by popularity


def test_hybrid_rows_carry_a_reason_and_never_repeat_the_history():
    cat = catalogue()
    row = SimpleNamespace(user_key="u", history=[0, 3], weights=[5.0, 1.0], factor=[1.0, 0.0], segment=None)
    out = score_user(cat, Policy(k=3, blend=0.1), row, {"serve": 0.5})
    listed = [r for r in out if r[6] is None]
    assert [r[1] for r in listed] == [1, 2, 3]
    assert not {r[2] for r in listed} & {0, 3}
    assert all(r[4] == "hybrid" and r[5] in (0, 3) for r in listed)
    removed = [(r[2], r[6]) for r in out if r[6] is not None]
    assert removed and all(rule == "seen" and pos in (0, 3) for pos, rule in removed)


def test_a_new_item_without_interactions_is_recommended_through_its_content_neighbours():
    cat = catalogue()
    # A drama fan: the new drama (no ALS factor of its own, no popularity) reaches the list,
    # through the content score and through the factor folded in from d and e.
    row = SimpleNamespace(user_key="u", history=[3, 4], weights=[5.0, 5.0], factor=[0.5, 0.5], segment=None)
    for weight in (1.0, 0.5):
        listed = [
            r[2] for r in score_user(cat, Policy(k=1, blend=0.0), row, {"serve": weight}) if r[6] is None
        ]
        assert listed == [5], weight
    # ALS alone scores it with the folded-in factor too: the mean of d's and e's.
    als, _ = user_scores(cat, [0.5, 0.5], np.array([3, 4]), np.array([5.0, 5.0]), blend=0.0)
    assert als[5] == pytest.approx(0.5 * (0.8 + 0.1) / 2 + 0.5 * (0.2 + 0.9) / 2)


def _values(rows):
    return pd.DataFrame(rows, columns=["weight", "user_idx", "value"])


def test_a_content_weight_must_beat_als_by_more_than_its_noise():
    from recflow.scoring import choose_weight

    # 0.5 wins on average by 0.05, but the per-user gaps swing by +-0.5: within one standard
    # error, so the smaller weight (ALS) is kept.
    noisy = [(0.0, u, 0.5) for u in range(4)] + [(0.5, u, v) for u, v in enumerate([1.0, 0.0, 1.0, 0.2])]
    assert choose_weight(_values(noisy)) == 0.0
    # A consistent gain of 0.1 for every user is beyond its (zero) noise: the weight is taken.
    steady = [(0.0, u, 0.5) for u in range(4)] + [(0.5, u, 0.6) for u in range(4)]
    assert choose_weight(_values(steady)) == 0.5
    # Between them, the smallest weight within one standard error of the best.
    graded = steady + [(0.2, u, v) for u, v in enumerate([0.62, 0.57, 0.61, 0.58])]  # 0.005 behind, +-0.012
    assert choose_weight(_values(graded)) == 0.2
    assert choose_weight(_values([])) is None


def _random_catalogue(rng, n=300, rank=4, d=12, new=40):
    items = pd.DataFrame(
        {
            "item_id": [f"i{p}" for p in range(n)],
            "item_idx": [p if p < n - new else None for p in range(n)],
            "category": [f"c{p % 5}" for p in range(n)],
        }
    )
    content = sparse.random(n, d, density=0.3, random_state=rng, format="csr")
    factors = pd.DataFrame({"id": range(n - new), "features": list(rng.normal(size=(n - new, rank)))})
    # Rounded popularity: many ties, which the partial sort must order as the full sort does.
    popularity = pd.DataFrame({"item_idx": range(n - new), "popularity": rng.integers(0, 5, n - new) / 4})
    ids = items["item_id"].to_numpy(dtype=object)
    return build_catalogue(items, ids, content, factors, popularity, blocked_ids={"i3", "i7"})


def test_scoring_a_block_of_users_equals_scoring_them_one_by_one():
    rng = np.random.default_rng(7)
    cat = _random_catalogue(rng)
    rows = [
        SimpleNamespace(
            user_key=f"u{u}",
            history=list(rng.choice(cat.size, size=u % 9, replace=False)),
            weights=list(rng.uniform(1, 5, size=u % 9)),
            factor=None if u % 4 == 0 else list(rng.normal(size=4)),
            segment=None,
        )
        for u in range(25)
    ]
    variants = {"als": 0.0, "hybrid": 0.4, "content": 1.0, "popularity": -1.0}
    policy = Policy(k=8, blend=0.2, max_per_category=3)
    together = score_users(cat, policy, rows, [variants] * len(rows))
    for row, lists in zip(rows, together, strict=True):
        alone = score_user(cat, policy, row, variants)
        assert [r[:3] + r[4:] for r in lists] == [r[:3] + r[4:] for r in alone]
        np.testing.assert_allclose([r[3] for r in lists], [r[3] for r in alone], rtol=1e-9, atol=1e-12)


def test_the_partial_sort_gives_the_full_sorts_first_items_ties_included():
    rng = np.random.default_rng(3)
    key = rng.integers(0, 6, size=500).astype(float)  # many ties at every value
    full = np.lexsort((np.arange(len(key)), key))
    for m in (1, 7, 80, 499, 500, 900):
        got = best_first(key, m)
        assert len(got) >= min(m, len(key))
        np.testing.assert_array_equal(got, full[: len(got)])


@pytest.mark.parametrize("available_share", [1.0, 0.1, 0.0])
def test_lists_match_a_full_sort_of_the_catalogue_when_rules_remove_many(monkeypatch, available_share):
    import recflow.hybrid as hybrid

    rng = np.random.default_rng(11)
    cat = _random_catalogue(rng)
    cat.available[:] = rng.random(cat.size) < available_share  # the availability rule removes the rest
    scores = np.round(rng.normal(size=cat.size), 1)  # ties
    history = rng.choice(cat.size, size=30, replace=False)
    policy = Policy(k=10, blend=0.0, availability=True, max_per_category=2)
    partial = select(cat, scores, history, policy, "u")

    # The same rules over the whole catalogue sorted at once.
    def full_sort(key, _m):
        yield from np.lexsort((np.arange(len(key)), key)).tolist()

    monkeypatch.setattr(hybrid, "_walk", full_sort)
    assert partial == select(cat, scores, history, policy, "u")


def test_new_items_are_folded_in_blockwise_as_the_dense_computation_does(monkeypatch):
    import recflow.hybrid as hybrid

    rng = np.random.default_rng(5)
    n, rank = 200, 3
    content = sparse.random(n, 10, density=0.3, random_state=rng, format="csr")
    has = rng.random(n) < 0.6
    vectors = np.where(has[:, None], rng.normal(size=(n, rank)), 0.0)

    # The dense reference: every missing item against every known one at once.
    expected = vectors.copy()
    missing, known = np.flatnonzero(~has), np.flatnonzero(has)
    sims = (content[missing] @ content[known].T).toarray()
    for row, item in enumerate(missing):
        top = np.argsort(-sims[row], kind="stable")[: hybrid.FOLD_IN_NEIGHBOURS]
        weights = sims[row, top]
        top, weights = top[weights > 0], weights[weights > 0]
        if len(top):
            expected[item] = weights @ vectors[known[top]] / weights.sum()

    monkeypatch.setattr(hybrid, "default_block_rows", lambda _n: 7)  # many blocks
    got = vectors.copy()
    hybrid._fold_in(got, has, content)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
