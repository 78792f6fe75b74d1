"""Deterministic synthetic sample in the exact MovieLens 100K file layout.

The platform's demo trains Spark ALS and compares it with a global-popularity
recommender. Uniform random ratings would make that comparison meaningless: ALS
could never win, and popularity would be no better than chance. So the sample is
drawn from an explicit latent-taste model, giving ALS something real to learn:

* items have genres, a hidden taste vector, and a long-tailed (Zipf-like)
  popularity, so popularity is a meaningful baseline on its own;
* users have genre preferences and a taste vector that depend partly on their
  demographic segment (age group x gender), so segments differ the way real
  audiences do, plus an individual part that only their history reveals;
* which items a user rates is drawn without replacement with weight
  popularity x exp(affinity / temperature), so the history carries both
  signals, and the personal one is what lets a factor model beat popularity;
* the rating itself is round(clip(global mean + user bias + item bias +
  affinity + noise, 1, 5)), so explicit-feedback ALS sees the same taste
  (affinity taken relative to the user's own picks, which keeps the star
  distribution close to the real one at any catalogue size).

The files copy ML-100K's quirks on purpose (Latin-1 titles with a few non-ASCII
characters, "Title, The (1994)" naming, shuffled u.data, empty video release
date) so that loaders written against this sample also work on the real one.
Everything comes from one numpy Generator, so the same arguments give
byte-identical files.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import numpy as np

GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip

OCCUPATIONS = [
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
]  # fmt: skip

# Item counts per genre and user counts per occupation in the real ML-100K, so
# the sample's marginals look familiar; "unknown" is kept rare as it is there.
_GENRE_FREQUENCY = np.array(
    [2, 251, 135, 42, 122, 505, 109, 50, 725, 22, 24, 92, 56, 61, 247, 101, 251, 71, 27], dtype=float
)
_OCCUPATION_FREQUENCY = np.array(
    [79, 28, 7, 95, 67, 18, 32, 16, 7, 12, 51, 26, 9, 105, 66, 14, 12, 31, 196, 27, 45], dtype=float
)

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

_ADJECTIVES = [
    "Silent", "Broken", "Hidden", "Last", "Dark", "Golden", "Wild", "Lost", "Crimson",
    "Endless", "Frozen", "Burning", "Secret", "Lonely", "Savage", "Quiet", "Distant",
    "Electric", "Midnight", "Bitter", "Restless", "Hollow", "Stolen", "Perfect", "Fallen",
    "Brave", "Little", "Final", "Strange", "Deadly", "Blue", "Scarlet", "Eternal",
    "Forgotten", "Sweet", "Wicked", "Crooked", "Shining", "Iron", "Velvet",
]  # fmt: skip
_NOUNS = [
    "River", "Heart", "City", "Road", "Night", "Kingdom", "Shadow", "Summer", "Game",
    "Promise", "Storm", "Mirror", "Garden", "Horizon", "Witness", "Stranger", "Island",
    "Empire", "Letter", "Journey", "Harbor", "Valley", "Dream", "Ghost", "Hunter", "Angel",
    "Machine", "Border", "Season", "Truth", "Voyage", "Fire", "Mountain", "Detective",
    "Affair", "Circus", "Frontier", "Legacy", "Sky", "Tide",
]  # fmt: skip
_NAMES = [
    "Jack", "Mary", "Billy", "Lucy", "Harry", "Sam", "Annie", "Charlie", "Grace", "Frank",
    "Rosie", "Eddie", "Molly", "Vincent", "Stella",
]  # fmt: skip
# All of these encode in Latin-1; they are what forces loaders to get the encoding right.
_FOREIGN_WORDS = [
    "Café", "Château", "Garçon", "Mañana", "Niño", "Señorita", "Fräulein", "Noël", "Crème",
    "Déjà Vu", "Müller", "Søren", "Amélie", "Curaçao", "Façade", "Fiancée", "Naïve", "Piñata",
]  # fmt: skip
_NON_ASCII_TITLE_SHARE = 0.02

# The real u.data spans 1997-09-20 .. 1998-04-22 (UTC).
_FIRST_TIMESTAMP = 874_724_710
_LAST_TIMESTAMP = 893_286_638
_COLLECTION_SPAN = _LAST_TIMESTAMP - _FIRST_TIMESTAMP
_DAY = 86_400
_SESSION_LENGTH = 2 * 3600

MIN_RATINGS_PER_USER = 20  # the real set keeps only users with at least 20 ratings

# Tuned together so that, at the default size, a rank-10 factor model gets about
# twice popularity's Precision@10, popularity gets about five times random's, and
# the star histogram is close to the real one (mean 3.53, sd 1.13).
_N_FACTORS = 8
_LATENT_TASTE_STD = 0.7
_GENRE_TASTE_WEIGHT = 0.6
_ZIPF_EXPONENT = 1.0
_CHOICE_TEMPERATURE = 0.4
_GLOBAL_MEAN = 3.5
_RATING_NOISE = 0.85
_USER_BIAS_STD = 0.4
_USER_CHUNK = 1024  # fixed, so the random stream (and the output) never depends on memory

_AGE_GROUP_EDGES = [25, 35, 50]  # -> four groups: <25, 25-34, 35-49, 50+


def generate_movielens(
    out_dir: str | Path,
    n_users: int = 600,
    n_items: int = 400,
    mean_ratings_per_user: int = 50,
    seed: int = 42,
) -> dict[str, int]:
    """Write u.data, u.item, u.user, u.genre, u.occupation and u.info into out_dir.

    Returns the counts {"users", "items", "ratings"} that u.info also records.
    """
    _validate_sizes(n_users, n_items, mean_ratings_per_user)
    rng = np.random.default_rng(seed)
    items = _make_items(rng, n_items)
    users = _make_users(rng, n_users)
    ratings = _make_ratings(rng, users, items, mean_ratings_per_user)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_lines(out / "u.data", _rating_lines(ratings), "ascii")
    _write_lines(out / "u.item", _item_lines(items), "latin-1")
    _write_lines(out / "u.user", _user_lines(users), "ascii")
    _write_lines(out / "u.genre", [f"{name}|{i}" for i, name in enumerate(GENRES)], "ascii")
    _write_lines(out / "u.occupation", OCCUPATIONS, "ascii")
    counts = {"users": n_users, "items": n_items, "ratings": len(ratings["user"])}
    _write_lines(out / "u.info", [f"{n} {name}" for name, n in counts.items()], "ascii")
    return counts


def _validate_sizes(n_users: int, n_items: int, mean_ratings_per_user: int) -> None:
    if n_users < 1:
        raise ValueError(f"n_users must be positive, got {n_users}")
    if n_items < 2 * MIN_RATINGS_PER_USER:
        raise ValueError(f"n_items must be at least {2 * MIN_RATINGS_PER_USER}, got {n_items}")
    if mean_ratings_per_user < MIN_RATINGS_PER_USER:
        raise ValueError(f"mean_ratings_per_user must be at least {MIN_RATINGS_PER_USER}")


# ----------------------------------------------------------------------------- items


def _make_items(rng: np.random.Generator, n_items: int) -> dict:
    genres = _sample_item_genres(rng, n_items)
    log_popularity = _zipf_log_popularity(rng, n_items)
    titles, years = _make_titles(rng, n_items)
    return {
        "genres": genres,
        "factors": rng.normal(0.0, _LATENT_TASTE_STD / np.sqrt(_N_FACTORS), (n_items, _N_FACTORS)),
        "log_popularity": log_popularity,
        # Popular films are rated a little higher in the real data too.
        "bias": 0.15 * _standardise(log_popularity) + rng.normal(0.0, 0.3, n_items),
        "title": titles,
        "release_date": [_release_date(rng, year) for year in years],
    }


def _sample_item_genres(rng: np.random.Generator, n_items: int) -> np.ndarray:
    n_genres = rng.choice([1, 2, 3], size=n_items, p=[0.5, 0.35, 0.15])
    log_weights = np.broadcast_to(np.log(_GENRE_FREQUENCY), (n_items, len(GENRES)))
    order = _weighted_order_without_replacement(rng, log_weights, 3)
    flags = np.zeros((n_items, len(GENRES)), dtype=np.int8)
    taken = np.arange(order.shape[1]) < n_genres[:, None]
    flags[np.nonzero(taken)[0], order[taken]] = 1
    # In the real file "unknown" never combines with another genre.
    unknown = flags[:, 0] == 1
    flags[unknown] = 0
    flags[unknown, 0] = 1
    return flags


def _zipf_log_popularity(rng: np.random.Generator, n_items: int) -> np.ndarray:
    # Ranks are shuffled so popularity is unrelated to item id, as in the real set.
    rank = rng.permutation(n_items) + 1
    return -_ZIPF_EXPONENT * np.log(rank)


def _make_titles(rng: np.random.Generator, n_items: int) -> tuple[list[str], list[int]]:
    n_foreign = max(1, round(_NON_ASCII_TITLE_SHARE * n_items))
    foreign = set(rng.choice(n_items, size=n_foreign, replace=False).tolist())
    titles: list[str] = []
    years: list[int] = []
    seen: set[str] = set()
    for item in range(n_items):
        while True:
            year = _release_year(rng)
            name = _foreign_name(rng) if item in foreign else _english_name(rng)
            title = f"{name} ({year})"
            if title not in seen:
                break
        seen.add(title)
        titles.append(title)
        years.append(year)
    return titles, years


def _release_year(rng: np.random.Generator) -> int:
    # ML-100K is dominated by mid-90s releases with a long tail back to the 1920s.
    return int(max(1922, 1998 - np.floor(rng.exponential(5.0))))


def _english_name(rng: np.random.Generator) -> str:
    adjective = _ADJECTIVES[rng.integers(len(_ADJECTIVES))]
    noun, other = (_NOUNS[i] for i in rng.choice(len(_NOUNS), size=2, replace=False))
    name = _NAMES[rng.integers(len(_NAMES))]
    patterns = [
        f"{adjective} {noun}, The",
        f"{adjective} {noun}",
        f"{noun} of the {other}",
        f"{name}'s {noun}",
        f"{noun} in the {other}, A",
    ]
    return patterns[rng.integers(len(patterns))]


def _foreign_name(rng: np.random.Generator) -> str:
    word = _FOREIGN_WORDS[rng.integers(len(_FOREIGN_WORDS))]
    noun = _NOUNS[rng.integers(len(_NOUNS))]
    return f"{word} {noun}" if rng.random() < 0.5 else f"{noun} of {word}, The"


def _release_date(rng: np.random.Generator, year: int) -> str:
    # Old films in the real file mostly carry 01-Jan of their year; recent ones a real day.
    if year < 1993:
        return f"01-Jan-{year}"
    last_month = 3 if year == 1998 else 12
    month = _MONTHS[rng.integers(last_month)]
    return f"{rng.integers(1, 29):02d}-{month}-{year}"


# ----------------------------------------------------------------------------- users


def _make_users(rng: np.random.Generator, n_users: int) -> dict[str, np.ndarray]:
    age = _sample_ages(rng, n_users)
    is_female = rng.random(n_users) < 0.29  # the real set is 71% male
    segment = np.searchsorted(_AGE_GROUP_EDGES, age, side="right") * 2 + is_female
    segment_factors = rng.normal(0.0, 0.6, (2 * (len(_AGE_GROUP_EDGES) + 1), _N_FACTORS))
    individual_genre_taste = rng.normal(0.0, 0.5, (n_users, len(GENRES)))
    return {
        "age": age,
        "gender": np.where(is_female, "F", "M"),
        "occupation": _sample_occupations(rng, age),
        "zip": rng.integers(0, 100_000, n_users),
        "genre_preference": _segment_genre_tilt(age, is_female) + individual_genre_taste,
        # Segment centroid plus a larger individual part: demographics help, history helps more.
        "factors": segment_factors[segment] + rng.normal(0.0, 1.0, (n_users, _N_FACTORS)),
        "bias": rng.normal(0.0, _USER_BIAS_STD, n_users),
    }


def _sample_ages(rng: np.random.Generator, n_users: int) -> np.ndarray:
    adult = 18 + rng.gamma(2.0, 8.0, n_users)
    child = rng.uniform(7, 18, n_users)
    return np.clip(np.where(rng.random(n_users) < 0.05, child, adult), 7, 73).astype(int)


def _sample_occupations(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    weights = np.tile(_OCCUPATION_FREQUENCY, (len(age), 1))
    student, retired = OCCUPATIONS.index("student"), OCCUPATIONS.index("retired")
    # Keep occupations plausible for the age: children are students, few under 50 are retired.
    weights[age < 18] = 0.0
    weights[age < 18, student] = 1.0
    weights[age >= 30, student] *= 0.1
    weights[age < 50, retired] = 0.0
    weights[age >= 60, retired] *= 20.0
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    choice = _weighted_order_without_replacement(rng, log_weights, 1)[:, 0]
    return np.array(OCCUPATIONS)[choice]


def _segment_genre_tilt(age: np.ndarray, is_female: np.ndarray) -> np.ndarray:
    """Shared genre leanings by gender and age, roughly as audience studies report them."""
    g = {name: i for i, name in enumerate(GENRES)}
    tilt = np.zeros((len(age), len(GENRES)))
    for name, male_lean in [("Action", 0.6), ("Sci-Fi", 0.6), ("War", 0.5), ("Western", 0.4),
                            ("Horror", 0.3), ("Romance", -0.6), ("Musical", -0.5), ("Children's", -0.3)]:  # fmt: skip
        tilt[:, g[name]] += np.where(is_female, -male_lean, male_lean)
    young, old = age < 25, age >= 45
    for name, young_lean in [("Comedy", 0.4), ("Horror", 0.5), ("Animation", 0.4), ("Action", 0.3),
                             ("Drama", -0.4), ("Film-Noir", -0.6), ("Western", -0.4), ("Mystery", -0.3)]:  # fmt: skip
        tilt[young, g[name]] += young_lean
        tilt[old, g[name]] -= young_lean
    return tilt


# ----------------------------------------------------------------------------- ratings


def _make_ratings(
    rng: np.random.Generator, users: dict, items: dict, mean_ratings_per_user: int
) -> dict[str, np.ndarray]:
    n_users = len(users["bias"])
    n_items = len(items["bias"])
    n_ratings = _ratings_per_user(rng, n_users, n_items, mean_ratings_per_user)
    genre_share = _GENRE_TASTE_WEIGHT * items["genres"] / items["genres"].sum(axis=1, keepdims=True)

    parts = []
    for start in range(0, n_users, _USER_CHUNK):
        chunk = slice(start, min(start + _USER_CHUNK, n_users))
        genre_affinity = users["genre_preference"][chunk] @ genre_share.T
        affinity = genre_affinity + users["factors"][chunk] @ items["factors"].T
        chosen = _choose_items(rng, affinity, items["log_popularity"], n_ratings[chunk])
        user_idx = np.repeat(np.arange(chunk.start, chunk.stop), n_ratings[chunk])
        picked_affinity = affinity[user_idx - chunk.start, chosen]
        parts.append((user_idx, chosen, picked_affinity))

    user_idx, item_idx, affinity = (np.concatenate(p) for p in zip(*parts, strict=True))
    relative_affinity = affinity - _per_user_mean(affinity, user_idx, n_users)[user_idx]
    stars = _stars(rng, users["bias"][user_idx] + items["bias"][item_idx] + relative_affinity)
    timestamps = _timestamps(rng, n_ratings)
    # The real u.data is in no particular order; loaders must not rely on sorting.
    order = rng.permutation(len(user_idx))
    return {
        "user": user_idx[order] + 1,
        "item": item_idx[order] + 1,
        "rating": stars[order],
        "timestamp": timestamps[order],
    }


def _per_user_mean(values: np.ndarray, user_idx: np.ndarray, n_users: int) -> np.ndarray:
    """Mean over each user's picks.

    Picks are biased towards high affinity, and more so the larger the catalogue.
    Rating affinity relative to the user's own picks keeps the star distribution
    near the real one at every size; generosity stays in the user bias.
    """
    counts = np.maximum(np.bincount(user_idx, minlength=n_users), 1)
    return np.bincount(user_idx, weights=values, minlength=n_users) / counts


def _ratings_per_user(rng: np.random.Generator, n_users: int, n_items: int, mean: int) -> np.ndarray:
    # Heavy-tailed like the real set: most users rate a few dozen films, a few rate hundreds.
    excess_mean = mean - MIN_RATINGS_PER_USER
    if excess_mean <= 0:
        return np.full(n_users, MIN_RATINGS_PER_USER)
    sigma = 1.0
    excess = rng.lognormal(np.log(excess_mean) - sigma**2 / 2, sigma, n_users)
    # Nobody rates more than half the catalogue, so every user keeps unseen items to recommend.
    cap = max(MIN_RATINGS_PER_USER, n_items // 2)
    return np.minimum(MIN_RATINGS_PER_USER + np.round(excess), cap).astype(int)


def _choose_items(
    rng: np.random.Generator, affinity: np.ndarray, log_popularity: np.ndarray, n_ratings: np.ndarray
) -> np.ndarray:
    """Item indices per user, concatenated, drawn without replacement with weight pop * exp(aff / T)."""
    order = _weighted_order_without_replacement(
        rng, log_popularity + affinity / _CHOICE_TEMPERATURE, n_ratings.max()
    )
    keep = np.arange(order.shape[1]) < n_ratings[:, None]
    return order[keep]


def _weighted_order_without_replacement(
    rng: np.random.Generator, log_weights: np.ndarray, k: int
) -> np.ndarray:
    """First k indices per row of a weighted draw without replacement (Gumbel-top-k).

    Adding Gumbel noise to log-weights and sorting is exactly sequential sampling
    without replacement, but vectorised over all rows at once.
    """
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    top_keys = np.take_along_axis(keys, top, axis=1)
    return np.take_along_axis(top, np.argsort(-top_keys, axis=1, kind="stable"), axis=1)


def _stars(rng: np.random.Generator, signal: np.ndarray) -> np.ndarray:
    raw = _GLOBAL_MEAN + signal + rng.normal(0.0, _RATING_NOISE, len(signal))
    return np.rint(np.clip(raw, 1, 5)).astype(int)


def _timestamps(rng: np.random.Generator, n_ratings: np.ndarray) -> np.ndarray:
    """Each user rates in a few bursty sessions spread over their active weeks."""
    n_users = len(n_ratings)
    n_sessions = 1 + rng.poisson(n_ratings / 30)
    active_span = np.minimum(rng.exponential(30 * _DAY, n_users), 120 * _DAY)
    # Start early enough that the whole history fits before the collection ended.
    first_seen = _FIRST_TIMESTAMP + rng.random(n_users) * (_COLLECTION_SPAN - active_span - _SESSION_LENGTH)

    session_user = np.repeat(np.arange(n_users), n_sessions)
    session_offset = rng.random(len(session_user)) * active_span[session_user]
    first_session = np.concatenate([[0], np.cumsum(n_sessions)[:-1]])
    session_offset[first_session] = 0.0  # the user's first visit opens their history
    session_start = first_seen[session_user] + session_offset

    rating_user = np.repeat(np.arange(n_users), n_ratings)
    nth_session = (rng.random(len(rating_user)) * n_sessions[rating_user]).astype(int)
    session = first_session[rating_user] + nth_session
    within_session = rng.random(len(rating_user)) * _SESSION_LENGTH
    return (session_start[session] + within_session).astype(np.int64)


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


# ----------------------------------------------------------------------------- writing


def _rating_lines(ratings: dict[str, np.ndarray]) -> list[str]:
    columns = zip(ratings["user"], ratings["item"], ratings["rating"], ratings["timestamp"], strict=True)
    return [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in columns]


def _item_lines(items: dict) -> list[str]:
    lines = []
    for idx, (title, date) in enumerate(zip(items["title"], items["release_date"], strict=True)):
        url = "http://us.imdb.com/M/title-exact?" + quote(title, safe=",()'", encoding="latin-1")
        flags = "|".join(str(f) for f in items["genres"][idx])
        lines.append(f"{idx + 1}|{title}|{date}||{url}|{flags}")
    return lines


def _user_lines(users: dict[str, np.ndarray]) -> list[str]:
    columns = zip(users["age"], users["gender"], users["occupation"], users["zip"], strict=True)
    return [
        f"{idx + 1}|{age}|{gender}|{occ}|{zip_code:05d}"
        for idx, (age, gender, occ, zip_code) in enumerate(columns)
    ]


def _write_lines(path: Path, lines: list[str], encoding: str) -> None:
    path.write_bytes("".join(line + "\n" for line in lines).encode(encoding))
