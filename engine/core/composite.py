"""The ALL Composite Index (seed 000, SEED-NOTES §7): who is in it, with what weight, and its
value. Pure and deterministic: no clock, no I/O; the engine's appliers drive it.

Constituents (`exclusion_reason`, one rule, one reason per excluded kind): every USDT-quoted,
USDT-margined perpetual of the catalogue except ETHBTC (by name), contracts quoted in USDC, BUSD
or any other asset than USDT, delivery contracts (contractType other than PERPETUAL), pre-market
contracts (underlyingType PREMARKET, or a PRE_MARKET contract type), composite or multi-asset
perpetuals (underlyingType INDEX: ALLUSDT itself, BTCDOMUSDT, DEFIUSDT) and COIN-M contracts
(margined in the coin, not USDT).

Rebalancing: daily at 08:00 UTC (R). A symbol is a member at R when it is eligible, its index
price is known, it was listed before the cutoff (onboard time < R - CUTOFF_LEAD_MS; catalogue
symbols without a ListSymbol command count as listed since forever), and no delisting is
scheduled at or within 40 hours after R (R < delist time - 40 h). So a listing before the cutoff
joins at that day's rebalance and one after it at the next day's; a contract to be delisted
leaves at the first rebalance at or after 40 hours before its delisting ("removed from the index
40 hours before its delisting, timed with the next rebalancing cycle": a delisting at 00:00 UTC
leaves at the 08:00 rebalance exactly 40 hours before). If no symbol qualifies at a rebalance,
the current members are kept (re-weighted). The first composition happens as soon as index
prices arrive (the first SetIndexPrices that leaves at least one member), at BASE_VALUE.

Weighting (the seed publishes none; this is the project's choice): equal value. At a rebalance
each member i gets the integer weight q_i = round(W / p_i), W = 10^36, p_i its index price at
the rebalance, so every member contributes the same value (to 1e-24 relative). The index is

    value = V0 x S / S0,      S = sum q_i x p_i (current prices),  S0 = S at the rebalance

with V0 the index value just before the rebalance. The divisor D = S0 / V0 is kept as this
exact fraction, so the value right after a rebalance equals the value right before it exactly
(continuity), and between rebalances the index moves with the equal-value basket. The weights
are a pure function of the rebalance prices, so a CompositeRebalanced event carries the prices
(64-bit ints) and the applier re-derives the exact big-int weights; the event's
`weightInQuantity` (index points per unit of a constituent's price, 1e-8) is for display.

A constituent move is O(1): S += q_i x (p_new - p_old); value = V0 x S // S0 (rounded down).
"""
from __future__ import annotations

from engine.core.catalogue import SymbolSpec
from engine.core.fixed import SCALE

COMPOSITE_SYMBOL = "ALLUSDT"
BASE_VALUE = 1000 * SCALE  # assumed: the index starts at 1,000 points
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
REBALANCE_OFFSET_MS = 8 * HOUR_MS  # 08:00 UTC
CUTOFF_LEAD_MS = 0  # assumed: the cutoff is the rebalance time itself
DELIST_LEAD_MS = 40 * HOUR_MS
WEIGHT_SCALE = 10 ** 36
FOREVER = -(1 << 62)


def exclusion_reason(spec: SymbolSpec) -> str | None:
    """Why a catalogue symbol can never be a constituent; None if it is eligible."""
    if spec.symbol == "ETHBTC":
        return "ETHBTC perpetual"
    if spec.underlying_type == "INDEX":
        return "composite index or multi-asset perpetual"
    if spec.contract_type in ("PRE_MARKET", "PREMARKET") or spec.underlying_type == "PREMARKET":
        return "pre-market contract"
    if spec.contract_type != "PERPETUAL":
        return "delivery contract"
    if spec.margin_asset != spec.quote_asset:  # margined in the coin: COIN-M
        return "COIN-M contract"
    if spec.quote_asset != "USDT":
        return f"quoted in {spec.quote_asset}, not USDT"
    return None


def is_eligible(spec: SymbolSpec) -> bool:
    return exclusion_reason(spec) is None


def next_rebalance_after(t: int) -> int:
    """The first 08:00 UTC strictly after t (ms)."""
    r = (t - REBALANCE_OFFSET_MS) // DAY_MS * DAY_MS + REBALANCE_OFFSET_MS
    return r + DAY_MS if r <= t else r


def is_member_at(r: int, onboard: int, delist: int | None) -> bool:
    """Listing and delisting rules for a rebalance at r (eligibility and price checked apart)."""
    if onboard >= r - CUTOFF_LEAD_MS:
        return False
    return delist is None or r < delist - DELIST_LEAD_MS


def equal_value_weight(price: int) -> int:
    """q = round(W / p): each member contributes W in value at its rebalance price."""
    return (2 * WEIGHT_SCALE + price) // (2 * price)


class CompositeIndex:
    """The composite's weights and running sum; all mutation through `move` and `rebalance`,
    which the engine calls only from appliers."""
    __slots__ = ("symbol", "base_value", "base_sum", "total", "weights", "prices", "base_prices")

    def __init__(self, symbol: str = COMPOSITE_SYMBOL) -> None:
        self.symbol = symbol
        self.base_value = 0  # V0: the value at the last rebalance (1e-8 index points)
        self.base_sum = 0  # S0
        self.total = 0  # S
        self.weights: dict[str, int] = {}  # q_i
        self.prices: dict[str, int] = {}  # current index price of each member
        self.base_prices: dict[str, int] = {}  # prices at the last rebalance

    @property
    def composed(self) -> bool:
        return bool(self.weights)

    def value(self) -> int:
        return self.base_value * self.total // self.base_sum if self.base_sum else 0

    def move(self, symbol: str, price: int) -> bool:
        """A member's index price moved: O(1). False if `symbol` is not a member."""
        q = self.weights.get(symbol)
        if q is None:
            return False
        prices = self.prices
        self.total += q * (price - prices[symbol])
        prices[symbol] = price
        return True

    def rebalance(self, value: int, prices: dict[str, int]) -> None:
        """New members at `prices`, equal value, the index continuing from `value`."""
        weights = {s: equal_value_weight(p) for s, p in prices.items()}
        self.weights = weights
        self.base_prices = dict(prices)
        self.prices = dict(prices)
        self.base_sum = self.total = sum(q * prices[s] for s, q in weights.items())
        self.base_value = value

    def recompute_total(self) -> int:
        """S from scratch, O(members): what `move` keeps incrementally (for checks and restore)."""
        return sum(q * self.prices[s] for s, q in self.weights.items())

    def weight_in_quantity(self, symbol: str) -> int:
        """Index points per unit of the member's price (1e-8, rounded half up): V0 x q / S0."""
        num = self.base_value * self.weights[symbol] * SCALE
        return (2 * num + self.base_sum) // (2 * self.base_sum)

    def weight_in_percentage(self, symbol: str) -> int:
        """The member's share of the current value (1e-8 units of 1, rounded half up)."""
        num = self.weights[symbol] * self.prices[symbol] * SCALE
        return (2 * num + self.total) // (2 * self.total) if self.total else 0
