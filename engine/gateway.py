"""The TCP gateway: asyncio on uvloop, the core, the log writer and the risk consumer in one
process (DESIGN.md's shape).

    connections --requests--> inbox --> sequencer task: core, batch, write + fsync --> acks,
                                                                        streams, risk queue
    risk task: RiskConsumer over the records --> Liquidate / MarginCall --> inbox

* An order is acknowledged only after its record is in the log file and flushed: fsync per
  batch by default; with fsync="interval" the batch is written (the OS has it) and fsynced every
  `fsync_interval_ms` in the background, faster and durable against a process crash but not a
  power cut. While a batch is being flushed (in a thread) new requests queue up and form the
  next batch: group commit.
* Time is the wall clock in ms, stamped here by the sequencer (never read by the core).
* The risk consumer runs as a task here by default; with `risk_process` it runs as a child
  process (`python -m engine.riskconsumer`) that reads the log file and sends its commands
  back over TCP with a risk key, so it uses the second core (DESIGN.md's scale-out path).
* Every `snapshot_every` events the whole state is written to `snapshot_dir` by a forked child
  (copy-on-write: the server pauses only for the fork). On start the state is the newest good
  snapshot plus the log's tail, after a torn or corrupt tail is cut off the log.
* Each connection's outbound messages are bounded: replies are backpressure (the server stops
  reading a connection while its unanswered requests plus queued messages reach
  `outbound_limit`), and a subscriber that still has `outbound_limit` messages queued from
  earlier batches when a new batch is published is a slow reader and is disconnected. A
  connection holds at most that plus one batch's messages: no client can grow memory without
  bound. Frames above `max_frame` bytes and
  malformed frames get an error and close only that connection. Each connection has a token
  bucket rate limit; requests past it get Binance's -1003 and change nothing.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from engine import catalogue as catalogue_mod
from engine import funding_queries, logsetup, queries, token_queries
from engine.core import Engine, EngineConfig
from engine.eventlog import LogWriter, truncate_to_good
from engine.fixed import fmt
from engine.keys import KeyStore
from engine.riskconsumer import RiskConsumer
from engine.sequencer import Sequencer
from engine.snapshot import restore, take
from engine.streams import StreamPublisher
from replay import snapshots
from proto import events as V
from proto import json_edge
from proto import wire
from proto.records import LogRecord

log = structlog.get_logger("gateway")

ADMIN_OPS = {"createAccount", "deposit", "setMarkPrice", "fundInsurance", "setIndexPrices",
             "listSymbol", "scheduleDelisting", "launchToken"}
ACCOUNT_OPS = {"newOrder", "cancelOrder", "cancelAllOrders", "modifyOrder", "setLeverage",
               "setMarginType", "adjustIsolatedMargin", "withdraw", "futuresTransfer",
               "subscribeToken", "redeemToken", "newSpotOrder", "cancelSpotOrder"}
INTERNAL_OPS = {"liquidate", "marginCall"}  # only the risk consumer sends these
PUBLIC_QUERIES = {"depth", "premiumIndex", "fundingRate", "indexInfo", "tokenInfo"}
ADMIN_QUERIES = {"state"}
ACCOUNT_QUERIES = {"positionRisk", "account", "openOrders", "userLimit", "spotAccount"}
TOKEN_QUERIES = {"tokenInfo", "userLimit"}  # their "tokenName" travels as the symbol
UNAUTHORISED = -2015
UNAUTHORISED_MSG = "Invalid API-key, IP, or permissions for action."


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7001
    log_path: str = "var/engine.log"
    keys_path: str = "var/keys.json"
    fsync: str = "batch"  # "batch" | "interval"
    fsync_interval_ms: int = 20
    max_frame: int = 64 * 1024  # bytes
    outbound_limit: int = 10_000  # messages queued for one connection before it is cut off
    sndbuf: int = 256 * 1024  # kernel send buffer per connection (bytes); 0: the OS default
    rate_per_s: int = 5_000  # requests per second per connection, sustained
    rate_burst: int = 10_000  # requests a connection may send at once
    batch_max: int = 4096
    summary_every_s: int = 5
    checkpoint_every: int = 10_000
    drain_s: int = 5  # on stop, how long to let queued requests and liquidations finish
    risk_process: bool = False  # run the risk consumer as a child process reading the log
    snapshot_every: int = 100_000  # events between snapshots; 0: none
    snapshot_dir: str | None = None  # default: <log>.snapshots
    catalogue_path: str | None = None

    def snapshots(self) -> str:
        return self.snapshot_dir or self.log_path + ".snapshots"


class TokenBucket:
    """`rate` requests per second sustained, `burst` at once. Tokens are counted in
    1e-9 requests so the refill (elapsed ns x rate) stays an exact integer."""
    __slots__ = ("rate", "capacity", "tokens", "stamp")
    ONE = 1_000_000_000

    def __init__(self, rate: int, burst: int) -> None:
        self.rate = rate
        self.capacity = self.tokens = burst * self.ONE
        self.stamp = time.monotonic_ns()

    def take(self) -> bool:
        now = time.monotonic_ns()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= self.ONE:
            self.tokens -= self.ONE
            return True
        return False


@dataclass(eq=False)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    number: int
    nonce: str
    out: asyncio.Queue
    bucket: TokenBucket
    mode: str | None = None
    account: int | None = None
    admin: bool = False
    risk: bool = False
    streams: set = field(default_factory=set)
    closed: bool = False
    peer: str = ""
    inflight: int = 0  # requests read and not yet answered
    backlog: int = 0  # messages still queued when the current batch began publishing
    room: asyncio.Event = field(default_factory=asyncio.Event)


class Server:
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
        self.consumer = RiskConsumer(self.catalogue, self.engine.config,
                                     restore(self.catalogue, take(self.engine)))
        self.publisher = StreamPublisher(self.engine)
        self.fatal: asyncio.Event = asyncio.Event()  # the sequencer could not go on
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.risk_queue: asyncio.Queue = asyncio.Queue()
        self.connections: set[Connection] = set()
        self.subscribers: dict[str, set[Connection]] = {}
        self.user_subscribers: dict[int, set[Connection]] = {}
        self.stats = {"commands": 0, "trades": 0, "liquidations": 0, "rejected": 0,
                      "slow_disconnects": 0}
        self._server: asyncio.AbstractServer | None = None
        self._stopping = asyncio.Event()
        self._conn_numbers = 0
        self._last_time = 0
        self._events_since_snapshot = 0
        self._snapshot_child: int | None = None
        self._risk_child: subprocess.Popen | None = None
        self.address: tuple[str, int] | None = None

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
        self._last_time = self.engine.time
        return {"records": kept, "snapshot": facts["snapshot"],
                "truncated": f"record {problem.record_number} at byte {problem.offset}: "
                             f"{problem.what}" if problem else None}

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.keys.keys:
            self.keys.create(None, admin=True)
        self._server = await asyncio.start_server(self._on_connect, self.config.host,
                                                  self.config.port, limit=self.config.max_frame * 2)
        self.address = self._server.sockets[0].getsockname()[:2]
        self._tasks = [asyncio.create_task(self._sequence(), name="sequencer"),
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
                self.inbox.put_nowait(("internal", None, None, cmd))
        if self.config.fsync == "interval":
            self._tasks.append(asyncio.create_task(self._fsync_loop(), name="fsync"))

    async def stop(self) -> None:
        """Drain: stop accepting, finish every queued request and every liquidation the risk
        consumer asks for meanwhile (for at most `drain_s`), flush the log, close."""
        if self._server is not None:
            self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.drain_s
        quiet = 0
        while quiet < 3 and loop.time() < deadline and not self._sequencer_failed():
            idle = self.inbox.empty() and self.risk_queue.empty()
            quiet = quiet + 1 if idle else 0
            await asyncio.sleep(0.01)
        await self.inbox.put(None)
        await asyncio.gather(self._tasks[0], return_exceptions=True)
        await self.risk_queue.put(None)
        await self._tasks[1]
        if self._risk_child is not None:
            self._risk_child.terminate()
            await asyncio.get_running_loop().run_in_executor(None, self._risk_child.wait)
        for t in self._tasks[2:]:
            t.cancel()
        os.fsync(self.writer._fd)
        self.writer.close()
        if self._snapshot_child is not None:
            os.waitpid(self._snapshot_child, 0)
        for conn in list(self.connections):
            await self._flush_and_close(conn)

    # -- connections ----------------------------------------------------------------------------
    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conn_numbers += 1
        sock = writer.get_extra_info("socket")
        if self.config.sndbuf and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.sndbuf)
        conn = Connection(reader, writer, self._conn_numbers, secrets.token_hex(16),
                          asyncio.Queue(),
                          TokenBucket(self.config.rate_per_s, self.config.rate_burst),
                          peer=str(writer.get_extra_info("peername")))
        self.connections.add(conn)
        # hello goes out at once, as a JSON line; the client's first byte then picks the framing
        writer.write(wire.encode({"type": "hello", "nonce": conn.nonce, "server": "perpengine"},
                                 wire.JSONL))
        sender = asyncio.create_task(self._send_loop(conn))
        requests = 0
        try:
            first = await reader.read(1)
            if not first:
                return
            conn.mode = wire.detect_mode(first[0])
            pending = first if first in (b"{", b"[") else b""  # 0x00 and blanks only select
            limit = self.config.outbound_limit
            while not conn.closed:
                while conn.inflight + conn.out.qsize() >= limit and not conn.closed:
                    conn.room.clear()  # backpressure: read no more until replies go out
                    await conn.room.wait()
                body, pending = await self._read_frame(conn, pending)
                if body is None:
                    break
                message = wire.decode_body(body, conn.mode)
                requests += 1
                try:
                    await self._on_request(conn, message)
                except wire.FrameError:
                    raise  # not a request at all: answered, then the connection closes
                except (TypeError, ValueError, KeyError, AttributeError) as exc:
                    log.exception("request failed", conn=conn.number)
                    req_id = message.get("id") if isinstance(message, dict) else None
                    self._error(conn, req_id if isinstance(req_id, (int, str)) else None,
                                -1000, f"request could not be handled: {type(exc).__name__}")
        except wire.FrameError as exc:
            self.send(conn, {"id": None, "ok": False, "code": exc.code, "msg": exc.msg})
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            conn.room.set()
            await self._flush_and_close(conn)
            sender.cancel()
            log.debug("connection closed", conn=conn.number, peer=conn.peer, requests=requests)

    async def _read_frame(self, conn: Connection, pending: bytes) -> tuple[bytes | None, bytes]:
        """One request's bytes. `pending` holds bytes read ahead (the framing probe)."""
        limit = self.config.max_frame
        reader = conn.reader
        if conn.mode == wire.MSGPACK:
            while len(pending) < 4:
                more = await reader.read(4 - len(pending))
                if not more:
                    return None, b""
                pending += more
            (length,) = wire.LENGTH.unpack(pending[:4])
            if length > limit:
                raise wire.FrameError(f"frame of {length} bytes exceeds the {limit}-byte limit")
            body = pending[4:] + await reader.readexactly(length - len(pending) + 4) \
                if len(pending) - 4 < length else pending[4:4 + length]
            return body, b""
        line = pending
        if not line.endswith(b"\n"):
            try:
                line += await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                raise wire.FrameError(f"line exceeds the {limit}-byte limit") from None
            except asyncio.IncompleteReadError as exc:
                if not exc.partial.strip():
                    return None, b""
                line += exc.partial
        if len(line) > limit:
            raise wire.FrameError(f"line of {len(line)} bytes exceeds the {limit}-byte limit")
        if not line.strip():
            return await self._read_frame(conn, b"")
        return line, b""

    def send(self, conn: Connection, message: dict, stream: bool = False) -> None:
        if conn.closed:
            return
        if stream and conn.backlog >= self.config.outbound_limit:
            # a slow reader: cut it off, never buffer without bound
            self.stats["slow_disconnects"] += 1
            conn.closed = True
            sock = conn.writer.get_extra_info("socket")
            if sock is not None:  # an abortive close: a reset now, the unsent data dropped
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.writer.transport.abort()
            conn.room.set()
            return
        conn.out.put_nowait(message)

    def reply(self, conn: Connection, message: dict) -> None:
        conn.inflight -= 1
        self.send(conn, message)

    async def _send_loop(self, conn: Connection) -> None:
        out, w = conn.out, conn.writer
        try:
            while True:
                msg = await out.get()
                chunks = [wire.encode(msg, conn.mode or wire.JSONL)]
                while not out.empty() and len(chunks) < 256:
                    chunks.append(wire.encode(out.get_nowait(), conn.mode or wire.JSONL))
                w.write(b"".join(chunks))
                await w.drain()
                if out.qsize() + conn.inflight < self.config.outbound_limit // 2:
                    conn.room.set()
        except (ConnectionError, asyncio.CancelledError):
            return

    async def _flush_and_close(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        for s in conn.streams:
            self.subscribers.get(s, set()).discard(conn)
        if conn.account is not None:
            self.user_subscribers.get(conn.account, set()).discard(conn)
        if not conn.closed:
            conn.closed = True
            try:
                while not conn.out.empty():
                    conn.writer.write(wire.encode(conn.out.get_nowait(), conn.mode or wire.JSONL))
                await asyncio.wait_for(conn.writer.drain(), timeout=1.0)
            except (ConnectionError, asyncio.TimeoutError):
                pass
        conn.writer.close()

    # -- requests -------------------------------------------------------------------------------
    def _error(self, conn: Connection, req_id, code: int, msg: str) -> None:
        self.send(conn, {"id": req_id, "ok": False, "code": code, "msg": msg})

    async def _on_request(self, conn: Connection, message) -> None:
        if not isinstance(message, dict):
            raise wire.FrameError("a request must be an object", -1102)
        req_id = message.get("id")
        op = message.get("op")
        if req_id is None or not isinstance(req_id, (int, str)) or isinstance(req_id, bool):
            return self._error(conn, None, -1102, "every request needs an 'id' (int or string)")
        if not isinstance(op, str):
            return self._error(conn, req_id, -1102, "'op' must be a string")
        if not conn.bucket.take():
            return self._error(conn, req_id, -1003, "Too many requests; current limit is "
                               f"{self.config.rate_per_s} requests per second.")
        if op == "login":
            key = self.keys.verify(message.get("apiKey"), conn.nonce, message.get("signature"))
            if key is None:
                return self._error(conn, req_id, -1022, "Signature for this request is not valid.")
            conn.account, conn.admin, conn.risk = key.account, key.admin, key.risk
            return self.send(conn, {"id": req_id, "ok": True,
                                    "result": {"account": key.account, "admin": key.admin}})
        if op == "subscribe":
            return await self._request_subscribe(conn, req_id, message)
        if op == "query":
            return await self._request_query(conn, req_id, message)
        if op == "createApiKey":
            if not conn.admin:
                return self._error(conn, req_id, UNAUTHORISED, UNAUTHORISED_MSG)
            account = message.get("account")
            if not isinstance(account, int) or isinstance(account, bool) or \
                    account not in self.engine.accounts:
                return self._error(conn, req_id, -1102, "createApiKey needs an existing 'account'")
            key = self.keys.create(account)
            return self.send(conn, {"id": req_id, "ok": True,
                                    "result": {"apiKey": key.apiKey, "secret": key.secret,
                                               "account": account}})
        if op in INTERNAL_OPS and not conn.risk:
            return self._error(conn, req_id, UNAUTHORISED, f"'{op}' is sent by the risk engine only.")
        obj = {k: v for k, v in message.items() if k != "id"}
        if op in INTERNAL_OPS:
            pass  # the risk key names the account it asks about
        elif op in ADMIN_OPS:
            if not conn.admin:
                return self._error(conn, req_id, UNAUTHORISED, UNAUTHORISED_MSG)
        elif op in ACCOUNT_OPS:
            if conn.admin and "account" in obj:
                pass  # an admin may act for an account, naming it
            elif conn.account is None:
                return self._error(conn, req_id, UNAUTHORISED, UNAUTHORISED_MSG)
            elif obj.setdefault("account", conn.account) != conn.account:
                return self._error(conn, req_id, UNAUTHORISED, UNAUTHORISED_MSG)
        else:
            return self._error(conn, req_id, -1103, f"unknown message op={op!r}")
        try:
            cmd = json_edge.decode_command(obj)
        except json_edge.BadInput as bad:
            return self._error(conn, req_id, bad.code, bad.msg)
        conn.inflight += 1
        await self.inbox.put(("cmd", conn, req_id, cmd))

    async def _request_subscribe(self, conn: Connection, req_id, message: dict) -> None:
        streams = message.get("streams")
        if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
            return self._error(conn, req_id, -1102, "'streams' must be a list of stream names")
        for s in streams:
            name, _, symbol = s.partition("@")
            if s == "user":
                if conn.account is None:
                    return self._error(conn, req_id, UNAUTHORISED, UNAUTHORISED_MSG)
            elif s == "!forceOrder":
                pass
            elif name not in ("trade", "depth", "markPrice", "forceOrder") or \
                    symbol not in self.engine.symbols:
                return self._error(conn, req_id, -1102, f"unknown stream {s!r}")
        conn.inflight += 1
        await self.inbox.put(("subscribe", conn, req_id, streams))

    async def _request_query(self, conn: Connection, req_id, message: dict) -> None:
        name = message.get("query")
        for field in ("query", "symbol", "tokenName"):
            if field in message and not isinstance(message[field], str):
                return self._error(conn, req_id, -1102, f"'{field}' must be a string")
        if "account" in message and (not isinstance(message["account"], int) or
                                     isinstance(message["account"], bool)):
            return self._error(conn, req_id, -1102, "'account' must be an integer")
        if name in ACCOUNT_QUERIES:
            account = message.get("account", conn.account) if conn.admin else conn.account
            if account is None or (not conn.admin and message.get("account", account) != account):
                return self._error(conn, req_id, UNAUTHORISED, UNAUTHORISED_MSG)
        elif name in ADMIN_QUERIES:
            if not conn.admin:
                return self._error(conn, req_id, UNAUTHORISED, UNAUTHORISED_MSG)
            account = None
        elif name not in PUBLIC_QUERIES:
            return self._error(conn, req_id, -1103, f"unknown query {name!r}")
        else:
            account = None
        if name in TOKEN_QUERIES:
            symbol = message.get("tokenName")
            if symbol is not None and symbol not in self.engine.catalogue.tokens:
                return self._error(conn, req_id, -1121, f"Invalid tokenName {symbol!r}.")
            if name == "tokenInfo":  # public; a logged-in account also gets its limits left
                account = conn.account
            conn.inflight += 1
            await self.inbox.put(("query", conn, req_id, (name, account, symbol, None)))
            return
        symbol = message.get("symbol")
        if symbol is not None and symbol not in self.engine.symbols:
            return self._error(conn, req_id, -1121, f"Invalid symbol {symbol!r}.")
        if name in ("depth",) and symbol is None:
            return self._error(conn, req_id, -1102, "depth needs a 'symbol'")
        conn.inflight += 1
        await self.inbox.put(("query", conn, req_id, (name, account, symbol, message.get("limit"))))

    # -- the sequencer --------------------------------------------------------------------------
    def _now(self) -> int:
        now = max(time.time_ns() // 1_000_000, self._last_time)  # never backwards
        self._last_time = now
        return now

    async def _sequence(self) -> None:
        loop = asyncio.get_running_loop()
        inbox = self.inbox
        stopping = False
        while not stopping:
            item = await inbox.get()
            batch = [item]
            while len(batch) < self.config.batch_max and not inbox.empty():
                batch.append(inbox.get_nowait())
            replies: list[tuple[Connection, dict]] = []
            fanout = []
            records: list[LogRecord] = []
            depth_wanted = {s[6:] for s, subs in self.subscribers.items()
                            if subs and s.startswith("depth@")}
            for it in batch:
                if it is None:
                    stopping = True
                    continue
                kind, conn, req_id, payload = it
                if kind == "cmd" or kind == "internal":
                    try:
                        record = self.sequencer.submit(payload, self._now())
                    except Exception:  # a bug in the core: stop rather than serve a state
                        log.exception("the core raised; stopping (restart rebuilds from the log)")
                        self.fatal.set()  # that the log does not describe
                        raise
                    records.append(record)
                    fanout.append(self.publisher.depth_diffs(record, depth_wanted))
                    if kind == "cmd":
                        replies.append((conn, self._command_reply(req_id, record)))
                elif kind == "subscribe":
                    replies.append((conn, self._subscribe(conn, req_id, payload)))
                elif kind == "query":
                    try:
                        replies.append((conn, self._query(req_id, *payload)))
                    except Exception as exc:  # a read; the state is untouched
                        log.exception("query failed", query=payload[0])
                        replies.append((conn, {"id": req_id, "ok": False, "code": -1000,
                                               "msg": f"query failed: {type(exc).__name__}"}))
            if records:
                try:
                    await loop.run_in_executor(None, self.sequencer.flush)
                except OSError:  # the log cannot be written: acknowledge nothing more
                    log.exception("log write failed; stopping")
                    self.fatal.set()
                    raise
                self._events_since_snapshot += sum(len(r.events) for r in records)
                every = self.config.snapshot_every
                if every and self._events_since_snapshot >= every:
                    self._snapshot()
            for conn in self.connections:
                conn.backlog = conn.out.qsize()
            for conn, reply in replies:
                self.reply(conn, reply)
            for record, depth in zip(records, fanout):
                self._publish(record, depth)
                if not self.config.risk_process:
                    self.risk_queue.put_nowait(record)
            self.stats["commands"] += len(records)

    def _command_reply(self, req_id, record: LogRecord) -> dict:
        events = record.events
        for ev in events:
            if type(ev) in (V.OrderRejected, V.CommandRejected):
                self.stats["rejected"] += 1
                return {"id": req_id, "ok": False, "code": ev.code, "msg": ev.msg}
        result: dict = {"seq": record.seq}
        order = next((e for e in events if type(e) in (V.OrderAccepted, V.OrderModified,
                                                       V.OrderCanceled)), None)
        # not a token issuer's hedge or rebalance order caused by someone else's command
        if order is not None and order.account == getattr(record.command, "account", None):
            # the order's state says it all; its events go to the user stream
            result.update(order_state(order.order_id, events, record.time))
        else:
            result["events"] = [json_edge.to_wire(e) for e in events]
        return {"id": req_id, "ok": True, "result": result}

    def _subscribe(self, conn: Connection, req_id, streams: list[str]) -> dict:
        snapshots = {}
        for s in streams:
            if s == "user":
                self.user_subscribers.setdefault(conn.account, set()).add(conn)
            else:
                self.subscribers.setdefault(s, set()).add(conn)
                if s.startswith("depth@"):
                    snapshots[s] = self.publisher.snapshot(s.partition("@")[2])
            conn.streams.add(s)
        return {"id": req_id, "ok": True, "result": {"streams": streams, "snapshots": snapshots}}

    def _query(self, req_id, name: str, account: int | None, symbol: str | None, limit) -> dict:
        try:
            if name == "depth":
                result = self.publisher.snapshot(symbol, limit if isinstance(limit, int) else None)
            elif name == "state":
                result = {"seq": self.engine.seq, "stateHash": self.engine.state_hash()}
            elif name == "premiumIndex":
                result = funding_queries.premium_index(self.engine, symbol)
            elif name == "fundingRate":
                result = funding_queries.funding_rate_history(
                    self.engine, symbol, limit if isinstance(limit, int) else 100)
            elif name == "indexInfo":
                result = funding_queries.composite_index(self.engine)
            elif name == "tokenInfo":
                result = token_queries.token_info(self.engine, symbol, account)
            elif name == "userLimit":
                result = token_queries.user_limit(self.engine, account, symbol)
            elif name == "spotAccount":
                result = token_queries.spot_account(self.engine, account)
            elif name == "positionRisk":
                result = queries.position_risk(self.engine, account, symbol)
            elif name == "account":
                result = queries.account_info(self.engine, account)
            else:
                result = open_orders(self.engine, account, symbol)
        except KeyError as exc:
            return {"id": req_id, "ok": False, "code": UNAUTHORISED, "msg": str(exc.args[0])}
        return {"id": req_id, "ok": True, "result": result}

    def _publish(self, record: LogRecord, depth: list[tuple[str, dict]]) -> None:
        for ev in record.events:
            t = type(ev)
            if t is V.Trade:
                self.stats["trades"] += 1
            elif t is V.LiquidationStarted:
                self.stats["liquidations"] += 1
        public, private = self.publisher.messages(record, self.user_subscribers, self.subscribers)
        for stream, data in public + depth:
            for conn in tuple(self.subscribers.get(stream, ())):
                self.send(conn, {"stream": stream, "data": data}, stream=True)
        for aid, messages in private.items():
            for conn in tuple(self.user_subscribers.get(aid, ())):
                for data in messages:
                    self.send(conn, {"stream": "user", "data": data}, stream=True)

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

    def _sequencer_failed(self) -> bool:
        return self._tasks[0].done()

    # -- background tasks -----------------------------------------------------------------------
    async def _risk(self) -> None:
        while True:
            record = await self.risk_queue.get()
            if record is None:
                return
            for cmd in self.consumer.process(record):
                self.inbox.put_nowait(("internal", None, None, cmd))

    async def _fsync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.fsync_interval_ms / 1000)
            await asyncio.get_running_loop().run_in_executor(None, os.fsync, self.writer._fd)

    def open_interest(self) -> dict[str, str]:
        oi: dict[str, int] = {}
        for acct in self.engine.accounts.values():
            for sym, pos in acct.positions.items():
                if pos.qty > 0:
                    oi[sym] = oi.get(sym, 0) + pos.qty
        return {s: fmt(q) for s, q in sorted(oi.items())}

    def summary(self) -> dict:
        return {"commands": self.stats["commands"], "trades": self.stats["trades"],
                "liquidations": self.stats["liquidations"],
                "risk_lag": self.consumer.lag(self.sequencer.seq),
                "connections": len(self.connections), "open_interest": self.open_interest(),
                "slow_disconnects": self.stats["slow_disconnects"]}

    async def _summaries(self) -> None:
        last = dict(self.stats)
        last_t = time.monotonic()
        while True:
            await asyncio.sleep(self.config.summary_every_s)
            now = time.monotonic()
            rate = (self.stats["commands"] - last["commands"]) / (now - last_t)
            s = self.summary()
            print(f"perpengine: {rate:,.0f} commands/s, {s['trades']} trades, "
                  f"{s['liquidations']} liquidations, risk lag {s['risk_lag']}, "
                  f"{s['connections']} connections, open interest {s['open_interest'] or '-'}",
                  flush=True)
            last, last_t = dict(self.stats), now


def order_state(order_id: int, events: list, time_ms: int) -> dict:
    """The order as Binance's order endpoints return it, from the events of one record."""
    state: dict = {"orderId": order_id}
    orig = executed = notional = trades = 0
    status = "NEW"
    for ev in events:
        t = type(ev)
        if t is V.OrderAccepted and ev.order_id == order_id:
            state.update(symbol=ev.symbol, side=ev.side, type=ev.type, timeInForce=ev.time_in_force,
                         price=fmt(ev.price), clientOrderId=ev.client_order_id,
                         reduceOnly=ev.reduce_only)
            orig = ev.quantity
        elif t is V.OrderModified and ev.order_id == order_id:
            state.update(symbol=ev.symbol, price=fmt(ev.price))
            orig = ev.quantity
        elif t is V.Trade and order_id in (ev.taker_order_id, ev.maker_order_id):
            executed += ev.quantity
            notional += ev.quantity * ev.price
            trades += 1
        elif t is V.OrderCanceled and ev.order_id == order_id:
            status = "CANCELED"
            state.setdefault("symbol", ev.symbol)
        elif t is V.OrderExpired and ev.order_id == order_id:
            status = ev.status
    if status == "NEW" and executed:
        status = "FILLED" if executed == orig else "PARTIALLY_FILLED"
    state.update(status=status, executedQty=fmt(executed),
                 avgPrice=fmt(notional // executed if executed else 0), updateTime=time_ms,
                 trades=trades)
    if orig:
        state["origQty"] = fmt(orig)
    return state


def open_orders(engine: Engine, account: int, symbol: str | None) -> list[dict]:
    if account not in engine.accounts:
        raise KeyError(f"unknown account {account}")
    out = []
    for name, sym in sorted(engine.symbols.items()):
        if symbol and name != symbol:
            continue
        pos = engine.accounts[account].positions.get(name)
        if pos is None or not pos.open_orders:
            continue
        for o in sorted((o for o in sym.book.orders.values() if o.account == account),
                        key=lambda o: o.order_id):
            out.append({"orderId": o.order_id, "symbol": name, "side": o.side,
                        "price": fmt(o.price), "origQty": fmt(o.quantity),
                        "executedQty": fmt(o.quantity - o.remaining), "timeInForce": o.tif,
                        "reduceOnly": o.reduce_only, "clientOrderId": o.client_id,
                        "status": "PARTIALLY_FILLED" if o.remaining < o.quantity else "NEW"})
    return out


async def serve(config: ServerConfig) -> int:
    server = Server(config)
    await server.start()
    host, port = server.address
    rec = server.recovered
    print(f"perpengine: serving on {host}:{port} (msgpack frames and JSON lines); "
          f"log {config.log_path} (fsync per {config.fsync}; {rec['records']} records"
          f"{', from snapshot ' + rec['snapshot'] if rec.get('snapshot') else ''}"
          f"{'; cut a bad tail: ' + rec['truncated'] if rec['truncated'] else ''}); "
          f"{len(server.engine.symbols)} symbols; keys {config.keys_path}", flush=True)
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
    import argparse
    p = argparse.ArgumentParser(prog="python -m engine serve")
    d = ServerConfig()
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument("--log", default=d.log_path)
    p.add_argument("--keys", default=d.keys_path)
    p.add_argument("--fsync", choices=["batch", "interval"], default=d.fsync)
    p.add_argument("--fsync-interval-ms", type=int, default=d.fsync_interval_ms)
    p.add_argument("--max-frame", type=int, default=d.max_frame)
    p.add_argument("--outbound-limit", type=int, default=d.outbound_limit)
    p.add_argument("--sndbuf", type=int, default=d.sndbuf)
    p.add_argument("--rate", type=int, default=d.rate_per_s)
    p.add_argument("--burst", type=int, default=d.rate_burst)
    p.add_argument("--summary-every", type=int, default=d.summary_every_s)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="commands between checkpoint events carrying the state hash (0: none)")
    p.add_argument("--snapshot-every", type=int, default=d.snapshot_every,
                   help="events between snapshots (0: none)")
    p.add_argument("--snapshots", help="snapshot directory (default: <log>.snapshots)")
    p.add_argument("--risk-process", action="store_true",
                   help="run the risk consumer as a child process reading the log")
    p.add_argument("--catalogue")
    a = p.parse_args(argv)
    config = ServerConfig(host=a.host, port=a.port, log_path=a.log, keys_path=a.keys,
                          fsync=a.fsync, fsync_interval_ms=a.fsync_interval_ms,
                          max_frame=a.max_frame, outbound_limit=a.outbound_limit,
                          sndbuf=a.sndbuf,
                          rate_per_s=a.rate, rate_burst=a.burst, summary_every_s=a.summary_every,
                          checkpoint_every=a.checkpoint_every,
                          snapshot_every=a.snapshot_every, snapshot_dir=a.snapshots,
                          risk_process=a.risk_process, catalogue_path=a.catalogue)
    logsetup.configure()
    try:
        import uvloop
        return uvloop.run(serve(config))
    except ImportError:  # uvloop is a dependency; this only helps on exotic platforms
        return asyncio.run(serve(config))
