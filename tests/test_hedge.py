"""Hedge mode (dualSidePosition): switching, position sides on orders, what closing means,
the shared leverage and notional cap, per-leg margin, liquidation price, liquidation, ADL and
funding, and a random session with money conservation and long = short open interest."""
import random

import pytest

from engine.core import EngineConfig
from engine.core import risk
from engine.core.fixed import SCALE
from engine.core.snapshot import restore, take
from engine.views import positions as views
from proto import commands as C
from proto import events as V
from tests.harness import Harness, check_derived, d, kinds, rejection, trades

BTC = "BTCUSDT"


def order(h, account, side, qty, price=None, position_side=None, tif=None, **kw):
    return h.send(C.NewOrder(account=account, symbol=BTC, side=side,
                             type="LIMIT" if price else "MARKET", quantity=d(qty),
                             price=d(price) if price else 0,
                             time_in_force=(tif or "GTC") if price else None,
                             position_side=position_side, **kw))


def hedge(h, account, on=True):
    return h.send(C.SetPositionMode(account=account, dual_side_position=on))


def leg(h, account, side):
    return h.engine.accounts[account].positions.get(f"{BTC}:{side}")


@pytest.fixture
def h():
    h = Harness()
    for a in (1, 2, 3):
        h.account(a, "1000000")
    h.mark(BTC, "30000")
    assert kinds(hedge(h, 1)) == ["PositionModeChanged"]
    return h


def test_switching_is_refused_with_positions_orders_or_nothing_to_change():
    h = Harness()
    h.account(1, "100000")
    h.account(2, "100000")
    h.leverage(1, BTC, 10)
    ev = hedge(h, 1, False)
    assert rejection(ev) == -4059 and ev[0].msg == "No need to change position side."
    order(h, 1, "BUY", "0.1", "29000")
    ev = hedge(h, 1)
    assert rejection(ev) == -4067 and ev[0].msg == ("Position side cannot be changed if there "
                                                   "exists open orders.")
    h.send(C.CancelAllOrders(account=1, symbol=BTC))
    h.send(C.NewAlgoOrder(account=1, symbol=BTC, side="BUY", type="STOP_MARKET",
                          quantity=d("0.1"), trigger_price=d("31000")))
    assert rejection(hedge(h, 1)) == -4067  # a conditional order is an open order too
    h.send(C.CancelAllAlgoOrders(account=1, symbol=BTC))
    order(h, 2, "SELL", "0.1", "30000")
    order(h, 1, "BUY", "0.1", "30000")
    ev = hedge(h, 1)
    assert rejection(ev) == -4068 and ev[0].msg == ("Position side cannot be changed if there "
                                                   "exists position.")
    order(h, 1, "SELL", "0.1", "29990")
    order(h, 2, "BUY", "0.1", "29990")
    assert kinds(hedge(h, 1)) == ["PositionModeChanged"]
    legs = {k: p.leverage for k, p in h.engine.accounts[1].positions.items()}
    assert legs == {f"{BTC}:LONG": 10, f"{BTC}:SHORT": 10}  # the settings moved to both legs


def test_position_side_rules(h):
    ev = order(h, 1, "BUY", "0.1", "29000")
    assert rejection(ev) == -4061 and ev[0].msg == ("Order's position side does not match "
                                                   "user's setting.")
    assert rejection(order(h, 2, "BUY", "0.1", "29000", position_side="LONG")) == -4061
    ev = order(h, 1, "BUY", "0.1", "29000", position_side="LONG", reduce_only=False)
    assert rejection(ev) == -1106 and ev[0].msg == ("Parameter 'reduceonly' sent when not "
                                                   "required.")


def test_long_and_short_legs_together_and_what_closing_means(h):
    order(h, 2, "SELL", "2", "30000")
    order(h, 1, "BUY", "1", "30000", position_side="LONG")  # opens the long leg
    order(h, 2, "BUY", "2", "29990")
    order(h, 1, "SELL", "0.5", "29990", position_side="SHORT")  # opens the short leg
    assert (leg(h, 1, "LONG").qty, leg(h, 1, "SHORT").qty) == (d("1"), -d("0.5"))
    # SELL LONG closes the long; more than the long is refused (reduce-only)
    assert rejection(order(h, 1, "SELL", "1.5", "29990", position_side="LONG")) == -2022
    ev = order(h, 1, "SELL", "0.4", "29990", position_side="LONG")
    assert [t.quantity for t in trades(ev)] == [d("0.4")]
    assert (leg(h, 1, "LONG").qty, leg(h, 1, "SHORT").qty) == (d("0.6"), -d("0.5"))
    # BUY SHORT closes the short only
    order(h, 3, "SELL", "1", "30010")
    ev = order(h, 1, "BUY", "0.5", "30010", position_side="SHORT")
    assert [t.quantity for t in trades(ev)] == [d("0.5")]
    assert (leg(h, 1, "LONG").qty, leg(h, 1, "SHORT").qty) == (d("0.6"), 0)
    rows = views.position_risk(h.engine, 1, BTC)
    assert [(r["positionSide"], r["positionAmt"]) for r in rows] == [("LONG", "0.6"),
                                                                     ("SHORT", "0")]


def test_both_legs_share_the_leverage_and_the_notional_cap(h):
    assert kinds(h.leverage(1, BTC, 100)) == ["LeverageChanged"]
    assert leg(h, 1, "LONG").leverage == leg(h, 1, "SHORT").leverage == 100
    # at 100x the cap is 250,000 USDT for long and short together (seed 001)
    order(h, 2, "SELL", "10", "30000")
    order(h, 2, "BUY", "10", "29990")
    assert rejection(order(h, 1, "BUY", "5", "30000", position_side="LONG")) is None  # 150,000
    ev = order(h, 1, "SELL", "4", "29990", position_side="SHORT")  # + 119,960 > 250,000
    assert rejection(ev) == -2027 and ev[0].msg == ("Exceeded the maximum allowable position "
                                                   "at current leverage.")
    assert rejection(order(h, 1, "SELL", "3", "29990", position_side="SHORT")) is None


def test_each_leg_holds_its_own_margin(h):
    # one-way, a long and an opposite order net; in hedge mode the legs do not
    order(h, 1, "BUY", "1", "29000", position_side="LONG")
    order(h, 1, "SELL", "1", "31000", position_side="SHORT")
    long_, short = leg(h, 1, "LONG"), leg(h, 1, "SHORT")
    assert long_.order_margin == d("29000") // 20  # price / 20x, no open loss (below mark)
    # a sell: assumed max(last x 1.0015, mark, price) = 31,000: 1,550
    assert short.order_margin == d("31000") // 20
    assert h.engine.accounts[1].order_margin == long_.order_margin + short.order_margin


def test_the_cross_liquidation_price_of_a_hedged_symbol_counts_both_legs():
    h = Harness()
    h.account(1, "2000")
    for a in (2, 3):
        h.account(a, "1000000")
    h.mark(BTC, "30000")
    hedge(h, 1)
    h.leverage(1, BTC, 50)
    order(h, 2, "SELL", "1", "30000")
    order(h, 1, "BUY", "1", "30000", position_side="LONG")
    order(h, 2, "BUY", "0.4", "30000")
    order(h, 1, "SELL", "0.4", "30000", position_side="SHORT")
    rows = views.position_risk(h.engine, 1, BTC)
    lp = {r["positionSide"]: d(r["liquidationPrice"]) for r in rows}
    assert lp["LONG"] == lp["SHORT"] > 0  # one price for the symbol's cross exposure
    # at that mark the margin ratio is 100 % (to the display rounding)
    h.mark(BTC, str(lp["LONG"] / SCALE))
    figures = h.engine.ledger.cross_risk(h.engine.accounts[1])
    assert abs(figures.ratio - SCALE) <= SCALE // 10_000
    # and it is the both-legs formula, not the one-position one
    single = risk.liquidation_price(h.engine.symbols[BTC].table_at(0),
                                    h.wallet(1), 0, 0, d("1"), leg(h, 1, "LONG").cost)
    assert single != lp["LONG"]


def test_isolated_legs_are_liquidated_each_on_its_own():
    h = Harness()
    h.account(1, "100000")
    for a in (2, 3):
        h.account(a, "1000000")
    h.mark(BTC, "30000")
    hedge(h, 1)
    h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="ISOLATED"))
    h.leverage(1, BTC, 50)
    order(h, 2, "SELL", "1", "30000")
    order(h, 1, "BUY", "1", "30000", position_side="LONG")  # isolated long, 600 margin
    order(h, 2, "BUY", "1", "30000")
    order(h, 1, "SELL", "1", "30000", position_side="SHORT")  # isolated short, 600 margin
    order(h, 3, "BUY", "5", "29500")  # liquidity above the long's bankruptcy price 29,400
    h.mark(BTC, "29450")  # the long's margin balance 600 - 550 = 50 < MM 117.8
    ev = h.send(C.Liquidate(account=1, symbol=BTC, position_side="LONG"))
    started = [e for e in ev if isinstance(e, V.LiquidationStarted)]
    assert [(s.symbol, s.position_side) for s in started] == [(BTC, "LONG")]
    assert leg(h, 1, "LONG").qty == 0 and leg(h, 1, "SHORT").qty == -d("1")
    ev = h.send(C.Liquidate(account=1, symbol=BTC, position_side="SHORT"))
    assert [type(e).__name__ for e in ev] == ["LiquidationDeclined"]  # the short is healthy


def test_adl_takes_the_opposite_leg_and_funding_is_paid_per_leg():
    h = Harness()
    h.account(1, "700")
    h.account(2, "1000000")
    h.mark(BTC, "30000")
    hedge(h, 2)
    h.leverage(1, BTC, 50)
    order(h, 2, "SELL", "1", "30000", position_side="SHORT")
    order(h, 1, "BUY", "1", "30000")  # account 1 long 1 (one-way), account 2 SHORT leg -1
    order(h, 2, "BUY", "0.2", "29000", position_side="LONG")  # and a LONG leg elsewhere
    h.order(1, BTC, "SELL", "0.2", "29000", reduce_only=True)
    h.mark(BTC, "29350")  # account 1 (long 0.8) under water; no bids left
    ev = h.send(C.Liquidate(account=1))
    adl = [e for e in ev if isinstance(e, V.AdlTrade)]
    assert [(a.counterparty, a.counterparty_position_side, a.quantity) for a in adl] == [
        (2, "SHORT", d("0.8"))]
    assert leg(h, 2, "SHORT").qty == -d("0.2") and leg(h, 2, "LONG").qty == d("0.2")


def test_funding_is_paid_and_received_per_leg():
    h = Harness(time=7 * 3_600_000)
    for a in (1, 2, 3):
        h.account(a, "1000000")
    hedge(h, 1)
    h.send(C.SetIndexPrices(prices={BTC: d("30000")}))
    order(h, 2, "SELL", "1", "30000")
    order(h, 1, "BUY", "1", "30000", position_side="LONG")
    order(h, 3, "BUY", "0.4", "30000")
    order(h, 1, "SELL", "0.4", "30000", position_side="SHORT")
    ev = h.send(C.SetIndexPrices(prices={BTC: d("30000")}), time=8 * 3_600_000)
    paid = [(e.account, e.position_side, e.position_amt) for e in ev
            if isinstance(e, V.FundingPaid)]
    assert (1, "LONG", d("1")) in paid and (1, "SHORT", -d("0.4")) in paid
    assert sum(e.amount for e in ev if isinstance(e, V.FundingPaid)) == 0


def test_a_random_session_of_hedge_and_one_way_accounts_with_conditional_orders():
    """Money is conserved, long open interest equals short, the state rebuilt from events and
    restored from a snapshot equals the live one, and a re-drive is byte-identical."""
    rng = random.Random(14)
    h = Harness()
    accounts = list(range(1, 9))
    for a in accounts:
        h.account(a, "200000" if a > 2 else "3000")
        if a % 2 == 0:
            hedge(h, a)
    mark = 30000
    h.mark(BTC, str(mark))
    for step in range(1500):
        a = rng.choice(accounts)
        dual = h.engine.accounts[a].dual_side
        r = rng.random()
        side = rng.choice(("BUY", "SELL"))
        ps = rng.choice(("LONG", "SHORT")) if dual else None
        qty = str(rng.choice((1, 2, 5, 10)) / 100)
        if r < 0.45:
            price = str(mark + rng.randint(-20, 20) * 10)
            order(h, a, side, qty, price, ps, tif=rng.choice(("GTC", "GTC", "IOC")))
        elif r < 0.55:
            order(h, a, side, qty, None, ps)
        elif r < 0.65:
            trigger = mark + rng.randint(1, 30) * 10 * (1 if side == "BUY" else -1)
            h.send(C.NewAlgoOrder(account=a, symbol=BTC, side=side, type="STOP_MARKET",
                                  quantity=d(qty), trigger_price=d(str(trigger)),
                                  working_type=rng.choice(("MARK_PRICE", "CONTRACT_PRICE")),
                                  position_side=ps))
        elif r < 0.7:
            h.send(C.NewAlgoOrder(account=a, symbol=BTC, side=side,
                                  type="TRAILING_STOP_MARKET", quantity=d(qty),
                                  callback_rate=d(str(rng.choice((0.2, 0.5, 1)))),
                                  working_type="MARK_PRICE", position_side=ps))
        elif r < 0.8:
            mine = [o.order_id for o in h.engine.symbols[BTC].book.orders.values()
                    if o.account == a]
            if mine:
                h.cancel(a, BTC, rng.choice(mine))
        elif r < 0.9:
            mark = max(20000, mark + rng.randint(-150, 150))
            h.mark(BTC, str(mark))
            for aid, acct in sorted(h.engine.accounts.items()):  # what the risk consumer does
                if h.engine.ledger.cross_risk(acct).liquidatable:
                    h.send(C.Liquidate(account=aid))
        else:
            h.send(C.CancelAllAlgoOrders(account=a, symbol=BTC))
        e = h.engine
        longs = sum(p.qty for acct in e.accounts.values() for p in acct.positions.values()
                    if p.qty > 0)
        shorts = -sum(p.qty for acct in e.accounts.values() for p in acct.positions.values()
                      if p.qty < 0)
        assert longs == shorts, f"open interest at step {step}"
        check_derived(e)
        wallets = sum(acct.wallet for acct in e.accounts.values())
        costs = sum(p.cost for acct in e.accounts.values() for p in acct.positions.values())
        ledger = e.ledger
        assert wallets + ledger.fees_collected + ledger.insurance_fund - costs == \
            ledger.total_deposits - ledger.total_withdrawals, f"money at step {step}"
    kinds_seen = {type(ev).__name__ for *_, events in h.records for ev in events}
    assert {"AlgoOrderTriggered", "Trade", "PositionModeChanged"} <= kinds_seen
    live = h.engine.state_hash()
    rebuilt = Harness().engine
    for seq, time, _, events in h.records:
        rebuilt.apply_record(seq, time, events)
    assert rebuilt.state_hash() == live
    assert restore(h.engine.catalogue, take(h.engine),
                   EngineConfig(checkpoint_every=0)).state_hash() == live
    again = Harness().engine
    for seq, time, cmd, events in h.records:
        assert again.handle(cmd, seq, time) == events
