"""`make bench`: throughput and latency figures (a report, not a test).

    python -m engine.bench [core|book|rss|all] [--n N] [--resting N]

core  the full core on the honest flow (engine.sim.synthetic: 60 % resting limits, 25 % cancels
      of resting orders, 15 % crossing; outcomes counted and printed): checks, matching,
      events, msgpack encoding, log written in batches of 1,000 records (no fsync: that is the
      gateway's durability setting, measured there)
book  the book alone: the same flow on engine.core.book.OrderBook with a bare matching loop, no
      checks, no accounts, no events
rss   peak resident memory of a process holding N resting orders placed through the core
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter

from engine.core import catalogue as catalogue_mod
from engine.core.book import BUY, SELL, Order, OrderBook
from engine.core import Engine, EngineConfig
from engine.bench.common import machine_line
from engine.core.build import core_build
from engine.eventlog import LogWriter
from engine.sequencer import Sequencer
from engine.sim.synthetic import START_MS, Outcomes, order_flow, setup_commands
from proto import commands as C


def _pct(sorted_ns: list[int], p: float) -> float:  # edge: timing and statistics, not money
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * p))] / 1000


def bench_core(n: int, repeats: int = 3) -> dict:
    """The full core on the honest flow (engine.sim.synthetic): each run a fresh engine, the
    same seeded commands; the median run is reported, with the flow's outcomes."""
    cat = catalogue_mod.load()
    flow = order_flow(cat, n)
    runs = [_core_run(cat, flow) for _ in range(repeats)]
    rates = sorted(r["commands_per_s"] for r in runs)
    median = next(r for r in runs if r["commands_per_s"] == rates[len(rates) // 2])
    return {**median, "repeats": repeats, "commands_per_s_runs": rates, "build": core_build()}


def _core_run(cat, flow: list) -> dict:
    n = len(flow)
    engine = Engine(cat, EngineConfig(checkpoint_every=100_000))
    with tempfile.TemporaryDirectory() as tmp:
        writer = LogWriter(os.path.join(tmp, "bench.log"), cat.version, fsync=False)
        seqr = Sequencer(engine, writer)
        for cmd in setup_commands(100):
            seqr.submit(cmd, START_MS)
        seqr.flush()
        lat = []
        recorded = []
        clock = time.perf_counter_ns
        gc.collect()
        gc.disable()  # the engine allocates no cycles; measured as a server would run it
        t0 = clock()
        for i, cmd in enumerate(flow):
            s = clock()
            rec = seqr.submit(cmd, START_MS + i)
            lat.append(clock() - s)
            recorded.append(rec.events)
            if i % 1000 == 999:
                seqr.flush()
        seqr.flush()
        elapsed = (clock() - t0) / 1e9
        gc.enable()
        log_bytes = os.path.getsize(os.path.join(tmp, "bench.log"))
        writer.close()
    outcomes = Outcomes()
    events = 0
    for evs in recorded:
        outcomes.add(evs)
        events += len(evs)
    lat.sort()
    resting = sum(len(s.book.orders) for s in engine.symbols.values())
    return {"commands": n, "seconds": round(elapsed, 3), "commands_per_s": round(n / elapsed),
            "events_per_s": round(events / elapsed), "events": events,
            "latency_mean_us": round(sum(lat) / len(lat) / 1000, 2),
            "latency_p99_us": round(_pct(lat, 0.99), 2), "latency_max_us": round(lat[-1] / 1000, 1),
            "log_bytes": log_bytes, "log_bytes_per_command": round(log_bytes / n),
            "resting_orders_at_end": resting, "outcomes": outcomes.as_dict()}


def bench_book(n: int, repeats: int = 5) -> dict:
    """The data structure alone: add, cancel, and match on OrderBook primitives, on the honest
    flow's commands. The timed loop runs `repeats` times on fresh books (the machine's timing
    varies run to run); the median and the best are reported."""
    cat = catalogue_mod.load()
    flow = order_flow(cat, n)
    rates = []
    for _ in range(repeats):
        ops, fills, elapsed, outcomes = _book_run(flow)
        rates.append(ops / elapsed)
    rates.sort()
    return {"ops": ops, "fills": fills, "repeats": repeats,
            "ops_per_s_median": round(rates[len(rates) // 2]), "ops_per_s_best": round(rates[-1]),
            "outcomes": dict(outcomes), "build": core_build()}


def _book_run(flow) -> tuple[int, int, float, Counter]:
    books = {s: OrderBook(s) for s in ("BTCUSDT", "ETHUSDT", "ALLUSDT")}
    ops = 0
    fills = 0
    next_id = 1
    missed = 0
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    t0 = clock()
    for cmd in flow:
        book = books[cmd.symbol]
        if type(cmd) is C.CancelOrder:
            o = book.orders.get(cmd.order_id)
            if o is not None:
                book.remove(o)
            else:
                missed += 1
            ops += 1
            continue
        order = Order(next_id, cmd.account, cmd.symbol, cmd.side, cmd.price, cmd.quantity,
                      cmd.time_in_force, "LIMIT", False, "", "NONE")
        next_id += 1
        maker_side = SELL if order.side == BUY else BUY
        is_buy = order.side == BUY
        while order.remaining:
            level = book.best_level(maker_side)
            if level is None or (level.price > order.price if is_buy else level.price < order.price):
                break
            maker = level.head
            q = min(order.remaining, maker.remaining)
            book.reduce(maker, q)
            order.remaining -= q
            fills += 1
        if order.remaining and order.tif == "GTC":
            book.add(order)
        ops += 1
    elapsed = (clock() - t0) / 1e9
    gc.enable()
    outcomes = Counter({"cancels of unknown orders": missed,
                        "resting at end": sum(len(b.orders) for b in books.values())})
    return ops, fills, elapsed, outcomes


def bench_rss(resting: int) -> dict:
    """Runs in its own process so the figure is that of an engine holding `resting` orders."""
    out = subprocess.run([sys.executable, "-c", f"""
import gc, time
from engine.core import catalogue
from engine.core import Engine, EngineConfig
from engine.core.fixed import SCALE
from proto import commands as C
cat = catalogue.load()
e = Engine(cat, EngineConfig(checkpoint_every=0))
def vm(key):  # from /proc (ru_maxrss would carry the parent's peak across exec)
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
base = vm("VmRSS:")
n = {resting}
accounts = max(1000, n // 150)  # MAX_NUM_ORDERS: 200 open orders per account and symbol
for a in range(1, accounts + 1):
    e.handle(C.CreateAccount(account=a, registered_at=0), a, 0)
    e.handle(C.Deposit(account=a, amount=10**7 * SCALE), a, 0)
seq = 10_000
gc.disable()
t0 = time.perf_counter()
for i in range(n):
    side = "BUY" if i % 2 else "SELL"
    ticks = 300_000 - 1 - (i % 5000) if side == "BUY" else 300_000 + (i % 5000)
    seq += 1
    ev = e.handle(C.NewOrder(account=1 + i % accounts, symbol="BTCUSDT", side=side, type="LIMIT",
                             quantity=100_000, price=ticks * 10_000_000, time_in_force="GTC",
                             new_client_order_id=""), seq, 0)
el = time.perf_counter() - t0
gc.enable(); gc.collect()
resting = len(e.symbols["BTCUSDT"].book.orders)
print(resting, base, vm("VmHWM:"), el, vm("VmRSS:"))
"""], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    resting_n, base_kb, peak_kb, el, now_kb = out.stdout.split()
    return {"resting_orders": int(resting_n), "peak_rss_mb": round(int(peak_kb) / 1024, 1),
            "rss_with_orders_mb": round(int(now_kb) / 1024, 1),
            "rss_before_orders_mb": round(int(base_kb) / 1024, 1),
            "placement_seconds": round(float(el), 2),  # edge: timing and statistics, not money
            "placement_orders_per_s": round(int(resting_n) / float(el))}  # edge: timing and statistics, not money


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench")
    p.add_argument("what", nargs="?", default="core", choices=["core", "book", "rss"])
    p.add_argument("--n", type=int, default=300_000, help="commands in the synthetic flow")
    p.add_argument("--resting", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=3, help="core runs (the median is reported)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args(argv)
    out = {}
    if not args.json:
        print(machine_line())
    if args.what == "book":
        out["book"] = bench_book(args.n)
        args.json or print("book alone:", out["book"])
    if args.what == "core":
        out["core"] = bench_core(args.n, args.repeats)
        args.json or print("full core :", out["core"])
    if args.what == "rss":
        out["rss"] = bench_rss(args.resting)
        args.json or print("resting   :", out["rss"])
    if args.json:
        print(json.dumps(out))
    return 0


