"""Index, mark and funding benchmark (a report, not a test):

    python -m engine.bench funding [--updates N] [--positions N]

index      the ALL Composite Index with 200 constituents: one constituent price move
           (engine.core.composite.CompositeIndex.move + value), the O(1) incremental update
index_cmd  the same move through the core: SetIndexPrices of one constituent, which samples
           its premium index and computes its mark, then ALLUSDT's (index, premium, mark), and
           emits the four events; books of 20 levels a side on every symbol. Also per
           constituent when all 200 move in one SetIndexPrices (ALLUSDT recomputed once)
mark       mark + premium for one symbol: impact bid and ask walked on a 20-level book, the
           premium index and the median mark (the pure functions), and through the core
           (SetIndexPrices of one non-constituent symbol: two events)
settle     a funding settlement over N open positions (half long, half short, one account
           each) in one symbol: the rate, the allocation (payers rounded up, largest remainder
           for receivers) and one FundingPaid event per position, applied; then the msgpack
           encoding of the resulting log record. The positions are placed into the engine's
           state directly (setup, not measured).
"""
from __future__ import annotations

import argparse
import gc
import random
import time

from engine.bench.common import machine_line
from engine.core import catalogue as catalogue_mod
from engine.core import funding as F
from engine.core import composite as X
from engine.core import markprice as M
from engine.core.accounts import Account, Position
from engine.core.book import BUY, SELL, Order
from engine.core import Engine, EngineConfig
from engine.eventlog import encode_record
from engine.core.fixed import SCALE, fmt
from proto import commands as C
from proto.records import LogRecord

START = 1_754_463_600_000  # 2025-08-06T07:00:00Z
N_CONSTITUENTS = 200


def _catalogue(n: int = N_CONSTITUENTS):
    """The packaged catalogue plus synthetic USDT perpetuals up to n eligible constituents."""
    base = catalogue_mod.load()
    have = sum(1 for s in base.symbols.values() if X.is_eligible(s))
    extra = [{"symbol": f"SYN{i:03d}USDT", "baseAsset": f"SYN{i:03d}",
              "brackets": [{"effective": "1970-01-01T00:00:00Z", "table": "50x"}]}
             for i in range(max(0, n - have))]
    return catalogue_mod.load(overrides={"symbols": extra})


def _fill_books(engine: Engine, symbols: list[str], prices: dict[str, int], levels: int) -> None:
    """Resting orders straight into the books (setup): `levels` levels a side around the
    price, enough depth that the impact notional spans several levels."""
    oid = 1_000_000
    for s in symbols:
        spec = engine.symbols[s].spec
        book = engine.symbols[s].book
        p = prices[s] // spec.tick_size * spec.tick_size
        notional = F.impact_notional(engine.symbols[s].table_at(START).max_leverage)
        qty = max(spec.min_qty, (notional // levels * 3) * SCALE // p // spec.step_size * spec.step_size)
        for i in range(1, levels + 1):
            for side, price in ((BUY, p - i * spec.tick_size), (SELL, p + i * spec.tick_size)):
                oid += 1
                book.add(Order(oid, 1, s, side, price, qty, "GTC", "LIMIT", False, "", "NONE"))


def bench_index(updates: int) -> dict:
    rng = random.Random(1)
    comp = X.CompositeIndex()
    prices = {f"S{i:03d}USDT": rng.randint(10 ** 3, 10 ** 13) for i in range(N_CONSTITUENTS)}
    comp.rebalance(X.BASE_VALUE, prices)
    names = list(prices)
    moves = []
    for _ in range(updates):
        s = names[rng.randrange(len(names))]
        prices[s] = max(1, prices[s] + rng.randint(-prices[s] // 100, prices[s] // 100))
        moves.append((s, prices[s]))
    move, value = comp.move, comp.value
    gc.disable()
    t0 = time.perf_counter_ns()
    for s, p in moves:
        move(s, p)
        value()
    elapsed = time.perf_counter_ns() - t0
    gc.enable()
    assert comp.total == comp.recompute_total()
    return {"constituents": N_CONSTITUENTS, "updates": updates,
            "per_update_us": round(elapsed / updates / 1000, 3)}


def _engine_with_index(levels: int = 20):
    cat = _catalogue()
    engine = Engine(cat, EngineConfig(checkpoint_every=0))
    rng = random.Random(2)
    fed = [s for s in sorted(cat.symbols) if s != X.COMPOSITE_SYMBOL]
    prices = {s: rng.randint(1, 50_000) * SCALE // 100 for s in fed}
    prices["BTCUSDT"] = 30_000 * SCALE
    _fill_books(engine, fed, prices, levels)
    seq = 1
    engine.handle(C.SetIndexPrices(prices=prices), seq, START)
    _fill_books(engine, [X.COMPOSITE_SYMBOL], {X.COMPOSITE_SYMBOL: engine.pricing.composite.value()},
                levels)
    return engine, prices, seq


def bench_index_cmd(updates: int) -> dict:
    engine, prices, seq = _engine_with_index()
    members = sorted(engine.pricing.composite.weights)
    assert len(members) == N_CONSTITUENTS
    rng = random.Random(3)
    cmds = []
    for _ in range(updates):
        s = members[rng.randrange(len(members))]
        prices[s] += rng.choice((-1, 1)) * (prices[s] // 2000)
        cmds.append(C.SetIndexPrices(prices={s: prices[s]}))
    handle = engine.handle
    gc.disable()
    t0 = time.perf_counter_ns()
    for i, cmd in enumerate(cmds):
        handle(cmd, seq + 1 + i, START + 1 + i)  # 1 ms apart: no settlement inside
    elapsed = time.perf_counter_ns() - t0
    gc.enable()
    rounds = max(1, updates // N_CONSTITUENTS)
    batches = []
    for _ in range(rounds):  # every constituent moves in each command (a feed's tick)
        for s in members:
            prices[s] += rng.choice((-1, 1)) * (prices[s] // 2000)
        batches.append(C.SetIndexPrices(prices={s: prices[s] for s in members}))
    base = seq + 1 + len(cmds)
    gc.disable()
    t0 = time.perf_counter_ns()
    for i, cmd in enumerate(batches):
        handle(cmd, base + i, START + 1 + len(cmds) + i)
    batch_elapsed = time.perf_counter_ns() - t0
    gc.enable()
    return {"constituents": N_CONSTITUENTS, "commands": updates, "events_per_command": 4,
            "per_command_us": round(elapsed / updates / 1000, 2),
            "all_200_in_one_command_us_per_constituent":
                round(batch_elapsed / (rounds * N_CONSTITUENTS) / 1000, 2)}


def bench_mark(updates: int) -> dict:
    engine, prices, seq = _engine_with_index()
    name = "BTCDOMUSDT"  # not a constituent: only its own premium and mark
    sym = engine.symbols[name]
    book = sym.book
    notional = F.impact_notional(sym.table_at(START).max_leverage)
    fs = engine.pricing.states[name]
    index = prices[name]
    gc.disable()
    t0 = time.perf_counter_ns()
    for i in range(updates):
        ib = F.impact_price(book, BUY, notional)
        ia = F.impact_price(book, SELL, notional)
        prem = F.premium_index(ib, ia, index + i)
        mark = M.mark_price(index + i, fs.last_rate, 3_600_000, fs.basis_average(),
                            sym.last_price)
    pure = time.perf_counter_ns() - t0
    levels_walked = sum(1 for _ in book.levels(BUY))
    t0 = time.perf_counter_ns()
    for i in range(updates):
        engine.handle(C.SetIndexPrices(prices={name: index + (i & 7)}), seq + 1 + i, START + 1 + i)
    through_core = time.perf_counter_ns() - t0
    gc.enable()
    del prem, mark
    return {"symbol": name, "book_levels_per_side": levels_walked, "updates": updates,
            "pure_us": round(pure / updates / 1000, 2),
            "through_core_us": round(through_core / updates / 1000, 2)}


def bench_settle(positions: int) -> dict:
    cat = catalogue_mod.load()
    engine = Engine(cat, EngineConfig(checkpoint_every=0))
    engine.handle(C.SetIndexPrices(prices={"BTCUSDT": 30_000 * SCALE}), 1, START)
    s = "BTCUSDT"
    taker_fee = cat.spec(s).taker_fee
    rng = random.Random(4)
    half = positions // 2
    sizes = [rng.randint(1, 500) * 100_000 for _ in range(half)]  # 0.001 to 0.5 BTC
    shorts = sizes[:]
    rng.shuffle(shorts)
    for i, qty in enumerate(sizes + [-q for q in shorts]):  # open interest balances
        aid = i + 1
        acct = engine.accounts[aid] = Account(aid, 0)
        acct.wallet = 1_000_000 * SCALE
        pos = acct.positions[s] = Position(s, 20, taker_fee)
        pos.qty, pos.cost = qty, qty * 30_000
        acct.rederive()
    engine.handle(C.SetIndexPrices(prices={s: 30_017 * SCALE}), 2, START + 1)
    gc.collect()
    gc.disable()
    t0 = time.perf_counter_ns()
    cmd = C.SetIndexPrices(prices={s: 30_017 * SCALE})
    events = engine.handle(cmd, 3, START + 3_600_000)  # 08:00: the settlement
    elapsed = time.perf_counter_ns() - t0
    t1 = time.perf_counter_ns()
    blob = encode_record(LogRecord(seq=3, time=START + 3_600_000, command=cmd, events=events))
    encode = time.perf_counter_ns() - t1
    gc.enable()
    paid = [e for e in events if type(e).__name__ == "FundingPaid"]
    assert len(paid) == positions and sum(e.amount for e in paid) == 0
    return {"positions": positions, "events": len(events),
            "settle_ms": round(elapsed / 1e6, 1), "encode_record_ms": round(encode / 1e6, 1),
            "record_bytes": len(blob), "rate": fmt(paid[0].funding_rate)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m engine.bench funding")
    ap.add_argument("--updates", type=int, default=100_000)
    ap.add_argument("--positions", type=int, default=100_000)
    args = ap.parse_args(argv)
    print(machine_line(), flush=True)
    print("index (pure, 200 constituents):", bench_index(args.updates), flush=True)
    print("index (through the core):", bench_index_cmd(args.updates // 5), flush=True)
    print("mark + premium per symbol:", bench_mark(args.updates // 5), flush=True)
    print("settlement:", bench_settle(args.positions), flush=True)

