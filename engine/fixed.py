"""Fixed-point numbers: every price, quantity, amount and rate is an int of 1e-8 units.

One scale for everything keeps conversions out of the hot path:
    price 31,967.27 USDT      -> 3_196_727_000_000
    quantity 0.001 BTC        -> 100_000
    rate 0.40 % (0.004)       -> 400_000
    amount 1,300 USDT         -> 130_000_000_000

product(a, b) of two scaled values is a * b // SCALE. For a trade notional it is exact because
the catalogue guarantees tick decimals + step decimals <= 8 (checked on load). Where a result
can have more than eight decimals (mark price x quantity, notional x rate) the caller chooses
the rounding: `mul_floor` or `mul_ceil`. Decimal strings exist only at the edges (JSON, CLI).
"""
from __future__ import annotations

SCALE = 100_000_000
DECIMALS = 8


class DecimalFormatError(ValueError):
    """A decimal string that is not a plain number with at most eight decimals."""


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
        raise DecimalFormatError(f"more than {DECIMALS} decimals: {text!r}")
    units = int(whole or "0") * SCALE + int(frac.ljust(DECIMALS, "0") or "0")
    return -units if negative else units


def fmt(units: int) -> str:
    """3196727000000 -> '31967.27'; trailing zeros dropped, no exponent."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), SCALE)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(DECIMALS, '0').rstrip('0')}"


def mul_floor(a: int, b: int) -> int:
    """a x b rounded toward minus infinity."""
    return a * b // SCALE


def mul_ceil(a: int, b: int) -> int:
    """a x b rounded toward plus infinity (requirements: margin, fees)."""
    return -(-a * b // SCALE)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def div_trunc(a: int, b: int) -> int:
    """Integer division rounding toward zero (b > 0)."""
    return a // b if a >= 0 else -(-a // b)


def round_half_up(units: int, decimals: int) -> int:
    """Round to `decimals` places (half away from zero); result still in 1e-8 units."""
    step = 10 ** (DECIMALS - decimals)
    q, r = divmod(abs(units), step)
    if 2 * r >= step:
        q += 1
    return (q * step) if units >= 0 else -(q * step)
