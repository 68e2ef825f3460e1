"""Orders: validation, matching, cancel and modify, and the appliers of order events.

Every order is checked before anything changes (SEED-NOTES §9); a failure is OrderRejected
with Binance's code. An accepted order is OrderAccepted (rest=True: it goes straight to the
book), then its Trades, then OrderRested or OrderExpired for what is left. The liquidation and
token parts send their orders through `validate_new`, `match` and `take` here, so every order
of the venue passes the same checks and the same book.
"""
from __future__ import annotations

from typing import Protocol

from engine.core import errors as E
from engine.core.accounts import Account, Position, fill_result
from engine.core.book import BUY, SELL, Order, crosses, fillable
from engine.core.catalogue import SymbolSpec
from engine.core.errors import Rejected
from engine.core.fixed import SCALE, fmt
from engine.core.ledger import Applier, Ledger
from engine.core.markets import SymbolState
from proto import commands as C
from proto import events as V


class FillBudget(Protocol):
    """Caps how much a liquidation order may fill beyond its bankruptcy price
    (engine.core.liquidation.InsuranceBudget)."""

    def allow(self, price: int) -> int: ...

    def spend(self, qty: int, price: int) -> None: ...


class Orders:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def handlers(self) -> dict[type, Applier]:
        return {C.NewOrder: self._new_order, C.CancelOrder: self._cancel_order,
                C.CancelAllOrders: self._cancel_all, C.ModifyOrder: self._modify_order}

    def appliers(self) -> dict[type, Applier]:
        return {V.OrderAccepted: self._on_order_accepted, V.OrderRested: self._on_order_rested,
                V.Trade: self._on_trade, V.OrderCanceled: self._on_order_canceled,
                V.OrderExpired: self._on_order_expired, V.OrderModified: self._on_order_modified,
                V.OrderRejected: _ignore}

    # == checks ===================================================================================
    def check_leverage_and_margin(self, acct: Account, pos: Position, sym: SymbolState,
                                  side: str, add_qty: int, add_notional: int) -> None:
        """The order adds (add_qty, add_notional) to `side`'s orders (negative for a shrinking
        modify). -2027 if the side's reachable notional (position + open orders of that side +
        this order) exceeds the cap at the account's leverage; -2019 if the extra order margin
        does not fit the available balance."""
        ledger = self.ledger
        table = sym.table_at(ledger.time)
        cap = sym.max_notional(table, pos.leverage)
        pos_notional = ledger.position_figures(pos, sym)[0]
        bq, bn = pos.open_buy_qty, pos.open_buy_notional
        sq, sn = pos.open_sell_qty, pos.open_sell_notional
        if side == BUY:
            reach = pos_notional + bn + add_notional
            bq, bn = bq + add_qty, bn + add_notional
        else:
            reach = -pos_notional + sn + add_notional
            sq, sn = sq + add_qty, sn + add_notional
        if reach > cap:
            raise Rejected(E.MAX_POSITION_AT_LEVERAGE,
                           f"Exceeded the maximum allowable position at current leverage: "
                           f"{fmt(reach)} > {fmt(cap)} USDT at {pos.leverage}x.")
        extra = pos.compute_order_margin(bq, bn, sq, sn) - pos.order_margin
        if extra > 0 and extra > ledger.available_balance(acct):
            raise Rejected(E.MARGIN_INSUFFICIENT, "Margin is insufficient.")

    @staticmethod
    def _check_price_qty(spec: SymbolSpec, sym: SymbolState, side: str, type_: str,
                         price: int, qty: int, reduce_only: bool, ref: int) -> int:
        """Filters of SEED-NOTES §9; returns the order's notional (0 if no price is known)."""
        if qty <= 0:
            raise Rejected(E.QTY_LESS_THAN_ZERO, "Quantity less than or equal to zero.")
        if type_ == "LIMIT":
            if price <= 0:
                raise Rejected(E.PRICE_LESS_THAN_ZERO, "Price less than or equal to zero.")
            if price < spec.min_price:
                raise Rejected(E.PRICE_LESS_THAN_MIN, f"Price less than min price {fmt(spec.min_price)}.")
            if price > spec.max_price:
                raise Rejected(E.PRICE_GREATER_THAN_MAX, f"Price greater than max price {fmt(spec.max_price)}.")
            if (price - spec.min_price) % spec.tick_size:
                raise Rejected(E.PRICE_NOT_ON_TICK, f"Price not increased by tick size {fmt(spec.tick_size)}.")
            max_qty = spec.max_qty
        else:
            max_qty = spec.market_max_qty
        if qty < spec.min_qty:
            raise Rejected(E.QTY_LESS_THAN_MIN, f"Quantity less than min quantity {fmt(spec.min_qty)}.")
        if qty > max_qty:
            raise Rejected(E.QTY_GREATER_THAN_MAX, f"Quantity greater than max quantity {fmt(max_qty)}.")
        if (qty - spec.min_qty) % spec.step_size:
            raise Rejected(E.QTY_NOT_ON_STEP, f"Quantity not increased by step size {fmt(spec.step_size)}.")
        notional = qty * ref // SCALE
        if notional and not reduce_only and notional < spec.min_notional:
            raise Rejected(E.MIN_NOTIONAL, f"Order's notional must be no smaller than "
                                           f"{fmt(spec.min_notional)} (unless you choose reduce only).")
        mark = sym.mark
        if type_ == "LIMIT" and mark:
            if side == BUY:
                bound = mark * spec.multiplier_up // SCALE
                if price > bound:
                    raise Rejected(E.PRICE_HIGHER_THAN_BAND, f"Limit price can't be higher than {fmt(bound)}.")
            else:
                bound = -(-(mark * spec.multiplier_down) // SCALE)
                if price < bound:
                    raise Rejected(E.PRICE_LOWER_THAN_BAND, f"Limit price can't be lower than {fmt(bound)}.")
        return notional

    @staticmethod
    def _check_reduce_only(pos: Position, side: str, qty: int) -> None:
        if pos.qty == 0 or (pos.qty > 0) == (side == BUY) or qty > abs(pos.qty):
            raise Rejected(E.REDUCE_ONLY_REJECTED, "ReduceOnly Order is rejected: it would not "
                                                   "only reduce the position.")

    # == new orders ===============================================================================
    def _new_order(self, cmd: C.NewOrder) -> None:
        try:
            order = self.validate_new(cmd)
        except Rejected as r:
            self.ledger.emit(V.OrderRejected(account=cmd.account, symbol=cmd.symbol, code=r.code,
                                             msg=r.msg, client_order_id=cmd.new_client_order_id))
            return
        self.ledger.emit(order)
        if not order.rest:
            self.match(self.ledger.pending[order.order_id])

    def validate_new(self, cmd: C.NewOrder) -> V.OrderAccepted:
        """Every check of a new order; the OrderAccepted to emit, or Rejected."""
        ledger = self.ledger
        sym = ledger.symbol(cmd.symbol)
        acct = ledger.account(cmd.account)
        spec = sym.spec
        book = sym.book
        side = cmd.side
        if cmd.type == "LIMIT":
            tif = cmd.time_in_force or "GTC"
            price = cmd.price
            ref = price
        else:
            if cmd.price:
                raise Rejected(E.PARAM_NOT_REQUIRED, "Parameter 'price' sent when not required.")
            if cmd.time_in_force is not None:
                raise Rejected(E.PARAM_NOT_REQUIRED, "Parameter 'timeInForce' sent when not required.")
            tif = "IOC"
            price = 0
            best = book.best_ask() if side == BUY else book.best_bid()
            ref = sym.mark or best or 0
        pos = ledger.position(acct, cmd.symbol)
        notional = self._check_price_qty(spec, sym, side, cmd.type, price, cmd.quantity,
                                         cmd.reduce_only, ref)
        if cmd.reduce_only:
            self._check_reduce_only(pos, side, cmd.quantity)
        cid = cmd.new_client_order_id
        if cid and cid in acct.client_ids:
            raise Rejected(E.CLIENT_ID_DUPLICATED, f"ClientOrderId is duplicated: {cid!r}.")
        if pos.open_orders >= spec.max_num_orders:
            raise Rejected(E.MAX_OPEN_ORDERS, f"Reach max open order limit ({spec.max_num_orders}).")
        if not cmd.reduce_only:
            config = ledger.config
            if pos.leverage > config.new_account_max_leverage and ledger.is_young(acct):
                raise Rejected(E.MAX_POSITION_AT_LEVERAGE,
                               f"Accounts registered less than {config.new_account_days} days "
                               f"ago may not open or increase positions above "
                               f"{config.new_account_max_leverage}x; only reduce-only orders.")
            self.check_leverage_and_margin(acct, pos, sym, side, cmd.quantity, notional)
        if tif == "GTX" and crosses(book, side, price):
            raise Rejected(E.GTX_WOULD_TAKE, "Due to the order could not be executed as maker, "
                                             "the Post Only order will be rejected.")
        if tif == "FOK" and fillable(book, side, price, cmd.quantity) < cmd.quantity:
            raise Rejected(E.FOK_UNFILLABLE, "Due to the order could not be filled immediately, "
                                             "the FOK order has been rejected.")
        stp = cmd.self_trade_prevention_mode or ledger.config.default_stp
        rest = tif in ("GTC", "GTX") and not crosses(book, side, price)
        return V.OrderAccepted(order_id=ledger.next_order_id, account=cmd.account,
                               symbol=cmd.symbol, side=side, type=cmd.type, time_in_force=tif,
                               price=price, quantity=cmd.quantity, reduce_only=cmd.reduce_only,
                               client_order_id=cid, stp_mode=stp, rest=rest)

    # == matching =================================================================================
    def match(self, taker: Order) -> None:
        """Take liquidity, then rest or expire what is left."""
        self._settle_remainder(taker, self.take(taker))

    def take(self, taker: Order, limit: int | None = None,
             budget: FillBudget | None = None) -> bool:
        """Match a taker order against the book; True if self-trade prevention expired it.
        `limit` overrides the order's own price; `budget` caps what may fill beyond the
        bankruptcy price (a liquidation order with the insurance fund behind it)."""
        ledger = self.ledger
        emit = ledger.emit
        sym = ledger.symbols[taker.symbol]
        book = sym.book
        spec = sym.spec
        maker_side = SELL if taker.side == BUY else BUY
        is_buy = taker.side == BUY
        if limit is None:
            if taker.type == "LIMIT":
                limit = taker.price
            elif sym.mark:  # market price protection: no fill beyond the band around the mark
                if is_buy:
                    limit = sym.mark * spec.multiplier_up // SCALE
                else:
                    limit = -(-(sym.mark * spec.multiplier_down) // SCALE)
        stp = taker.stp if taker.tif not in ("FOK", "GTX") else "NONE"
        taker_acct = ledger.accounts[taker.account]
        expired_in_match = False
        while taker.remaining > 0:
            level = book.best_level(maker_side)
            if level is None:
                break
            if limit is not None and (level.price > limit if is_buy else level.price < limit):
                break
            maker = level.head
            if maker.account == taker.account and stp != "NONE":
                if stp in ("EXPIRE_MAKER", "EXPIRE_BOTH"):
                    emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                        symbol=maker.symbol, quantity=maker.remaining,
                                        status="EXPIRED_IN_MATCH", reason="selfTrade"))
                if stp in ("EXPIRE_TAKER", "EXPIRE_BOTH"):
                    expired_in_match = True
                    break
                continue
            qty = min(taker.remaining, maker.remaining)
            maker_acct = ledger.accounts[maker.account]
            maker_pos = ledger.position(maker_acct, maker.symbol)
            if maker.reduce_only:
                allowed = reducible(maker_pos, maker.side)
                if allowed == 0:
                    emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                        symbol=maker.symbol, quantity=maker.remaining,
                                        status="EXPIRED", reason="reduceOnly"))
                    continue
                qty = min(qty, allowed)
            taker_pos = ledger.position(taker_acct, taker.symbol)
            if taker.reduce_only:
                allowed = reducible(taker_pos, taker.side)
                if allowed == 0:
                    break
                qty = min(qty, allowed)
            price = level.price
            if budget is not None:
                qty = min(qty, budget.allow(price))
                if qty <= 0:
                    break
            notional = qty * price // SCALE
            maker_fee = -(-(notional * spec.maker_fee) // SCALE)
            # a liquidation order pays the liquidation fee (charged after it) instead
            taker_fee = 0 if taker.liquidation else -(-(notional * spec.taker_fee) // SCALE)
            sign = 1 if is_buy else -1
            # the taker side is applied first, so a self-trade (STP NONE) sees its own effect
            t_qty, t_cost, taker_pnl = fill_result(taker_pos.qty, taker_pos.cost, sign * qty, price)
            if maker.account == taker.account:
                maker_pnl = fill_result(t_qty, t_cost, -sign * qty, price)[2]
            else:
                maker_pnl = fill_result(maker_pos.qty, maker_pos.cost, -sign * qty, price)[2]
            emit(V.Trade(trade_id=ledger.next_trade_id, symbol=taker.symbol, price=price,
                         quantity=qty, taker_side=taker.side,
                         maker_order_id=maker.order_id, taker_order_id=taker.order_id,
                         maker_account=maker.account, taker_account=taker.account,
                         maker_fee=maker_fee, taker_fee=taker_fee,
                         maker_realized_pnl=maker_pnl, taker_realized_pnl=taker_pnl))
            if budget is not None:
                budget.spend(qty, price)
            if maker.reduce_only and maker.remaining and \
                    reducible(maker_acct.positions[maker.symbol], maker.side) == 0:
                emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                    symbol=maker.symbol, quantity=maker.remaining,
                                    status="EXPIRED", reason="reduceOnly"))
        return expired_in_match

    def _settle_remainder(self, taker: Order, expired_in_match: bool) -> None:
        ledger = self.ledger
        taker_acct = ledger.accounts[taker.account]
        if taker.remaining > 0:
            if expired_in_match:
                ledger.emit(V.OrderExpired(order_id=taker.order_id, account=taker.account,
                                           symbol=taker.symbol, quantity=taker.remaining,
                                           status="EXPIRED_IN_MATCH", reason="selfTrade"))
            elif taker.type == "LIMIT" and taker.tif in ("GTC", "GTX") and (
                    not taker.reduce_only or
                    reducible(ledger.position(taker_acct, taker.symbol), taker.side)):
                ledger.emit(V.OrderRested(order_id=taker.order_id, quantity=taker.remaining))
            else:
                reason = "reduceOnly" if taker.reduce_only and taker.tif == "GTC" else taker.tif
                ledger.emit(V.OrderExpired(order_id=taker.order_id, account=taker.account,
                                           symbol=taker.symbol, quantity=taker.remaining,
                                           status="EXPIRED", reason=reason))

    # == cancel and modify ========================================================================
    @staticmethod
    def _find_order(acct: Account, sym: SymbolState, order_id: int, client_id: str) -> Order:
        if not order_id and client_id:
            order_id = acct.client_ids.get(client_id, 0)
        order = sym.book.orders.get(order_id)
        if order is None or order.account != acct.account_id:
            raise Rejected(E.UNKNOWN_ORDER, "Unknown order sent.")
        return order

    def _cancel_order(self, cmd: C.CancelOrder) -> None:
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            order = self._find_order(acct, sym, cmd.order_id, cmd.orig_client_order_id)
        except Rejected as r:
            return ledger.reject_command(cmd, r.code, r.msg)
        ledger.emit(V.OrderCanceled(order_id=order.order_id, account=order.account,
                                    symbol=order.symbol, quantity=order.remaining))

    def _cancel_all(self, cmd: C.CancelAllOrders) -> None:
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
        except Rejected as r:
            return ledger.reject_command(cmd, r.code, r.msg)
        self.cancel_account_orders(acct, sym)

    def cancel_account_orders(self, acct: Account, sym: SymbolState) -> None:
        """Cancel every open order of the account in the symbol, oldest first."""
        pos = acct.positions.get(sym.spec.symbol)
        if pos is None or pos.open_orders == 0:
            return
        mine = [o for o in sym.book.orders.values() if o.account == acct.account_id]
        mine.sort(key=_order_id)
        for o in mine:
            self.ledger.emit(V.OrderCanceled(order_id=o.order_id, account=o.account,
                                             symbol=o.symbol, quantity=o.remaining))

    def _modify_order(self, cmd: C.ModifyOrder) -> None:
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            order = self._find_order(acct, sym, cmd.order_id, "")
            spec = sym.spec
            if cmd.price == order.price and cmd.quantity == order.quantity:
                raise Rejected(E.NO_NEED_TO_MODIFY, "No need to modify the order.")
            self._check_price_qty(spec, sym, order.side, "LIMIT", cmd.price, cmd.quantity,
                                  order.reduce_only, cmd.price)
            executed = order.quantity - order.remaining
            if cmd.quantity <= executed:
                raise Rejected(E.QTY_LESS_THAN_MIN, "Quantity must exceed the executed quantity.")
            new_remaining = cmd.quantity - executed
            pos = ledger.position(acct, cmd.symbol)
            if order.reduce_only:
                self._check_reduce_only(pos, order.side, new_remaining)
            else:
                self.check_leverage_and_margin(
                    acct, pos, sym, order.side, new_remaining - order.remaining,
                    new_remaining * cmd.price // SCALE - order.remaining * order.price // SCALE)
            keep = cmd.price == order.price and cmd.quantity <= order.quantity
            if not keep and order.tif == "GTX" and crosses(sym.book, order.side, cmd.price):
                raise Rejected(E.GTX_WOULD_TAKE, "Due to the order could not be executed as "
                                                 "maker, the Post Only order will be rejected.")
        except Rejected as r:
            ledger.emit(V.OrderRejected(account=cmd.account, symbol=cmd.symbol, code=r.code,
                                        msg=r.msg, order_id=cmd.order_id))
            return
        ledger.emit(V.OrderModified(order_id=order.order_id, account=order.account,
                                    symbol=order.symbol, price=cmd.price, quantity=cmd.quantity,
                                    kept_priority=keep))
        if not keep:
            self.match(order)

    # == appliers: the only code here that mutates state ==========================================
    def _on_order_accepted(self, ev: V.OrderAccepted) -> None:
        ledger = self.ledger
        order = Order(ev.order_id, ev.account, ev.symbol, ev.side, ev.price, ev.quantity,
                      ev.time_in_force, ev.type, ev.reduce_only, ev.client_order_id, ev.stp_mode)
        ledger.next_order_id = ev.order_id + 1
        acct = ledger.accounts[ev.account]
        if ev.client_order_id:
            acct.client_ids[ev.client_order_id] = ev.order_id
        if ev.rest:
            self._rest(order, acct)
        else:
            ledger.pending[ev.order_id] = order

    def _rest(self, order: Order, acct: Account) -> None:
        self.ledger.symbols[order.symbol].book.add(order)
        pos = self.ledger.position_for_update(acct, order.symbol)
        pos.add_open(order.side, order.remaining, order.remaining * order.price // SCALE)
        pos.open_orders += 1
        acct.refresh_order_margin(pos)

    def _on_order_rested(self, ev: V.OrderRested) -> None:
        order = self.ledger.pending.pop(ev.order_id)
        self._rest(order, self.ledger.accounts[order.account])

    def _unrest(self, order: Order, qty: int, acct: Account) -> None:
        """Take `qty` of a resting order off the book and out of its account's open totals."""
        pos = acct.positions[order.symbol]
        pos.add_open(order.side, -qty, -(qty * order.price // SCALE))
        book = self.ledger.symbols[order.symbol].book
        if qty == order.remaining:
            pos.open_orders -= 1
            book.remove(order)
            order.remaining = 0
            acct.forget_client_id(order.order_id, order.client_id)
        else:
            book.reduce(order, qty)
        acct.refresh_order_margin(pos)

    def _on_trade(self, ev: V.Trade) -> None:
        ledger = self.ledger
        sym = ledger.symbols[ev.symbol]
        maker = sym.book.orders[ev.maker_order_id]
        taker = ledger.pending[ev.taker_order_id]
        qty, price = ev.quantity, ev.price
        sign = 1 if ev.taker_side == BUY else -1
        taker_acct = ledger.accounts[ev.taker_account]
        maker_acct = ledger.accounts[ev.maker_account]
        tp = ledger.position_for_update(taker_acct, ev.symbol)
        tp.apply_fill(sign * qty, price)
        taker_acct.wallet += ev.taker_realized_pnl - ev.taker_fee
        mp = ledger.position_for_update(maker_acct, ev.symbol)
        mp.apply_fill(-sign * qty, price)
        maker_acct.wallet += ev.maker_realized_pnl - ev.maker_fee
        ledger.fees_collected += ev.maker_fee + ev.taker_fee
        if tp.open_orders:  # the position moved: the opening part of its orders changed
            taker_acct.refresh_order_margin(tp)
        self._unrest(maker, qty, maker_acct)  # refreshes the maker's
        taker.remaining -= qty
        if taker.remaining == 0:
            del ledger.pending[taker.order_id]
            taker_acct.forget_client_id(taker.order_id, taker.client_id)
        sym.last_price = price
        ledger.next_trade_id = ev.trade_id + 1

    def _on_order_canceled(self, ev: V.OrderCanceled) -> None:
        order = self.ledger.symbols[ev.symbol].book.orders[ev.order_id]
        self._unrest(order, order.remaining, self.ledger.accounts[order.account])

    def _on_order_expired(self, ev: V.OrderExpired) -> None:
        ledger = self.ledger
        order = ledger.pending.pop(ev.order_id, None)
        if order is not None:  # the taker's remainder
            ledger.accounts[order.account].forget_client_id(order.order_id, order.client_id)
            return
        order = ledger.symbols[ev.symbol].book.orders[ev.order_id]
        self._unrest(order, order.remaining, ledger.accounts[order.account])

    def _on_order_modified(self, ev: V.OrderModified) -> None:
        ledger = self.ledger
        book = ledger.symbols[ev.symbol].book
        order = book.orders[ev.order_id]
        acct = ledger.accounts[order.account]
        pos = acct.positions[order.symbol]
        executed = order.quantity - order.remaining
        new_remaining = ev.quantity - executed
        if ev.kept_priority:  # same price, quantity not larger: shrink in place
            shrink = order.remaining - new_remaining
            pos.add_open(order.side, -shrink, -(shrink * order.price // SCALE))
            book.reduce(order, shrink)
            order.quantity = ev.quantity
            acct.refresh_order_margin(pos)
            return
        pos.add_open(order.side, -order.remaining, -(order.remaining * order.price // SCALE))
        pos.open_orders -= 1
        book.remove(order)
        acct.refresh_order_margin(pos)
        order.price = ev.price
        order.quantity = ev.quantity
        order.remaining = new_remaining
        ledger.pending[order.order_id] = order


def reducible(pos: Position, side: str) -> int:
    """How much an order of `side` can fill while only reducing the position."""
    if side == BUY:
        return -pos.qty if pos.qty < 0 else 0
    return pos.qty if pos.qty > 0 else 0


def _order_id(order: Order) -> int:
    return order.order_id


def _ignore(_ev: V.Event) -> None:
    return None
