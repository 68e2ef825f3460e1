"""Funding (SEED-NOTES §6): premium index, impact prices, the rate and its caps, and how a
settlement's payments are allocated. Pure functions on ints of 1e-8 units.

Premium index, sampled at each index price update of a symbol (from its book at that moment):
    impact notional   = 200 USDT / initial margin rate at max leverage = 200 x max leverage
                        (tier 1 of the bracket table in force: 15,000 USDT at 75x)
    impact bid / ask  = the average price of selling / buying the impact notional against the
                        book's bids / asks, walking levels (rounded outward: bid down, ask up);
                        0 when that side cannot fill the whole impact notional
    premium index     = (max(0, impact bid - index) - max(0, index - impact ask)) / index
                        (a missing impact price contributes 0; rounded toward zero)

Rate at each settlement (00:00, 08:00, 16:00 UTC):
    P  = Binance's average premium index (rules 2): the premium index in force is sampled every
         5 seconds of command time (at whole multiples of 5 s; a sample at the time of an index
         update takes the new value), and the interval's samples P1 ... Pn weigh 1, 2, ..., n:
         P = (1 P1 + 2 P2 + ... + n Pn) / (1 + 2 + ... + n), rounded toward zero (samples
         0.0001, 0.0002, 0.0006 give 0.00038333). Adding k samples of one value p after n is
         O(1): p x (k n + k (k + 1) / 2). With no sample yet, the current premium index.
         Rules 1 (logs of the first release): the time-weighted average sum(premium x ms) /
         sum(ms), rounded toward zero.
    F  = P + clamp(I - P, -0.05 %, +0.05 %),   I = 0.01 % per 8 hours
    capped F = clamp(F, -cap, +cap), cap = the symbol's absolute funding cap in force at the
         settlement time where one is set (ALLUSDT 3 %), else its multiplier (0.75 by default;
         catalogue data) x tier-1 MMR of the bracket table in force then (rounded down).

COIN-M contracts (engine.core.inverse): the impact notional is the same number of USD, reached
when the contracts walked are worth it (contracts x contract size), and the impact price is the
average in the coin's sense (a harmonic mean); a position pays or receives |qty| x size / mark
x |rate| in the coin (Binance: "nominal value = contract multiplier x contracts / mark price").

Payments (`allocate`): each position pays or receives |qty| x mark x |rate|; a positive rate
means longs pay shorts. Payers pay their exact amount rounded UP to 1e-8 USDT; the payers' total
is shared among receivers pro rata to |qty| by the largest-remainder method: each gets its share
rounded down, the units left over go one each to the largest remainders, ties to the lower
account id. Payments therefore sum to exactly zero, and no receiver gets less than its exact
amount rounded down.
"""
from __future__ import annotations

from engine.core import inverse
from engine.core.book import BUY, SELL, OrderBook
from engine.core.catalogue import SymbolSpec
from engine.core.fixed import SCALE, div_trunc

FUNDING_INTERVAL_MS = 8 * 3_600_000
INTEREST_RATE = 10_000  # 0.01 % per 8 hours
PREMIUM_CLAMP = 50_000  # 0.05 %
IMPACT_MARGIN = 200 * SCALE  # USDT
HISTORY_LIMIT = 1000  # funding rates kept per symbol (Binance's fundingRate limit)
SAMPLE_MS = 5_000  # the premium index is sampled every 5 seconds (rules 2)

_SCALE2 = SCALE * SCALE


def next_funding_after(t: int) -> int:
    """The first of 00:00, 08:00, 16:00 UTC strictly after t (ms)."""
    return (t // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


def impact_notional(max_leverage: int) -> int:
    """200 USDT / (1 / max leverage)."""
    return IMPACT_MARGIN * max_leverage


def impact_price(book: OrderBook, side: str, notional: int) -> int:
    """Average price of filling `notional` (USDT, 1e-8) against `side`'s resting orders (BUY:
    the bids, giving the impact bid; SELL: the asks, the impact ask); 0 if too thin."""
    target = notional * SCALE  # in 1e-16 (quantity unit x price unit)
    cum_qty = cum = 0
    for level in book.levels(side):
        price = level.price
        qty = level.total
        value = qty * price
        if cum + value >= target:
            den = cum_qty * price + target - cum  # total quantity x price, 1e-16
            num = target * price
            return num // den if side == BUY else -(-num // den)
        cum += value
        cum_qty += qty
    return 0


def impact_price_coin(book: OrderBook, side: str, usd_notional: int, size: int) -> int:
    """impact_price for a COIN-M book (contracts of `size` USD): engine.core.inverse."""
    walked = [(level.price, level.total) for level in book.levels(side)]
    return inverse.impact_price(walked, usd_notional, size, side == BUY)


def impact_prices(book: OrderBook, notional: int) -> tuple[int, int]:
    return impact_price(book, BUY, notional), impact_price(book, SELL, notional)


PREMIUM_LIMIT = 100 * SCALE  # +10,000 %: keeps accumulators in 64 bits; below -100 % is impossible


def premium_index(impact_bid: int, impact_ask: int, index: int) -> int:
    if index <= 0:
        return 0
    up = impact_bid - index if impact_bid > index else 0
    down = index - impact_ask if 0 < impact_ask < index else 0
    return min(div_trunc((up - down) * SCALE, index), PREMIUM_LIMIT)


def average_premium(acc: int, covered_ms: int, current: int) -> int:
    """Rules 1: the time-weighted average."""
    return div_trunc(acc, covered_ms) if covered_ms else current


def add_samples(n: int, weighted: int, premium: int, k: int) -> tuple[int, int]:
    """(n, sum of i x P_i) after k more samples of `premium` (the (n+1)-th to the (n+k)-th)."""
    return n + k, weighted + premium * (k * n + k * (k + 1) // 2)


def samples_between(first: int, end: int) -> int:
    """How many sample times first, first + 5 s, ... lie at or before `end`."""
    return (end - first) // SAMPLE_MS + 1 if end >= first else 0


def weighted_average_premium(n: int, weighted: int, current: int) -> int:
    """Rules 2: (1 P1 + ... + n Pn) / (1 + ... + n), rounded toward zero."""
    return div_trunc(2 * weighted, n * (n + 1)) if n else current


def funding_rate(avg_premium: int, interest: int = INTEREST_RATE,
                 clamp: int = PREMIUM_CLAMP) -> int:
    """F = P + clamp(I - P, -0.05 %, +0.05 %), before the cap."""
    return avg_premium + min(max(interest - avg_premium, -clamp), clamp)


def cap_rate(rate: int, cap: int) -> int:
    return min(max(rate, -cap), cap)


def default_cap(tier1_mmr: int, multiplier: int = 75_000_000) -> int:
    """multiplier (0.75 by default: seed 002) x tier-1 maintenance margin rate, rounded down."""
    return multiplier * tier1_mmr // SCALE


def funding_cap(spec: SymbolSpec, time: int) -> int:
    """The cap in force at `time`: the symbol's absolute cap where set, else its multiplier x
    tier-1 MMR of the bracket table in force then. Both are effective-dated catalogue data."""
    cap, multiplier = spec.funding_cap_at(time)
    if cap is not None:
        return cap
    return default_cap(spec.table_at(time).tiers[0].mmr, multiplier)


def settlement_rate(avg_premium: int, cap: int) -> int:
    return cap_rate(funding_rate(avg_premium), cap)


def allocate(positions: list[tuple[int, int]], mark: int, rate: int,
             contract_size: int = 0) -> list[tuple[int, int, int]]:
    """positions: (account, signed quantity) with quantity != 0, in account order. Returns
    (account, wallet change, quantity) in the same order, leaving out receivers whose share
    rounds to 0; the changes sum to exactly zero. Nothing is paid when the rate or the mark is
    0, or when one side has no positions. `contract_size` > 0: a COIN-M symbol, paid in the
    coin."""
    if rate == 0 or mark <= 0:
        return []
    longs_pay = rate > 0
    unit = mark * (rate if rate > 0 else -rate)  # per 1e-8 of quantity, in 1e-24 USDT
    paid: list[tuple[int, int, int]] = []
    receivers: list[tuple[int, int]] = []
    total = 0
    weight = 0
    for aid, qty in positions:
        if (qty > 0) == longs_pay:
            size = qty if qty > 0 else -qty
            if contract_size:
                amount = inverse.funding_amount(size, contract_size, mark, rate)
            else:
                amount = -(-(size * unit) // _SCALE2)
            total += amount
            paid.append((aid, -amount, qty))
        else:
            receivers.append((aid, qty))
            weight += qty if qty > 0 else -qty
    if not paid or not receivers:
        return []
    shares: dict[int, int] = {}
    remainders = []
    given = 0
    for aid, qty in receivers:
        size = qty if qty > 0 else -qty
        share, rem = divmod(total * size, weight)
        shares[aid] = share
        given += share
        if rem:
            remainders.append((-rem, aid))
    left = total - given
    if left:
        remainders.sort()
        for _, aid in remainders[:left]:
            shares[aid] += 1
    received = [(aid, shares[aid], qty) for aid, qty in receivers if shares[aid]]
    out = paid + received
    out.sort()
    return out
