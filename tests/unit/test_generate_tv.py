"""The synthetic TV viewing logs: byte-for-byte reproducible, in the expected layout, with a
catalogue that needs real CSV parsing, and with taste structure a recommender can learn."""

import csv
import re
from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest

from recflow.generate.tv import generate_tv

N_HOUSEHOLDS, N_CHANNELS, SEED = 300, 80, 7
VIEWING_HEADER = "channel_id,cellid,program_date,program_hour,watch_time_portrait"
CATALOGUE_HEADER = "channel_id,channel_name,genre"
INT32_MAX = 2**31 - 1
DATES = {(date(2024, 3, 1) + timedelta(days=d)).isoformat() for d in range(7)}


def _generate(out, **kwargs):
    args = {"n_households": N_HOUSEHOLDS, "n_channels": N_CHANNELS, "seed": SEED} | kwargs
    return generate_tv(out, **args)


def _read_csv(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("tv")
    counts = _generate(out)
    return out, counts, _read_csv(out / "viewing.csv"), _read_csv(out / "channels.csv")


# ----------------------------------------------------------------------------- determinism


def test_same_arguments_give_identical_bytes_and_another_seed_differs(tmp_path):
    for sub, seed in (("a", 3), ("b", 3), ("c", 4)):
        _generate(tmp_path / sub, seed=seed)
    for name in ("viewing.csv", "channels.csv"):
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), name
        assert first != (tmp_path / "c" / name).read_bytes(), name


def test_catalogue_is_optional_and_does_not_change_the_viewing_log(tmp_path):
    counts = _generate(tmp_path / "bare", with_catalogue=False)
    _generate(tmp_path / "full")
    assert [p.name for p in (tmp_path / "bare").iterdir()] == ["viewing.csv"]
    assert (tmp_path / "bare" / "viewing.csv").read_bytes() == (
        tmp_path / "full" / "viewing.csv"
    ).read_bytes()
    assert counts["rows"] == len(_read_csv(tmp_path / "bare" / "viewing.csv"))


@pytest.mark.parametrize("bad", [{"n_households": 0}, {"n_channels": 0}, {"days": 0}, {"start": "March 1st"}])
def test_rejects_bad_arguments(tmp_path, bad):
    with pytest.raises(ValueError):
        _generate(tmp_path, **bad)


def test_default_size_fits_the_demo(tmp_path):
    counts = generate_tv(tmp_path, seed=1)
    assert counts["households"] == 600 and counts["channels"] == 80
    assert 15_000 <= counts["rows"] <= 40_000, counts


# ----------------------------------------------------------------------------- viewing.csv


def test_viewing_header_line_endings_and_counts(sample):
    out, counts, rows, _ = sample
    raw = (out / "viewing.csv").read_bytes()
    assert raw.startswith((VIEWING_HEADER + "\n").encode())
    assert b"\r" not in raw
    assert counts == {"households": N_HOUSEHOLDS, "channels": N_CHANNELS, "rows": len(rows)}


def test_viewing_field_formats(sample):
    rows = sample[2]
    for r in rows:
        assert re.fullmatch(r"CH\d{3}", r["channel_id"]), r
        assert re.fullmatch(r"[1-9]\d{9}", r["cellid"]), r
        assert r["program_date"] in DATES, r
        assert re.fullmatch(r"\d{1,2}", r["program_hour"]) and 0 <= int(r["program_hour"]) <= 23, r
        assert re.fullmatch(r"[1-9]\d*", r["watch_time_portrait"]), r
        assert 1 <= int(r["watch_time_portrait"]) <= 3600, r
    cells = {int(r["cellid"]) for r in rows}
    assert len(cells) == N_HOUSEHOLDS, "every household in the panel watches something"
    assert any(c > INT32_MAX for c in cells) and any(c <= INT32_MAX for c in cells)


def test_one_row_per_household_channel_date_and_hour_in_log_order(sample):
    rows = sample[2]
    keys = [(r["program_date"], int(r["program_hour"]), int(r["cellid"]), r["channel_id"]) for r in rows]
    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys)
    assert {r["program_date"] for r in rows} == DATES


def test_a_household_never_watches_more_than_the_hour(sample):
    per_hour = Counter()
    for r in sample[2]:
        per_hour[(r["cellid"], r["program_date"], r["program_hour"])] += int(r["watch_time_portrait"])
    assert max(per_hour.values()) <= 3600
    rows_per_hour = Counter((r["cellid"], r["program_date"], r["program_hour"]) for r in sample[2])
    zapped = sum(n > 1 for n in rows_per_hour.values()) / len(rows_per_hour)
    assert 0.1 <= zapped <= 0.5, f"{zapped:.0%} of household-hours watch more than one channel"


def test_prime_time_dominates(sample):
    per_hour = Counter(int(r["program_hour"]) for r in sample[2])
    prime = sum(per_hour[h] for h in range(19, 24)) / 5
    other = sum(per_hour[h] for h in range(19)) / 19
    assert prime > 2.5 * other, f"prime time {prime:.0f} rows/hour vs {other:.0f} otherwise"


def test_watch_time_is_spread_out_and_sometimes_the_whole_hour(sample):
    seconds = sorted(int(r["watch_time_portrait"]) for r in sample[2])
    median = seconds[len(seconds) // 2]
    full_hour = sum(s == 3600 for s in seconds) / len(seconds)
    assert 300 <= median <= 2400, median
    assert seconds[len(seconds) // 10] < median / 2, "watch time should be long-tailed, not constant"
    assert 0.01 <= full_hour <= 0.2, full_hour


# ----------------------------------------------------------------------------- channels.csv


def test_catalogue_lists_every_channel_once_and_covers_the_log(sample):
    out, _, rows, catalogue = sample
    assert (out / "channels.csv").read_text(encoding="utf-8").startswith(CATALOGUE_HEADER + "\n")
    ids = [c["channel_id"] for c in catalogue]
    assert len(ids) == len(set(ids)) == N_CHANNELS
    assert {r["channel_id"] for r in rows} <= set(ids)
    assert all(set(c) == {"channel_id", "channel_name", "genre"} and c["channel_name"] for c in catalogue)
    assert len({c["channel_name"] for c in catalogue}) == N_CHANNELS, "channel names should be unique"
    assert len({c["genre"] for c in catalogue}) >= 8


def test_catalogue_needs_quoting_and_utf8(sample):
    out, _, _, catalogue = sample
    raw = (out / "channels.csv").read_bytes()
    assert b"\r" not in raw
    comma_names = [c["channel_name"] for c in catalogue if "," in c["channel_name"]]
    assert comma_names, "no name exercises quoting"
    for name in comma_names:
        assert f'"{name}"'.encode() in raw, name
    non_ascii = [c["channel_name"] for c in catalogue if not c["channel_name"].isascii()]
    assert non_ascii, "no name exercises UTF-8"
    with pytest.raises(UnicodeDecodeError):
        raw.decode("ascii")
    # A naive split on commas gets the quoted rows wrong; that is what the catalogue is for.
    naive = [line.split(",") for line in raw.decode("utf-8").splitlines()]
    assert any(len(fields) != 3 for fields in naive)


def test_a_tiny_line_up_still_has_a_quoted_and_a_non_ascii_name(tmp_path):
    generate_tv(tmp_path, n_households=5, n_channels=3, days=1)
    names = [c["channel_name"] for c in _read_csv(tmp_path / "channels.csv")]
    assert any("," in n for n in names) and any(not n.isascii() for n in names), names


# ----------------------------------------------------------------------------- taste structure


def test_channel_popularity_is_long_tailed(sample):
    per_channel = sorted(Counter(r["channel_id"] for r in sample[2]).values(), reverse=True)
    top_tenth_share = sum(per_channel[: N_CHANNELS // 10]) / sum(per_channel)
    assert top_tenth_share > 0.3, f"top 10% of channels hold only {top_tenth_share:.0%} of rows"


def test_households_return_to_their_own_favourite_channels_on_several_days(sample):
    days_per_pair = defaultdict(set)
    for r in sample[2]:
        days_per_pair[(r["cellid"], r["channel_id"])].add(r["program_date"])
    favourite = {}  # household -> (days on its most regular channel, that channel)
    for (cell, channel), watched in sorted(days_per_pair.items()):
        favourite[cell] = max(favourite.get(cell, (0, "")), (len(watched), channel))
    regulars = sum(n_days >= 3 for n_days, _ in favourite.values()) / len(favourite)
    assert regulars >= 0.85, f"only {regulars:.0%} of households watch some channel on 3+ days"
    # Favourites are personal: they are spread over many channels, not just the hit channel.
    favourites = Counter(channel for _, channel in favourite.values())
    assert len(favourites) >= N_CHANNELS / 3, favourites.most_common(5)
    assert favourites.most_common(1)[0][1] <= 0.3 * len(favourite), favourites.most_common(5)


def test_kids_channels_are_not_watched_late_at_night(sample):
    genre = {c["channel_id"]: c["genre"] for c in sample[3]}
    kids = Counter(int(r["program_hour"]) for r in sample[2] if genre[r["channel_id"]] == "kids")
    allx = Counter(int(r["program_hour"]) for r in sample[2])
    afternoon = sum(kids[h] for h in (15, 16, 17)) / sum(allx[h] for h in (15, 16, 17))
    late = sum(kids[h] for h in (21, 22, 23)) / sum(allx[h] for h in (21, 22, 23))
    assert afternoon > 3 * late, (afternoon, late)


def test_favourite_genre_predicts_held_out_days_better_than_popularity(sample):
    """Train on the first five days, hold out the last two. Recommend five channels either by
    popularity or, for each household, the most watched ones of its most watched genre; score the
    share of held-out household-channel pairs that the five cover."""
    _, _, rows, catalogue = sample
    genre = {c["channel_id"]: c["genre"] for c in catalogue}
    held_out_dates = sorted(DATES)[-2:]
    train = [r for r in rows if r["program_date"] not in held_out_dates]
    test_pairs = {(r["cellid"], r["channel_id"]) for r in rows if r["program_date"] in held_out_dates}

    popularity = Counter()
    taste = defaultdict(Counter)
    for r in train:
        popularity[r["channel_id"]] += int(r["watch_time_portrait"])
        taste[r["cellid"]][genre[r["channel_id"]]] += int(r["watch_time_portrait"])
    ranked = [c for c, _ in popularity.most_common()]
    global_top = set(ranked[:5])

    personal_hits = popular_hits = n = 0
    for cell, channel in test_pairs:
        if cell not in taste:
            continue
        favourite = taste[cell].most_common(1)[0][0]
        personal = [c for c in ranked if genre[c] == favourite]
        personal = (personal + [c for c in ranked if c not in personal])[:5]
        personal_hits += channel in personal
        popular_hits += channel in global_top
        n += 1

    figures = f"hit@5 favourite-genre={personal_hits / n:.3f} popularity={popular_hits / n:.3f}"
    assert n > N_HOUSEHOLDS, figures
    assert popular_hits > 0.1 * n, figures
    assert personal_hits >= 1.5 * popular_hits, figures
