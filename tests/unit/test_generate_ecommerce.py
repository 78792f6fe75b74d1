"""The synthetic e-commerce clickstream: byte-for-byte reproducible, in the real REES46 and
Retailrocket layouts, with a funnel in order and taste structure a recommender can learn."""

import csv
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime

import numpy as np
import pytest

from recflow.generate.ecommerce import generate_ecommerce

# A catalogue of the default size: the one whose taste structure the demo relies on.
N_USERS, N_ITEMS, SEED = 300, 400, 7
REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
RETAILROCKET_HEADER = "timestamp,visitorid,event,itemid,transactionid"
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# 2019-10-01 .. 2019-10-08 (exclusive), the default window of seven days.
WINDOW_MS = (1_569_888_000_000, 1_569_888_000_000 + 7 * 86_400_000)


def _generate(out, **kwargs):
    args = {"n_users": N_USERS, "n_items": N_ITEMS, "seed": SEED} | kwargs
    return generate_ecommerce(out, **args)


def _read_csv(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def rees46(tmp_path_factory):
    out = tmp_path_factory.mktemp("rees46")
    counts = _generate(out)
    return out, counts, _read_csv(out / "2019-Oct.csv")


@pytest.fixture(scope="module")
def retailrocket(tmp_path_factory):
    out = tmp_path_factory.mktemp("retailrocket")
    counts = _generate(out, layout="retailrocket")
    return out, counts, _read_csv(out / "events.csv")


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(("layout", "name"), [("rees46", "2019-Oct.csv"), ("retailrocket", "events.csv")])
def test_same_arguments_give_identical_bytes_and_another_seed_differs(tmp_path, layout, name):
    for sub, seed in (("a", 3), ("b", 3), ("c", 4)):
        _generate(tmp_path / sub, layout=layout, seed=seed)
    first = (tmp_path / "a" / name).read_bytes()
    assert first == (tmp_path / "b" / name).read_bytes()
    assert first != (tmp_path / "c" / name).read_bytes()


def test_writes_one_file_named_after_the_starting_month_and_counts_it(tmp_path):
    counts = _generate(tmp_path / "feb", start="2020-02-27", days=3)
    assert [p.name for p in (tmp_path / "feb").iterdir()] == ["2020-Feb.csv"]
    rows = _read_csv(tmp_path / "feb" / "2020-Feb.csv")
    by_type = Counter(r["event_type"] for r in rows)
    assert counts == {"users": N_USERS, "items": N_ITEMS, "events": len(rows), **by_type}
    # 2020 is a leap year: the three days are Feb 27, Feb 28 and Feb 29.
    assert {r["event_time"][:10] for r in rows} == {"2020-02-27", "2020-02-28", "2020-02-29"}


@pytest.mark.parametrize(
    "bad",
    [
        {"layout": "amazon"},
        {"n_users": 0},
        {"n_items": 3},
        {"days": 0},
        {"mean_sessions_per_user": 0},
        {"start": "1st of October"},
    ],
)
def test_rejects_bad_arguments(tmp_path, bad):
    with pytest.raises(ValueError):
        _generate(tmp_path, **bad)


# ----------------------------------------------------------------------------- REES46 layout


def test_rees46_header_line_endings_and_counts(rees46):
    out, counts, rows = rees46
    raw = (out / "2019-Oct.csv").read_bytes()
    assert raw.startswith((REES46_HEADER + "\n").encode())
    assert b"\r" not in raw
    assert set(Counter(r["event_type"] for r in rows)) == {"view", "cart", "remove_from_cart", "purchase"}
    assert counts["events"] == len(rows) == raw.count(b"\n") - 1
    assert all(counts[t] == n for t, n in Counter(r["event_type"] for r in rows).items())


def test_rees46_field_formats(rees46):
    _, _, rows = rees46
    for r in rows:
        assert re.fullmatch(r"2019-10-0[1-7] ([01]\d|2[0-3]):[0-5]\d:[0-5]\d UTC", r["event_time"]), r
        assert re.fullmatch(r"[1-9]\d{6,7}", r["product_id"]), r
        assert re.fullmatch(r"[1-9]\d{18}", r["category_id"]) and int(r["category_id"]) < 2**63, r
        assert re.fullmatch(r"([a-z_]+(\.[a-z_]+)+)?", r["category_code"]), r
        assert re.fullmatch(r"[a-z]*", r["brand"]), r
        assert re.fullmatch(r"[1-9]\d*\.\d\d|0\.\d\d", r["price"]) and float(r["price"]) > 0, r
        assert re.fullmatch(r"[1-9]\d{8}", r["user_id"]), r
        assert UUID4.fullmatch(r["user_session"]), r


def test_rees46_rows_are_sorted_by_event_time(rees46):
    times = [r["event_time"] for r in rees46[2]]
    assert times == sorted(times)  # the fixed-width format sorts as text exactly as in time
    assert len(set(t[:10] for t in times)) == 7


def test_products_and_categories_are_consistent_and_sometimes_unlabelled(rees46):
    rows = rees46[2]
    product = {}
    category_code = {}
    for r in rows:
        attrs = (r["category_id"], r["category_code"], r["brand"], r["price"])
        assert product.setdefault(r["product_id"], attrs) == attrs, "a product changed its attributes"
        assert category_code.setdefault(r["category_id"], r["category_code"]) == r["category_code"]
    no_code = sum(code == "" for code in category_code.values()) / len(category_code)
    no_brand = sum(attrs[2] == "" for attrs in product.values()) / len(product)
    assert 0.1 <= no_code <= 0.5, f"{no_code:.0%} of categories have no code"
    assert 0.05 <= no_brand <= 0.3, f"{no_brand:.0%} of products have no brand"


def test_sessions_belong_to_one_user_and_users_come_back(rees46):
    rows = rees46[2]
    owner = {}
    for r in rows:
        assert owner.setdefault(r["user_session"], r["user_id"]) == r["user_id"]
    assert len(set(owner.values())) == N_USERS
    assert len(owner) > 3 * N_USERS, "users should have several sessions each on average"


def test_funnel_follows_view_cart_remove_purchase_order_within_a_session(rees46):
    viewed = defaultdict(set)
    in_cart = defaultdict(Counter)
    for r in rees46[2]:  # file order, which is time order
        session, product, event = r["user_session"], r["product_id"], r["event_type"]
        if event == "view":
            viewed[session].add(product)
        elif event == "cart":
            assert product in viewed[session], r
            in_cart[session][product] += 1
        elif event == "remove_from_cart":
            assert in_cart[session][product] > 0, f"removed something never carted: {r}"
            in_cart[session][product] -= 1
        else:
            assert product in viewed[session], f"bought without viewing: {r}"


def test_funnel_shares_look_like_a_real_shop(tmp_path):
    counts = generate_ecommerce(tmp_path, seed=1)  # the default size, as the demo uses
    share = {t: counts[t] / counts["events"] for t in ("view", "cart", "remove_from_cart", "purchase")}
    assert 0.82 <= share["view"] <= 0.93, share
    assert 0.02 <= share["cart"] <= 0.10, share
    assert 0.0 < share["remove_from_cart"] < share["cart"], share
    assert 0.008 <= share["purchase"] <= 0.03, share
    assert 15_000 <= counts["events"] <= 40_000, counts


def test_product_popularity_is_long_tailed(rees46):
    views = Counter(r["product_id"] for r in rees46[2] if r["event_type"] == "view")
    ranked = [n for _, n in views.most_common()]
    top_tenth_share = sum(ranked[: N_ITEMS // 10]) / sum(ranked)
    assert top_tenth_share > 0.3, f"top 10% of products hold only {top_tenth_share:.0%} of views"


# ----------------------------------------------------------------------------- taste structure


def _sessions_in_time_order(rows):
    """user -> list of sessions (each a list of rows), ordered by each session's first event."""
    sessions = defaultdict(list)
    for r in rows:
        sessions[r["user_session"]].append(r)
    per_user = defaultdict(list)
    for events in sorted(sessions.values(), key=lambda e: e[0]["event_time"]):
        per_user[events[0]["user_id"]].append(events)
    return per_user


def test_users_category_mix_predicts_their_next_session_better_than_popularity(rees46):
    """Hold out every returning user's last session and recommend ten products, either the
    globally most viewed or the most viewed once weighted by how much of the user's history
    lies in each product's category; count users who view a recommendation in the held-out
    session. Popularity must be a real baseline and the personal signal must clearly beat it."""
    per_user = _sessions_in_time_order(rees46[2])
    train = [r for sessions in per_user.values() for s in sessions[:-1] for r in s]
    category_of = {r["product_id"]: r["category_id"] for r in rees46[2]}
    popularity = Counter(r["product_id"] for r in train if r["event_type"] == "view")
    global_top = {p for p, _ in popularity.most_common(10)}

    personal_hits = popular_hits = n = 0
    for sessions in per_user.values():
        if len(sessions) < 2:
            continue
        history = Counter(category_of[r["product_id"]] for s in sessions[:-1] for r in s)
        ranked = sorted(popularity, key=lambda p: -(history[category_of[p]] + 0.1) * popularity[p])
        held_out = {r["product_id"] for r in sessions[-1] if r["event_type"] == "view"}
        personal_hits += bool(held_out & set(ranked[:10]))
        popular_hits += bool(held_out & global_top)
        n += 1

    figures = f"hit@10 category-mix={personal_hits / n:.3f} popularity={popular_hits / n:.3f}"
    assert n > N_USERS / 2, figures
    assert popular_hits > 0.1 * n, figures
    assert personal_hits >= 1.6 * popular_hits, figures


def test_purchases_fall_in_the_buyers_favourite_categories(rees46):
    viewed = defaultdict(Counter)
    for r in rees46[2]:
        if r["event_type"] == "view":
            viewed[r["user_id"]][r["category_id"]] += 1
    purchases = [r for r in rees46[2] if r["event_type"] == "purchase"]
    in_top_two = sum(
        r["category_id"] in {c for c, _ in viewed[r["user_id"]].most_common(2)} for r in purchases
    )
    assert len(purchases) >= 20
    assert in_top_two / len(purchases) >= 0.7, f"{in_top_two}/{len(purchases)} in the top two categories"


# ----------------------------------------------------------------------------- Retailrocket layout


def test_retailrocket_header_and_field_formats(retailrocket):
    out, counts, rows = retailrocket
    assert (out / "events.csv").read_bytes().startswith((RETAILROCKET_HEADER + "\n").encode())
    assert [p.name for p in out.iterdir()] == ["events.csv"]
    for r in rows:
        assert re.fullmatch(r"1\d{12}", r["timestamp"]), r
        assert WINDOW_MS[0] <= int(r["timestamp"]) < WINDOW_MS[1], r
        assert r["visitorid"].isdigit() and int(r["visitorid"]) < N_USERS, r
        assert r["itemid"].isdigit() and int(r["itemid"]) < N_ITEMS, r
        assert r["event"] in {"view", "addtocart", "transaction"}, r
        assert (r["transactionid"] != "") == (r["event"] == "transaction"), r
        assert r["transactionid"] == "" or r["transactionid"].isdigit(), r
    by_type = Counter(r["event"] for r in rows)
    assert counts == {"users": N_USERS, "items": N_ITEMS, "events": len(rows), **by_type}


def test_retailrocket_is_the_same_shopping_without_removals(rees46, retailrocket):
    rees = rees46[1]
    rocket = retailrocket[1]
    assert (rocket["view"], rocket["addtocart"], rocket["transaction"]) == (
        rees["view"],
        rees["cart"],
        rees["purchase"],
    )
    assert rocket["events"] == rees["events"] - rees["remove_from_cart"]
    first = datetime.fromtimestamp(min(int(r["timestamp"]) for r in retailrocket[2]) / 1000, UTC)
    assert first.strftime("%Y-%m-%d %H:%M:%S UTC") == rees46[2][0]["event_time"]


def test_retailrocket_is_unsorted_like_the_real_file_but_the_funnel_holds_in_time(retailrocket):
    rows = retailrocket[2]
    stamps = [int(r["timestamp"]) for r in rows]
    assert stamps != sorted(stamps)
    seen = set()
    transaction_visitor = {}
    for r in sorted(rows, key=lambda r: int(r["timestamp"])):
        key = (r["visitorid"], r["itemid"])
        if r["event"] == "view":
            seen.add(key)
        else:
            assert key in seen, f"{r['event']} before any view: {r}"
        if r["transactionid"]:
            visitor = transaction_visitor.setdefault(r["transactionid"], r["visitorid"])
            assert visitor == r["visitorid"], "one transaction spans two visitors"
    assert len(transaction_visitor) > 10


def test_ids_stay_unique_when_a_draw_must_collide():
    # 200,000 ids out of 10M collide ~2,000 times per draw: redrawing the whole set until one
    # draw has none (as it once did) never ends; a shop of 1M users hit that.
    from recflow.generate.ecommerce import _unique_ids

    ids = _unique_ids(np.random.default_rng(1), 200_000, 0, 10_000_000)
    assert len(np.unique(ids)) == 200_000 and ids.min() >= 0 and ids.max() < 10_000_000


def test_memory_does_not_grow_with_users_times_catalogue(tmp_path):
    # 5,000 users and 20,000 products: the users x categories weights the generator once held
    # are 67 MB, a chunk's users x products weights 164 MB each (it peaked at 3.4 GB for 20,000 x
    # 50,000); a REES46-sized shop (1M x 100,000) would need 67 GB. Only favourites and
    # per-category draws may be held (about 15 MB here).
    import tracemalloc

    tracemalloc.start()
    counts = generate_ecommerce(tmp_path, n_users=5_000, n_items=20_000, days=1, mean_sessions_per_user=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert counts["events"] > 5_000
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MiB"
