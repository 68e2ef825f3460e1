"""Orders: validation, matching, cancel and modify, good-till-date expiry, and the appliers of
order events.

Every order is checked before anything changes (SEED-NOTES §9 and §11); a failure is
OrderRejected with Binance's code and text. An accepted order is OrderAccepted (rest=True: it
goes straight to the book), then its Trades, then OrderRested or OrderExpired for what is left.
The liquidation, conditional-order and token parts send their orders through `validate_new`,
`match` and `take` here, so every order of the venue passes the same checks and the same book.

COIN-M symbols (engine.core.inverse) take the same path: quantities are whole contracts, and
an order's notional, cost and open loss, a fill's value and fees are in the coin.

Position side: in one-way mode an order's positionSide is BOTH; in hedge mode LONG or SHORT
(-4061 otherwise), and BUY LONG / SELL SHORT open, SELL LONG / BUY SHORT close: a closing order
is reduce-only (it can never flip a leg), and reduceOnly itself may not be sent (-1106).
"""
from __future__ import annotations

from typing import Callable, Final, Protocol

from msgspec.structs import astuple
from sortedcontainers import SortedList

from engine.core import errors as E
from engine.core import inverse
from engine.core.accounts import BOTH, LONG, SHORT, Account, OpenOrders, Position, trade_fill
from engine.core.book import BUY, SELL, Order, OrderBook, crosses, fillable
from engine.core.catalogue import SymbolSpec
from engine.core.errors import Rejected
from engine.core.fixed import SCALE, fmt
from engine.core.ledger import LAST, Applier, Ledger
from engine.core.markets import SymbolState
from proto import commands as C
from proto import events as V

CONDITIONAL_TYPES: Final = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                               "TRAILING_STOP_MARKET"})
RESTING_TIF: Final = ("GTC", "GTX", "GTD")
GTD_MIN_AHEAD_MS: Final = 600_000  # goodTillDate must be more than 600 s after the order
GTD_MAX: Final = 253_402_300_799_000  # 9999-12-31 23:59:59 UTC
# the hot event classes and astuple under Final names: mypyc keeps them in C statics (a module
# attribute such as V.Trade costs a dictionary lookup and an attribute lookup on every use)
_ACCEPTED: Final = V.OrderAccepted
_TRADE: Final = V.Trade
_CANCELED: Final = V.OrderCanceled
_RESTED: Final = V.OrderRested
_EXPIRED: Final = V.OrderExpired
_astuple: Final = astuple
SHORT_COST_FACTOR: Final = 100_150_000  # a sell's margin assumes at least last price x 1.0015 (1e-8)
MARKET_BUY_FACTOR: Final = 100_050_000  # a market buy's assumed price: best ask x 1.0005 (1e-8)


class FillBudget(Protocol):
    """Caps how much a liquidation order may fill beyond its bankruptcy price
    (engine.core.liquidation.InsuranceBudget)."""

    def allow(self, price: int) -> int: ...

    def spend(self, qty: int, price: int) -> None: ...


def closes(side: str, position_side: str) -> bool:
    """A hedge-mode order that closes its leg: SELL LONG or BUY SHORT."""
    return (position_side == LONG and side == SELL) or (position_side == SHORT and side == BUY)


def reducible(pos: Position, side: str) -> int:
    """How much an order of `side` can fill while only reducing the position."""
    if side == BUY:
        return -pos.qty if pos.qty < 0 else 0
    return pos.qty if pos.qty > 0 else 0


def match_price(book: OrderBook, side: str, mode: str) -> int:
    """Binance's priceMatch: OPPONENT[_n] takes the n-th best price of the other side, QUEUE[_n]
    the n-th best of the order's own side (n = 1 without a suffix); 0 if the book has fewer."""
    name, _, n_text = mode.partition("_")
    n = int(n_text) if n_text else 1
    book_side = (SELL if side == BUY else BUY) if name == "OPPONENT" else side
    for i, level in enumerate(book.levels(book_side), start=1):
        if i == n:
            return level.price
    return 0


class Orders:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # resting GTD orders by expiry: (goodTillDate ms, order id, symbol)
        self.gtd: SortedList = SortedList()
        # set by the engine: cancels the account's conditional orders in a symbol (cancel-all)
        self.cancel_conditional: Callable[[Account, str], None] | None = None

    def handlers(self) -> dict[type, Applier]:
        return {C.NewOrder: self.new_order, C.CancelOrder: self.cancel_order,
                C.CancelAllOrders: self._cancel_all, C.ModifyOrder: self._modify_order}

    def appliers(self) -> dict[type, Applier]:
        return {V.OrderAccepted: self._on_order_accepted, V.OrderRested: self._on_order_rested,
                V.Trade: self._on_trade, V.OrderCanceled: self._on_order_canceled,
                V.OrderExpired: self._on_order_expired, V.OrderModified: self._on_order_modified,
                V.OrderRejected: _ignore}

    # == costs and limits =========================================================================
    def order_cost(self, sym: SymbolState, side: str, type_: str, price: int) -> tuple[int, int]:
        """(assumed price, open loss per unit) of an order for the open-order margin (rules 2;
        engine.core.accounts): Binance's "cost required to open a position". For a COIN-M
        symbol both are per contract in the coin: size / assumed price and the open loss
        size x |1/mark - 1/price| (rounded up; engine.core.inverse)."""
        if self.ledger.config.rules < 2:
            return 0, 0
        if sym.contract_size:
            return self._coin_order_cost(sym, side, type_, price)
        mark = sym.mark
        book = sym.book
        if side == BUY:
            if type_ == "MARKET":
                ask = book.ask
                assumed = -(-(ask * MARKET_BUY_FACTOR) // SCALE) if ask is not None else mark
            else:
                assumed = price
            loss = assumed - mark if mark and assumed > mark else 0
        else:
            reference = price if type_ != "MARKET" else (book.bid or mark)
            last = -(-(sym.last_price * SHORT_COST_FACTOR) // SCALE)
            assumed = last if last > mark else mark  # max(last, mark, reference)
            if reference > assumed:
                assumed = reference
            loss = mark - reference if mark and mark > reference else 0
        return assumed, loss

    def _coin_order_cost(self, sym: SymbolState, side: str, type_: str,
                         price: int) -> tuple[int, int]:
        """The USD-M rule with the notional in the coin: the assumed price is the same (a buy:
        its price, a market buy the best ask x 1.0005; a sell: max(last x 1.0015, mark, its
        price)); cost per contract = size / assumed price; open loss per contract when a buy is
        above the mark or a sell below it."""
        size = sym.contract_size
        mark = sym.mark
        book = sym.book
        if side == BUY:
            if type_ == "MARKET":
                ask = book.ask
                assumed = -(-(ask * MARKET_BUY_FACTOR) // SCALE) if ask is not None else mark
            else:
                assumed = price
            loss = inverse.open_loss_per_contract(size, mark, assumed) \
                if mark and assumed > mark else 0
        else:
            reference = price if type_ != "MARKET" else (book.bid or mark)
            last = -(-(sym.last_price * SHORT_COST_FACTOR) // SCALE)
            assumed = max(last, mark, reference)
            loss = inverse.open_loss_per_contract(size, mark, reference) \
                if mark and reference and reference < mark else 0
        cost = inverse.contract_value_up(size, assumed) if assumed else 0
        return cost, loss

    def check_leverage_and_margin(self, acct: Account, pos: Position, sym: SymbolState,
                                  side: str, add_notional: int, trial: OpenOrders) -> None:
        """The order adds `add_notional` to `side`'s orders of `pos` (negative for a shrinking
        modify), whose sums become `trial` (OpenOrders.with_order). -2027 if the reachable
        notional exceeds the cap at the symbol's leverage (one-way: the position plus that
        side's orders; hedge mode: both legs with their opening orders, as the tiers count
        long and short together); -2019 if the extra order margin does not fit the available
        balance."""
        ledger = self.ledger
        table = sym.table_at(ledger.time)
        cap = sym.max_notional(table, pos.leverage)
        if acct.dual_side:
            reach = add_notional
            for leg in acct.legs(sym.spec.symbol):
                notional = abs(ledger.position_figures(leg, sym)[0])
                reach += notional + (leg.buys.notional if leg.side == LONG else leg.sells.notional)
        elif side == BUY:
            reach = ledger.position_figures(pos, sym)[0] + pos.buys.notional + add_notional
        else:
            reach = -ledger.position_figures(pos, sym)[0] + pos.sells.notional + add_notional
        if reach > cap:
            unit = sym.spec.base_asset if sym.contract_size else sym.spec.quote_asset
            raise Rejected(E.MAX_POSITION_AT_LEVERAGE, f"{fmt(reach)} > {fmt(cap)} {unit} at "
                                                       f"{pos.leverage}x")
        # only `side`'s share changes: its margin with the order, less what it holds now
        if side == BUY:
            extra = pos.side_margin(True, trial) - pos.buy_margin
        else:
            extra = pos.side_margin(False, trial) - pos.sell_margin
        if extra > 0:
            available = ledger.available_balance(acct, sym.asset)
            if extra > available:
                raise Rejected(E.MARGIN_INSUFFICIENT, f"{fmt(extra)} {sym.asset} needed, "
                                                      f"{fmt(max(available, 0))} available")

    @staticmethod
    def _check_price_qty(spec: SymbolSpec, sym: SymbolState, side: str, type_: str,
                         price: int, qty: int, reduce_only: bool, ref: int,
                         rules: int = 2) -> int:
        """Filters of SEED-NOTES §9; returns the order's notional (0 if no price is known).
        Rules 1 had no -4131 (a market order filled inside the band and expired the rest)."""
        if qty <= 0:
            raise Rejected(E.QTY_LESS_THAN_ZERO)
        if type_ == "LIMIT":
            if price < 0 or (price == 0 and rules < 2):
                raise Rejected(E.PRICE_LESS_THAN_ZERO)
            if price < spec.min_price:
                raise Rejected(E.PRICE_LESS_THAN_MIN, f"min price {fmt(spec.min_price)}")
            if price > spec.max_price:
                raise Rejected(E.PRICE_GREATER_THAN_MAX, f"max price {fmt(spec.max_price)}")
            if (price - spec.min_price) % spec.tick_size:
                raise Rejected(E.PRICE_NOT_ON_TICK, f"tick size {fmt(spec.tick_size)}")
            max_qty = spec.max_qty
        else:
            max_qty = spec.market_max_qty
        if qty < spec.min_qty:
            raise Rejected(E.QTY_LESS_THAN_MIN, f"min quantity {fmt(spec.min_qty)}")
        if qty > max_qty:
            raise Rejected(E.QTY_GREATER_THAN_MAX, f"max quantity {fmt(max_qty)}")
        if (qty - spec.min_qty) % spec.step_size:
            raise Rejected(E.QTY_NOT_ON_STEP, f"step size {fmt(spec.step_size)}")
        notional = sym.order_notional(qty, ref) if ref else 0
        if notional and not reduce_only and notional < spec.min_notional:
            raise Rejected(E.MIN_NOTIONAL, f"notional {fmt(notional)}",
                           arg=fmt(spec.min_notional))
        mark = sym.mark
        if type_ == "LIMIT" and mark:
            if side == BUY:
                bound = mark * spec.multiplier_up // SCALE
                if price > bound:
                    raise Rejected(E.PRICE_HIGHER_THAN_BAND, f"limit price can't be higher than "
                                                             f"{fmt(bound)}")
            else:
                bound = -(-(mark * spec.multiplier_down) // SCALE)
                if price < bound:
                    raise Rejected(E.PRICE_LOWER_THAN_BAND, f"limit price can't be lower than "
                                                            f"{fmt(bound)}")
        elif type_ == "MARKET" and mark and rules >= 2:  # the best counter price in the band
            if side == BUY:
                best = sym.book.ask
                bound = mark * spec.multiplier_up // SCALE
                if best is not None and best > bound:
                    raise Rejected(E.MARKET_ORDER_OUTSIDE_BAND, f"best ask {fmt(best)} > "
                                                                f"{fmt(bound)}")
            else:
                best = sym.book.bid
                bound = -(-(mark * spec.multiplier_down) // SCALE)
                if best is not None and best < bound:
                    raise Rejected(E.MARKET_ORDER_OUTSIDE_BAND, f"best bid {fmt(best)} < "
                                                                f"{fmt(bound)}")
        return notional

    @staticmethod
    def _check_reduce_only(pos: Position, side: str, qty: int) -> None:
        if pos.qty == 0 or (pos.qty > 0) == (side == BUY) or qty > abs(pos.qty):
            raise Rejected(E.REDUCE_ONLY_REJECTED, "it would not only reduce the position "
                                                   f"({fmt(pos.qty)})")

    @staticmethod
    def position_side(acct: Account, side: str, sent: str | None,
                      reduce_only: bool | None) -> tuple[str, bool]:
        """(the order's position side, whether it only reduces) by the account's mode."""
        if acct.dual_side:
            if sent not in (LONG, SHORT):
                raise Rejected(E.POSITION_SIDE_NOT_MATCH, "hedge mode: positionSide LONG or "
                                                          "SHORT")
            if reduce_only is not None:
                raise Rejected(E.PARAM_NOT_REQUIRED, "hedge mode closes a leg with the opposite "
                                                     "side", arg="reduceonly")
            return sent, closes(side, sent)
        if sent is not None and sent != BOTH:
            raise Rejected(E.POSITION_SIDE_NOT_MATCH, "one-way mode: positionSide BOTH")
        return BOTH, bool(reduce_only)

    def good_till(self, tif: str, good_till_date: int) -> int:
        """The order's goodTillDate (whole seconds, as Binance keeps it), checked; 0 if none."""
        if tif != "GTD":
            if good_till_date:
                raise Rejected(E.PARAM_NOT_REQUIRED, arg="goodTillDate")
            return 0
        if not good_till_date:
            raise Rejected(E.MANDATORY_PARAM, arg="goodTillDate")
        gtd = good_till_date // 1000 * 1000
        if gtd <= self.ledger.time + GTD_MIN_AHEAD_MS or gtd >= GTD_MAX:
            raise Rejected(E.GOOD_TILL_DATE)
        return gtd

    # == new orders ===============================================================================
    def new_order(self, cmd: C.NewOrder) -> None:
        """The NewOrder handler (Engine.handle calls it directly: the hot path)."""
        ledger = self.ledger
        try:
            accepted = self.validate_new(cmd)
        except Rejected as r:
            ledger.emit(V.OrderRejected(account=cmd.account, symbol=cmd.symbol, code=r.code,
                                        msg=r.msg, client_order_id=cmd.new_client_order_id,
                                        detail=r.detail))
            return
        ledger.out.append(accepted)  # emitted: recorded, then applied by its applier
        order = self._accept(accepted)
        if not accepted.rest:
            self.match(order)

    def validate_new(self, cmd: C.NewOrder) -> V.OrderAccepted:
        """Every check of a new order; the OrderAccepted to emit, or Rejected. (The command's
        fields are read once each: they are attributes of a msgspec struct.)"""
        ledger = self.ledger
        # the command's fields in one call (a struct's attributes are generic reads for
        # compiled code); in the order of proto.commands.NewOrder
        fields: tuple[int, str, str, str, int, int, str | None, bool | None, str, str | None,
                      str | None, str | None, int] = _astuple(cmd)
        (account, symbol, side, type_, qty, sent_price, sent_tif, sent_reduce_only, cid,
         sent_stp, sent_position_side, price_match, good_till_date) = fields
        sym = ledger.symbol(symbol)
        acct = ledger.account(account)
        spec = sym.spec
        book = sym.book
        if type_ in CONDITIONAL_TYPES:
            raise Rejected(E.STOP_ORDER_SWITCH_ALGO, f"{type_} is placed with newAlgoOrder")
        position_side, reduce_only = self.position_side(acct, side, sent_position_side,
                                                        sent_reduce_only)
        if price_match == "NONE":
            price_match = None
        rules = ledger.config.rules
        if type_ == "LIMIT":
            if sent_tif is None and rules >= 2:
                raise Rejected(E.MANDATORY_PARAM, arg="timeInForce")
            tif = sent_tif or "GTC"  # rules 1 defaulted to GTC
            if price_match is not None:
                if sent_price:
                    raise Rejected(E.PARAM_NOT_REQUIRED, "priceMatch sets the price",
                                   arg="price")
                price = match_price(book, side, price_match)
                if not price:
                    raise Rejected(E.BBO_ORDER_REJECT, f"{price_match}: the book is too thin")
            elif sent_price == 0 and rules >= 2:
                raise Rejected(E.MANDATORY_PARAM, arg="price")
            else:
                price = sent_price
            ref = price
        else:
            if sent_price:
                raise Rejected(E.PARAM_NOT_REQUIRED, arg="price")
            if sent_tif is not None:
                raise Rejected(E.PARAM_NOT_REQUIRED, arg="timeInForce")
            if price_match is not None:
                raise Rejected(E.PRICE_MATCH_ORDER_TYPE)
            tif = "IOC"
            price = 0
            best = book.ask if side == BUY else book.bid
            ref = sym.mark or best or 0
        gtd = self.good_till(tif, good_till_date)
        pos = ledger.position(acct, symbol, position_side)
        notional = self._check_price_qty(spec, sym, side, type_, price, qty, reduce_only, ref,
                                         rules)
        if reduce_only:
            self._check_reduce_only(pos, side, qty)
        if cid and cid in acct.client_ids:
            raise Rejected(E.CLIENT_ID_DUPLICATED, repr(cid))
        # one-way mode: `pos` is the symbol's one position (or a fresh one, without orders)
        open_orders = sum(leg.open_orders for leg in acct.legs(symbol)) if acct.dual_side \
            else pos.open_orders
        if open_orders >= spec.max_num_orders:
            raise Rejected(E.MAX_OPEN_ORDERS, f"{spec.max_num_orders} open orders")
        cost_price, loss_unit = self.order_cost(sym, side, type_, price)
        if not reduce_only:
            config = ledger.config
            if pos.leverage > config.new_account_max_leverage and ledger.is_young(acct):
                raise Rejected(E.MAX_POSITION_AT_LEVERAGE,
                               f"accounts registered less than {config.new_account_days} days "
                               f"ago may not open or increase positions above "
                               f"{config.new_account_max_leverage}x; only reduce-only orders")
            trial = (pos.buys if side == BUY else pos.sells).with_order(qty, notional,
                                                                        cost_price, loss_unit)
            self.check_leverage_and_margin(acct, pos, sym, side, notional, trial)
        if tif == "GTX" and crosses(book, side, price):
            raise Rejected(E.GTX_WOULD_TAKE)
        if tif == "FOK" and fillable(book, side, price, qty) < qty:
            raise Rejected(E.FOK_UNFILLABLE)
        stp = sent_stp or ledger.config.default_stp
        rest = (tif == "GTC" or tif == "GTX" or tif == "GTD") and not crosses(book, side, price)
        # positional, in the event's field order (proto/events.py): the fastest construction
        return _ACCEPTED(ledger.next_order_id, account, symbol, side, type_, tif, price,
                               qty, reduce_only, cid, stp, rest, False, position_side,
                               cost_price, loss_unit, gtd)

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
        liquidation_free = ledger.config.rules >= 2
        expired_in_match = False
        while taker.remaining > 0:
            level = book.best_level(maker_side)
            if level is None:
                break
            if limit is not None and (level.price > limit if is_buy else level.price < limit):
                break
            maker = level.head
            assert maker is not None  # a level holds at least one order
            if maker.account == taker.account and stp != "NONE":
                if stp in ("EXPIRE_MAKER", "EXPIRE_BOTH"):
                    ledger.emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                        symbol=maker.symbol, quantity=maker.remaining,
                                        status="EXPIRED_IN_MATCH", reason="selfTrade"))
                if stp in ("EXPIRE_TAKER", "EXPIRE_BOTH"):
                    expired_in_match = True
                    break
                continue
            qty = min(taker.remaining, maker.remaining)
            maker_pos = self._stored_position(maker)
            if maker.reduce_only:
                allowed = reducible(maker_pos, maker.side)
                if allowed == 0:
                    ledger.emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                        symbol=maker.symbol, quantity=maker.remaining,
                                        status="EXPIRED", reason="reduceOnly"))
                    continue
                qty = min(qty, allowed)
            taker_pos = self._stored_position(taker)  # a fresh one before its first fill
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
            notional = sym.trade_value(qty, price)
            maker_fee = -(-(notional * spec.maker_fee) // SCALE)
            # a liquidation order pays the liquidation fee (charged after it) instead (rules 1
            # charged it the taker fee as well)
            taker_fee = 0 if taker.liquidation and liquidation_free else \
                -(-(notional * spec.taker_fee) // SCALE)
            sign = 1 if is_buy else -1
            # the taker side is applied first, so a self-trade (STP NONE) sees its own effect
            size = sym.contract_size
            t_qty, t_cost, taker_pnl = trade_fill(size, taker_pos.qty, taker_pos.cost, sign * qty,
                                                  price)
            if maker.account == taker.account and maker.position_side == taker.position_side:
                maker_pnl = trade_fill(size, t_qty, t_cost, -sign * qty, price)[2]
            else:
                maker_pnl = trade_fill(size, maker_pos.qty, maker_pos.cost, -sign * qty,
                                       price)[2]
            # positional, in the event's field order (proto/events.py); recorded and applied
            # as Ledger.emit does, with the applier called directly
            trade = _TRADE(ledger.next_trade_id, taker.symbol, price, qty, taker.side,
                            maker.order_id, taker.order_id, maker.account, taker.account,
                            maker_fee, taker_fee, maker_pnl, taker_pnl)
            ledger.out.append(trade)
            self._on_trade(trade)
            if budget is not None:
                budget.spend(qty, price)
            if maker.reduce_only and maker.remaining and reducible(
                    self._position_of(maker, self._account_of(maker)),
                    maker.side) == 0:
                ledger.emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                    symbol=maker.symbol, quantity=maker.remaining,
                                    status="EXPIRED", reason="reduceOnly"))
        return expired_in_match

    def _settle_remainder(self, taker: Order, expired_in_match: bool) -> None:
        ledger = self.ledger
        taker_acct = self._account_of(taker)
        if taker.remaining > 0:
            if expired_in_match:
                ledger.emit(V.OrderExpired(order_id=taker.order_id, account=taker.account,
                                           symbol=taker.symbol, quantity=taker.remaining,
                                           status="EXPIRED_IN_MATCH", reason="selfTrade"))
            elif taker.type == "LIMIT" and taker.tif in RESTING_TIF and (
                    not taker.reduce_only or
                    reducible(ledger.position(taker_acct, taker.symbol, taker.position_side),
                              taker.side)):
                ledger.emit(_RESTED(order_id=taker.order_id, quantity=taker.remaining))
            else:
                reason = "reduceOnly" if taker.reduce_only and taker.tif in RESTING_TIF \
                    else taker.tif
                ledger.emit(V.OrderExpired(order_id=taker.order_id, account=taker.account,
                                           symbol=taker.symbol, quantity=taker.remaining,
                                           status="EXPIRED", reason=reason))

    # == good till date ===========================================================================
    def next_expiry(self) -> int:
        """The earliest goodTillDate of a resting order (ms), or a time never reached."""
        return self.gtd[0][0] if self.gtd else 1 << 62

    def expire_due(self, time: int) -> None:
        """Expire the resting GTD orders whose goodTillDate is at or before `time`, oldest
        first (Engine.handle calls this before the command)."""
        ledger = self.ledger
        while self.gtd and self.gtd[0][0] <= time:
            _, order_id, symbol = self.gtd[0]
            order = ledger.symbols[symbol].book.orders[order_id]
            ledger.emit(V.OrderExpired(order_id=order_id, account=order.account,
                                       symbol=order.symbol, quantity=order.remaining,
                                       status="EXPIRED", reason="GTD"))

    # == cancel and modify ========================================================================
    @staticmethod
    def _find_order(acct: Account, sym: SymbolState, order_id: int, client_id: str) -> Order:
        if not order_id and client_id:
            order_id = acct.client_ids.get(client_id, 0)
        order = sym.book.orders.get(order_id)
        if order is None or order.account != acct.account_id:
            raise Rejected(E.UNKNOWN_ORDER)
        return order

    def cancel_order(self, cmd: C.CancelOrder) -> None:
        """The CancelOrder handler (Engine.handle calls it directly: the hot path)."""
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            order = self._find_order(acct, sym, cmd.order_id, cmd.orig_client_order_id)
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        canceled = _CANCELED(order.order_id, order.account, order.symbol,
                                   order.remaining)
        ledger.out.append(canceled)  # emitted: recorded, then applied by its applier
        self._unrest(order, order.remaining, acct)  # what _on_order_canceled does

    def _cancel_all(self, cmd: C.CancelAllOrders) -> None:
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        self.cancel_account_orders(acct, sym)
        if self.cancel_conditional is not None:
            self.cancel_conditional(acct, cmd.symbol)

    def cancel_account_orders(self, acct: Account, sym: SymbolState) -> None:
        """Cancel every open order of the account in the symbol, oldest first."""
        if not any(leg.open_orders for leg in acct.legs(sym.spec.symbol)):
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
                raise Rejected(E.NO_NEED_TO_MODIFY)
            self._check_price_qty(spec, sym, order.side, "LIMIT", cmd.price, cmd.quantity,
                                  order.reduce_only, cmd.price, ledger.config.rules)
            executed = order.quantity - order.remaining
            if cmd.quantity <= executed:
                raise Rejected(E.QTY_LESS_THAN_MIN, "the quantity must exceed the executed "
                                                    "quantity")
            new_remaining = cmd.quantity - executed
            pos = ledger.position(acct, cmd.symbol, order.position_side)
            keep = cmd.price == order.price and cmd.quantity <= order.quantity
            if keep:
                cost_price, loss_unit = order.cost_price, order.loss_unit
            else:
                cost_price, loss_unit = self.order_cost(sym, order.side, "LIMIT", cmd.price)
            if order.reduce_only:
                self._check_reduce_only(pos, order.side, new_remaining)
            else:
                rem = order.remaining
                old_notional = sym.order_notional(rem, order.price)
                new_notional = sym.order_notional(new_remaining, cmd.price)
                trial = (pos.buys if order.side == BUY else pos.sells).with_order(
                    -rem, -old_notional, order.cost_price, order.loss_unit)
                trial.add(new_remaining, new_notional, cost_price, loss_unit)
                self.check_leverage_and_margin(acct, pos, sym, order.side,
                                               new_notional - old_notional, trial)
            if not keep and order.tif == "GTX" and crosses(sym.book, order.side, cmd.price):
                raise Rejected(E.GTX_WOULD_TAKE)
        except Rejected as r:
            ledger.emit(V.OrderRejected(account=cmd.account, symbol=cmd.symbol, code=r.code,
                                        msg=r.msg, order_id=cmd.order_id, detail=r.detail))
            return
        ledger.emit(V.OrderModified(order_id=order.order_id, account=order.account,
                                    symbol=order.symbol, price=cmd.price, quantity=cmd.quantity,
                                    kept_priority=keep, cost_price=cost_price,
                                    loss_unit=loss_unit))
        if not keep:
            self.match(order)

    # == appliers: the only code here that mutates state ==========================================
    def apply(self, ev: V.Event) -> bool:
        """Apply `ev` if it is one of the order events that make up most of a log (a direct
        call: Engine.apply_record's fast path); False if it is not one of them."""
        kind = type(ev)
        if kind is _ACCEPTED:
            self._accept(ev)
        elif kind is _TRADE:
            self._on_trade(ev)
        elif kind is _CANCELED:
            self._on_order_canceled(ev)
        elif kind is _RESTED:
            self._on_order_rested(ev)
        elif kind is _EXPIRED:
            self._on_order_expired(ev)
        else:
            return False
        return True

    def _on_order_accepted(self, ev: V.OrderAccepted) -> None:
        self._accept(ev)

    def _accept(self, ev: V.OrderAccepted) -> Order:
        """The applier of OrderAccepted; returns the order (resting, or pending to match)."""
        ledger = self.ledger
        # the event's fields in one call, in the order of proto.events.OrderAccepted
        fields: tuple[int, int, str, str, str, str, int, int, bool, str, str, bool, bool, str,
                      int, int, int] = _astuple(ev)
        (order_id, account, symbol, side, type_, tif, price, quantity, reduce_only, cid, stp,
         rest, liquidation, position_side, cost_price, loss_unit, gtd) = fields
        order = Order(order_id, account, symbol, side, price, quantity, tif, type_, reduce_only,
                      cid, stp, liquidation, position_side, cost_price, loss_unit, gtd)
        ledger.next_order_id = order_id + 1
        acct = order.acct = ledger.accounts[account]
        if cid:
            acct.client_ids[cid] = order_id
        if rest:
            self._rest(order, acct)
        else:
            ledger.pending[order_id] = order
        return order

    def _account_of(self, order: Order) -> Account:
        """The order's account: kept on the order (else looked up)."""
        acct = order.acct
        if acct is None:
            acct = order.acct = self.ledger.accounts[order.account]
        return acct

    def _stored_position(self, order: Order) -> Position:
        """The order's position without storing one: the order's own (a resting order, or a
        taker after its first fill), else the stored one or a fresh one."""
        pos = order.pos
        if pos is not None:
            return pos
        ledger = self.ledger
        return ledger.position(ledger.accounts[order.account], order.symbol,
                               order.position_side)

    def _position_of(self, order: Order, acct: Account) -> Position:
        """The order's stored position (stored now if it was new), kept on the order."""
        pos = order.pos
        if pos is None:
            pos = order.pos = self.ledger.position_for_update(acct, order.symbol,
                                                              order.position_side)
        return pos

    def _rest(self, order: Order, acct: Account) -> None:
        sym = self.ledger.symbols[order.symbol]
        sym.book.add(order)
        pos = self._position_of(order, acct)
        rem = order.remaining
        buy = order.side == BUY
        (pos.buys if buy else pos.sells).add(rem, sym.order_notional(rem, order.price),
                                             order.cost_price, order.loss_unit)
        pos.open_orders += 1
        acct.refresh_side(pos, buy)
        if order.gtd:
            self.gtd.add((order.gtd, order.order_id, order.symbol))

    def _on_order_rested(self, ev: V.OrderRested) -> None:
        order = self.ledger.pending.pop(ev.order_id)
        self._rest(order, self._account_of(order))

    def _unrest(self, order: Order, qty: int, acct: Account) -> None:
        """Take `qty` of a resting order off the book and out of its account's open totals."""
        pos = self._position_of(order, acct)
        sym = self.ledger.symbols[order.symbol]
        buy = order.side == BUY
        (pos.buys if buy else pos.sells).add(-qty, -sym.order_notional(qty, order.price),
                                             order.cost_price, order.loss_unit)
        book = sym.book
        if qty == order.remaining:
            pos.open_orders -= 1
            book.remove(order)
            order.remaining = 0
            acct.forget_client_id(order.order_id, order.client_id)
            if order.gtd:
                self.gtd.discard((order.gtd, order.order_id, order.symbol))
        else:
            book.reduce(order, qty)
        acct.refresh_side(pos, buy)

    def _on_trade(self, ev: V.Trade) -> None:
        ledger = self.ledger
        # the event's fields in one call, in the order of proto.events.Trade
        fields: tuple[int, str, int, int, str, int, int, int, int, int, int, int, int] = \
            _astuple(ev)
        (trade_id, symbol, price, qty, taker_side, maker_order_id, taker_order_id, maker_account,
         taker_account, maker_fee, taker_fee, maker_pnl, taker_pnl) = fields
        sym = ledger.symbols[symbol]
        maker = sym.book.orders[maker_order_id]
        taker = ledger.pending[taker_order_id]
        dq = qty if taker_side == BUY else -qty
        taker_acct = self._account_of(taker)  # the accounts the event names
        maker_acct = self._account_of(maker)
        tp = self._position_of(taker, taker_acct)
        taker_qty = tp.qty
        taker_acct.fill(tp, dq, price)
        asset = sym.asset
        if asset == "USDT":
            taker_acct.wallet += taker_pnl - taker_fee
        else:
            taker_acct.credit(asset, taker_pnl - taker_fee)
        mp = self._position_of(maker, maker_acct)
        maker_qty = mp.qty
        maker_acct.fill(mp, -dq, price)
        if asset == "USDT":
            maker_acct.wallet += maker_pnl - maker_fee
            ledger.fees_collected += maker_fee + taker_fee
        else:
            maker_acct.credit(asset, maker_pnl - maker_fee)
            ledger.add_fee(asset, maker_fee + taker_fee)
        # the positions moved: the opening part of their orders may have changed
        if tp.open_orders:
            taker_acct.refresh_after_fill(tp, taker_qty)
        maker_buys = maker.side == BUY  # the maker's own side: _unrest refreshes it
        maker_acct.refresh_after_fill(mp, maker_qty, not maker_buys, maker_buys)
        self._unrest(maker, qty, maker_acct)  # the maker's side lost `qty`
        remaining = taker.remaining - qty
        taker.remaining = remaining
        if remaining == 0:
            del ledger.pending[taker.order_id]
            taker_acct.forget_client_id(taker.order_id, taker.client_id)
        sym.last_price = price
        ledger.next_trade_id = trade_id + 1
        if tp.qty == 0:
            ledger.filled(taker_acct, tp)
        if mp.qty == 0:
            ledger.filled(maker_acct, mp)
        if ledger.price_listeners:
            ledger.price_moved(symbol, LAST, price)

    def _on_order_canceled(self, ev: V.OrderCanceled) -> None:
        order = self.ledger.symbols[ev.symbol].book.orders[ev.order_id]
        self._unrest(order, order.remaining, self._account_of(order))

    def _on_order_expired(self, ev: V.OrderExpired) -> None:
        ledger = self.ledger
        order = ledger.pending.pop(ev.order_id, None)
        if order is not None:  # the taker's remainder
            self._account_of(order).forget_client_id(order.order_id, order.client_id)
            return
        order = ledger.symbols[ev.symbol].book.orders[ev.order_id]
        self._unrest(order, order.remaining, self._account_of(order))

    def _on_order_modified(self, ev: V.OrderModified) -> None:
        ledger = self.ledger
        sym = ledger.symbols[ev.symbol]
        book = sym.book
        order = book.orders[ev.order_id]
        acct = self._account_of(order)
        pos = self._position_of(order, acct)
        executed = order.quantity - order.remaining
        new_remaining = ev.quantity - executed
        buy = order.side == BUY
        if ev.kept_priority:  # same price, quantity not larger: shrink in place
            shrink = order.remaining - new_remaining
            pos.add_open(order.side, -shrink, -sym.order_notional(shrink, order.price),
                         order.cost_price, order.loss_unit)
            book.reduce(order, shrink)
            order.quantity = ev.quantity
            order.row = None
            acct.refresh_side(pos, buy)
            return
        rem = order.remaining
        pos.add_open(order.side, -rem, -sym.order_notional(rem, order.price),
                     order.cost_price, order.loss_unit)
        pos.open_orders -= 1
        book.remove(order)
        if order.gtd:
            self.gtd.discard((order.gtd, order.order_id, order.symbol))
        acct.refresh_side(pos, buy)
        order.price = ev.price
        order.quantity = ev.quantity
        order.remaining = new_remaining
        order.cost_price, order.loss_unit = ev.cost_price, ev.loss_unit
        ledger.pending[order.order_id] = order


def _order_id(order: Order) -> int:
    return order.order_id


def _ignore(_ev: V.Event) -> None:
    return None
