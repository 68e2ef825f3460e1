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
    P  = time-weighted average of the premium index over the interval: each sample weighs the
         command time it stayed in force (until the next sample or the settlement), exactly as
         sum(premium x ms) / sum(ms), rounded toward zero. The interval starts at the previous
         settlement, or at the symbol's first index price; with no time covered yet, the
         current premium index.
    F  = P + clamp(I - P, -0.05 %, +0.05 %),   I = 0.01 % per 8 hours
    capped F = clamp(F, -cap, +cap), cap = the symbol's funding cap in force at the settlement
         time where one is set (ALLUSDT 3 %), else 0.75 x tier-1 MMR of the bracket table in
         force at the settlement time (rounded down).
Note: Binance's published P weights the i-th of n regular samples by i; with samples at
irregular command times the project uses the plain duration weighting.

Payments (`allocate`): each position pays or receives |qty| x mark x |rate|; a positive rate
means longs pay shorts. Payers pay their exact amount rounded UP to 1e-8 USDT; the payers' total
is shared among receivers pro rata to |qty| by the largest-remainder method: each gets its share
rounded down, the units left over go one each to the largest remainders, ties to the lower
account id. Payments therefore sum to exactly zero, and no receiver gets less than its exact
amount rounded down.
"""
from __future__ import annotations

from engine.core.book import BUY, SELL, OrderBook
from engine.core.catalogue import SymbolSpec
from engine.core.fixed import SCALE, div_trunc

FUNDING_INTERVAL_MS = 8 * 3_600_000
INTEREST_RATE = 10_000  # 0.01 % per 8 hours
PREMIUM_CLAMP = 50_000  # 0.05 %
IMPACT_MARGIN = 200 * SCALE  # USDT
HISTORY_LIMIT = 1000  # funding rates kept per symbol (Binance's fundingRate limit)

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
    if side == BUY:
        prices, levels = reversed(book.bid_prices), book.bids
    else:
        prices, levels = book.ask_prices, book.asks
    for price in prices:
        qty = levels[price].total
        value = qty * price
        if cum + value >= target:
            den = cum_qty * price + target - cum  # total quantity x price, 1e-16
            num = target * price
            return num // den if side == BUY else -(-num // den)
        cum += value
        cum_qty += qty
    return 0


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
    return div_trunc(acc, covered_ms) if covered_ms else current


def funding_rate(avg_premium: int, interest: int = INTEREST_RATE,
                 clamp: int = PREMIUM_CLAMP) -> int:
    """F = P + clamp(I - P, -0.05 %, +0.05 %), before the cap."""
    return avg_premium + min(max(interest - avg_premium, -clamp), clamp)


def cap_rate(rate: int, cap: int) -> int:
    return min(max(rate, -cap), cap)


def default_cap(tier1_mmr: int) -> int:
    """0.75 x tier-1 maintenance margin rate (seed 002), rounded down."""
    return 3 * tier1_mmr // 4


def funding_cap(spec: SymbolSpec, time: int) -> int:
    """The cap in force at `time`: the symbol's own where set, else 0.75 x tier-1 MMR of the
    bracket table in force then. Both are effective-dated catalogue data."""
    cap = spec.funding_cap_at(time)
    if cap is not None:
        return cap
    return default_cap(spec.table_at(time).tiers[0].mmr)


def settlement_rate(avg_premium: int, cap: int) -> int:
    return cap_rate(funding_rate(avg_premium), cap)


def allocate(positions: list[tuple[int, int]], mark: int, rate: int) -> list[tuple[int, int, int]]:
    """positions: (account, signed quantity) with quantity != 0, in account order. Returns
    (account, wallet change, quantity) in the same order, leaving out receivers whose share
    rounds to 0; the changes sum to exactly zero. Nothing is paid when the rate or the mark is
    0, or when one side has no positions."""
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
