"""Matching shards on loopback: a simulation of the step after one sequencer (README, "Sharding").

    python -m engine.sim.shards [--shards 1,2,4] [--n 120000] [--rate 10000] [--seconds 3]

Eight symbols are split over K shard processes (`python -m engine.sim.shards serve`, each a
real core: engine.core.Engine, the same checks, matching and events), by a fixed map (symbol i
to shard i mod K). A router (this process) sends each shard its commands over TCP on 127.0.0.1
in frames of msgpack batches and gets back a summary per batch. The workload is the honest flow
per shard (engine.sim.synthetic over that shard's symbols; the same mix at every K; the same
total number of commands).

saturated   every shard is kept busy (two batches of up to 2,048 in flight each): total
            commands/s from the first frame to the last reply
paced       `--rate` commands/s in total, sent every millisecond to whichever shard owns them;
            per command, the time from its frame being sent to its batch's reply (p50/p99)

What it measures: the cost of splitting matching by symbol: the router's partitioning and
framing, loopback TCP, and K cores in parallel. What it leaves out, on purpose: the risk shards
and the cross-shard margin protocol of the design (every shard holds every account with its
whole deposit, so no order is refused for margin held elsewhere), the durable log of each
shard, and the network: on this machine's two cores four shards and the router share two CPUs,
so beyond two shards the figure shows the overhead of more processes, not more capacity.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from engine.core import Engine, EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.sim.synthetic import START_MS, HonestFlow, setup_commands
from proto import commands as C
from proto import events as V

SYMBOLS = ("BTCUSDT", "ETHUSDT", "ALLUSDT", "BNBUSDT", "SOLUSDT", "AVAXUSDT", "XRPUSDT",
           "ADAUSDT")
FRAME = struct.Struct(">I")
BATCH = 2048
ROOT = Path(__file__).resolve().parent.parent.parent

_encode = msgspec.msgpack.Encoder().encode
_decode_batch = msgspec.msgpack.Decoder(list[C.AnyCommand]).decode


async def _read(reader: asyncio.StreamReader) -> bytes:
    (n,) = FRAME.unpack(await reader.readexactly(4))
    return await reader.readexactly(n)


def _write(writer: asyncio.StreamWriter, payload: bytes) -> None:
    writer.write(FRAME.pack(len(payload)) + payload)


# -- a shard ------------------------------------------------------------------------------------

async def _serve_shard(port: int) -> int:
    engine = Engine(catalogue_mod.load(), EngineConfig(checkpoint_every=0))
    state = {"seq": 0}
    done = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                cmds = _decode_batch(await _read(reader))
                rejected = trades = 0
                for cmd in cmds:
                    state["seq"] += 1
                    for e in engine.handle(cmd, state["seq"], START_MS + state["seq"]):
                        t = type(e)
                        if t is V.Trade:
                            trades += 1
                        elif t is V.OrderRejected or t is V.CommandRejected:
                            rejected += 1
                _write(writer, _encode([len(cmds), rejected, trades]))
        except (asyncio.IncompleteReadError, ConnectionError):
            done.set()

    server = await asyncio.start_server(on_connect, "127.0.0.1", port)
    print(f"shard ready on {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    await done.wait()
    server.close()
    os._exit(0)  # nothing to flush: a shard keeps no log


# -- the router ---------------------------------------------------------------------------------

class Shard:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.sim.shards", "serve"],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "shard ready on" not in line:
            raise RuntimeError(f"shard {index} did not start: {line!r}")
        self.port = int(line.split()[-1])

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def call(self, cmds: list) -> list[int]:
        _write(self.writer, _encode(cmds))
        return msgspec.msgpack.decode(await _read(self.reader))

    def stop(self) -> None:
        """Close the connection (the shard then ends by itself); SIGTERM if it does not."""
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _flows(cat, k: int, n: int) -> list[list]:
    """The honest flow for each of k shards over its symbols (n commands in all)."""
    out = []
    for i in range(k):
        symbols = tuple(s for j, s in enumerate(SYMBOLS) if j % k == i)
        out.append(HonestFlow(cat, 100, symbols, seed=i + 1).take(n // k))
    return out


async def _pipelined(shard: Shard, cmds: list, stats: list[int]) -> None:
    """Two batches in flight: the shard works on one while the next is on the wire."""
    batches = [cmds[i:i + BATCH] for i in range(0, len(cmds), BATCH)]
    pending: list[asyncio.Future] = []
    reader, writer = shard.reader, shard.writer
    for batch in batches:
        _write(writer, _encode(batch))
        pending.append(batch)
        if len(pending) >= 2:
            reply = msgspec.msgpack.decode(await _read(reader))
            pending.pop(0)
            stats[0] += reply[1]
            stats[1] += reply[2]
    for _ in pending:
        reply = msgspec.msgpack.decode(await _read(reader))
        stats[0] += reply[1]
        stats[1] += reply[2]


async def saturated(k: int, n: int, cat) -> dict:
    shards = [Shard(i) for i in range(k)]
    try:
        for s in shards:
            await s.connect()
            await s.call(setup_commands(100))
        flows = _flows(cat, k, n)
        stats = [0, 0]  # rejected, trades
        t0 = time.perf_counter()
        await asyncio.gather(*(_pipelined(s, f, stats) for s, f in zip(shards, flows)))
        elapsed = time.perf_counter() - t0
        total = sum(len(f) for f in flows)
        return {"commands_per_s": round(total / elapsed), "commands": total,
                "rejected": stats[0], "trades": stats[1]}
    finally:
        for s in shards:
            s.stop()


async def paced(k: int, rate: int, seconds: float, cat) -> dict:
    shards = [Shard(i) for i in range(k)]
    try:
        for s in shards:
            await s.connect()
            await s.call(setup_commands(100))
        per = int(rate * seconds) // k
        flows = _flows(cat, k, per * k)
        latencies: list[float] = []
        queues = [asyncio.Queue() for _ in shards]

        async def sender() -> None:
            start = time.perf_counter()
            sent = [0] * k
            total = per * k
            done = 0
            while done < total:
                due = min(total, int((time.perf_counter() - start) * rate))
                now = time.perf_counter()
                while done < due:  # round robin over the shards: each gets rate / k
                    i = done % k
                    if sent[i] < per:
                        queues[i].put_nowait((flows[i][sent[i]], now))
                        sent[i] += 1
                    done += 1
                await asyncio.sleep(0.001)
            for q in queues:
                q.put_nowait(None)

        async def worker(shard: Shard, q: asyncio.Queue) -> None:
            while True:
                item = await q.get()
                batch = [item]
                while not q.empty() and len(batch) < BATCH:
                    batch.append(q.get_nowait())
                stop = None in batch
                items = [b for b in batch if b is not None]
                if items:
                    await shard.call([c for c, _ in items])
                    now = time.perf_counter()
                    latencies.extend(now - t for _, t in items)
                if stop:
                    return

        t0 = time.perf_counter()
        await asyncio.gather(sender(), *(worker(s, q) for s, q in zip(shards, queues)))
        elapsed = time.perf_counter() - t0
        lat = sorted(latencies[len(latencies) // 10:])
        return {"achieved_per_s": round(len(latencies) / elapsed),
                "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
                "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2)}
    finally:
        for s in shards:
            s.stop()


async def run(args) -> int:
    cat = catalogue_mod.load()
    counts = [int(x) for x in args.shards.split(",")]
    print(f"machine: {os.cpu_count()} cores; {len(SYMBOLS)} symbols split over K matching "
          f"shards (processes, loopback TCP); honest flow per shard; {args.runs} runs each",
          flush=True)
    for k in counts:
        sat = [await saturated(k, args.n, cat) for _ in range(args.runs)]
        lat = [await paced(k, args.rate, args.seconds, cat) for _ in range(args.runs)]
        rates = sorted(r["commands_per_s"] for r in sat)
        p50 = sorted(r["p50_ms"] for r in lat)
        p99 = sorted(r["p99_ms"] for r in lat)
        print(f"K={k}: saturated {statistics.median(rates):,.0f} commands/s (runs "
              f"{', '.join(f'{r:,}' for r in rates)}; {sat[0]['trades']:,} trades, "
              f"{sat[0]['rejected']} rejected of {sat[0]['commands']:,}); at {args.rate:,}/s "
              f"offered: p50 {statistics.median(p50)} ms ({p50[0]}-{p50[-1]}), p99 "
              f"{statistics.median(p99)} ms ({p99[0]}-{p99[-1]})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["serve"]:
        try:
            import uvloop
            return uvloop.run(_serve_shard(0))
        except ImportError:
            return asyncio.run(_serve_shard(0))
    p = argparse.ArgumentParser(prog="python -m engine.sim.shards")
    p.add_argument("--shards", default="1,2,4")
    p.add_argument("--n", type=int, default=120_000, help="commands per saturated run")
    p.add_argument("--rate", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    try:
        import uvloop
        return uvloop.run(run(args))
    except ImportError:
        return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
