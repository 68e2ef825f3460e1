"""The native TCP gateway: one port, two framings (proto.wire), login, requests, streams.

* On connect the server sends a hello with a nonce; the client's first byte picks the framing.
  A request is authorised by the role of the key the connection logged in with
  (engine.server.auth), decoded to a command (proto.json_edge) and handed to the sequencing
  loop (engine.server.sequencing); its reply goes out once its record is in the log.
* Each connection's outbound messages are bounded: replies are backpressure (the server stops
  reading a connection while its unanswered requests plus queued messages reach
  `outbound_limit`), and a subscriber that still has `outbound_limit` messages queued from
  earlier batches when a new batch is published is a slow reader and is disconnected (an
  abortive close). A connection holds at most that plus one batch's messages: no client can
  grow memory without bound. Frames above `max_frame` bytes and malformed frames get an error
  and close only that connection. Each connection has a token bucket rate limit; requests
  past it get Binance's -1003 and change nothing.
"""
from __future__ import annotations

import asyncio
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
from engine.server.streams import StreamPublisher
from engine.views import funding as funding_views
from engine.views import markets as market_views
from engine.views import orders as order_views
from engine.views import positions as position_views
from engine.views import tokens as token_views
from proto import events as V
from proto import json_edge, wire
from proto.records import LogRecord

log = structlog.get_logger("gateway")


@dataclass
class GatewayLimits:
    max_frame: int = 64 * 1024  # bytes
    outbound_limit: int = 10_000  # messages queued for one connection before it is cut off
    sndbuf: int = 256 * 1024  # kernel send buffer per connection (bytes); 0: the OS default
    rate_per_s: int = 5_000  # requests per second per connection, sustained
    rate_burst: int = 10_000  # requests a connection may send at once


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
        self._server: asyncio.AbstractServer | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._on_connect, host, port,
                                                  limit=self.limits.max_frame * 2)
        self.address = self._server.sockets[0].getsockname()[:2]

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def close_connections(self) -> None:
        for conn in list(self.connections):
            await self._flush_and_close(conn)

    # -- the sequencing loop's listener ---------------------------------------------------------
    def after_command(self, record: LogRecord) -> None:
        self._depth.append(self.publisher.depth_diffs(record, self._depth_wanted))

    def before_replies(self, records: list[LogRecord]) -> None:
        for conn in self.connections:
            conn.backlog = conn.out.qsize()

    def after_flush(self, records: list[LogRecord]) -> None:
        depth, self._depth = self._depth, []
        for record, diffs in zip(records, depth):
            public, private = self.publisher.messages(record, self.user_subscribers,
                                                      self.subscribers)
            for stream, data in public + diffs:
                for conn in tuple(self.subscribers.get(stream, ())):
                    self.send(conn, {"stream": stream, "data": data}, stream=True)
            for aid, messages in private.items():
                for conn in tuple(self.user_subscribers.get(aid, ())):
                    for data in messages:
                        self.send(conn, {"stream": "user", "data": data}, stream=True)
        # depth diffs are built only for symbols somebody follows
        self._depth_wanted = {s[6:] for s, subs in self.subscribers.items()
                              if subs and s.startswith("depth@")}

    # -- connections ----------------------------------------------------------------------------
    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conn_numbers += 1
        limits = self.limits
        sock = writer.get_extra_info("socket")
        if limits.sndbuf and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limits.sndbuf)
        conn = Connection(reader, writer, self._conn_numbers, secrets.token_hex(16),
                          asyncio.Queue(), TokenBucket(limits.rate_per_s, limits.rate_burst),
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
            limit = limits.outbound_limit
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
                    self._on_request(conn, message)
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
        limit = self.limits.max_frame
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
        if stream and conn.backlog >= self.limits.outbound_limit:
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
                if out.qsize() + conn.inflight < self.limits.outbound_limit // 2:
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
    def _error(self, conn: Connection, req_id: Any, code: int, msg: str) -> None:
        self.send(conn, {"id": req_id, "ok": False, "code": code, "msg": msg})

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
        if op == "login":
            key = self.keys.verify(message.get("apiKey"), conn.nonce, message.get("signature"))
            if key is None:
                return self._error(conn, req_id, -1022, "Signature for this request is not valid.")
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
            key = self.keys.create(account)
            return self.send(conn, {"id": req_id, "ok": True,
                                    "result": {"apiKey": key.apiKey, "secret": key.secret,
                                               "account": account}})
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
        self.loop.submit(cmd, lambda record: self.reply(conn, self._command_reply(req_id, record)))

    def _request_subscribe(self, conn: Connection, req_id: Any, message: dict) -> None:
        streams = message.get("streams")
        if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
            return self._error(conn, req_id, -1102, "'streams' must be a list of stream names")
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
        conn.inflight += 1
        self.loop.read(lambda: self._subscribe(conn, req_id, streams),
                       lambda reply: self.reply(conn, reply))

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
        if name in auth.TOKEN_QUERIES:
            symbol = message.get("tokenName")
            if symbol is not None and symbol not in self.engine.catalogue.tokens:
                return self._error(conn, req_id, -1121, f"Invalid tokenName {symbol!r}.")
            if name == "tokenInfo":  # public; a logged-in account also gets its limits left
                account = conn.account
            limit = None
        else:
            symbol = message.get("symbol")
            if symbol is not None and symbol not in self.engine.symbols:
                return self._error(conn, req_id, -1121, f"Invalid symbol {symbol!r}.")
            if name == "depth" and symbol is None:
                return self._error(conn, req_id, -1102, "depth needs a 'symbol'")
            limit = message.get("limit")
        conn.inflight += 1
        self.loop.read(lambda: self._query(req_id, name, account, symbol, limit),
                       lambda reply: self.reply(conn, reply))

    # -- run by the sequencing loop, between two commands ---------------------------------------
    def _command_reply(self, req_id: Any, record: LogRecord) -> dict:
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
            result.update(order_views.order_state(order.order_id, events, record.time))
        else:
            result["events"] = [json_edge.to_wire(e) for e in events]
        return {"id": req_id, "ok": True, "result": result}

    def _subscribe(self, conn: Connection, req_id: Any, streams: list[str]) -> dict:
        snapshots = {}
        for s in streams:
            if s == "user":
                self.user_subscribers.setdefault(conn.account, set()).add(conn)
            else:
                self.subscribers.setdefault(s, set()).add(conn)
                if s.startswith("depth@"):
                    snapshots[s] = self.publisher.snapshot(s.partition("@")[2])
                    self._depth_wanted.add(s[6:])
            conn.streams.add(s)
        return {"id": req_id, "ok": True, "result": {"streams": streams, "snapshots": snapshots}}

    def _query(self, req_id: Any, name: str, account: int | None, symbol: str | None,
               limit: Any) -> dict:
        engine = self.engine
        try:
            if name == "depth":
                result: Any = self.publisher.snapshot(symbol, limit if isinstance(limit, int)
                                                      else None)
            elif name == "state":
                result = {"seq": engine.seq, "stateHash": engine.state_hash()}
            elif name == "premiumIndex":
                result = funding_views.premium_index(engine, symbol)
            elif name == "fundingRate":
                result = funding_views.funding_rate_history(
                    engine, symbol, limit if isinstance(limit, int) else 100)
            elif name == "indexInfo":
                result = funding_views.composite_index(engine)
            elif name == "tokenInfo":
                result = token_views.token_info(engine, symbol, account)
            elif name == "userLimit":
                result = token_views.user_limit(engine, account, symbol)
            elif name == "spotAccount":
                result = token_views.spot_account(engine, account)
            elif name == "positionRisk":
                result = position_views.position_risk(engine, account, symbol)
            elif name == "account":
                result = position_views.account_info(engine, account)
            elif name == "balance":
                result = position_views.balances(engine, account)
            elif name == "multiAssetsMargin":
                result = position_views.multi_assets_margin(engine, account)
            elif name == "coinmAccount":
                result = position_views.coinm_account_info(engine, account)
            elif name == "coinmBalance":
                result = position_views.coinm_balances(engine, account)
            elif name == "coinmPositionRisk":
                result = position_views.coinm_position_risk(engine, account, symbol)
            elif name == "assetIndex":
                result = position_views.asset_index(engine, symbol)
            elif name == "coinmExchangeInfo":
                result = market_views.coinm_exchange_info(engine)
            elif name == "coinmLeverageBracket":
                result = market_views.coinm_leverage_brackets(engine, symbol)
            else:
                result = order_views.open_orders(engine, account, symbol)
        except KeyError as exc:
            return {"id": req_id, "ok": False, "code": auth.UNAUTHORISED,
                    "msg": str(exc.args[0])}
        except Exception as exc:  # a read; the state is untouched
            log.exception("query failed", query=name)
            return {"id": req_id, "ok": False, "code": -1000,
                    "msg": f"query failed: {type(exc).__name__}"}
        return {"id": req_id, "ok": True, "result": result}
