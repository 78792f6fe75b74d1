"""Deterministic synthetic TV viewing logs, with an optional channel catalogue.

``viewing.csv`` has one row per household, channel, date and hour watched:

    channel_id,cellid,program_date,program_hour,watch_time_portrait

``channel_id`` is a string id (``CH017``), ``cellid`` the household's 10-digit
numeric id kept as text (many exceed int32 on purpose, as the real ids do, so a
loader that infers int32 breaks here rather than in production), ``program_date``
is ``YYYY-MM-DD``, ``program_hour`` 0..23 and ``watch_time_portrait`` the seconds
watched in that hour (1..3600). Rows are sorted by date, hour, household and channel.

``channels.csv`` (``channel_id,channel_name,genre``) lists every channel once. It
is written with the csv module (RFC 4180 quoting, ``\\n`` line ends) and some
names contain commas or non-ASCII letters ("Télé Sport"), so a loader has to
parse quoted fields and read UTF-8 to get it right.

Random viewing would leave a recommender nothing to learn, so the logs come from
an explicit taste model:

* channels have a genre (news, sports, kids, movies, ...) and a Zipf-like
  popularity;
* households strongly prefer one to three genres and have a few favourite
  channels, drawn from popular channels of the genres they like, which they
  return to day after day and watch for longer;
* a household is active on most days, watches a few hours each active day,
  mostly in prime time (19-23), and occasionally zaps to a second channel; the
  channel is drawn with weight popularity x genre taste x favourite x a genre's
  fit to the hour (kids in the morning and afternoon, news at breakfast and
  dinner, films late);
* seconds watched are log-normal, split across channels zapped within the
  hour and capped at the hour's 3600.

Everything comes from one numpy Generator seeded once, drawn in fixed-size
household chunks, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import numpy as np

VIEWING_HEADER = "channel_id,cellid,program_date,program_hour,watch_time_portrait"
CATALOGUE_HEADER = "channel_id,channel_name,genre"

GENRES = [
    "news", "sports", "kids", "movies", "series", "music", "documentary", "entertainment",
    "lifestyle", "regional",
]  # fmt: skip
# Relative number of channels per genre in a typical cable line-up.
_GENRE_FREQUENCY = np.array([10, 10, 8, 12, 12, 8, 8, 14, 10, 8], dtype=float)

# Name stems per genre: plain ones, ones with commas (quoted in the CSV) and non-ASCII ones.
_NAMES = {
    "news": (["News 24", "World Report", "Info Direct", "City News", "Headline Now"],
             ["News, Weather & Traffic", "Politics, Business & Markets"],
             ["Télé Info", "Nachrichten Für Alle", "Новости 24"]),
    "sports": (["Sport 1", "Arena Sports", "Goal TV", "Extreme Sports", "Racing Live"],
               ["Football, Tennis & More", "Fight, Ring & Cage"],
               ["Télé Sport", "Fútbol Total", "Sport Ärena"]),
    "kids": (["Kids Zone", "Cartoon Planet", "Toddler TV", "Teen Club"],
             ["Toys, Games & Cartoons"],
             ["Niños Club", "Dessins Animés"]),
    "movies": (["Cinema One", "Film Noir Channel", "Blockbuster TV", "Indie Films", "Classic Movies"],
               ["Movies, Action & Thrills", "Romance, Comedy & Drama"],
               ["Ciné Classiques", "Película Max"]),
    "series": (["Series Max", "Binge TV", "Crime Time", "Sitcom Central", "Drama Plus"],
               ["Drama, Crime & Mystery", "Soaps, Sagas & Sitcoms"],
               ["Séries Plus", "Serien Können"]),
    "music": (["Music Hits", "Jazz Lounge", "Country Roads", "Classic FM TV"],
              ["Rock, Pop & Soul", "Hip-Hop, R&B & Rap"],
              ["Música Latina", "Chansons Françaises"]),
    "documentary": (["Discovery World", "History Now", "Planet Wild", "Science Channel"],
                    ["Nature, Science & History"],
                    ["Doku Welt Österreich", "Découverte"]),
    "entertainment": (["Fun TV", "Comedy Plus", "Reality One", "Quiz Time", "Late Show TV"],
                      ["Talk, Games & Shows", "Comedy, Quiz & Chat"],
                      ["Diversão TV", "Spaß Am Abend"]),
    "lifestyle": (["Food & Travel", "Home Style", "Fashion TV", "Health Today"],
                  ["Home, Garden & Style", "Food, Wine & Travel"],
                  ["Maison Déco", "Cocina Fácil"]),
    "regional": (["Regio Nord", "Valley TV", "Coast Channel", "Metro One"],
                 ["North, East & Coast"],
                 ["Région Sud", "Bayern Süd"]),
}  # fmt: skip
_COMMA_NAME_SHARE = 0.15
_NON_ASCII_NAME_SHARE = 0.10

# Region prefixes of the household ids. 2147 straddles int32's 2147483647 on purpose.
_CELL_PREFIXES = np.array([1203, 2147, 4410, 7730], dtype=np.int64)
_CELL_SUFFIX_SPACE = 1_000_000

# Share of viewing by hour of day, shaped like a TV audience: a breakfast bump, a
# daytime plateau and a prime time (19-23) that dominates.
_HOURLY_VIEWING = np.array(
    [3, 1.5, 0.8, 0.5, 0.5, 0.8, 2, 4, 4, 3, 3, 3, 4, 4, 3.5, 3.5, 4, 5, 7, 12, 16, 16, 13, 8]
)
# How much each genre's audience over- or under-shoots its usual share at each hour (log scale).
_GENRE_HOUR_TILT = {
    "news": {6: 0.8, 7: 0.8, 8: 0.6, 12: 0.5, 13: 0.4, 18: 0.4, 19: 0.7, 20: 0.4},
    "kids": {6: 0.8, 7: 1.0, 8: 0.8, 15: 0.8, 16: 1.0, 17: 1.0, 18: 0.5, 20: -1.0, 21: -1.5, 22: -2.0,
             23: -2.0, 0: -2.0},
    "movies": {20: 0.4, 21: 0.6, 22: 0.6, 23: 0.6, 0: 0.5},
    "sports": {18: 0.3, 19: 0.4, 20: 0.5, 21: 0.4},
    "series": {20: 0.3, 21: 0.4, 22: 0.3},
    "music": {10: 0.4, 11: 0.4, 14: 0.3, 15: 0.3},
}  # fmt: skip

# Tuned together so that, at the default size, a household's favourite genres and channels
# predict its viewing on held-out days far better than channel popularity, while popularity
# is itself a clear signal; about 15k-25k rows for 600 households over a week.
_ZIPF_EXPONENT = 0.8
_PREFERRED_GENRE_BOOST = 3.5
_FAVOURITE_BOOST = 2.5
_PREFERRED_GENRES = ([1, 2, 3], [0.3, 0.45, 0.25])
_FAVOURITES = ([2, 3, 4, 5], [0.25, 0.35, 0.25, 0.15])
_FAVOURITE_WATCH_FACTOR = 1.5
_MEAN_EXTRA_HOURS = 3.0  # hours watched on an active day: 1 + Poisson(household rate)
_ZAP_PROBABILITY = 0.3  # chance of watching a second (and again a third) channel in one hour
_MAX_CHANNELS_PER_HOUR = 3
_MEDIAN_WATCH_SECONDS = 1200.0
_WATCH_SIGMA = 0.9
_HOUSEHOLD_CHUNK = 1024  # fixed, so the random stream (and the output) never depends on memory
_MIN_CHANNELS = 3


def generate_tv(
    out_dir: str | Path,
    n_households: int = 600,
    n_channels: int = 80,
    seed: int = 42,
    days: int = 7,
    start: str = "2024-03-01",
    with_catalogue: bool = True,
) -> dict[str, int]:
    """Write viewing.csv (and channels.csv unless with_catalogue is False) into out_dir.

    Returns {"households", "channels", "rows"}: the sizes asked for and viewing.csv's row count.
    """
    first_day = _validate(n_households, n_channels, days, start)
    rng = np.random.default_rng(seed)
    channels = _make_channels(rng, n_channels)
    households = _make_households(rng, n_households, channels)
    viewing = _simulate_viewing(rng, households, channels, days)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dates = [(first_day + timedelta(days=d)).isoformat() for d in range(days)]
    cell_ids = households["cellid"].tolist()
    channel_ids = channels["channel_id"]
    lines = [VIEWING_HEADER]
    for channel, household, day, hour, seconds in zip(
        viewing["channel"].tolist(), viewing["household"].tolist(), viewing["day"].tolist(),
        viewing["hour"].tolist(), viewing["seconds"].tolist(), strict=True,
    ):  # fmt: skip
        lines.append(f"{channel_ids[channel]},{cell_ids[household]},{dates[day]},{hour},{seconds}")
    (out / "viewing.csv").write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    if with_catalogue:
        (out / "channels.csv").write_bytes(_catalogue_csv(channels).encode("utf-8"))
    return {"households": n_households, "channels": n_channels, "rows": len(lines) - 1}


def _validate(n_households: int, n_channels: int, days: int, start: str) -> date:
    if n_households < 1:
        raise ValueError(f"n_households must be positive, got {n_households}")
    if n_channels < _MIN_CHANNELS:
        raise ValueError(f"n_channels must be at least {_MIN_CHANNELS}, got {n_channels}")
    if days < 1:
        raise ValueError(f"days must be positive, got {days}")
    try:
        return date.fromisoformat(start)
    except (TypeError, ValueError) as err:
        raise ValueError(f"start must be a date like 2024-03-01, got {start!r}") from err


# ----------------------------------------------------------------------------- channels


def _make_channels(rng: np.random.Generator, n_channels: int) -> dict:
    # Every genre gets a channel while there are enough to go round; the rest follow the line-up.
    n_fixed = min(n_channels, len(GENRES))
    fixed = rng.permutation(len(GENRES))[:n_fixed]
    rest = rng.choice(len(GENRES), size=n_channels - n_fixed, p=_GENRE_FREQUENCY / _GENRE_FREQUENCY.sum())
    genre = rng.permutation(np.concatenate([fixed, rest]))
    width = max(3, len(str(n_channels)))
    return {
        "channel_id": [f"CH{i + 1:0{width}d}" for i in range(n_channels)],
        "genre": genre,
        # Ranks are shuffled so popularity is unrelated to the channel number.
        "log_popularity": -_ZIPF_EXPONENT * np.log(rng.permutation(n_channels) + 1),
        "name": _channel_names(rng, genre),
    }


def _channel_names(rng: np.random.Generator, genre: np.ndarray) -> list[str]:
    n = len(genre)
    kind = rng.choice(3, size=n, p=[1 - _COMMA_NAME_SHARE - _NON_ASCII_NAME_SHARE,
                                    _COMMA_NAME_SHARE, _NON_ASCII_NAME_SHARE])  # fmt: skip
    # At least one name of each awkward kind, so every catalogue exercises quoting and UTF-8.
    forced = rng.choice(n, size=2, replace=False)
    kind[forced[0]], kind[forced[1]] = 1, 2
    order = {(g, k): rng.permutation(len(_NAMES[g][k])).tolist() for g in GENRES for k in range(3)}
    used: dict[tuple[str, int], int] = {}
    names = []
    for g, k in zip(genre.tolist(), kind.tolist(), strict=True):
        stems = _NAMES[GENRES[g]][k]
        nth = used.get((GENRES[g], k), 0)
        used[(GENRES[g], k)] = nth + 1
        stem = stems[order[(GENRES[g], k)][nth % len(stems)]]
        # Stems run out in big line-ups; numbering keeps every name unique, as on a real EPG.
        names.append(stem if nth < len(stems) else f"{stem} {nth // len(stems) + 1}")
    return names


# ----------------------------------------------------------------------------- households


def _make_households(rng: np.random.Generator, n_households: int, channels: dict) -> dict:
    genre_onehot = np.eye(len(GENRES))[channels["genre"]]
    counts, shares = _PREFERRED_GENRES
    n_preferred = rng.choice(counts, size=n_households, p=shares)
    genre_base = np.broadcast_to(np.log(_GENRE_FREQUENCY), (n_households, len(GENRES)))
    preferred = _top_k_mask(rng, genre_base, n_preferred)
    genre_taste = _PREFERRED_GENRE_BOOST * preferred + rng.normal(0.0, 0.5, (n_households, len(GENRES)))
    channel_taste = genre_taste @ genre_onehot.T

    # Favourites come from popular channels in the genres the household likes.
    counts, shares = _FAVOURITES
    n_favourites = np.minimum(rng.choice(counts, size=n_households, p=shares), len(channels["genre"]))
    favourite = _top_k_mask(rng, channels["log_popularity"] + channel_taste, n_favourites)

    code = rng.choice(len(_CELL_PREFIXES) * _CELL_SUFFIX_SPACE, size=n_households, replace=False)
    cellid = _CELL_PREFIXES[code // _CELL_SUFFIX_SPACE] * _CELL_SUFFIX_SPACE + code % _CELL_SUFFIX_SPACE
    return {
        "cellid": cellid,
        "channel_log_weight": channel_taste + _FAVOURITE_BOOST * favourite,
        "favourite": favourite.astype(bool),
        # Some households watch nearly every day, some only now and then.
        "active_share": rng.beta(4.0, 1.5, n_households),
        "hours_rate": _MEAN_EXTRA_HOURS * rng.lognormal(-(0.5**2) / 2, 0.5, n_households),
        # A little personal shift of the daily rhythm: early risers, night owls.
        "hour_taste": rng.normal(0.0, 0.4, (n_households, 24)),
    }


def _top_k_mask(rng: np.random.Generator, log_weights: np.ndarray, k: np.ndarray) -> np.ndarray:
    """1.0 at each row's first k[row] indices of a weighted draw without replacement (Gumbel-top-k)."""
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    order = np.argsort(-keys, axis=1, kind="stable")
    mask = np.zeros(log_weights.shape)
    taken = np.arange(order.shape[1]) < k[:, None]
    mask[np.nonzero(taken)[0], order[taken]] = 1.0
    return mask


# ----------------------------------------------------------------------------- viewing


def _simulate_viewing(
    rng: np.random.Generator, households: dict, channels: dict, days: int
) -> dict[str, np.ndarray]:
    genre_hour = _genre_hour_tilt()[:, channels["genre"]]  # hour x channel
    parts = []
    n_households = len(households["cellid"])
    for start in range(0, n_households, _HOUSEHOLD_CHUNK):
        chunk = np.arange(start, min(start + _HOUSEHOLD_CHUNK, n_households))
        parts.append(_viewing_chunk(rng, households, channels["log_popularity"], genre_hour, chunk, days))
    viewing = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    # Log order: by date, hour, household, channel (the chunks are already disjoint in household).
    order = np.lexsort((viewing["channel"], households["cellid"][viewing["household"]],
                        viewing["hour"], viewing["day"]))  # fmt: skip
    return {key: value[order] for key, value in viewing.items()}


def _genre_hour_tilt() -> np.ndarray:
    tilt = np.zeros((24, len(GENRES)))
    for genre, by_hour in _GENRE_HOUR_TILT.items():
        for hour, value in by_hour.items():
            tilt[hour, GENRES.index(genre)] = value
    return tilt


def _viewing_chunk(
    rng: np.random.Generator,
    households: dict,
    log_popularity: np.ndarray,
    genre_hour: np.ndarray,
    chunk: np.ndarray,
    days: int,
) -> dict[str, np.ndarray]:
    n = len(chunk)
    active = rng.random((n, days)) < households["active_share"][chunk, None]
    # Everyone in the panel watches at least once, or they would not be in the log.
    active[np.arange(n), rng.integers(0, days, n)] = True
    day_household, day = np.nonzero(active)  # row-major: household, then day
    n_hours = np.minimum(1 + rng.poisson(households["hours_rate"][chunk][day_household]), 24)
    hour_weights = np.log(_HOURLY_VIEWING) + households["hour_taste"][chunk][day_household]
    hour_order = np.argsort(-(hour_weights + rng.gumbel(size=hour_weights.shape)), axis=1, kind="stable")
    taken = np.arange(24) < n_hours[:, None]
    slot_row, slot_rank = np.nonzero(taken)
    slot_hour = hour_order[slot_row, slot_rank]
    slot_household = day_household[slot_row]
    slot_day = day[slot_row]

    n_slots = len(slot_hour)
    zaps = rng.random((n_slots, _MAX_CHANNELS_PER_HOUR - 1)) < _ZAP_PROBABILITY
    n_channels_watched = 1 + np.cumprod(zaps, axis=1).sum(axis=1)
    channel_weights = (
        log_popularity + households["channel_log_weight"][chunk][slot_household] + genre_hour[slot_hour]
    )
    channel_order = np.argsort(
        -(channel_weights + rng.gumbel(size=channel_weights.shape)), axis=1, kind="stable"
    )[:, :_MAX_CHANNELS_PER_HOUR]
    taken = np.arange(_MAX_CHANNELS_PER_HOUR) < n_channels_watched[:, None]
    row_slot, row_rank = np.nonzero(taken)
    row_channel = channel_order[row_slot, row_rank]
    row_household = chunk[slot_household[row_slot]]

    # One draw of time spent per hour, then split across the channels zapped between, so a
    # household never watches more than the hour; favourites hold attention longer.
    favourite = households["favourite"][row_household, row_channel]
    main_is_favourite = np.zeros(n_slots, dtype=bool)
    main_is_favourite[row_slot[row_rank == 0]] = favourite[row_rank == 0]
    median = _MEDIAN_WATCH_SECONDS * np.where(main_is_favourite, _FAVOURITE_WATCH_FACTOR, 1.0)
    hour_total = np.clip(np.ceil(median * rng.lognormal(0.0, _WATCH_SIGMA, n_slots)), 1, 3600)
    hour_total = np.maximum(hour_total, n_channels_watched)
    attention = rng.gamma(1.0, 1.0, len(row_slot)) * np.where(favourite, _FAVOURITE_WATCH_FACTOR, 1.0)
    share = attention / np.bincount(row_slot, weights=attention, minlength=n_slots)[row_slot]
    # At least a second each, and never more than the hour's total between them.
    extra = hour_total[row_slot] - n_channels_watched[row_slot]
    seconds = 1 + np.floor(extra * share)
    return {
        "household": row_household,
        "channel": row_channel,
        "day": slot_day[row_slot],
        "hour": slot_hour[row_slot],
        "seconds": seconds.astype(np.int64),
    }


# ----------------------------------------------------------------------------- catalogue


def _catalogue_csv(channels: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(CATALOGUE_HEADER.split(","))
    for channel_id, name, genre in zip(
        channels["channel_id"], channels["name"], channels["genre"], strict=True
    ):
        writer.writerow([channel_id, name, GENRES[genre]])
    return buffer.getvalue()
