"""Blockwise top-K cosine against a brute-force numpy reference, and its edge cases by hand."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.linalg import DenseVector, SparseVector, Vectors

from recflow import similarity

pytestmark = pytest.mark.spark


def reference_top_k(ids: list, matrix: np.ndarray, k: int) -> list[tuple]:
    """(id, rank, similar id, score) by brute force: every pair, sorted by score then id."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    scores = unit @ unit.T
    rows = []
    for i, a in enumerate(ids):
        others = sorted(((-scores[i, j], b) for j, b in enumerate(ids) if j != i and scores[i, j] > 0))
        rows += [(a, rank, b, -score) for rank, (score, b) in enumerate(others[:k], start=1)]
    return sorted(rows)


def assert_same_neighbours(actual: list[tuple], expected: list[tuple]) -> None:
    assert [row[:3] for row in actual] == [row[:3] for row in expected]
    assert np.allclose([row[3] for row in actual], [row[3] for row in expected], rtol=0, atol=1e-12)


def rows_of(frame) -> list[tuple]:
    return sorted(tuple(row) for row in frame.collect())


@pytest.fixture(scope="module")
def random_vectors() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(57, 6))


def test_blocks_match_brute_force_with_integer_ids_and_arrays(spark, random_vectors):
    # Shuffled ids: the result must not depend on the order the rows arrive in.
    ids = [int(i) for i in np.random.default_rng(1).permutation(1000)[:57]]
    frame = spark.createDataFrame(
        [(i, v.tolist()) for i, v in zip(ids, random_vectors, strict=True)],
        "item_idx int, factors array<float>",
    )
    top = similarity.top_k_cosine(frame, k=5, vector_col="factors", block_rows=8)  # 8 blocks
    assert top.schema.simpleString() == "struct<item_idx:int,rank:int,similar_item_idx:int,score:double>"
    # array<float>: the reference sees the same float32-rounded numbers.
    expected = reference_top_k(ids, random_vectors.astype(np.float32).astype(np.float64), 5)
    actual = rows_of(top)
    assert_same_neighbours(actual, expected)
    assert all(a != b for a, _, b, _ in actual)
    # Random directions in 6 dimensions: some items have fewer than 5 positive neighbours.
    assert len(actual) == len(expected) <= 57 * 5
    again = rows_of(similarity.top_k_cosine(frame, k=5, vector_col="factors", block_rows=8))
    assert again == actual  # same bits, not just close


def test_blocks_match_brute_force_with_string_ids_and_vectors(spark, random_vectors):
    ids = [f"i{n}" for n in range(57)]  # "i10" < "i2": string order, not numeric
    frame = spark.createDataFrame(
        [(i, DenseVector(v)) for i, v in zip(ids, random_vectors, strict=True)], ["item_id", "features"]
    )
    top = similarity.top_k_cosine(frame, k=5, id_col="item_id", block_rows=10)
    assert top.columns == ["item_id", "rank", "similar_item_id", "score"]
    assert_same_neighbours(rows_of(top), reference_top_k(ids, random_vectors, 5))


def test_sparse_vectors_and_a_zero_vector(spark):
    rng = np.random.default_rng(3)
    dense = np.where(rng.random((30, 40)) < 0.15, rng.random((30, 40)), 0.0)
    dense[4] = 0.0  # item 4: no features, so no neighbours, and nobody's neighbour
    ids = list(range(30))
    frame = spark.createDataFrame(
        [(i, Vectors.sparse(40, {j: float(x) for j, x in enumerate(row) if x})) for i, row in zip(ids, dense, strict=True)],
        ["item_idx", "features"],
    )  # fmt: skip
    actual = rows_of(similarity.top_k_cosine(frame, k=4, block_rows=7))
    assert_same_neighbours(actual, reference_top_k(ids, dense, 4))
    assert not [row for row in actual if 4 in (row[0], row[2])]


def test_ties_go_to_the_smaller_id_and_self_is_never_a_neighbour(spark):
    frame = spark.createDataFrame(
        [("d", [1.0, 0.0]), ("b", [2.0, 0.0]), ("c", [1.0, 0.0]), ("a", [0.0, 1.0]), ("e", [1.0, 1.0])],
        "item_id string, features array<double>",
    )
    top = rows_of(similarity.top_k_cosine(frame, k=2, id_col="item_id"))
    half = float(np.sqrt(0.5))
    # b, c and d point the same way: each one's two neighbours are the other two, smaller first.
    assert [row for row in top if row[0] in "bcd"] == [
        ("b", 1, "c", 1.0), ("b", 2, "d", 1.0),
        ("c", 1, "b", 1.0), ("c", 2, "d", 1.0),
        ("d", 1, "b", 1.0), ("d", 2, "c", 1.0),
    ]  # fmt: skip
    # e is at 45 degrees to all four: a (score tied with b, c, d) and b.
    assert [row[:3] for row in top if row[0] == "e"] == [("e", 1, "a"), ("e", 2, "b")]
    assert [row[3] for row in top if row[0] == "e"] == pytest.approx([half, half])
    assert [row[:3] for row in top if row[0] == "a"] == [("a", 1, "e")]  # orthogonal to b, c, d


def test_block_top_k_keeps_the_smaller_positions_among_ties():
    scores = np.array([[9.0, 0.5, 0.5, 0.7, 0.5], [0.5, 0.5, 9.0, 0.0, -1.0]])
    rows, similar, values, ranks = similarity.block_top_k(scores, np.array([0, 2]), 3)
    assert rows.tolist() == [0, 0, 0, 2, 2]
    assert similar.tolist() == [3, 1, 2, 0, 1]  # row 2: position 3 scores 0, so it is dropped
    assert values.tolist() == [0.7, 0.5, 0.5, 0.5, 0.5]
    assert ranks.tolist() == [1, 2, 3, 1, 2]


def test_collect_matrix_sorts_normalises_and_keeps_zero_rows(spark):
    frame = spark.createDataFrame(
        [
            ("z", SparseVector(3, [0], [3.0])),
            ("a", DenseVector([3.0, 0.0, 4.0])),
            ("m", SparseVector(3, [], [])),
        ],
        ["item_id", "features"],
    )
    ids, matrix = similarity.collect_matrix(frame, "item_id", "features")
    assert ids.tolist() == ["a", "m", "z"]
    assert matrix.dtype == np.float64
    assert matrix.toarray().tolist() == [[0.6, 0.0, 0.8], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    _, raw = similarity.collect_matrix(frame, "item_id", "features", normalise=False)
    assert raw.toarray()[0].tolist() == [3.0, 0.0, 4.0]


def test_collect_matrix_rejects_duplicate_ids(spark):
    frame = spark.createDataFrame([(1, [1.0]), (1, [2.0])], "item_idx int, factors array<double>")
    with pytest.raises(ValueError, match="duplicate"):
        similarity.collect_matrix(frame, "item_idx", "factors")


def test_only_zero_vectors_give_no_rows(spark):
    # Every block comes back empty: string ids must still cross Arrow with the right type.
    frame = spark.createDataFrame(
        [("a", [0.0, 0.0]), ("b", [0.0, 0.0])], "item_id string, features array<double>"
    )
    assert similarity.top_k_cosine(frame, k=3, id_col="item_id", block_rows=1).collect() == []


def test_fewer_than_two_ids_give_no_rows(spark):
    frame = spark.createDataFrame([(1, [1.0, 2.0])], "item_idx int, features array<double>")
    top = similarity.top_k_cosine(frame, k=3)
    assert top.collect() == []
    assert top.columns == ["item_idx", "rank", "similar_item_idx", "score"]


def test_default_block_rows_bounds_the_score_block():
    assert similarity.default_block_rows(3706) * 3706 * 8 <= similarity.BLOCK_BYTES
    assert similarity.default_block_rows(10) == 10
    assert similarity.default_block_rows(10**9) == 1
