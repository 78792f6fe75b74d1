"""Content vectors on hand-made catalogues: which items share a token is read off the rows
below, and the cosines are checked against that."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recflow import content

pytestmark = pytest.mark.spark

MOVIES = [
    ("m1", "Toy Story (1995)", "Animation|Children's|Comedy"),
    ("m2", "Toy Story 2 (1999)", "Animation|Children's|Comedy"),
    ("m3", "Heat (1995)", "Action|Crime|Thriller"),
    ("m4", "Casino (1995)", "Crime|Drama"),
    # Title words found in no other title, and no genre: nothing to match on.
    ("m5", "Nadja (1994)", "(no genres listed)"),
]
PRODUCT_COLUMNS = "item_id string, title string, genres string, category_id long, category_code string, brand string, price double"  # fmt: skip
PRODUCTS = [
    ("p1", "samsung electronics.smartphone", "electronics|smartphone", 1, "electronics.smartphone", "samsung", 199.0),
    ("p2", "apple electronics.smartphone", "electronics|smartphone", 1, "electronics.smartphone", "apple", 899.0),
    ("p3", "Samsung headphones", "electronics|audio|headphone", 3, " Electronics.Audio.Headphone ", "Samsung ", 49.0),
    # The adapter's placeholder titles: "product" must not make nameless products neighbours.
    ("p4", "product p4", None, 7, None, None, 5.0),
    ("p5", "product p5", "", 8, "", "", 6.0),
]  # fmt: skip


def vectors_of(features) -> dict[str, np.ndarray]:
    return {row.item_id: row.features.toArray() for row in features.collect()}


def cosine(vectors: dict[str, np.ndarray], a: str, b: str) -> float:
    return float(vectors[a] @ vectors[b])


@pytest.fixture(scope="module")
def movies(spark):
    return spark.createDataFrame(MOVIES, "item_id string, title string, genres string")


@pytest.fixture(scope="module")
def products(spark):
    return spark.createDataFrame(PRODUCTS, PRODUCT_COLUMNS)


@pytest.fixture(scope="module")
def movie_vectors(movies):
    return vectors_of(content.item_features(movies))


@pytest.fixture(scope="module")
def product_vectors(products):
    return vectors_of(content.item_features(products))


def test_documents_prefix_genres_and_skip_placeholders(movies):
    docs = {row.item_id: (row.attributes, row.title) for row in content.item_documents(movies).collect()}
    assert docs["m1"] == (["genre:animation", "genre:children's", "genre:comedy"], "Toy Story (1995)")
    assert docs["m5"] == ([], "Nadja (1994)")


def test_documents_of_products_use_every_category_level_and_no_placeholder_title(products):
    docs = {row.item_id: (row.attributes, row.title) for row in content.item_documents(products).collect()}
    assert docs["p3"] == (
        [
            "brand:samsung",
            "category:electronics",
            "category:electronics.audio",
            "category:electronics.audio.headphone",
            "category_id:3",
        ],
        "Samsung headphones",
    )
    # genres is the adapter's copy of category_code: not counted a second time.
    assert docs["p1"][0] == [
        "brand:samsung",
        "category:electronics",
        "category:electronics.smartphone",
        "category_id:1",
    ]
    assert docs["p4"] == (["category_id:7"], None)
    assert docs["p5"] == (["category_id:8"], None)


def test_documents_tolerate_missing_columns_and_merge_duplicate_ids(spark):
    items = spark.createDataFrame(
        [("c1", "News"), ("c1", "Sport"), ("c2", None), (None, "Music")], "item_id string, genres string"
    )
    docs = {row.item_id: (row.attributes, row.title) for row in content.item_documents(items).collect()}
    assert docs == {"c1": (["genre:news", "genre:sport"], None), "c2": ([], None)}


def test_movies_with_something_in_common_are_similar_the_others_orthogonal(movie_vectors):
    assert cosine(movie_vectors, "m1", "m2") > 0.5  # same genres, "toy", "story"
    assert cosine(movie_vectors, "m3", "m4") > 0  # crime, 1995
    assert cosine(movie_vectors, "m1", "m3") > 0  # 1995 only
    # A genre and the year beat the year alone.
    assert cosine(movie_vectors, "m1", "m2") > cosine(movie_vectors, "m1", "m3")
    assert cosine(movie_vectors, "m3", "m4") > cosine(movie_vectors, "m1", "m3")
    assert cosine(movie_vectors, "m2", "m3") == 0
    assert cosine(movie_vectors, "m2", "m4") == 0


def test_vectors_are_unit_length_or_zero(movie_vectors, product_vectors):
    norms = {item: np.linalg.norm(v) for item, v in {**movie_vectors, **product_vectors}.items()}
    assert norms.pop("m5") == 0
    assert norms.pop("p4") == 0
    assert norms.pop("p5") == 0
    assert np.allclose(list(norms.values()), 1.0, atol=1e-12)


def test_products_share_the_category_levels_and_brand_they_have_in_common(product_vectors):
    phones = cosine(product_vectors, "p1", "p2")
    same_brand = cosine(product_vectors, "p1", "p3")
    electronics_only = cosine(product_vectors, "p2", "p3")
    assert phones > electronics_only > 0
    assert same_brand > electronics_only
    for nameless in ("p4", "p5"):
        assert all(cosine(product_vectors, nameless, other) == 0 for other in product_vectors)


def test_no_title_word_in_two_titles_does_not_raise(spark):
    items = spark.createDataFrame(
        [("t1", "Alpha", "News"), ("t2", "Beta", "News|Sport"), ("t3", "Gamma", "Music")],
        "item_id string, title string, genres string",
    )
    vectors = vectors_of(content.item_features(items))
    assert cosine(vectors, "t1", "t2") > 0
    assert np.linalg.norm(vectors["t2"]) == pytest.approx(1.0)
    assert not vectors["t3"].any()  # "music" is in no other item


def test_a_catalogue_with_nothing_to_share_gets_zero_vectors(spark):
    items = spark.createDataFrame([("a",), ("b",)], "item_id string")
    assert {item: v.tolist() for item, v in vectors_of(content.item_features(items)).items()} == {
        "a": [0.0],
        "b": [0.0],
    }


def test_two_fits_give_identical_vectors(products, product_vectors):
    again = vectors_of(content.item_features(products))
    assert again.keys() == product_vectors.keys()
    for item in again:
        assert again[item].tobytes() == product_vectors[item].tobytes()


def test_min_title_df_controls_which_title_words_count(movies):
    # With min_title_df=3 only "1995" (three titles) is left of the titles: toy and story go.
    vectors = vectors_of(content.item_features(movies, min_title_df=3))
    for a, b in itertools.combinations(["m1", "m3", "m4"], 2):
        assert cosine(vectors, a, b) > 0
    assert cosine(vectors, "m1", "m2") < 1.0
    assert cosine(vectors, "m2", "m3") == 0
