"""Binance's USDⓈ-M REST and WebSocket API, beside the native gateway: plain HTTP requests on
a lean HTTP/1.1 protocol (engine.api.http), WebSockets (and any request it does not read
itself) on aiohttp, on the same port.

    HTTP request --> size and parameter checks --> weight (per IP) --> key, signature and
        timestamp (SIGNED) --> endpoint (engine.api.rest_*): a command through the shared
        sequencing loop (`submit`, answered once its record is in the log) or a read between
        two commands (`read`) --> JSON in Binance's shape, or {"code", "msg"} with its status
    WebSocket /ws, /stream, /public/..., /market/..., /private/... --> engine.api.ws

* The API is a BatchListener of the sequencing loop: right after each record it feeds the log's
  projection (engine.views.history), notes which book levels moved (depth diffs) and builds
  the user-data events in the state after each event; once the batch is in the log, the
  streams go out. On start the projection is rebuilt from the log file: never a second source
  of truth.
* No second path to state: every command goes through `loop.submit`, every read through
  `loop.read`.
* Bounded memory: bodies above `max_body` bytes, request lines above `max_line` bytes and more
  than 200 parameters are refused before any work; a WebSocket reader that falls
  `outbound_limit` messages behind is cut off.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable

import msgspec
import structlog
from aiohttp import web

from engine.api import errors as E
from engine.api import rest_account, rest_market, rest_trade, ws
from engine.api import web as webpage
from engine.api.endpoint import COINM, NONE, SIGNED, USDM, Endpoint, Request, product_of
from engine.api.http import HttpProtocol
from engine.api import signing
from engine.api.listenkeys import ListenKeys
from engine.api.params import Params, split
from engine.api.weights import Limits
from engine.core import Engine
from engine.eventlog import LogReader
from engine.views.history import History
from engine.views.venue import VenueEvents
from proto.records import LogRecord

log = structlog.get_logger("api")

_encode = msgspec.json.Encoder().encode


@dataclass
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    weight_per_minute: int = 2400  # Binance's REQUEST_WEIGHT limit
    orders_per_10s: int = 300  # Binance's ORDERS limits per account
    orders_per_minute: int = 1200
    max_body: int = 64 * 1024  # bytes
    max_line: int = 2 * 1024 * 1024  # request line (a long query string) in bytes
    outbound_limit: int = 10_000  # WebSocket messages queued before a reader is cut off
    sndbuf: int = 256 * 1024  # kernel send buffer per WebSocket connection; 0: the OS default
    listen_key_ttl_ms: int = 60 * 60_000
    keep: int = 10_000  # history kept per account and per symbol (engine.views.history)


class ApiServer:
    def __init__(self, engine: Engine, loop, keys, config: ApiConfig | None = None,
                 log_path: str | None = None) -> None:
        self.engine = engine
        self.loop = loop  # the sequencing loop: submit(cmd, done), read(fn, done)
        self.keys = keys  # the key store: .keys {apiKey: key with .secret, .account}
        self.config = config or ApiConfig()
        self.history = History(
            self.config.keep,
            sizes={n: s.contract_size for n, s in engine.symbols.items() if s.contract_size},
            assets={n: s.asset for n, s in engine.symbols.items()})
        self.venue = VenueEvents()  # insurance funds and ADL trades, for the web page
        self.limits = Limits(self.config.weight_per_minute, self.config.orders_per_10s,
                             self.config.orders_per_minute)
        self.listen_keys = ListenKeys(self.config.listen_key_ttl_ms)
        # each product's symbols: /fapi knows the USDⓈ-M ones, /dapi the COIN-M ones
        self.symbols = {
            USDM: {n: s for n, s in engine.symbols.items() if not s.spec.inverse},
            COINM: {n: s for n, s in engine.symbols.items() if s.spec.inverse}}
        self.routes: dict[tuple[str, str], Endpoint] = {}
        for module in (rest_market, rest_trade, rest_account, webpage):
            for ep in module.ROUTES:
                self.routes[(ep.method, ep.path)] = ep
        self.ws = ws.Streams(self)
        self._watch: dict[int, list] = {}  # id(command) -> [command, snapshot fn, result]
        self.countdowns: dict[tuple[int, str], asyncio.TimerHandle] = {}
        self.rebuilt = self._rebuild(log_path)
        self._server: asyncio.AbstractServer | None = None
        self._aiohttp: web.Server | None = None
        self._http_conns: set = set()
        self._tasks: list[asyncio.Task] = []
        self.address: tuple[str, int] | None = None
        self.requests = 0
        self._client_prefix = "web_" + secrets.token_hex(6) + "_"
        self._client_ids = 0

    def _rebuild(self, log_path: str | None) -> int:
        """The projection from the log, up to the engine's state (the records it holds)."""
        if not log_path:
            return 0
        reader = LogReader(log_path)
        n = 0
        try:
            for _, record in reader.records():
                if record.seq > self.engine.seq:
                    break
                self.ws.market.note_depth(record, build=False)
                self.history.apply(record)
                self.venue.apply(record)
                n += 1
        except FileNotFoundError:
            return 0
        return n

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Plain requests take the fast path (engine.api.http); it hands WebSocket upgrades
        and what it does not read itself to aiohttp on the same connection."""
        self._aiohttp = web.Server(self._handle, max_line_size=self.config.max_line,
                                   max_field_size=16 * 1024, access_log=None)
        conns = self._http_conns
        self._server = await asyncio.get_running_loop().create_server(
            lambda: HttpProtocol(self, self._aiohttp, conns), self.config.host,
            self.config.port, backlog=1024, reuse_address=True)
        self.address = tuple(self._server.sockets[0].getsockname()[:2])
        self._tasks = [asyncio.create_task(self._housekeeping(), name="api-housekeeping")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for h in self.countdowns.values():
            h.cancel()
        if self._server is not None:
            self._server.close()
        await self.ws.close_all()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0  # requests in flight are answered (the loop still runs)
        while any(c.pending for c in self._http_conns) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for c in list(self._http_conns):
            c.close()
        if self._aiohttp is not None:
            await self._aiohttp.shutdown(2.0)

    async def _housekeeping(self) -> None:
        """Expire listen keys; push the periodic streams (mark price, tickers)."""
        while True:
            await asyncio.sleep(1.0)
            now = self.now()
            for key, account in self.listen_keys.expire(now):
                self.ws.listen_key_expired(key, account, now)
            self.ws.periodic(self.venue_now())

    def now(self) -> int:
        """The wall clock in Unix ms: signed requests' timestamps, weights, listen keys."""
        return time.time_ns() // 1_000_000

    def venue_now(self) -> int:
        """The venue's time in Unix ms, the clock commands are stamped with (simulated under
        --clock sim): what endpoints report (serverTime) and their default windows start from."""
        clock = getattr(self.loop, "clock", None)
        return clock() if clock is not None else self.now()

    # -- the sequencing loop's listener -----------------------------------------------------------
    def after_command(self, record: LogRecord) -> None:
        try:
            self.venue.apply(record)
            self.ws.before_projection(record)
            self.history.apply(record, self.ws.user.observer(record))
            self.ws.after_projection(record)
        except Exception:  # a bug in a read model must not stop the venue: say it, go on
            log.exception("API projection failed", seq=record.seq)
        if self._watch:
            w = self._watch.pop(id(record.command), None)
            if w is not None:
                try:
                    w[2] = w[1](record)
                except Exception:  # a bug in a response shape; the command itself went through
                    log.exception("response snapshot failed")
                    w[2] = None

    def before_replies(self, records: list[LogRecord]) -> None:
        pass

    def after_flush(self, records: list[LogRecord]) -> None:
        try:
            self.ws.publish()
        except Exception:
            log.exception("API streams failed")

    # -- the one path to state ----------------------------------------------------------------------
    def submit(self, cmd, snapshot: Callable[[LogRecord], Any] | None = None) -> asyncio.Future:
        """Sequence `cmd`; the future resolves, once its record is in the log, to (record,
        snapshot(record) computed right after the core handled it)."""
        fut = asyncio.get_running_loop().create_future()
        holder = [cmd, snapshot, None]
        if snapshot is not None:
            self._watch[id(cmd)] = holder

        def done(record: LogRecord) -> None:
            if not fut.done():
                fut.set_result((record, holder[2]))
        self.loop.submit(cmd, done)
        return fut

    async def read(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` between two commands; its ApiError (or any error) is raised here."""
        fut = asyncio.get_running_loop().create_future()

        def safe():
            try:
                return True, fn()
            except Exception as exc:  # noqa: BLE001 - handed to the request, never the loop
                return False, exc

        def done(result) -> None:
            if not fut.done():
                fut.set_result(result)
        self.loop.read(safe, done)
        ok, value = await fut
        if not ok:
            raise value
        return value

    # -- HTTP -------------------------------------------------------------------------------------
    async def dispatch(self, method: str, path: str, raw_query: str, body: str | None,
                       api_key: str, ip: str) -> tuple[int, bytes, dict[str, str]]:
        """One REST request as a coroutine: (status, JSON body, headers)."""
        fut = asyncio.get_running_loop().create_future()

        def respond(status: int, payload: bytes, headers: dict[str, str]) -> None:
            if not fut.done():
                fut.set_result((status, payload, headers))
        self.handle(method, path, raw_query, body, api_key, ip, respond)
        return await fut

    def handle(self, method: str, path: str, raw_query: str, body: str | None, api_key: str,
               ip: str, respond: Callable[[int, bytes, dict[str, str]], None]) -> None:
        """One REST request, whatever carried it; `respond(status, JSON body, headers)` once
        (at once for a refusal, after the record is in the log for a command). `body` is None
        when it was refused for its size before it was read. An endpoint with a `command`
        function (new order, cancel) runs without a coroutine: parse, submit, answer from the
        loop's callback, as the native gateway does."""
        if webpage.is_page(method, path):  # the web page's static files: no weight
            return respond(*webpage.serve(path))
        self.requests += 1
        now = self.now()
        headers: dict[str, str] = {}
        try:
            ep = self.routes.get((method, path))
            if ep is None:
                self.limits.use_weight(ip, 1, now)
                return respond(*self._reply({"code": -1000, "msg": f"Path {path}, Method "
                                             f"{method} is invalid"}, 404, headers, ip, now))
            if body is None:
                raise E.ApiError(-1101, "Too many parameters sent for this endpoint.", 413)
            params = Params(split(raw_query), split(body))
            weight = ep.weight(params) if callable(ep.weight) else ep.weight
            self.limits.use_weight(ip, weight, now)
            product = product_of(path)
            req = Request(params, self.venue_now(), product, self.symbols[product])
            if ep.security != NONE:
                self._authenticate(api_key, req, ep.security, raw_query, body, now)
            if ep.orders and req.account is not None:
                a, b = self.limits.use_orders(req.account, ep.orders, now)
                headers["X-MBX-ORDER-COUNT-10S"] = str(a)
                headers["X-MBX-ORDER-COUNT-1M"] = str(b)
            if ep.command is not None:
                cmd, snapshot = ep.command(self, req)
                holder = [cmd, snapshot, None]
                self._watch[id(cmd)] = holder

                def done(_record) -> None:
                    result = holder[2]
                    if isinstance(result, E.ApiError):
                        respond(*self._reply({"code": result.code, "msg": result.msg},
                                             result.status, headers, ip, now))
                    elif result is None:
                        err = E.unknown_error()
                        respond(*self._reply({"code": err.code, "msg": err.msg}, err.status,
                                             headers, ip, now))
                    else:
                        respond(*self._reply(result, 200, headers, ip, now))
                self.loop.submit(cmd, done)
                return
            task = asyncio.get_running_loop().create_task(ep.handler(self, req))
            task.add_done_callback(
                lambda t: self._finish(t, req, headers, ip, now, path, respond))
        except E.ApiError as err:
            respond(*self._reply({"code": err.code, "msg": err.msg}, err.status, headers, ip,
                                 now))
        except Exception:  # a bug: the client gets Binance's unknown error, the server goes on
            log.exception("request failed", path=path)
            err = E.unknown_error()
            respond(*self._reply({"code": err.code, "msg": err.msg}, err.status, headers, ip,
                                 now))

    def _finish(self, task: asyncio.Task, req: Request, headers: dict[str, str], ip: str,
                now: int, path: str, respond) -> None:
        if task.cancelled():
            return
        err = task.exception()
        if err is None:
            headers.update(req.headers)
            return respond(*self._reply(task.result(), 200, headers, ip, now))
        if not isinstance(err, E.ApiError):
            log.error("request failed", path=path, error=repr(err))
            err = E.unknown_error()
        respond(*self._reply({"code": err.code, "msg": err.msg}, err.status, headers, ip, now))

    def _reply(self, payload: Any, status: int, headers: dict[str, str], ip: str,
               now: int) -> tuple[int, bytes, dict[str, str]]:
        headers["X-MBX-USED-WEIGHT-1M"] = str(self.limits.weight.peek(ip, now))
        return status, _encode(payload), headers

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """aiohttp's path: WebSocket upgrades, and what the fast path hands over (chunked
        bodies, Expect)."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.ws.handle(request)
        ip = request.remote or ""
        try:
            body = await self._body(request)
        except E.ApiError as err:
            if err.status != 413:
                status, payload, headers = self._reply({"code": err.code, "msg": err.msg},
                                                       err.status, {}, ip, self.now())
                return web.Response(body=payload, status=status, headers=headers,
                                    content_type="application/json")
            body = None
        status, payload, headers = await self.dispatch(
            request.method, request.path, request.raw_path.partition("?")[2], body,
            request.headers.get("X-MBX-APIKEY", ""), ip)
        return web.Response(body=payload, status=status, headers=headers,
                            content_type=headers.pop("Content-Type", "application/json"))

    async def _body(self, request: web.BaseRequest) -> str:
        """The raw body (a form), at most `max_body` bytes (-1101 and HTTP 413 beyond)."""
        limit = self.config.max_body
        length = request.content_length
        if length is not None and length > limit:
            raise E.ApiError(-1101, "Too many parameters sent for this endpoint.", 413)
        if not request.body_exists:
            return ""
        if length is not None:
            data = await request.content.readexactly(length)
            try:
                return data.decode("ascii")
            except UnicodeDecodeError:
                raise E.error(-1100, "Illegal characters found in a parameter.") from None
        chunks, size = [], 0
        while True:
            chunk = await request.content.readany()
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise E.ApiError(-1101, "Too many parameters sent for this endpoint.", 413)
            chunks.append(chunk)
        try:
            return b"".join(chunks).decode("ascii")
        except UnicodeDecodeError:
            raise E.error(-1100, "Illegal characters found in a parameter.") from None

    def _authenticate(self, api_key: str, req: Request, security: str, raw_query: str,
                      body: str, now: int) -> None:
        if not api_key or not signing.KEY_RE.match(api_key):
            raise E.bad_key_format()
        key = self.keys.keys.get(api_key)
        if key is None or key.account is None:
            raise E.rejected_key()
        req.api_key = api_key
        req.account = key.account
        if security != SIGNED:
            return
        p = req.params
        timestamp = p.integer("timestamp", required=True)
        recv = p.integer("recvWindow")
        if recv is None:
            recv = signing.DEFAULT_RECV_WINDOW
        elif not 0 < recv <= signing.MAX_RECV_WINDOW:
            raise E.error(-1130, "Data sent for parameter 'recvWindow' is not valid.")
        signing.verify(key.secret, raw_query, body)
        signing.check_time(timestamp, recv, now)

    # -- helpers for endpoints --------------------------------------------------------------------
    def new_client_id(self) -> str:
        """Binance generates a client order id when none is sent: here a random prefix drawn
        at start and a counter (unique across restarts, cheap per order)."""
        self._client_ids += 1
        return f"{self._client_prefix}{self._client_ids}"
