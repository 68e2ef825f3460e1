"""The log on NATS JetStream, measured (a report, not a test).

    python -m engine.bench nats [--n N] [--runs R] [--rate 10000] [--seconds S] [--skip-failover]

Real nats-servers on 127.0.0.1 (engine.bench.natsservers: a single node, then a 3-node R3
cluster), started and stopped here. The workload is the honest flow (engine.sim.synthetic:
60 % resting limits, 25 % cancels of resting orders, 15 % crossing limits; its outcomes are
printed), after 200 setup commands (100 accounts created and funded).

durable throughput   every command queued at once (a saturated sequencer): the sequencing
                     loop's own batching (what is queued, up to batch_max 4,096: the
                     sequencer's natural batch under saturation), each batch through the core,
                     one JetStream message, and its PubAck awaited before the next batch, as
                     engine.server.sequencing does. Commands per second from the first command
                     to the last PubAck; publish -> PubAck per message, p50 / p99.
ack latency          the same loop fed at `--rate` commands/s (paced every millisecond) for
                     `--seconds`: each command's time from being queued to its batch being
                     acknowledged, p50 / p99, with no log (the loop alone), with the file log
                     (fsync per batch, in a thread, as the server does) and with JetStream;
                     "JetStream adds" is JetStream's p99 less the no-log p99, and the PubAck
                     wait itself.
failover             real processes: a server on the stream, a standby (--takeover-ms 500),
                     a client sending orders; the active SIGKILLed; the time from the last
                     acknowledgement by the old active to the first by the standby (the
                     client reconnects to the standby's port as soon as it listens).

The network is loopback and all three cluster nodes share this machine's two cores with the
engine, the benchmark and whatever else runs: R3 figures measure the protocol's round trips and
the servers' CPU, not a network.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.bench.common import machine_line
from engine.bench.natsservers import NatsServers, free_port
from engine.core import Engine, EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.eventlog import LogWriter
from engine.eventlog.jetstream import JetStreamLog, JetStreamWriter, new_header
from engine.sequencer import Sequencer
from engine.sim.synthetic import START_MS, HonestFlow, Outcomes, setup_commands

ROOT = Path(__file__).resolve().parent.parent.parent
BATCH_MAX = 4096


def _pct(values: list[int], p: float) -> float:  # edge: timing statistics, not money
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))] / 1e6 if s else 0.0  # ns -> ms


class Loop:
    """engine.server.sequencing's batching without the server: what is queued (up to
    BATCH_MAX) through the sequencer, then `append(records)` awaited, then the 'replies'
    (latencies recorded)."""

    def __init__(self, sequencer: Sequencer, append) -> None:
        self.sequencer = sequencer
        self.append = append
        self.queue: asyncio.Queue = asyncio.Queue()
        self.latency_ns: list[int] = []
        self.batches: list[int] = []
        self.records: list[list] = []  # counted after the run (outcomes)
        self.count = 0

    async def run(self) -> None:
        queue, seqr, clock = self.queue, self.sequencer, time.perf_counter_ns
        while True:
            item = await queue.get()
            batch = [item]
            while len(batch) < BATCH_MAX and not queue.empty():
                batch.append(queue.get_nowait())
            records, queued, stop = [], [], False
            for it in batch:
                if it is None:
                    stop = True
                    continue
                cmd, t = it
                self.count += 1
                records.append(seqr.submit(cmd, START_MS + self.count))
                queued.append(t)
            if records:
                await self.append(records)
                now = clock()
                self.latency_ns.extend(now - t for t in queued)
                self.batches.append(len(records))
                self.records.append(records)
            if stop:
                return


def _engine(cat) -> tuple[Engine, Sequencer]:
    engine = Engine(cat, EngineConfig(checkpoint_every=100_000))
    return engine, Sequencer(engine)


async def _jetstream(spec: str, cat) -> tuple[JetStreamLog, JetStreamWriter]:
    log = JetStreamLog(spec, "perpengine-bench")
    await log.connect()
    await log.ensure_stream()
    await log.write_header(new_header(cat.version, {}))
    writer = JetStreamWriter(log, await log.last_seq())
    return log, writer


async def throughput(spec: str | None, cat, flow: list) -> dict:
    """`spec` None: the same loop with no log at all (what the core and the loop cost)."""
    if spec is None:
        log = None
        writer = JetStreamWriter.__new__(JetStreamWriter)
        writer.ack_ns, writer.retries = [], 0

        async def nothing(records) -> None:
            writer.ack_ns.append(0)
        writer.append = nothing
    else:
        log, writer = await _jetstream(spec, cat)
    engine, seqr = _engine(cat)
    setup = Loop(seqr, writer.append)
    for cmd in setup_commands(100):
        setup.queue.put_nowait((cmd, 0))
    setup.queue.put_nowait(None)
    await setup.run()
    writer.keep_ack_times = True
    loop = Loop(seqr, writer.append)
    t0 = time.perf_counter_ns()
    for cmd in flow:
        loop.queue.put_nowait((cmd, t0))
    loop.queue.put_nowait(None)
    await loop.run()
    elapsed = (time.perf_counter_ns() - t0) / 1e9
    if log is not None:
        await log.close()
    outcomes = Outcomes()
    for batch in loop.records:
        for r in batch:
            outcomes.add(r.events)
    return {"commands_per_s": round(len(flow) / elapsed), "seconds": round(elapsed, 2),
            "messages": len(writer.ack_ns), "batch_mean": round(len(flow) / len(loop.batches)),
            "ack_p50_ms": round(_pct(writer.ack_ns, 0.5), 2),
            "ack_p99_ms": round(_pct(writer.ack_ns, 0.99), 2),
            "outcomes": outcomes, "retries": writer.retries}


async def paced(kind: str, spec: str | None, cat, flow: list, rate: int, seconds: float,
                tmp: Path) -> dict:
    """The loop fed at `rate` commands/s; latencies from queued to acknowledged."""
    engine, seqr = _engine(cat)
    log = writer = file_writer = None
    if kind == "jetstream":
        log, writer = await _jetstream(spec, cat)
        append = writer.append
    elif kind == "file":
        file_writer = LogWriter(tmp / f"paced-{time.monotonic_ns()}.log", cat.version, fsync=True)
        seqr.writer = file_writer
        loop_ = asyncio.get_running_loop()

        async def append(records) -> None:
            await loop_.run_in_executor(None, seqr.flush)
    else:
        async def append(records) -> None:
            return None
    setup = Loop(seqr, append)
    for cmd in setup_commands(100):
        setup.queue.put_nowait((cmd, 0))
    setup.queue.put_nowait(None)
    await setup.run()
    if writer is not None:
        writer.keep_ack_times = True
    loop = Loop(seqr, append)
    runner = asyncio.create_task(loop.run())
    total = min(len(flow), int(rate * seconds))
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate))
        now = time.perf_counter_ns()
        while sent < due:
            loop.queue.put_nowait((flow[sent], now))
            sent += 1
        await asyncio.sleep(0.001)
    loop.queue.put_nowait(None)
    await runner
    if log is not None:
        await log.close()
    if file_writer is not None:
        file_writer.close()
    lat = loop.latency_ns[len(loop.latency_ns) // 10:]  # the first tenth warms up
    out = {"p50_ms": round(_pct(lat, 0.5), 2), "p99_ms": round(_pct(lat, 0.99), 2),
           "batch_mean": round(sum(loop.batches) / len(loop.batches), 1),
           "achieved_per_s": round(total / (time.perf_counter() - start))}
    if writer is not None:
        acks = writer.ack_ns[len(writer.ack_ns) // 10:]
        out.update(ack_p50_ms=round(_pct(acks, 0.5), 2), ack_p99_ms=round(_pct(acks, 0.99), 2))
    return out


# -- failover: real processes -------------------------------------------------------------------

def _serve(tmp: Path, spec: str, name: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--port", str(free_port()), "--log", spec,
         "--keys", str(tmp / "keys.json"), "--summary-every", "3600", "--snapshots",
         str(tmp / f"{name}.snapshots"), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=open(tmp / f"{name}.stderr", "ab"), text=True)


def _port(proc: subprocess.Popen, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "serving on" in line:
            return int(line.split("serving on ")[1].split()[0].rsplit(":", 1)[1])
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("the server did not start")


async def failover_once(nodes: NatsServers, run: int, tmp: Path) -> dict:
    import json

    from engine.client import Client, ClientError
    spec = nodes.spec(f"FAILOVER{run}")
    active = _serve(tmp, spec, f"active{run}")
    standby = None
    try:
        port = _port(active)
        admin_key = next(k for k in json.loads((tmp / "keys.json").read_text()) if k["admin"])
        standby = _serve(tmp, spec, f"standby{run}", "--standby", "--takeover-ms", "500")
        loop = asyncio.get_running_loop()
        standby_port = loop.run_in_executor(None, _port, standby)
        acks: list[tuple[float, int]] = []
        client = Client("127.0.0.1", port)
        await client.connect()
        await client.login(admin_key["apiKey"], admin_key["secret"])
        for a in range(1, 11):  # orders spread so none nears 200 open orders per symbol
            await client.request("createAccount", account=a, registeredAt=0)
            await client.request("deposit", account=a, amount="1000000")
        await client.request("setMarkPrice", symbol="BTCUSDT", markPrice="30000")
        await asyncio.sleep(0.5)  # the standby is following
        n = 0
        killed = 0.0
        current = port
        while True:
            n += 1
            try:
                await client.request("newOrder", account=1 + n % 10, symbol="BTCUSDT", side="BUY",
                                     type="LIMIT", quantity="0.001", price=str(29000 + n % 150),
                                     timeInForce="GTC")
                acks.append((time.monotonic(), current))
                if current != port:
                    break
            except ClientError:
                raise
            except Exception:  # the active is gone: to the standby as soon as it listens
                await client.close()
                current = await standby_port
                while True:
                    try:
                        client = Client("127.0.0.1", current)
                        await client.connect()
                        await client.login(admin_key["apiKey"], admin_key["secret"])
                        break
                    except (OSError, ConnectionError):
                        await asyncio.sleep(0.005)
            if not killed and len(acks) >= 200:
                os.kill(active.pid, signal.SIGKILL)
                killed = time.monotonic()
            await asyncio.sleep(0.001)
        await client.close()
        last_old = max(t for t, p in acks if p == port)
        first_new = min(t for t, p in acks if p != port)
        return {"failover_ms": round((first_new - last_old) * 1000),
                "after_kill_ms": round((first_new - killed) * 1000)}
    finally:
        for p in (active, standby):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def _summary(values: list[float], unit: str, digits: int = 0) -> str:
    med = statistics.median(values)
    fmt = (lambda v: f"{v:,.{digits}f}")
    return f"{fmt(med)} {unit} (runs {', '.join(fmt(v) for v in sorted(values))})"


async def run(args) -> int:
    cat = catalogue_mod.load()
    print(machine_line(), flush=True)
    print(f"workload: the honest flow (60 % resting limits, 25 % cancels of resting orders, "
          f"15 % crossing limits), {args.n:,} commands after 200 setup commands; the core "
          f"sequences, JetStream stores one message per batch", flush=True)
    flow = HonestFlow(cat, 100).take(max(args.n, int(args.rate * args.seconds)))
    results: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="perpbench-nats-"))
    bare = [await throughput(None, cat, flow[:args.n]) for _ in range(args.runs)]
    for name, nodes in (("single node", 1), ("R3", 3)):
        with NatsServers(nodes) as servers:
            tp = []
            for r in range(args.runs):
                tp.append(await throughput(servers.spec(f"TP{r}"), cat, flow[:args.n]))
                print(f"  {name} throughput run {r + 1}: {tp[-1]['commands_per_s']:,} commands/s, "
                      f"batch {tp[-1]['batch_mean']:,}, PubAck p50 {tp[-1]['ack_p50_ms']} ms p99 "
                      f"{tp[-1]['ack_p99_ms']} ms", file=sys.stderr, flush=True)
            lat = []
            for r in range(args.runs):
                lat.append(await paced("jetstream", servers.spec(f"LAT{r}"), cat, flow,
                                       args.rate, args.seconds, tmp))
                print(f"  {name} at {args.rate:,}/s run {r + 1}: {lat[-1]}", file=sys.stderr,
                      flush=True)
            results[name] = (tp, lat)
    base = [await paced("none", None, cat, flow, args.rate, args.seconds, tmp)
            for _ in range(args.runs)]
    files = [await paced("file", None, cat, flow, args.rate, args.seconds, tmp)
             for _ in range(args.runs)]
    outcomes = results["single node"][0][0]["outcomes"]
    print(f"outcomes of the {args.n:,} flow commands: {outcomes.line()}")
    print(f"\ndurable throughput (saturated; batches as the loop forms them, at most "
          f"{BATCH_MAX:,}):")
    print(f"  {'no log':12s} {_summary([t['commands_per_s'] for t in bare], 'commands/s')} "
          f"(the same loop and core, nothing written: the ceiling)")
    for name, (tp, _) in results.items():
        print(f"  {name:12s} {_summary([t['commands_per_s'] for t in tp], 'commands/s')}; "
              f"mean batch {tp[0]['batch_mean']:,} commands; PubAck per message p50 "
              f"{_summary([t['ack_p50_ms'] for t in tp], 'ms', 2)}, p99 "
              f"{_summary([t['ack_p99_ms'] for t in tp], 'ms', 2)}")
    print(f"\nlatency from queued to acknowledged at {args.rate:,} commands/s offered "
          f"({args.seconds:g} s per run):")
    rows = [("no log", base), ("file, fsync", files)] + \
        [(f"JetStream {n}", lat) for n, (_, lat) in results.items()]
    for name, runs in rows:
        extra = ""
        if "ack_p99_ms" in runs[0]:
            extra = (f"; PubAck wait p50 {_summary([r['ack_p50_ms'] for r in runs], 'ms', 2)}, "
                     f"p99 {_summary([r['ack_p99_ms'] for r in runs], 'ms', 2)}")
        print(f"  {name:20s} p50 {_summary([r['p50_ms'] for r in runs], 'ms', 2)}, p99 "
              f"{_summary([r['p99_ms'] for r in runs], 'ms', 2)}; mean batch "
              f"{statistics.median(r['batch_mean'] for r in runs)}{extra}")
    base_p99 = statistics.median(r["p99_ms"] for r in base)
    for n, (_, lat) in results.items():
        added = statistics.median(r["p99_ms"] for r in lat) - base_p99
        print(f"  JetStream {n}: adds {added:.2f} ms at p99 over the loop alone (target <= 2 ms)")
    if not args.skip_failover:
        print("\nfailover (single node; SIGKILL of the active, standby --takeover-ms 500):")
        with NatsServers(1) as servers:
            fo = [await failover_once(servers, r, tmp) for r in range(args.runs)]
        print(f"  last ack by the old active -> first ack by the standby: "
              f"{_summary([f['failover_ms'] for f in fo], 'ms')}; after the kill "
              f"{_summary([f['after_kill_ms'] for f in fo], 'ms')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench nats")
    p.add_argument("--n", type=int, default=150_000, help="commands in a throughput run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rate", type=int, default=10_000, help="commands/s of the latency runs")
    p.add_argument("--seconds", type=float, default=4.0, help="length of a latency run")
    p.add_argument("--skip-failover", action="store_true")
    args = p.parse_args(argv)
    try:  # the server's event loop
        import uvloop
        return uvloop.run(run(args))
    except ImportError:
        return asyncio.run(run(args))
