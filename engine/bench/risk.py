"""Risk-consumer benchmarks (a report, not a test).

    python -m engine.bench risk [--holders N] [--n N]

mark   one mark update on a symbol held by N accounts: the consumer's time to recompute every
       affected margin ratio and find those at >= 100 % (and >= 80 %)
lag    the consumer following the full core at full speed: the largest number of records it
       was behind the head of the log
"""
from __future__ import annotations

import argparse
import gc
import time

from engine.bench.common import machine_line
from engine.core import catalogue as catalogue_mod
from engine.core import Engine, EngineConfig
from engine.core.fixed import SCALE
from engine.riskconsumer import RiskConsumer
from engine.sequencer import Sequencer
from engine.sim.synthetic import START_MS, Outcomes, order_flow, setup_commands
from proto import commands as C


def bench_mark_update(holders: int) -> dict:
    cat = catalogue_mod.load()
    config = EngineConfig(checkpoint_every=0, default_leverage=100)
    engine = Engine(cat, config)
    consumer = RiskConsumer(cat, config)
    seqr = Sequencer(engine)
    t = START_MS

    def run(cmd):
        consumer.process(seqr.submit(cmd, t))

    maker = holders + 1
    run(C.CreateAccount(account=maker, registered_at=0))
    run(C.Deposit(account=maker, amount=10**9 * SCALE))
    run(C.SetLeverage(account=maker, symbol="BTCUSDT", leverage=2))
    run(C.SetMarkPrice(symbol="BTCUSDT", mark_price=30_000 * SCALE))
    run(C.NewOrder(account=maker, symbol="BTCUSDT", side="SELL", type="LIMIT",
                   quantity=holders * 1_000_000, price=30_000 * SCALE, time_in_force="GTC"))
    t0 = time.perf_counter()
    for a in range(1, holders + 1):
        run(C.CreateAccount(account=a, registered_at=0))
        # 0.01 BTC at 100x needs 3 USDT + 0.15 of fees; wallets of 3.2 to 8 USDT reach 100 %
        # between marks of about 29,700 and 29,200, and 80 % a little above
        run(C.Deposit(account=a, amount=320_000_000 + (a % 20) * 25_000_000))
        run(C.NewOrder(account=a, symbol="BTCUSDT", side="BUY", type="LIMIT",
                       quantity=1_000_000, price=30_000 * SCALE, time_in_force="GTC"))
    setup_s = time.perf_counter() - t0
    assert len(consumer.holders["BTCUSDT"]) == holders + 1
    results = []
    gc.collect()
    gc.disable()
    for mark in (29_990, 29_900, 29_700, 29_500, 29_000, 29_990):
        record = seqr.submit(C.SetMarkPrice(symbol="BTCUSDT", mark_price=mark * SCALE), t)
        before = consumer.evaluations
        s = time.perf_counter()
        commands = consumer.process(record)
        elapsed = time.perf_counter() - s
        liquidations = sum(isinstance(c, C.Liquidate) for c in commands)
        calls = sum(isinstance(c, C.MarginCall) for c in commands)
        results.append({"mark": mark, "ms": round(elapsed * 1000, 1),
                        "accounts_recomputed": consumer.evaluations - before,
                        "new_at_100pct": liquidations, "new_at_80pct": calls})
    gc.enable()
    return {"holders": holders, "setup_seconds": round(setup_s, 1), "updates": results}


def bench_lag(n: int) -> dict:
    """Core and consumer interleaved as one process would run them: the core handles a batch
    of 1,000 commands, then the consumer catches up; lag = records not yet processed."""
    cat = catalogue_mod.load()
    engine = Engine(cat, EngineConfig(checkpoint_every=0))
    consumer = RiskConsumer(cat)
    seqr = Sequencer(engine)
    pending = []
    for cmd in setup_commands(100):
        pending.append(seqr.submit(cmd, START_MS))
    flow = order_flow(cat, n)  # the honest flow
    max_lag = 0
    outcomes = Outcomes()
    s = time.perf_counter()
    for i, cmd in enumerate(flow):
        pending.append(seqr.submit(cmd, START_MS + i))
        outcomes.add(pending[-1].events)
        if i % 1000 == 999:
            max_lag = max(max_lag, len(pending))
            for rec in pending:
                consumer.process(rec)
            pending.clear()
    for rec in pending:
        consumer.process(rec)
    elapsed = time.perf_counter() - s
    assert consumer.projection.state_hash() == engine.state_hash()
    return {"commands": n, "seconds": round(elapsed, 2),
            "commands_per_s_core_plus_consumer": round(n / elapsed),
            "max_lag_records": max_lag, "final_lag": consumer.lag(seqr.seq),
            "outcomes": outcomes.as_dict()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench risk")
    p.add_argument("--holders", type=int, default=100_000)
    p.add_argument("--n", type=int, default=200_000)
    args = p.parse_args(argv)
    print(machine_line(), flush=True)
    print("risk mark update:", bench_mark_update(args.holders))
    print("risk lag        :", bench_lag(args.n))
    return 0

