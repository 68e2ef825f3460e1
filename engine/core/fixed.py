"""Fixed-point numbers: every price, quantity, amount and rate is an int of 1e-8 units.

One scale for everything keeps conversions out of the hot path:
    price 31,967.27 USDT      -> 3_196_727_000_000
    quantity 0.001 BTC        -> 100_000
    rate 0.40 % (0.004)       -> 400_000
    amount 1,300 USDT         -> 130_000_000_000

product(a, b) of two scaled values is a * b // SCALE. For a trade notional it is exact because
the catalogue guarantees tick decimals + step decimals <= 8 (checked on load). Where a result
can have more than eight decimals (mark price x quantity, notional x rate) the caller chooses
the rounding: `mul_floor` or `mul_ceil`. Decimal strings exist only at the edges (JSON, CLI):
their parser and formatter live in proto.decimals, re-exported here.
"""
from __future__ import annotations

from typing import Final

from proto import decimals
from proto.decimals import DECIMALS, DecimalFormatError, fmt, parse

# a literal here, not proto's name: mypyc inlines a Final literal wherever the core uses it
# (an imported module global would be a dictionary lookup on every use)
SCALE: Final = 100_000_000
assert SCALE == decimals.SCALE

# the most money the venue holds in total (deposits and insurance funding), so that every sum
# the core keeps (wallets, totals, the insurance fund) stays within the log's 64-bit integers
MAX_TOTAL: Final = (1 << 63) - 1

__all__ = ["SCALE", "MAX_TOTAL", "DECIMALS", "DecimalFormatError", "parse", "fmt", "mul_floor",
           "mul_down", "mul_ceil", "ceil_div", "div_trunc", "round_half_up"]


def mul_down(qty: int, price: int) -> int:
    """qty x price // SCALE, exactly (a notional), computed as qty x whole units + qty x
    fraction // SCALE: for everyday sizes the operands stay within 63 bits, where a compiled
    core's integers are machine words, instead of a 1e-16 product that needs a long."""
    return qty * (price // SCALE) + qty * (price % SCALE) // SCALE


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
