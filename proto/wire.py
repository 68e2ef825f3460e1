"""The socket protocol: framing and message shapes (one port, two framings).

On connect the server sends one JSON line, {"type": "hello", "nonce": ...}. The client's first
byte then chooses the framing for the rest of the connection, both ways:
    0x00         (a selector, not part of a frame) length-prefixed msgpack: u32 big-endian
                 length, then a msgpack map
    "{" or blank JSON lines: one JSON object per line (type orders with `nc`)
Both carry the same maps, with prices, quantities and amounts as decimal strings.

Client -> server, each with a client request id "id" (an int or string):
    {"id": 1, "op": "login", "apiKey": "...", "signature": hex HMAC-SHA256(secret, nonce)}
    {"id": 2, "op": "newOrder", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", ...}
        any core command of proto.commands, without "account": the login decides it
    {"id": 3, "op": "subscribe", "streams": ["user", "depth@BTCUSDT", "trade@BTCUSDT", ...]}
    {"id": 4, "op": "query", "query": "positionRisk" | "account" | "openOrders" | "depth", ...}
    {"id": 5, "op": "createApiKey", "account": 7}          (admin)
Server -> client:
    {"type": "hello", "nonce": "...", "server": "perpengine"}        on connect (JSON line)
    {"id": 2, "ok": true, "result": {...}}                             exactly one per request
    {"id": 2, "ok": false, "code": -2011, "msg": "Unknown order sent."}
    {"stream": "depth@BTCUSDT", "data": {...}}                         subscribed streams
"""
from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

import msgspec

LENGTH = struct.Struct(">I")
MSGPACK, JSONL = "msgpack", "json"

_mp_encode = msgspec.msgpack.Encoder().encode
_mp_decode = msgspec.msgpack.Decoder().decode
_js_encode = msgspec.json.Encoder().encode
_js_decode = msgspec.json.Decoder().decode


def sign(secret: str, nonce: str) -> str:
    """The login signature: hex HMAC-SHA256 of the connection's nonce with the key's secret."""
    return hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()


class FrameError(ValueError):
    """A frame that cannot be read: the connection is answered with an error and closed."""

    def __init__(self, msg: str, code: int = -1100) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def encode(message: dict, mode: str) -> bytes:
    if mode == MSGPACK:
        body = _mp_encode(message)
        return LENGTH.pack(len(body)) + body
    return _js_encode(message) + b"\n"


def decode_body(body: bytes, mode: str) -> Any:
    try:
        return _mp_decode(body) if mode == MSGPACK else _js_decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise FrameError(f"malformed {mode} frame: {exc}") from None
    except RecursionError:
        raise FrameError(f"malformed {mode} frame: nested too deeply") from None


def detect_mode(first_byte: int) -> str:
    if first_byte == 0:
        return MSGPACK
    if first_byte in b"{[ \t\r\n":
        return JSONL
    raise FrameError(f"unknown framing: first byte 0x{first_byte:02x} (expected 0x00 or '{{')")
