"""Conditional orders' cost to the core (a report, not a test):

    python -m engine.bench conditional [--n N] [--runs R]

Two seeded flows, each timed on a fresh core, runs interleaved: 60 % resting orders (limits
away from the touch), 25 % cancels of open orders, 15 % crossing IOC limits, and a mark move
every 20 commands. In the second flow conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET and
trailing stops on the mark or the last price, their triggers 0.05 %-1 % from the price, so the
moves and trades cross some) make up a fifth of the open orders, and a fifth of the cancels
cancel them. The flows are generated against a live core (every cancel names an open order)
before the timed runs. The triggers are indexed by price
(engine.core.conditional), so the core's rate should stay within 10 % of the flow without them.
Prints each flow's rate (median and range of the runs) and its outcomes, then the mean time of
each kind of command in both flows (where the difference goes).
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
from collections import Counter

from engine.core import Engine, EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.core.fixed import SCALE
from proto import commands as C
from proto import events as V

SYMBOL = "BTCUSDT"
ACCOUNTS = 100
MARK = 30_000 * SCALE
TICK = SCALE // 10


def setup() -> tuple[Engine, int]:
    engine = Engine(catalogue_mod.load(), EngineConfig(checkpoint_every=0))
    seq = 0
    for a in range(1, ACCOUNTS + 1):
        for cmd in (C.CreateAccount(account=a, registered_at=0),
                    C.Deposit(account=a, amount=10_000_000 * SCALE)):
            seq += 1
            engine.handle(cmd, seq, 0)
    seq += 1
    engine.handle(C.SetMarkPrice(symbol=SYMBOL, mark_price=MARK), seq, 0)
    return engine, seq


def flow(n: int, conditional: bool, seed: int = 7) -> list[C.Command]:
    """The commands (after the setup) of one run, generated against a live core so that
    every cancel names an order that is open (rejections stay under 1 %); deterministic for a
    seed. With `conditional`, conditional orders are placed while they are fewer than a
    quarter of the resting ordinary orders (a fifth of all)."""
    rng = random.Random(seed)
    engine, seq = setup()
    book = engine.symbols[SYMBOL].book
    algos = engine.conditional.algos
    cmds: list[C.Command] = []
    mark = MARK
    for i in range(n):
        if i % 20 == 19:
            mark = max(25_000 * SCALE, mark + rng.randint(-30, 30) * TICK)
            cmd: C.Command = C.SetMarkPrice(symbol=SYMBOL, mark_price=mark)
        else:
            acct = rng.randint(1, ACCOUNTS)
            side = "BUY" if rng.random() < 0.5 else "SELL"
            r = rng.random()
            last = engine.symbols[SYMBOL].last_price or mark
            if r < 0.60 and conditional and len(algos) * 4 < len(book.orders):
                kind = rng.choice(("STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING"))
                working = rng.choice(("MARK_PRICE", "CONTRACT_PRICE"))
                ref = mark if working == "MARK_PRICE" else last
                away = ref * rng.randint(5, 100) // 10_000 // TICK * TICK + TICK
                if kind == "TRAILING":
                    cmd = C.NewAlgoOrder(account=acct, symbol=SYMBOL, side=side,
                                         type="TRAILING_STOP_MARKET", quantity=SCALE // 1000,
                                         callback_rate=rng.choice((1, 2, 3)) * SCALE // 2,
                                         working_type="MARK_PRICE")
                else:
                    up = (side == "BUY") == (kind == "STOP_MARKET")
                    cmd = C.NewAlgoOrder(account=acct, symbol=SYMBOL, side=side, type=kind,
                                         quantity=SCALE // 1000,
                                         trigger_price=ref + away if up else ref - away,
                                         working_type=working)
            elif r < 0.60:
                away = rng.randint(5, 200) * TICK
                cmd = C.NewOrder(account=acct, symbol=SYMBOL, side=side, type="LIMIT",
                                 quantity=SCALE // 1000,
                                 price=mark - away if side == "BUY" else mark + away,
                                 time_in_force="GTC")
            elif r < 0.85 and conditional and algos and rng.random() < 0.2:
                algo = algos[rng.choice(list(algos))]
                cmd = C.CancelAlgoOrder(account=algo.account, algo_id=algo.algo_id)
            elif r < 0.85 and book.orders:
                order = book.orders[rng.choice(list(book.orders))]
                cmd = C.CancelOrder(account=order.account, symbol=SYMBOL,
                                    order_id=order.order_id)
            else:
                reach = rng.randint(20, 120) * TICK
                cmd = C.NewOrder(account=acct, symbol=SYMBOL, side=side, type="LIMIT",
                                 quantity=SCALE // 1000 * rng.randint(1, 3),
                                 price=mark + reach if side == "BUY" else mark - reach,
                                 time_in_force="IOC")
        seq += 1
        engine.handle(cmd, seq, 0)
        cmds.append(cmd)
    return cmds


def run(cmds: list[C.Command]) -> dict:
    """Time a fresh core through the flow."""
    engine, seq = setup()
    outcomes: Counter = Counter()
    gc.collect()
    gc.disable()
    t0 = time.perf_counter_ns()
    for cmd in cmds:
        seq += 1
        for ev in engine.handle(cmd, seq, 0):
            t = type(ev)
            if t is V.OrderRejected or t is V.CommandRejected or t is V.AlgoOrderRejected:
                outcomes[f"rejected {ev.code}"] += 1
            elif t is V.OrderAccepted and ev.rest:
                outcomes["rested"] += 1
            elif t in _COUNTED:
                outcomes[_COUNTED[t]] += 1
    elapsed = (time.perf_counter_ns() - t0) / 1e9  # edge: timing and statistics, not money
    gc.enable()
    resting = len(engine.symbols[SYMBOL].book.orders)
    waiting = len(engine.conditional.algos)
    return {"commands": len(cmds), "per_s": len(cmds) / elapsed, "outcomes": outcomes,
            "resting_at_end": resting, "conditional_at_end": waiting}


_COUNTED = {V.OrderRested: "rested", V.Trade: "trades",
            V.OrderCanceled: "canceled", V.OrderExpired: "expired",
            V.AlgoOrderAccepted: "conditional placed", V.AlgoOrderTriggered: "triggered",
            V.AlgoOrderCanceled: "conditional canceled", V.MarkPriceUpdated: "mark moves"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench conditional")
    p.add_argument("--n", type=int, default=100_000, help="commands per run")
    p.add_argument("--runs", type=int, default=5, help="runs of each flow, interleaved")
    args = p.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"core: {Engine.__module__}")
    rates: dict[bool, list[float]] = {False: [], True: []}
    last: dict[bool, dict] = {}
    flows = {c: flow(args.n, c) for c in (False, True)}
    for i in range(args.runs):
        for conditional in (False, True):
            r = run(flows[conditional])
            rates[conditional].append(r["per_s"])
            last[conditional] = r
            print(f"run {i + 1}/{args.runs} {'with' if conditional else 'without'} "
                  f"conditional orders: {r['per_s']:,.0f} commands/s", file=sys.stderr)
    for conditional in (False, True):
        r, rs = last[conditional], rates[conditional]
        share = r["conditional_at_end"] / max(1, r["conditional_at_end"] + r["resting_at_end"])
        print(f"{'with' if conditional else 'without'} conditional orders: median "
              f"{statistics.median(rs):,.0f} commands/s (range {min(rs):,.0f}-{max(rs):,.0f}, "
              f"{len(rs)} runs of {r['commands']:,} commands); at the end {r['resting_at_end']:,} "
              f"resting and {r['conditional_at_end']:,} conditional ({share:.0%}); outcomes of "
              f"the last run: {dict(sorted(r['outcomes'].items()))}")
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    print(f"ratio with / without: {ratio:.3f} (target >= 0.90)")
    # where the difference goes: the mean time of each kind of command in each flow (a
    # separate pass with a timer around every command, so a little slower than the runs)
    kinds = {c: by_kind(flows[c]) for c in (False, True)}
    print("mean µs per command, without / with conditional orders (count with):")
    for kind in sorted(kinds[True], key=lambda k: -kinds[True][k][0] * kinds[True][k][1]):
        mean, count = kinds[True][kind]
        before = f"{kinds[False][kind][0]:.2f}" if kind in kinds[False] else "-"
        print(f"  {kind:16} {before:>6} / {mean:.2f}  ({count:,})")
    return 0


def by_kind(cmds: list[C.Command]) -> dict[str, tuple[float, int]]:
    """kind -> (mean µs, count), timing each command on a fresh core."""
    engine, seq = setup()
    total: Counter = Counter()
    count: Counter = Counter()
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    for cmd in cmds:
        seq += 1
        t0 = clock()
        engine.handle(cmd, seq, 0)
        elapsed = clock() - t0
        kind = type(cmd).__name__
        if kind == "NewOrder":
            kind = f"NewOrder {cmd.time_in_force}"  # type: ignore[attr-defined]
        total[kind] += elapsed
        count[kind] += 1
    gc.enable()
    return {k: (total[k] / count[k] / 1000, count[k]) for k in count}  # edge: timing only
