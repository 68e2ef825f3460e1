"""The running figures behind the available balance (issue 12, "less work per command"): the
order margin kept per side, what an account holds per margin asset (open-order margin plus
isolated margin) and its cross positions with a quantity. A seeded session of cross and
isolated positions on two margin assets, with fills, cancels, isolated margin adjustments,
funding, leverage, margin type and position mode changes and liquidations: after every
command the running figures equal a fresh computation, the available balance equals the
pass over every position it replaced, and a rebuild and a restore agree with the live core."""
from __future__ import annotations

import random

from engine.core import Engine, EngineConfig, snapshot
from engine.core.accounts import ISOLATED, Account
from engine.core.fixed import SCALE
from engine.core.ledger import Ledger
from proto import commands as C
from tests.harness import Harness, check_derived, d

SYMBOLS = {"BTCUSDT": ("USDT", 30_000), "ETHUSDT": ("USDT", 2_000), "BTCBUSD": ("BUSD", 30_000)}


def available_by_pass(ledger: Ledger, acct: Account, asset: str) -> int:
    """The available balance as it was computed before: a pass over every position."""
    avail = acct.balance(asset)
    for pos in acct.positions.values():
        if pos.asset != asset:
            continue
        avail -= pos.order_margin
        if pos.margin_type == ISOLATED:
            avail -= pos.isolated_margin
        elif pos.qty:
            _, upnl, im = ledger.position_figures(pos, ledger.symbols[pos.symbol])
            avail += upnl - im
    return avail


def test_running_margins_equal_a_fresh_computation_through_a_random_session():
    rng = random.Random(12)
    h = Harness(time=1_700_000_000_000)
    accounts = list(range(1, 9))
    for a in accounts:
        h.account(a, "50000" if a > 2 else "4000")
        h.send(C.Deposit(account=a, asset="BUSD", amount=d("50000")))
    marks = {s: p for s, (_, p) in SYMBOLS.items()}
    for s, p in marks.items():
        h.mark(s, str(p))
    kinds_seen: set[str] = set()
    for step in range(1500):
        a = rng.choice(accounts)
        s = rng.choice(list(SYMBOLS))
        acct = h.engine.accounts[a]
        ps = rng.choice(("LONG", "SHORT")) if acct.dual_side else None
        side = rng.choice(("BUY", "SELL"))
        r = rng.random()
        tick = 10 if s != "ETHUSDT" else 1
        if r < 0.40:
            price = marks[s] + rng.randint(-15, 15) * tick
            events = h.order(a, s, side, rng.choice(("0.01", "0.02", "0.05")), str(price),
                             tif=rng.choice(("GTC", "GTC", "IOC")), position_side=ps)
        elif r < 0.50:
            events = h.order(a, s, side, rng.choice(("0.01", "0.03")), None, position_side=ps)
        elif r < 0.60:
            mine = [o.order_id for o in h.engine.symbols[s].book.orders.values() if o.account == a]
            events = h.cancel(a, s, rng.choice(mine)) if mine else []
        elif r < 0.66:
            legs = [p for p in acct.legs(s) if p.qty and p.margin_type == ISOLATED]
            if legs:
                leg = rng.choice(legs)
                events = h.send(C.AdjustIsolatedMargin(
                    account=a, symbol=s, amount=d(rng.choice(("5", "50"))),
                    type=rng.choice((1, 2)), position_side=leg.side))
            else:
                events = []
        elif r < 0.72:
            events = h.send(C.SetMarginType(account=a, symbol=s, margin_type=rng.choice(
                ("ISOLATED", "CROSSED"))))
        elif r < 0.75:
            events = h.send(C.SetPositionMode(account=a, dual_side_position=not acct.dual_side))
        elif r < 0.80:
            events = h.leverage(a, s, rng.choice((5, 10, 20, 50)))
        elif r < 0.93:
            marks[s] = max(marks[s] * (1000 + rng.randint(-25, 25)) // 1000, 100)
            marks[s] -= marks[s] % tick
            events = h.mark(s, str(marks[s]))
            for aid, other in sorted(h.engine.accounts.items()):  # the risk consumer's part
                for asset in ("USDT", "BUSD"):
                    if h.engine.ledger.cross_risk(other, asset).liquidatable:
                        events = events + h.send(C.Liquidate(account=aid, asset=asset))
                for pos in list(other.positions.values()):
                    if pos.qty and pos.margin_type == ISOLATED and \
                            h.engine.ledger.isolated_risk(pos).liquidatable:
                        events = events + h.send(C.Liquidate(account=aid, symbol=pos.symbol,
                                                     position_side=pos.side))
        else:  # index prices; every eight hours funding settles
            h.time += rng.choice((600_000, 3_600_000))
            events = h.send(C.SetIndexPrices(prices={sym: p * SCALE for sym, p in marks.items()}))
        kinds_seen |= {type(ev).__name__ for ev in events}
        check_derived(h.engine)
        ledger = h.engine.ledger
        for other in h.engine.accounts.values():
            for asset in ("USDT", "BUSD"):
                assert ledger.available_balance(other, asset) == \
                    available_by_pass(ledger, other, asset), (step, other.account_id, asset)
    assert {"Trade", "IsolatedMarginChanged", "MarginTypeChanged", "PositionModeChanged",
            "FundingPaid", "LeverageChanged", "LiquidationStarted", "AdlTrade"} <= kinds_seen, \
        kinds_seen
    assert any(p.margin_type == ISOLATED for a in h.engine.accounts.values()
               for p in a.positions.values())
    live = h.engine.state_hash()
    config = EngineConfig(checkpoint_every=0)
    rebuilt = Engine(h.engine.catalogue, config)
    for seq, time, _, events in h.records:
        rebuilt.apply_record(seq, time, events)
    check_derived(rebuilt)
    restored = snapshot.restore(h.engine.catalogue, snapshot.take(h.engine), config)
    check_derived(restored)
    assert rebuilt.state_hash() == live == restored.state_hash()
    for aid, acct in h.engine.accounts.items():
        for other in (rebuilt.accounts[aid], restored.accounts[aid]):
            assert other.holding("USDT") == acct.holding("USDT") and \
                other.holding("BUSD") == acct.holding("BUSD")
