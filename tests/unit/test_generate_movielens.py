"""The synthetic MovieLens sample: byte-for-byte reproducible, in the real ML-100K
layout, and with taste structure a personalised model can learn but popularity cannot."""

import re

import numpy as np
import pytest

from recflow.generate.movielens import generate_movielens

N_USERS, N_ITEMS = 300, 200
FILES = ["u.data", "u.item", "u.user", "u.genre", "u.occupation", "u.info"]

# Copied from the real u.genre and u.occupation, so a change in the generator shows up here.
REAL_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip
REAL_OCCUPATIONS = [
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
]  # fmt: skip

# 1997-09-20 .. 1998-04-22 (UTC), the span of the real u.data, with a day's slack either side.
FIRST_TIMESTAMP, LAST_TIMESTAMP = 874_724_710 - 86_400, 893_286_638 + 86_400


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("movielens")
    generate_movielens(out, n_users=N_USERS, n_items=N_ITEMS, seed=7)
    return out


@pytest.fixture(scope="module")
def ratings(sample_dir):
    """u.data as an int array with columns user, item, rating, timestamp."""
    return np.loadtxt(sample_dir / "u.data", dtype=np.int64, delimiter="\t", ndmin=2)


def _split_lines(path, sep, encoding="ascii"):
    return [line.split(sep) for line in path.read_bytes().decode(encoding).splitlines()]


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes(tmp_path):
    for name in ("a", "b"):
        generate_movielens(tmp_path / name, n_users=N_USERS, n_items=N_ITEMS, seed=3)
    for f in FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_other_seed_gives_other_data(tmp_path):
    generate_movielens(tmp_path / "a", n_users=N_USERS, n_items=N_ITEMS, seed=3)
    generate_movielens(tmp_path / "b", n_users=N_USERS, n_items=N_ITEMS, seed=4)
    for f in ("u.data", "u.item", "u.user"):
        assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes(), f


def test_creates_missing_directory_and_returns_counts_of_u_info(tmp_path):
    out = tmp_path / "nested" / "ml-100k"
    counts = generate_movielens(out, n_users=50, n_items=60, seed=1)

    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    n_lines = len((out / "u.data").read_text().splitlines())
    assert counts == {"users": 50, "items": 60, "ratings": n_lines}
    assert (out / "u.info").read_text() == f"50 users\n60 items\n{n_lines} ratings\n"


def test_rejects_a_catalogue_too_small_for_twenty_ratings_per_user(tmp_path):
    with pytest.raises(ValueError):
        generate_movielens(tmp_path, n_users=10, n_items=30)


# ----------------------------------------------------------------------------- layout


def test_u_data_has_four_tab_separated_integer_fields(sample_dir):
    for fields in _split_lines(sample_dir / "u.data", "\t"):
        assert len(fields) == 4 and all(f.isdigit() for f in fields), fields


def test_u_data_ids_ratings_and_timestamps(ratings):
    users, items, stars, ts = ratings.T
    assert set(users) == set(range(1, N_USERS + 1))
    assert set(items) <= set(range(1, N_ITEMS + 1))
    assert set(stars) == {1, 2, 3, 4, 5}
    assert FIRST_TIMESTAMP <= ts.min() and ts.max() <= LAST_TIMESTAMP


def test_u_data_has_no_duplicate_pairs(ratings):
    pairs = ratings[:, 0] * (N_ITEMS + 1) + ratings[:, 1]
    assert len(np.unique(pairs)) == len(pairs)


def test_u_data_is_shuffled_like_the_real_file(ratings):
    users = ratings[:, 0]
    assert not np.all(np.diff(users) >= 0)
    assert not np.all(np.diff(ratings[:, 3]) >= 0)


def test_every_user_has_at_least_twenty_ratings(ratings):
    per_user = np.bincount(ratings[:, 0], minlength=N_USERS + 1)[1:]
    assert per_user.min() >= 20
    assert per_user.max() > 2 * np.median(per_user), "ratings per user should be heavy-tailed"


def test_item_popularity_is_long_tailed(ratings):
    per_item = np.sort(np.bincount(ratings[:, 1], minlength=N_ITEMS + 1)[1:])[::-1]
    top_tenth_share = per_item[: N_ITEMS // 10].sum() / per_item.sum()
    assert top_tenth_share > 0.2, f"top 10% of items hold only {top_tenth_share:.0%} of ratings"


def test_u_item_is_latin1_with_some_non_ascii_titles(sample_dir):
    raw = (sample_dir / "u.item").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    titles = [fields[1] for fields in _split_lines(sample_dir / "u.item", "|", "latin-1")]
    non_ascii = [t for t in titles if not t.isascii()]
    assert non_ascii, "no title exercises the Latin-1 encoding"
    assert len(non_ascii) <= 0.1 * len(titles)


def test_u_item_fields(sample_dir):
    rows = _split_lines(sample_dir / "u.item", "|", "latin-1")
    assert [int(r[0]) for r in rows] == list(range(1, N_ITEMS + 1))
    for row in rows:
        assert len(row) == 5 + 19, row
        _, title, release, video_release, url, *flags = row
        assert re.fullmatch(r".+ \((19[2-9]\d)\)", title), title
        assert re.fullmatch(r"\d\d-[A-Z][a-z]{2}-19\d\d", release), release
        assert release[-4:] == title[-5:-1]
        assert video_release == ""
        assert url == "" or url.startswith("http://")
        assert set(flags) <= {"0", "1"} and "1" in flags, f"item {row[0]} has no genre"
    assert len({r[1] for r in rows}) == len(rows), "titles should be unique"


def test_u_user_fields(sample_dir):
    rows = _split_lines(sample_dir / "u.user", "|")
    assert [int(r[0]) for r in rows] == list(range(1, N_USERS + 1))
    for row in rows:
        assert len(row) == 5, row
        _, age, gender, occupation, zip_code = row
        assert 7 <= int(age) <= 73
        assert gender in {"M", "F"}
        assert occupation in REAL_OCCUPATIONS
        assert re.fullmatch(r"\d{5}", zip_code)
    assert {r[2] for r in rows} == {"M", "F"}


def test_u_genre_and_u_occupation_match_the_real_lists(sample_dir):
    genre_lines = (sample_dir / "u.genre").read_text().splitlines()
    assert genre_lines == [f"{name}|{i}" for i, name in enumerate(REAL_GENRES)]
    assert (sample_dir / "u.occupation").read_text().splitlines() == REAL_OCCUPATIONS


# ----------------------------------------------------------------------------- taste structure


def test_demographic_segments_have_different_tastes(sample_dir, ratings):
    """Women pick romances more often than men do, as the segment tilt intends."""
    gender = np.array(["?"] + [r[2] for r in _split_lines(sample_dir / "u.user", "|")])
    flags = np.array([[0] * 19] + [r[5:] for r in _split_lines(sample_dir / "u.item", "|", "latin-1")], int)
    romance = flags[ratings[:, 1], REAL_GENRES.index("Romance")]
    female = gender[ratings[:, 0]] == "F"
    assert romance[female].mean() > 1.2 * romance[~female].mean()


def _train_test_split(ratings, rng, test_share=0.2):
    """Per user, a random 20% of their ratings are held out."""
    is_test = np.zeros(len(ratings), dtype=bool)
    for user in np.unique(ratings[:, 0]):
        rows = np.flatnonzero(ratings[:, 0] == user)
        is_test[rng.choice(rows, size=round(test_share * len(rows)), replace=False)] = True
    return ratings[~is_test], ratings[is_test]


def _interaction_matrix(ratings):
    matrix = np.zeros((N_USERS, N_ITEMS))
    matrix[ratings[:, 0] - 1, ratings[:, 1] - 1] = 1.0
    return matrix


def _precision_at_10(scores, train, test):
    """Mean over users of the share of their top 10 unseen items that they held out."""
    scores = np.where(train > 0, -np.inf, scores)
    top10 = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    return np.take_along_axis(test > 0, top10, axis=1).mean()


def _truncated_svd_scores(train, rank=10):
    """A rank-10 reconstruction of who-rated-what: the simplest latent-factor recommender."""
    u, s, vt = np.linalg.svd(train, full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


def test_personalised_model_beats_popularity_which_beats_random(ratings):
    train_rows, test_rows = _train_test_split(ratings, np.random.default_rng(0))
    train, test = _interaction_matrix(train_rows), _interaction_matrix(test_rows)

    popularity = _precision_at_10(np.tile(train.sum(axis=0), (N_USERS, 1)), train, test)
    personalised = _precision_at_10(_truncated_svd_scores(train), train, test)
    # Expected precision of ten random unseen items, exactly rather than sampled.
    random = np.mean(test.sum(axis=1) / (N_ITEMS - train.sum(axis=1)))

    figures = f"P@10 personalised={personalised:.3f} popularity={popularity:.3f} random={random:.3f}"
    assert personalised >= 1.2 * popularity, figures
    assert popularity >= 2.0 * random, figures
