"""Mark price (SEED-NOTES §6): mark = median(price1, price2, last price), exact on ints.

    price1 = index x (1 + last funding rate x time until the next funding / 8 h)
    price2 = index + moving average of (mid - index)
    last   = the last trade price of the contract; before any trade the index stands in

The moving average is over the last BASIS_WINDOW samples of (mid - index), one sample at each
index price update of the symbol when its book has both a best bid and a best ask (mid =
(best bid + best ask) / 2, rounded down); no sample yet: an average of 0 (price2 = index).
Divisions round toward zero, so a rounding never favours longs over shorts.
"""
from __future__ import annotations

from engine.core.fixed import SCALE, div_trunc

FUNDING_INTERVAL_MS = 8 * 3_600_000
BASIS_WINDOW = 60  # samples (assumed; Binance's window is time-based and not fully published)


def median3(a: int, b: int, c: int) -> int:
    return max(min(a, b), min(max(a, b), c))


def price1(index: int, last_rate: int, ms_to_funding: int) -> int:
    return index + div_trunc(index * last_rate * ms_to_funding, SCALE * FUNDING_INTERVAL_MS)


def price2(index: int, basis_average: int) -> int:
    return index + basis_average


def basis_average(basis_sum: int, samples: int) -> int:
    return div_trunc(basis_sum, samples) if samples else 0


def mark_price(index: int, last_rate: int, ms_to_funding: int, basis_avg: int,
               last_price: int) -> int:
    return median3(price1(index, last_rate, ms_to_funding), price2(index, basis_avg),
                   last_price or index)
