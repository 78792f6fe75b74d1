"""Content-based item vectors: what an item is, from the catalogue alone, as one unit-length vector.

Two blocks of TF-IDF weights, each L2-normalised and then assembled and normalised again, so the
words of the title and the categorical attributes weigh the same and the cosine of two items is
the dot product of their vectors (recflow.similarity.top_k_cosine turns that into neighbours):

- title words: "Toy Story (1995)" -> toy, story, 1995. A word must appear in at least
  `min_title_df` titles: a word only one item has can match nothing, and would only shrink that
  item's other similarities by growing its norm;
- attribute tokens, prefixed by kind so they never collide with title words: genre:comedy,
  category:electronics and category:electronics.smartphone (every prefix of the dotted code, so
  two phones and a laptop share category:electronics), category_id:<id>, brand:samsung.

Items need no interactions, so a product nobody has bought yet still has neighbours: the cold
start ALS cannot cover. An item whose vector is all zeros (no title word or attribute shared with
any other item) simply has no content neighbours.

Determinism: the same catalogue gives the same vectors bit for bit. CountVectorizer orders its
vocabulary by corpus frequency, breaking ties in the order its tasks happen to finish, so the
vocabularies are re-sorted alphabetically before the vectors are built.
"""

from __future__ import annotations

from pyspark.ml import Pipeline
from pyspark.ml.feature import (
    IDF,
    CountVectorizer,
    CountVectorizerModel,
    Normalizer,
    RegexTokenizer,
    StopWordsRemover,
    VectorAssembler,
)
from pyspark.ml.functions import array_to_vector
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# Splits on anything that is not a letter or a digit in any script. Java's \W is ASCII-only and
# would cut "Amélie" into "am" and "lie".
TITLE_SPLIT = r"[^\p{L}\p{N}]+"
# Drops the "s" of "Schindler's" and "a" of "Episode I - A New Hope" that the stop words miss;
# a 4-digit year stays, and is worth keeping (films of one year share a style and an audience).
MIN_WORD_LENGTH = 2
# An attribute token shared by no other item can match nothing; like a one-title word it would
# only lower that item's cosines with everything else, so items rich in unique metadata would
# rank behind sparse ones as neighbours.
MIN_ATTRIBUTE_DF = 2
NO_GENRES = "(no genres listed)"  # MovieLens "latest" placeholder, not a genre


def item_documents(items: DataFrame) -> DataFrame:
    """items -> (item_id, attributes array<string>, title string), one row per distinct item_id.

    attributes are lower-cased, trimmed kind:value tokens, sorted and distinct, from whichever of
    genres ('|'-joined), category_code (dotted), category_id and brand the table has; empty and
    null values are skipped. The item's own id is never a token: it would make every item unique.

    genres are used only where there is no category_code column: the e-commerce adapter derives
    genres from category_code ("electronics|smartphone"), and counting the category twice would
    also add leaf tokens (genre:smartphone) that match across unrelated branches.

    title is the trimmed title, or NULL where it is a placeholder the adapters write for a
    nameless item (the item id itself for a TV channel, "product <id>" for an e-commerce
    product): every nameless product sharing the word "product" would make them all neighbours.
    Duplicate item_id rows are merged: the union of their tokens and the smallest title."""
    columns = set(items.columns)

    def text(name: str) -> Column:
        return F.lower(F.trim(F.col(name).cast("string")))

    token_lists = []
    if "genres" in columns and "category_code" not in columns:
        # A lambda, not F.trim itself: transform passes the index to a two-parameter function,
        # and trim's second parameter is the characters to trim.
        genres = F.transform(F.split(text("genres"), r"\|"), lambda g: F.trim(g))
        token_lists.append(_tokens("genre", F.filter(genres, lambda g: g != NO_GENRES)))
    if "category_code" in columns:
        token_lists.append(_category_prefixes(text("category_code")))
    if "category_id" in columns:
        token_lists.append(_tokens("category_id", F.array(text("category_id"))))
    if "brand" in columns:
        token_lists.append(_tokens("brand", F.array(text("brand"))))
    attributes = F.concat(*token_lists) if token_lists else _no_tokens()

    title = F.nullif(F.trim(F.col("title").cast("string")), F.lit("")) if "title" in columns else F.lit(None)
    item_id = F.col("item_id").cast("string")
    placeholder = (title == item_id) | (title == F.concat(F.lit("product "), item_id))
    docs = items.where(F.col("item_id").isNotNull()).select(
        "item_id",
        attributes.alias("attributes"),
        F.when(~placeholder, title).cast("string").alias("title"),
    )
    return docs.groupBy("item_id").agg(
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("attributes")))).alias("attributes"),
        F.min("title").alias("title"),
    )


def _tokens(kind: str, values: Column) -> Column:
    """'kind:value' for each non-empty value; [] for a NULL list, so concat never turns NULL."""
    present = F.filter(values, lambda v: v.isNotNull() & (v != ""))
    return F.coalesce(F.transform(present, lambda v: F.concat(F.lit(f"{kind}:"), v)), _no_tokens())


def _no_tokens() -> Column:
    # A function, not a module constant: building a Column needs an active SparkSession.
    return F.array().cast("array<string>")


def _category_prefixes(code: Column) -> Column:
    """ "electronics.audio.headphone" -> category:electronics, category:electronics.audio,
    category:electronics.audio.headphone: items share every level they have in common."""
    parts = F.filter(F.transform(F.split(code, r"\."), lambda p: F.trim(p)), lambda p: p != "")
    prefixes = F.transform(parts, lambda _, i: F.array_join(F.slice(parts, 1, i + 1), "."))
    return _tokens("category", prefixes)


def item_features(items: DataFrame, min_title_df: int = 2) -> DataFrame:
    """items -> (item_id, features: pyspark.ml Vector of unit length, or all zeros), one row per
    distinct item_id, fitted on the catalogue itself.

    Title words (RegexTokenizer, StopWordsRemover, CountVectorizer with minDF=min_title_df, IDF)
    and attribute tokens (binary CountVectorizer, IDF) each become an L2-normalised block; the
    two blocks are assembled and normalised again. A block whose vocabulary is empty (no title
    word in min_title_df titles, no attribute shared by two items) is left out, since IDF cannot
    fit on zero-length vectors; when both are, every item gets the all-zero vector of size 1,
    i.e. no item has content neighbours."""
    docs = item_documents(items).withColumn("_title_text", F.coalesce("title", F.lit("")))
    words = [
        RegexTokenizer(
            inputCol="_title_text",
            outputCol="_title_tokens",
            pattern=TITLE_SPLIT,
            gaps=True,
            minTokenLength=MIN_WORD_LENGTH,
            toLowercase=True,
        ),
        # The locale set, not the JVM's: the lower-casing of stop-word matching must not depend
        # on the machine the job lands on.
        StopWordsRemover(inputCol="_title_tokens", outputCol="_title_words", locale="en_US"),
    ]
    tokenised = Pipeline(stages=words).fit(docs).transform(docs)

    stages, blocks = list(words), []
    for name, column, min_df, binary in (
        ("title", "_title_words", min_title_df, False),
        ("attributes", "attributes", MIN_ATTRIBUTE_DF, True),
    ):
        vocabulary = _vocabulary(tokenised, column, min_df)
        if not vocabulary:
            continue
        stages += [
            CountVectorizerModel.from_vocabulary(
                vocabulary, inputCol=column, outputCol=f"_{name}_tf", binary=binary
            ),
            IDF(inputCol=f"_{name}_tf", outputCol=f"_{name}_tfidf"),
            Normalizer(inputCol=f"_{name}_tfidf", outputCol=f"_{name}_unit", p=2.0),
        ]
        blocks.append(f"_{name}_unit")

    if not blocks:
        return docs.select("item_id", array_to_vector(F.array(F.lit(0.0))).alias("features"))
    stages += [
        VectorAssembler(inputCols=blocks, outputCol="_assembled"),
        # An item with both blocks has norm sqrt(2), one with a single block norm 1: normalise
        # so every cosine is a plain dot product. Zero vectors stay zero.
        Normalizer(inputCol="_assembled", outputCol="features", p=2.0),
    ]
    return Pipeline(stages=stages).fit(docs).transform(docs).select("item_id", "features")


def _vocabulary(tokenised: DataFrame, column: str, min_df: int) -> list[str]:
    """The terms in at least min_df documents, sorted: CountVectorizer finds them, the sort makes
    the vector layout (and so every floating-point sum over it) the same from run to run."""
    model = CountVectorizer(inputCol=column, outputCol=f"{column}_counts", minDF=float(min_df)).fit(tokenised)
    return sorted(model.vocabulary)
