"""Accounts and positions. Amounts are ints of 1e-8 units of the position's margin asset.

A position keeps its signed quantity and its signed cost (the entry notional: quantity x entry
price, negative for shorts). Then for any price P:
    unrealized PnL = quantity x P - cost        entry price = cost / quantity
Reducing by `close` removes cost x close / |quantity| (truncated toward zero) and realizes
sign x close x price - removed cost. Because removed cost leaves the position exactly as it is
realized, sum(wallets) - sum(costs) + fees is conserved to the unit, whatever the rounding.

One-way mode: one position per symbol (side BOTH, keyed by the symbol). Hedge mode
(`Account.dual_side`): a LONG leg (quantity >= 0) and a SHORT leg (quantity <= 0) per symbol,
keyed "SYMBOL:LONG" and "SYMBOL:SHORT" (`position_key`); both legs share the symbol's leverage
and margin type, and an order names its leg with positionSide.

Open-order margin (rules 2, Binance's "cost required to open a position"): each order's cost is
its initial margin at an assumed price plus its open loss, no fee:
    assumed price   a buy: its price; a sell: max(last price x 1.0015, mark, its price)
    open loss       a buy above the mark: qty x (price - mark); a sell below: qty x (mark - price)
(last x 1.0015 rounded up to 1e-8). The position keeps, per side, the sums of remaining x
assumed price and remaining x open loss, exact in 1e-16 units (derived from its orders), and
charges only the part of each side that would open rather than close the position: the
margin is rounded up once, to 1e-8 USDT. Rules 1 (logs written before) charged notional /
leverage plus the taker fee on that opening part; `rules` on the position says which.

Margin assets (rules 2): a position draws on and settles into `Position.asset`, its symbol's
margin asset (USDT, BUSD; the coin for COIN-M); under rules 1 every position is on USDT. An
account keeps a wallet balance per asset: `wallet` is USDT's (the hot path, and the state hash
of a USDT-only account is what it always was), `balances` every other asset's. A COIN-M
position (`contract_size` > 0) keeps its cost basis in the coin with the sign convention of
engine.core.inverse, so the identities above hold for it unchanged; its orders' assumed price
and open loss are per contract in the coin (1e-8 coin per contract, the same 1e-16 sums).
`Account.multi_assets`: Multi-Assets mode (engine.core.collateral).
"""
from __future__ import annotations

from typing import Final

from engine.core import inverse
from engine.core.fixed import SCALE, mul_down

# Final: inlined by mypyc where the core uses them
CROSSED: Final = "CROSSED"
ISOLATED: Final = "ISOLATED"
BOTH: Final = "BOTH"
LONG: Final = "LONG"
SHORT: Final = "SHORT"


def position_key(symbol: str, side: str) -> str:
    """The key of a position in `Account.positions`: the symbol (BOTH) or "SYMBOL:SIDE"."""
    return symbol if side == BOTH else symbol + ":" + side


def fill_result(qty: int, cost: int, dq: int, price: int) -> tuple[int, int, int]:
    """Position (qty, cost) trades signed dq at price -> (new qty, new cost, realized PnL)."""
    notional = mul_down(dq if dq > 0 else -dq, price)
    if qty == 0 or (qty > 0) == (dq > 0):
        return qty + dq, cost + (notional if dq > 0 else -notional), 0
    size = qty if qty > 0 else -qty
    trade = dq if dq > 0 else -dq
    if trade < size:  # partial reduction
        removed = cost * trade // size if cost >= 0 else -((-cost) * trade // size)
        closing_value = notional if qty > 0 else -notional
        return qty + dq, cost - removed, closing_value - removed
    # closes fully, maybe flips: the closing part is `size` of the trade
    closing_notional = mul_down(size, price)
    realized = (closing_notional if qty > 0 else -closing_notional) - cost
    rest = trade - size
    if rest == 0:
        return 0, 0, realized
    rest_notional = notional - closing_notional
    return qty + dq, (rest_notional if dq > 0 else -rest_notional), realized


def trade_fill(size: int, qty: int, cost: int, dq: int, price: int) -> tuple[int, int, int]:
    """fill_result for a linear contract (size 0) or a COIN-M one of `size` USD."""
    if size:
        return inverse.fill_result(qty, cost, dq, price, size)
    return fill_result(qty, cost, dq, price)


def _add_parts(hi: int, lo: int, qty: int, unit: int) -> tuple[int, int]:
    """(hi, lo) + qty x unit, a sum kept in two parts: whole 1e-8 units (hi) and a remainder
    0 <= lo < SCALE (1e-16); machine-word arithmetic where one long would not be."""
    hi += qty * (unit // SCALE)
    lo += qty * (unit % SCALE)
    if lo < 0 or lo >= SCALE:
        carry = lo // SCALE
        hi += carry
        lo -= carry * SCALE
    return hi, lo


class OpenOrders:
    """The sums over one side's resting orders of a position: quantity and notional (qty x
    price) in 1e-8 units; cost (qty x assumed price) and open loss, exact in 1e-16 units, each
    kept as a whole part in 1e-8 units and a remainder in [0, SCALE) (`cost` is cost_hi x
    SCALE + cost_lo): a few orders' 1e-16 amounts pass 2^63, where a compiled core's integers
    stop being machine words; the parts do not."""
    __slots__ = ("qty", "notional", "cost_hi", "cost_lo", "loss_hi", "loss_lo")

    def __init__(self, qty: int = 0, notional: int = 0) -> None:
        self.qty = qty
        self.notional = notional
        self.cost_hi = 0
        self.cost_lo = 0
        self.loss_hi = 0
        self.loss_lo = 0

    @property
    def cost(self) -> int:
        return self.cost_hi * SCALE + self.cost_lo

    @property
    def loss(self) -> int:
        return self.loss_hi * SCALE + self.loss_lo

    def add(self, qty: int, notional: int, cost_price: int, loss_unit: int) -> None:
        """`qty` of orders (negative: taken away) with this notional, at these per-unit cost
        and open loss (1e-8 per unit of quantity)."""
        self.qty += qty
        self.notional += notional
        self.add_costs(qty, cost_price, loss_unit)

    def add_costs(self, qty: int, cost_price: int, loss_unit: int) -> None:
        """cost += qty x cost_price, loss += qty x loss_unit, in parts."""
        if cost_price:
            self.cost_hi, self.cost_lo = _add_parts(self.cost_hi, self.cost_lo, qty, cost_price)
        if loss_unit:
            self.loss_hi, self.loss_lo = _add_parts(self.loss_hi, self.loss_lo, qty, loss_unit)

    def with_order(self, qty: int, notional: int, cost_price: int,
                   loss_unit: int) -> "OpenOrders":
        """A copy with an order added (add's arguments): what the side would be."""
        o = OpenOrders(self.qty, self.notional)
        o.cost_hi = self.cost_hi
        o.cost_lo = self.cost_lo
        o.loss_hi = self.loss_hi
        o.loss_lo = self.loss_lo
        o.add(qty, notional, cost_price, loss_unit)
        return o


class Position:
    """An account's state in one symbol (or one leg in hedge mode): position, leverage,
    margin mode, resting orders. `order_margin` is derived (a cache of `compute_order_margin()`
    kept by the appliers), as the sum of `buy_margin` and `sell_margin`, each side's share,
    so that a change to one side's orders recomputes that side only (Account.refresh_*)."""
    __slots__ = ("symbol", "side", "taker_fee", "rules", "qty", "cost", "leverage",
                 "margin_type", "isolated_margin", "buys", "sells", "open_orders",
                 "order_margin", "asset", "contract_size", "buy_margin", "sell_margin")

    def __init__(self, symbol: str, leverage: int, taker_fee: int, rules: int = 2,
                 side: str = BOTH, asset: str = "USDT", contract_size: int = 0) -> None:
        self.symbol = symbol
        self.side = side
        self.asset = asset  # the wallet it draws on and settles into
        self.contract_size = contract_size  # COIN-M: USD per contract (1e-8); 0: linear
        self.taker_fee = taker_fee
        self.rules = rules
        self.qty = 0
        self.cost = 0
        self.leverage = leverage
        self.margin_type = CROSSED
        self.isolated_margin = 0
        self.buys = OpenOrders()
        self.sells = OpenOrders()
        self.open_orders = 0
        self.order_margin = 0
        self.buy_margin = 0
        self.sell_margin = 0

    @property
    def key(self) -> str:
        return position_key(self.symbol, self.side)

    def margin_for(self, buys: OpenOrders, sells: OpenOrders) -> int:
        """Initial margin held by open orders of these sizes: for each side, the part that
        would open (not close) the position, at its cost (module doc), rounded up."""
        return self.side_margin(True, buys) + self.side_margin(False, sells)

    def side_margin(self, buy: bool, o: OpenOrders) -> int:
        """The margin one side's orders hold with the sums `o` (the buys if `buy`): the part
        that would open rather than close the position (a short absorbs buys first, a long
        sells), rounded up."""
        side_qty = o.qty
        if side_qty <= 0:
            return 0
        qty = self.qty
        if buy:
            opening = side_qty + qty if qty < 0 else side_qty
        else:
            opening = side_qty - qty if qty > 0 else side_qty
        if opening <= 0:
            return 0
        lev = self.leverage
        if self.rules < 2:  # notional / leverage + taker fee on the opening part
            notional = o.notional
            n = notional if opening == side_qty else notional * opening // side_qty
            return -(-n // lev) - (-(n * self.taker_fee) // SCALE)
        # (cost / leverage + loss) x opening / qty, from 1e-16 sums to 1e-8 USDT, rounded up.
        # With a = cost + loss x leverage = a_hi x SCALE + a_lo: ceil(a / SCALE) is a_hi +
        # ceil(a_lo / SCALE), and ceil(x / (b c)) == ceil(ceil(x / b) / c) for positive b, c;
        # ceil(n / d) is (n + d - 1) // d. The whole side opens more often than not (opening
        # == qty: nothing to scale).
        a_hi = o.cost_hi
        a_lo = o.cost_lo
        if o.loss_hi or o.loss_lo:
            a_hi += o.loss_hi * lev
            a_lo += o.loss_lo * lev
        if opening == side_qty:
            return (a_hi + (a_lo + SCALE - 1) // SCALE + lev - 1) // lev
        den = side_qty * lev
        return (a_hi * opening + (a_lo * opening + SCALE - 1) // SCALE + den - 1) // den

    def compute_order_margin(self) -> int:
        return self.margin_for(self.buys, self.sells) if self.open_orders else 0

    def add_open(self, side: str, qty: int, notional: int, cost_price: int = 0,
                 loss_unit: int = 0) -> None:
        """`qty` of orders of `side` (negative: taken away) at these per-unit figures."""
        (self.buys if side == "BUY" else self.sells).add(qty, notional, cost_price, loss_unit)

    def entry_price(self) -> int:
        if self.contract_size:
            return inverse.entry_price(self.qty, self.cost, self.contract_size)
        return abs(self.cost) * SCALE // abs(self.qty) if self.qty else 0

    def is_idle(self) -> bool:
        return self.qty == 0 and self.open_orders == 0

    def apply_fill(self, dq: int, price: int) -> None:
        """Apply a fill of signed `dq` at `price`. An isolated position's margin grows by the
        opened notional / leverage (rounded up, from the cross wallet) and releases pro rata
        (rounded down) as it shrinks; realized PnL settles to the wallet (the caller's)."""
        qty0 = self.qty
        size = self.contract_size
        self.qty, self.cost, _ = trade_fill(size, qty0, self.cost, dq, price)
        if self.margin_type != ISOLATED:
            return
        size0 = abs(qty0)
        if qty0 == 0 or (qty0 > 0) == (dq > 0):
            opened = inverse.coin_value(dq, size, price) if size else mul_down(abs(dq), price)
            self.isolated_margin += -(-opened // self.leverage)
        elif abs(dq) < size0:
            self.isolated_margin -= self.isolated_margin * abs(dq) // size0
        else:  # closed, perhaps flipped: all released, the new side gets fresh margin
            self.isolated_margin = -(-abs(self.cost) // self.leverage) if self.qty else 0


class Account:
    """An account: wallets, positions (by position_key), open client order ids, modes.
    Derived, kept by the appliers so that the available balance needs no pass over every
    position: `order_margin` (all its positions' open-order margin), what it holds per margin
    asset (the open-order margin of its positions plus the isolated margin of its isolated
    ones: `held_usdt` for USDT, the hot path, `held` for the others; `holding(asset)`) and
    `open_cross` (its cross positions with a quantity, the only ones valued at the mark).
    Positions change size through `fill` and isolated margin through `set_isolated`;
    `rederive` recomputes all of it (a restore, a change of margin type or position mode)."""
    __slots__ = ("account_id", "registered_at", "wallet", "positions", "client_ids",
                 "order_margin", "dual_side", "balances", "multi_assets", "held_usdt", "held",
                 "open_cross")

    def __init__(self, account_id: int, registered_at: int) -> None:
        self.account_id = account_id
        self.registered_at = registered_at
        self.wallet = 0  # USDT wallet balance
        self.balances: dict[str, int] = {}  # wallet balances of every other asset
        self.multi_assets = False  # Multi-Assets mode (multiAssetsMargin)
        self.positions: dict[str, Position] = {}  # by position_key
        self.client_ids: dict[str, int] = {}  # newClientOrderId of open orders -> order id
        self.order_margin = 0  # derived: sum of its positions' order_margin
        self.dual_side = False  # hedge mode (dualSidePosition)
        self.held_usdt = 0  # derived: order margin + isolated margin in USDT
        self.held: dict[str, int] = {}  # derived: the same in every other asset
        self.open_cross: list[Position] = []  # derived: cross positions with a quantity

    def balance(self, asset: str) -> int:
        """The wallet balance in `asset`."""
        if asset == "USDT":
            return self.wallet
        return self.balances.get(asset, 0)

    def credit(self, asset: str, amount: int) -> None:
        """For appliers: the wallet in `asset` changes by `amount` (negative: a debit)."""
        if asset == "USDT":
            self.wallet += amount
        else:
            self.balances[asset] = self.balances.get(asset, 0) + amount

    def assets(self) -> list[str]:
        """The assets the account has a wallet in: USDT first, then the others by name."""
        return ["USDT"] + sorted(self.balances)

    def legs(self, symbol: str) -> list[Position]:
        """The account's positions in `symbol`: one in one-way mode, up to two in hedge mode."""
        if not self.dual_side:
            pos = self.positions.get(symbol)
            return [pos] if pos is not None else []
        out = []
        for side in (LONG, SHORT):
            pos = self.positions.get(symbol + ":" + side)
            if pos is not None:
                out.append(pos)
        return out

    def refresh_order_margin(self, pos: Position) -> None:
        """Re-derive a position's order margin after its orders, size or leverage changed."""
        buy = pos.side_margin(True, pos.buys)
        sell = pos.side_margin(False, pos.sells)
        pos.buy_margin = buy
        pos.sell_margin = sell
        new = buy + sell
        delta = new - pos.order_margin
        if delta:
            self.order_margin += delta
            self.hold(pos.asset, delta)
        pos.order_margin = new

    def refresh_side(self, pos: Position, buy: bool) -> None:
        """Re-derive one side's share after only that side's orders changed (the position's
        size and leverage did not)."""
        if buy:
            new = pos.side_margin(True, pos.buys)
            delta = new - pos.buy_margin
            pos.buy_margin = new
        else:
            new = pos.side_margin(False, pos.sells)
            delta = new - pos.sell_margin
            pos.sell_margin = new
        if delta:
            pos.order_margin += delta
            self.order_margin += delta
            self.hold(pos.asset, delta)

    def hold(self, asset: str, delta: int) -> None:
        """What the account holds in `asset` changes by `delta`."""
        if asset == "USDT":
            self.held_usdt += delta
        else:
            held = self.held
            held[asset] = held.get(asset, 0) + delta

    def holding(self, asset: str) -> int:
        """Open-order margin plus isolated margin in `asset`."""
        return self.held_usdt if asset == "USDT" else self.held.get(asset, 0)

    def fill(self, pos: Position, dq: int, price: int) -> None:
        """For appliers: `pos` (stored) trades signed `dq` at `price` (Position.apply_fill),
        keeping `held` and `open_cross`."""
        qty0 = pos.qty
        if pos.margin_type == ISOLATED:
            margin0 = pos.isolated_margin
            pos.apply_fill(dq, price)
            if pos.isolated_margin != margin0:
                self.hold(pos.asset, pos.isolated_margin - margin0)
            return
        pos.apply_fill(dq, price)
        if qty0 == 0:
            if pos.qty != 0:
                self.open_cross.append(pos)
        elif pos.qty == 0:
            self.open_cross.remove(pos)

    def set_isolated(self, pos: Position, margin: int) -> None:
        """For appliers: an isolated position's margin is now `margin`."""
        if pos.margin_type == ISOLATED and margin != pos.isolated_margin:
            self.hold(pos.asset, margin - pos.isolated_margin)
        pos.isolated_margin = margin

    def rederive(self) -> None:
        """Recompute every derived figure from the positions (their order margins too)."""
        self.order_margin = 0
        self.held_usdt = 0
        self.held = {}
        self.open_cross = []
        for pos in self.positions.values():
            pos.order_margin = 0
            self.refresh_order_margin(pos)
            if pos.margin_type == ISOLATED:
                if pos.isolated_margin:
                    self.hold(pos.asset, pos.isolated_margin)
            elif pos.qty:
                self.open_cross.append(pos)

    def refresh_after_fill(self, pos: Position, qty0: int, buys: bool = True,
                           sells: bool = True) -> None:
        """Re-derive after the position's size changed from `qty0` (its orders did not): a
        side's opening part depends on the size only through min(qty, 0) for the buys and
        max(qty, 0) for the sells. `buys` or `sells` False: the caller refreshes that side
        itself."""
        qty = pos.qty
        if buys and pos.buys.qty and (qty0 if qty0 < 0 else 0) != (qty if qty < 0 else 0):
            self.refresh_side(pos, True)
        if sells and pos.sells.qty and (qty0 if qty0 > 0 else 0) != (qty if qty > 0 else 0):
            self.refresh_side(pos, False)

    def forget_client_id(self, order_id: int, client_id: str) -> None:
        """An order left the engine (filled, canceled, expired): its client id is free again."""
        if client_id and self.client_ids.get(client_id) == order_id:
            del self.client_ids[client_id]
