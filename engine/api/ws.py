"""WebSocket streams: Binance's routes and its live subscription protocol.

Routes (any prefix of /public, /market, /private, or none; every stream on every route):
    /ws/<stream>[/<stream>...]      raw payloads; a trailing segment that is not a stream (ccxt
                                    appends /0, /1, ...) is ignored; a segment that is a live
                                    listen key opens that account's user data
    /stream?streams=<a>/<b>         combined: {"stream": <name>, "data": <payload>}
    /private/ws?listenKey=<key>     user data (several listenKey parameters allowed)
    /dstream/ws/..., /dstream/stream?streams=...
                                    COIN-M (Binance's dstream host): its symbols' streams
The USDⓈ-M routes know the USDⓈ-M symbols and the all-market streams (`!markPrice@arr`, ...,
of USDⓈ-M symbols only); /dstream knows the COIN-M symbols (no all-market streams). User data
follows the listen key's product (a /fapi key: USDⓈ-M, a /dapi key: COIN-M), on any route.
Messages: {"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [...], "id": n} -> {"result": null,
"id": n}; LIST_SUBSCRIPTIONS -> {"result": [...], "id": n}; SET_PROPERTY / GET_PROPERTY
"combined". Ping/pong frames as Binance (the server pings every 3 minutes).

Bounded: at most 200 streams and 20 messages a second (burst 50) per connection (Binance: 10
a second; more breaks the connection); incoming messages of at most 64 KiB; a connection whose
queue holds `outbound_limit` messages when another is published is a slow reader and is cut
off (its queue dropped), as the native gateway does.
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import msgspec
import structlog
from aiohttp import WSMsgType, web

from engine.api.endpoint import COINM, USDM
from engine.api.ws_market import MarketStreams
from engine.api.ws_user import UserStreams

log = structlog.get_logger("api.ws")

MAX_STREAMS = 200
MSG_RATE = 20
MSG_BURST = 50
_encode = msgspec.json.Encoder().encode
_SYMBOL_STREAM = re.compile(
    r"^([a-z0-9_]+)@(depth(?:5|10|20)?(?:@(?:100|250|500|0)ms)?|trade|aggTrade|markPrice(?:@1s)?"
    r"|kline_(?:1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)|bookTicker|miniTicker|ticker"
    r"|forceOrder)$")
_CONTINUOUS = re.compile(r"^([a-z0-9]+)_(perpetual|current_quarter|next_quarter)"
                         r"@continuousKline_(1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)$")
_ALL_STREAMS = frozenset({"!markPrice@arr", "!markPrice@arr@1s", "!forceOrder@arr",
                          "!bookTicker", "!miniTicker@arr", "!ticker@arr"})


class WsConn:
    __slots__ = ("ws", "transport", "combined", "streams", "accounts", "queue", "wake", "closed",
                 "tokens", "stamp", "sender", "product")

    def __init__(self, ws: web.WebSocketResponse, transport, combined: bool,
                 product: str = USDM) -> None:
        self.ws = ws
        self.transport = transport
        self.combined = combined
        self.product = product  # which symbols its market streams may name
        self.streams: set[str] = set()
        self.accounts: set[tuple[int, str]] = set()  # (account, product) of its listen keys
        self.queue: list[str] = []
        self.wake = asyncio.Event()
        self.closed = False
        self.tokens = float(MSG_BURST)
        self.stamp = time.monotonic()
        self.sender: asyncio.Task | None = None

    def allow_message(self) -> bool:
        now = time.monotonic()
        self.tokens = min(MSG_BURST, self.tokens + (now - self.stamp) * MSG_RATE)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Streams:
    def __init__(self, api) -> None:
        self.api = api
        self.limit = api.config.outbound_limit
        self.subs: dict[str, set[WsConn]] = {}
        # (account, product) -> the connections following that user data
        self.by_account: dict[tuple[int, str], set[WsConn]] = {}
        self.conns: set[WsConn] = set()
        self.depth_wanted: set[str] = set()
        self.kline_intervals: dict[str, set[str]] = {}
        self.symbols_by_lower = {s.lower(): s for s in api.engine.symbols}
        self.product_of = {s: COINM if sym.spec.inverse else USDM
                           for s, sym in api.engine.symbols.items()}
        # continuous klines: (pair, contract type) -> the symbol; symbol -> its stream names
        self.contracts = {(sp.symbol.partition("_")[0].lower(), sp.contract_type.lower()): name
                          for name, sp in ((n, s.spec) for n, s in api.engine.symbols.items())}
        self.continuous: dict[str, dict[str, tuple[str, str]]] = {}
        self.market = MarketStreams(api, self)
        self.user = UserStreams(api, self)
        self.slow_disconnects = 0
        self._tick = 0
        self._ticking = False

    # -- the sequencing loop's hooks (via the ApiServer) ------------------------------------------
    def before_projection(self, record) -> None:
        self.market.note_depth(record)

    def after_projection(self, record) -> None:
        self.market.after_projection(record)
        self.user.after_record()

    def publish(self) -> None:
        self.market.publish()
        self.user.publish()

    def periodic(self, now: int) -> None:
        """Mark prices and 24-hour tickers, read between two commands."""
        if self._ticking or not self.subs:
            return
        self._tick += 1
        tick = self._tick
        self._ticking = True

        def done(_result) -> None:
            self._ticking = False
        self.api.loop.read(lambda: self._periodic(now, tick), done)

    def _periodic(self, now: int, tick: int) -> None:
        try:
            self.market.periodic(now, tick)
        except Exception:  # a read: log it, never stop the loop
            log.exception("periodic streams failed")

    # -- sending ------------------------------------------------------------------------------------
    def send(self, stream: str, data) -> None:
        conns = self.subs.get(stream)
        if not conns:
            return
        raw = _encode(data).decode()
        wrapped = None
        for conn in tuple(conns):
            if conn.combined:
                if wrapped is None:
                    wrapped = f'{{"stream":"{stream}","data":{raw}}}'
                self._push(conn, wrapped)
            else:
                self._push(conn, raw)

    def send_user(self, user: tuple[int, str], data) -> None:
        conns = self.by_account.get(user)
        if not conns:
            return
        raw = _encode(data).decode()
        for conn in tuple(conns):
            self._push(conn, raw)

    def _push(self, conn: WsConn, text: str) -> None:
        if conn.closed:
            return
        if len(conn.queue) >= self.limit:  # a slow reader: cut it off, never buffer unbounded
            self.slow_disconnects += 1
            self._drop(conn)
            if conn.transport is not None:
                conn.transport.abort()
            return
        conn.queue.append(text)
        conn.wake.set()

    async def _sender(self, conn: WsConn) -> None:
        ws = conn.ws
        try:
            while not conn.closed:
                await conn.wake.wait()
                conn.wake.clear()
                while conn.queue and not conn.closed:
                    batch, conn.queue = conn.queue, []
                    for text in batch:
                        await ws.send_str(text)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass

    # -- subscriptions ----------------------------------------------------------------------------
    def valid(self, name: str, product: str = USDM) -> bool:
        if name in _ALL_STREAMS:
            return product == USDM
        c = _CONTINUOUS.match(name)
        if c is not None:
            symbol = self.contracts.get((c.group(1), c.group(2)))
            return symbol is not None and self.product_of[symbol] == product
        m = _SYMBOL_STREAM.match(name)
        if m is None:
            return False
        symbol = self.symbols_by_lower.get(m.group(1))
        return symbol is not None and self.product_of[symbol] == product

    def _subscribe(self, conn: WsConn, name: str) -> None:
        if name in conn.streams:
            return
        conn.streams.add(name)
        self.subs.setdefault(name, set()).add(conn)
        self._note(name)

    def _unsubscribe(self, conn: WsConn, name: str) -> None:
        conn.streams.discard(name)
        s = self.subs.get(name)
        if s is not None:
            s.discard(conn)
            if not s:
                del self.subs[name]
        self._note(name)

    def _note(self, name: str) -> None:
        """Keep the index of symbols whose depth must be tracked and of kline intervals."""
        low, _, kind = name.partition("@")
        c = _CONTINUOUS.match(name)
        if c is not None:
            symbol = self.contracts[(c.group(1), c.group(2))]
            streams = self.continuous.setdefault(symbol, {})
            if self.subs.get(name):
                streams[name] = (c.group(3), c.group(2).upper())
            else:
                streams.pop(name, None)
            return
        if name == "!bookTicker":
            self.depth_wanted = self._depth_from_subs()
            return
        if kind.startswith("depth") or kind == "bookTicker":
            self.depth_wanted = self._depth_from_subs()
        elif kind.startswith("kline_"):
            intervals = self.kline_intervals.setdefault(low, set())
            if self.subs.get(name):
                intervals.add(kind[6:])
            else:
                intervals.discard(kind[6:])

    def _depth_from_subs(self) -> set[str]:
        out = set(self.api.symbols[USDM]) if self.subs.get("!bookTicker") else set()
        for name, conns in self.subs.items():
            low, _, kind = name.partition("@")
            if conns and (kind.startswith("depth") or kind == "bookTicker"):
                out.add(self.symbols_by_lower[low])
        return out

    def _add_account(self, conn: WsConn, user: tuple[int, str]) -> None:
        conn.accounts.add(user)
        self.by_account.setdefault(user, set()).add(conn)

    def _drop(self, conn: WsConn) -> None:
        if conn.closed:
            return
        conn.closed = True
        conn.queue = []
        conn.wake.set()
        self.conns.discard(conn)
        for name in list(conn.streams):
            self._unsubscribe(conn, name)
        for account in conn.accounts:
            s = self.by_account.get(account)
            if s is not None:
                s.discard(conn)
                if not s:
                    del self.by_account[account]

    # -- connections --------------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        product = USDM
        if parts and parts[0] == "dstream":
            product = COINM
            parts.pop(0)
        if parts and parts[0] in ("public", "market", "private"):
            parts.pop(0)
        if not parts or parts[0] not in ("ws", "stream"):
            return web.Response(status=404, content_type="application/json",
                                text='{"code":-1000,"msg":"Invalid stream path."}')
        combined = parts[0] == "stream"
        names, accounts = [], []
        now = self.api.now()
        candidates = parts[1:]
        for value in request.query.getall("streams", []):
            candidates += value.split("/")
        for seg in candidates:
            if self.valid(seg, product):
                names.append(seg)
            else:
                account = self.api.listen_keys.account_of(seg, now)
                if account is not None:
                    accounts.append(account)
        for key in request.query.getall("listenKey", []):
            account = self.api.listen_keys.account_of(key, now)
            if account is None:
                return web.Response(status=400, content_type="application/json",
                                    text='{"code":-1125,"msg":"This listenKey does not exist."}')
            accounts.append(account)
        if len(names) > MAX_STREAMS:
            return web.Response(status=400, content_type="application/json",
                                text='{"code":-1101,"msg":"Too many streams."}')
        ws = web.WebSocketResponse(heartbeat=180.0, autoping=True, max_msg_size=64 * 1024)
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if self.api.config.sndbuf and sock is not None:  # bound the kernel's share too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.api.config.sndbuf)
        await ws.prepare(request)
        conn = WsConn(ws, request.transport, combined, product)
        self.conns.add(conn)
        for name in names:
            self._subscribe(conn, name)
        for account in accounts:
            self._add_account(conn, account)
        conn.sender = asyncio.create_task(self._sender(conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if not conn.allow_message():
                    break  # past the message rate: Binance disconnects
                reply = self._on_message(conn, msg.data)
                if reply is not None:
                    self._push(conn, _encode(reply).decode())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._drop(conn)
            if conn.sender is not None:
                conn.sender.cancel()
            if not ws.closed:
                await ws.close()
        return ws

    def _on_message(self, conn: WsConn, text: str):
        try:
            req = json.loads(text)
        except ValueError:
            return {"error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}}
        if not isinstance(req, dict):
            return {"error": {"code": 3, "msg": "Invalid JSON: expected an object"}}
        req_id = req.get("id")
        if req_id is not None and (isinstance(req_id, bool) or
                                   not isinstance(req_id, (int, str))):
            return {"error": {"code": 1, "msg": "Invalid value type: expected u64 or string"},
                    "id": None}
        method = req.get("method")
        params = req.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {"error": {"code": 2, "msg": "Invalid request: params must be a list of "
                                  "stream names"}, "id": req_id}
            if method == "SUBSCRIBE":
                bad = [p for p in params if not self.valid(p, conn.product)]
                if bad:
                    return {"error": {"code": 2, "msg": f"Invalid request: unknown stream "
                                      f"{bad[0]!r}"}, "id": req_id}
                if len(conn.streams | set(params)) > MAX_STREAMS:
                    return {"error": {"code": 2, "msg": f"Invalid request: more than "
                                      f"{MAX_STREAMS} streams"}, "id": req_id}
                for p in params:
                    self._subscribe(conn, p)
            else:
                for p in params:
                    self._unsubscribe(conn, p)
            return {"result": None, "id": req_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.streams), "id": req_id}
        if method == "SET_PROPERTY":
            if isinstance(params, list) and len(params) == 2 and params[0] == "combined" \
                    and isinstance(params[1], bool):
                conn.combined = params[1]
                return {"result": None, "id": req_id}
            return {"error": {"code": 0, "msg": "Unknown property"}, "id": req_id}
        if method == "GET_PROPERTY":
            if isinstance(params, list) and params == ["combined"]:
                return {"result": conn.combined, "id": req_id}
            return {"error": {"code": 0, "msg": "Unknown property"}, "id": req_id}
        return {"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": req_id}

    # -- listen keys --------------------------------------------------------------------------------
    def listen_key_expired(self, key: str, user: tuple[int, str], now: int) -> None:
        """Binance's listenKeyExpired event, then the account's user data stops."""
        conns = self.by_account.get(user)
        if not conns:
            return
        raw = _encode({"e": "listenKeyExpired", "E": now, "listenKey": key}).decode()
        for conn in tuple(conns):
            self._push(conn, raw)
            conn.accounts.discard(user)
        del self.by_account[user]

    async def close_all(self) -> None:
        for conn in list(self.conns):
            self._drop(conn)
            try:
                await asyncio.wait_for(conn.ws.close(), 1.0)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                pass
