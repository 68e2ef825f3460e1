"""The core: a pure, synchronous state machine. `handle(command, seq, time)` validates, then
emits events; every event is applied as it is emitted, and `apply` is the only code that mutates
state. Rebuilding from a log is therefore `apply` over its events, and cannot drift from live.

No I/O, no clock, no randomness: time arrives with the command. A failed check is a rejection
event carrying Binance's code; validation finishes before the first state-changing event.
All numbers are ints of 1e-8 units (engine.fixed); times are ms.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

from engine import errors as E
from engine import risk
from engine.accounts import CROSSED, ISOLATED, Account, Position, fill_result
from engine.book import BUY, SELL, Order, OrderBook
from engine.catalogue import BracketTable, Catalogue, SymbolSpec
from engine.errors import Rejected
from engine.fixed import SCALE, fmt
from engine.funding_core import FundingMixin
from engine.liquidation import LiquidationMixin
from engine.spot import SpotMixin
from engine.tokens_core import TokensMixin
from proto import commands as C
from proto import events as V


DAY_MS = 86_400_000


@dataclass(frozen=True)
class EngineConfig:
    default_leverage: int = 20
    new_account_days: int = 60  # accounts younger than this may not go above new_account_max_leverage
    new_account_max_leverage: int = 20
    default_stp: str = "EXPIRE_MAKER"  # Binance's current default; older pages say NONE
    checkpoint_every: int = 10_000  # commands between Checkpoint events; 0 = never


class SymbolState:
    """Per-symbol market state: the book, prices, and the bracket table in force."""
    __slots__ = ("spec", "book", "mark", "index", "last_price", "table", "table_from",
                 "table_until", "_max_notional")

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
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


class Engine(LiquidationMixin, FundingMixin, TokensMixin, SpotMixin):
    def __init__(self, catalogue: Catalogue, config: EngineConfig | None = None) -> None:
        self.catalogue = catalogue
        self.config = config or EngineConfig()
        self.symbols: dict[str, SymbolState] = {s: SymbolState(spec)
                                                for s, spec in catalogue.symbols.items()}
        self.accounts: dict[int, Account] = {}
        self.pending: dict[int, Order] = {}  # accepted orders still matching (not resting)
        self.next_order_id = 1
        self.next_trade_id = 1
        self.fees_collected = 0
        self.insurance_fund = 0
        self.total_deposits = 0
        self.total_withdrawals = 0
        self.seq = 0
        self.time = 0
        self._next_switch = self._earliest_switch()
        self._init_funding()  # index, composite, mark and funding state (engine.funding_core)
        self._init_tokens()  # leveraged tokens and spot wallets (engine.tokens_core, engine.spot)
        self._out: list[V.Event] = []
        self._handlers = {
            C.CreateAccount: self._create_account, C.Deposit: self._deposit,
            C.Withdraw: self._withdraw, C.NewOrder: self._new_order,
            C.CancelOrder: self._cancel_order, C.CancelAllOrders: self._cancel_all,
            C.ModifyOrder: self._modify_order, C.SetLeverage: self._set_leverage,
            C.SetMarkPrice: self._set_mark_price, C.SetMarginType: self._set_margin_type,
            C.AdjustIsolatedMargin: self._adjust_isolated_margin,
            C.Liquidate: self._liquidate, C.MarginCall: self._margin_call,
            C.FundInsurance: self._fund_insurance,
            C.SetIndexPrices: self._set_index_prices, C.ListSymbol: self._list_symbol,
            C.ScheduleDelisting: self._schedule_delisting,
        }
        self._handlers.update(self._token_handlers())
        self._appliers = {
            V.AccountCreated: self._on_account_created, V.Deposited: self._on_deposited,
            V.Withdrawn: self._on_withdrawn, V.OrderAccepted: self._on_order_accepted,
            V.OrderRested: self._on_order_rested, V.Trade: self._on_trade,
            V.OrderCanceled: self._on_order_canceled, V.OrderExpired: self._on_order_expired,
            V.OrderModified: self._on_order_modified, V.LeverageChanged: self._on_leverage,
            V.MarkPriceUpdated: self._on_mark_price,
            V.MarginTypeChanged: self._on_margin_type, V.IsolatedMarginChanged: self._on_isolated,
            V.BracketTableSwitched: self._on_table_switched, V.AdlTrade: self._on_adl_trade,
            V.LiquidationFeeCharged: self._on_liquidation_fee,
            V.InsuranceCovered: self._on_insurance_covered,
            V.InsuranceFunded: self._on_insurance_funded,
            V.OrderRejected: _ignore, V.CommandRejected: _ignore, V.Checkpoint: _ignore,
            V.MarginCallIssued: _ignore, V.LiquidationStarted: _ignore,
            V.LiquidationDeclined: _ignore,
            V.IndexPriceUpdated: self._on_index_price,
            V.CompositeRebalanced: self._on_composite_rebalanced,
            V.FundingRateSet: self._on_funding_rate, V.FundingPaid: self._on_funding_paid,
            V.SymbolListed: self._on_symbol_listed,
            V.DelistingScheduled: self._on_delisting_scheduled,
        }
        self._appliers.update(self._token_appliers())

    # == entry points =============================================================================
    def handle(self, cmd: C.Command, seq: int, time: int) -> list[V.Event]:
        """Run one sequenced command; returns the events it caused (already applied)."""
        first = self.seq == 0
        self.seq = seq
        self.time = time
        out = self._out = []
        if self._next_switch is not None and time >= self._next_switch:
            self._switch_tables(time, announce=not first)
        if time >= self._next_due:  # funding settlements and index rebalances (funding_core)
            self._run_due(time)
        self._handlers[type(cmd)](cmd)
        if self.token_symbols:  # leveraged tokens: NAV and rebalancing on mark moves
            self._tokens_after(out)
        every = self.config.checkpoint_every
        if every and seq % every == 0:
            self._emit(V.Checkpoint(seq=seq, state_hash=self.state_hash()))
        return out

    def apply_record(self, seq: int, time: int, events: list[V.Event]) -> None:
        """Rebuild: apply a logged command's events without running the command."""
        self.seq = seq
        self.time = time
        appliers = self._appliers
        for ev in events:
            appliers[type(ev)](ev)

    def _emit(self, ev: V.Event) -> None:
        self._out.append(ev)
        self._appliers[type(ev)](ev)

    # == effective-dated bracket tables ===========================================================
    def _earliest_switch(self) -> int | None:
        times = [s.table_until for s in self.symbols.values() if s.table_until is not None]
        return min(times) if times else None

    def _switch_tables(self, time: int, announce: bool) -> None:
        """A table took effect since the last command: announce it; every figure computed from
        now on (re-checks, liquidation, queries, the risk consumer) uses the new tiers. Before
        the first command there is no "since": the tables are simply those in force."""
        for name in sorted(self.symbols):
            sym = self.symbols[name]
            if sym.table_until is not None and time >= sym.table_until:
                table, since, _ = sym.spec.window(time)
                if announce:
                    self._emit(V.BracketTableSwitched(symbol=name, table=table.name,
                                                      effective_time=since))
                else:
                    sym.table_at(time)
        self._next_switch = self._earliest_switch()

    def _on_table_switched(self, ev: V.BracketTableSwitched) -> None:
        self.symbols[ev.symbol].table_at(ev.effective_time)
        self._next_switch = self._earliest_switch()

    # == accounts =================================================================================
    def _account(self, account: int) -> Account:
        acct = self.accounts.get(account)
        if acct is None:
            raise Rejected(E.UNKNOWN_ACCOUNT, f"Unknown account {account}: send createAccount first.")
        return acct

    def _create_account(self, cmd: C.CreateAccount) -> None:
        if cmd.account <= 0:
            return self._reject_command(cmd, E.INVALID_VALUE, "account must be a positive integer.")
        if cmd.account in self.accounts:
            return self._reject_command(cmd, E.INVALID_VALUE, f"Account {cmd.account} exists.")
        registered = self.time if cmd.registered_at is None else cmd.registered_at
        self._emit(V.AccountCreated(account=cmd.account, registered_at=registered))

    def _deposit(self, cmd: C.Deposit) -> None:
        try:
            acct = self._account(cmd.account)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "Deposit amount must be positive.")
        except Rejected as r:
            return self._reject_command(cmd, r.code, r.msg)
        self._emit(V.Deposited(account=cmd.account, amount=cmd.amount,
                               balance=acct.wallet + cmd.amount))

    def _withdraw(self, cmd: C.Withdraw) -> None:
        try:
            acct = self._account(cmd.account)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "Withdrawal amount must be positive.")
            free = min(self.available_balance(acct), acct.wallet)
            if cmd.amount > free:
                raise Rejected(E.BALANCE_INSUFFICIENT,
                               f"Insufficient balance: {fmt(max(free, 0))} USDT available.")
        except Rejected as r:
            return self._reject_command(cmd, r.code, r.msg)
        self._emit(V.Withdrawn(account=cmd.account, amount=cmd.amount,
                               balance=acct.wallet - cmd.amount))

    def _reject_command(self, cmd: C.Command, code: int, msg: str) -> None:
        self._emit(V.CommandRejected(op=type(cmd).__struct_config__.tag, code=code, msg=msg,
                                     account=getattr(cmd, "account", 0)))

    # == margin arithmetic ========================================================================
    def _position(self, acct: Account, symbol: str) -> Position:
        pos = acct.positions.get(symbol)
        if pos is None:
            pos = Position(symbol, self.config.default_leverage,
                           self.symbols[symbol].spec.taker_fee)
        return pos

    def position_figures(self, pos: Position, sym: SymbolState) -> tuple[int, int, int]:
        """(signed notional at the mark, unrealized PnL, initial margin). Before any mark or
        trade price exists a position is valued at its entry."""
        if pos.qty == 0:
            return 0, 0, 0
        ref = sym.ref_price()
        notional = pos.qty * ref // SCALE if ref else pos.cost
        upnl = notional - pos.cost
        im = -(-abs(notional) // pos.leverage)
        return notional, upnl, im

    def available_balance(self, acct: Account) -> int:
        """Cross wallet (wallet less isolated margins) + cross unrealized PnL - cross position
        initial margin - open-order margin."""
        avail = acct.wallet - acct.order_margin
        symbols = self.symbols
        for pos in acct.positions.values():
            if pos.margin_type == ISOLATED:
                avail -= pos.isolated_margin
            elif pos.qty:
                _, upnl, im = self.position_figures(pos, symbols[pos.symbol])
                avail += upnl - im
        return avail

    def cross_risk(self, acct: Account) -> risk.RiskFigures:
        """Maintenance margin of all cross positions against the cross margin balance."""
        balance = acct.wallet
        mm = 0
        for pos in acct.positions.values():
            if pos.margin_type == ISOLATED:
                balance -= pos.isolated_margin
            elif pos.qty:
                sym = self.symbols[pos.symbol]
                notional, upnl, _ = self.position_figures(pos, sym)
                balance += upnl
                mm += sym.table_at(self.time).maint_margin(abs(notional))
        return risk.RiskFigures(mm, balance)

    def isolated_risk(self, pos: Position) -> risk.RiskFigures:
        sym = self.symbols[pos.symbol]
        notional, upnl, _ = self.position_figures(pos, sym)
        mm = sym.table_at(self.time).maint_margin(abs(notional)) if pos.qty else 0
        return risk.RiskFigures(mm, pos.isolated_margin + upnl)

    def is_young(self, acct: Account) -> bool:
        """Registered less than `new_account_days` before the command's time."""
        return self.time - acct.registered_at < self.config.new_account_days * DAY_MS

    @staticmethod
    def _refresh_order_margin(acct: Account, pos: Position) -> None:
        """Re-derive a position's order margin after its orders, size or leverage changed."""
        new = pos.compute_order_margin(pos.open_buy_qty, pos.open_buy_notional,
                                       pos.open_sell_qty, pos.open_sell_notional) \
            if pos.open_orders else 0
        acct.order_margin += new - pos.order_margin
        pos.order_margin = new

    def _check_leverage_and_margin(self, acct: Account, pos: Position, sym: SymbolState,
                                   side: str, add_qty: int, add_notional: int) -> None:
        """The order adds (add_qty, add_notional) to `side`'s orders (negative for a shrinking
        modify). -2027 if the side's reachable notional (position + open orders of that side +
        this order) exceeds the cap at the account's leverage; -2019 if the extra order margin
        does not fit the available balance."""
        table = sym.table_at(self.time)
        cap = sym.max_notional(table, pos.leverage)
        pos_notional = self.position_figures(pos, sym)[0]
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
        if extra > 0 and extra > self.available_balance(acct):
            raise Rejected(E.MARGIN_INSUFFICIENT, "Margin is insufficient.")

    # == orders ===================================================================================
    def _symbol(self, name: str) -> SymbolState:
        sym = self.symbols.get(name)
        if sym is None:
            raise Rejected(E.INVALID_SYMBOL, f"Invalid symbol {name!r}.")
        return sym

    def _check_price_qty(self, spec: SymbolSpec, sym: SymbolState, side: str, type_: str,
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

    def _crosses(self, book: OrderBook, side: str, price: int | None) -> bool:
        if side == BUY:
            best = book.best_ask()
            return best is not None and (price is None or price >= best)
        best = book.best_bid()
        return best is not None and (price is None or price <= best)

    def _new_order(self, cmd: C.NewOrder) -> None:
        try:
            order = self._validate_new(cmd)
        except Rejected as r:
            self._emit(V.OrderRejected(account=cmd.account, symbol=cmd.symbol, code=r.code,
                                       msg=r.msg, client_order_id=cmd.new_client_order_id))
            return
        self._emit(order)
        if not order.rest:
            self._match(self.pending[order.order_id])

    def _validate_new(self, cmd: C.NewOrder) -> V.OrderAccepted:
        sym = self._symbol(cmd.symbol)
        acct = self._account(cmd.account)
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
        pos = self._position(acct, cmd.symbol)
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
            if pos.leverage > self.config.new_account_max_leverage and self.is_young(acct):
                raise Rejected(E.MAX_POSITION_AT_LEVERAGE,
                               f"Accounts registered less than {self.config.new_account_days} days "
                               f"ago may not open or increase positions above "
                               f"{self.config.new_account_max_leverage}x; only reduce-only orders.")
            self._check_leverage_and_margin(acct, pos, sym, side, cmd.quantity, notional)
        if tif == "GTX" and self._crosses(book, side, price):
            raise Rejected(E.GTX_WOULD_TAKE, "Due to the order could not be executed as maker, "
                                             "the Post Only order will be rejected.")
        if tif == "FOK" and self._fillable(book, side, price, cmd.quantity) < cmd.quantity:
            raise Rejected(E.FOK_UNFILLABLE, "Due to the order could not be filled immediately, "
                                             "the FOK order has been rejected.")
        stp = cmd.self_trade_prevention_mode or self.config.default_stp
        rest = tif in ("GTC", "GTX") and not self._crosses(book, side, price)
        return V.OrderAccepted(order_id=self.next_order_id, account=cmd.account,
                               symbol=cmd.symbol, side=side, type=cmd.type, time_in_force=tif,
                               price=price, quantity=cmd.quantity, reduce_only=cmd.reduce_only,
                               client_order_id=cid, stp_mode=stp, rest=rest)

    @staticmethod
    def _fillable(book: OrderBook, side: str, price: int, want: int) -> int:
        got = 0
        for level in book.levels(SELL if side == BUY else BUY):
            if (side == BUY and level.price > price) or (side == SELL and level.price < price):
                break
            got += level.total
            if got >= want:
                break
        return got

    def _match(self, taker: Order) -> None:
        """Take liquidity, then rest or expire what is left."""
        self._settle_remainder(taker, self._take(taker))

    def _take(self, taker: Order, limit: int | None = None, budget=None) -> bool:
        """Match a taker order against the book; True if self-trade prevention expired it.
        `limit` overrides the order's own price; `budget` (liquidation.InsuranceBudget) caps
        what may fill beyond the bankruptcy price."""
        sym = self.symbols[taker.symbol]
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
        taker_acct = self.accounts[taker.account]
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
                    self._emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                              symbol=maker.symbol, quantity=maker.remaining,
                                              status="EXPIRED_IN_MATCH", reason="selfTrade"))
                if stp in ("EXPIRE_TAKER", "EXPIRE_BOTH"):
                    expired_in_match = True
                    break
                continue
            qty = min(taker.remaining, maker.remaining)
            maker_acct = self.accounts[maker.account]
            maker_pos = self._position(maker_acct, maker.symbol)
            if maker.reduce_only:
                allowed = self._reducible(maker_pos, maker.side)
                if allowed == 0:
                    self._emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                              symbol=maker.symbol, quantity=maker.remaining,
                                              status="EXPIRED", reason="reduceOnly"))
                    continue
                qty = min(qty, allowed)
            taker_pos = self._position(taker_acct, taker.symbol)
            if taker.reduce_only:
                allowed = self._reducible(taker_pos, taker.side)
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
            self._emit(V.Trade(trade_id=self.next_trade_id, symbol=taker.symbol, price=price,
                               quantity=qty, taker_side=taker.side,
                               maker_order_id=maker.order_id, taker_order_id=taker.order_id,
                               maker_account=maker.account, taker_account=taker.account,
                               maker_fee=maker_fee, taker_fee=taker_fee,
                               maker_realized_pnl=maker_pnl, taker_realized_pnl=taker_pnl))
            if budget is not None:
                budget.spend(qty, price)
            if maker.reduce_only and maker.remaining and \
                    self._reducible(maker_acct.positions[maker.symbol], maker.side) == 0:
                self._emit(V.OrderExpired(order_id=maker.order_id, account=maker.account,
                                          symbol=maker.symbol, quantity=maker.remaining,
                                          status="EXPIRED", reason="reduceOnly"))
        return expired_in_match

    def _settle_remainder(self, taker: Order, expired_in_match: bool) -> None:
        taker_acct = self.accounts[taker.account]
        if taker.remaining > 0:
            if expired_in_match:
                self._emit(V.OrderExpired(order_id=taker.order_id, account=taker.account,
                                          symbol=taker.symbol, quantity=taker.remaining,
                                          status="EXPIRED_IN_MATCH", reason="selfTrade"))
            elif taker.type == "LIMIT" and taker.tif in ("GTC", "GTX") and (
                    not taker.reduce_only or
                    self._reducible(self._position(taker_acct, taker.symbol), taker.side)):
                self._emit(V.OrderRested(order_id=taker.order_id, quantity=taker.remaining))
            else:
                reason = "reduceOnly" if taker.reduce_only and taker.tif == "GTC" else taker.tif
                self._emit(V.OrderExpired(order_id=taker.order_id, account=taker.account,
                                          symbol=taker.symbol, quantity=taker.remaining,
                                          status="EXPIRED", reason=reason))

    @staticmethod
    def _reducible(pos: Position, side: str) -> int:
        """How much an order of `side` can fill while only reducing the position."""
        if side == BUY:
            return -pos.qty if pos.qty < 0 else 0
        return pos.qty if pos.qty > 0 else 0

    def _find_order(self, acct: Account, sym: SymbolState, order_id: int, client_id: str) -> Order:
        if not order_id and client_id:
            order_id = acct.client_ids.get(client_id, 0)
        order = sym.book.orders.get(order_id)
        if order is None or order.account != acct.account_id:
            raise Rejected(E.UNKNOWN_ORDER, "Unknown order sent.")
        return order

    def _cancel_order(self, cmd: C.CancelOrder) -> None:
        try:
            sym = self._symbol(cmd.symbol)
            acct = self._account(cmd.account)
            order = self._find_order(acct, sym, cmd.order_id, cmd.orig_client_order_id)
        except Rejected as r:
            return self._reject_command(cmd, r.code, r.msg)
        self._emit(V.OrderCanceled(order_id=order.order_id, account=order.account,
                                   symbol=order.symbol, quantity=order.remaining))

    def _cancel_all(self, cmd: C.CancelAllOrders) -> None:
        try:
            sym = self._symbol(cmd.symbol)
            acct = self._account(cmd.account)
        except Rejected as r:
            return self._reject_command(cmd, r.code, r.msg)
        self.cancel_account_orders(acct, sym)

    def cancel_account_orders(self, acct: Account, sym: SymbolState) -> None:
        pos = acct.positions.get(sym.spec.symbol)
        if pos is None or pos.open_orders == 0:
            return
        mine = [o for o in sym.book.orders.values() if o.account == acct.account_id]
        mine.sort(key=lambda o: o.order_id)
        for o in mine:
            self._emit(V.OrderCanceled(order_id=o.order_id, account=o.account, symbol=o.symbol,
                                       quantity=o.remaining))

    def _modify_order(self, cmd: C.ModifyOrder) -> None:
        try:
            sym = self._symbol(cmd.symbol)
            acct = self._account(cmd.account)
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
            pos = self._position(acct, cmd.symbol)
            if order.reduce_only:
                self._check_reduce_only(pos, order.side, new_remaining)
            else:
                self._check_leverage_and_margin(
                    acct, pos, sym, order.side, new_remaining - order.remaining,
                    new_remaining * cmd.price // SCALE - order.remaining * order.price // SCALE)
            keep = cmd.price == order.price and cmd.quantity <= order.quantity
            if not keep and order.tif == "GTX" and self._crosses(sym.book, order.side, cmd.price):
                raise Rejected(E.GTX_WOULD_TAKE, "Due to the order could not be executed as "
                                                 "maker, the Post Only order will be rejected.")
        except Rejected as r:
            self._emit(V.OrderRejected(account=cmd.account, symbol=cmd.symbol, code=r.code,
                                       msg=r.msg, order_id=cmd.order_id))
            return
        self._emit(V.OrderModified(order_id=order.order_id, account=order.account,
                                   symbol=order.symbol, price=cmd.price, quantity=cmd.quantity,
                                   kept_priority=keep))
        if not keep:
            self._match(order)

    def _set_leverage(self, cmd: C.SetLeverage) -> None:
        try:
            sym = self._symbol(cmd.symbol)
            acct = self._account(cmd.account)
            table = sym.table_at(self.time)
            if not 1 <= cmd.leverage <= table.max_leverage:
                raise Rejected(E.INVALID_LEVERAGE, f"Leverage {cmd.leverage} is not valid: "
                                                   f"1 to {table.max_leverage} for {cmd.symbol}.")
            pos = self._position(acct, cmd.symbol)
            young_cap = self.config.new_account_max_leverage
            if cmd.leverage > young_cap and cmd.leverage > pos.leverage and self.is_young(acct):
                raise Rejected(E.INVALID_LEVERAGE,
                               f"Leverage {cmd.leverage} is not valid: accounts registered less "
                               f"than {self.config.new_account_days} days ago may not go above "
                               f"{young_cap}x.")
            if pos.margin_type == ISOLATED and pos.qty and cmd.leverage < pos.leverage:
                raise Rejected(E.ISOLATED_LEVERAGE_REDUCTION,
                               "Leverage reduction is not supported in Isolated Margin Mode with "
                               "open positions.")
            cap = sym.max_notional(table, cmd.leverage)
            pos_notional = self.position_figures(pos, sym)[0]
            reach = max(pos_notional + pos.open_buy_notional, -pos_notional + pos.open_sell_notional)
            if reach > cap:
                raise Rejected(E.MAX_POSITION_AT_LEVERAGE,
                               f"Exceeded the maximum allowable position at current leverage: "
                               f"{fmt(reach)} > {fmt(cap)} USDT at {cmd.leverage}x.")
            if cmd.leverage < pos.leverage and not pos.is_idle():
                old = pos.leverage
                pos.leverage = cmd.leverage  # trial; restored below
                try:
                    trial_margin = pos.compute_order_margin(
                        pos.open_buy_qty, pos.open_buy_notional, pos.open_sell_qty,
                        pos.open_sell_notional)
                    short = self.available_balance(acct) + pos.order_margin - trial_margin < 0
                finally:
                    pos.leverage = old
                if short:
                    raise Rejected(E.MARGIN_INSUFFICIENT, "Margin is insufficient.")
        except Rejected as r:
            return self._reject_command(cmd, r.code, r.msg)
        self._emit(V.LeverageChanged(account=cmd.account, symbol=cmd.symbol, leverage=cmd.leverage))

    def _set_mark_price(self, cmd: C.SetMarkPrice) -> None:
        try:
            self._symbol(cmd.symbol)
            if cmd.mark_price <= 0 or cmd.index_price < 0:
                raise Rejected(E.INVALID_VALUE, "markPrice must be positive.")
            if self.has_index(cmd.symbol):
                raise Rejected(E.INVALID_VALUE, f"The mark price of {cmd.symbol} is computed "
                                                f"from its index price; send setIndexPrices.")
        except Rejected as r:
            return self._reject_command(cmd, r.code, r.msg)
        self._emit(V.MarkPriceUpdated(symbol=cmd.symbol, mark_price=cmd.mark_price,
                                      index_price=cmd.index_price))

    def _set_margin_type(self, cmd: C.SetMarginType) -> None:
        try:
            self._symbol(cmd.symbol)
            acct = self._account(cmd.account)
            pos = self._position(acct, cmd.symbol)
            if pos.margin_type == cmd.margin_type:
                raise Rejected(E.NO_NEED_TO_CHANGE_MARGIN_TYPE, "No need to change margin type.")
            if pos.qty:
                raise Rejected(E.MARGIN_TYPE_POSITION_EXISTS,
                               "Margin type cannot be changed if there exists position.")
            if pos.open_orders:
                raise Rejected(E.MARGIN_TYPE_OPEN_ORDERS,
                               "Margin type cannot be changed if there exists open orders.")
        except Rejected as r:
            return self._reject_command(cmd, r.code, r.msg)
        self._emit(V.MarginTypeChanged(account=cmd.account, symbol=cmd.symbol,
                                       margin_type=cmd.margin_type))

    def _adjust_isolated_margin(self, cmd: C.AdjustIsolatedMargin) -> None:
        try:
            sym = self._symbol(cmd.symbol)
            acct = self._account(cmd.account)
            pos = acct.positions.get(cmd.symbol)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "amount must be positive.")
            if pos is None or pos.margin_type != ISOLATED or pos.qty == 0:
                raise Rejected(E.ISOLATED_MARGIN_NO_POSITION,
                               "Cannot adjust margin: no isolated position in this symbol.")
            if cmd.type == 1:
                if cmd.amount > self.available_balance(acct):
                    raise Rejected(E.MARGIN_INSUFFICIENT, "Margin is insufficient.")
                delta = cmd.amount
            else:
                _, upnl, im = self.position_figures(pos, sym)
                if pos.isolated_margin - cmd.amount + min(upnl, 0) < im:
                    raise Rejected(E.ISOLATED_BALANCE_INSUFFICIENT,
                                   "Isolated balance insufficient: the position must keep its "
                                   f"initial margin {fmt(im)}.")
                delta = -cmd.amount
        except Rejected as r:
            return self._reject_command(cmd, r.code, r.msg)
        self._emit(V.IsolatedMarginChanged(account=cmd.account, symbol=cmd.symbol, amount=delta,
                                           isolated_margin=pos.isolated_margin + delta))

    # == appliers: the only code that mutates state ===============================================
    def _pos_for_update(self, acct: Account, symbol: str) -> Position:
        pos = acct.positions.get(symbol)
        if pos is None:
            pos = acct.positions[symbol] = Position(symbol, self.config.default_leverage,
                                                    self.symbols[symbol].spec.taker_fee)
        return pos

    def _on_account_created(self, ev: V.AccountCreated) -> None:
        self.accounts[ev.account] = Account(ev.account, ev.registered_at)

    def _on_deposited(self, ev: V.Deposited) -> None:
        self.accounts[ev.account].wallet += ev.amount
        self.total_deposits += ev.amount

    def _on_withdrawn(self, ev: V.Withdrawn) -> None:
        self.accounts[ev.account].wallet -= ev.amount
        self.total_withdrawals += ev.amount

    def _on_order_accepted(self, ev: V.OrderAccepted) -> None:
        order = Order(ev.order_id, ev.account, ev.symbol, ev.side, ev.price, ev.quantity,
                      ev.time_in_force, ev.type, ev.reduce_only, ev.client_order_id, ev.stp_mode)
        self.next_order_id = ev.order_id + 1
        acct = self.accounts[ev.account]
        if ev.client_order_id:
            acct.client_ids[ev.client_order_id] = ev.order_id
        if ev.rest:
            self._rest(order, acct)
        else:
            self.pending[ev.order_id] = order

    def _rest(self, order: Order, acct: Account) -> None:
        self.symbols[order.symbol].book.add(order)
        pos = self._pos_for_update(acct, order.symbol)
        pos.add_open(order.side, order.remaining, order.remaining * order.price // SCALE)
        pos.open_orders += 1
        self._refresh_order_margin(acct, pos)

    def _on_order_rested(self, ev: V.OrderRested) -> None:
        order = self.pending.pop(ev.order_id)
        self._rest(order, self.accounts[order.account])

    def _finish(self, order: Order, acct: Account) -> None:
        """An order leaves the engine (filled, canceled, expired)."""
        if order.client_id and acct.client_ids.get(order.client_id) == order.order_id:
            del acct.client_ids[order.client_id]

    def _unrest(self, order: Order, qty: int, acct: Account) -> None:
        """Take `qty` of a resting order off the book and out of its account's open totals."""
        pos = acct.positions[order.symbol]
        pos.add_open(order.side, -qty, -(qty * order.price // SCALE))
        book = self.symbols[order.symbol].book
        if qty == order.remaining:
            pos.open_orders -= 1
            book.remove(order)
            order.remaining = 0
            self._finish(order, acct)
        else:
            book.reduce(order, qty)
        self._refresh_order_margin(acct, pos)

    def _on_trade(self, ev: V.Trade) -> None:
        sym = self.symbols[ev.symbol]
        maker = sym.book.orders[ev.maker_order_id]
        taker = self.pending[ev.taker_order_id]
        qty, price = ev.quantity, ev.price
        sign = 1 if ev.taker_side == BUY else -1
        taker_acct = self.accounts[ev.taker_account]
        maker_acct = self.accounts[ev.maker_account]
        tp = self._pos_for_update(taker_acct, ev.symbol)
        self._fill_position(tp, sign * qty, price)
        taker_acct.wallet += ev.taker_realized_pnl - ev.taker_fee
        mp = self._pos_for_update(maker_acct, ev.symbol)
        self._fill_position(mp, -sign * qty, price)
        maker_acct.wallet += ev.maker_realized_pnl - ev.maker_fee
        self.fees_collected += ev.maker_fee + ev.taker_fee
        if tp.open_orders:  # the position moved: the opening part of its orders changed
            self._refresh_order_margin(taker_acct, tp)
        self._unrest(maker, qty, maker_acct)  # refreshes the maker's
        taker.remaining -= qty
        if taker.remaining == 0:
            del self.pending[taker.order_id]
            self._finish(taker, taker_acct)
        sym.last_price = price
        self.next_trade_id = ev.trade_id + 1

    @staticmethod
    def _fill_position(pos: Position, dq: int, price: int) -> None:
        """Apply a fill to a position. An isolated position's margin grows by the opened
        notional / leverage (rounded up, from the cross wallet) and releases pro rata (rounded
        down) as it shrinks; realized PnL always settles to the wallet."""
        qty0 = pos.qty
        pos.qty, pos.cost, _ = fill_result(qty0, pos.cost, dq, price)
        if pos.margin_type != ISOLATED:
            return
        size0 = abs(qty0)
        if qty0 == 0 or (qty0 > 0) == (dq > 0):
            pos.isolated_margin += -(-(abs(dq) * price // SCALE) // pos.leverage)
        elif abs(dq) < size0:
            pos.isolated_margin -= pos.isolated_margin * abs(dq) // size0
        else:  # closed, perhaps flipped: all released, the new side gets fresh margin
            pos.isolated_margin = -(-abs(pos.cost) // pos.leverage) if pos.qty else 0

    def _on_order_canceled(self, ev: V.OrderCanceled) -> None:
        order = self.symbols[ev.symbol].book.orders[ev.order_id]
        self._unrest(order, order.remaining, self.accounts[order.account])

    def _on_order_expired(self, ev: V.OrderExpired) -> None:
        order = self.pending.pop(ev.order_id, None)
        if order is not None:  # the taker's remainder
            self._finish(order, self.accounts[order.account])
            return
        order = self.symbols[ev.symbol].book.orders[ev.order_id]
        self._unrest(order, order.remaining, self.accounts[order.account])

    def _on_order_modified(self, ev: V.OrderModified) -> None:
        book = self.symbols[ev.symbol].book
        order = book.orders[ev.order_id]
        acct = self.accounts[order.account]
        pos = acct.positions[order.symbol]
        executed = order.quantity - order.remaining
        new_remaining = ev.quantity - executed
        if ev.kept_priority:  # same price, quantity not larger: shrink in place
            shrink = order.remaining - new_remaining
            pos.add_open(order.side, -shrink, -(shrink * order.price // SCALE))
            book.reduce(order, shrink)
            order.quantity = ev.quantity
            self._refresh_order_margin(acct, pos)
            return
        pos.add_open(order.side, -order.remaining, -(order.remaining * order.price // SCALE))
        pos.open_orders -= 1
        book.remove(order)
        self._refresh_order_margin(acct, pos)
        order.price = ev.price
        order.quantity = ev.quantity
        order.remaining = new_remaining
        self.pending[order.order_id] = order

    def _on_leverage(self, ev: V.LeverageChanged) -> None:
        acct = self.accounts[ev.account]
        pos = self._pos_for_update(acct, ev.symbol)
        pos.leverage = ev.leverage
        self._refresh_order_margin(acct, pos)

    def _on_margin_type(self, ev: V.MarginTypeChanged) -> None:
        self._pos_for_update(self.accounts[ev.account], ev.symbol).margin_type = ev.margin_type

    def _on_isolated(self, ev: V.IsolatedMarginChanged) -> None:
        self.accounts[ev.account].positions[ev.symbol].isolated_margin = ev.isolated_margin

    def _on_mark_price(self, ev: V.MarkPriceUpdated) -> None:
        sym = self.symbols[ev.symbol]
        sym.mark = ev.mark_price
        sym.index = ev.index_price

    # == state hash ===============================================================================
    def canonical_state(self) -> list:
        """Everything that defines the state, in a fixed order (for hashing and snapshots)."""
        accounts = []
        for aid in sorted(self.accounts):
            a = self.accounts[aid]
            positions = [[p.symbol, p.qty, p.cost, p.leverage, p.margin_type, p.isolated_margin,
                          p.open_buy_qty, p.open_buy_notional, p.open_sell_qty,
                          p.open_sell_notional, p.open_orders]
                         for _, p in sorted(a.positions.items())]
            accounts.append([aid, a.registered_at, a.wallet, positions, sorted(a.client_ids.items())])
        books = []
        for name in sorted(self.symbols):
            s = self.symbols[name]
            if not s.book.orders and not s.mark and not s.last_price:
                continue
            sides = []
            for side in (BUY, SELL):
                sides.append([[o.order_id, o.account, o.price, o.quantity, o.remaining, o.tif,
                               o.reduce_only, o.client_id, o.stp]
                              for level in s.book.levels(side) for o in level.orders()])
            books.append([name, s.mark, s.index, s.last_price, sides])
        state = [accounts, books, self.fees_collected, self.insurance_fund, self.total_deposits,
                 self.total_withdrawals, self.next_order_id, self.next_trade_id]
        funding = self._funding_canonical()  # None until index prices or listings arrive
        tokens = self._tokens_canonical()  # None until a token or a spot wallet exists
        if funding is not None or tokens is not None:
            state.append(funding)
        if tokens is not None:
            state.append(tokens)
        return state

    def state_hash(self) -> str:
        blob = msgspec.msgpack.encode(self.canonical_state())
        return hashlib.blake2b(blob, digest_size=16).hexdigest()


def _ignore(_ev: V.Event) -> None:
    return None
