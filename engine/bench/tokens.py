"""Leveraged-token benchmark (a report, not a test):

    python -m engine.bench tokens [--moves N] [--flows N]

Setup (not measured): the packaged catalogue and its 20 tokens on 10 USDT perpetuals, index
prices for the 10 underlyings, a market maker's 20-level book a side on each, all 20 tokens
launched, and subscriptions so that every token has an issuer basket and holders.

nav_mark    a mark move of all 10 underlyings (one SetMarkPrice each: marks are fed, so a move
            is one command per symbol) and, for each of the 20 tokens, the real-time NAV and
            actual leverage, the band check and a TokenNavUpdated event (each move is 0.2 % of
            the price, so every token's NAV moves beyond the 0.1 % step: the worst case).
            Reported: the 10 commands with tokens, the same on an engine without tokens, the
            difference per token; and the token hook alone (TokenDesk.after_command over the 10
            MarkPriceUpdated events: 20 NAVs, band checks and events).
subscribe   a SubscribeToken of 100 USDT through the core: checks, limits, the issuer's hedge
            order validated (with the trial cash) and matched against the book (one fill),
            TokenSubscribed, TokenNavUpdated, the band check. Tokens and accounts rotate.
redeem      a RedeemToken of 9 tokens likewise (reduce-only hedge, one fill).
spot        a crossing spot limit order on BTCUPUSDT (one SpotTrade, balances, fees).
All per operation, in microseconds, through Engine.handle (no log, no risk consumer): the best
of 5 consecutive batches. For scale, `order_one_fill` is a plain futures LIMIT IOC order with one
fill on the same books (what the issuer's hedge costs by itself).
"""
from __future__ import annotations

import argparse
import gc
import time

from engine.bench.common import machine_line
from engine.core import catalogue as catalogue_mod
from engine.core.book import BUY, SELL, Order
from engine.core import Engine, EngineConfig
from engine.core.fixed import SCALE
from engine.core.fixed import parse as _units
from proto import commands as C
from proto import events as V

START = 1_754_463_600_000  # 2025-08-06T07:00:00Z
PRICES = {"BTCUSDT": "50000", "ETHUSDT": "3000", "ADAUSDT": "0.5", "LINKUSDT": "15",
          "BNBUSDT": "300", "XTZUSDT": "1", "EOSUSDT": "1", "TRXUSDT": "0.1", "DOTUSDT": "5",
          "XRPUSDT": "0.5"}
MM = 1
USERS = 2000
FLOW_USERS = 1600  # the flows rotate over these; the first subscriptions use the last 100


class _Driver:
    def __init__(self, tokens: bool = True) -> None:
        self.cat = catalogue_mod.load()
        self.engine = Engine(self.cat, EngineConfig(checkpoint_every=0))
        self.seq = 0
        self.time = START
        self.prices = {s: _units(p) for s, p in PRICES.items()}
        for s, p in self.prices.items():  # fed marks (no index: a mark move is one command)
            self.send(C.SetMarkPrice(symbol=s, mark_price=p))
        self.send(C.CreateAccount(account=MM, registered_at=START - 400 * 86_400_000))
        self.send(C.Deposit(account=MM, amount=10 ** 12 * SCALE))
        self.oid = 10_000_000
        for s in self.prices:
            self._book(s)
        self.names = list(self.cat.tokens) if tokens else []
        for name in self.names:
            self.send(C.LaunchToken(token_name=name))
        for u in range(2, 2 + USERS):
            self.send(C.CreateAccount(account=u, registered_at=START))
            self.send(C.Deposit(account=u, amount=1_000_000 * SCALE))
            self.send(C.FuturesTransfer(account=u, amount=1_000_000 * SCALE, type=2))

    def send(self, cmd):
        self.seq += 1
        return self.engine.handle(cmd, self.seq, self.time)

    def _book(self, s: str) -> None:
        """20 deep levels a side straight into the book (setup), the market maker's."""
        engine = self.engine
        sym = engine.symbols[s]
        spec = sym.spec
        p = self.prices[s] // spec.tick_size * spec.tick_size
        qty = max(spec.min_qty, (10 ** 6 * SCALE * SCALE // p) // spec.step_size * spec.step_size)
        acct = engine.accounts[MM]
        pos = engine.ledger.position_for_update(acct, s)
        for i in range(1, 21):
            for side, price in ((BUY, p - i * spec.tick_size), (SELL, p + i * spec.tick_size)):
                self.oid += 1
                order = Order(self.oid, MM, s, side, price, qty, "GTC", "LIMIT", False, "", "NONE")
                sym.book.add(order)
                pos.add_open(side, qty, qty * price // SCALE)
                pos.open_orders += 1
        acct.refresh_order_margin(pos)


BATCHES = 5


def _timed(fn, n: int) -> float:  # edge: timing and statistics, not money
    """Microseconds per call: the best of BATCHES consecutive batches of n / BATCHES calls (the
    machine's noise only ever adds time), gc off while timing."""
    per = max(1, n // BATCHES)
    best = None
    i = 0
    for _ in range(BATCHES):
        gc.collect()
        gc.disable()
        t0 = time.perf_counter_ns()
        for _ in range(per):
            fn(i)
            i += 1
        elapsed = time.perf_counter_ns() - t0
        gc.enable()
        best = elapsed if best is None else min(best, elapsed)
    return best / per / 1000


def _subscribe_all(drv: _Driver, rounds: int = 1) -> None:
    for r in range(rounds):
        for i, name in enumerate(drv.names):
            # the last 100 users (the flows rotate over the first FLOW_USERS)
            drv.send(C.SubscribeToken(account=1 + USERS - (i + 20 * r) % 100, token_name=name,
                                      cost=1000 * SCALE))


def bench_nav_mark(moves: int) -> dict:
    """Each move: one SetMarkPrice per underlying (10 commands), +/-0.2 %, alternating."""
    out = {}
    for with_tokens in (False, True):
        drv = _Driver(tokens=with_tokens)
        if with_tokens:
            _subscribe_all(drv, 3)
        cmds = []
        for s, p in drv.prices.items():
            cmds.append([C.SetMarkPrice(symbol=s, mark_price=p + p // 500),
                         C.SetMarkPrice(symbol=s, mark_price=p)])
        engine = drv.engine
        events = [0]

        def move(i, engine=engine, drv=drv, cmds=cmds, events=events):
            drv.time += 1
            for pair in cmds:
                drv.seq += 1
                events[0] += len(engine.handle(pair[i & 1], drv.seq, drv.time))
        us = _timed(move, moves)
        out[with_tokens] = (us, events[0] / moves)
    engine = drv.engine
    n = len(drv.names)
    (without, ev0), (with_, ev1) = out[False], out[True]
    nav_events = ev1 - ev0
    assert nav_events == n, (ev0, ev1)  # every token published on every move
    # the token hook alone: the 10 marks of one move, all 20 tokens (NAV, band, event); the
    # marks are set directly here (what their MarkPriceUpdated appliers do), then the hook runs
    marks = [V.MarkPriceUpdated(symbol=s, mark_price=p, index_price=0)
             for s, p in drv.prices.items()]

    def hook(i):
        engine.ledger.out = []
        for m in marks:
            engine.symbols[m.symbol].mark = m.mark_price + (m.mark_price // 500 if i & 1 else 0)
        engine.tokens.after_command(marks)
    hook_us = _timed(hook, moves)
    return {"tokens": n, "moves": moves, "nav_events_per_move": nav_events,
            "move_all_10_marks_without_tokens_us": round(without, 1),
            "move_all_10_marks_with_tokens_us": round(with_, 1),
            "nav_update_per_token_us": round((with_ - without) / n, 2),
            "token_hook_all_20_us": round(hook_us, 1),
            "token_hook_per_token_us": round(hook_us / n, 2)}


def bench_flows(flows: int) -> dict:
    drv = _Driver()
    _subscribe_all(drv, 2)
    engine = drv.engine
    names = drv.names
    n_names = len(names)
    subs = [C.SubscribeToken(account=2 + i % FLOW_USERS, token_name=names[i % n_names],
                             cost=100 * SCALE) for i in range(flows)]
    reds = [C.RedeemToken(account=2 + i % FLOW_USERS, token_name=names[i % n_names],
                          amount=9 * SCALE) for i in range(flows)]
    kinds: dict[str, int] = {}

    def run(cmds):
        def step(i):
            drv.seq += 1
            drv.time += 1
            for e in engine.handle(cmds[i], drv.seq, drv.time):
                k = type(e).__name__
                kinds[k] = kinds.get(k, 0) + 1
        return step
    trader = 2 + USERS
    drv.send(C.CreateAccount(account=trader, registered_at=START - 400 * 86_400_000))
    drv.send(C.Deposit(account=trader, amount=10 ** 9 * SCALE))
    orders = [C.NewOrder(account=trader, symbol="ETHUSDT", side="BUY" if i & 1 else "SELL",
                         type="LIMIT", quantity=SCALE // 10,
                         price=(3003 if i & 1 else 2997) * SCALE, time_in_force="IOC")
              for i in range(flows)]
    order_us = _timed(run(orders), flows)
    assert kinds.get("Trade") == flows, kinds
    kinds = {}
    sub_us = _timed(run(subs), flows)
    sub_kinds, kinds = dict(kinds), {}
    red_us = _timed(run(reds), flows)
    red_kinds = dict(kinds)
    assert sub_kinds.get("TokenSubscribed") == flows, sub_kinds
    assert red_kinds.get("TokenRedeemed") == flows, red_kinds
    # spot: even accounts rest a BTCUP sell, the next odd account takes it
    spot = []
    for i in range(flows):
        spot.append(C.NewSpotOrder(account=2 + 2 * (i % 100), symbol="BTCUPUSDT", side="SELL",
                                   type="LIMIT", quantity=SCALE, price=10 * SCALE,
                                   time_in_force="GTC"))
        spot.append(C.NewSpotOrder(account=3 + 2 * (i % 100), symbol="BTCUPUSDT", side="BUY",
                                   type="LIMIT", quantity=SCALE, price=10 * SCALE,
                                   time_in_force="GTC"))
    # enough tokens for the sellers (setup)
    for i in range(100):
        drv.send(C.SubscribeToken(account=2 + 2 * i, token_name="BTCUP", cost=1000 * SCALE))
    kinds = {}
    spot_us = _timed(run(spot), 2 * flows)
    assert kinds.get("SpotTrade") == flows, kinds
    return {"flows": flows,
            "order_one_fill_us": round(order_us, 1),
            "subscribe_us": round(sub_us, 1),
            "subscribe_events": round(sum(sub_kinds.values()) / flows, 1),
            "hedge_fills_per_subscribe": round(sub_kinds.get("Trade", 0) / flows, 2),
            "redeem_us": round(red_us, 1),
            "redeem_events": round(sum(red_kinds.values()) / flows, 1),
            "spot_order_us (rest or cross)": round(spot_us, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m engine.bench tokens")
    ap.add_argument("--moves", type=int, default=4_000)
    ap.add_argument("--flows", type=int, default=4_000)
    args = ap.parse_args(argv)
    print(machine_line(), flush=True)
    print("token NAV on a mark move (20 tokens, 10 underlyings):", bench_nav_mark(args.moves),
          flush=True)
    print("subscription / redemption / spot:", bench_flows(args.flows), flush=True)

