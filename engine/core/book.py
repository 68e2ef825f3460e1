"""One symbol's limit order book: price-time priority.

Layout (all O(1) except adding or removing a price level, O(log levels)):
    bids/asks      dict price -> Level (a doubly linked FIFO of resting orders)
    bid_prices     SortedList of bid prices (best = last); ask_prices (best = first)
    bid, ask       the best prices, cached (None when a side is empty)
    orders         dict order_id -> Order, for O(1) lookup and cancel

The book only stores and unlinks orders; deciding what trades is the engine's job
(engine.matching), so every mutation here is driven by an event.
Prices and quantities are ints of 1e-8 units.
"""
from __future__ import annotations

from sortedcontainers import SortedList

BUY = "BUY"
SELL = "SELL"


class Order:
    """An accepted order. `cost_price` and `loss_unit` are its assumed price and open loss per
    unit for the open-order margin (engine.core.accounts; 0 under rules 1); `gtd` its
    goodTillDate (ms, 0: none)."""
    __slots__ = ("order_id", "account", "symbol", "side", "price", "quantity", "remaining",
                 "tif", "type", "reduce_only", "client_id", "stp", "liquidation",
                 "position_side", "cost_price", "loss_unit", "gtd", "prev", "next", "level")

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

    def orders(self):
        o = self.head
        while o is not None:
            yield o
            o = o.next


class OrderBook:
    __slots__ = ("symbol", "bids", "asks", "bid_prices", "ask_prices", "orders", "touched",
                 "bid", "ask")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_prices = SortedList()
        self.ask_prices = SortedList()
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
        if side == BUY:
            return None if self.bid is None else self.bids[self.bid]
        return None if self.ask is None else self.asks[self.ask]

    def levels(self, side: str):
        """Levels of `side` from best to worst."""
        if side == BUY:
            for price in reversed(self.bid_prices):
                yield self.bids[price]
        else:
            for price in self.ask_prices:
                yield self.asks[price]

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
        if order.side == BUY:
            levels, prices = self.bids, self.bid_prices
        else:
            levels, prices = self.asks, self.ask_prices
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level(price)
            prices.add(price)
            if order.side == BUY:
                if self.bid is None or price > self.bid:
                    self.bid = price
            elif self.ask is None or price < self.ask:
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
        level.total += order.remaining
        level.count += 1
        self.orders[order.order_id] = order
        if self.touched is not None:
            self.touched.add((self.symbol, order.side, order.price))

    def remove(self, order: Order) -> None:
        """Unlink a resting order (cancel, fill, expiry). O(1) unless its level empties."""
        level = order.level
        prev, nxt = order.prev, order.next
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
        order.prev = order.next = None
        order.level = None
        del self.orders[order.order_id]
        if level.count == 0:
            price = level.price
            if order.side == BUY:
                del self.bids[price]
                prices = self.bid_prices
                prices.remove(price)
                if price == self.bid:
                    self.bid = prices[-1] if prices else None
            else:
                del self.asks[price]
                prices = self.ask_prices
                prices.remove(price)
                if price == self.ask:
                    self.ask = prices[0] if prices else None

    def load_side(self, side: str, orders: list[Order]) -> None:
        """Bulk-load an empty side from orders already in priority order (best price first,
        then time): a snapshot restore. Levels and links are built in one pass and the sorted
        price list once, instead of an insertion per order."""
        levels = self.bids if side == BUY else self.asks
        book_orders = self.orders
        level = None
        for order in orders:
            if level is None or order.price != level.price:
                level = levels[order.price] = Level(order.price)
                order.prev = None
                level.head = order
            else:
                tail = level.tail
                tail.next = order
                order.prev = tail
            level.tail = order
            order.next = None
            order.level = level
            level.total += order.remaining
            level.count += 1
            book_orders[order.order_id] = order
        prices = self.bid_prices if side == BUY else self.ask_prices
        prices.update(levels)
        if side == BUY:
            self.bid = prices[-1] if prices else None
        else:
            self.ask = prices[0] if prices else None

    def reduce(self, order: Order, qty: int) -> None:
        """A resting order loses `qty` (a fill or a quantity decrease keeping priority)."""
        order.remaining -= qty
        order.level.total -= qty
        if self.touched is not None:
            self.touched.add((self.symbol, order.side, order.price))
        if order.remaining == 0:
            self.remove(order)

    def is_crossed(self) -> bool:
        return self.bid is not None and self.ask is not None and self.bid >= self.ask


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
