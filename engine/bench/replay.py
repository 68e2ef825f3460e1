"""Replay benchmarks (a report, not a test):  python -m engine.bench replay [--events N] [--resting N]

verify     rebuild from the events of a log of at least N events, checkpoint hashes included
re-drive   the same log's commands through a fresh core, events compared byte for byte
snapshot   write and restore the whole state holding N resting orders
"""
from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from dataclasses import asdict

from engine.core import catalogue as catalogue_mod
from engine.core import snapshot
from engine.core import Engine, EngineConfig
from engine.bench.common import machine_line
from engine.eventlog import LogWriter
from engine.core.fixed import SCALE
from engine.sequencer import Sequencer
from engine.sim.synthetic import START_MS, HonestFlow, Outcomes, setup_commands
from proto import events as V
from engine import recovery as snapshots
from replay.redrive import redrive
from replay.verify import verify


def make_log(path: str, min_events: int) -> dict:
    cat = catalogue_mod.load()
    engine = Engine(cat, EngineConfig(checkpoint_every=10_000))
    writer = LogWriter(path, cat.version, fsync=False, engine_config=asdict(engine.config))
    seqr = Sequencer(engine, writer)
    for cmd in setup_commands(100):
        seqr.submit(cmd, START_MS)
    events = 0
    chunk = 0
    flow = HonestFlow(cat)  # one flow, continued chunk after chunk
    outcomes = Outcomes()
    while events < min_events:
        for i, cmd in enumerate(flow.take(100_000)):
            evs = seqr.submit(cmd, START_MS + chunk * 100_000 + i).events
            outcomes.add(evs)
            events += len(evs)
            if i % 1000 == 999:
                seqr.flush()
        chunk += 1
    seqr.flush()
    writer.close()
    return {"records": seqr.seq, "events": events, "bytes": os.path.getsize(path),
            "outcomes": outcomes.as_dict()}


def bench_replay(min_events: int) -> dict:
    cat = catalogue_mod.load()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.log")
        made = make_log(path, min_events)
        gc.collect()
        v = verify(path, cat, progress=False)
        r = redrive(path, cat, progress=False)
    assert v.intact and r.identical and v.state_hash == r.state_hash
    return {"log": made, "verify_seconds": v.seconds,
            "verify_events_per_s": round(v.events / v.seconds),
            "checkpoints_matched": v.checkpoints,
            "redrive_seconds": r.seconds, "redrive_commands_per_s": round(r.records / r.seconds),
            "redrive_events_per_s": round(r.events / r.seconds)}


def bench_snapshot(resting: int) -> dict:
    cat = catalogue_mod.load()
    engine = Engine(cat, EngineConfig(checkpoint_every=0))
    accounts = 1000
    engine.apply_record(1, 0, [V.AccountCreated(account=a, registered_at=0)
                               for a in range(1, accounts + 1)] +
                        [V.Deposited(account=a, amount=10**6 * SCALE, balance=10**6 * SCALE)
                         for a in range(1, accounts + 1)])
    symbols = ["BTCUSDT", "ETHUSDT", "ALLUSDT"]
    batch = []
    for i in range(resting):
        sym = engine.symbols[symbols[i % 3]]
        spec = sym.spec
        side = "BUY" if i % 2 else "SELL"
        level = i % 5000
        ticks = 300_000 - 1 - level if side == "BUY" else 300_000 + level
        batch.append(V.OrderAccepted(
            order_id=i + 1, account=1 + i % accounts, symbol=spec.symbol, side=side,
            type="LIMIT", time_in_force="GTC", price=ticks * spec.tick_size,
            quantity=spec.min_qty, reduce_only=False, client_order_id="", stp_mode="NONE",
            rest=True))
        if len(batch) == 10_000:
            engine.apply_record(2, 0, batch)
            batch = []
    engine.apply_record(2, 0, batch)
    live_hash = engine.state_hash()
    gc.collect()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        blob = snapshot.take(engine)
        t1 = time.perf_counter()
        path = snapshots.write(tmp, engine.seq, blob)
        t2 = time.perf_counter()
        size = os.path.getsize(path)
        del blob
        gc.collect()
        t3 = time.perf_counter()
        _, data, _ = snapshots.latest_good(tmp)
        restored = snapshot.restore(cat, data, EngineConfig(checkpoint_every=0))
        t4 = time.perf_counter()
    assert restored.state_hash() == live_hash
    return {"resting_orders": resting, "snapshot_mb": round(size / 2**20, 1),
            "encode_seconds": round(t1 - t0, 2), "write_seconds": round(t2 - t1, 2),
            "restore_seconds": round(t4 - t3, 2), "hash_equal": True}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench replay")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--resting", type=int, default=1_000_000)
    a = p.parse_args(argv)
    print(machine_line())
    print("replay  :", bench_replay(a.events))
    print("snapshot:", bench_snapshot(a.resting))
    return 0

