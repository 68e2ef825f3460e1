"""Binance's request signing: HMAC-SHA256 (hex, case-insensitive) of `totalParams`, the raw
query string followed by the raw body with nothing between them, less the `signature`
parameter; `timestamp` within `recvWindow` (default 5,000 ms, at most 60,000) of the server's
time and not more than 1,000 ms ahead of it."""
from __future__ import annotations

import hashlib
import hmac
import re

from engine.api import errors as E

_SIGNATURE = re.compile(r"(?:^|&)signature=([^&]*)")
KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000


def split_signature(part: str) -> tuple[str, str | None]:
    """(the part without its signature parameter, the signature or None)."""
    m = _SIGNATURE.search(part)
    if m is None:
        return part, None
    start, end = m.span()
    if start == 0 and end < len(part) and part[end] == "&":
        end += 1
    return part[:start] + part[end:], m.group(1)


def verify(secret: str, query: str, body: str) -> None:
    """Raise -1102 without a signature, -1022 with a wrong one."""
    q, sig_q = split_signature(query)
    if sig_q is not None:
        signature, payload = sig_q, q + body
    else:
        b, signature = split_signature(body)
        payload = query + b
    if not signature:
        raise E.mandatory("signature")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise E.bad_signature()


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_time(timestamp: int, recv_window: int, now: int) -> None:
    if timestamp >= now + 1000:
        raise E.ahead_of_server()
    if now - timestamp > recv_window:
        raise E.outside_window()
