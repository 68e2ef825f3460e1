"""Decimal strings at the edges, integers of 1e-8 units inside.

Every price, quantity, amount and rate in commands and events is an int of 1e-8 units; this
module is the one place that turns them into text and back (JSON, the CLI, messages).
"""
from __future__ import annotations

SCALE = 100_000_000
DECIMALS = 8


class DecimalFormatError(ValueError):
    """A decimal string that is not a plain number with at most eight decimals."""


class PrecisionError(DecimalFormatError):
    """A well-formed decimal with more than eight decimals (Binance's -1111)."""


def parse(text: str | int) -> int:
    """'31967.27' -> 3196727000000. Exact: rejects more than eight decimals, exponents, NaN."""
    if isinstance(text, bool):
        raise DecimalFormatError(f"not a decimal: {text!r}")
    if isinstance(text, int):
        return text * SCALE
    if not isinstance(text, str):
        raise DecimalFormatError(f"expected a decimal string, got {type(text).__name__}")
    s = text.strip()
    negative = s.startswith("-")
    if negative or s.startswith("+"):
        s = s[1:]
    whole, dot, frac = s.partition(".")
    if not (whole or frac) or (whole and not whole.isdigit()) or (frac and not frac.isdigit()) \
            or (dot and not frac and not whole):
        raise DecimalFormatError(f"not a decimal: {text!r}")
    if not whole.isascii() or not frac.isascii():
        raise DecimalFormatError(f"not a decimal: {text!r}")
    frac = frac.rstrip("0")
    if len(frac) > DECIMALS:
        raise PrecisionError(f"more than {DECIMALS} decimals: {text!r}")
    units = int(whole or "0") * SCALE + int(frac.ljust(DECIMALS, "0") or "0")
    return -units if negative else units


def fmt(units: int) -> str:
    """3196727000000 -> '31967.27'; trailing zeros dropped, no exponent."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), SCALE)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(DECIMALS, '0').rstrip('0')}"
