"""COIN-M (inverse) arithmetic, exact on ints of 1e-8 units (SEED-NOTES §11; Binance's COIN-M
liquidation-price FAQ).

A COIN-M contract is worth a fixed `size` in USD (BTCUSD_PERP 100, ETHUSD_PERP 10); quantities
are whole contracts; margin, fees, PnL and the maintenance amount are in the coin. With q the
signed quantity (1e-8 contracts), s the size (1e-8 USD) and P a price (1e-8 USD per coin):

    coin value of q contracts at P  = |q| x s / P       in 1e-8 coin (q x s / P, units cancel)
    a position's cost basis         = -(the coin value it was opened at), signed: -q x s / EP
    value at the mark m             = -q x s / m
    unrealized PnL                  = value - cost = q x s x (1/EP - 1/m)        (long)
    maintenance margin              = |q| x s / m x MMR - cum   (tier by the coin notional)

Storing the cost basis negated makes every identity of the linear contracts hold unchanged
(uPnL = value - cost; wallets - costs + fees conserved per asset; the partial-close rule of
engine.core.accounts), so the position code is shared.

Roundings, each on purpose:
    a trade's coin value            down, to 1e-8 coin, once per trade; both sides book that
                                    same value, so the conservation identity stays exact to the
                                    unit (Binance books in 1e-8 coin too)
    fees                            trade coin value x rate, up
    value at the mark (uPnL)        down (floor of -q x s / m): the venue never credits a
                                    fraction it does not have
    notional at the mark (MM, IM)   |q| x s / m down; MM and IM then round up as for USD-M
    an open order's coin notional   per contract, up (value of one contract at its price, x
                                    contracts): exact and additive over the orders of a side
    an order's cost per contract    size / assumed price, up; its open loss per contract up
    entry price (display)           |q| x s / |cost|, half up
    funding payment                 |q| x s / mark x |rate|, payers up (receivers share it
                                    as for USD-M: engine.core.funding.allocate)
    liquidation price (display)     half up; bankruptcy price to the tick away from the account
"""
from __future__ import annotations

from typing import Iterable

from engine.core.catalogue import BracketTable
from engine.core.fixed import SCALE


def coin_value(qty: int, size: int, price: int) -> int:
    """|qty| contracts of `size` USD at `price`, in 1e-8 coin, rounded down."""
    return (qty if qty >= 0 else -qty) * size // price


def contract_value_up(size: int, price: int) -> int:
    """One contract at `price`, in 1e-8 coin, rounded up (an order's notional and cost)."""
    return -(-size * SCALE // price)


def order_notional(qty: int, size: int, price: int) -> int:
    """The coin notional of an order of `qty` (whole contracts) at `price`: per contract,
    rounded up; additive over orders."""
    return qty // SCALE * contract_value_up(size, price)


def open_loss_per_contract(size: int, mark: int, price: int) -> int:
    """A buy above the mark (or a sell below it) loses s x |1/mark - 1/price| per contract at
    once: 1e-8 coin, rounded up; 0 when it does not."""
    if price == mark:
        return 0
    diff = price - mark if price > mark else mark - price
    return -(-size * diff * SCALE // (mark * price))


def value_at(qty: int, cost: int, size: int, mark: int) -> int:
    """The position's value at `mark` (-q x s / m, rounded down); before any mark, -cost's
    opposite: the value it was opened at (uPnL 0)."""
    if not mark:
        return cost
    return -qty * size // mark


def notional_at(qty: int, cost: int, size: int, mark: int) -> int:
    """The signed coin notional at `mark` (sign of qty; magnitude rounded down); before any
    mark, the coin value it was opened at."""
    if not mark:
        return -cost
    n = (qty if qty >= 0 else -qty) * size // mark
    return n if qty >= 0 else -n


def fill_result(qty: int, cost: int, dq: int, price: int, size: int) -> tuple[int, int, int]:
    """Position (qty, cost) trades signed dq at price -> (new qty, new cost, realized PnL), all
    in the coin. engine.core.accounts.fill_result with the trade's value -coin value for a buy
    (a long's cost basis is negative) and +coin value for a sell."""
    trade = dq if dq > 0 else -dq
    value = trade * size // price
    if qty == 0 or (qty > 0) == (dq > 0):
        return qty + dq, cost + (-value if dq > 0 else value), 0
    held = qty if qty > 0 else -qty
    if trade < held:  # partial reduction
        removed = cost * trade // held if cost >= 0 else -((-cost) * trade // held)
        closing = -value if qty > 0 else value
        return qty + dq, cost - removed, closing - removed
    closing_value = held * size // price
    realized = (-closing_value if qty > 0 else closing_value) - cost
    rest = trade - held
    if rest == 0:
        return 0, 0, realized
    rest_value = value - closing_value
    return qty + dq, (-rest_value if dq > 0 else rest_value), realized


def entry_price(qty: int, cost: int, size: int) -> int:
    """|q| x s / |cost| (the harmonic mean of the fills' prices), half up; 0 when flat."""
    if not qty or not cost:
        return 0
    num = (qty if qty >= 0 else -qty) * size
    den = cost if cost >= 0 else -cost
    return (2 * num + den) // (2 * den)


def liquidation_price_legs(table: BracketTable, wallet: int, other_mm: int, other_upnl: int,
                           legs: list[tuple[int, int]], size: int) -> int | None:
    """The COIN-M liquidation price (Binance's COIN-M FAQ; one-way or both hedge legs): where
    the scope's margin balance equals its maintenance margin. With x = 1/P everything is linear:
        MM   = sum |q_i| s x MMR_i - cum_i         balance = W' + sum (-q_i s x) - sum cost_i
    so  P = s sum (|q_i| MMR_i + q_i) / (W' + sum cum_i - sum cost_i),  W' = WB - TMM1 + UPNL1,
    which for one long is B CM (1 + MMR) / (WB - TMM1 + UPNL1 + cum + B CM / EP) as the FAQ
    writes it. Each leg's tier is re-selected from its coin notional at P until stable. Half
    up; None when there is none (P <= 0 or unbounded)."""
    legs = [(q, c) for q, c in legs if q]
    if not legs:
        return None
    tiers = [table.tiers[0] for _ in legs]
    price = None
    for _ in range(2 * len(table.tiers) + 2):
        den = wallet - other_mm + other_upnl  # 1e-8 coin
        num = 0  # sum (|q| MMR + q) in 1e-16 contracts
        for (qty, cost), tier in zip(legs, tiers):
            den += tier.cum - cost
            num += (qty if qty >= 0 else -qty) * tier.mmr + qty * SCALE
        # P (1e-8) = s x num / (1e8 x den): units 1e-8 USD x 1e-16 / (1e8 x 1e-8 coin)
        num *= size
        den *= SCALE
        if den == 0:
            return None
        if den < 0:
            num, den = -num, -den
        if num <= 0:
            return None
        price = (2 * num + den) // (2 * den)
        if price <= 0:
            return None
        nxt = [table.tier_for(coin_value(q, size, price)) or table.tiers[-1] for q, _ in legs]
        if all(a is b for a, b in zip(nxt, tiers)):
            break
        tiers = nxt
    return price


def bankruptcy_price(backing: int, qty: int, cost: int, size: int) -> tuple[int, int]:
    """Where the margin balance backing + value(P) - cost is zero: -q s / P = cost - backing,
    P = q s / (backing - cost), as a fraction (num, den) of a price in 1e-8 units; den <= 0
    after normalising the sign means there is none (unbounded)."""
    return qty * size, backing - cost


def funding_amount(qty: int, size: int, mark: int, rate: int) -> int:
    """|q| x s / mark x |rate| in 1e-8 coin, rounded up (what a payer pays)."""
    r = rate if rate >= 0 else -rate
    q = qty if qty >= 0 else -qty
    return -(-(q * size * r) // (mark * SCALE))


def insurance_loss(qty: int, size: int, price: int, bankruptcy: int) -> int:
    """What filling `qty` contracts at `price` instead of the bankruptcy price costs, in 1e-8
    coin, rounded up: q s |1/price - 1/bankruptcy| (the caller knows the side makes it a loss)."""
    diff = price - bankruptcy if price > bankruptcy else bankruptcy - price
    return -(-(qty * size * diff) // (price * bankruptcy))


def insurance_allow(left: int, size: int, price: int, bankruptcy: int, step: int) -> int:
    """How many contracts (1e-8 units, on the step) the fund's `left` can pay for at `price`."""
    diff = price - bankruptcy if price > bankruptcy else bankruptcy - price
    if diff == 0:
        return 1 << 62
    qty = left * price * bankruptcy // (size * diff)
    return qty - qty % step


def impact_price(levels: Iterable[tuple[int, int]], usd_notional: int, size: int,
                 bid: bool) -> int:
    """The impact price of a COIN-M book side: walk (price, contracts) levels, best first,
    until the contracts' USD value (contracts x size) reaches `usd_notional`; the average price
    is that quantity over the coin it costs (a harmonic mean: sum q / sum q/p, with q/p kept to
    1e-24 coin), rounded outward (bid down, ask up); 0 when the side is too thin."""
    need = -(-usd_notional * SCALE // size)  # contracts, 1e-8 units, rounded up
    got = 0
    coin = 0  # sum q / p in 1e-16 units of (contracts / price)
    for price, qty in levels:
        take = min(qty, need - got)
        got += take
        coin += take * SCALE * SCALE // price
        if got >= need:
            break
    if got < need or coin <= 0:
        return 0
    value = got * SCALE * SCALE
    return value // coin if bid else -(-value // coin)
