"""Conditional orders, as Binance's Algo service serves them since 2025-12-09: STOP and
TAKE_PROFIT (a limit order once triggered), STOP_MARKET, TAKE_PROFIT_MARKET and
TRAILING_STOP_MARKET (a market order once triggered). A part of the core (engine.core.engine).

Placing (NewAlgoOrder): the order's own checks (type, trigger price on the tick, -2021 if its
trigger would fire at once, closePosition -4137/-4138/-4509/-4130, callbackRate, the per-symbol
limit of open conditional orders -4045, position side and GTD as for ordinary orders). No
margin is reserved before the trigger (Binance: "No margin check before the conditional order
gets triggered"), so open conditional orders count toward -2027 only once triggered.

Triggering, on the working price (workingType: MARK_PRICE the mark, CONTRACT_PRICE the last
trade), for BUY / SELL:
    STOP, STOP_MARKET                 price >= trigger   /   price <= trigger
    TAKE_PROFIT, TAKE_PROFIT_MARKET   price <= trigger   /   price >= trigger
    TRAILING_STOP_MARKET              once active (the lowest / highest price since placement
                                      reached activatePrice), price >= lowest x (1 + rate) /
                                      price <= highest x (1 - rate)
Each (symbol, working price) keeps its triggers sorted (`TriggerBook`, engine.core.triggers): a
price move visits only the triggers it crossed, never a scan. After every command the core looks at the prices the
command moved; the triggered orders fire in the order their trigger was reached (the distance
from the price before the move, then algo id), each becoming an ordinary order that passes every
ordinary check (AlgoOrderTriggered and the order's own events, or AlgoOrderRejected with the
code). A fill moves the last price: the round repeats until nothing more triggers.
priceProtect: a triggered order does not fire while mark and last price differ by more than the
symbol's triggerProtect (catalogue data) of the mark.

Trailing stops: their activation and their extreme price (the highest since activation for a
sell, the lowest for a buy) are derived from the price events as they are applied, so a rebuild
from the log follows the same path; they sit in buckets that share an extreme (engine.core.triggers).

Closing: conditional orders with closePosition or reduceOnly expire (EXPIRED) when their position
closes; all of an account's in a symbol are canceled by cancelAllOrders and expired by a
liquidation.
"""
from __future__ import annotations

from engine.core import errors as E
from engine.core.accounts import BOTH, Account, position_key
from engine.core.book import BUY, SELL
from engine.core.errors import Rejected
from engine.core.fixed import SCALE, fmt
from engine.core.ledger import MARK, Applier, Ledger
from engine.core.orders import Orders, closes
from proto import commands as C
from engine.core.triggers import DOWN, SOURCES, UP, AlgoOrder, TriggerBook, direction
from proto import events as V

MIN_CALLBACK = 10_000_000  # 0.1 %
# Binance raised the largest callbackRate from 10 to 20 on 2026-10-23 (effective-dated)
MAX_CALLBACK = ((0, 10 * SCALE), (1_792_713_600_000, 20 * SCALE))
MARKET_TYPES = frozenset({"STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})


def max_callback(time: int) -> int:
    rate = MAX_CALLBACK[0][1]
    for effective, value in MAX_CALLBACK:
        if time >= effective:
            rate = value
    return rate


class ConditionalOrders:
    def __init__(self, ledger: Ledger, orders: Orders) -> None:
        self.ledger = ledger
        self.orders = orders
        self.algos: dict[int, AlgoOrder] = {}  # open (waiting) conditional orders by id
        self.next_algo_id = 1
        self.books: dict[tuple[str, int], TriggerBook] = {}  # (symbol, source) -> triggers
        self.open_count: dict[tuple[int, str], int] = {}  # (account, symbol) -> open orders
        self.client_ids: dict[tuple[int, str], int] = {}  # (account, clientAlgoId) -> id
        self.bound: dict[tuple[int, str], set[int]] = {}  # (account, position key) -> ids
        # per command: the price each (symbol, source) had before the command first moved it
        self.moved: dict[tuple[str, int], int] = {}
        self.prices: dict[tuple[str, int], int] = {}  # the latest price per (symbol, source)
        # it listens to price moves only while some order waits on a price (_book, _on_closed):
        # a venue without conditional orders pays nothing per trade or mark

    def handlers(self) -> dict[type, Applier]:
        return {C.NewAlgoOrder: self._new_algo_order, C.CancelAlgoOrder: self._cancel,
                C.CancelAllAlgoOrders: self._cancel_all}

    def appliers(self) -> dict[type, Applier]:
        return {V.AlgoOrderAccepted: self._on_accepted, V.AlgoOrderCanceled: self._on_closed,
                V.AlgoOrderExpired: self._on_closed, V.AlgoOrderTriggered: self._on_closed,
                V.AlgoOrderRejected: self._on_closed}

    def open_orders(self, account: int) -> int:
        return sum(n for (a, _), n in self.open_count.items() if a == account)

    # == placing ==================================================================================
    def working_price(self, symbol: str, source: int) -> int:
        sym = self.ledger.symbols[symbol]
        return sym.mark if source == MARK else sym.last_price

    def _new_algo_order(self, cmd: C.NewAlgoOrder) -> None:
        ledger = self.ledger
        try:
            accepted = self._validate(cmd)
        except Rejected as r:
            ledger.reject_command(cmd, r)
            return
        ledger.emit(accepted)

    def _validate(self, cmd: C.NewAlgoOrder) -> V.AlgoOrderAccepted:
        ledger = self.ledger
        sym = ledger.symbol(cmd.symbol)
        acct = ledger.account(cmd.account)
        spec = sym.spec
        side, type_ = cmd.side, cmd.type
        if cmd.close_position:
            if type_ not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise Rejected(E.CLOSE_POSITION_ORDER_TYPE, arg=type_)
            if cmd.quantity:
                raise Rejected(E.QUANTITY_WITH_CLOSE_POSITION)
            if cmd.reduce_only is False:
                raise Rejected(E.REDUCE_ONLY_WITH_CLOSE_POSITION)
            if cmd.reduce_only:
                raise Rejected(E.PARAM_NOT_REQUIRED, "closePosition already only reduces",
                               arg="reduceonly")
            reduce_only_sent = None
        else:
            reduce_only_sent = cmd.reduce_only
        position_side, reduce_only = Orders.position_side(acct, side, cmd.position_side,
                                                          reduce_only_sent)
        if cmd.close_position:
            if position_side != BOTH and not closes(side, position_side):
                raise Rejected(E.POSITION_SIDE_NOT_MATCH, "closePosition closes the LONG leg "
                                                          "with a SELL, the SHORT leg with a BUY")
            pos = ledger.position(acct, cmd.symbol, position_side)
            if pos.qty == 0 or (pos.qty > 0) == (side == BUY):
                raise Rejected(E.CLOSE_POSITION_NO_POSITION)
            for algo_id in self.bound.get((acct.account_id, pos.key), ()):
                other = self.algos[algo_id]
                if other.close_position and other.side == side and \
                        other.direction == direction(type_, side):
                    raise Rejected(E.CLOSE_POSITION_EXISTS)
            reduce_only = True
        elif cmd.quantity <= 0:
            raise Rejected(E.MANDATORY_PARAM, arg="quantity")
        elif cmd.quantity < spec.min_qty or (cmd.quantity - spec.min_qty) % spec.step_size:
            raise Rejected(E.QTY_NOT_ON_STEP if cmd.quantity >= spec.min_qty
                           else E.QTY_LESS_THAN_MIN,
                           f"step size {fmt(spec.step_size)}, min {fmt(spec.min_qty)}")
        elif cmd.quantity > spec.max_qty:
            raise Rejected(E.QTY_GREATER_THAN_MAX, f"max quantity {fmt(spec.max_qty)}")
        # prices
        price_match = cmd.price_match if cmd.price_match not in (None, "NONE") else "NONE"
        if type_ in ("STOP", "TAKE_PROFIT"):
            if price_match != "NONE":
                if cmd.price:
                    raise Rejected(E.PARAM_NOT_REQUIRED, "priceMatch sets the price",
                                   arg="price")
            elif cmd.price <= 0:
                raise Rejected(E.MANDATORY_PARAM, arg="price")
            else:
                self._on_tick(spec, cmd.price, "price")
            tif = cmd.time_in_force or "GTC"
        else:
            if cmd.price:
                raise Rejected(E.PARAM_NOT_REQUIRED, arg="price")
            if price_match != "NONE":
                raise Rejected(E.PRICE_MATCH_ORDER_TYPE)
            tif = cmd.time_in_force or "GTC"
        gtd = self.orders.good_till(tif, cmd.good_till_date)
        source = SOURCES[cmd.working_type]
        latest = self.working_price(cmd.symbol, source)
        if type_ == "TRAILING_STOP_MARKET":
            if cmd.trigger_price:
                raise Rejected(E.PARAM_NOT_REQUIRED, arg="triggerPrice")
            rate = cmd.callback_rate
            if not MIN_CALLBACK <= rate <= max_callback(ledger.time):
                raise Rejected(E.INVALID_VALUE, f"callbackRate {fmt(rate)}: from "
                                                f"{fmt(MIN_CALLBACK)} to "
                                                f"{fmt(max_callback(ledger.time))} (percent)",
                               arg="callbackRate")
            if cmd.activate_price:
                self._on_tick(spec, cmd.activate_price, "activatePrice")
                if latest and ((side == BUY and cmd.activate_price >= latest) or
                               (side == SELL and cmd.activate_price <= latest)):
                    raise Rejected(E.WOULD_IMMEDIATELY_TRIGGER,
                                   f"activatePrice {fmt(cmd.activate_price)}, latest price "
                                   f"{fmt(latest)}")
            trigger = 0
        else:
            if cmd.callback_rate or cmd.activate_price:
                raise Rejected(E.PARAM_NOT_REQUIRED, arg="callbackRate" if cmd.callback_rate
                               else "activatePrice")
            if cmd.trigger_price <= 0:
                raise Rejected(E.MANDATORY_PARAM, arg="triggerPrice")
            trigger = cmd.trigger_price
            self._on_tick(spec, trigger, "triggerPrice")
            d = direction(type_, side)
            if latest and ((d == UP and latest >= trigger) or (d == DOWN and latest <= trigger)):
                raise Rejected(E.WOULD_IMMEDIATELY_TRIGGER, f"triggerPrice {fmt(trigger)}, "
                                                            f"latest price {fmt(latest)}")
        cid = cmd.client_algo_id
        if cid and (cmd.account, cid) in self.client_ids:
            raise Rejected(E.CLIENT_ID_DUPLICATED, repr(cid))
        if self.open_count.get((cmd.account, cmd.symbol), 0) >= spec.max_num_algo_orders:
            raise Rejected(E.MAX_ALGO_ORDERS, f"{spec.max_num_algo_orders} open conditional "
                                              f"orders")
        return V.AlgoOrderAccepted(
            algo_id=self.next_algo_id, account=cmd.account, symbol=cmd.symbol, side=side,
            position_side=position_side, order_type=type_, quantity=cmd.quantity,
            price=cmd.price, trigger_price=trigger, working_type=cmd.working_type,
            price_protect=cmd.price_protect, close_position=cmd.close_position,
            reduce_only=reduce_only, activate_price=cmd.activate_price,
            callback_rate=cmd.callback_rate, time_in_force=tif, client_algo_id=cid,
            stp_mode=cmd.self_trade_prevention_mode or ledger.config.default_stp,
            price_match=price_match, good_till_date=gtd)

    @staticmethod
    def _on_tick(spec, price: int, name: str) -> None:
        if price < spec.min_price or price > spec.max_price or \
                (price - spec.min_price) % spec.tick_size:
            raise Rejected(E.PRICE_NOT_ON_TICK, f"{name} {fmt(price)}: tick size "
                                                f"{fmt(spec.tick_size)}")

    # == canceling ================================================================================
    def _find(self, account: int, algo_id: int, client_id: str) -> AlgoOrder:
        if not algo_id and client_id:
            algo_id = self.client_ids.get((account, client_id), 0)
        algo = self.algos.get(algo_id)
        if algo is None or algo.account != account:
            raise Rejected(E.UNKNOWN_ORDER)
        return algo

    def _cancel(self, cmd: C.CancelAlgoOrder) -> None:
        ledger = self.ledger
        try:
            ledger.account(cmd.account)
            algo = self._find(cmd.account, cmd.algo_id, cmd.client_algo_id)
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.AlgoOrderCanceled(algo_id=algo.algo_id, account=algo.account,
                                        symbol=algo.symbol))

    def _cancel_all(self, cmd: C.CancelAllAlgoOrders) -> None:
        ledger = self.ledger
        try:
            ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        self.cancel_account(acct, cmd.symbol)

    def cancel_account(self, acct: Account, symbol: str) -> None:
        """Cancel the account's conditional orders in the symbol, oldest first."""
        for algo_id in self._ids_of(acct.account_id, symbol):
            self.ledger.emit(V.AlgoOrderCanceled(algo_id=algo_id, account=acct.account_id,
                                                 symbol=symbol))

    def expire_account(self, acct: Account, symbol: str, reason: str) -> None:
        for algo_id in self._ids_of(acct.account_id, symbol):
            self.ledger.emit(V.AlgoOrderExpired(algo_id=algo_id, account=acct.account_id,
                                                symbol=symbol, reason=reason))

    def _ids_of(self, account: int, symbol: str) -> list[int]:
        if not self.open_count.get((account, symbol)):
            return []
        return sorted(a.algo_id for a in self.algos.values()
                      if a.account == account and a.symbol == symbol)

    # == after every command: released orders, then triggers ======================================
    def after_command(self) -> None:
        ledger = self.ledger
        self._release_closed()
        fired: set[int] = set()
        while self.moved:
            moved, self.moved = self.moved, {}
            due: list[tuple[int, int, int, int]] = []  # (distance, algo id, trigger, price)
            for key in sorted(moved) if len(moved) > 1 else moved:
                book = self.books.get(key)  # books with nothing left are dropped: never empty
                if book is None:
                    continue
                price = self.prices[key]
                before = moved[key]
                for trigger, algo_id in book.reached(price):
                    if algo_id not in fired:
                        due.append((abs(trigger - before), algo_id, trigger, price))
            if not due:
                break
            due.sort()
            for _, algo_id, _, price in due:
                fired.add(algo_id)
                algo = self.algos.get(algo_id)
                if algo is None or not self._protected(algo):
                    continue
                self._fire(algo, price)
            self._release_closed()
        ledger.closed.clear()

    def _protected(self, algo: AlgoOrder) -> bool:
        """priceProtect: mark and last price within the symbol's triggerProtect of the mark."""
        if not algo.price_protect:
            return True
        sym = self.ledger.symbols[algo.symbol]
        if not sym.mark or not sym.last_price:
            return False
        return abs(sym.mark - sym.last_price) * SCALE <= sym.spec.trigger_protect * sym.mark

    def _fire(self, algo: AlgoOrder, price: int) -> None:
        ledger = self.ledger
        acct = ledger.accounts[algo.account]
        quantity = algo.quantity
        if algo.close_position:
            quantity = abs(ledger.position(acct, algo.symbol, algo.position_side).qty)
        market = algo.type in MARKET_TYPES
        cmd = C.NewOrder(
            account=algo.account, symbol=algo.symbol, side=algo.side,
            type="MARKET" if market else "LIMIT", quantity=quantity,
            price=0 if market or algo.price_match != "NONE" else algo.price,
            time_in_force=None if market else algo.tif,
            reduce_only=None if acct.dual_side else algo.reduce_only,
            self_trade_prevention_mode=algo.stp,  # type: ignore[arg-type]
            position_side=algo.position_side,  # type: ignore[arg-type]
            price_match=None if market or algo.price_match == "NONE"
            else algo.price_match,  # type: ignore[arg-type]
            good_till_date=0 if market else algo.gtd)
        try:
            if quantity == 0:
                raise Rejected(E.REDUCE_ONLY_REJECTED, "no position to close")
            accepted = self.orders.validate_new(cmd)
        except Rejected as r:
            ledger.emit(V.AlgoOrderRejected(algo_id=algo.algo_id, account=algo.account,
                                            symbol=algo.symbol, price=price, code=r.code,
                                            msg=r.msg, detail=r.detail))
            return
        ledger.emit(V.AlgoOrderTriggered(algo_id=algo.algo_id, account=algo.account,
                                         symbol=algo.symbol, price=price,
                                         order_id=accepted.order_id))
        ledger.emit(accepted)
        if not accepted.rest:
            self.orders.match(ledger.pending[accepted.order_id])

    def _release_closed(self) -> None:
        ledger = self.ledger
        if not self.bound:
            ledger.closed.clear()
            return
        for account, key in sorted(ledger.closed):
            ids = self.bound.get((account, key))
            if not ids:
                continue
            pos = ledger.accounts[account].positions.get(key)
            if pos is not None and pos.qty:
                continue  # reopened within the command
            for algo_id in sorted(ids):
                algo = self.algos[algo_id]
                ledger.emit(V.AlgoOrderExpired(algo_id=algo_id, account=account,
                                               symbol=algo.symbol, reason="positionClosed"))
        ledger.closed.clear()

    # == appliers =================================================================================
    def _book(self, algo: AlgoOrder) -> TriggerBook:
        key = (algo.symbol, algo.source)
        book = self.books.get(key)
        if book is None:
            if not self.books:
                self.ledger.price_listeners.append(self._on_price)
            book = self.books[key] = TriggerBook()
            self.prices[key] = self.working_price(algo.symbol, algo.source)
        return book

    def _register(self, algo: AlgoOrder) -> TriggerBook:
        """An open conditional order joins the indexes; returns its trigger book."""
        self.algos[algo.algo_id] = algo
        key = (algo.account, algo.symbol)
        self.open_count[key] = self.open_count.get(key, 0) + 1
        if algo.client_id:
            self.client_ids[(algo.account, algo.client_id)] = algo.algo_id
        if algo.bound_to_position:
            pos_key = position_key(algo.symbol, algo.position_side)
            self.bound.setdefault((algo.account, pos_key), set()).add(algo.algo_id)
        book = self._book(algo)
        book.count += 1
        return book

    def _on_accepted(self, ev: V.AlgoOrderAccepted, created: int | None = None) -> None:
        algo = AlgoOrder(ev, self.ledger.time if created is None else created)
        self.next_algo_id = ev.algo_id + 1
        book = self._register(algo)
        if not algo.trailing:
            book.add_trigger(algo)
            return
        latest = self.prices[(algo.symbol, algo.source)]
        if algo.activate == 0 and latest:  # active at once, from the latest price
            self._activate(book, algo, latest)
        else:
            book.add_waiting(algo)

    def _activate(self, book: TriggerBook, algo: AlgoOrder, price: int) -> None:
        algo.active = True
        (book.trail_sell if algo.side == SELL else book.trail_buy).add(price, algo)

    def _on_closed(self, ev: V.Event) -> None:
        """Canceled, expired, triggered or rejected: it leaves the trigger book."""
        algo = self.algos.pop(ev.algo_id)  # type: ignore[attr-defined]
        key = (algo.account, algo.symbol)
        self.open_count[key] -= 1
        if not self.open_count[key]:
            del self.open_count[key]
        if algo.client_id:
            self.client_ids.pop((algo.account, algo.client_id), None)
        if algo.bound_to_position:
            bound_key = (algo.account, position_key(algo.symbol, algo.position_side))
            ids = self.bound[bound_key]
            ids.discard(algo.algo_id)
            if not ids:
                del self.bound[bound_key]
        book_key = (algo.symbol, algo.source)
        book = self.books[book_key]
        if not algo.trailing:
            book.remove_trigger(algo)
        elif algo.active:
            (book.trail_sell if algo.side == SELL else book.trail_buy).remove(algo)
        else:
            book.remove_waiting(algo)
        book.count -= 1
        if not book.count:  # nothing waits on this price any more: stop following it
            del self.books[book_key]
            del self.prices[book_key]
            if not self.books:
                self.ledger.price_listeners.remove(self._on_price)

    def _on_price(self, symbol: str, source: int, price: int) -> None:
        """A price event was applied: note the move for the trigger check, and let trailing
        stops activate and follow their extreme (derived state, the same in a rebuild)."""
        key = (symbol, source)
        book = self.books.get(key)
        if book is None:
            return
        if key not in self.moved:
            self.moved[key] = self.prices.get(key, price)
        self.prices[key] = price
        algos = self.algos
        if book.activate_up_first <= price or book.activate_down_last >= price:
            for algo_id in book.activated(price):
                self._activate(book, algos[algo_id], price)
        book.trail_sell.move(price, algos)
        book.trail_buy.move(price, algos)

    # == state ====================================================================================
    def canonical(self) -> list | None:
        """None while no conditional order was ever placed (old logs hash as before)."""
        if self.next_algo_id == 1:
            return None
        return [self.next_algo_id,
                [[a.algo_id, a.account, a.symbol, a.side, a.position_side, a.type, a.quantity,
                  a.price, a.trigger, a.source, a.price_protect, a.close_position,
                  a.reduce_only, a.activate, a.rate, a.tif, a.client_id, a.stp, a.price_match,
                  a.gtd, a.active, a.extreme, a.created] for _, a in sorted(self.algos.items())],
                sorted([s, src, p] for (s, src), p in self.prices.items())]

    def restore(self, data: list) -> None:
        """From `canonical()` (a snapshot): the orders, their trigger books, the prices."""
        next_algo_id, rows, prices = data
        self.prices = {(s, src): p for s, src, p in prices}
        for row in rows:
            (algo_id, account, symbol, side, position_side, type_, quantity, price, trigger,
             source, price_protect, close_position, reduce_only, activate, rate, tif,
             client_id, stp, price_match, gtd, active, extreme, created) = row
            working = "MARK_PRICE" if source == MARK else "CONTRACT_PRICE"
            ev = V.AlgoOrderAccepted(
                algo_id=algo_id, account=account, symbol=symbol, side=side,
                position_side=position_side, order_type=type_, quantity=quantity, price=price,
                trigger_price=trigger, working_type=working, price_protect=price_protect,
                close_position=close_position, reduce_only=reduce_only,
                activate_price=activate, callback_rate=rate, time_in_force=tif,
                client_algo_id=client_id, stp_mode=stp, price_match=price_match,
                good_till_date=gtd)
            if type_ == "TRAILING_STOP_MARKET" and active:  # back in its bucket
                algo = AlgoOrder(ev, created)
                self._activate(self._register(algo), algo, extreme)
            else:
                self._on_accepted(ev, created)
        self.next_algo_id = next_algo_id
