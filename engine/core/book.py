"""One symbol's limit order book: price-time priority.

Layout (all O(1) except adding or removing a price level away from the touch):
    bids/asks      dict price -> Level (a doubly linked FIFO of resting orders)
    bid_levels     the bid levels in ascending price order, ask_levels descending: the best
                   level of a side is last (O(1)), a new level is placed by binary search
                   (O(log levels) compares; the list moves only the levels better than it)
    bid, ask       the best prices, cached (None when a side is empty)
    orders         dict order_id -> Order, for O(1) lookup and cancel

The book only stores and unlinks orders; deciding what trades is the engine's job
(engine.matching), so every mutation here is driven by an event.
Prices and quantities are ints of 1e-8 units.
"""
from __future__ import annotations

from typing import Final, Iterator

from engine.core.accounts import Account, Position

BUY: Final = "BUY"  # Final: inlined by mypyc where the core uses them
SELL: Final = "SELL"


class Order:
    """An accepted order. `cost_price` and `loss_unit` are its assumed price and open loss per
    unit for the open-order margin (engine.core.accounts; 0 under rules 1); `gtd` its
    goodTillDate (ms, 0: none). `pos` is the stored position it belongs to (set when it rests
    or first fills; None before, and for spot orders), so appliers need no lookup by key;
    `acct` likewise its account (set when the core accepts it).
    `row`: the order's row of the state hash, encoded (Engine.state_hash), until it changes."""
    __slots__ = ("order_id", "account", "symbol", "side", "price", "quantity", "remaining",
                 "tif", "type", "reduce_only", "client_id", "stp", "liquidation",
                 "position_side", "cost_price", "loss_unit", "gtd", "prev", "next", "level",
                 "pos", "acct", "row")

    def __init__(self, order_id: int, account: int, symbol: str, side: str, price: int,
                 quantity: int, tif: str, type_: str, reduce_only: bool, client_id: str,
                 stp: str, liquidation: bool = False, position_side: str = "BOTH",
                 cost_price: int = 0, loss_unit: int = 0, gtd: int = 0) -> None:
        self.order_id = order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.price = price
        self.quantity = quantity  # original quantity
        self.remaining = quantity  # open quantity
        self.tif = tif
        self.type = type_
        self.reduce_only = reduce_only
        self.client_id = client_id
        self.stp = stp
        self.liquidation = liquidation
        self.position_side = position_side
        self.cost_price = cost_price
        self.loss_unit = loss_unit
        self.gtd = gtd
        self.prev: Order | None = None
        self.next: Order | None = None
        self.level: Level | None = None  # set while resting
        self.pos: Position | None = None
        self.acct: Account | None = None
        self.row: bytes | None = None

    @property
    def executed(self) -> int:
        return self.quantity - self.remaining


class Level:
    __slots__ = ("price", "head", "tail", "total", "count")

    def __init__(self, price: int) -> None:
        self.price = price
        self.head: Order | None = None
        self.tail: Order | None = None
        self.total = 0  # sum of remaining quantities
        self.count = 0

    def orders(self) -> Iterator[Order]:
        o = self.head
        while o is not None:
            yield o
            o = o.next


class OrderBook:
    __slots__ = ("symbol", "bids", "asks", "bid_levels", "ask_levels", "orders", "touched",
                 "bid", "ask")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        # the levels of each side in price order, the best last (bids ascending, asks
        # descending): the best level and a level emptied at the touch are O(1) at the end
        self.bid_levels: list[Level] = []
        self.ask_levels: list[Level] = []
        self.orders: dict[int, Order] = {}
        self.bid: int | None = None  # best prices, kept as levels appear and empty
        self.ask: int | None = None
        # when a set, every mutation records its (symbol, side, price) level: depth diffs
        self.touched: set[tuple[str, str, int]] | None = None

    # -- queries -------------------------------------------------------------------------------
    def best_bid(self) -> int | None:
        return self.bid

    def best_ask(self) -> int | None:
        return self.ask

    def best_level(self, side: str) -> Level | None:
        """Best level of `side` (the side a taker of the other side would hit)."""
        levels = self.bid_levels if side == BUY else self.ask_levels
        return levels[-1] if levels else None

    def levels(self, side: str) -> Iterator[Level]:
        """Levels of `side` from best to worst."""
        return reversed(self.bid_levels if side == BUY else self.ask_levels)

    def depth(self, side: str, limit: int | None = None) -> list[tuple[int, int]]:
        out = []
        for level in self.levels(side):
            out.append((level.price, level.total))
            if limit is not None and len(out) >= limit:
                break
        return out

    # -- mutations -----------------------------------------------------------------------------
    def add(self, order: Order) -> None:
        """Append at the tail of its price level (time priority)."""
        price = order.price
        buy = order.side == BUY
        levels = self.bids if buy else self.asks
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level(price)
            if buy:
                _insert_level(self.bid_levels, level, True)
                if self.bid is None or price > self.bid:
                    self.bid = price
            else:
                _insert_level(self.ask_levels, level, False)
                if self.ask is None or price < self.ask:
                    self.ask = price
            level.head = level.tail = order
            order.prev = None
        else:
            tail = level.tail
            order.prev = tail
            if tail is None:
                level.head = order
            else:
                tail.next = order
            level.tail = order
        order.next = None
        order.level = level
        order.row = None
        level.total += order.remaining
        level.count += 1
        self.orders[order.order_id] = order
        if self.touched is not None:
            self.touched.add((self.symbol, order.side, price))

    def remove(self, order: Order) -> None:
        """Unlink a resting order (cancel, fill, expiry). O(1) unless its level empties away
        from the touch."""
        level = order.level
        assert level is not None
        prev = order.prev
        nxt = order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
        level.total -= order.remaining
        level.count -= 1
        if self.touched is not None:
            self.touched.add((self.symbol, order.side, level.price))
        order.prev = None
        order.next = None
        order.level = None
        del self.orders[order.order_id]
        if level.count == 0:
            price = level.price
            if order.side == BUY:
                del self.bids[price]
                lst = self.bid_levels
                _remove_level(lst, level, True)
                if price == self.bid:
                    self.bid = lst[-1].price if lst else None
            else:
                del self.asks[price]
                lst = self.ask_levels
                _remove_level(lst, level, False)
                if price == self.ask:
                    self.ask = lst[-1].price if lst else None

    def load_side(self, side: str, orders: list[Order]) -> None:
        """Bulk-load an empty side from orders already in priority order (best price first,
        then time): a snapshot restore. Levels and links are built in one pass and the level
        list once, instead of an insertion per order."""
        levels = self.bids if side == BUY else self.asks
        book_orders = self.orders
        built: list[Level] = []
        level: Level | None = None
        for order in orders:
            if level is None or order.price != level.price:
                level = levels[order.price] = Level(order.price)
                built.append(level)
                order.prev = None
                level.head = order
            else:
                tail = level.tail
                assert tail is not None
                tail.next = order
                order.prev = tail
            level.tail = order
            order.next = None
            order.level = level
            level.total += order.remaining
            level.count += 1
            book_orders[order.order_id] = order
        built.reverse()  # the best last
        if side == BUY:
            self.bid_levels = built
            self.bid = built[-1].price if built else None
        else:
            self.ask_levels = built
            self.ask = built[-1].price if built else None

    def reduce(self, order: Order, qty: int) -> None:
        """A resting order loses `qty` (a fill or a quantity decrease keeping priority)."""
        level = order.level
        assert level is not None
        order.remaining -= qty
        order.row = None
        level.total -= qty
        if self.touched is not None:
            self.touched.add((self.symbol, order.side, order.price))
        if order.remaining == 0:
            self.remove(order)

    def is_crossed(self) -> bool:
        return self.bid is not None and self.ask is not None and self.bid >= self.ask


def _insert_level(levels: list[Level], level: Level, ascending: bool) -> None:
    """Insert a new level into a side's list (bids ascending, asks descending: the best
    last), by binary search; new levels appear near the touch, so little moves."""
    price = level.price
    n = len(levels)
    if n == 0 or (price > levels[n - 1].price if ascending else price < levels[n - 1].price):
        levels.append(level)  # the new best
        return
    levels.insert(_level_index(levels, price, ascending), level)


def _remove_level(levels: list[Level], level: Level, ascending: bool) -> None:
    """Remove an emptied level from a side's list: at the end when it was the best."""
    if levels[len(levels) - 1] is level:
        levels.pop()
        return
    del levels[_level_index(levels, level.price, ascending)]


def _level_index(levels: list[Level], price: int, ascending: bool) -> int:
    """Where `price` stands (or would stand) in a side's list: a binary search."""
    lo = 0
    hi = len(levels)
    while lo < hi:
        mid = (lo + hi) >> 1
        p = levels[mid].price
        if (p < price) if ascending else (p > price):
            lo = mid + 1
        else:
            hi = mid
    return lo


def crosses(book: OrderBook, side: str, price: int | None) -> bool:
    """Would an order of `side` at `price` (None: any price) take from the book?"""
    if side == BUY:
        best = book.ask
        return best is not None and (price is None or price >= best)
    best = book.bid
    return best is not None and (price is None or price <= best)


def fillable(book: OrderBook, side: str, price: int, want: int) -> int:
    """How much of `want` an order of `side` limited at `price` could fill now (at most
    `want`'s level total: the walk stops once it has enough)."""
    got = 0
    for level in book.levels(SELL if side == BUY else BUY):
        if (side == BUY and level.price > price) or (side == SELL and level.price < price):
            break
        got += level.total
        if got >= want:
            break
    return got
