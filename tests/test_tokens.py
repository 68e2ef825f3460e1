"""Leveraged tokens (seed 003): catalogue, NAV, subscription and redemption with their daily
limits, the spot books and their +/-90 % price range, funding into NAV, rebalancing, and the
invariants (supply, NAV x outstanding vs issuer equity, conservation) through replay."""
import io
import json
import random
from fractions import Fraction

import msgspec
import pytest

from engine.core import catalogue as catalogue_mod
from engine.core import snapshot
from engine.views import tokens as TQ
from engine.core import token_specs as T
from engine.core import Engine, EngineConfig
from engine.core.fixed import SCALE
from engine.core.timeutil import parse_iso_ms
from proto import commands as C
from proto import events as V
from proto import json_edge
from replay.feed import run_feed
from tests.harness import Harness, d, kinds, rejection
from tests.test_risk import RiskHarness

BTC, ETH = "BTCUSDT", "ETHUSDT"
# futures fees 0 on BTC (exact figures); ETH keeps its fees (hedge costs)
CAT = catalogue_mod.load(overrides={"symbols": [
    {"symbol": BTC, "makerFee": "0", "takerFee": "0"}]})
T7 = parse_iso_ms("2025-08-06T07:00:00Z")
T8 = parse_iso_ms("2025-08-06T08:00:00Z")
DAY = 86_400_000
MM = 100  # market maker


def of(events, kind, **match):
    return [e for e in events if isinstance(e, kind) and
            all(getattr(e, k) == v for k, v in match.items())]


class TokenHarness(Harness):
    def __init__(self, catalogue=CAT, time=T7):
        super().__init__(catalogue, EngineConfig(checkpoint_every=0), time)

    def user(self, account: int, spot: str = "100000", futures: str = "0"):
        self.account(account, str(int(spot) + int(futures)))
        assert rejection(self.send(C.FuturesTransfer(account=account, amount=d(spot),
                                                     type=2))) is None

    def launch(self, *names):
        for n in names:
            assert rejection(self.send(C.LaunchToken(token_name=n))) is None

    def subscribe(self, account, token, cost):
        return self.send(C.SubscribeToken(account=account, token_name=token, cost=d(cost)))

    def redeem(self, account, token, amount):
        return self.send(C.RedeemToken(account=account, token_name=token, amount=d(amount)))

    def spot(self, account, symbol, side, qty, price=None, tif=None, **kw):
        type_ = "LIMIT" if price is not None else "MARKET"
        return self.send(C.NewSpotOrder(account=account, symbol=symbol, side=side, type=type_,
                                        quantity=d(qty), price=d(price) if price else 0,
                                        time_in_force=tif, **kw))

    def ts(self, name):
        return self.engine.tokens.tokens[name]

    def nav(self, name):
        return self.engine.tokens.token_nav(self.ts(name))

    def balance(self, account, asset="USDT"):
        w = self.engine.spot.wallets.get(account)
        if w is None:
            return 0
        return w.usdt if asset == "USDT" else w.tokens.get(asset, 0)


def invariants(e: Engine) -> None:
    """Supply, NAV vs equity, conservation, locks; raises AssertionError."""
    for name, ts in e.tokens.tokens.items():
        assert ts.issued_total - ts.redeemed_total == ts.outstanding
        held = sum(w.tokens.get(name, 0) for w in e.spot.wallets.values())
        assert held + e.spot.markets[ts.spec.spot_symbol].fee_tokens == ts.outstanding
        equity, _, _ = e.tokens.figures(ts)
        nav, _ = e.tokens.token_nav(ts)
        if ts.outstanding and equity > 0:
            # NAV rounded down to 1e-8: NAV x N <= equity < (NAV + 1e-8) x N
            assert nav * ts.outstanding <= equity * SCALE < (nav + 1) * ts.outstanding
    for aid, w in e.spot.wallets.items():
        assert w.usdt >= 0 and all(q >= 0 for q in w.tokens.values())
        assert w.usdt_locked <= w.usdt
    # locks are what the resting orders hold
    locked: dict[int, int] = {}
    for m in e.spot.markets.values():
        for o in m.book.orders.values():
            if o.side == "BUY":
                locked[o.account] = locked.get(o.account, 0) + o.remaining * o.price // SCALE
    assert {a: w.usdt_locked for a, w in e.spot.wallets.items() if w.usdt_locked} == \
        {a: v for a, v in locked.items() if v}
    wallets = sum(a.wallet for a in e.accounts.values())
    spot = sum(w.usdt for w in e.spot.wallets.values())
    costs = sum(p.cost for a in e.accounts.values() for p in a.positions.values())
    assert wallets + spot + e.ledger.fees_collected + e.ledger.insurance_fund - costs == \
        e.ledger.total_deposits - e.ledger.total_withdrawals


def book(h, symbol, bids=(), asks=(), account=MM):
    for price, qty in bids:
        assert rejection(h.order(account, symbol, "BUY", qty, price)) is None
    for price, qty in asks:
        assert rejection(h.order(account, symbol, "SELL", qty, price)) is None


def setup_btc(h, mark="50000", tokens=("BTCUP", "BTCDOWN")):
    h.mark(BTC, mark)
    h.account(MM, "100000000")
    h.launch(*tokens)


# -- catalogue -------------------------------------------------------------------------------------
def test_the_seed_tokens_and_their_limits_are_catalogue_data():
    tokens = CAT.tokens
    bases = ["BTC", "ETH", "ADA", "LINK", "BNB", "XTZ", "EOS", "TRX", "DOT", "XRP"]
    assert list(tokens) == [b + s for b in bases for s in ("UP", "DOWN")]
    for name, spec in tokens.items():
        assert spec.underlying == spec.base_asset + "USDT" and spec.underlying in CAT.symbols
        assert spec.side == (T.UP if name.endswith("UP") else T.DOWN)
        assert spec.spot_symbol == name + "USDT"
        assert (spec.band_low, spec.band_high, spec.price_band) == (d("1.5"), d("3"), d("0.9"))
        assert {"initialNav", "targetLeverage", "navStep", "subscriptionFee"} <= set(spec.assumed)
        assert "leverageBand" not in spec.assumed and "priceBand" not in spec.assumed
        limits = (spec.daily_subscribe_limit, spec.user_daily_subscribe_limit,
                  spec.daily_redeem_limit, spec.user_daily_redeem_limit)
        if spec.base_asset == "LINK":
            assert limits == (d("10000"), d("100"), d("1000000"), d("10000"))
        else:
            assert limits == (d("100000"), d("1000"), d("100000"), d("1000"))
    assert len({s.issuer for s in tokens.values()}) == 20
    assert tokens["BTCUP"].issuer == 900_000_001 and tokens["XRPDOWN"].issuer == 900_000_020


def test_a_log_without_tokens_keeps_its_state_shape():
    h = Harness(CAT)
    h.account(1)
    h.order(1, BTC, "BUY", "1", "30000")
    assert len(h.engine.canonical_state()) == 8  # no token element, no placeholder


# -- NAV -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("token, side", [("BTCUP", 1), ("BTCDOWN", -1)])
def test_nav_by_the_seed_formula_for_an_up_and_a_down_token(token, side):
    h = TokenHarness()
    setup_btc(h, tokens=(token,))
    book(h, BTC, **{"asks" if side > 0 else "bids": [("50000", "1")]})
    h.user(1)
    ev = h.subscribe(1, token, "10000")
    (sub,) = of(ev, V.TokenSubscribed)
    assert (sub.amount, sub.cost, sub.fee, sub.hedge_cost) == (d("1000"), d("10000"), d("10"), 0)
    (tr,) = of(ev, V.Trade)  # the issuer's basket: 2x of 10,000 USDT at 50,000
    assert tr.quantity == d("0.4") and tr.taker_account == h.ts(token).spec.issuer
    assert h.position(h.ts(token).spec.issuer, BTC).qty == side * d("0.4")
    assert h.nav(token) == (d("10"), d("2"))
    ev = h.mark(BTC, "55000")
    (nu,) = of(ev, V.TokenNavUpdated)
    nav, lev = h.nav(token)
    assert (nu.nav, nu.real_leverage, nu.reason) == (nav, lev, "mark")
    # ((1 / actual leverage) x basket x price) / issued tokens
    equity = 10000 + side * Fraction(4, 10) * 5000
    actual_lev = Fraction(4, 10) * 55000 / equity
    formula = (1 / actual_lev) * Fraction(4, 10) * 55000 / 1000
    assert nav == int(formula * SCALE) and formula == (12 if side > 0 else 8)
    assert lev == int(actual_lev * SCALE)
    info = TQ.token_info(h.engine, token)[0]
    assert info["nav"] == ("12" if side > 0 else "8") and info["tokenIssued"] == "1000"
    assert info["currentBaskets"] == [{"symbol": BTC, "amount": "0.4" if side > 0 else "-0.4",
                                       "notionalValue": "22000" if side > 0 else "-22000"}]
    assert "targetLeverage" not in info
    invariants(h.engine)


def test_nav_events_only_beyond_the_step():
    h = TokenHarness()
    setup_btc(h, tokens=("BTCUP",))
    book(h, BTC, asks=[("50000", "1")])
    h.user(1)
    h.subscribe(1, "BTCUP", "10000")
    # NAV moves 2 x the price move: 0.1 % of NAV (the step) is a 0.05 % price move = 25 USDT
    assert not of(h.mark(BTC, "50025"), V.TokenNavUpdated)  # exactly the step: not beyond it
    (nu,) = of(h.mark(BTC, "50025.1"), V.TokenNavUpdated)
    assert nu.reason == "mark" and h.ts("BTCUP").nav == nu.nav
    assert not of(h.mark(BTC, "50030"), V.TokenNavUpdated)


# -- subscription, redemption, limits ------------------------------------------------------------
def test_subscribe_and_redeem_at_real_time_nav_with_fees():
    h = TokenHarness()
    setup_btc(h, tokens=("BTCUP",))
    book(h, BTC, asks=[("50000", "1")])
    h.user(1)
    h.subscribe(1, "BTCUP", "1000")
    h.send(C.CancelAllOrders(account=MM, symbol=BTC))
    assert h.balance(1, "BTCUP") == d("100")
    assert h.balance(1) == d("100000") - d("1000") - d("1")  # 0.1 % fee on top
    h.mark(BTC, "60000")  # NAV 10 x (1 + 2 x 20 %) = 14
    book(h, BTC, bids=[("60000", "1")])
    assert h.nav("BTCUP")[0] == d("14")
    ev = h.redeem(1, "BTCUP", "50")
    (red,) = of(ev, V.TokenRedeemed)
    assert (red.value, red.fee, red.nav) == (d("700"), d("0.7"), d("14"))
    assert of(ev, V.Trade)[0].quantity == d("0.02") and kinds(ev)[-1] == "TokenNavUpdated"
    assert h.balance(1) == d("100000") - d("1001") + d("699.3")
    assert h.balance(1, "BTCUP") == d("50") and h.ts("BTCUP").outstanding == d("50")
    assert h.nav("BTCUP")[0] == d("14")
    invariants(h.engine)


def test_hedge_costs_fall_on_the_subscriber_not_on_the_holders():
    h = TokenHarness(catalogue_mod.load())  # ETHUSDT keeps its taker fee 0.05 %
    h.mark(ETH, "2000")
    h.account(MM, "100000000")
    h.launch("ETHUP")
    book(h, ETH, asks=[("2000", "2"), ("2010", "10")])
    h.user(1)
    h.user(2)
    ev = h.subscribe(1, "ETHUP", "2000")  # 2x: 2 ETH at 2,000, taker fee 2 USDT
    assert of(ev, V.TokenSubscribed)[0].hedge_cost == d("2")
    assert h.nav("ETHUP")[0] == d("10")
    ev = h.subscribe(2, "ETHUP", "4000")  # 4 ETH at 2,010: 40 above the mark + fee 4.02
    (sub,) = of(ev, V.TokenSubscribed)
    assert (sub.amount, sub.cost, sub.fee, sub.hedge_cost) == (d("400"), d("4000"), d("4"),
                                                               d("44.02"))
    assert h.balance(2) == d("100000") - d("4000") - d("4") - d("44.02")
    assert h.nav("ETHUP")[0] == d("10")  # the holders' NAV did not move
    h.send(C.CancelAllOrders(account=MM, symbol=ETH))
    book(h, ETH, bids=[("1990", "10")])
    ev = h.redeem(1, "ETHUP", "100")  # 1 ETH at 1,990: 10 below the mark + fee 0.995
    (red,) = of(ev, V.TokenRedeemed)
    assert (red.value, red.fee, red.hedge_cost) == (d("1000"), d("1"), d("10.995"))
    assert h.nav("ETHUP")[0] == d("10")
    invariants(h.engine)


def test_user_limits_within_beyond_and_the_daily_reset():
    h = TokenHarness()
    setup_btc(h, tokens=("BTCUP",))
    book(h, BTC, bids=[("49999.9", "10")], asks=[("50000", "10")])
    h.user(1)
    assert rejection(h.subscribe(1, "BTCUP", "9000")) is None
    before = h.engine.state_hash()
    ev = h.subscribe(1, "BTCUP", "1000.1")  # 900 + 100.01 > 1,000
    assert rejection(ev) == -13004 and "individual 24h subscription" in ev[0].msg
    assert "900 of 1000 used today (UTC), 100 left" in ev[0].msg
    assert h.engine.state_hash() == before and len(ev) == 1
    assert rejection(h.subscribe(1, "BTCUP", "1000")) is None  # exactly up to the limit
    assert TQ.user_limit(h.engine, 1, "BTCUP")[0]["userDailyPurchaseLimitLeft"] == "0"
    end = T7 - T7 % DAY + DAY
    assert rejection(h.subscribe(1, "BTCUP", "10")) == -13004
    h.time = end - 1
    assert rejection(h.subscribe(1, "BTCUP", "10")) == -13004  # 23:59:59.999 UTC
    h.time = end
    assert rejection(h.subscribe(1, "BTCUP", "10")) is None  # 00:00 UTC: a new day
    # redemption: 1,000 a day per user
    assert rejection(h.redeem(1, "BTCUP", "600")) is None
    before = h.engine.state_hash()
    ev = h.redeem(1, "BTCUP", "400.01")
    assert rejection(ev) == -13001 and h.engine.state_hash() == before
    assert rejection(h.redeem(1, "BTCUP", "400")) is None
    h.time = end + DAY
    assert rejection(h.redeem(1, "BTCUP", "1")) is None
    info = TQ.token_info(h.engine, "BTCUP", account=1)[0]
    assert info["userDailyRedeemLimitLeft"] == "999" and info["dailyRedeemLimitLeft"] == "99999"
    invariants(h.engine)


def test_platform_limits_within_and_beyond():
    h = TokenHarness()
    h.mark("LINKUSDT", "10")
    h.mark(BTC, "50000")
    h.account(MM, "100000000")
    h.launch("LINKUP", "BTCUP")
    book(h, "LINKUSDT", asks=[("10", "21000")])
    book(h, BTC, bids=[("49999.9", "100")], asks=[("50000", "100")])
    # LINKUP: 10,000 a day in all, 100 per user
    for a in range(1, 102):
        h.user(a, "30000")
    for a in range(1, 101):
        assert rejection(h.subscribe(a, "LINKUP", "1000")) is None
    ev = h.subscribe(101, "LINKUP", "10")
    assert rejection(ev) == -13005 and "total 24h subscription" in ev[0].msg
    # BTCUP redemption: 100,000 a day in all (1,000 per user): 101 holders over two days
    for a in range(1, 101):
        assert rejection(h.subscribe(a, "BTCUP", "10000")) is None
    h.time += DAY
    assert rejection(h.subscribe(101, "BTCUP", "100")) is None
    for a in range(1, 101):
        assert rejection(h.redeem(a, "BTCUP", "1000")) is None
    before = h.engine.state_hash()
    ev = h.redeem(101, "BTCUP", "1")
    assert rejection(ev) == -13002 and h.engine.state_hash() == before
    assert TQ.token_info(h.engine, "BTCUP")[0]["dailyRedeemLimitLeft"] == "0"
    invariants(h.engine)


def test_rejections_name_the_rule_and_change_nothing():
    h = TokenHarness()
    h.mark(BTC, "50000")
    h.account(MM, "100000000")
    h.user(1, "1000")
    cases = [
        (C.SubscribeToken(account=1, token_name="BTCUP", cost=d("100")), -1121, "not launched"),
        (C.LaunchToken(token_name="NOPEUP"), -1121, "Unknown"),
    ]
    for cmd, code, text in cases:
        before = h.engine.state_hash()
        ev = h.send(cmd)
        assert rejection(ev) == code and text in ev[0].msg and h.engine.state_hash() == before
    h.launch("BTCUP")
    assert rejection(h.send(C.LaunchToken(token_name="BTCUP"))) == -1130
    cases = [
        (C.SubscribeToken(account=1, token_name="BTCUP", cost=d("9.99")), -13006, "too small"),
        (C.SubscribeToken(account=1, token_name="BTCUP", cost=d("1000")), -5013, "Insufficient"),
        # an empty book: the basket hedge cannot be filled
        (C.SubscribeToken(account=1, token_name="BTCUP", cost=d("500")), -5021, "BTCUSDT basket"),
        (C.RedeemToken(account=1, token_name="BTCUP", amount=d("1")), -5013, "Insufficient"),
        (C.FuturesTransfer(account=1, amount=d("5000"), type=1), -5013, "spot"),
        (C.NewSpotOrder(account=900_000_001, symbol="BTCUPUSDT", side="BUY", type="LIMIT",
                        quantity=d("1"), price=d("10")), -1130, "issuer"),
    ]
    for cmd, code, text in cases:
        before = h.engine.state_hash()
        ev = h.send(cmd)
        assert rejection(ev) == code and text in ev[0].msg, ev
        assert h.engine.state_hash() == before and len(ev) == 1
    # liquidity only beyond the 1 % slippage: still refused
    book(h, BTC, asks=[("50600", "1")])
    assert rejection(h.subscribe(1, "BTCUP", "500")) == -5021
    # a subscription too small to hedge is accepted: the cash waits for a rebalance
    ev = h.subscribe(1, "BTCUP", "10")  # 2 x 10 / 50,000 = 0.0004 < 0.001 BTC
    assert not of(ev, V.OrderAccepted) and of(ev, V.TokenSubscribed)
    invariants(h.engine)


# -- spot ------------------------------------------------------------------------------------------
def test_the_seeds_limit_price_range_nav_10_gives_1_to_19():
    h = TokenHarness()
    setup_btc(h, tokens=("BTCUP",))
    assert h.ts("BTCUP").nav == d("10")
    book(h, BTC, asks=[("50000", "1")])
    h.user(1)
    h.user(2)
    h.subscribe(2, "BTCUP", "10000")
    assert h.ts("BTCUP").nav == d("10")
    for side, price, ok in [("BUY", "19", True), ("BUY", "19.0001", False),
                            ("SELL", "1", True), ("SELL", "0.9999", False),
                            ("BUY", "1", True), ("SELL", "19", True)]:
        ev = h.spot(1 if side == "BUY" else 2, "BTCUPUSDT", side, "10", price)
        if ok:
            assert rejection(ev) is None, ev
        else:
            assert rejection(ev) == -1013
            assert "PERCENT_PRICE" in ev[0].msg and "price range" in ev[0].msg
            assert "1 to 19" in ev[0].msg
    invariants(h.engine)


def test_spot_trading_balances_locks_fees_and_no_futures_effect():
    h = TokenHarness()
    setup_btc(h, tokens=("BTCUP",))
    book(h, BTC, asks=[("50000", "1")])
    h.user(1)
    h.user(2)
    h.subscribe(1, "BTCUP", "10000")
    futures = {a: (h.wallet(a), dict(h.engine.accounts[a].positions)) for a in (1, 2)}
    ev = h.spot(1, "BTCUPUSDT", "SELL", "100", "10.5")
    (acc,) = of(ev, V.SpotOrderAccepted)
    assert acc.rest and h.engine.spot.wallets[1].tokens_locked["BTCUP"] == d("100")
    assert rejection(h.redeem(1, "BTCUP", "901")) == -5013  # 100 are locked
    ev = h.spot(2, "BTCUPUSDT", "BUY", "40", "11")  # takes 40 at 10.5
    (tr,) = of(ev, V.SpotTrade)
    assert (tr.price, tr.quantity, tr.buyer_fee, tr.seller_fee) == (
        d("10.5"), d("40"), d("0.04"), d("0.42"))
    assert h.balance(2, "BTCUP") == d("39.96") and h.balance(2) == d("100000") - d("420")
    assert h.balance(1) == d("100000") - d("10010") + d("420") - d("0.42")
    assert h.engine.spot.markets["BTCUPUSDT"].fee_tokens == d("0.04")
    h.spot(2, "BTCUPUSDT", "BUY", "10", "10")  # rests: 100 USDT locked
    assert h.engine.spot.wallets[2].usdt_locked == d("100")
    ev = h.spot(1, "BTCUPUSDT", "SELL", "5")  # market sell into the 10 bid
    assert of(ev, V.SpotTrade)[0].price == d("10")
    oid = h.engine.spot.markets["BTCUPUSDT"].book.best_level("BUY").head.order_id
    assert kinds(h.send(C.CancelSpotOrder(account=2, symbol="BTCUPUSDT", order_id=oid))) == \
        ["SpotOrderCanceled"]
    assert h.engine.spot.wallets[2].usdt_locked == 0
    assert rejection(h.send(C.CancelSpotOrder(account=2, symbol="BTCUPUSDT", order_id=oid))) \
        == -2011
    ev = h.spot(2, "BTCUPUSDT", "BUY", "100")  # market buy: 60 left at 10.5
    assert of(ev, V.SpotTrade)[0].quantity == d("60") and of(ev, V.SpotOrderExpired)
    assert rejection(h.spot(2, "BTCUPUSDT", "BUY", "1000000", "10")) == -2010
    assert rejection(h.spot(2, "BTCUPUSDT", "BUY", "0.001", "10")) == -1013  # step
    for a in (1, 2):
        assert (h.wallet(a), dict(h.engine.accounts[a].positions)) == futures[a]
    invariants(h.engine)


def test_futures_transfer_both_ways():
    h = TokenHarness()
    h.account(1, "1000")
    ev = h.send(C.FuturesTransfer(account=1, amount=d("400"), type=2))
    assert ev == [V.FuturesTransferred(account=1, amount=d("400"), type=2, balance=d("600"),
                                       spot_balance=d("400"))]
    assert rejection(h.send(C.FuturesTransfer(account=1, amount=d("601"), type=2))) == -5013
    h.send(C.FuturesTransfer(account=1, amount=d("100"), type=1))
    assert (h.wallet(1), h.balance(1)) == (d("700"), d("300"))
    assert TQ.spot_account(h.engine, 1)["balances"] == [
        {"asset": "USDT", "free": "300", "locked": "0"}]


# -- funding ---------------------------------------------------------------------------------------
def test_the_seeds_funding_example_a_rate_of_minus_0_0304_percent_raises_nav_0_0304_percent():
    h = TokenHarness()
    h.send(C.SetIndexPrices(prices={BTC: d("50000")}))
    h.account(MM, "100000000")
    h.launch("BTCDOWN")
    book(h, BTC, bids=[("50000", "0.4")])
    h.user(1)
    h.subscribe(1, "BTCDOWN", "10000")  # short 0.4 BTC at 50,000: leverage exactly 2
    assert h.nav("BTCDOWN") == (d("10"), d("2"))
    book(h, BTC, bids=[("50032.6", "0.5")])  # impact bid: premium index +0.0652 %
    h.send(C.SetIndexPrices(prices={BTC: d("50000")}))
    ev = h.send(C.SetIndexPrices(prices={BTC: d("50000")}), time=T8)
    (fr,) = of(ev, V.FundingRateSet, symbol=BTC)
    assert fr.funding_rate == d("0.000152")  # 0.0652 % - 0.05 %
    (tf,) = of(ev, V.TokenFundingApplied)
    assert tf.token_funding_rate == -d("0.000304")  # the short basket receives: x 2
    assert tf.real_leverage == d("2") and tf.amount == d("3.04")
    assert (tf.nav_before, tf.nav_after) == (d("10"), d("10.00304"))  # +0.0304 %
    assert tf.nav_after == tf.nav_before * (SCALE - tf.token_funding_rate) // SCALE
    assert of(ev, V.TokenNavUpdated, reason="funding")[0].nav == d("10.00304")
    assert ev.index(tf) > ev.index(of(ev, V.FundingPaid)[-1])
    assert TQ.token_info(h.engine, "BTCDOWN")[0]["fundingRate"] == "-0.000304"
    invariants(h.engine)


def test_an_up_token_pays_positive_funding_times_its_leverage():
    h = TokenHarness()
    h.send(C.SetIndexPrices(prices={BTC: d("40000")}))
    h.account(MM, "100000000")
    h.launch("BTCUP")
    book(h, BTC, asks=[("40000", "0.5")])
    h.user(1)
    assert rejection(h.subscribe(1, "BTCUP", "10000")) is None  # 0.5 BTC
    ev = h.send(C.SetIndexPrices(prices={BTC: d("40000")}), time=T8)  # empty premium: 0.01 %
    (tf,) = of(ev, V.TokenFundingApplied)
    assert tf.funding_rate == d("0.0001") and tf.token_funding_rate == d("0.0002")
    assert tf.nav_after == d("9.998")  # 10 x (1 - 0.02 %)
    exact = Fraction(tf.nav_before) * (1 - Fraction(tf.token_funding_rate, SCALE))
    assert abs(tf.nav_after - exact) <= 1


# -- rebalancing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("token, move, counter", [
    ("BTCUP", "35000", ("bids", "35000")),  # -30 %: 3.5x, sells back to 2x
    ("BTCUP", "80000", ("asks", "80000")),  # +60 %: 1.45x, buys back up to 2x
    ("BTCDOWN", "62500", ("asks", "62500")),  # +25 %: 5x, buys back to 2x
])
def test_a_move_out_of_the_band_triggers_a_rebalance_that_brings_it_back(token, move, counter):
    h = TokenHarness()
    setup_btc(h, tokens=(token,))
    book(h, BTC, **{"asks" if token == "BTCUP" else "bids": [("50000", "0.4")]})
    h.user(1)
    h.subscribe(1, token, "10000")
    assert not h.engine.symbols[BTC].book.orders
    nav_before_move = h.nav(token)[0]
    # nothing within 1 % of the new mark yet: no order at all, tried at the next move
    ev = h.mark(BTC, move)
    assert not of(ev, V.TokenRebalanced) and not of(ev, V.OrderAccepted)
    lev = h.nav(token)[1]
    assert not d("1.5") <= lev <= d("3")
    side, price = counter
    book(h, BTC, **{side: [(price, "5")]})
    ev = h.mark(BTC, move)
    (rb,) = of(ev, V.TokenRebalanced)
    assert rb.leverage_before == lev
    assert abs(rb.leverage_after - d("2")) < d("0.01")
    assert h.nav(token)[1] == rb.leverage_after
    assert of(ev, V.Trade) and of(ev, V.TokenNavUpdated, reason="rebalance")
    assert ev.index(rb) > ev.index(of(ev, V.Trade)[-1])
    # traded at the mark without fees: the NAV is what the move made it
    assert h.nav(token)[0] == of(ev, V.TokenNavUpdated)[0].nav != nav_before_move
    assert all(not isinstance(e, V.TokenRebalanced) or "target" not in e.__struct_fields__
               for e in ev)
    invariants(h.engine)


# -- invariants through a random session, replay and snapshots -----------------------------------
def test_invariants_hold_through_a_random_session_and_replay_exactly():
    rng = random.Random(2024)
    h = RiskHarness(catalogue_mod.load(), time=T7)
    tokens = ["BTCUP", "BTCDOWN", "ETHUP", "ETHDOWN"]
    prices = {BTC: 50000, ETH: 2000}
    h.send(C.SetIndexPrices(prices={s: d(str(p)) for s, p in prices.items()}))
    h.account(MM, "1000000000")
    for t in tokens:
        h.send(C.LaunchToken(token_name=t))
    users = list(range(1, 7))
    for a in users:
        h.account(a, "200000")
        h.send(C.FuturesTransfer(account=a, amount=d("150000"), type=2))

    def requote():
        h.send(C.CancelAllOrders(account=MM, symbol=BTC))
        h.send(C.CancelAllOrders(account=MM, symbol=ETH))
        for s, p in prices.items():
            for i in range(1, 6):
                for side, sign in (("BUY", -1), ("SELL", 1)):
                    cents = p * (1000 + sign * i) // 10  # p x (1 +/- i / 1000), in cents
                    if s == BTC:
                        cents -= cents % 100
                    h.order(MM, s, side, "5" if s == BTC else "100",
                            f"{cents // 100}.{cents % 100:02d}")

    requote()
    seen = set()
    for step in range(320):
        r = rng.random()
        a = rng.choice(users)
        t = rng.choice(tokens)
        w = h.engine.spot.wallets.get(a)
        if r < 0.25:
            ev = h.send(C.SubscribeToken(account=a, token_name=t,
                                         cost=d(str(rng.randint(10, 4000)))))
        elif r < 0.4 and w and w.free_token(t) > 0:
            amt = w.free_token(t) * rng.choice([1, 2, 3]) // 4 or w.free_token(t)
            ev = h.send(C.RedeemToken(account=a, token_name=t, amount=amt))
        elif r < 0.6 and t in h.engine.tokens.tokens:
            nav = h.engine.tokens.tokens[t].nav
            price = max(nav * rng.randint(80, 120) // 100 // 10_000 * 10_000, 10_000)
            side = rng.choice(["BUY", "SELL"])
            qty = d(str(rng.randint(1, 30)))
            if rng.random() < 0.2:
                ev = h.send(C.NewSpotOrder(account=a, symbol=t + "USDT", side=side,
                                           type="MARKET", quantity=qty))
            else:
                ev = h.send(C.NewSpotOrder(account=a, symbol=t + "USDT", side=side, type="LIMIT",
                                           quantity=qty, price=price,
                                           time_in_force=rng.choice(["GTC", "GTC", "IOC"])))
        elif r < 0.67:
            book_ = h.engine.spot.markets[t + "USDT"].book
            mine = [o.order_id for o in book_.orders.values() if o.account == a]
            if not mine:
                continue
            ev = h.send(C.CancelSpotOrder(account=a, symbol=t + "USDT", order_id=mine[0]))
        elif r < 0.92:
            s = rng.choice([BTC, ETH])
            prices[s] = max(1, prices[s] * rng.randint(900, 1100) // 1000)
            h.time += rng.randint(1, 90) * 60_000  # crosses settlements and midnights
            ev = h.send(C.SetIndexPrices(prices={s: d(str(prices[s]))}))
            if rng.random() < 0.5:
                requote()
        else:
            h.time += rng.randint(1, 60) * 60_000
            requote()
            continue
        seen.update(type(e).__name__ for e in ev)
        invariants(h.engine)
    assert {"TokenSubscribed", "TokenRedeemed", "SpotTrade", "TokenRebalanced",
            "TokenFundingApplied", "SpotOrderCanceled"} <= seen
    e = h.engine
    assert any(ts.outstanding for ts in e.tokens.tokens.values())
    # the risk consumer's projection, fed only the log, agrees
    assert h.pipeline.consumer.projection.state_hash() == e.state_hash()
    # the log alone rebuilds the state
    rebuilt = Engine(e.catalogue, EngineConfig(checkpoint_every=0))
    for seq, t, _, events in h.records:
        rebuilt.apply_record(seq, t, events)
    assert rebuilt.state_hash() == e.state_hash()
    # re-driving the commands gives the same events byte for byte
    again = Engine(e.catalogue, EngineConfig(checkpoint_every=0))
    enc = msgspec.msgpack.encode
    for seq, t, cmd, events in h.records:
        assert enc(again.handle(cmd, seq, t)) == enc(events)
    # a snapshot restores the state, and both continue identically
    restored = snapshot.restore(e.catalogue, snapshot.take(e), EngineConfig(checkpoint_every=0))
    assert restored.state_hash() == e.state_hash()
    for cmd in (C.SetIndexPrices(prices={BTC: d(str(prices[BTC] * 2))}),
                C.SubscribeToken(account=1, token_name="ETHUP", cost=d("100"))):
        t = h.records[-1][1] + 9 * 3_600_000
        assert enc(restored.handle(cmd, 10_000, t)) == enc(e.handle(cmd, 10_000, t))
        assert restored.state_hash() == e.state_hash()


# -- the JSON edge and the feed --------------------------------------------------------------------
def test_token_commands_events_and_queries_at_the_json_edge():
    cmd = json_edge.decode_command({"op": "subscribeToken", "account": 1,
                                    "tokenName": "BTCUP", "cost": "100.5"})
    assert cmd == C.SubscribeToken(account=1, token_name="BTCUP", cost=d("100.5"))
    with pytest.raises(json_edge.BadInput):
        json_edge.decode_command({"op": "redeemToken", "account": 1, "tokenName": "BTCUP",
                                  "amount": 1.5})
    wire = json_edge.to_wire(V.TokenNavUpdated(token_name="BTCUP", nav=d("10.5"),
                                               real_leverage=d("2.25"), basket=d("0.4"),
                                               issued=d("1000"), reason="mark"))
    assert wire == {"e": "tokenNavUpdated", "tokenName": "BTCUP", "nav": "10.5",
                    "realLeverage": "2.25", "basket": "0.4", "issued": "1000", "reason": "mark"}
    lines = [
        {"op": "setMarkPrice", "symbol": BTC, "markPrice": "50000", "time": T7},
        {"op": "createAccount", "account": 1}, {"op": "deposit", "account": 1, "amount": "100000"},
        {"op": "createAccount", "account": 2}, {"op": "deposit", "account": 2, "amount": "100000"},
        {"op": "newOrder", "account": 2, "symbol": BTC, "side": "SELL", "type": "LIMIT",
         "quantity": "1", "price": "50000", "timeInForce": "GTC"},
        {"op": "launchToken", "tokenName": "BTCUP"},
        {"op": "futuresTransfer", "account": 1, "amount": "20000", "type": 2},
        {"op": "subscribeToken", "account": 1, "tokenName": "BTCUP", "cost": "10000"},
        {"op": "newSpotOrder", "account": 1, "symbol": "BTCUPUSDT", "side": "SELL",
         "type": "LIMIT", "quantity": "10", "price": "19.0001", "timeInForce": "GTC"},
        {"op": "query", "query": "tokenInfo", "tokenName": "BTCUP", "account": 1},
        {"op": "query", "query": "spotAccount", "account": 1},
    ]
    out = io.BytesIO()
    res = run_feed([json.dumps(x) for x in lines], out, CAT)
    assert not res.errors
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    info = [r for r in rows if r.get("query") == "tokenInfo"][0]["result"][0]
    assert info["nav"] == "10" and info["realLeverage"] == "2" and info["tokenIssued"] == "1000"
    assert info["userDailyPurchaseLimitLeft"] == "0" and info["dailyPurchaseLimitLeft"] == "99000"
    spot = [r for r in rows if r.get("query") == "spotAccount"][0]["result"]["balances"]
    assert {"asset": "BTCUP", "free": "1000", "locked": "0"} in spot
    rejected = [r for r in rows if r.get("e") == "orderRejected"]
    assert rejected and rejected[0]["code"] == -1013
    assert any(r.get("e") == "tokenSubscribed" and r["cost"] == "10000" for r in rows)


# -- over TCP --------------------------------------------------------------------------------------
async def test_tokens_through_the_gateway(tmp_path):
    from tests.test_gateway import ServerProcess
    server = ServerProcess(tmp_path)
    try:
        admin = await server.admin_client()
        await admin.request("setMarkPrice", symbol=BTC, markPrice="50000")
        mm = await server.trader(admin, 1)
        await mm.request("newOrder", symbol=BTC, side="SELL", type="LIMIT", quantity="1",
                         price="50000", timeInForce="GTC")
        await admin.request("launchToken", tokenName="BTCUP")
        alice = await server.trader(admin, 2)
        await alice.request("futuresTransfer", amount="20000", type=2)
        res = await alice.request("subscribeToken", tokenName="BTCUP", cost="10000")
        assert "orderId" not in res  # the issuer's hedge is not alice's order
        sub = [e for e in res["events"] if e["e"] == "tokenSubscribed"][0]
        assert sub["amount"] == "1000" and sub["counterparty"] == 900_000_001
        (info,) = await alice.query("tokenInfo", tokenName="BTCUP")
        assert info["tokenIssued"] == "1000" and info["userDailyPurchaseLimitLeft"] == "0"
        assert (await alice.query("spotAccount"))["balances"][1] == {
            "asset": "BTCUP", "free": "1000", "locked": "0"}
        with pytest.raises(Exception) as bad:
            await alice.request("newSpotOrder", symbol="BTCUPUSDT", side="SELL", type="LIMIT",
                                quantity="1", price="19.5", timeInForce="GTC")
        assert bad.value.code == -1013
        with pytest.raises(Exception) as bad:
            await alice.request("launchToken", tokenName="BTCDOWN")
        assert bad.value.code == -2015
        for c in (admin, mm, alice):
            await c.close()
    finally:
        assert server.stop() == 0
