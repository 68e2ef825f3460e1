"""GTD, priceMatch, and the fidelity fixes: Binance's cost to open (no fee; open loss; a short
valued at max(last x 1.0015, mark, price)), the sample-weighted average premium index, the
funding cap as data. Worked cases exactly."""
from fractions import Fraction

import pytest

from engine.core import EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.core import funding as F
from engine.core.fixed import SCALE
from proto import commands as C
from proto import events as V
from tests.harness import Harness, d, kinds, rejection

BTC = "BTCUSDT"
MIN = 60_000


def order(h, account, side, qty, price=0, **kw):
    kw.setdefault("time_in_force", "GTC")
    return h.send(C.NewOrder(account=account, symbol=BTC, side=side, type="LIMIT",
                             quantity=d(qty), price=d(price) if price else 0, **kw))


@pytest.fixture
def h():
    h = Harness(time=1_700_000_000_000)
    for a in (1, 2):
        h.account(a, "1000000")
    h.mark(BTC, "30000")
    return h


# -- GTD -----------------------------------------------------------------------------------------
def test_gtd_needs_a_date_more_than_600_s_ahead_kept_to_the_second(h):
    now = h.time
    ev = order(h, 1, "BUY", "0.1", "29000", time_in_force="GTD")
    assert rejection(ev) == -1102 and "goodTillDate" in ev[0].msg
    ev = order(h, 1, "BUY", "0.1", "29000", time_in_force="GTD", good_till_date=now + 600_000)
    assert rejection(ev) == -5040
    assert rejection(order(h, 1, "BUY", "0.1", "29000", good_till_date=now + 700_000)) == -1106
    ev = order(h, 1, "BUY", "0.1", "29000", time_in_force="GTD",
               good_till_date=now + 601_999)
    assert kinds(ev) == ["OrderAccepted"] and ev[0].good_till_date == now + 601_000


def test_a_gtd_order_expires_at_its_date_by_command_time(h):
    now = h.time
    oid = order(h, 1, "BUY", "0.1", "29000", time_in_force="GTD",
                good_till_date=now + 3_600_000)[0].order_id
    ev = h.send(C.SetMarkPrice(symbol=BTC, mark_price=d("30001")), time=now + 3_599_999)
    assert kinds(ev) == ["MarkPriceUpdated"]
    ev = h.send(C.SetMarkPrice(symbol=BTC, mark_price=d("30002")), time=now + 3_600_000)
    assert [type(e).__name__ for e in ev] == ["OrderExpired", "MarkPriceUpdated"]
    assert (ev[0].order_id, ev[0].reason, ev[0].status) == (oid, "GTD", "EXPIRED")
    assert h.engine.symbols[BTC].book.orders == {}


def test_a_filled_or_canceled_gtd_order_leaves_nothing_to_expire(h):
    now = h.time
    order(h, 1, "SELL", "0.1", "30010", time_in_force="GTD", good_till_date=now + 700_000)
    order(h, 2, "BUY", "0.1", "30010")  # fills it
    oid = order(h, 1, "SELL", "0.1", "30020", time_in_force="GTD",
                good_till_date=now + 700_000)[0].order_id
    h.cancel(1, BTC, oid)
    assert not h.engine.orders.gtd
    assert kinds(h.mark(BTC, "30000")) == ["MarkPriceUpdated"]


# -- priceMatch ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,side,expected", [
    ("OPPONENT", "BUY", "30010"), ("OPPONENT_5", "BUY", "30050"),
    ("OPPONENT_10", "BUY", "30100"), ("OPPONENT_20", "BUY", "30200"),
    ("QUEUE", "BUY", "29990"), ("QUEUE_5", "BUY", "29950"), ("QUEUE_10", "BUY", "29900"),
    ("QUEUE_20", "BUY", "29800"),
    ("OPPONENT", "SELL", "29990"), ("QUEUE_5", "SELL", "30050"),
])
def test_price_match_takes_the_nth_level(h, mode, side, expected):
    for i in range(1, 21):
        order(h, 2, "BUY", "0.01", str(30000 - 10 * i))
        order(h, 2, "SELL", "0.01", str(30000 + 10 * i))
    ev = order(h, 1, side, "0.01", price_match=mode, self_trade_prevention_mode="NONE")
    assert ev[0].price == d(expected)


def test_price_match_errors(h):
    ev = order(h, 1, "BUY", "0.01", price_match="OPPONENT")
    assert rejection(ev) == -5041 and ev[0].msg == "No depth matches this BBO order"
    order(h, 2, "SELL", "0.01", "30010")
    ev = order(h, 1, "BUY", "0.01", "30010", price_match="OPPONENT")
    assert rejection(ev) == -1106 and ev[0].msg == "Parameter 'price' sent when not required."
    ev = h.send(C.NewOrder(account=1, symbol=BTC, side="BUY", type="MARKET",
                           quantity=d("0.01"), price_match="OPPONENT"))
    assert rejection(ev) == -5038


# -- the cost to open ----------------------------------------------------------------------------
def test_a_60000_usdt_order_at_100x_holds_600_not_630(h):
    h.leverage(1, BTC, 100)
    order(h, 1, "BUY", "2", "30000")  # 60,000 USDT at the mark: no open loss
    assert h.engine.accounts[1].order_margin == d("600")


def test_binances_worked_example_of_the_cost_to_open():
    """Binance FAQ "How to Calculate Cost Required to Open a Position": 1 BTC at 9,253.30, mark
    9,259.84, 20x. Long: 9,253.30 / 20 = 462.665 (Binance shows 462.66), no open loss. Short:
    open loss 1 x (9,259.84 - 9,253.30) = 6.54, valued at max(last x 1.0015, mark, price)."""
    h = Harness()
    for a in (1, 2, 3):
        h.account(a, "1000000")
    h.mark(BTC, "9259.84")
    h.order(2, BTC, "SELL", "0.001", "9259.0")  # a last price of 9,259.0
    h.order(3, BTC, "BUY", "0.001", "9259.0", tif="IOC")
    order(h, 1, "BUY", "1", "9253.3")
    assert h.engine.accounts[1].order_margin == d("462.665")
    h.send(C.CancelAllOrders(account=1, symbol=BTC))
    order(h, 1, "SELL", "1", "9253.3")
    assumed = max(-(-(d("9259") * 100_150_000) // SCALE), d("9259.84"), d("9253.3"))
    assert assumed == d("9272.8885")  # 9,259 x 1.0015
    expected = -(-(assumed + d("6.54") * 20) // 20)  # (assumed / 20 + open loss), rounded up
    assert h.engine.accounts[1].order_margin == expected == d("470.184425")
    # rules 1 (logs of the first release) charged notional / leverage plus the taker fee
    old = Harness(config=EngineConfig(checkpoint_every=0, rules=1))
    old.account(1, "1000000")
    old.mark(BTC, "9259.84")
    old.order(1, BTC, "BUY", "1", "9253.3")
    assert old.engine.accounts[1].order_margin == d("462.665") + d("4.62665")


# -- the average premium index and the cap -------------------------------------------------------
def test_binances_worked_average_premium_index():
    """Samples 0.0001, 0.0002, 0.0006 weigh 1, 2, 3: 0.0023 / 6 = 0.000383333..., kept to
    1e-8 (rounded toward zero): 0.00038333."""
    n, weighted = 0, 0
    for p in ("0.0001", "0.0002", "0.0006"):
        n, weighted = F.add_samples(n, weighted, d(p), 1)
    assert Fraction(2 * weighted, n * (n + 1)) == Fraction(23, 60000) * SCALE
    assert F.weighted_average_premium(n, weighted, 0) == d("0.00038333")


def test_the_engine_samples_every_5_seconds_and_weights_later_samples_more():
    h = Harness(time=8 * 3_600_000 - 15_000)  # 15 s before a settlement
    h.account(1, "1000000")
    h.account(2, "1000000")
    book_depth = [("BUY", "29990"), ("SELL", "30010")]
    for side, price in book_depth:
        h.order(2, BTC, side, "10", price)
    # index 29,960: impact bid 29,990 -> premium (29,990 - 29,960) / 29,960
    start = h.time
    for k, index in enumerate(("29960", "29980", "29990")):
        h.send(C.SetIndexPrices(prices={BTC: d(index)}), time=start + 5_000 * k)
    fs = h.engine.pricing.states[BTC]
    p1 = (d("29990") - d("29960")) * SCALE // d("29960")
    p2 = (d("29990") - d("29980")) * SCALE // d("29980")
    # samples at -15 s (p1), -10 s (p2), -5 s (0), and the one at the settlement (0)
    settled = [e for e in h.send(C.SetIndexPrices(prices={BTC: d("29990")}),
                                 time=8 * 3_600_000)
               if isinstance(e, V.FundingRateSet) and e.symbol == BTC]
    expected = (1 * p1 + 2 * p2) * 2 // (4 * 5)
    assert settled[0].average_premium_index == expected
    assert fs.samples == 0  # a new interval begins


def test_the_funding_cap_multiplier_and_an_absolute_cap_are_data():
    doc_overrides = {"symbols": [
        {"symbol": "BTCUSDT", "fundingCapMultiplier": "1"},
        {"symbol": "ETHUSDT", "fundingCapSchedule": [
            {"effective": "2020-01-01T00:00:00Z", "cap": "0.02"}]}]}
    cat = catalogue_mod.load(overrides=doc_overrides)
    t = 0
    # BTCUSDT tier 1 MMR 0.4 %: multiplier 1 gives +-0.4 % instead of 0.3 %
    assert F.funding_cap(cat.spec("BTCUSDT"), t) == d("0.004")
    assert F.funding_cap(catalogue_mod.load().spec("BTCUSDT"), t) == d("0.003")
    assert F.funding_cap(cat.spec("ETHUSDT"), d("0") + 1_600_000_000_000) == d("0.02")
    assert F.funding_cap(cat.spec("ALLUSDT"), t) == d("0.03")  # seed 000: +-3 %


def test_rejection_texts_are_binances_with_the_detail_apart(h):
    ev = order(h, 1, "BUY", "0.1", "30000.05")
    assert (ev[0].msg, ev[0].detail) == ("Price not increased by tick size.", "tick size 0.1")
    ev = order(h, 1, "BUY", "0.1", "35000")
    assert (ev[0].code, ev[0].msg) == (-4016, "Price is higher than mark price multiplier cap.")
    ev = order(h, 1, "SELL", "0.1", "25000")
    assert (ev[0].code, ev[0].msg) == (-4024, "Price is lower than mark price multiplier floor.")
    ev = order(h, 1, "BUY", "0.0001", "30000")
    assert (ev[0].code, ev[0].msg) == (-4004, "Quantity less than min quantity.")
    ev = order(h, 1, "BUY", "0.0015", "30000")
    assert (ev[0].code, ev[0].msg) == (-4023, "Qty not increased by step size.")
    ev = order(h, 1, "BUY", "0.001", "4000")
    assert (ev[0].code, ev[0].msg) == (-4164, "Order's notional must be no smaller than 5 "
                                              "(unless you choose reduce only)")
