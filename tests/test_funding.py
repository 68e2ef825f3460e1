"""Premium index, mark price, funding rate and caps, settlement, and what funding does to
accounts (conservation, liquidation), replay and queries."""
from fractions import Fraction
from itertools import permutations

import msgspec
import pytest

from engine.core import catalogue as catalogue_mod
from engine.core import funding as F
from engine.views import funding as FQ
from engine.core import markprice as M
from engine.core import snapshot
from engine.core import Engine, EngineConfig
from engine.core.fixed import SCALE
from engine.core.timeutil import parse_iso_ms
from proto import commands as C
from proto import events as V
from proto import json_edge
from tests.harness import Harness, d, kinds, rejection
from tests.test_risk import RiskHarness

BTC, ETH, ALL = "BTCUSDT", "ETHUSDT", "ALLUSDT"
CAT = catalogue_mod.load(overrides={"symbols": [
    {"symbol": s, "makerFee": "0", "takerFee": "0"} for s in (BTC, ETH, ALL)]})
H = 3_600_000
T7 = parse_iso_ms("2025-08-06T07:00:00Z")
T8 = parse_iso_ms("2025-08-06T08:00:00Z")


def pct(text: str) -> int:
    """'0.05' (percent) -> rate in 1e-8 units."""
    return d(text) // 100


def of(events, kind, symbol=None):
    """Events of a kind (of one symbol: the first index price also composes ALLUSDT, whose
    index, mark and funding events then come along)."""
    return [e for e in events if isinstance(e, kind) and (symbol is None or e.symbol == symbol)]


def trade(h, long_acct, short_acct, symbol, qty, price):
    h.order(short_acct, symbol, "SELL", qty, price)
    assert rejection(h.order(long_acct, symbol, "BUY", qty, price)) is None


def conserved(e: Engine) -> bool:
    wallets = sum(a.wallet for a in e.accounts.values())
    costs = sum(p.cost for a in e.accounts.values() for p in a.positions.values())
    return wallets + e.ledger.fees_collected + e.ledger.insurance_fund - costs == \
        e.ledger.total_deposits - e.ledger.total_withdrawals


# -- the rate formula and its clamps ---------------------------------------------------------------
@pytest.mark.parametrize("premium, rate", [
    ("0.01", "0.01"),      # P = I
    ("0.03", "0.01"),      # I - P inside the clamp: F = I
    ("0.06", "0.01"),      # I - P = -0.05 %: exactly at the lower clamp
    ("0.07", "0.02"),      # beyond it: F = P - 0.05 %
    ("-0.04", "0.01"),     # I - P = +0.05 %: exactly at the upper clamp
    ("-0.05", "0"),        # beyond it: F = P + 0.05 %
    ("-0.10", "-0.05"),
    ("0.25", "0.20"),
])
def test_funding_rate_at_and_beyond_both_clamps(premium, rate):
    assert F.funding_rate(pct(premium)) == pct(rate)


def test_caps_all_3_percent_and_default_0_75_mmr():
    spec = CAT.spec(ALL)
    cap = F.funding_cap(spec, T8)
    assert cap == pct("3")
    assert F.settlement_rate(pct("5"), cap) == pct("3")  # 4.95 % capped
    assert F.settlement_rate(pct("3.05"), cap) == pct("3")  # exactly at the cap
    assert F.settlement_rate(pct("3.06"), cap) == pct("3")
    assert F.settlement_rate(pct("-5"), cap) == pct("-3")
    assert F.settlement_rate(pct("2"), cap) == pct("1.95")  # inside: not capped
    btc = F.funding_cap(CAT.spec(BTC), T8)
    assert btc == pct("0.3")  # 0.75 x 0.4 %
    assert F.settlement_rate(pct("1"), btc) == pct("0.3")
    assert F.settlement_rate(pct("-1"), btc) == pct("-0.3")
    assert F.funding_cap(CAT.spec("ADAUSDT"), T8) == pct("0.4875")  # 0.75 x 0.65 %
    assert F.funding_cap(CAT.spec("DOGEUSDT"), T8) == pct("0.75")  # 0.75 x 1 %


def test_the_ethusdt_default_cap_follows_its_bracket_table():
    spec = CAT.spec(ETH)
    switch = parse_iso_ms("2022-09-13T07:00:00Z")
    assert F.funding_cap(spec, switch - 1) == pct("0.375")  # 0.75 x 0.5 %
    assert F.funding_cap(spec, switch) == pct("0.4875")  # 0.75 x 0.65 %
    # through the engine: settlements at 00:00 and 08:00 on either side of the switch
    h = Harness(CAT, time=parse_iso_ms("2022-09-12T23:00:00Z"))
    h.account(1)
    h.order(1, ETH, "BUY", "20", "1650")  # impact bid 1,650 against an index of 1,500: +10 %
    h.send(C.SetIndexPrices(prices={ETH: d("1500")}))
    ev = h.send(C.SetIndexPrices(prices={ETH: d("1500")}), time=parse_iso_ms("2022-09-13T00:00:00Z"))
    (fr,) = of(ev, V.FundingRateSet, ETH)
    assert (fr.funding_cap, fr.funding_rate) == (pct("0.375"), pct("0.375"))
    ev = h.send(C.SetIndexPrices(prices={ETH: d("1500")}), time=parse_iso_ms("2022-09-13T08:00:00Z"))
    # ETHUSDT's table (07:00) and ETHUSD_PERP's (07:30, COIN-M) switch before the settlement
    assert kinds(ev)[:3] == ["BracketTableSwitched", "BracketTableSwitched", "FundingRateSet"]
    assert [e.symbol for e in ev[:2]] == [ETH, "ETHUSD_PERP"]
    (fr,) = of(ev, V.FundingRateSet, ETH)
    assert (fr.funding_cap, fr.funding_rate) == (pct("0.4875"), pct("0.4875"))


def test_a_per_symbol_cap_is_effective_dated_too():
    cat = catalogue_mod.load(overrides={"symbols": [{"symbol": ALL, "fundingCapSchedule": [
        {"effective": "2025-09-01T00:00:00Z", "cap": "0.02"},
        {"effective": "2025-10-01T00:00:00Z", "cap": None}]}]})
    spec = cat.spec(ALL)
    assert F.funding_cap(spec, parse_iso_ms("2025-08-31T23:59:59Z")) == pct("3")
    assert F.funding_cap(spec, parse_iso_ms("2025-09-01T00:00:00Z")) == pct("2")
    assert F.funding_cap(spec, parse_iso_ms("2025-10-01T00:00:00Z")) == pct("0.4875")  # default


def test_settled_rates_are_capped_in_the_engine():
    h = Harness(CAT, time=T7)
    h.account(1, "10000000")
    h.account(2, "10000000")
    h.account(3, "10000000")
    trade(h, 1, 2, ALL, "10", "1000")
    trade(h, 1, 2, BTC, "1", "30000")
    h.order(3, ALL, "BUY", "20", "1100")  # 22,000 >= the 15,000 impact notional: +10 %
    h.order(3, BTC, "BUY", "1", "33000")  # 33,000 >= 25,000: +10 %
    prices = {s: d("30000") if s == BTC else d("2") for s in CAT.symbols
              if s != ALL and not CAT.symbols[s].inverse}  # COIN-M: their pair's index
    h.send(C.SetIndexPrices(prices=prices))
    assert h.engine.pricing.states[ALL].index == d("1000")  # the composite at its base value
    ev = h.send(C.SetIndexPrices(prices={BTC: d("30000")}), time=T8)
    rates = {e.symbol: e for e in of(ev, V.FundingRateSet)}
    assert rates[ALL].average_premium_index == pct("10")
    assert rates[ALL].funding_rate == pct("3")
    assert rates[BTC].funding_rate == pct("0.3")
    assert rates["ETHUSDT"].funding_rate == pct("0.01")  # an empty book: P = 0, F = I
    paid = {(e.account, e.symbol): e.amount for e in of(ev, V.FundingPaid)}
    assert paid == {(1, ALL): -d("300"), (2, ALL): d("300"),  # 10 x 1,000 x 3 %
                    (1, BTC): -d("90"), (2, BTC): d("90")}  # 1 x 30,000 x 0.3 %


# -- premium index and impact prices --------------------------------------------------------------
@pytest.mark.parametrize("bid, ask, premium", [
    ("29990", "30010", "0"),  # both impact prices around the index
    ("30000", "30000", "0"),  # touching it
    ("30030", "30060", "0.1"),  # impact bid above the index
    ("29940", "29970", "-0.1"),  # impact ask below it
    ("0", "29970", "-0.1"),  # no impact bid (too thin): only the ask counts
    ("30030", "0", "0.1"),
    ("0", "0", "0"),
])
def test_premium_index_inside_and_outside_the_index(bid, ask, premium):
    assert F.premium_index(d(bid), d(ask), d("30000")) == pct(premium)


def test_impact_prices_walk_the_book_to_the_impact_notional():
    h = Harness(CAT, time=T7)
    h.account(2, "10000000")
    h.order(2, BTC, "SELL", "0.5", "30000")
    h.order(2, BTC, "SELL", "1", "30100")
    h.order(2, BTC, "BUY", "0.5", "29900")
    h.order(2, BTC, "BUY", "0.2", "29800")  # bids hold 20,910 < 25,000: no impact bid
    ev = h.send(C.SetIndexPrices(prices={BTC: d("30050")}))
    (ip,) = of(ev, V.IndexPriceUpdated, BTC)
    # 25,000 USDT (200 x 125x): 0.5 at 30,000 then 10,000 USDT at 30,100
    exact = Fraction(25000) / (Fraction(1, 2) + Fraction(10000, 30100))
    assert ip.impact_ask_price == -(-exact * SCALE // 1)  # rounded up
    assert ip.impact_bid_price == 0
    assert ip.mid_price == d("29950")
    assert ip.premium_index == -((d("30050") - ip.impact_ask_price) * SCALE // d("30050"))
    assert F.impact_notional(75) == d("15000")  # the example: 200 / (1/75)


# -- mark price ----------------------------------------------------------------------------------
@pytest.mark.parametrize("order", list(permutations(range(3))))
def test_mark_price_is_the_median_in_each_ordering(order):
    # the three candidate prices (price1, price2, last), ranked by `order`
    levels = [d("29900"), d("30000"), d("30100")]
    want_p1, want_p2, last = (levels[i] for i in order)
    # price1 = index x (1 + rate x 4h / 8h); price2 = index + basis: choose the index and rate
    index = d("29950")
    rate = Fraction(want_p1 - index) / index * 2  # 4 h to go: half the rate
    rate_units = int(rate * SCALE)
    p1 = M.price1(index, rate_units, 4 * H)
    assert abs(p1 - want_p1) <= SCALE // 1000  # the rate is rounded to 1e-8
    basis = want_p2 - index
    mark = M.mark_price(index, rate_units, 4 * H, basis, last)
    assert mark == sorted([p1, want_p2, last])[1]
    assert mark == [p1, want_p2, last][order.index(1)]


@pytest.mark.parametrize("bid, ask, last, winner", [
    ("30400", "30600", "30200", "last"),  # index 30,000 < last 30,200 < mid 30,500
    ("30050", "30150", "30300", "price2"),  # index < mid 30,100 < last
    ("29750", "29850", "30300", "price1"),  # mid 29,800 < index < last
    ("29750", "29850", "29500", "price2"),  # last < mid < index
])
def test_the_engine_marks_at_the_median(bid, ask, last, winner):
    h = Harness(CAT, time=T7)
    for a in (1, 2, 3):
        h.account(a, "10000000")
    trade(h, 1, 2, BTC, "1", last)
    h.order(3, BTC, "BUY", "1", bid)
    h.order(3, BTC, "SELL", "1", ask)
    ev = h.send(C.SetIndexPrices(prices={BTC: d("30000")}))
    (mp,) = of(ev, V.MarkPriceUpdated, BTC)
    mid = (d(bid) + d(ask)) // 2
    expected = {"price1": d("30000"), "price2": mid, "last": d(last)}[winner]
    assert mp.mark_price == expected and mp.index_price == d("30000")
    assert h.engine.symbols[BTC].mark == expected


def test_price1_carries_the_last_rate_over_the_time_to_the_next_funding():
    h = Harness(CAT, time=T7)
    h.account(1, "10000000")
    h.order(1, BTC, "BUY", "1", "33000")  # +10 %: the 08:00 rate is the 0.3 % cap
    h.send(C.SetIndexPrices(prices={BTC: d("30000")}))
    h.send(C.SetIndexPrices(prices={BTC: d("30000")}), time=T8)
    h.send(C.CancelAllOrders(account=1, symbol=BTC))
    ev = h.send(C.SetIndexPrices(prices={BTC: d("30000")}), time=T8 + 4 * H)  # 4 h to 16:00
    (mp,) = of(ev, V.MarkPriceUpdated, BTC)
    # price1 = 30,000 x (1 + 0.3 % x 4/8) = 30,045; price2 = the index; no trade: index
    assert M.price1(d("30000"), pct("0.3"), 4 * H) == d("30045")
    assert mp.mark_price == d("30000")  # the median of 30,045, 30,000, 30,000
    row = FQ.premium_index(h.engine, BTC)
    assert row["lastFundingRate"] == "0.003" and row["nextFundingTime"] == T8 + 8 * H


def test_a_fed_mark_is_refused_once_the_symbol_has_an_index():
    h = Harness(CAT, time=T7)
    assert kinds(h.mark(BTC, "30000")) == ["MarkPriceUpdated"]
    h.send(C.SetIndexPrices(prices={BTC: d("30000")}))
    assert rejection(h.mark(BTC, "31000")) == -1130
    assert h.engine.symbols[BTC].mark == d("30000")
    assert kinds(h.mark(ETH, "2000")) == ["MarkPriceUpdated"]  # no index: still fed


# -- settlement ----------------------------------------------------------------------------------
def _btc_positions(h):
    h.account(1, "100000")
    h.account(2, "100000")
    h.account(3, "100000")
    trade(h, 1, 2, BTC, "1", "30000")
    h.order(3, BTC, "BUY", "1", "30030")  # impact bid 30,030


# rules 2 (Binance's): 540 five-second samples at 0.1 % (07:00:00 to 07:44:55), then 181 at 0
# (07:45:00 to 08:00:00), weighted 1..721: P = 0.001 x (540 x 541 / 2) / (721 x 722 / 2)
# = 0.00056120 (rounded toward zero); F = P + clamp(0.01 % - P, +-0.05 %) = 0.01 %.
# rules 1 (the first release's time weighting): 0.1 % for 45 of 60 minutes = 0.075 %.
@pytest.mark.parametrize("rules,average,rate,payment", [
    (2, 100_000 * 540 * 541 // (721 * 722), "0.01", "3.003"),
    (1, pct("0.075"), "0.025", "7.5075")])
def test_settlement_at_exactly_0800_and_not_a_tick_before(rules, average, rate, payment):
    h = Harness(CAT, config=EngineConfig(checkpoint_every=0, rules=rules), time=T7)
    _btc_positions(h)
    h.send(C.SetIndexPrices(prices={BTC: d("30000")}))  # premium 0.1 % from 07:00
    h.send(C.SetIndexPrices(prices={BTC: d("30030")}), time=T7 + 45 * 60_000)  # 0 from 07:45
    ev = h.send(C.SetIndexPrices(prices={BTC: d("30030")}), time=T8 - 1)
    assert not of(ev, V.FundingRateSet) and not of(ev, V.FundingPaid)
    assert not of(ev, V.CompositeRebalanced)
    assert h.wallet(1) == d("100000")
    ev = h.send(C.CancelAllOrders(account=3, symbol=BTC), time=T8)
    # ALLUSDT (composed of BTC alone here) settles first, without positions; then BTC
    assert kinds(ev)[:4] == ["FundingRateSet", "FundingRateSet", "FundingPaid", "FundingPaid"]
    fr = ev[1]
    assert fr.funding_time == T8 and fr.symbol == BTC
    assert fr.average_premium_index == average == (56120 if rules == 2 else 75000)
    assert fr.funding_rate == pct(rate)
    assert fr.mark_price == d("30030")
    paid = of(ev, V.FundingPaid)
    assert [(p.account, p.amount, p.funding_time) for p in paid] == [
        (1, -d(payment), T8), (2, d(payment), T8)]  # 30,030 x the rate
    assert h.wallet(1) == d("100000") - d(payment)
    ev = h.send(C.CancelAllOrders(account=3, symbol=BTC), time=T8 + 1)
    assert not of(ev, V.FundingRateSet)  # once


def test_missed_settlements_run_in_order_stamped_with_their_times():
    h = Harness(CAT, time=T7)
    _btc_positions(h)
    h.send(C.SetIndexPrices(prices={BTC: d("30000")}))
    ev = h.send(C.CancelAllOrders(account=3, symbol=BTC), time=T8 + 17 * H)  # next day 01:00
    assert [e.funding_time for e in of(ev, V.FundingRateSet, BTC)] == [T8, T8 + 8 * H, T8 + 16 * H]
    # the premium held over the gap: each interval settles at the same rate
    assert len({e.funding_rate for e in of(ev, V.FundingRateSet, BTC)}) == 1
    hist = FQ.funding_rate_history(h.engine, BTC)
    assert [r["fundingTime"] for r in hist] == [T8, T8 + 8 * H, T8 + 16 * H]
    assert FQ.funding_rate_history(h.engine, BTC, limit=2)[0]["fundingTime"] == T8 + 8 * H
    assert set(hist[0]) == {"symbol", "fundingRate", "fundingTime", "markPrice"}


def test_payments_sum_to_zero_payers_round_up_receivers_share_the_rest():
    h = Harness(CAT, time=T7)
    for a in range(1, 8):
        h.account(a, "100000")
    for short, qty in ((4, "0.005"), (5, "0.009"), (6, "0.007")):
        h.order(short, BTC, "SELL", qty, "30000")
    for long_, qty in ((1, "0.003"), (2, "0.007"), (3, "0.011")):
        assert rejection(h.order(long_, BTC, "BUY", qty, "30000")) is None
    h.order(7, BTC, "BUY", "1", "30010.4")
    h.send(C.SetIndexPrices(prices={BTC: d("29987.13")}))
    wallets = {a: h.wallet(a) for a in range(1, 8)}
    ev = h.send(C.SetIndexPrices(prices={BTC: d("29987.13")}), time=T8)
    (fr,) = of(ev, V.FundingRateSet, BTC)
    rate, mark = fr.funding_rate, fr.mark_price
    assert rate > 0 and rate % 1000 != 0  # an awkward rate: every payment has a remainder
    paid = of(ev, V.FundingPaid)
    assert sum(p.amount for p in paid) == 0
    for p in paid:
        exact = Fraction(abs(p.position_amt) * mark * rate, SCALE * SCALE)
        if p.position_amt > 0:  # longs pay, rounded up
            assert -p.amount == -(-exact.numerator // exact.denominator)
        else:  # shorts receive at least their exact amount rounded down, at most one unit more
            assert exact - 1 < p.amount <= exact + 1
        assert h.wallet(p.account) == wallets[p.account] + p.amount
    assert {p.account for p in paid} == {1, 2, 3, 4, 5, 6}
    assert conserved(h.engine)


def test_allocation_ties_go_to_the_lower_account():
    # the payer owes 2 units; three receivers of 1, 1 and 2: 0.5, 0.5, 1 -> one unit left over
    out = F.allocate([(1, 4), (2, -1), (3, -1), (4, -2)], SCALE, SCALE // 2)
    assert out == [(1, -2, 4), (2, 1, -1), (4, 1, -2)]
    assert F.allocate([(1, 3), (2, -3)], SCALE, SCALE // 2) == [(1, -2, 3), (2, 2, -3)]  # 1.5 up
    assert F.allocate([(1, 3), (2, -3)], SCALE, -(SCALE // 2)) == [(1, 2, 3), (2, -2, -3)]
    assert F.allocate([(1, 3), (2, -3)], SCALE, 0) == []


def test_an_isolated_position_pays_from_its_isolated_margin():
    h = Harness(CAT, time=T7)
    h.account(2, "100000")
    h.account(4, "100000")
    h.send(C.SetMarginType(account=4, symbol=BTC, margin_type="ISOLATED"))
    trade(h, 4, 2, BTC, "1", "30000")
    margin = h.position(4, BTC).isolated_margin
    h.send(C.SetIndexPrices(prices={BTC: d("30000")}))
    ev = h.send(C.SetIndexPrices(prices={BTC: d("30000")}), time=T8)
    (mine,) = [p for p in of(ev, V.FundingPaid) if p.account == 4]
    assert mine.amount < 0
    assert h.position(4, BTC).isolated_margin == margin + mine.amount
    assert conserved(h.engine)


def test_a_funding_payment_tips_an_account_over_100_percent_and_it_is_liquidated():
    h = RiskHarness(CAT, time=T7)
    h.account(1, "1000")
    h.account(2, "1000000")
    h.leverage(1, BTC, 50)
    trade(h, 1, 2, BTC, "1", "30000")
    h.order(2, BTC, "BUY", "1", "29500")  # impact bid 29,500
    ev = h.send(C.SetIndexPrices(prices={BTC: d("29125")}))
    assert h.engine.symbols[BTC].mark == d("29125")
    # balance 1,000 - 875 = 125 against MM 116.5: 93 %, a margin call but no liquidation
    assert of(ev, V.MarginCallIssued) and not of(ev, V.LiquidationStarted)
    # the first command at 08:00, whatever it is, settles (the next index price would raise
    # the mark: price1 = index x (1 + 0.3 %) right after a settlement)
    ev = h.send(C.Deposit(account=2, amount=d("1")), time=T8)
    (fr,) = of(ev, V.FundingRateSet, BTC)
    assert fr.funding_rate == pct("0.3")  # premium 1.29 % capped at 0.75 x 0.4 %
    paid = {p.account: p.amount for p in of(ev, V.FundingPaid)}
    assert paid == {1: -d("87.375"), 2: d("87.375")}
    started = of(ev, V.LiquidationStarted)
    assert [s.account for s in started] == [1]
    assert ev.index(started[0]) > ev.index(next(e for e in ev if isinstance(e, V.FundingPaid)))
    assert h.position(1, BTC).qty == 0
    assert h.wallet(1) >= 0 and conserved(h.engine)


# -- replay, snapshots, queries, the JSON edge ----------------------------------------------------
def _session():
    h = Harness(CAT, time=T7)
    for a in (1, 2, 3):
        h.account(a, "1000000")
    trade(h, 1, 2, ALL, "30", "1000")
    trade(h, 2, 1, BTC, "0.5", "30000")
    h.order(3, ALL, "BUY", "20", "1010")
    h.order(3, ALL, "SELL", "20", "1030")
    h.send(C.ListSymbol(symbol="ADAUSDT", onboard_time=T8 + 2 * H))
    h.send(C.ScheduleDelisting(symbol="XRPUSDT", delist_time=T8 + 3 * 24 * H))
    prices = {s: d(str(1 + i % 7)) for i, s in enumerate(sorted(CAT.symbols)) if s != ALL}
    h.send(C.SetIndexPrices(prices=prices))
    for step in range(1, 12):
        t = T7 + step * 5 * H
        h.send(C.SetIndexPrices(prices={BTC: d(str(30000 + 37 * step)),
                                        "ADAUSDT": d(str(1 + step % 3))}), time=t)
    return h


def test_the_log_alone_rebuilds_the_state_and_a_snapshot_restores_it():
    h = _session()
    records = h.records
    assert any(of(r[3], V.FundingPaid) for r in records)
    assert sum(len(of(r[3], V.CompositeRebalanced)) for r in records) >= 3
    rebuilt = Engine(CAT, EngineConfig(checkpoint_every=0))
    for seq, t, _, events in records:
        rebuilt.apply_record(seq, t, events)
    assert rebuilt.state_hash() == h.engine.state_hash()
    again = Engine(CAT, EngineConfig(checkpoint_every=0))  # re-driven: the same events
    enc = msgspec.msgpack.encode
    for seq, t, cmd, events in records:
        assert enc(again.handle(cmd, seq, t)) == enc(events)
    restored = snapshot.restore(CAT, snapshot.take(h.engine), EngineConfig(checkpoint_every=0))
    assert restored.state_hash() == h.engine.state_hash()
    assert restored.pricing.composite.total == h.engine.pricing.composite.total
    t = records[-1][1] + 9 * H  # both settle and rebalance the same way from here
    cmd = C.SetIndexPrices(prices={BTC: d("31000")})
    assert enc(restored.handle(cmd, 999, t)) == enc(h.engine.handle(cmd, 999, t))
    assert restored.state_hash() == h.engine.state_hash()


def test_premium_index_query_in_binance_shape():
    h = _session()
    row = FQ.premium_index(h.engine, ALL)
    assert set(row) >= {"symbol", "markPrice", "indexPrice", "estimatedSettlePrice",
                        "lastFundingRate", "interestRate", "nextFundingTime", "time"}
    assert row["interestRate"] == "0.0001"
    assert d(row["indexPrice"]) == h.engine.pricing.composite.value()
    assert row["nextFundingTime"] % (8 * H) == 0 and row["nextFundingTime"] > h.engine.time
    assert len(FQ.premium_index(h.engine)) == len(CAT.symbols)
    assert FQ.premium_index(h.engine, "ETHUSDT_0924")["interestRate"] == "0"
    with pytest.raises(KeyError):
        FQ.premium_index(h.engine, "NOPE")


def test_index_commands_and_funding_events_at_the_json_edge():
    cmd = json_edge.decode_command({"op": "setIndexPrices",
                                    "prices": {"BTCUSDT": "30000.5", "ETHUSDT": "2000"}})
    assert cmd == C.SetIndexPrices(prices={BTC: d("30000.5"), ETH: d("2000")})
    with pytest.raises(json_edge.BadInput):
        json_edge.decode_command({"op": "setIndexPrices", "prices": {"BTCUSDT": 30000.5}})
    with pytest.raises(json_edge.BadInput):
        json_edge.decode_command({"op": "setIndexPrices", "prices": {"BTCUSDT": "1e3"}})
    assert json_edge.decode_command({"op": "scheduleDelisting", "symbol": BTC,
                                     "delistTime": 5}) == C.ScheduleDelisting(symbol=BTC,
                                                                              delist_time=5)
    wire = json_edge.to_wire(V.FundingRateSet(
        symbol=BTC, funding_time=T8, funding_rate=pct("0.3"), average_premium_index=pct("1"),
        interest_rate=F.INTEREST_RATE, funding_cap=pct("0.3"), mark_price=d("30000"),
        index_price=d("30000")))
    assert wire["fundingRate"] == "0.003" and wire["fundingTime"] == T8
    assert wire["averagePremiumIndex"] == "0.01" and wire["markPrice"] == "30000"
    assert json_edge.to_wire(cmd)["prices"] == {"BTCUSDT": "30000.5", "ETHUSDT": "2000"}
