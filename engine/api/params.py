"""A request's parameters: the query string and the form body, as Binance reads them (the query
string wins when a name is in both), each read with its range and format checked, with
Binance's codes: -1102 missing, -1100 illegal characters, -1130 an invalid value, -1101 too
many or duplicated, -1121 an unknown symbol."""
from __future__ import annotations

import re
from urllib.parse import unquote_plus

from engine.api import errors as E
from proto import decimals

MAX_PARAMS = 200  # far more than any endpoint takes; -1101 beyond
MAX_INT = (1 << 63) - 1
DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
DECIMAL_LEGAL = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
INT_LEGAL = "^[0-9]{1,20}$"
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
MAX_DECIMAL = 10 ** 11 * decimals.SCALE  # 1e11: beyond any price, quantity or amount here


def split(raw: str) -> list[tuple[str, str]]:
    """'a=1&b=x%20y' -> [('a', '1'), ('b', 'x y')]; at most MAX_PARAMS pairs (-1101)."""
    if not raw:
        return []
    n = raw.count("&") + 1
    if n > MAX_PARAMS:
        raise E.too_many_parameters(MAX_PARAMS, n)
    if "%" not in raw and "+" not in raw:  # nothing to decode: the common case
        return [part.partition("=")[::2] for part in raw.split("&") if part]
    out = []
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            out.append((unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict")))
        except UnicodeDecodeError:
            raise E.error(-1100, "Illegal characters found in a parameter.") from None
    return out


class Params:
    __slots__ = ("values",)

    def __init__(self, query: list[tuple[str, str]], body: list[tuple[str, str]]) -> None:
        values = dict(body)
        if len(values) != len(body):
            raise E.duplicate_parameter()
        if query:
            q = dict(query)
            if len(q) != len(query):
                raise E.duplicate_parameter()
            values.update(q)  # the query string's value wins
        self.values = values

    def __contains__(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def raw(self, name: str) -> str | None:
        v = self.values.get(name)
        return v if v else None

    def get_ci(self, name: str) -> str | None:
        """A name matched case-insensitively (ccxt sends `orderidlist` for orderIdList)."""
        v = self.raw(name)
        if v is not None:
            return v
        low = name.lower()
        for k, v in self.values.items():
            if k.lower() == low and v:
                return v
        return None

    # -- typed readers ------------------------------------------------------------------------------
    def string(self, name: str, required: bool = False, max_len: int = 64) -> str | None:
        v = self.raw(name)
        if v is None:
            if required:
                raise E.mandatory(name)
            return None
        if len(v) > max_len or not v.isprintable():
            raise E.illegal(name, f"^.{{1,{max_len}}}$")
        return v

    def enum(self, name: str, allowed, required: bool = False) -> str | None:
        v = self.raw(name)
        if v is None:
            if required:
                raise E.mandatory(name)
            return None
        if v not in allowed:
            raise E.invalid_value(name)
        return v

    def integer(self, name: str, required: bool = False, low: int = 0,
                high: int = MAX_INT) -> int | None:
        v = self.raw(name)
        if v is None:
            if required:
                raise E.mandatory(name)
            return None
        if not (v.isascii() and v.isdigit()) or len(v) > 20:
            if v.startswith("-") and v[1:].isascii() and v[1:].isdigit():
                raise E.invalid_value(name)
            raise E.illegal(name, INT_LEGAL)
        n = int(v)
        if not low <= n <= high:
            raise E.invalid_value(name)
        return n

    def decimal(self, name: str, required: bool = False) -> int | None:
        """A non-negative decimal with at most eight places -> 1e-8 units."""
        v = self.raw(name)
        if v is None:
            if required:
                raise E.mandatory(name)
            return None
        if not DECIMAL_RE.match(v):
            raise E.illegal(name, DECIMAL_LEGAL)
        try:
            units = decimals.parse(v)
        except decimals.DecimalFormatError:  # more than eight decimals
            raise E.error(-1111, "Precision is over the maximum defined for this asset.") \
                from None
        if units > MAX_DECIMAL:
            raise E.invalid_value(name)
        return units

    def boolean(self, name: str, default: bool = False) -> bool:
        v = self.raw(name)
        if v is None:
            return default
        low = v.lower()
        if low not in ("true", "false"):
            raise E.invalid_value(name)
        return low == "true"

    def flag(self, name: str) -> bool | None:
        """"true" / "false" (any case) as a bool; None when not sent (hedge mode refuses a
        reduceOnly even when false, so "not sent" must stay distinguishable)."""
        v = self.raw(name)
        if v is None:
            return None
        low = v.lower()
        if low not in ("true", "false"):
            raise E.invalid_value(name)
        return low == "true"

    def symbol(self, symbols, required: bool = True, name: str = "symbol") -> str | None:
        v = self.raw(name)
        if v is None:
            if required:
                raise E.mandatory(name)
            return None
        if v not in symbols:
            raise E.invalid_symbol()
        return v

    def client_id(self, name: str) -> str | None:
        v = self.raw(name)
        if v is None:
            return None
        if not CLIENT_ID_RE.match(v):
            raise E.error(-4015, "Client order id is not valid.")
        return v
