"""Deterministic synthetic e-commerce clickstream in two public file layouts.

``layout="rees46"`` copies the Kaggle "eCommerce behavior data from multi category
store" (REES46) monthly files: one CSV named after the month it starts in
(``2019-Oct.csv``) with the header

    event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session

``event_time`` is ``YYYY-MM-DD HH:MM:SS UTC``, rows are sorted by it, and
``event_type`` is view, cart, remove_from_cart or purchase. Ids look like the real
ones (7-8 digit product ids, 19-digit category ids, 9-digit user ids, UUID
sessions); about 30% of categories have no category_code and about 15% of
products no brand, as in the real files, so loaders must cope with empty fields.

``layout="retailrocket"`` copies the Retailrocket ``events.csv`` layout
(``timestamp,visitorid,event,itemid,transactionid``; epoch milliseconds; view,
addtocart, transaction; the transaction id only on transaction rows). It is the
same simulated shopping, formatted differently and without removals, which that
layout has no event for. Like the real file it is not sorted by timestamp.

Uniformly random clicks would give a recommender nothing to learn and leave
popularity no better than chance, so the events come from an explicit taste model:

* products have a category, a Zipf-like popularity and a hidden taste vector;
  a category draws the traffic its products earn;
* each user strongly prefers one to three categories (popular ones more often)
  and has a taste vector of their own;
* a session mostly browses one category drawn from the user's preferences, and
  picks products with weight popularity x exp(affinity / temperature), so the
  history carries both the popularity signal and the personal one;
* the funnel (view -> cart -> remove or purchase) is followed in order within a
  session, and carting and buying are likelier the better a product fits the
  user, so purchases concentrate on products that suit the buyer.

Everything comes from one numpy Generator seeded once, drawn in fixed-size user
chunks, so the same arguments give byte-identical files whatever the memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

LAYOUTS = ("rees46", "retailrocket")

REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
RETAILROCKET_HEADER = "timestamp,visitorid,event,itemid,transactionid"

# Event codes of the simulation, in funnel order; each layout names them its own way.
VIEW, CART, REMOVE, PURCHASE = 0, 1, 2, 3
_REES46_EVENTS = ("view", "cart", "remove_from_cart", "purchase")
_RETAILROCKET_EVENTS = ("view", "addtocart", None, "transaction")

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

# Category codes as they appear in the real files (several category ids share a code there too).
_CATEGORY_CODES = [
    "electronics.smartphone", "electronics.audio.headphone", "electronics.video.tv", "electronics.clocks",
    "electronics.tablet", "electronics.camera.photo", "electronics.audio.subwoofer", "computers.notebook",
    "computers.desktop", "computers.peripherals.printer", "computers.components.videocards",
    "appliances.kitchen.washer", "appliances.kitchen.refrigerators", "appliances.kitchen.microwave",
    "appliances.environment.vacuum", "appliances.environment.air_conditioner", "appliances.iron",
    "appliances.personal.hair_cutter", "apparel.shoes", "apparel.shoes.keds", "apparel.trousers",
    "apparel.costume", "furniture.living_room.sofa", "furniture.bedroom.bed", "furniture.kitchen.table",
    "kids.toys", "kids.carriage", "auto.accessories.player", "auto.accessories.videoregister",
    "construction.tools.drill", "sport.bicycle", "accessories.bag", "country_yard.cultivator",
    "medicine.tools.tonometer", "stationery.cartrige",
]  # fmt: skip

# Brands and a typical price (USD) per top-level category, so brand and price fit the product.
_TOP_LEVEL = {
    "electronics": (["samsung", "apple", "xiaomi", "huawei", "sony", "lg", "oppo", "jbl"], 250.0),
    "computers": (["lenovo", "hp", "asus", "acer", "dell", "msi", "canon", "epson"], 480.0),
    "appliances": (["bosch", "lg", "samsung", "indesit", "beko", "philips", "redmond", "tefal"], 180.0),
    "apparel": (["nike", "adidas", "puma", "respect", "baden", "reebok"], 60.0),
    "furniture": (["brw", "askona", "sv", "bestway"], 240.0),
    "kids": (["lego", "chicco", "hasbro", "mattel"], 40.0),
    "auto": (["pioneer", "alpine", "xiaomi", "prology"], 80.0),
    "construction": (["makita", "bosch", "dewalt", "metabo"], 90.0),
    "sport": (["stern", "forward", "stels", "bestway"], 220.0),
    "accessories": (["samsonite", "guess", "tigernu"], 50.0),
    "country_yard": (["huter", "patriot", "champion"], 300.0),
    "medicine": (["omron", "and", "microlife"], 40.0),
    "stationery": (["hp", "canon", "cactus"], 25.0),
}
# Categories without a code still sell branded goods; their brands come from everywhere.
_ALL_BRANDS = sorted({brand for brands, _ in _TOP_LEVEL.values() for brand in brands})

_NO_CODE_SHARE = 0.30
_NO_BRAND_SHARE = 0.15
_ITEMS_PER_CATEGORY = 12
_MIN_CATEGORY_SIZE = 4
_MIN_ITEMS = 10

# Tuned together so that at the default size views are ~90% of events, carts ~6%,
# removals ~2.5% and purchases ~1.7%, close to the real files' funnel.
_N_FACTORS = 6
_ITEM_TASTE_STD = 1.0
_ZIPF_EXPONENT = 0.8
_CHOICE_TEMPERATURE = 0.7
_PREFERRED_CATEGORY_BOOST = 4.5  # a preferred category is e^4.5 ~ 90x likelier to be browsed
_CATEGORY_POPULARITY_WEIGHT = 0.5
_PREFERRED_CATEGORIES = ([1, 2, 3], [0.3, 0.45, 0.25])  # how many categories a user favours, and how often
_SESSION_CATEGORY_SWITCH = 0.1  # share of views that wander to another category in the session
_MEAN_EXTRA_VIEWS = 4.0  # views per session: 1 + geometric
_MAX_VIEWS_PER_SESSION = 40
_CART_BASE = 0.024
_CART_FIT_SLOPE = 0.9
_REMOVE_PROBABILITY = 0.38
_PURCHASE_BASE = 0.15
_DIRECT_PURCHASE = 0.002  # "buy now" without a cart
_USER_CHUNK = 1024  # fixed, so the random stream (and the output) never depends on memory

# Traffic by hour of day (UTC), low at night and peaking in the evening like a retail site's.
_HOURLY_TRAFFIC = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 8, 8, 8, 8, 8, 9, 10, 11, 11, 10, 7, 4], dtype=float
)
_SECOND = 1000  # the simulation clock runs in milliseconds


def generate_ecommerce(
    out_dir: str | Path,
    n_users: int = 600,
    n_items: int = 400,
    seed: int = 42,
    layout: str = "rees46",
    days: int = 7,
    start: str = "2019-10-01",
    mean_sessions_per_user: int = 6,
) -> dict[str, int]:
    """Write one month-style REES46 CSV or a Retailrocket events.csv into out_dir.

    Returns {"users", "items", "events"} and the number of rows of each event type,
    named as the layout names them.
    """
    first_day = _validate(n_users, n_items, layout, days, start, mean_sessions_per_user)
    rng = np.random.default_rng(seed)
    catalogue = _make_catalogue(rng, n_items)
    users = _make_users(rng, n_users, catalogue)
    events = _simulate_sessions(rng, users, catalogue, days, mean_sessions_per_user)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    epoch_ms = int(datetime.combine(first_day, datetime.min.time(), UTC).timestamp()) * _SECOND
    if layout == "rees46":
        path = out / f"{first_day.year}-{_MONTHS[first_day.month - 1]}.csv"
        lines = _rees46_lines(rng, events, catalogue, users, first_day, days)
        names = _REES46_EVENTS
    else:
        path = out / "events.csv"
        lines = _retailrocket_lines(rng, events, users, epoch_ms)
        names = _RETAILROCKET_EVENTS
    _write_lines(path, lines)

    type_counts = np.bincount(events["type"], minlength=len(names))
    per_type = {name: int(type_counts[code]) for code, name in enumerate(names) if name is not None}
    return {"users": n_users, "items": n_items, "events": sum(per_type.values()), **per_type}


def _validate(
    n_users: int, n_items: int, layout: str, days: int, start: str, mean_sessions_per_user: int
) -> date:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if n_users < 1:
        raise ValueError(f"n_users must be positive, got {n_users}")
    if n_items < _MIN_ITEMS:
        raise ValueError(f"n_items must be at least {_MIN_ITEMS}, got {n_items}")
    if days < 1:
        raise ValueError(f"days must be positive, got {days}")
    if mean_sessions_per_user < 1:
        raise ValueError(f"mean_sessions_per_user must be at least 1, got {mean_sessions_per_user}")
    try:
        return date.fromisoformat(start)
    except (TypeError, ValueError) as err:
        raise ValueError(f"start must be a date like 2019-10-01, got {start!r}") from err


# ----------------------------------------------------------------------------- catalogue


def _make_catalogue(rng: np.random.Generator, n_items: int) -> dict:
    n_categories = max(2, n_items // _ITEMS_PER_CATEGORY)
    category_codes = _category_codes(rng, n_categories)
    item_category = _assign_categories(rng, n_items, n_categories)
    log_popularity = _zipf_log_popularity(rng, n_items)
    # A category draws the traffic its products earn, so with no taste at all item views would
    # follow the item Zipf law exactly; a separate category Zipf would pile a popular category's
    # whole traffic onto its one or two products.
    category_log_popularity = np.log(
        np.bincount(item_category, weights=np.exp(log_popularity), minlength=n_categories)
    )
    category_price = np.array([_price_level(code) for code in category_codes])
    category_price *= rng.lognormal(0.0, 0.4, n_categories)
    price = np.maximum(category_price[item_category] * rng.lognormal(0.0, 0.5, n_items), 0.5)
    return {
        "category": item_category,
        "category_code": category_codes,
        # Real category ids are 19-digit numbers well inside int64.
        "category_id": _unique_ids(rng, n_categories, 2_053_013_552_000_000_000, 2_232_732_120_000_000_000),
        "category_log_popularity": category_log_popularity,
        "log_popularity": log_popularity,
        "factors": rng.normal(0.0, _ITEM_TASTE_STD / np.sqrt(_N_FACTORS), (n_items, _N_FACTORS)),
        "product_id": _unique_ids(rng, n_items, 1_000_000, 60_000_000),
        "brand": _brands(rng, category_codes, item_category),
        "price": np.round(price, 2),
    }


def _category_codes(rng: np.random.Generator, n_categories: int) -> list[str]:
    # Distinct codes while they last; beyond that codes repeat, as they do in the real files.
    order = np.concatenate(
        [rng.permutation(len(_CATEGORY_CODES)) for _ in range(-(-n_categories // len(_CATEGORY_CODES)))]
    )
    codes = [_CATEGORY_CODES[i] for i in order[:n_categories]]
    for idx in rng.choice(n_categories, size=round(_NO_CODE_SHARE * n_categories), replace=False):
        codes[idx] = ""
    return codes


def _assign_categories(rng: np.random.Generator, n_items: int, n_categories: int) -> np.ndarray:
    # Uneven sizes, but every category gets a few products so none is a one-product shop.
    floor = min(_MIN_CATEGORY_SIZE, n_items // n_categories)
    sizes = rng.dirichlet(np.full(n_categories, 3.0))
    rest = rng.choice(n_categories, size=n_items - floor * n_categories, p=sizes)
    return rng.permutation(np.concatenate([np.repeat(np.arange(n_categories), floor), rest]))


def _price_level(code: str) -> float:
    top = code.split(".", 1)[0]
    return _TOP_LEVEL[top][1] if top in _TOP_LEVEL else 100.0


def _brands(rng: np.random.Generator, category_codes: list[str], item_category: np.ndarray) -> list[str]:
    brands = []
    for category in item_category:
        top = category_codes[category].split(".", 1)[0]
        pool = _TOP_LEVEL[top][0] if top in _TOP_LEVEL else _ALL_BRANDS
        brands.append(pool[rng.integers(len(pool))])
    for idx in rng.choice(len(brands), size=round(_NO_BRAND_SHARE * len(brands)), replace=False):
        brands[idx] = ""
    return brands


def _zipf_log_popularity(rng: np.random.Generator, n: int) -> np.ndarray:
    # Ranks are shuffled so popularity is unrelated to position or id.
    return -_ZIPF_EXPONENT * np.log(rng.permutation(n) + 1)


def _unique_ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    ids = rng.integers(low, high, n, dtype=np.int64)
    # Redraw only the repeats: a whole redraw never ends once n^2 / (2 (high - low)) is more than a
    # few (1M user ids in 520M have ~960 collisions per draw). A draw without any, which is every
    # draw at the sample sizes, is kept as it is, so those files stay byte-identical.
    while True:
        _, first = np.unique(ids, return_index=True)
        repeat = np.ones(n, dtype=bool)
        repeat[first] = False
        if not repeat.any():
            return ids
        ids[repeat] = rng.integers(low, high, int(repeat.sum()), dtype=np.int64)


# ----------------------------------------------------------------------------- users


def _make_users(rng: np.random.Generator, n_users: int, catalogue: dict) -> dict:
    n_categories = len(catalogue["category_code"])
    counts, shares = _PREFERRED_CATEGORIES
    n_preferred = np.minimum(rng.choice(counts, size=n_users, p=shares), n_categories)
    # Popular categories are more often someone's favourite, but every category has fans.
    favourite_weight = np.exp(
        0.5 * (catalogue["category_log_popularity"] - catalogue["category_log_popularity"].max())
    )
    return {
        # Only the favourites, as indices (-1 pads a shorter list): a users x categories matrix
        # is 67 GB at 1M users and 8,333 categories.
        "preferred": _distinct_draws(rng, np.cumsum(favourite_weight), n_preferred),
        "factors": rng.normal(0.0, 1.0, (n_users, _N_FACTORS)),
        "user_id": _unique_ids(rng, n_users, 100_000_000, 620_000_000),
        # Retailrocket visitor ids are small integers unrelated to activity.
        "visitor_id": rng.permutation(n_users),
    }


def _distinct_draws(rng: np.random.Generator, cumulative: np.ndarray, k: np.ndarray) -> np.ndarray:
    """k[r] distinct indices per row r, drawn one after another without replacement with the
    weights whose running sum is `cumulative`; -1 pads rows with fewer than k.max().

    A draw that repeats an earlier one of its row is drawn again, which is exactly sampling
    without replacement, and needs no row of weights per user."""
    chosen = np.full((len(k), int(k.max())), -1, dtype=np.int64)
    for slot in range(chosen.shape[1]):
        need = np.flatnonzero(k > slot)
        while need.size:
            draw = _inverse_cdf(rng, cumulative, need.size)
            repeat = (chosen[need, :slot] == draw[:, None]).any(axis=1)
            chosen[need[~repeat], slot] = draw[~repeat]
            need = need[repeat]
    return chosen


def _inverse_cdf(rng: np.random.Generator, cumulative: np.ndarray, n: int) -> np.ndarray:
    target = rng.random(n) * cumulative[-1]
    return np.minimum(np.searchsorted(cumulative, target, side="right"), len(cumulative) - 1)


# ----------------------------------------------------------------------------- sessions


def _simulate_sessions(
    rng: np.random.Generator, users: dict, catalogue: dict, days: int, mean_sessions: int
) -> dict[str, np.ndarray]:
    """All events as parallel arrays (session, user, item, type, time in ms), sorted by time."""
    n_users = len(users["user_id"])
    sessions_per_user = _sessions_per_user(rng, n_users, mean_sessions)
    # Products sorted by category, so each category is one contiguous block of columns.
    by_category = np.argsort(catalogue["category"], kind="stable")
    block_end = np.cumsum(np.bincount(catalogue["category"], minlength=len(catalogue["category_code"])))
    block_start = block_end - np.bincount(catalogue["category"], minlength=len(block_end))

    # A category's browsing weight is popularity^0.5, times e^boost for a user's favourites: a
    # shared running sum for everyone plus a user's few favourite extras (see _draw_categories).
    category_weight = np.exp(
        _CATEGORY_POPULARITY_WEIGHT
        * (catalogue["category_log_popularity"] - catalogue["category_log_popularity"].max())
    )
    shared_cumulative = np.cumsum(category_weight)
    parts = []
    first_session = 0
    for chunk_start in range(0, n_users, _USER_CHUNK):
        chunk = slice(chunk_start, min(chunk_start + _USER_CHUNK, n_users))
        preferred = users["preferred"][chunk]
        favourite_extra = np.where(
            preferred >= 0, (np.exp(_PREFERRED_CATEGORY_BOOST) - 1.0) * category_weight[preferred], 0.0
        )
        categories = (shared_cumulative, preferred, np.cumsum(favourite_extra, axis=1))
        views = _draw_views(
            rng, categories, users["factors"][chunk], catalogue, by_category, block_start, block_end,
            sessions_per_user[chunk],
        )  # fmt: skip
        views["user"] += chunk.start
        views["session"] += first_session
        first_session += int(sessions_per_user[chunk].sum())
        fit = np.einsum("vf,vf->v", users["factors"][views["user"]], catalogue["factors"][views["item"]])
        parts.append(_run_funnel(rng, views, fit, days))

    events = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    # Stable, so events of one session that share a millisecond keep their funnel order.
    order = np.argsort(events["time"], kind="stable")
    return {key: value[order] for key, value in events.items()}


def _sessions_per_user(rng: np.random.Generator, n_users: int, mean: int) -> np.ndarray:
    # Heavy-tailed like real shoppers: most visit a handful of times, a few come back daily.
    if mean == 1:
        return np.ones(n_users, dtype=np.int64)
    sigma = 0.9
    extra = rng.lognormal(np.log(mean - 1) - sigma**2 / 2, sigma, n_users)
    return (1 + np.minimum(np.round(extra), 10 * mean)).astype(np.int64)


def _draw_views(
    rng: np.random.Generator,
    categories: tuple[np.ndarray, np.ndarray, np.ndarray],
    user_factors: np.ndarray,
    catalogue: dict,
    by_category: np.ndarray,
    block_start: np.ndarray,
    block_end: np.ndarray,
    sessions_per_user: np.ndarray,
) -> dict[str, np.ndarray]:
    """The viewed products of one chunk's sessions, in browsing order."""
    session_user = np.repeat(np.arange(len(sessions_per_user)), sessions_per_user)
    n_sessions = len(session_user)
    session_category = _draw_categories(rng, categories, session_user)
    views_per_session = np.minimum(
        rng.geometric(1.0 / (1.0 + _MEAN_EXTRA_VIEWS), n_sessions), _MAX_VIEWS_PER_SESSION
    )
    view_session = np.repeat(np.arange(n_sessions), views_per_session)
    view_user = session_user[view_session]
    n_views = len(view_session)
    wander = rng.random(n_views) < _SESSION_CATEGORY_SWITCH
    wander_category = _draw_categories(rng, categories, view_user)
    view_category = np.where(wander, wander_category, session_category[view_session])

    # Inverse-CDF draw inside each view's category only (a dozen products on average), with
    # weight popularity x exp(affinity / temperature); a row over the whole catalogue per user
    # is 100,000 wide in a real shop. Categories are padded to the largest one and masked.
    size = (block_end - block_start)[view_category]
    offsets = np.arange(size.max())
    inside = offsets < size[:, None]
    position = np.where(inside, block_start[view_category][:, None] + offsets, 0)
    item = by_category[position]
    affinity = np.einsum("vf,vlf->vl", user_factors[view_user], catalogue["factors"][item])
    log_weight = np.where(inside, catalogue["log_popularity"][item] + affinity / _CHOICE_TEMPERATURE, -np.inf)
    cumulative = np.cumsum(np.exp(log_weight - log_weight.max(axis=1, keepdims=True)), axis=1)
    target = rng.random(n_views) * cumulative[:, -1]
    pick = np.minimum((cumulative <= target[:, None]).sum(axis=1), size - 1)
    return {"session": view_session, "user": view_user, "item": item[np.arange(n_views), pick]}


def _draw_categories(
    rng: np.random.Generator, categories: tuple[np.ndarray, np.ndarray, np.ndarray], user: np.ndarray
) -> np.ndarray:
    """One category per entry of `user` (chunk-local), with weight popularity^0.5 x e^boost for
    the user's favourites: a draw from the shared sum or, past it, from the user's extras."""
    shared, preferred, extra = categories
    target = rng.random(len(user)) * (shared[-1] + extra[user, -1])
    drawn = np.minimum(np.searchsorted(shared, target, side="right"), len(shared) - 1)
    past = target >= shared[-1]
    slot = (extra[user[past]] <= (target[past] - shared[-1])[:, None]).sum(axis=1)
    drawn[past] = preferred[user[past], np.minimum(slot, preferred.shape[1] - 1)]
    return drawn


def _run_funnel(
    rng: np.random.Generator, views: dict[str, np.ndarray], fit: np.ndarray, days: int
) -> dict[str, np.ndarray]:
    """Turn each session's views into timed events: carts, removals and purchases in funnel order.

    All random numbers are drawn up front, one fixed set per view, so the stream does not
    depend on which branches the loop takes.
    """
    n_views = len(views["item"])
    p_cart = np.minimum(_CART_BASE * np.exp(_CART_FIT_SLOPE * fit), 0.6)
    p_purchase = np.minimum(_PURCHASE_BASE * np.exp(0.5 * fit), 0.9)
    wants_cart = rng.random(n_views) < p_cart
    removes = rng.random(n_views) < _REMOVE_PROBABILITY
    buys = rng.random(n_views) < p_purchase
    buys_now = rng.random(n_views) < _DIRECT_PURCHASE
    # Dwell times in whole seconds (at least one), so funnel steps never share a second.
    dwell = np.minimum(np.ceil(rng.lognormal(np.log(25.0), 1.0, n_views)), 600).astype(np.int64)
    cart_delay = 1 + (rng.random(n_views) * np.minimum(dwell, 60)).astype(np.int64)
    remove_delay = 1 + np.minimum(rng.exponential(90.0, n_views), 900).astype(np.int64)
    checkout_gap = 1 + np.minimum(rng.exponential(40.0, n_views), 300).astype(np.int64)
    jitter = rng.integers(0, _SECOND, n_views)  # milliseconds, only the Retailrocket layout shows them

    session_bounds = np.flatnonzero(np.diff(views["session"], prepend=-1, append=-1))
    n_sessions = len(session_bounds) - 1
    session_day = rng.integers(0, days, n_sessions)
    session_hour = rng.choice(24, size=n_sessions, p=_HOURLY_TRAFFIC / _HOURLY_TRAFFIC.sum())
    session_second = rng.integers(0, 3600, n_sessions)

    view_item, view_user, view_session = (views[key].tolist() for key in ("item", "user", "session"))
    session, user, item, kind, second, view_index = [], [], [], [], [], []
    for s in range(n_sessions):
        lo, hi = session_bounds[s], session_bounds[s + 1]
        events: list[tuple[int, int, int]] = []  # (seconds into session, type, view index)
        carted: dict[int, int] = {}  # item -> view index of its cart event
        clock = 0
        for v in range(lo, hi):
            product = view_item[v]
            events.append((clock, VIEW, v))
            if wants_cart[v] and product not in carted:
                cart_at = clock + int(cart_delay[v])
                events.append((cart_at, CART, v))
                if removes[v]:
                    events.append((cart_at + int(remove_delay[v]), REMOVE, v))
                else:
                    carted[product] = v
            clock += int(dwell[v])
        # Checkout comes after everything else in the session, carted items first.
        checkout = max(clock, max(t for t, _, _ in events) + 1)
        bought = [v for v in carted.values() if buys[v]]
        bought_products = {view_item[v] for v in bought}
        for v in range(lo, hi):
            product = view_item[v]
            if buys_now[v] and product not in carted and product not in bought_products:
                bought.append(v)
                bought_products.add(product)
        for v in bought:
            checkout += int(checkout_gap[v])
            events.append((checkout, PURCHASE, v))
        events.sort(key=lambda e: e[0])  # stable: same-second events keep their funnel order

        # The whole session must fit in the window; push a late start back rather than clip it.
        length = events[-1][0]
        begin = (int(session_day[s]) * 24 + int(session_hour[s])) * 3600 + int(session_second[s])
        begin = max(0, min(begin, days * 86_400 - 1 - length))
        for t, event_type, v in events:
            session.append(view_session[v])
            user.append(view_user[v])
            item.append(view_item[v])
            kind.append(event_type)
            second.append(begin + t)
            view_index.append(v)

    return {
        "session": np.array(session, dtype=np.int64),
        "user": np.array(user, dtype=np.int64),
        "item": np.array(item, dtype=np.int64),
        "type": np.array(kind, dtype=np.int64),
        "time": np.array(second, dtype=np.int64) * _SECOND + jitter[np.array(view_index, dtype=np.int64)],
    }


# ----------------------------------------------------------------------------- writing


def _rees46_lines(
    rng: np.random.Generator,
    events: dict[str, np.ndarray],
    catalogue: dict,
    users: dict,
    first_day: date,
    days: int,
) -> Iterator[str]:
    raw = rng.bytes(16 * (int(events["session"].max()) + 1))
    session_uuid = [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, len(raw), 16)]
    # Formatting 25k datetimes one by one is the slow part; a per-day prefix avoids it.
    day_prefix = [(first_day + timedelta(days=d)).isoformat() for d in range(days)]
    product_fields = [
        f"{pid},{catalogue['category_id'][cat]},{catalogue['category_code'][cat]},{brand},{price:.2f}"
        for pid, cat, brand, price in zip(
            catalogue["product_id"],
            catalogue["category"],
            catalogue["brand"],
            catalogue["price"],
            strict=True,
        )
    ]
    user_ids = users["user_id"].tolist()
    yield REES46_HEADER
    for sess, usr, itm, typ, ms in zip(
        events["session"].tolist(), events["user"].tolist(), events["item"].tolist(),
        events["type"].tolist(), events["time"].tolist(), strict=True,
    ):  # fmt: skip
        day, rest = divmod(ms // _SECOND, 86_400)
        hour, rest = divmod(rest, 3600)
        minute, sec = divmod(rest, 60)
        yield (
            f"{day_prefix[day]} {hour:02d}:{minute:02d}:{sec:02d} UTC,{_REES46_EVENTS[typ]},"
            f"{product_fields[itm]},{user_ids[usr]},{session_uuid[sess]}"
        )


def _retailrocket_lines(
    rng: np.random.Generator, events: dict[str, np.ndarray], users: dict, epoch_ms: int
) -> Iterator[str]:
    keep = events["type"] != REMOVE
    session = events["session"][keep]
    kind = events["type"][keep]
    # One transaction id per checkout, numbered in order of time like the real small integers.
    is_purchase = kind == PURCHASE
    paying_sessions, first_purchase = np.unique(session[is_purchase], return_index=True)
    by_time = paying_sessions[np.argsort(first_purchase, kind="stable")]
    transaction_of = dict(zip(by_time.tolist(), range(len(by_time)), strict=True))
    # The real events.csv is in no particular order; loaders must sort for themselves.
    shuffled = rng.permutation(len(session))
    visitor_ids = users["visitor_id"].tolist()
    yield RETAILROCKET_HEADER
    for sess, usr, itm, typ, ms in zip(
        session[shuffled].tolist(), events["user"][keep][shuffled].tolist(),
        events["item"][keep][shuffled].tolist(), kind[shuffled].tolist(),
        events["time"][keep][shuffled].tolist(), strict=True,
    ):  # fmt: skip
        transaction = transaction_of[sess] if typ == PURCHASE else ""
        yield f"{epoch_ms + ms},{visitor_ids[usr]},{_RETAILROCKET_EVENTS[typ]},{itm},{transaction}"


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    # Streamed: 20M events are ~3 GB of text, which need not all sit in memory at once.
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(line + "\n" for line in lines)
