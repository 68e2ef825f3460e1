"""The edge's range checks: every integer a command carries, at any depth, must be one the log
can encode and one Binance's own types allow, or the request is refused before it reaches the
sequencer (-1102, the field named; nothing changes).

    the log          msgpack integers: -2^63 .. 2^64-1 (a record that cannot be encoded would
                     stop the server after the core already ran the command)
    Binance          LONG (ids, amounts in 1e-8 units): -2^63 .. 2^63-1, so a decimal is at most
                     92233720368.54775807; INT (leverage): -2^31 .. 2^31-1; times in ms:
                     0 .. 253402300799999 (9999-12-31T23:59:59.999Z, Binance's goodTillDate
                     bound); a decimal with more than 8 places is -1111

Fields not named here are LONG. The checks walk the converted command (nested maps, lists and
structs included), so a command added later is covered without listing its fields.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
TIME_MIN, TIME_MAX = 0, 253_402_300_799_999
DECIMAL_MAX = LONG_MAX  # in 1e-8 units: 92233720368.54775807

INT_FIELDS = frozenset({"leverage"})  # Binance INT
TIME_FIELDS = frozenset({"registeredAt", "onboardTime", "delistTime"})  # ms, or ISO-8601 text

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def bounds(name: str) -> tuple[int, int]:
    """The (min, max) an integer field of this wire name may hold."""
    if name in INT_FIELDS:
        return INT_MIN, INT_MAX
    if name in TIME_FIELDS:
        return TIME_MIN, TIME_MAX
    return LONG_MIN, LONG_MAX


def iso_ms(text: str) -> int:
    """'2022-09-13T07:00:00Z' -> 1663052400000 (as engine.core.timeutil.parse_iso_ms)."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"not an ISO-8601 time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // _MS


_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def out_of_range(value: Any, name: str = "") -> str | None:
    """The wire name of the first integer out of its range in `value` (a command), or None."""
    t = type(value)
    if t is int:
        lo, hi = bounds(name)
        return None if lo <= value <= hi else name
    if t is bool or t is str or value is None:
        return None
    if isinstance(value, msgspec.Struct):
        names = _FIELDS.get(t)
        if names is None:  # once per type: msgspec.structs.fields is slow
            names = _FIELDS[t] = tuple((f.name, f.encode_name)
                                       for f in msgspec.structs.fields(t))
        for attr, wire_name in names:
            bad = out_of_range(getattr(value, attr), wire_name)
            if bad is not None:
                return bad
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            bad = out_of_range(item, name)  # a map's values are of its field's kind
            if bad is not None:
                return f"{name}.{key}" if bad == name else bad
        return None
    if isinstance(value, (list, tuple)):
        for item in value:
            bad = out_of_range(item, name)
            if bad is not None:
                return bad
    return None
