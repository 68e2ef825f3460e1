"""The server process: the core, the log, the sequencing loop, the edges and the risk consumer,
assembled and run on uvloop (DESIGN.md's shape).

    native gateway (engine.server.native) --submit/read--> sequencing loop
        (engine.server.sequencing: core, batch, write + fsync) --> replies, streams,
        risk consumer, snapshots
    risk consumer: a task reading the loop's records, or (`risk_process`) a child process
        reading the log file (engine.riskconsumer.process) --> Liquidate / MarginCall --> loop

* Durability: a request is acknowledged only after its record is in the log file and
  flushed: fsync per batch by default; with fsync="interval" the batch is written (the OS has
  it) and fsynced every `fsync_interval_ms` in the background, faster and durable against a
  process crash but not a power cut.
* Time is the wall clock in ms, stamped by the sequencing loop (never read by the core).
* Every `snapshot_every` events the whole state is written to `snapshot_dir` by a forked child
  (copy-on-write: the server pauses only for the fork). On start the state is the newest good
  snapshot plus the log's tail, after a torn or corrupt tail is cut off the log.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import structlog

from engine.api import ApiConfig, ApiServer
from engine.core import Engine, EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.core.fixed import fmt
from engine.core.snapshot import restore, take
from engine.eventlog import LogWriter, truncate_to_good
from engine.riskconsumer import RiskConsumer
from engine.sequencer import Sequencer
from engine.server import logsetup
from engine.server.auth import KeyStore
from engine.server.config import ServerConfig, parse_args
from engine.server.native import GatewayLimits, NativeGateway
from engine.server.sequencing import BatchListener, SequencingLoop
from proto import events as V
from proto.records import LogRecord
from engine import recovery as snapshots

log = structlog.get_logger("server")

__all__ = ["Server", "ServerConfig", "serve", "main"]


class WallClock:
    """Unix ms from the system clock, never going backwards (the core's time only grows)."""

    def __init__(self, start: int = 0) -> None:
        self.last = start

    def __call__(self) -> int:
        now = max(time.time_ns() // 1_000_000, self.last)
        self.last = now
        return now


class Server(BatchListener):
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.catalogue = catalogue_mod.load(config.catalogue_path)
        self.keys = KeyStore(config.keys_path)
        self.engine = Engine(self.catalogue, EngineConfig(checkpoint_every=config.checkpoint_every))
        self.recovered = self._recover()
        self.writer = LogWriter(config.log_path, self.catalogue.version,
                                fsync=config.fsync == "batch",
                                engine_config=dataclasses.asdict(self.engine.config))
        self.sequencer = Sequencer(self.engine, self.writer)
        self.loop = SequencingLoop(self.sequencer, WallClock(self.engine.time), config.batch_max)
        self.consumer = RiskConsumer(self.catalogue, self.engine.config,
                                     restore(self.catalogue, take(self.engine)))
        self.risk_queue: asyncio.Queue = asyncio.Queue()
        self.stats = {"trades": 0, "liquidations": 0, "rejected": 0, "slow_disconnects": 0}
        self.gateway = NativeGateway(
            self.engine, self.loop, self.keys,
            GatewayLimits(max_frame=config.max_frame, outbound_limit=config.outbound_limit,
                          sndbuf=config.sndbuf, rate_per_s=config.rate_per_s,
                          rate_burst=config.rate_burst), self.stats)
        self.loop.listeners += [self.gateway, self]
        self.api = None  # Binance's REST and WebSocket API, fed by the same loop
        self.api_error: str | None = None  # why it did not start
        if config.api_port >= 0:
            self.api = ApiServer(self.engine, self.loop, self.keys, ApiConfig(
                host=config.api_host, port=config.api_port,
                weight_per_minute=config.api_weight_limit,
                orders_per_minute=config.api_order_limit,
                orders_per_10s=max(1, config.api_order_limit // 4),
                outbound_limit=config.outbound_limit, sndbuf=config.sndbuf,
                listen_key_ttl_ms=int(config.api_listen_key_minutes * 60_000)),
                log_path=config.log_path)
            self.loop.listeners.append(self.api)
        self._events_since_snapshot = 0
        self._snapshot_child: int | None = None
        self._risk_child: subprocess.Popen | None = None
        self._tasks: list[asyncio.Task] = []
        self.address: tuple[str, int] | None = None

    @property
    def fatal(self) -> asyncio.Event:
        """Set when the sequencing loop could not go on."""
        return self.loop.fatal

    # -- recovery -------------------------------------------------------------------------------
    def _recover(self) -> dict:
        """The state from the newest good snapshot and the log's tail (a torn or corrupt tail
        is cut off the log first: nothing after it was ever acknowledged)."""
        path = Path(self.config.log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.stat().st_size == 0:
            return {"records": 0, "truncated": None, "snapshot": None}
        kept, problem = truncate_to_good(path)
        self.engine, facts = snapshots.restore(self.catalogue, path, self.config.snapshots(),
                                               self.engine.config)
        return {"records": kept, "snapshot": facts["snapshot"],
                "truncated": f"record {problem.record_number} at byte {problem.offset}: "
                             f"{problem.what}" if problem else None}

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.keys.keys:
            self.keys.create(None, admin=True)
        await self.gateway.start(self.config.host, self.config.port)
        self.address = self.gateway.address
        if self.api is not None:
            try:
                await self.api.start()
            except OSError as exc:  # the native gateway serves on; say why the API does not
                log.warning("Binance API not started", error=str(exc))
                self.api_error = str(exc)
                self.loop.listeners.remove(self.api)
                self.api = None
        self._tasks = [asyncio.create_task(self.loop.run(), name="sequencer"),
                       asyncio.create_task(self._risk(), name="risk"),
                       asyncio.create_task(self._summaries(), name="summary")]
        if self.config.risk_process:  # the child catches up on the log and evaluates all
            key = next((k for k in self.keys.keys.values() if k.risk), None) or \
                self.keys.create(None, risk=True)
            self._risk_child = subprocess.Popen(
                [sys.executable, "-m", "engine.riskconsumer", "--log", self.config.log_path,
                 "--port", str(self.address[1]), "--key", key.apiKey],
                stdin=subprocess.DEVNULL,  # the secret travels in the environment, not argv
                env={**os.environ, "PERPENGINE_RISK_SECRET": key.secret})
        else:  # an account left under water by a crash is found now, not at its next event
            for cmd in self.consumer.evaluate_all():
                self.loop.submit(cmd)
        if self.config.fsync == "interval":
            self._tasks.append(asyncio.create_task(self._fsync_loop(), name="fsync"))

    async def stop(self) -> None:
        """Drain: stop accepting, finish every queued request and every liquidation the risk
        consumer asks for meanwhile (for at most `drain_s`), flush the log, close."""
        self.gateway.close()
        if self.api is not None:
            await self.api.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.drain_s
        quiet = 0
        while quiet < 3 and loop.time() < deadline and not self._tasks[0].done():
            idle = self.loop.idle() and self.risk_queue.empty()
            quiet = quiet + 1 if idle else 0
            await asyncio.sleep(0.01)
        await self.loop.stop()
        await asyncio.gather(self._tasks[0], return_exceptions=True)
        await self.risk_queue.put(None)
        await self._tasks[1]
        if self._risk_child is not None:
            self._risk_child.terminate()
            await asyncio.get_running_loop().run_in_executor(None, self._risk_child.wait)
        for t in self._tasks[2:]:
            t.cancel()
        self.writer.sync()
        self.writer.close()
        if self._snapshot_child is not None:
            os.waitpid(self._snapshot_child, 0)
        await self.gateway.close_connections()

    # -- the sequencing loop's listener ---------------------------------------------------------
    def after_flush(self, records: list[LogRecord]) -> None:
        stats = self.stats
        for record in records:
            for ev in record.events:
                t = type(ev)
                if t is V.Trade:
                    stats["trades"] += 1
                elif t is V.LiquidationStarted:
                    stats["liquidations"] += 1
            if not self.config.risk_process:
                self.risk_queue.put_nowait(record)
        self._events_since_snapshot += sum(len(r.events) for r in records)
        every = self.config.snapshot_every
        if every and self._events_since_snapshot >= every:
            self._snapshot()

    def _snapshot(self) -> None:
        """Write the state as of the flushed log from a forked child (copy-on-write)."""
        if self._snapshot_child is not None:
            pid, status = os.waitpid(self._snapshot_child, os.WNOHANG)
            if pid == 0:
                return  # the previous one is still writing; try after the next batch
            self._snapshot_child = None
        self._events_since_snapshot = 0
        directory, seq = self.config.snapshots(), self.engine.seq
        if not hasattr(os, "fork"):
            snapshots.write(directory, seq, take(self.engine))
            return
        pid = os.fork()
        if pid == 0:  # the child: encode, write, leave without running any parent cleanup
            code = 1
            try:
                snapshots.write(directory, seq, take(self.engine))
                code = 0
            finally:
                os._exit(code)
        self._snapshot_child = pid
        log.info("snapshot started", seq=seq, child=pid)

    # -- background tasks -----------------------------------------------------------------------
    async def _risk(self) -> None:
        while True:
            record = await self.risk_queue.get()
            if record is None:
                return
            for cmd in self.consumer.process(record):
                self.loop.submit(cmd)

    async def _fsync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.fsync_interval_ms / 1000)
            await asyncio.get_running_loop().run_in_executor(None, self.writer.sync)

    def open_interest(self) -> dict[str, str]:
        oi: dict[str, int] = {}
        for acct in self.engine.accounts.values():
            for sym, pos in acct.positions.items():
                if pos.qty > 0:
                    oi[sym] = oi.get(sym, 0) + pos.qty
        return {s: fmt(q) for s, q in sorted(oi.items())}

    def summary(self) -> dict:
        return {"commands": self.loop.commands, "trades": self.stats["trades"],
                "liquidations": self.stats["liquidations"],
                "risk_lag": self.consumer.lag(self.sequencer.seq),
                "connections": len(self.gateway.connections),
                "open_interest": self.open_interest(),
                "slow_disconnects": self.stats["slow_disconnects"]}

    async def _summaries(self) -> None:
        last = self.loop.commands
        last_t = time.monotonic()
        while True:
            await asyncio.sleep(self.config.summary_every_s)
            now = time.monotonic()
            rate = (self.loop.commands - last) / (now - last_t)
            s = self.summary()
            print(f"perpengine: {rate:,.0f} commands/s, {s['trades']} trades, "
                  f"{s['liquidations']} liquidations, risk lag {s['risk_lag']}, "
                  f"{s['connections']} connections, open interest {s['open_interest'] or '-'}",
                  flush=True)
            last, last_t = self.loop.commands, now


async def serve(config: ServerConfig) -> int:
    server = Server(config)
    await server.start()
    host, port = server.address
    rec = server.recovered
    print(f"perpengine: serving on {host}:{port} (msgpack frames and JSON lines); "
          f"log {config.log_path} (fsync per {config.fsync}; {rec['records']} records"
          f"{', from snapshot ' + rec['snapshot'] if rec.get('snapshot') else ''}"
          f"{'; cut a bad tail: ' + rec['truncated'] if rec['truncated'] else ''}); "
          f"{len(server.engine.symbols)} symbols; keys {config.keys_path}"
          f"{'; Binance API on http://%s:%d' % server.api.address if server.api else ''}"
          f"{'; Binance API not started: ' + server.api_error if server.api_error else ''}",
          flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopped, fatal = asyncio.create_task(stop.wait()), asyncio.create_task(server.fatal.wait())
    await asyncio.wait({stopped, fatal}, return_when=asyncio.FIRST_COMPLETED)
    await server.stop()
    if server.fatal.is_set():
        print("perpengine: stopped after an internal error (see the log above); the event log "
              "holds every acknowledged command", flush=True)
        return 1
    s = server.summary()
    print(f"perpengine: stopped cleanly; {s['commands']} commands this run, log flushed "
          f"at seq {server.sequencer.seq}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logsetup.configure()
    try:
        import uvloop
        return uvloop.run(serve(config))
    except ImportError:  # uvloop is a dependency; this only helps on exotic platforms
        return asyncio.run(serve(config))
