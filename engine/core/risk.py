"""Risk arithmetic of SEED-NOTES §1-2, exact on ints of 1e-8 units.

    MM            = notional x MMR(tier) - cum(tier), notional = |qty| x mark   (rounded up)
    margin balance= wallet (cross: less isolated margins; isolated: the isolated margin)
                    + unrealized PnL at the mark                                 (rounded down)
    margin ratio  = MM / margin balance; liquidation at ratio >= 100% or balance <= 0
    LP            = (WB - TMM1 + UPNL1 + cum - side x Q x EP) / (Q x MMR - side x Q)

Ratios are compared as exact cross-multiplications, never divided; a ratio is only divided
for display, rounded half up to 1e-8.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.core.catalogue import BracketTable
from engine.core.fixed import SCALE

MARGIN_CALL_NUM, MARGIN_CALL_DEN = 4, 5  # 80 %


@dataclass(frozen=True, slots=True)
class RiskFigures:
    maint_margin: int
    margin_balance: int

    @property
    def liquidatable(self) -> bool:
        """Ratio >= 100 % with positions, or a negative margin balance even without any (a
        position closed below its bankruptcy price): the liquidation then has the insurance
        fund cover the deficit."""
        if self.margin_balance < 0:
            return True
        return self.maint_margin > 0 and (self.margin_balance == 0 or
                                          self.maint_margin >= self.margin_balance)

    @property
    def margin_call(self) -> bool:
        """Ratio >= 80 % (the warning level recommended by seed 002)."""
        if self.margin_balance < 0:
            return True
        return self.maint_margin > 0 and (
            self.margin_balance == 0 or
            MARGIN_CALL_DEN * self.maint_margin >= MARGIN_CALL_NUM * self.margin_balance)

    @property
    def ratio(self) -> int:
        """Margin ratio in 1e-8 units (1.0 = 100 %); a large sentinel when balance <= 0."""
        if self.maint_margin == 0:
            return 0
        if self.margin_balance <= 0:
            return 999 * SCALE
        return (2 * self.maint_margin * SCALE + self.margin_balance) // (2 * self.margin_balance)


def notional_at(qty: int, price: int) -> int:
    """|qty| x price, rounded down (a valuation, not a requirement)."""
    return (qty if qty >= 0 else -qty) * price // SCALE


def unrealized_pnl(qty: int, cost: int, mark: int) -> int:
    """qty x mark - cost, rounded down: the venue never credits a fraction it does not have."""
    return qty * mark // SCALE - cost


def position_maint_margin(table: BracketTable, qty: int, mark: int) -> int:
    return table.maint_margin(notional_at(qty, mark)) if qty else 0


def liquidation_price_for_tier(wallet: int, other_mm: int, other_upnl: int, qty: int,
                               cost: int, mmr: int, cum: int) -> tuple[int, int]:
    """SEED-NOTES §2 for one tier, as an exact fraction (numerator, denominator) of a price in
    1e-8 units. qty is signed (side = its sign); cost = qty x entry price (signed)."""
    side = 1 if qty > 0 else -1
    size = qty * side
    # numerator in 1e-8 USDT; side x Q x EP = side x |cost| = cost for either side
    num = wallet - other_mm + other_upnl + cum - cost
    # denominator Q x MMR - side x Q, in 1e-16 units (size and mmr are both 1e-8)
    den = size * mmr - side * size * SCALE
    # price (1e-8 units) = num / 1e8 / (den / 1e16) x 1e8 = num x 1e16 / den
    return num * SCALE * SCALE, den


def liquidation_price(table: BracketTable, wallet: int, other_mm: int, other_upnl: int,
                      qty: int, cost: int) -> int | None:
    """The liquidation price in 1e-8 units (rounded half up), the tier re-selected from the
    notional at that price until it is stable; None when there is none (price <= 0)."""
    if qty == 0:
        return None
    tier = table.tiers[0]
    seen = set()
    price = None
    for _ in range(len(table.tiers) + 2):
        num, den = liquidation_price_for_tier(wallet, other_mm, other_upnl, qty, cost,
                                              tier.mmr, tier.cum)
        if den < 0:
            num, den = -num, -den
        price = (2 * num + den) // (2 * den)
        if price <= 0:
            return None
        nxt = table.tier_for(notional_at(qty, price)) or table.tiers[-1]
        if nxt is tier or nxt.bracket in seen:
            break
        seen.add(tier.bracket)
        tier = nxt
    return price


def liquidation_price_legs(table: BracketTable, wallet: int, other_mm: int, other_upnl: int,
                           legs: list[tuple[int, int]]) -> int | None:
    """The cross liquidation price of positions in one symbol that move with the same mark: a
    hedge account's LONG and SHORT legs (Binance's formula with both sides of the symbol):
        LP = (WB - TMM1 + UPNL1 + sum cum_i - sum side_i Q_i EP_i)
             / (sum Q_i MMR_i - sum side_i Q_i)
    each leg's tier re-selected from its notional at LP until stable; None when there is none."""
    legs = [(q, c) for q, c in legs if q]
    if not legs:
        return None
    if len(legs) == 1:
        return liquidation_price(table, wallet, other_mm, other_upnl, *legs[0])
    tiers = [table.tiers[0] for _ in legs]
    price = None
    for _ in range(2 * len(table.tiers) + 2):
        num = wallet - other_mm + other_upnl
        den = 0
        for (qty, cost), tier in zip(legs, tiers):
            num += tier.cum - cost
            den += abs(qty) * tier.mmr - qty * SCALE
        if den == 0:
            return None
        num *= SCALE * SCALE
        if den < 0:
            num, den = -num, -den
        price = (2 * num + den) // (2 * den)
        if price <= 0:
            return None
        nxt = [table.tier_for(notional_at(q, price)) or table.tiers[-1] for q, _ in legs]
        if all(a is b for a, b in zip(nxt, tiers)):
            break
        tiers = nxt
    return price


def bankruptcy_price(wallet_and_others: int, qty: int, cost: int) -> tuple[int, int]:
    """The price at which the position's margin balance is zero, as a fraction (num, den) in
    1e-8 units: wallet_and_others + qty x P - cost = 0  ->  P = (cost - w) / qty."""
    return (cost - wallet_and_others) * SCALE, qty



def trigger_price(table: BracketTable, backing: int, qty: int, cost: int, k_num: int,
                  k_den: int) -> int:
    """For a margin scope holding this one position (backing = its cross wallet balance less
    isolated margins, or its isolated margin), the mark P where the margin ratio reaches
    k = k_num / k_den (80 % or 100 %):  a long is at >= k iff mark <= P, a short iff mark >= P.

    Why one threshold: with W = backing - cost and B = W + qty x m the margin balance,
    "ratio >= k" is f(m) = MM(m) - k x B(m) >= 0 (B <= 0 implies it, as MM >= 0). MM is
    continuous and linear per tier, so f is continuous and piecewise linear with slopes
    |qty| x r - k x qty: negative for a long, positive for a short, because every tier's rate
    r is below k. Its root is found in the tier whose notional range holds it:
        m = (k_num W + k_den c) x 1e16 / (k_den |qty| r - k_num qty 1e8)
    Returns 0 for a long whose root is not positive (it never reaches k). Rounded down for a
    long and up for a short, so for integer marks "mark <= P" (long) and "mark >= P" (short)
    are exactly "ratio >= k" in rational arithmetic; the engine's figures round MM up and PnL
    down, so within a unit or two of P the caller checks with the exact figures."""
    w = backing - cost
    size = abs(qty)
    price = 0
    for tier in table.tiers:
        num = (k_num * w + k_den * tier.cum) * SCALE * SCALE
        den = k_den * size * tier.mmr - k_num * qty * SCALE
        price = num // den if qty > 0 else -(-num // den)
        if price <= 0:
            if qty > 0 and tier.bracket == 1:
                return 0
            continue
        if size * price // SCALE <= tier.cap:
            return price
    return max(price, 0)
