"""Accounts and one-way positions. Amounts are ints of 1e-8 USDT.

A position keeps its signed quantity and its signed cost (the entry notional: quantity x entry
price, negative for shorts). Then for any price P:
    unrealized PnL = quantity x P - cost        entry price = cost / quantity
Reducing by `close` removes cost x close / |quantity| (truncated toward zero) and realizes
sign x close x price - removed cost. Because removed cost leaves the position exactly as it is
realized, sum(wallets) - sum(costs) + fees is conserved to the unit, whatever the rounding.
"""
from __future__ import annotations

from engine.core.fixed import SCALE

CROSSED = "CROSSED"
ISOLATED = "ISOLATED"


def fill_result(qty: int, cost: int, dq: int, price: int) -> tuple[int, int, int]:
    """Position (qty, cost) trades signed dq at price -> (new qty, new cost, realized PnL)."""
    notional = (dq if dq > 0 else -dq) * price // SCALE
    if qty == 0 or (qty > 0) == (dq > 0):
        return qty + dq, cost + (notional if dq > 0 else -notional), 0
    size = qty if qty > 0 else -qty
    trade = dq if dq > 0 else -dq
    if trade < size:  # partial reduction
        removed = cost * trade // size if cost >= 0 else -((-cost) * trade // size)
        closing_value = notional if qty > 0 else -notional
        return qty + dq, cost - removed, closing_value - removed
    # closes fully, maybe flips: the closing part is `size` of the trade
    closing_notional = size * price // SCALE
    realized = (closing_notional if qty > 0 else -closing_notional) - cost
    rest = trade - size
    if rest == 0:
        return 0, 0, realized
    rest_notional = notional - closing_notional
    return qty + dq, (rest_notional if dq > 0 else -rest_notional), realized


class Position:
    """An account's state in one symbol: position, leverage, margin mode, resting orders.
    `order_margin` is derived (a cache of `compute_order_margin()` kept by the engine)."""
    __slots__ = ("symbol", "taker_fee", "qty", "cost", "leverage", "margin_type",
                 "isolated_margin", "open_buy_qty", "open_buy_notional", "open_sell_qty",
                 "open_sell_notional", "open_orders", "order_margin")

    def __init__(self, symbol: str, leverage: int, taker_fee: int) -> None:
        self.symbol = symbol
        self.taker_fee = taker_fee
        self.qty = 0
        self.cost = 0
        self.leverage = leverage
        self.margin_type = CROSSED
        self.isolated_margin = 0
        self.open_buy_qty = 0
        self.open_buy_notional = 0
        self.open_sell_qty = 0
        self.open_sell_notional = 0
        self.open_orders = 0
        self.order_margin = 0

    def compute_order_margin(self, buy_qty: int, buy_notional: int, sell_qty: int,
                             sell_notional: int) -> int:
        """Initial margin held by open orders of these sizes: for each side, the part that would
        open (not close) a position, at notional / leverage plus the taker fee, rounded up."""
        total = 0
        lev = self.leverage
        qty = self.qty
        if buy_qty > 0:
            opening = buy_qty + qty if qty < 0 else buy_qty  # a short absorbs buys first
            if opening > 0:
                n = buy_notional * opening // buy_qty
                total += -(-n // lev) - (-(n * self.taker_fee) // SCALE)
        if sell_qty > 0:
            opening = sell_qty - qty if qty > 0 else sell_qty
            if opening > 0:
                n = sell_notional * opening // sell_qty
                total += -(-n // lev) - (-(n * self.taker_fee) // SCALE)
        return total

    def add_open(self, side: str, qty: int, notional: int) -> None:
        if side == "BUY":
            self.open_buy_qty += qty
            self.open_buy_notional += notional
        else:
            self.open_sell_qty += qty
            self.open_sell_notional += notional

    def entry_price(self) -> int:
        return abs(self.cost) * SCALE // abs(self.qty) if self.qty else 0

    def is_idle(self) -> bool:
        return self.qty == 0 and self.open_orders == 0

    def apply_fill(self, dq: int, price: int) -> None:
        """Apply a fill of signed `dq` at `price`. An isolated position's margin grows by the
        opened notional / leverage (rounded up, from the cross wallet) and releases pro rata
        (rounded down) as it shrinks; realized PnL settles to the wallet (the caller's)."""
        qty0 = self.qty
        self.qty, self.cost, _ = fill_result(qty0, self.cost, dq, price)
        if self.margin_type != ISOLATED:
            return
        size0 = abs(qty0)
        if qty0 == 0 or (qty0 > 0) == (dq > 0):
            self.isolated_margin += -(-(abs(dq) * price // SCALE) // self.leverage)
        elif abs(dq) < size0:
            self.isolated_margin -= self.isolated_margin * abs(dq) // size0
        else:  # closed, perhaps flipped: all released, the new side gets fresh margin
            self.isolated_margin = -(-abs(self.cost) // self.leverage) if self.qty else 0


class Account:
    __slots__ = ("account_id", "registered_at", "wallet", "positions", "client_ids",
                 "order_margin")

    def __init__(self, account_id: int, registered_at: int) -> None:
        self.account_id = account_id
        self.registered_at = registered_at
        self.wallet = 0  # USDT wallet balance
        self.positions: dict[str, Position] = {}
        self.client_ids: dict[str, int] = {}  # newClientOrderId of open orders -> order id
        self.order_margin = 0  # derived: sum of its positions' order_margin

    def refresh_order_margin(self, pos: Position) -> None:
        """Re-derive a position's order margin after its orders, size or leverage changed."""
        new = pos.compute_order_margin(pos.open_buy_qty, pos.open_buy_notional,
                                       pos.open_sell_qty, pos.open_sell_notional) \
            if pos.open_orders else 0
        self.order_margin += new - pos.order_margin
        pos.order_margin = new

    def forget_client_id(self, order_id: int, client_id: str) -> None:
        """An order left the engine (filled, canceled, expired): its client id is free again."""
        if client_id and self.client_ids.get(client_id) == order_id:
            del self.client_ids[client_id]
