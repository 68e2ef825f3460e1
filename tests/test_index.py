"""The ALL Composite Index: constituents, listing and delisting rules, weights, continuity."""
import random

import pytest

from engine.core import catalogue as catalogue_mod
from engine.views import funding as FQ
from engine.core import composite as X
from engine.core.fixed import SCALE
from engine.core.timeutil import parse_iso_ms
from proto import commands as C
from proto import events as V
from tests.harness import Harness, d, rejection

ALL = "ALLUSDT"
T0 = parse_iso_ms("2025-08-06T09:00:00Z")  # ALLUSDT's launch
BRACKETS = [{"effective": "1970-01-01T00:00:00Z", "table": "50x"}]


def _sym(symbol, base, quote="USDT", margin=None, contract="PERPETUAL", underlying="COIN"):
    return {"symbol": symbol, "baseAsset": base, "quoteAsset": quote,
            "marginAsset": margin or quote, "contractType": contract,
            "underlyingType": underlying, "brackets": BRACKETS}


EXTRA = [
    _sym("ETHBTC", "ETH", quote="BTC"),
    _sym("BTCUSDC", "BTC", quote="USDC"),
    _sym("BTCFDUSD", "BTC", quote="FDUSD"),
    _sym("PMXUSDT", "PMX", underlying="PREMARKET"),
    _sym("BTCUSD_PERP", "BTC", quote="USD", margin="BTC"),
    _sym("NEWAUSDT", "NEWA"), _sym("NEWBUSDT", "NEWB"),
]
CAT = catalogue_mod.load(overrides={"symbols": EXTRA})
EXCLUDED = {  # one of each kind the seed excludes, with the rule's reason
    "ETHBTC": "ETHBTC perpetual",
    "BTCUSDC": "quoted in USDC, not USDT",
    "BTCFDUSD": "quoted in FDUSD, not USDT",
    "BTCBUSD": "quoted in BUSD, not USDT",
    "ETHUSDT_0924": "delivery contract",
    "BTCUSDT_0924": "delivery contract",
    "PMXUSDT": "pre-market contract",
    "ALLUSDT": "composite index or multi-asset perpetual",
    "BTCDOMUSDT": "composite index or multi-asset perpetual",
    "DEFIUSDT": "composite index or multi-asset perpetual",
    "BTCUSD_PERP": "COIN-M contract",
}


def all_prices(cat=CAT, price="2"):
    """An index price for every symbol whose index is fed (not the computed composite, not a
    COIN-M symbol: its index is its pair's)."""
    return {s: d(price) for s in cat.symbols if s != ALL and not cat.symbols[s].inverse}


def rebalances(events):
    return [e for e in events if isinstance(e, V.CompositeRebalanced)]


def members(h):
    return set(h.engine.pricing.composite.weights)


# -- the filter rule ---------------------------------------------------------------------------
@pytest.mark.parametrize("symbol", sorted(EXCLUDED))
def test_each_excluded_kind_has_its_reason(symbol):
    assert X.exclusion_reason(CAT.spec(symbol)) == EXCLUDED[symbol]


def test_the_packaged_catalogue_gives_117_usdt_perpetuals():
    cat = catalogue_mod.load()
    eligible = [s for s, spec in cat.symbols.items() if X.is_eligible(spec)]
    assert len(eligible) == 117
    assert all(s.endswith("USDT") for s in eligible)
    assert {"BTCUSDT", "ETHUSDT", "ADAUSDT"} <= set(eligible)


def test_an_excluded_kind_is_never_a_constituent():
    h = Harness(CAT, time=T0)
    ev = h.send(C.SetIndexPrices(prices=all_prices()))
    first = rebalances(ev)
    assert len(first) == 1 and first[0].time == T0 and first[0].index_price == X.BASE_VALUE
    names = {c.symbol for c in first[0].constituents}
    assert names == {s for s, spec in CAT.symbols.items() if X.is_eligible(spec)}
    assert not names & set(EXCLUDED)
    for day in range(1, 4):  # and at every later rebalance
        ev = h.send(C.SetIndexPrices(prices={"BTCUSDT": d(str(2 + day))}),
                    time=T0 - 3_600_000 + day * X.DAY_MS)
        (rb,) = rebalances(ev)
        assert not {c.symbol for c in rb.constituents} & set(EXCLUDED)
    assert not members(h) & set(EXCLUDED)


def test_the_composite_is_computed_not_fed():
    h = Harness(CAT, time=T0)
    assert rejection(h.send(C.SetIndexPrices(prices={ALL: d("1000")}))) == -1130
    assert rejection(h.send(C.SetIndexPrices(prices={"NOPEUSDT": d("1")}))) == -1121
    assert rejection(h.send(C.SetIndexPrices(prices={"BTCUSDT": 0}))) == -1130
    assert rejection(h.send(C.SetIndexPrices(prices={}))) == -1130
    assert h.engine.pricing.states == {} and not h.engine.pricing.composite.composed


# -- listings and delistings --------------------------------------------------------------------
def test_a_listing_before_the_cutoff_joins_that_day_one_after_it_the_next_day():
    h = Harness(CAT, time=T0)
    day1 = parse_iso_ms("2025-08-07T08:00:00Z")
    h.send(C.ListSymbol(symbol="NEWAUSDT", onboard_time=day1 - 1))  # 07:59:59.999
    h.send(C.ListSymbol(symbol="NEWBUSDT", onboard_time=day1))  # at the cutoff: too late
    h.send(C.SetIndexPrices(prices=all_prices()))
    assert not {"NEWAUSDT", "NEWBUSDT"} & members(h)  # not listed yet at the first composition
    ev = h.send(C.SetIndexPrices(prices={"NEWAUSDT": d("3")}), time=day1 - 1)
    assert not rebalances(ev)  # a tick before 08:00: nothing
    ev = h.send(C.SetIndexPrices(prices={"NEWBUSDT": d("3")}), time=day1)
    (rb,) = rebalances(ev)
    assert rb.time == day1 and rb.added == ["NEWAUSDT"] and rb.removed == []
    assert "NEWAUSDT" in members(h) and "NEWBUSDT" not in members(h)
    ev = h.send(C.SetIndexPrices(prices={"BTCUSDT": d("3")}), time=day1 + X.DAY_MS + 5)
    (rb,) = rebalances(ev)
    assert rb.time == day1 + X.DAY_MS and rb.added == ["NEWBUSDT"]


def test_a_delisting_leaves_at_the_rebalance_40_hours_ahead():
    h = Harness(CAT, time=T0)
    h.send(C.SetIndexPrices(prices=all_prices()))
    # delisting at 00:00 UTC: 40 hours before is the 08:00 rebalance two days earlier
    h.send(C.ScheduleDelisting(symbol="XRPUSDT", delist_time=parse_iso_ms("2025-08-10T00:00:00Z")))
    # delisting at 09:00: 40 hours before is 17:00, so the next rebalance (08:00) takes it out
    h.send(C.ScheduleDelisting(symbol="ADAUSDT", delist_time=parse_iso_ms("2025-08-10T09:00:00Z")))
    seen = {}
    for day in ("2025-08-07", "2025-08-08", "2025-08-09"):
        ev = h.send(C.SetIndexPrices(prices={"BTCUSDT": d("2")}),
                    time=parse_iso_ms(f"{day}T08:00:00Z"))
        (rb,) = rebalances(ev)
        seen[day] = rb.removed
        assert {c.symbol for c in rb.constituents} == members(h)
    assert seen == {"2025-08-07": [], "2025-08-08": ["XRPUSDT"], "2025-08-09": ["ADAUSDT"]}
    # 08-08 08:00 is exactly 40 h before 08-10 00:00; ADA's 40 h mark (08-08 17:00) is after it
    assert parse_iso_ms("2025-08-10T00:00:00Z") - parse_iso_ms("2025-08-08T08:00:00Z") == 40 * X.HOUR_MS
    assert not {"XRPUSDT", "ADAUSDT"} & members(h)


def test_missed_rebalances_run_in_order_stamped_with_their_times():
    h = Harness(CAT, time=T0)
    h.send(C.SetIndexPrices(prices=all_prices()))
    ev = h.send(C.SetIndexPrices(prices={"BTCUSDT": d("2")}), time=T0 + 3 * X.DAY_MS)
    times = [rb.time for rb in rebalances(ev)]
    assert times == [parse_iso_ms(f"2025-08-0{n}T08:00:00Z") for n in (7, 8, 9)]
    assert ev.index(rebalances(ev)[-1]) < next(i for i, e in enumerate(ev)
                                               if isinstance(e, V.IndexPriceUpdated))


# -- weights and continuity -----------------------------------------------------------------------
def test_weights_are_equal_value_at_each_rebalance():
    h = Harness(CAT, time=T0)
    rng = random.Random(3)
    prices = {s: rng.randint(1, 10**12) for s in all_prices()}
    h.send(C.SetIndexPrices(prices=prices))
    comp = h.engine.pricing.composite
    n = len(comp.weights)
    for s, q in comp.weights.items():
        assert abs(q * comp.prices[s] - X.WEIGHT_SCALE) * 10**20 <= X.WEIGHT_SCALE  # 1e-20
        assert abs(comp.weight_in_percentage(s) - SCALE // n) <= 1
    info = FQ.composite_index(h.engine)
    assert info["symbol"] == ALL and info["component"] == "baseAsset"
    assert len(info["baseAssetList"]) == n
    row = next(r for r in info["baseAssetList"] if r["baseAsset"] == "BTC")
    assert row["quoteAsset"] == "USDT"
    # weightInQuantity x price summed over the members is the index value
    total = sum(d(r["weightInQuantity"]) * prices[r["symbol"]] for r in info["baseAssetList"])
    assert abs(total // SCALE - X.BASE_VALUE) <= n * 10**4
    assert abs(sum(d(r["weightInPercentage"]) for r in info["baseAssetList"]) - SCALE) <= n


def test_the_index_is_continuous_across_a_rebalance():
    h = Harness(CAT, time=T0)
    h.send(C.SetIndexPrices(prices=all_prices(price="100")))
    h.send(C.ScheduleDelisting(symbol="XRPUSDT", delist_time=parse_iso_ms("2025-08-08T00:00:00Z")))
    comp = h.engine.pricing.composite
    n = len(comp.weights)
    ev = h.send(C.SetIndexPrices(prices={"BTCUSDT": d("150"), "ETHUSDT": d("80")}))
    value = comp.value()
    # equal value: +50 % and -20 % on two of n members move the index by 30 % / n
    assert abs(value - (X.BASE_VALUE + X.BASE_VALUE * 30 // (100 * n))) <= 1
    assert [e.index_price for e in ev if isinstance(e, V.IndexPriceUpdated)
            and e.symbol == ALL] == [value]
    ev = h.send(C.SetIndexPrices(prices={"BTCUSDT": d("150")}),
                time=parse_iso_ms("2025-08-07T08:00:00Z"))
    (rb,) = rebalances(ev)
    assert rb.removed == ["XRPUSDT"]  # membership changes too
    assert rb.index_price == value and comp.value() == value  # exactly continuous
    # after it the weights are equal again: BTC's +10 % now moves the index by 10 % / (n - 1)
    h.send(C.SetIndexPrices(prices={"BTCUSDT": d("165")}))
    expected = value + value * 10 // 100 // (n - 1)
    assert abs(comp.value() - expected) <= 1
    # a price update that is not a member's leaves ALLUSDT alone
    ev = h.send(C.SetIndexPrices(prices={"BTCBUSD": d("165")}))
    assert [e.symbol for e in ev if isinstance(e, V.IndexPriceUpdated)] == ["BTCBUSD"]


def test_an_update_is_incremental_and_equals_the_full_sum():
    comp = X.CompositeIndex()
    rng = random.Random(9)
    prices = {f"S{i:03d}USDT": rng.randint(10**3, 10**13) for i in range(200)}
    comp.rebalance(X.BASE_VALUE, prices)
    assert comp.value() == X.BASE_VALUE
    for step in range(2000):
        s = f"S{rng.randrange(200):03d}USDT"
        p = max(1, comp.prices[s] + rng.randint(-comp.prices[s] // 50, comp.prices[s] // 50))
        assert comp.move(s, p)
        if step % 200 == 0:
            assert comp.total == comp.recompute_total()
    assert comp.total == comp.recompute_total()
    assert comp.value() == comp.base_value * comp.recompute_total() // comp.base_sum
    assert not comp.move("NOTAMEMBER", 5)
    before = comp.value()
    comp.rebalance(before, dict(comp.prices))
    assert comp.value() == before


def test_next_rebalance_time():
    r = parse_iso_ms("2025-08-07T08:00:00Z")
    assert X.next_rebalance_after(r - 1) == r
    assert X.next_rebalance_after(r) == r + X.DAY_MS
    assert X.next_rebalance_after(parse_iso_ms("2025-08-07T00:00:00Z")) == r


def test_listing_commands_are_checked_and_survive_a_snapshot():
    from engine.core import snapshot
    from engine.core import EngineConfig
    h = Harness(CAT, time=T0)
    assert rejection(h.send(C.ListSymbol(symbol="NOPEUSDT", onboard_time=T0))) == -1121
    assert rejection(h.send(C.ScheduleDelisting(symbol="XRPUSDT", delist_time=0))) == -1130
    before = h.engine.state_hash()
    h.send(C.ListSymbol(symbol="NEWAUSDT", onboard_time=T0 + X.DAY_MS))
    assert h.engine.state_hash() != before
    restored = snapshot.restore(CAT, snapshot.take(h.engine), EngineConfig(checkpoint_every=0))
    assert restored.pricing.listings == {"NEWAUSDT": T0 + X.DAY_MS}
    assert restored.state_hash() == h.engine.state_hash()


def test_the_json_feed_takes_index_prices_as_decimal_strings():
    import io
    import json

    from engine.core import EngineConfig
    from replay.feed import run_feed
    lines = [json.dumps({"op": "setIndexPrices", "time": "2025-08-06T09:00:00Z",
                         "prices": {"BTCUSDT": "30000.5", "ETHUSDT": "2000"}}),
             json.dumps({"op": "setIndexPrices", "prices": {"BTCUSDT": 1.5}})]
    out = io.BytesIO()
    res = run_feed(lines, out, CAT, EngineConfig(checkpoint_every=0))
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r["code"] for r in (row["error"] for row in rows if "error" in row)] == [-1102]
    btc = next(r for r in rows if r.get("e") == "indexPriceUpdated" and r["symbol"] == "BTCUSDT")
    assert btc["indexPrice"] == "30000.5" and btc["premiumIndex"] == "0"
    comp = next(r for r in rows if r.get("e") == "compositeRebalanced")
    assert comp["indexPrice"] == "1000" and {c["symbol"] for c in comp["constituents"]} == \
        {"BTCUSDT", "ETHUSDT"}
    assert res.commands == 1
