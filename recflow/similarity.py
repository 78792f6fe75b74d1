"""Exact top-K cosine neighbours of every item, computed blockwise with matrix products.

Used for "similar items": on ALS item factors (item_idx, array of rank floats) and on content
vectors (item_id, pyspark.ml Vector, recflow.content.item_features).

Why not a cross join: items x items rows through Spark's shuffle is n^2 rows of (id, id, score)
serialised, sorted and windowed, about 14 million rows for MovieLens 1M's 3,706 items and 730
million for 27,000. The item matrix itself is small (n x rank, or sparse), so it is broadcast
once; the items are cut into blocks of rows and each task scores a block against everything with
one matrix product (BLAS for dense factors, scipy's sparse product for content vectors): the same
n^2 multiply-adds, but as flops in native code, with memory bounded by one block
(block_rows x n float64, ~32 MB by default, about twice that at peak since np.partition works
on a copy), and only k rows per item ever leave the Python worker.

Determinism: float64 throughout and ties broken by the smaller id, so a run gives the same rows
and the same bits as the last one with the same block size on the same BLAS. (A different block
size can move the last bit of a dense score: BLAS kernels may sum a product's edge rows in
another order.)

Executors import this module to run the block scorer, so recflow, numpy and scipy must be
installed where they run, as they are wherever recflow's Spark jobs run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.broadcast import Broadcast
from pyspark.ml.linalg import SparseVector, VectorUDT
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from recflow.spark import Shared, cores, share

# Bytes of one block's dense score matrix (block_rows x n float64) when block_rows is not given.
BLOCK_BYTES = 32 * 1024 * 1024
# Above this share of non-zeros the matrix is broadcast dense: a sparse x sparse product of
# nearly dense matrices (ALS factors) is many times slower than one BLAS GEMM, and the dense
# copy costs at most about twice the CSR arrays (8 bytes per cell vs 12 per non-zero).
DENSE_FROM = 0.3
# numpy dtypes for Spark's integer id types: mapInPandas wants the schema's width back.
INTEGER_DTYPES = {
    T.ByteType: np.int8,
    T.ShortType: np.int16,
    T.IntegerType: np.int32,
    T.LongType: np.int64,
}


def collect_matrix(
    vectors: DataFrame, id_col: str, vector_col: str, normalise: bool = True
) -> tuple[np.ndarray, sp.csr_matrix]:
    """(ids sorted ascending, CSR float64 matrix whose row i is the vector of ids[i]), on the driver.

    vector_col holds pyspark.ml Vectors (dense or sparse) or array<float|double> (ALS factors);
    a NULL vector is a zero row. Integer ids come back int64, others as an object array.
    normalise=True scales rows to unit L2 norm; zero rows stay zero. Raises ValueError on NULL
    or duplicate ids, vectors of different sizes and non-finite values."""
    id_type = vectors.schema[id_col].dataType
    vector_type = vectors.schema[vector_col].dataType
    rows = vectors.select(id_col, vector_col).collect()
    if any(row[0] is None for row in rows):
        raise ValueError(f"{id_col} has NULL ids")
    ids = np.array([row[0] for row in rows], dtype=np.int64 if _integer_dtype(id_type) else object)
    if isinstance(vector_type, VectorUDT):
        matrix = _csr_of_vectors([row[1] for row in rows])
    elif isinstance(vector_type, T.ArrayType):
        matrix = _csr_of_arrays([row[1] for row in rows])
    else:
        raise ValueError(f"{vector_col} is {vector_type.simpleString()}, not a Vector or an array")
    if not np.all(np.isfinite(matrix.data)):
        raise ValueError(f"{vector_col} holds NaN or infinite values")

    order = np.argsort(ids, kind="stable")
    ids, matrix = ids[order], matrix[order]
    if len(ids) > 1 and np.any(ids[1:] == ids[:-1]):
        raise ValueError(f"{id_col} has duplicate ids")
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return ids, (_unit_rows(matrix) if normalise else matrix)


def _integer_dtype(id_type: T.DataType) -> type | None:
    return INTEGER_DTYPES.get(type(id_type))


def _csr_of_vectors(vectors: list) -> sp.csr_matrix:
    sizes = {v.size for v in vectors if v is not None}
    if len(sizes) > 1:
        raise ValueError(f"vectors of different sizes: {sorted(sizes)}")
    width = sizes.pop() if sizes else 0
    indices, values = [], []
    for v in vectors:
        if v is None:
            nonzero, data = np.zeros(0, dtype=np.int64), np.zeros(0)
        elif isinstance(v, SparseVector):
            nonzero, data = v.indices, v.values
        else:
            dense = v.toArray()
            nonzero = np.flatnonzero(dense)
            data = dense[nonzero]
        indices.append(np.asarray(nonzero, dtype=np.int64))
        values.append(np.asarray(data, dtype=np.float64))
    indptr = np.concatenate([[0], np.cumsum([len(i) for i in indices], dtype=np.int64)])
    return sp.csr_matrix(
        (
            np.concatenate(values) if values else np.zeros(0),
            np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
            indptr,
        ),
        shape=(len(vectors), width),
    )


def _csr_of_arrays(arrays: list) -> sp.csr_matrix:
    sizes = {len(a) for a in arrays if a is not None}
    if len(sizes) > 1:
        raise ValueError(f"arrays of different lengths: {sorted(sizes)}")
    width = sizes.pop() if sizes else 0
    # numpy reads a NULL element as NaN, which collect_matrix then rejects.
    rows = [np.zeros(width) if a is None else a for a in arrays]
    return sp.csr_matrix(np.array(rows, dtype=np.float64).reshape(len(arrays), width))


def _unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    # Divided, not multiplied by 1 / norm: one rounding instead of two (3 / 5 is 0.6, 3 * 0.2 is not).
    unit = matrix.copy()
    unit.data /= np.repeat(np.where(norms > 0, norms, 1.0), np.diff(unit.indptr))
    return unit


def top_k_cosine(
    vectors: DataFrame,
    k: int,
    id_col: str = "item_idx",
    vector_col: str = "features",
    block_rows: int | None = None,
) -> DataFrame:
    """For every id, its k most similar other ids by cosine -> (id_col, rank int (1 = most
    similar), 'similar_' + id_col, score double), ids keeping the type of id_col (integer or
    string).

    Exact: every pair is scored. Self-similarity is excluded, ties go to the smaller id, and
    pairs with score <= 0 are dropped (a zero vector has no neighbours; opposite ALS factors are
    not "similar"), so an id may have fewer than k neighbours. block_rows (default: as many as
    keep one block's scores near BLOCK_BYTES) sets the rows one matrix product scores."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if block_rows is not None and block_rows < 1:
        raise ValueError(f"block_rows must be at least 1, got {block_rows}")
    spark = vectors.sparkSession
    id_type = vectors.schema[id_col].dataType
    similar_col = f"similar_{id_col}"
    schema = T.StructType(
        [
            T.StructField(id_col, id_type, False),
            T.StructField("rank", T.IntegerType(), False),
            T.StructField(similar_col, id_type, False),
            T.StructField("score", T.DoubleType(), False),
        ]
    )
    ids, matrix = collect_matrix(vectors, id_col, vector_col)
    n = len(ids)
    if n < 2:
        return spark.createDataFrame([], schema)

    rows = min(n, block_rows or default_block_rows(n))
    n_blocks = math.ceil(n / rows)
    dense = matrix.nnz >= DENSE_FROM * matrix.shape[0] * matrix.shape[1]
    # Not destroyed here: the returned DataFrame is lazy and reads it whenever it is evaluated.
    shared = share(spark, (ids, matrix.toarray() if dense else matrix))
    # One row per block, spread over the cores: blocks need no shuffle, only a task to run in.
    blocks = spark.range(0, n_blocks, 1, numPartitions=min(n_blocks, cores(spark)))
    score = functools.partial(
        _score_blocks,
        shared=shared,
        block_rows=rows,
        k=k,
        columns=(id_col, similar_col),
        id_dtype=_integer_dtype(id_type),
    )
    return blocks.mapInPandas(score, schema)


def default_block_rows(n: int) -> int:
    """Rows per block so that the block's dense scores (rows x n float64) stay ~BLOCK_BYTES."""
    return max(1, min(n, BLOCK_BYTES // (8 * n)))


def _score_blocks(
    batches: Iterator[pd.DataFrame],
    shared: Broadcast | Shared,
    block_rows: int,
    k: int,
    columns: tuple[str, str],
    id_dtype: type | None,
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: each input row is a block number; yields that block's top k rows."""
    ids, matrix = shared.value
    n = matrix.shape[0]
    # Transposed once per task, not per block: scipy would convert the CSC transpose to CSR
    # inside every product.
    transposed = matrix.T if isinstance(matrix, np.ndarray) else matrix.T.tocsr()
    id_of = ids if id_dtype is None else ids.astype(id_dtype)
    for batch in batches:
        for block in batch["id"].tolist():
            start, stop = block * block_rows, min(n, (block + 1) * block_rows)
            product = matrix[start:stop] @ transposed
            scores = product if isinstance(product, np.ndarray) else product.toarray()
            rows, similar, values, ranks = block_top_k(scores, np.arange(start, stop), k)
            yield pd.DataFrame(
                {
                    columns[0]: id_of[rows],
                    "rank": ranks.astype(np.int32),
                    columns[1]: id_of[similar],
                    "score": values,
                }
            )


def block_top_k(
    scores: np.ndarray, positions: np.ndarray, k: int, *, self_scores: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top k of each row of a block of scores -> (row positions, neighbour positions, scores,
    ranks), row by row, best first; only scores > 0, so a row may keep fewer than k.

    scores[i, j] is the score of positions[i] against position j (positions ascend with the
    ids, so a smaller position is a smaller id). With self_scores (rows and columns are the same
    items), scores is modified: the self-scores are set to -inf; without, rows are other items
    than the columns and every column may be a neighbour. np.partition (the introselect behind argpartition, without its int64 index matrix)
    finds each row's k-th best value in O(n); the candidates are the positive scores at or above
    it, k of them unless there are ties at the k-th place, and a sort of just the candidates by
    (score desc, position asc) keeps the first k, so ties go to the smaller position."""
    b, n = scores.shape
    k = min(k, n - 1 if self_scores else n)
    if b == 0 or k < 1:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), empty
    if self_scores:
        scores[np.arange(b), positions] = -np.inf
    kth = np.partition(scores, n - k, axis=1)[:, n - k : n - k + 1]
    # "> 0" too: a row whose k-th best is 0 (a zero vector, a sparse item) would otherwise make
    # every one of its zeros a tied candidate, n of them, all to be dropped anyway.
    flat = np.flatnonzero((scores >= kth) & (scores > 0))
    local, similar = np.divmod(flat, n)
    values = scores.ravel()[flat]
    order = np.lexsort((similar, -values, local))
    local, similar, values = local[order], similar[order], values[order]
    ranks = np.arange(1, len(local) + 1) - np.searchsorted(local, local, side="left")
    keep = ranks <= k
    return positions[local[keep]], similar[keep], values[keep], ranks[keep]
