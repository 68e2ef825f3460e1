"""The server process: the core, the log, the sequencing loop, the edges and the risk consumer,
assembled and run on uvloop (DESIGN.md's shape).

    native gateway (engine.server.native) --submit/read--> sequencing loop
        (engine.server.sequencing: core, batch, write + fsync) --> replies, streams,
        risk consumer, snapshots
    risk consumer: a child process following the log file (engine.riskconsumer.process; the
        default), or (`risk_process=False`, --risk-inline) a task reading the loop's records
        --> Liquidate / MarginCall --> loop

* Durability: a request is acknowledged only after its record is in the log file and
  flushed: fsync per batch by default; with fsync="interval" the batch is written (the OS has
  it) and fsynced every `fsync_interval_ms` in the background, faster and durable against a
  process crash but not a power cut.
* Time is stamped by the sequencing loop from the venue's clock (engine.server.clock: the wall
  clock, or simulated time with --clock sim), never read by the core. The log header records
  the clock the log was started with.
* With `market` (make run) the market simulator runs as a child process, a client of the
  native port like any other (engine.server.market).
* Every `snapshot_every` events the whole state is written to `snapshot_dir` by a forked child
  (copy-on-write: the server pauses only for the fork). On start the state is the newest good
  snapshot the log reaches plus the log's tail. Only a torn tail (the last, incomplete write:
  nothing valid after it) is cut off, and the first line says so; damage followed by valid
  records stops the start with where it is and what would be lost, the file unchanged
  (`repair` moves the damaged part aside, never deletes it). Snapshots beyond the log's end
  are moved aside, never used: the log never gets a gap.
* One server per log and key store: both are held with an exclusive flock; a second server
  is refused with a one-line reason (ServerStartError), as is a port already in use.
* With `--log nats://HOST:PORT/STREAM` the log is a JetStream stream (engine.server.natslog:
  replies after the PubAck, a heartbeat, fencing; `--standby` follows the stream and takes
  over when the active goes quiet; a fenced server stops with exit status 3).
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
from engine.core.build import core_build_line
from engine.core.fixed import fmt
from engine.core.snapshot import restore, take
from engine.eventlog import (LogDamaged, LogLocked, LogWriter, examine, is_nats, lock_log,
                             repair, truncate_to_good)
from engine.riskconsumer import RiskConsumer
from engine.sequencer import Sequencer
from engine.server import logsetup
from engine.server.auth import KeyStore, KeyStoreLocked
from engine.server.clock import WallClock, describe_line, make_clock
from engine.server.config import ServerConfig, parse_args
from engine.server.market import SIM_ACCOUNT_BASE, SIM_ACCOUNT_LAST, MarketChild
from engine.server.native import GatewayLimits, NativeGateway
from engine.server.sequencing import BatchListener, SequencingLoop
from proto import events as V
from proto.records import LogRecord
from engine import recovery as snapshots

log = structlog.get_logger("server")

__all__ = ["Server", "ServerConfig", "ServerStartError", "WallClock", "serve", "main"]


class ServerStartError(RuntimeError):
    """The server cannot start; the message says why, in a sentence."""


class Server(BatchListener):
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.catalogue = catalogue_mod.load(config.catalogue_path)
        self.nats = is_nats(config.log_path)  # a JetStream log (engine.server.natslog)
        self.following = False  # a standby applying the stream
        self.role = None
        self._log_lock = -1
        if not self.nats:
            Path(config.log_path).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._log_lock = lock_log(config.log_path)  # before anything reads the log
            except LogLocked as exc:
                raise ServerStartError(str(exc)) from None
        try:  # a standby opens its key store when it takes over (the active holds it)
            self.keys = KeyStore(None if config.standby else config.keys_path, lock=True)
        except KeyStoreLocked as exc:
            self._close_log_lock()
            raise ServerStartError(str(exc)) from None
        self.engine = Engine(self.catalogue, EngineConfig(checkpoint_every=config.checkpoint_every))
        try:
            if self.nats:
                from engine.server import natslog
                try:
                    self.recovered = natslog.recover(self)
                except (natslog.StreamUnreadable, ConnectionError) as exc:
                    raise ServerStartError(str(exc)) from None
            else:
                self.recovered = self._recover()
        except ServerStartError:
            self.keys.close()
            self._close_log_lock()
            raise
        # the venue's clock; `clock.now()` is the time edges report (native `time` query, the
        # HTTP API's /fapi/v1/time); the header of a new log records it
        self.clock = make_clock(config.clock, config.speed, config.start, self.engine.time)
        self.writer = None if self.nats else LogWriter(
            config.log_path, self.catalogue.version, fsync=config.fsync == "batch",
            engine_config=self.log_header_config())
        self.sequencer = Sequencer(self.engine, self.writer)
        self.loop = SequencingLoop(self.sequencer, self.clock, config.batch_max)
        self.consumer = None if config.risk_process else RiskConsumer(
            self.catalogue, self.engine.config, restore(self.catalogue, take(self.engine)))
        self.risk_queue: asyncio.Queue = asyncio.Queue()
        self.stats = {"trades": 0, "liquidations": 0, "rejected": 0, "slow_disconnects": 0}
        self.gateway = NativeGateway(
            self.engine, self.loop, self.keys,
            GatewayLimits(max_frame=config.max_frame, outbound_limit=config.outbound_limit,
                          outbound_bytes=config.outbound_bytes, sndbuf=config.sndbuf,
                          rate_per_s=config.rate_per_s, rate_burst=config.rate_burst,
                          weight_per_min=config.weight_per_min,
                          max_connections=config.max_connections,
                          idle_timeout_s=config.idle_timeout_s), self.stats)
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
        self.market: MarketChild | None = None
        self._tasks: list[asyncio.Task] = []
        self.address: tuple[str, int] | None = None

    def log_header_config(self) -> dict:
        """The engine configuration a new log's header records (with the clock)."""
        return {**dataclasses.asdict(self.engine.config), "clock": self.clock.describe()}

    def _close_log_lock(self) -> None:
        if self._log_lock >= 0:
            os.close(self._log_lock)
            self._log_lock = -1

    @property
    def fatal(self) -> asyncio.Event:
        """Set when the sequencing loop could not go on."""
        return self.loop.fatal

    # -- recovery -------------------------------------------------------------------------------
    def _recover(self) -> dict:
        """The state from the newest good snapshot the log reaches and the log's tail. A torn
        tail (nothing valid after it: never acknowledged) is cut off first, saying so; other
        damage refuses the start, or with `repair` is moved aside."""
        path = Path(self.config.log_path)
        facts: dict = {"records": 0, "truncated": None, "snapshot": None, "repaired": None,
                       "set_aside": []}
        if not path.exists() or path.stat().st_size == 0:
            self._set_aside_snapshots(0, facts)
            return facts
        damage = examine(path)
        last_seq = damage.last_seq if damage else None
        if damage is not None and damage.torn_tail:
            print(f"perpengine: {path} ends in a torn write at {damage.describe()} "
                  f"({damage.size - damage.good_end:,} bytes, never acknowledged): cutting it",
                  file=sys.stderr, flush=True)
            truncate_to_good(path)
            facts["truncated"] = damage.describe()
            if damage.problem.record_number == 0:  # a header cut short: a new log
                self._set_aside_snapshots(0, facts)
                return facts
        elif damage is not None:
            if not self.config.repair or damage.problem.record_number == 0:
                raise ServerStartError(LogDamaged(path, damage).explain())
            damage, aside = repair(path)
            print(f"perpengine: --repair: moved {damage.size - damage.good_end:,} bytes from "
                  f"{damage.describe()} ({damage.after:,} valid records after it) to {aside}; "
                  f"going on from seq {damage.last_seq:,}", file=sys.stderr, flush=True)
            facts["repaired"] = f"{damage.describe()}; moved to {aside}"
        if last_seq is None:
            last_seq = snapshots.last_seq(path)
        self._set_aside_snapshots(last_seq, facts)
        self.engine, restored = snapshots.restore(self.catalogue, path, self.config.snapshots(),
                                                  self.engine.config, max_seq=last_seq)
        facts.update(records=last_seq, snapshot=restored["snapshot"])
        return facts

    def _set_aside_snapshots(self, last_seq: int, facts: dict) -> None:
        """Snapshots the log does not reach would put a gap into it: never use them."""
        ahead = snapshots.beyond(self.config.snapshots(), last_seq)
        if ahead:
            moved = snapshots.set_aside(ahead)
            print(f"perpengine: {len(moved)} snapshot(s) beyond the log's last record (seq "
                  f"{last_seq:,}) moved aside to {moved[0].parent}, not used", file=sys.stderr,
                  flush=True)
            facts["set_aside"] = [m.name for m in moved]

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.nats:  # the stream's writer first: nothing is served before it is ours
            await self._open_stream()
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
            durable = ["--durable", self.config.risk_durable] if self.nats else []
            self._risk_child = subprocess.Popen(
                [sys.executable, "-m", "engine.riskconsumer", "--log", self.config.log_path,
                 "--port", str(self.address[1]), "--key", key.apiKey, *durable],
                stdin=subprocess.DEVNULL,  # the secret travels in the environment, not argv
                env={**os.environ, "PERPENGINE_RISK_SECRET": key.secret})
        else:  # an account left under water by a crash is found now, not at its next event
            for cmd in self.consumer.evaluate_all():
                self.loop.submit(cmd)
        if self.config.fsync == "interval" and self.writer is not None:
            self._tasks.append(asyncio.create_task(self._fsync_loop(), name="fsync"))

    async def start_market(self) -> None:
        """The market simulator as a child process, logged in with an admin key."""
        key = next((k for k in self.keys.keys.values() if k.admin), None) or \
            self.keys.create(None, admin=True)
        self.market = MarketChild(self.config, self.address[0], self.address[1], key.apiKey,
                                  key.secret)
        await self.market.start()

    async def stop(self) -> None:
        """Drain: stop the market simulator, stop accepting, finish every queued request and
        every liquidation the risk consumer asks for meanwhile (for at most `drain_s`), flush
        the log, close."""
        if self.market is not None:
            await self.market.stop()
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
        if self.writer is not None:
            self.writer.sync()
            self.writer.close()
        if self.role is not None:
            await self.role.close()
        if self._snapshot_child is not None:
            os.waitpid(self._snapshot_child, 0)
        await self.gateway.close_connections()
        self.keys.close()
        self._close_log_lock()

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
            if not self.config.risk_process and not self.following:
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
            try:  # its copies of the locks' fds go (the parent's keep the locks)
                if self._log_lock >= 0:
                    os.close(self._log_lock)
                if self.keys.fileno() >= 0:
                    os.close(self.keys.fileno())
                snapshots.write(directory, seq, take(self.engine))
                code = 0
            finally:
                os._exit(code)
        self._snapshot_child = pid
        log.info("snapshot started", seq=seq, child=pid)

    # -- a JetStream log (engine.server.natslog) ------------------------------------------------
    async def _open_stream(self) -> None:
        from engine.server import natslog
        if self.role is None:
            self.role = natslog.NatsRole(self)
        try:
            writer = await self.role.open_active()
        except (natslog.ActiveElsewhere, ConnectionError) as exc:
            await self.role.close()
            raise ServerStartError(str(exc)) from None
        self.loop.log = writer
        self.role.start_tasks()

    async def follow(self) -> None:
        """A standby: apply the stream until the active goes quiet, fence it, then own the
        key store and the stream (start() serves)."""
        from engine.server import natslog
        self.role = natslog.NatsRole(self)
        self.following = True
        await self.role.follow(self.config.takeover_ms)
        self.following = False
        self.sequencer.seq = self.engine.seq
        self.clock = make_clock(self.config.clock, self.config.speed, self.config.start,
                                self.engine.time)
        self.loop.clock = self.clock
        deadline = time.monotonic() + 1  # the old active's process may still hold the keys
        while True:
            try:
                keys = KeyStore(self.config.keys_path, lock=True)
                break
            except KeyStoreLocked:
                if time.monotonic() > deadline:  # a stalled old active on this host: it is
                    keys = KeyStore(self.config.keys_path)  # fenced, and exits when it wakes
                    print(f"perpengine: {self.config.keys_path} is still locked by the old "
                          "active's process; opened without the lock", file=sys.stderr,
                          flush=True)
                    break
                await asyncio.sleep(0.1)
        self.keys.close()
        self.keys = self.gateway.keys = keys
        natslog.report_takeover(self.role)

    def apply_followed(self, records: list[LogRecord]) -> None:
        """A standby applies records it read from the stream, as a restart would (the
        appliers), and tells its listeners as the sequencing loop would."""
        engine = self.engine
        fresh = []
        for record in records:
            if record.seq <= engine.seq:
                continue  # already in the state (a snapshot, or the batch read at recovery)
            if record.seq != engine.seq + 1:
                raise RuntimeError(f"the stream skips from seq {engine.seq} to {record.seq}")
            engine.apply_record(record.seq, record.time, record.events)
            for listener in self.loop.listeners:
                listener.after_command(record)
            if self.consumer is not None:  # inline risk: its projection only; no commands
                self.consumer.process(record)
            fresh.append(record)
        if fresh:
            for listener in self.loop.listeners:
                listener.before_replies(fresh)
                listener.after_flush(fresh)

    # -- background tasks -----------------------------------------------------------------------
    async def _risk(self) -> None:
        while True:
            record = await self.risk_queue.get()
            if record is None:
                return
            for cmd in self.consumer.process(record):  # (fed only when inline)
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
                "risk_lag": self.consumer.lag(self.sequencer.seq) if self.consumer is not None
                else "(own process)",
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
    try:
        server = Server(config)
    except ServerStartError as exc:
        print(f"perpengine: not starting: {exc}", file=sys.stderr, flush=True)
        return 1
    if config.standby:
        print(f"perpengine: standby on {config.log_path}: following from record seq "
              f"{server.engine.seq} (stream seq {server.recovered.get('stream_seq', 1)}); "
              f"takes over after {config.takeover_ms} ms without the active's heartbeat",
              flush=True)
        try:
            await server.follow()
        except (ConnectionError, RuntimeError) as exc:
            print(f"perpengine: standby stopped: {exc}", file=sys.stderr, flush=True)
            return 1
    try:
        await server.start()
    except ServerStartError as exc:
        print(f"perpengine: not starting: {exc}", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:  # the port is taken, or the host is not ours
        print(f"perpengine: not starting: cannot listen on {config.host}:{config.port}: "
              f"{exc.strerror or exc}", file=sys.stderr, flush=True)
        if server.writer is not None:
            server.writer.close()
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # before the first line: a signal right after
        loop.add_signal_handler(sig, stop.set)  # it must drain, not kill
    host, port = server.address
    rec = server.recovered
    durability = "JetStream PubAck per batch" if server.nats else f"fsync per {config.fsync}"
    print(f"perpengine: serving on {host}:{port} (msgpack frames and JSON lines); "
          f"log {config.log_path} ({durability}; {rec['records']} records"
          f"{', from snapshot ' + rec['snapshot'] if rec.get('snapshot') else ''}"
          f"{'; cut a bad tail: ' + rec['truncated'] if rec['truncated'] else ''}"
          f"{'; repaired: ' + rec['repaired'] if rec.get('repaired') else ''}); "
          f"{len(server.engine.symbols)} symbols; keys {config.keys_path}; "
          f"{core_build_line()}; risk consumer "
          f"{'in its own process' if config.risk_process else 'inline'}"
          f"{'; Binance API not started: ' + server.api_error if server.api_error else ''}"
          f"{'; Binance API on http://%s:%d' % server.api.address if server.api else ''}",
          flush=True)
    print(venue_line(config, server), flush=True)
    if config.market:
        await server.start_market()
    stopped, fatal = asyncio.create_task(stop.wait()), asyncio.create_task(server.fatal.wait())
    await asyncio.wait({stopped, fatal}, return_when=asyncio.FIRST_COMPLETED)
    await server.stop()
    if server.fatal.is_set() and server.role is not None and server.role.writer is not None \
            and server.role.writer.fenced:
        from engine.server import natslog
        natslog.stop_line(server.role.writer.fenced)
        return 3
    if server.fatal.is_set():
        print("perpengine: stopped after an internal error (see the log above); the event log "
              "holds every acknowledged command", flush=True)
        return 1
    s = server.summary()
    print(f"perpengine: stopped cleanly; {s['commands']} commands this run, log flushed "
          f"at seq {server.sequencer.seq}", flush=True)
    return 0


def venue_line(config: ServerConfig, server: Server) -> str:
    """The testnet-like start line: where the Binance API and the native port are, the clock,
    the market simulator, and the one command that makes a funded key."""
    host, port = server.address
    if server.api is not None and server.api_error is None:
        api = "Binance API http://%s:%d" % server.api.address
    elif server.api_error:
        api = f"Binance API not started ({server.api_error})"
    else:
        api = "no Binance API (--api-port -1)"
    if config.market:
        market = (f"market simulator on {config.market_symbols or 'its default symbols'} "
                  f"(seed {config.market_seed}"
                  f"{', prices ' + ' '.join(config.market_prices) if config.market_prices else ''}"
                  f"{', scenario ' + config.market_scenario if config.market_scenario else ''}"
                  f"; its accounts {SIM_ACCOUNT_BASE + 1}-{SIM_ACCOUNT_LAST} are the "
                  f"'simulator')")
    else:
        market = "no market simulator (an empty venue)"
    return (f"perpengine: venue ready: {api}, native "
            f"{host}:{port}; clock {describe_line(server.clock)}; {market}; a funded key: "
            f"python -m engine newkey --deposit 10000")


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logsetup.configure()
    try:
        import uvloop
        return uvloop.run(serve(config))
    except ImportError:  # uvloop is a dependency; this only helps on exotic platforms
        return asyncio.run(serve(config))
