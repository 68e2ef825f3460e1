"""The REST API's HTTP/1.1 fast path: an asyncio Protocol for what Binance's clients send (a
request line, headers, a Content-Length body; keep-alive, pipelining), answered in order.

aiohttp costs about 85 µs of CPU per request here before any work is done; this path about 30,
which is what lets the HTTP edge stay close to the native protocol's cost per order. Whatever it
does not handle itself it hands, on the same connection, to aiohttp (engine.api.app's handler):
WebSocket upgrades, chunked bodies, `Expect: 100-continue`. The connection's protocol is
switched (transport.set_protocol) and aiohttp is given the bytes already read.

Bounded: a request line with headers of at most `max_line` + 64 KiB, a body of at most
`max_body` (413 and -1101 beyond, the rest of it read and dropped, then the connection closed),
at most 100 requests of one connection in flight (reading pauses beyond).
"""
from __future__ import annotations

import asyncio
from collections import deque

import structlog

log = structlog.get_logger("api.http")

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error"}
HEADER_ROOM = 64 * 1024
MAX_IN_FLIGHT = 100
HANDOVER = ("upgrade", "transfer-encoding", "expect")
DISCARD_LIMIT = 64 * 1024 * 1024  # a refused body is read and dropped up to this, then closed


class HttpProtocol(asyncio.Protocol):
    def __init__(self, api, fallback, conns: set) -> None:
        self.api = api
        self.fallback = fallback  # aiohttp's web.Server: a protocol factory
        self.conns = conns
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: deque[list] = deque()  # [response bytes or None, close after]
        self.ip = ""
        self.paused = False
        self.closing = False
        self.discard = 0  # bytes of a refused body still to drop
        self.close_when_done = False
        self.limit = api.config.max_line + HEADER_ROOM

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.ip = peer[0] if peer else ""
        self.conns.add(self)

    def connection_lost(self, exc) -> None:
        self.conns.discard(self)
        self.closing = True

    def data_received(self, data: bytes) -> None:
        if self.discard:
            n = min(self.discard, len(data))
            self.discard -= n
            if self.discard == 0:
                self.close_when_done = True
                self._flush()
            return
        if self.closing:
            return
        self.buf += data
        buf = self.buf
        while buf and not self.closing:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.limit:
                    self._fail(414, -1101, "Request line and headers too long.")
                return
            try:
                head = bytes(buf[:end]).decode("latin-1")
                lines = head.split("\r\n")
                method, target, version = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if not sep:
                        raise ValueError(line)
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if length < 0:
                    raise ValueError("negative length")
            except ValueError:
                self._fail(400, -1000, "Malformed HTTP request.")
                return
            if any(h in headers for h in HANDOVER) or not version.startswith("HTTP/1."):
                self._handover()
                return
            keep_alive = headers.get("connection", "").lower() != "close" if \
                version == "HTTP/1.1" else headers.get("connection", "").lower() == "keep-alive"
            path, _, query = target.partition("?")
            api_key = headers.get("x-mbx-apikey", "")
            if length > self.api.config.max_body:  # refused unread; the body is dropped
                del buf[:end + 4]
                self.discard = max(0, min(length, DISCARD_LIMIT) - len(buf))
                self.close_when_done = self.discard == 0
                buf.clear()
                self.closing = True
                slot = [None, True]
                self.pending.append(slot)
                self._start(slot, method, path, query, None, api_key)
                return
            if len(buf) < end + 4 + length:
                return
            body = bytes(buf[end + 4:end + 4 + length])
            del buf[:end + 4 + length]
            try:
                text = body.decode("ascii")
            except UnicodeDecodeError:
                text = ""
                slot = [None, not keep_alive]
                self.pending.append(slot)
                self._respond_error(slot, 400, -1100, "Illegal characters found in a parameter.")
                continue
            slot = [None, not keep_alive]
            self.pending.append(slot)
            self._start(slot, method, path, query, text, api_key)
            if not keep_alive:
                self.closing = True
        if len(self.pending) >= MAX_IN_FLIGHT and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    # -- answering, in order ----------------------------------------------------------------------
    def _start(self, slot: list, method: str, path: str, query: str, body, api_key: str) -> None:
        def respond(status: int, payload: bytes, headers: dict[str, str]) -> None:
            slot[0] = _response(status, payload, headers, slot[1])
            self._flush()
        self.api.handle(method, path, query, body, api_key, self.ip, respond)

    def _respond_error(self, slot: list, status: int, code: int, msg: str) -> None:
        payload = ('{"code":%d,"msg":"%s"}' % (code, msg)).encode()
        slot[0] = _response(status, payload, {}, slot[1])
        self._flush()

    def _flush(self) -> None:
        transport = self.transport
        pending = self.pending
        while pending and pending[0][0] is not None:
            data, close = pending.popleft()
            if transport.is_closing():
                pending.clear()
                return
            transport.write(data)
            if close and not self.discard:
                transport.close()
                pending.clear()
                return
        if self.close_when_done and not pending:
            transport.close()
            return
        if self.paused and len(pending) < MAX_IN_FLIGHT // 2:
            self.paused = False
            transport.resume_reading()

    def _fail(self, status: int, code: int, msg: str) -> None:
        """A request that cannot be read: answer it (after those before it) and close."""
        slot = [None, True]
        self.pending.append(slot)
        self.buf.clear()
        self.closing = True
        self._respond_error(slot, status, code, msg)

    def _handover(self) -> None:
        """aiohttp takes the connection from here, with the bytes read so far."""
        if self.pending:  # a WebSocket upgrade after pipelined requests: not for us
            self._fail(400, -1000, "Upgrade after pipelined requests.")
            return
        self.conns.discard(self)
        protocol = self.fallback()
        transport = self.transport
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        data, self.buf = bytes(self.buf), bytearray()
        self.closing = True
        protocol.data_received(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _response(status: int, payload: bytes, headers: dict[str, str], close: bool) -> bytes:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Length: {len(payload)}\r\n"]
    if "Content-Type" not in headers:  # the web page's static files name their own
        head.append("Content-Type: application/json\r\n")
    for k, v in headers.items():
        head.append(f"{k}: {v}\r\n")
    if close:
        head.append("Connection: close\r\n")
    head.append("\r\n")
    return "".join(head).encode("latin-1") + payload
