"""Multi-Assets mode: the account's margin in USD across its assets (Binance's FAQ "How to
Calculate Margin Ratio in the Multi-Assets Mode?", 2022-07-06). Pure functions on ints of 1e-8
units; the ledger (engine.core.ledger) gathers the per-asset figures and calls them.

For each asset, with its index price (USD, setIndexPrices' "BTCUSD"; a stablecoin without one
counts at 1 USD, any other asset at 0) and its row of the collateral table in force
(engine.core.catalogue.Collateral, effective-dated catalogue data):
    bid rate  = index x ratio               (the ratio is 1 - Binance's bidBuffer, the haircut)
    ask rate  = index x (1 + askBuffer)
An asset not in the table is no collateral: bid rate 0, ask rate = index (a debt in full).

    asset equity        = wallet + unrealized PnL of the positions settled in the asset
    account equity      = sum min(asset equity x bid rate, asset equity x ask rate)
                          (a positive equity at the haircut, a negative one in full or more)
    uniAvailable        = account equity - sum (initial margin in the asset x ask rate)
    available in asset  = uniAvailable / ask rate of the asset
    maintenance (USD)   = sum (maintenance margin in the asset x ask rate)
    margin ratio        = maintenance / account equity; liquidation at 100 %

The FAQ's worked example (USDT index 0.99, bid buffer 0.01, ask buffer 0.005; USDC at 1):
wallets 200 USDT and 220 USDC give equity 416.02; BTCUSDT 0.5 @ 20,000 at 100x (MMR 0.008) and
ETHUSDC 20 @ 600 at 50x (MMR 0.01) give uniAvailable 76.525 and maintenance 199.596, a margin
ratio of 47.98 % (tests/test_margin_assets.py reproduces it through real accounts).

Roundings: rates are exact products (1e-16 USD per unit, never rounded); each asset's value is
rounded down once (a credit), each requirement (initial margin, maintenance) up once; an amount
of USD expressed in an asset (available) is rounded down.

Auto-exchange (after a Multi-Assets liquidation left a settlement asset negative): the deficit
is covered from the account's other positive balances in proportion to their value at the index
price (no haircut), by the largest-remainder rule, each conversion at the index prices: the
asset received is credited exactly, the asset given rounds up (amount x its index >= credit x
the other's index, by less than one unit of the given asset). What cannot be covered is left to
the insurance fund.
"""
from __future__ import annotations

from engine.core.catalogue import CollateralTable
from engine.core.fixed import SCALE

RATE_SCALE = SCALE * SCALE  # a rate (index x ratio) is in 1e-16 USD per unit


def rates(table: CollateralTable | None, asset: str, index: int) -> tuple[int, int]:
    """(bid rate, ask rate) of `asset` in 1e-16 USD per unit, exact."""
    row = table.assets.get(asset) if table is not None else None
    if row is None:
        return 0, index * SCALE
    return index * row.ratio, index * (SCALE + row.ask_buffer)


def asset_value(equity: int, bid: int, ask: int) -> int:
    """min(equity x bid rate, equity x ask rate) in 1e-8 USD, rounded down."""
    return equity * (bid if equity >= 0 else ask) // RATE_SCALE


def usd_up(amount: int, rate: int) -> int:
    """A requirement of `amount` (>= 0) of an asset in USD, rounded up."""
    return -(-amount * rate // RATE_SCALE)


def in_asset(usd: int, rate: int) -> int:
    """`usd` (1e-8 USD) as an amount of the asset at `rate`, rounded down; with no rate (no
    price) nothing is available: 0, or `usd` itself when negative."""
    if rate <= 0:
        return min(usd, 0)
    return usd * RATE_SCALE // rate


def account_figures(table: CollateralTable | None, prices: dict[str, int],
                    equity: dict[str, int], initial: dict[str, int],
                    maint: dict[str, int]) -> tuple[int, int, int]:
    """(account equity, initial margin, maintenance margin), all in 1e-8 USD, from per-asset
    equities (wallet + unrealized PnL), initial margins (positions + open orders) and
    maintenance margins in each asset's own units. `prices` holds every asset's index."""
    total = im = mm = 0
    for asset, amount in equity.items():
        if amount:
            bid, ask = rates(table, asset, prices[asset])
            total += asset_value(amount, bid, ask)
    for asset, amount in initial.items():
        if amount:
            im += usd_up(amount, rates(table, asset, prices[asset])[1])
    for asset, amount in maint.items():
        if amount:
            mm += usd_up(amount, rates(table, asset, prices[asset])[1])
    return total, im, mm


def net_value(balances: dict[str, int], prices: dict[str, int]) -> int:
    """What the balances are worth at the index prices, no haircut: 1e-8 USD, rounded down."""
    return sum(b * prices[a] for a, b in balances.items()) // SCALE


def exchange_plan(balances: dict[str, int], prices: dict[str, int],
                  asset: str) -> list[tuple[str, int, int]]:
    """How to cover a negative balance of `asset` from the other positive ones: a list of
    (from asset, amount given, amount of `asset` credited), by asset name. Shares follow the
    assets' values at the index price (largest remainder, ties by name); each credit is at
    most what its asset can pay, so the amount given never exceeds the balance."""
    need = -balances.get(asset, 0)
    price = prices.get(asset, 0)
    if need <= 0 or price <= 0:
        return []
    capacity: dict[str, int] = {}  # in units of `asset`
    for other in sorted(balances):
        b = balances[other]
        p = prices.get(other, 0)
        if other != asset and b > 0 and p > 0:
            c = b * p // price
            if c > 0:
                capacity[other] = c
    total = sum(capacity.values())
    if total == 0:
        return []
    cover = min(need, total)
    shares: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    given = 0
    for other, c in capacity.items():
        share, rem = divmod(cover * c, total)
        shares[other] = share
        given += share
        if rem:
            remainders.append((-rem, other))
    remainders.sort()
    for _, other in remainders[:cover - given]:
        shares[other] += 1
    plan = []
    for other in sorted(shares):
        credit = shares[other]
        if credit > 0:
            p = prices[other]
            plan.append((other, -(-credit * price // p), credit))
    return plan
