"""Per-symbol market state: the book, the prices, and the bracket table in force."""
from __future__ import annotations

from engine.core import inverse
from engine.core.book import OrderBook
from engine.core.catalogue import BracketTable, SymbolSpec
from engine.core.fixed import mul_down


class SymbolState:
    """One symbol's book and prices. Prices are ints of 1e-8 units; 0 means none known yet.
    The bracket table in force is cached for its window [table_from, table_until).
    `asset` is the wallet its positions draw on: its margin asset (rules 2), USDT under rules 1;
    `contract_size` > 0 for a COIN-M contract (engine.core.inverse)."""
    __slots__ = ("spec", "book", "mark", "index", "last_price", "table", "table_from",
                 "table_until", "_max_notional", "asset", "contract_size")

    def __init__(self, spec: SymbolSpec, asset: str = "USDT") -> None:
        self.spec = spec
        self.asset = asset
        self.contract_size = spec.contract_size
        self.book = OrderBook(spec.symbol)
        self.mark = 0  # 0: no mark price known yet
        self.index = 0
        self.last_price = 0
        # the bracket table in force on [table_from, table_until); until None: no later switch
        self.table, self.table_from, self.table_until = spec.window(0)
        self._max_notional: dict[tuple[str, int], int] = {}

    def table_at(self, time: int) -> BracketTable:
        until = self.table_until
        if time < self.table_from or (until is not None and time >= until):
            self.table, self.table_from, self.table_until = self.spec.window(time)
        return self.table

    def max_notional(self, table: BracketTable, leverage: int) -> int:
        key = (table.name, leverage)
        cap = self._max_notional.get(key)
        if cap is None:
            cap = self._max_notional[key] = table.max_notional(leverage)
        return cap

    def ref_price(self) -> int:
        """The price positions are valued at: the mark, never the last trade; 0 before the
        first mark (positions are then valued at their entry)."""
        return self.mark

    def order_notional(self, qty: int, price: int) -> int:
        """An order's notional at its price: qty x price (USD-M, exact) or its coin notional
        (COIN-M, per contract rounded up; additive over orders)."""
        size = self.contract_size
        if size:
            return inverse.order_notional(qty, size, price)
        return mul_down(qty, price)

    def trade_value(self, qty: int, price: int) -> int:
        """A fill's value in the margin asset: qty x price, or its coin value rounded down."""
        size = self.contract_size
        if size:
            return inverse.coin_value(qty, size, price)
        return mul_down(qty, price)
