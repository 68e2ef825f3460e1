"""The native TCP gateway: one port, two framings (proto.wire), login, requests, streams.

* On connect the server sends a hello with a nonce; the client's first byte picks the framing.
  A request is authorised by the role of the key the connection logged in with
  (engine.server.auth), decoded to a command (proto.json_edge, which range-checks every
  field; a command request goes straight from its bytes, one typed decoder per op, anything
  else through a dict) and handed to the sequencing loop (engine.server.sequencing); its
  reply (engine.server.answers) goes out once its record is in the log. Frames are cut by
  engine.server.framing. A connection logs in once; a second login is refused.
* What one connection may hold is bounded in messages and in bytes. Messages are encoded when
  they are queued, so the queue's bytes are known: the server stops reading a connection
  while its unanswered requests plus queued messages reach `outbound_limit`, its queued bytes
  reach `outbound_bytes`, or `READS_IN_FLIGHT` of its reads are unanswered (backpressure, not
  an error). A subscriber that still holds `outbound_limit` messages or `outbound_bytes` bytes
  from earlier batches when a new batch is published is a slow reader and is disconnected (an
  abortive close). Frames above `max_frame` bytes and malformed frames (nested too deeply
  included) get an error and close only that connection, after the replies to what it sent
  before; a connection that ends its input still gets every reply.
* Cost: each connection has a request-rate bucket (`rate_per_s`, `rate_burst`) and, for
  reads, Binance's request weights against `weight_per_min` (REQUEST_WEIGHT, 2,400 a minute on
  Binance): depth 2/5/10/20 by limit, openOrders 1 (40 without a symbol), positionRisk and
  account 5, ... Past either: -1003, and the request changes nothing. Answers are capped:
  depth to Binance's limits (5, 10, 20, 50, 100, 500, 1000; 500 by default), list answers to
  LIST_CAP entries, the events listed in a reply to EVENTS_CAP (engine.server.answers). A
  depth answer is built once per book state and limit and reused.
* `max_connections` connections at most (the next one is told and closed); a connection that
  sends nothing for `idle_timeout_s` seconds and follows no stream is told and closed
  (`ping` keeps one open; the risk consumer's is exempt).
* Private data: a reply and the `user` stream show an account its own events and its own side
  of a trade only (engine.server.streams.own_events); admin and risk keys see whole events.
"""
from __future__ import annotations

import asyncio
import collections
import secrets
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import structlog

from engine.core import Engine
from engine.server import auth
from engine.server.auth import KeyStore
from engine.server.ratelimit import TokenBucket
from engine.server.sequencing import BatchListener, SequencingLoop
from engine.server import answers
from engine.server.framing import FrameReader
from engine.server.streams import StreamPublisher
from proto import json_edge, wire
from proto.records import LogRecord

log = structlog.get_logger("gateway")

DIRECT_WRITE = 64 * 1024  # a transport holding more unsent bytes is written by the sender task
READS_IN_FLIGHT = 16  # unanswered reads per connection before the server stops reading it
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
DEPTH_DEFAULT = 500
# Binance's request weights (GET /fapi/v1/...); commands weigh 0 here (the request rate
# limits them). (weight with a symbol, weight without)
WEIGHTS = {"openOrders": (1, 40), "positionRisk": (5, 5), "account": (5, 5),
           "premiumIndex": (1, 10), "fundingRate": (1, 1), "indexInfo": (1, 1),
           "tokenInfo": (1, 1), "userLimit": (1, 1), "spotAccount": (5, 5), "state": (1, 1)}


def depth_weight(limit: int) -> int:
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


@dataclass
class GatewayLimits:
    max_frame: int = 64 * 1024  # bytes
    outbound_limit: int = 10_000  # messages queued for one connection
    outbound_bytes: int = 2 * 1024 * 1024  # bytes queued for one connection
    sndbuf: int = 256 * 1024  # kernel send buffer per connection (bytes); 0: the OS default
    rate_per_s: int = 5_000  # requests per second per connection, sustained
    rate_burst: int = 10_000  # requests a connection may send at once
    weight_per_min: int = 2_400  # Binance's REQUEST_WEIGHT per minute, for reads; 0: none
    max_connections: int = 2_000
    idle_timeout_s: float = 600.0  # 0: never


@dataclass(eq=False)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    number: int
    nonce: str
    bucket: TokenBucket
    weights: TokenBucket | None
    mode: str | None = None
    logged_in: bool = False
    account: int | None = None
    admin: bool = False
    risk: bool = False
    user_account: int | None = None  # whose `user` stream it follows
    streams: set = field(default_factory=set)
    closed: bool = False
    peer: str = ""
    inflight: int = 0  # requests read and not yet answered
    reads: int = 0  # of which reads (queries, subscriptions)
    out: collections.deque = field(default_factory=collections.deque)  # encoded messages
    out_bytes: int = 0
    backlog: int = 0  # messages still queued when the current batch began publishing
    backlog_bytes: int = 0
    last_seen: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # the sender: something queued
    dirty: bool = False  # something queued that the next flush writes (NativeGateway._flush_out)
    room: asyncio.Event = field(default_factory=asyncio.Event)  # the reader: below the limits
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # nothing in flight


class NativeGateway(BatchListener):
    def __init__(self, engine: Engine, loop: SequencingLoop, keys: KeyStore,
                 limits: GatewayLimits, stats: dict[str, int]) -> None:
        self.engine = engine
        self.loop = loop
        self.keys = keys
        self.limits = limits
        self.stats = stats
        self.publisher = StreamPublisher(engine)
        self.connections: set[Connection] = set()
        self.subscribers: dict[str, set[Connection]] = {}
        self.user_subscribers: dict[int, set[Connection]] = {}
        self._conn_numbers = 0
        self._depth_wanted: set[str] = set()
        self._depth: list[list[tuple[str, dict]]] = []  # per record of the batch: its depth diffs
        self._depth_cache: dict[str, tuple[int, dict[int, dict]]] = {}  # symbol: (u, by limit)
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task | None = None
        self._dirty: list[Connection] = []  # connections with queued messages not yet written
        self._flush_scheduled = False
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._on_connect, host, port,
                                                  limit=self.limits.max_frame * 2)
        self.address = self._server.sockets[0].getsockname()[:2]
        if self.limits.idle_timeout_s:
            self._sweeper = asyncio.create_task(self._sweep_idle(), name="idle connections")

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def close_connections(self) -> None:
        for conn in list(self.connections):
            await self._flush_and_close(conn)

    # -- the sequencing loop's listener ---------------------------------------------------------
    def after_command(self, record: LogRecord) -> None:
        self._depth.append(self.publisher.depth_diffs(record, self._depth_wanted))

    def before_replies(self, records: list[LogRecord]) -> None:
        for conn in self.connections:
            conn.backlog = len(conn.out)
            conn.backlog_bytes = conn.out_bytes

    def after_flush(self, records: list[LogRecord]) -> None:
        depth, self._depth = self._depth, []
        for record, diffs in zip(records, depth):
            public, private = self.publisher.messages(record, self.user_subscribers,
                                                      self.subscribers)
            for stream, data in public + diffs:
                subs = self.subscribers.get(stream)
                if subs:
                    self._publish(tuple(subs), {"stream": stream, "data": data})
            for aid, messages in private.items():
                subs = tuple(self.user_subscribers.get(aid, ()))
                for data in messages:
                    self._publish(subs, {"stream": "user", "data": data})
        # depth diffs are built only for symbols somebody follows
        self._depth_wanted = {s[6:] for s, subs in self.subscribers.items()
                              if subs and s.startswith("depth@")}
        self._flush_out()  # the batch's replies and stream messages: one write per connection

    def _publish(self, conns, message: dict) -> None:
        encoded: dict[str, bytes] = {}  # once per framing, shared by every subscriber
        for conn in conns:
            data = encoded.get(conn.mode)
            if data is None:
                data = encoded[conn.mode] = wire.encode(message, conn.mode or wire.JSONL)
            self._enqueue(conn, data, stream=True)

    # -- connections ----------------------------------------------------------------------------
    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conn_numbers += 1
        limits = self.limits
        if len(self.connections) >= limits.max_connections:
            writer.write(wire.encode({"id": None, "ok": False, "code": -1003,
                                      "msg": f"Too many connections: the server holds at most "
                                             f"{limits.max_connections}; try again later."},
                                     wire.JSONL))
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if limits.sndbuf and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limits.sndbuf)
        weights = TokenBucket(limits.weight_per_min, limits.weight_per_min, 60) \
            if limits.weight_per_min else None
        conn = Connection(reader, writer, self._conn_numbers, secrets.token_hex(16),
                          TokenBucket(limits.rate_per_s, limits.rate_burst), weights,
                          peer=str(writer.get_extra_info("peername")))
        loop = asyncio.get_running_loop()
        conn.last_seen = loop.time()
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
            conn.last_seen = loop.time()
            conn.mode = wire.detect_mode(first[0])
            frames = FrameReader(reader, conn.mode, limits.max_frame)
            if first in (b"{", b"["):  # 0x00 and blanks only select
                frames.buf = first
            while not conn.closed:
                while self._blocked(conn):
                    conn.room.clear()  # backpressure: read no more until replies go out
                    await conn.room.wait()
                body = frames.take()  # a request already read: no wait
                if body is None:
                    body = await frames.read()
                    if body is None:
                        break
                conn.last_seen = loop.time()
                # a command request goes from its bytes straight to its command; anything
                # else (and every malformed request) takes the generic path below
                typed = json_edge.decode_request(body, conn.mode, auth.ACCOUNT_OPS)
                message = typed if typed is not None else wire.decode_body(body, conn.mode)
                requests += 1
                try:
                    if typed is not None:
                        self._on_command_request(conn, typed)
                    else:
                        self._on_request(conn, message)
                except wire.FrameError:
                    raise  # not a request at all: answered, then the connection closes
                except Exception as exc:  # a bug answering one request: that request fails
                    log.exception("request failed", conn=conn.number)
                    req_id = message.get("id") if isinstance(message, dict) else \
                        getattr(message, "id", None)
                    self._error(conn, req_id if isinstance(req_id, (int, str)) else None,
                                -1000, f"request could not be handled: {type(exc).__name__}")
        except wire.FrameError as exc:
            await self._answered(conn)  # what it sent before is answered first
            self._error(conn, None, exc.code, exc.msg)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await self._answered(conn)  # input ended: every request read still gets its reply
            conn.room.set()
            await self._flush_and_close(conn)
            sender.cancel()
            log.debug("connection closed", conn=conn.number, peer=conn.peer, requests=requests)

    def _blocked(self, conn: Connection) -> bool:
        limits = self.limits
        return not conn.closed and (conn.inflight + len(conn.out) >= limits.outbound_limit
                                    or conn.out_bytes >= limits.outbound_bytes
                                    or conn.reads >= READS_IN_FLIGHT)

    async def _answered(self, conn: Connection, timeout: float = 10.0) -> None:
        """Until every request read from `conn` has its reply queued (at most `timeout`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while conn.inflight > 0 and not conn.closed:
            conn.answered.clear()
            try:
                await asyncio.wait_for(conn.answered.wait(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                return

    # -- sending --------------------------------------------------------------------------------
    def send(self, conn: Connection, message: dict, stream: bool = False) -> None:
        if conn.closed:
            return
        mode = conn.mode or wire.JSONL
        try:
            data = wire.encode(message, mode)
        except (OverflowError, TypeError, ValueError):  # never leave a request unanswered
            log.exception("answer could not be encoded", conn=conn.number)
            data = wire.encode({"id": message.get("id"), "ok": False, "code": -1000,
                                "msg": "the answer could not be encoded"}, mode)
        self._enqueue(conn, data, stream)

    def _enqueue(self, conn: Connection, data: bytes, stream: bool = False) -> None:
        if conn.closed:
            return
        limits = self.limits
        if stream and (conn.backlog >= limits.outbound_limit or
                       conn.backlog_bytes >= limits.outbound_bytes):
            # a slow reader: cut it off, never buffer without bound
            self.stats["slow_disconnects"] += 1
            conn.closed = True
            conn.out.clear()
            conn.out_bytes = 0
            sock = conn.writer.get_extra_info("socket")
            if sock is not None:  # an abortive close: a reset now, the unsent data dropped
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.writer.transport.abort()
            conn.room.set()
            conn.answered.set()
            return
        conn.out.append(data)
        conn.out_bytes += len(data)
        if not conn.dirty:
            conn.dirty = True
            self._dirty.append(conn)
            if not self._flush_scheduled:  # outside a batch (a login, an error): soon
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush_out)

    def _flush_out(self) -> None:
        """Write what each connection has queued straight to its transport, one write per
        connection: no task wakes up per reply. A connection whose transport still holds
        more than DIRECT_WRITE bytes is left to its sender task, which waits for the peer
        (and whose queue then shows a slow reader)."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        limits = self.limits
        for conn in dirty:
            conn.dirty = False
            out = conn.out
            if conn.closed or not out:
                continue
            transport = conn.writer.transport
            if transport.is_closing() or transport.get_write_buffer_size() > DIRECT_WRITE:
                conn.wake.set()
                continue
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            conn.out_bytes = 0
            try:
                transport.write(data)
            except (ConnectionError, RuntimeError):
                continue  # the peer went away: its reader ends the connection
            if conn.inflight < limits.outbound_limit // 2 and not conn.room.is_set():
                conn.room.set()

    def reply(self, conn: Connection, message: dict, read: bool = False) -> None:
        conn.inflight -= 1
        if read:
            conn.reads -= 1
        self.send(conn, message)
        if not conn.room.is_set():
            conn.room.set()  # the reader re-checks its limits
        if conn.inflight == 0:
            conn.answered.set()

    async def _send_loop(self, conn: Connection) -> None:
        out, w = conn.out, conn.writer
        limits = self.limits
        try:
            while True:
                if not out:
                    conn.wake.clear()
                    await conn.wake.wait()
                    continue
                chunks = []
                size = 0
                while out and size < 256 * 1024:
                    data = out.popleft()
                    chunks.append(data)
                    size += len(data)
                conn.out_bytes -= size
                w.write(b"".join(chunks))
                await w.drain()
                if len(out) + conn.inflight < limits.outbound_limit // 2 and \
                        conn.out_bytes < limits.outbound_bytes // 2:
                    conn.room.set()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return  # the peer went away (uvloop: RuntimeError on a closed transport)

    async def _flush_and_close(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        for s in conn.streams:
            _forget(self.subscribers, s, conn)
        if conn.user_account is not None:
            _forget(self.user_subscribers, conn.user_account, conn)
        if not conn.closed:
            conn.closed = True
            try:
                if not conn.writer.transport.is_closing():
                    while conn.out:
                        conn.writer.write(conn.out.popleft())
                    await asyncio.wait_for(conn.writer.drain(), timeout=1.0)
            except (ConnectionError, RuntimeError, asyncio.TimeoutError):
                pass  # the peer went away meanwhile
            conn.out.clear()
            conn.out_bytes = 0
        conn.room.set()
        conn.answered.set()
        conn.writer.close()

    async def _sweep_idle(self) -> None:
        """Close connections that sent nothing for `idle_timeout_s` and follow no stream."""
        idle = self.limits.idle_timeout_s
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(max(idle / 4, 0.1), 30))
            now = loop.time()
            for conn in list(self.connections):
                if not conn.streams and not conn.inflight and not conn.out and \
                        not conn.risk and now - conn.last_seen > idle:
                    self._error(conn, None, -1000, f"idle for {idle:g} s without a request: "
                                                   "connection closed (send 'ping' to keep it)")
                    await self._flush_and_close(conn)

    # -- requests -------------------------------------------------------------------------------
    def _error(self, conn: Connection, req_id: Any, code: int, msg: str) -> None:
        self.send(conn, {"id": req_id, "ok": False, "code": code, "msg": msg})

    def _weigh(self, conn: Connection, req_id: Any, weight: int) -> bool:
        """Take a read's weight from the connection's budget; False (and -1003) past it."""
        if conn.weights is None or conn.weights.take(weight):
            return True
        self._error(conn, req_id, -1003,
                    f"Too many requests; current limit is {self.limits.weight_per_min} request "
                    "weight per minute. Please use the streams for live updates to avoid "
                    "polling.")
        return False

    def _on_request(self, conn: Connection, message: Any) -> None:
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
                               f"{self.limits.rate_per_s} requests per second.")
        if op == "ping":
            return self.send(conn, {"id": req_id, "ok": True, "result": {}})
        if op == "login":
            if conn.logged_in:
                who = "an admin key" if conn.admin else "the risk key" if conn.risk else \
                    f"account {conn.account}"
                return self._error(conn, req_id, -1020,
                                   f"This connection is already logged in ({who}); open a new "
                                   "connection to log in with another key.")
            if not self._weigh(conn, req_id, 1):
                return
            key = self.keys.verify(message.get("apiKey"), conn.nonce, message.get("signature"))
            if key is None:
                return self._error(conn, req_id, -1022, "Signature for this request is not valid.")
            conn.logged_in = True
            conn.account, conn.admin, conn.risk = key.account, key.admin, key.risk
            return self.send(conn, {"id": req_id, "ok": True,
                                    "result": {"account": key.account, "admin": key.admin}})
        if op == "subscribe":
            return self._request_subscribe(conn, req_id, message)
        if op == "query":
            return self._request_query(conn, req_id, message)
        if op == "createApiKey":
            if not conn.admin:
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
            account = message.get("account")
            if not isinstance(account, int) or isinstance(account, bool) or \
                    account not in self.engine.accounts:
                return self._error(conn, req_id, -1102, "createApiKey needs an existing 'account'")
            conn.inflight += 1
            asyncio.ensure_future(self._create_key(conn, req_id, account))
            return None
        if op in auth.INTERNAL_OPS and not conn.risk:
            return self._error(conn, req_id, auth.UNAUTHORISED,
                               f"'{op}' is sent by the risk engine only.")
        obj = {k: v for k, v in message.items() if k != "id"}
        if op in auth.INTERNAL_OPS:
            pass  # the risk key names the account it asks about
        elif op in auth.ADMIN_OPS:
            if not conn.admin:
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
        elif op in auth.ACCOUNT_OPS:
            if conn.admin and "account" in obj:
                pass  # an admin may act for an account, naming it
            elif conn.account is None:
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
            elif obj.setdefault("account", conn.account) != conn.account:
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
        else:
            return self._error(conn, req_id, -1103, f"unknown message op={op!r}")
        try:
            cmd = json_edge.decode_command(obj)
        except json_edge.BadInput as bad:
            return self._error(conn, req_id, bad.code, bad.msg)
        conn.inflight += 1
        self.loop.submit(cmd, lambda record: self.reply(conn,
                                                        self._command_reply(conn, req_id, record)))

    async def _create_key(self, conn: Connection, req_id: Any, account: int) -> None:
        """A new key, answered once it is durable in the key store (written off the loop)."""
        try:
            key = await self.keys.create_durable(account)
        except OSError as exc:
            log.exception("key store write failed")
            return self.reply(conn, {"id": req_id, "ok": False, "code": -1000,
                                     "msg": f"the key could not be stored: {exc.strerror}"})
        self.reply(conn, {"id": req_id, "ok": True,
                          "result": {"apiKey": key.apiKey, "secret": key.secret,
                                     "account": account}})

    def _on_command_request(self, conn: Connection, req: json_edge.TypedRequest) -> None:
        """_on_request's command part for a request decoded straight to its fields: the same
        checks in the same order, the same codes and messages."""
        req_id, op = req.id, req.op
        if not conn.bucket.take():
            return self._error(conn, req_id, -1003, "Too many requests; current limit is "
                               f"{self.limits.rate_per_s} requests per second.")
        if op in auth.INTERNAL_OPS and not conn.risk:
            return self._error(conn, req_id, auth.UNAUTHORISED,
                               f"'{op}' is sent by the risk engine only.")
        account = req.account
        if op in auth.INTERNAL_OPS:
            pass  # the risk key names the account it asks about
        elif op in auth.ADMIN_OPS:
            if not conn.admin:
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
        elif op in auth.ACCOUNT_OPS:
            if conn.admin and account is not None:
                pass  # an admin may act for an account, naming it
            elif conn.account is None:
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
            elif account is not None and account != conn.account:
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
            else:
                account = conn.account
        else:
            return self._error(conn, req_id, -1103, f"unknown message op={op!r}")
        cmd = req.command(account)
        conn.inflight += 1
        self.loop.submit(cmd, lambda record: self.reply(conn,
                                                        self._command_reply(conn, req_id, record)))

    def _request_subscribe(self, conn: Connection, req_id: Any, message: dict) -> None:
        streams = message.get("streams")
        if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
            return self._error(conn, req_id, -1102, "'streams' must be a list of stream names")
        weight = 1
        for s in streams:
            name, _, symbol = s.partition("@")
            if s == "user":
                if conn.account is None:
                    return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
            elif s == "!forceOrder":
                pass
            elif name not in ("trade", "depth", "markPrice", "forceOrder") or \
                    symbol not in self.engine.symbols:
                return self._error(conn, req_id, -1102, f"unknown stream {s!r}")
            elif name == "depth":
                weight += depth_weight(max(DEPTH_LIMITS))  # its snapshot
        if not self._weigh(conn, req_id, weight):
            return
        conn.inflight += 1
        conn.reads += 1
        self.loop.read(lambda: self._subscribe(conn, req_id, streams),
                       lambda reply: self.reply(conn, reply, read=True))

    def _request_query(self, conn: Connection, req_id: Any, message: dict) -> None:
        name = message.get("query")
        for f in ("query", "symbol", "tokenName"):
            if f in message and not isinstance(message[f], str):
                return self._error(conn, req_id, -1102, f"'{f}' must be a string")
        if "account" in message and (not isinstance(message["account"], int) or
                                     isinstance(message["account"], bool)):
            return self._error(conn, req_id, -1102, "'account' must be an integer")
        if name in auth.ACCOUNT_QUERIES:
            account = message.get("account", conn.account) if conn.admin else conn.account
            if account is None or (not conn.admin and message.get("account", account) != account):
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
        elif name in auth.ADMIN_QUERIES:
            if not conn.admin:
                return self._error(conn, req_id, auth.UNAUTHORISED, auth.UNAUTHORISED_MSG)
            account = None
        elif name not in auth.PUBLIC_QUERIES:
            return self._error(conn, req_id, -1103, f"unknown query {name!r}")
        else:
            account = None
        limit = message.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            return self._error(conn, req_id, -1102, "Mandatory parameter 'limit' was not sent, "
                                                    "was empty/null, or malformed.")
        if name in auth.TOKEN_QUERIES:
            symbol = message.get("tokenName")
            if symbol is not None and symbol not in self.engine.catalogue.tokens:
                return self._error(conn, req_id, -1121, f"Invalid tokenName {symbol!r}.")
            if name == "tokenInfo":  # public; a logged-in account also gets its limits left
                account = conn.account
        else:
            symbol = message.get("symbol")
            if symbol is not None and symbol not in self.engine.symbols:
                return self._error(conn, req_id, -1121, f"Invalid symbol {symbol!r}.")
        if name == "depth":
            if symbol is None:
                return self._error(conn, req_id, -1102, "Mandatory parameter 'symbol' was not "
                                                        "sent, was empty/null, or malformed.")
            if limit is None:
                limit = DEPTH_DEFAULT
            elif limit not in DEPTH_LIMITS:
                return self._error(conn, req_id, -4021, f"'{limit}' is not valid depth limit; "
                                   f"valid limits are {', '.join(map(str, DEPTH_LIMITS))}.")
            weight = depth_weight(limit)
        elif name == "fundingRate":
            limit = 100 if limit is None else max(1, min(limit, 1000))
            weight = 1
        else:
            with_symbol, without = WEIGHTS.get(name, (1, 1))
            weight = with_symbol if symbol is not None else without
        if not self._weigh(conn, req_id, weight):
            return
        conn.inflight += 1
        conn.reads += 1
        self.loop.read(lambda: answers.query(self.engine, self.loop.clock, self._depth_snapshot,
                                             req_id, name, account, symbol, limit),
                       lambda reply: self.reply(conn, reply, read=True))

    # -- run by the sequencing loop, between two commands ---------------------------------------
    def _command_reply(self, conn: Connection, req_id: Any, record: LogRecord) -> dict:
        viewer = None if conn.admin or conn.risk else conn.account
        answer = answers.command_reply(req_id, record, viewer)
        if not answer["ok"]:
            self.stats["rejected"] += 1
        return answer

    def _subscribe(self, conn: Connection, req_id: Any, streams: list[str]) -> dict:
        snapshots = {}
        if conn.closed:
            return {"id": req_id, "ok": False, "code": -1000, "msg": "connection closed"}
        for s in streams:
            if s == "user":
                conn.user_account = conn.account
                self.user_subscribers.setdefault(conn.account, set()).add(conn)
            else:
                self.subscribers.setdefault(s, set()).add(conn)
                if s.startswith("depth@"):
                    snapshots[s] = self._depth_snapshot(s.partition("@")[2], max(DEPTH_LIMITS))
                    self._depth_wanted.add(s[6:])
            conn.streams.add(s)
        return {"id": req_id, "ok": True, "result": {"streams": streams, "snapshots": snapshots}}

    def _depth_snapshot(self, symbol: str, limit: int) -> dict:
        """Built once per book state and limit: a thousand unread copies cost one build."""
        u = self.publisher.last_depth_u.get(symbol, 0)
        cached = self._depth_cache.get(symbol)
        if cached is None or cached[0] != u:  # the book moved on: drop every older answer
            cached = self._depth_cache[symbol] = (u, {})
        result = cached[1].get(limit)
        if result is None:
            result = cached[1][limit] = self.publisher.snapshot(symbol, limit)
        return result

def _forget(table: dict, key: Any, conn: Connection) -> None:
    subs = table.get(key)
    if subs is not None:
        subs.discard(conn)
        if not subs:
            del table[key]
