"""Projections of the log that Binance's API serves and the core does not keep: every order's
life (filled and canceled ones too), trades and aggregate trades per symbol, each account's
fills, income and liquidation orders, klines of every interval for the last, mark and index
price, the 24-hour rolling statistics, and every conditional (Algo) order's life: NEW, then
CANCELED, EXPIRED, REJECTED or TRIGGERED, and FINISHED once the order it placed in the book is
filled, canceled or expired. Fed one record at a time, in log order
(`History.apply`); rebuilt on restart by applying the log from its start, so it is never a
second source of truth. Reads only: it never changes the engine.

Memory is bounded: per account the newest `keep` closed orders, fills, income rows and
liquidation orders and closed conditional orders; per symbol the newest `keep` trades and
aggregate trades; per symbol, kind
and interval the newest `KLINE_KEEP` klines (Binance serves at most 1,500 per request). Open
orders are always kept (the core bounds them: 200 per symbol and account).

COIN-M symbols (`sizes`: symbol -> contract size in USD, 1e-8 units) count a trade's value in
the coin (contracts x size / price, rounded down as the core books it): the klines' and
tickers' "quote" volume is then Binance's base-asset volume, and an order's `cum_base`.
Amounts of income and fees are in the symbol's margin asset (`assets`: symbol -> asset).

Klines cost O(1) per trade: only the current minute is updated; when a minute closes it is
folded into the other 14 intervals, and a query folds the current minute in on the fly.
"""
from __future__ import annotations

import calendar
import datetime as _dt
from collections import deque
from fractions import Fraction
from typing import Callable, Iterable

from engine.core import inverse
from engine.core.fixed import SCALE
from proto import commands as C
from proto import events as V
from proto.records import LogRecord

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
# Binance's kline intervals; "1M" is the calendar month (None here)
INTERVALS: dict[str, int | None] = {
    "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "30m": 30 * MINUTE,
    "1h": HOUR, "2h": 2 * HOUR, "4h": 4 * HOUR, "6h": 6 * HOUR, "8h": 8 * HOUR,
    "12h": 12 * HOUR, "1d": DAY, "3d": 3 * DAY, "1w": WEEK, "1M": None}
KLINE_KEEP = 1500
KINDS = ("last", "mark", "index")
_MONDAY = 4 * DAY  # 1970-01-01 was a Thursday; Binance's weeks start on Monday 00:00 UTC

CLOSED = frozenset({"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"})
TRADE_TRAN_BASE = 10 ** 12  # income rows of fills: tranId = base + 2 x trade id (+ 1: fee)


def bucket(interval: str, t: int) -> tuple[int, int]:
    """(open time, close time) of the kline of `interval` holding ms `t` (close = next - 1)."""
    size = INTERVALS[interval]
    if size is None:
        d = _dt.datetime.fromtimestamp(t // 1000, _dt.timezone.utc)
        start = calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
        y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return start, calendar.timegm((y, m, 1, 0, 0, 0)) * 1000 - 1
    if size == WEEK:
        start = (t - _MONDAY) // WEEK * WEEK + _MONDAY
    else:
        start = t - t % size
    return start, start + size - 1


class OrderInfo:
    """One order as Binance's order endpoints describe it. Amounts in 1e-8 units; cum_quote
    is the sum of each fill's quantity x price (exact); cum_base the coin value of a COIN-M
    order's fills. An order a conditional order placed carries the conditional type
    (`orig_type`), its trigger (`stop_price`) and the algo's settings."""
    __slots__ = ("order_id", "account", "symbol", "side", "type", "tif", "price", "orig_qty",
                 "executed", "cum_quote", "status", "client_id", "reduce_only", "stp", "time",
                 "update_time", "liquidation", "last_qty", "last_price", "last_trade",
                 "last_fee", "last_maker", "last_pnl", "position_side", "price_match", "gtd",
                 "orig_type", "stop_price", "working_type", "price_protect", "close_position",
                 "activate_price", "callback_rate", "algo_id", "cum_base", "size", "inverse_sum")

    def __init__(self, ev: V.OrderAccepted, time: int, price_match: str = "NONE",
                 algo: "AlgoInfo | None" = None, size: int = 0) -> None:
        self.order_id = ev.order_id
        self.account = ev.account
        self.symbol = ev.symbol
        self.side = ev.side
        self.type = ev.type
        self.tif = ev.time_in_force
        self.price = ev.price
        self.orig_qty = ev.quantity
        self.executed = 0
        self.cum_quote = 0
        self.cum_base = 0
        self.size = size  # COIN-M: the contract size; 0: USD-M
        self.inverse_sum = Fraction(0)  # COIN-M: sum of quantity / price over the fills
        self.status = "NEW"
        self.client_id = ev.client_order_id or (f"autoclose-{time}" if ev.liquidation else "")
        self.reduce_only = ev.reduce_only
        self.stp = ev.stp_mode
        self.time = time
        self.update_time = time
        self.liquidation = ev.liquidation
        self.last_qty = self.last_price = self.last_trade = self.last_fee = self.last_pnl = 0
        self.last_maker = False
        self.position_side = ev.position_side
        self.price_match = price_match
        self.gtd = ev.good_till_date
        self.orig_type = ev.type
        self.stop_price = 0
        self.working_type = "CONTRACT_PRICE"
        self.price_protect = False
        self.close_position = False
        self.activate_price = self.callback_rate = 0
        self.algo_id = 0
        if algo is not None:
            self.orig_type = algo.type
            self.stop_price = algo.trigger
            self.working_type = algo.working_type
            self.price_protect = algo.price_protect
            self.close_position = algo.close_position
            self.activate_price = algo.activate
            self.callback_rate = algo.rate
            self.algo_id = algo.algo_id
            self.client_id = self.client_id or algo.client_id

    @property
    def avg_price(self) -> int:
        if not self.executed:
            return 0
        if self.size and self.inverse_sum:  # COIN-M: the harmonic mean, half up
            return int(self.executed / self.inverse_sum + Fraction(1, 2))
        return self.cum_quote * SCALE // self.executed

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED


class AlgoInfo:
    """One conditional order as Binance's Algo endpoints describe it (amounts in 1e-8 units;
    `rate` in percent). Status NEW, CANCELED, EXPIRED, REJECTED (`reason`: the failed check's
    text), TRIGGERED (its order `actual_order_id` is in the book) or FINISHED (that order is
    filled, canceled or expired)."""
    __slots__ = ("algo_id", "account", "symbol", "side", "position_side", "type", "quantity",
                 "price", "trigger", "working_type", "price_protect", "close_position",
                 "reduce_only", "activate", "rate", "tif", "client_id", "stp", "price_match",
                 "gtd", "status", "time", "update_time", "trigger_time", "actual_order_id",
                 "reason")

    def __init__(self, ev: V.AlgoOrderAccepted, time: int) -> None:
        self.algo_id = ev.algo_id
        self.account = ev.account
        self.symbol = ev.symbol
        self.side = ev.side
        self.position_side = ev.position_side
        self.type = ev.order_type
        self.quantity = ev.quantity
        self.price = ev.price
        self.trigger = ev.trigger_price
        self.working_type = ev.working_type
        self.price_protect = ev.price_protect
        self.close_position = ev.close_position
        self.reduce_only = ev.reduce_only
        self.activate = ev.activate_price
        self.rate = ev.callback_rate
        self.tif = ev.time_in_force
        self.client_id = ev.client_algo_id
        self.stp = ev.stp_mode
        self.price_match = ev.price_match
        self.gtd = ev.good_till_date
        self.status = "NEW"
        self.time = self.update_time = time
        self.trigger_time = 0
        self.actual_order_id = 0
        self.reason = ""

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"


class Klines:
    """One symbol's klines of one kind (last trade price, mark or index)."""
    __slots__ = ("series", "minute")

    def __init__(self) -> None:
        self.series: dict[str, deque] = {i: deque(maxlen=KLINE_KEEP) for i in INTERVALS}
        # the current minute's candle (also the last item of series["1m"]):
        # [open, o, h, l, c, volume, close, quote, count, takerBase, takerQuote, firstId, lastId]
        self.minute: list | None = None

    def add(self, t: int, price: int, qty: int = 0, quote: int = 0, taker_buy: bool = False,
            trade_id: int = 0) -> None:
        m = self.minute
        start = t - t % MINUTE
        if m is None or m[0] != start:
            if m is not None:
                self._fold(m)
            m = self.minute = [start, price, price, price, price, 0, start + MINUTE - 1, 0, 0,
                               0, 0, trade_id, trade_id]
            self.series["1m"].append(m)
        else:
            if price > m[2]:
                m[2] = price
            if price < m[3]:
                m[3] = price
            m[4] = price
            m[12] = trade_id
        if qty:
            m[5] += qty
            m[7] += quote
            m[8] += 1
            if taker_buy:
                m[9] += qty
                m[10] += quote

    def _fold(self, m: list) -> None:
        """A closed minute joins the longer intervals' klines."""
        for interval, series in self.series.items():
            if interval != "1m":
                _merge_into(series, interval, m)

    def candles(self, interval: str, start: int | None, end: int | None, limit: int) -> list[list]:
        series = self.series[interval]
        if interval == "1m" or self.minute is None:
            rows = list(series)
        else:
            rows = [list(c) for c in series]
            _merge_into(rows, interval, self.minute)
        if start is not None:
            rows = [r for r in rows if r[0] >= start]
            if end is not None:
                rows = [r for r in rows if r[0] <= end]
            return rows[:limit]
        if end is not None:
            rows = [r for r in rows if r[0] <= end]
        return rows[-limit:]


def _merge_into(series, interval: str, m: list) -> None:
    start, close = bucket(interval, m[0])
    last = series[-1] if series else None
    if last is None or last[0] != start:
        series.append([start, m[1], m[2], m[3], m[4], m[5], close, m[7], m[8], m[9], m[10],
                       m[11], m[12]])
        return
    if m[2] > last[2]:
        last[2] = m[2]
    if m[3] < last[3]:
        last[3] = m[3]
    last[4] = m[4]
    last[5] += m[5]
    last[7] += m[7]
    last[8] += m[8]
    last[9] += m[9]
    last[10] += m[10]
    if not last[11]:
        last[11] = m[11]
    if m[12]:
        last[12] = m[12]


class History:
    """The projection; `apply(record)` for every record in log order."""

    def __init__(self, keep: int = 10_000, sizes: dict[str, int] | None = None,
                 assets: dict[str, str] | None = None) -> None:
        self.keep = keep
        self.sizes = sizes or {}  # COIN-M symbols' contract sizes
        self.assets = assets or {}  # symbol -> margin asset (USDT when absent)
        self.seq = 0
        self.orders: dict[int, OrderInfo] = {}
        self.algos: dict[int, AlgoInfo] = {}
        self.algo_client_ids: dict[tuple[int, str], int] = {}
        self.open_algos: dict[int, dict[int, AlgoInfo]] = {}  # account -> open (NEW) ones
        self.closed_algos: dict[int, deque] = {}  # account -> closed algo ids, oldest first
        self.order_algo: dict[int, int] = {}  # an open order placed by a trigger -> algo id
        self._triggered: dict[int, AlgoInfo] = {}  # order id -> its algo, within a record
        self._command: object = None
        self.client_ids: dict[tuple[int, str], int] = {}
        self.closed: dict[int, deque] = {}  # account -> closed order ids, oldest first
        self.open_by_account: dict[int, dict[int, OrderInfo]] = {}
        self.trades: dict[str, deque] = {}  # symbol -> (id, price, qty, quote, time, buyerMaker)
        self.agg: dict[str, deque] = {}  # symbol -> (a, p, q, f, l, T, m, takerOrder, seq)
        # account -> (id, symbol, orderId, buyer, price, qty, quote (COIN-M: the coin value),
        # fee, realizedPnl, maker, time, positionSide)
        self.user_trades: dict[int, deque] = {}
        # income other than the fills' (transfers, funding, ADL, liquidation fees, auto-exchange):
        # (symbol, type, amount, time, tranId, tradeId, asset)
        self.income: dict[int, deque] = {}
        self.force: dict[int, deque] = {}  # account -> liquidation OrderInfo
        # cumulative realized PnL per position: (account, symbol, position side)
        self.realized: dict[tuple[int, str, str], int] = {}
        self.klines: dict[tuple[str, str], Klines] = {}
        self.last_trade: dict[str, tuple[int, int, int]] = {}  # symbol -> (price, qty, time)
        self.next_tran = 1
        self.next_agg: dict[str, int] = {}
        self._time = 0
        self._handlers: dict[type, Callable] = {
            V.OrderAccepted: self._accepted, V.Trade: self._trade,
            V.OrderCanceled: self._canceled, V.OrderExpired: self._expired,
            V.OrderModified: self._modified, V.MarkPriceUpdated: self._mark,
            V.FundingPaid: self._funding, V.Deposited: self._deposited,
            V.Withdrawn: self._withdrawn, V.LiquidationFeeCharged: self._liq_fee,
            V.AdlTrade: self._adl, V.FuturesTransferred: self._transfer,
            V.AlgoOrderAccepted: self._algo_accepted, V.AlgoOrderCanceled: self._algo_canceled,
            V.AlgoOrderExpired: self._algo_expired, V.AlgoOrderTriggered: self._algo_triggered,
            V.AlgoOrderRejected: self._algo_rejected, V.AssetExchanged: self._exchanged,
        }

    # -- feeding ----------------------------------------------------------------------------------
    def apply(self, record: LogRecord, observer: Callable[[V.Event], None] | None = None) -> None:
        """Apply one record's events; `observer(event)` runs after each (the user streams read
        the projection in exactly the state after that event)."""
        self.seq = record.seq
        self._time = record.time
        self._command = record.command
        self._triggered = {}
        handlers = self._handlers
        for ev in record.events:
            h = handlers.get(type(ev))
            if h is not None:
                h(ev)
            if observer is not None:
                observer(ev)

    def apply_all(self, records: Iterable[LogRecord]) -> None:
        for record in records:
            self.apply(record)

    # -- orders -----------------------------------------------------------------------------------
    def order(self, account: int, order_id: int = 0, client_id: str = "") -> OrderInfo | None:
        if not order_id and client_id:
            order_id = self.client_ids.get((account, client_id), 0)
        o = self.orders.get(order_id)
        return o if o is not None and o.account == account else None

    def account_orders(self, account: int) -> list[OrderInfo]:
        """Open and retained closed orders of `account`, by order id."""
        out = list(self.open_by_account.get(account, {}).values())
        out += [self.orders[i] for i in self.closed.get(account, ()) if i in self.orders]
        out.sort(key=lambda o: o.order_id)
        return out

    def open_orders(self, account: int, symbol: str | None = None) -> list[OrderInfo]:
        out = [o for o in self.open_by_account.get(account, {}).values()
               if symbol is None or o.symbol == symbol]
        out.sort(key=lambda o: o.order_id)
        return out

    def _accepted(self, ev: V.OrderAccepted) -> None:
        algo = self._triggered.pop(ev.order_id, None)
        match = "NONE"
        cmd = self._command
        if algo is not None:
            match = algo.price_match
            self.order_algo[ev.order_id] = algo.algo_id
        elif type(cmd) is C.NewOrder and cmd.account == ev.account and not ev.liquidation:
            match = cmd.price_match or "NONE"
        o = OrderInfo(ev, self._time, match, algo, self.sizes.get(ev.symbol, 0))
        self.orders[o.order_id] = o
        self.open_by_account.setdefault(o.account, {})[o.order_id] = o
        if o.client_id:
            self.client_ids[(o.account, o.client_id)] = o.order_id
        if ev.liquidation:
            q = self.force.get(o.account)
            if q is None:
                q = self.force[o.account] = deque(maxlen=self.keep)
            q.append(o)

    def _close(self, o: OrderInfo, status: str) -> None:
        o.status = status
        o.update_time = self._time
        algo_id = self.order_algo.pop(o.order_id, None)
        if algo_id is not None:
            algo = self.algos.get(algo_id)
            if algo is not None:
                algo.status = "FINISHED"
                algo.update_time = self._time
        opened = self.open_by_account.get(o.account)
        if opened is not None:
            opened.pop(o.order_id, None)
            if not opened:
                del self.open_by_account[o.account]
        q = self.closed.get(o.account)
        if q is None:
            q = self.closed[o.account] = deque()
        q.append(o.order_id)
        if len(q) > self.keep:
            old = self.orders.pop(q.popleft(), None)
            if old is not None and old.client_id and \
                    self.client_ids.get((old.account, old.client_id)) == old.order_id:
                del self.client_ids[(old.account, old.client_id)]

    def _fill(self, order_id: int, ev: V.Trade, fee: int, pnl: int, maker: bool) -> None:
        o = self.orders.get(order_id)
        if o is None:
            return
        q = ev.quantity
        o.executed += q
        o.cum_quote += q * ev.price // SCALE
        if o.size:
            o.cum_base += inverse.coin_value(q, o.size, ev.price)
            o.inverse_sum += Fraction(q, ev.price)
        o.last_qty, o.last_price, o.last_trade = q, ev.price, ev.trade_id
        o.last_fee, o.last_pnl, o.last_maker = fee, pnl, maker
        o.update_time = self._time
        if o.executed >= o.orig_qty:
            self._close(o, "FILLED")
        else:
            o.status = "PARTIALLY_FILLED"

    def _canceled(self, ev: V.OrderCanceled) -> None:
        o = self.orders.get(ev.order_id)
        if o is not None:
            self._close(o, "CANCELED")

    def _expired(self, ev: V.OrderExpired) -> None:
        o = self.orders.get(ev.order_id)
        if o is not None and o.is_open:
            self._close(o, ev.status)

    def _modified(self, ev: V.OrderModified) -> None:
        o = self.orders.get(ev.order_id)
        if o is not None:
            o.price = ev.price
            o.orig_qty = ev.quantity
            o.update_time = self._time

    # -- trades -----------------------------------------------------------------------------------
    def _trade(self, ev: V.Trade) -> None:
        t = self._time
        sym = ev.symbol
        size = self.sizes.get(sym, 0)
        quote = inverse.coin_value(ev.quantity, size, ev.price) if size else \
            ev.quantity * ev.price // SCALE
        buyer_maker = ev.taker_side == "SELL"
        q = self.trades.get(sym)
        if q is None:
            q = self.trades[sym] = deque(maxlen=self.keep)
            self.agg[sym] = deque(maxlen=self.keep)
        q.append((ev.trade_id, ev.price, ev.quantity, quote, t, buyer_maker))
        agg = self.agg[sym]
        last = agg[-1] if agg else None
        if last is not None and last[8] == self.seq and last[7] == ev.taker_order_id \
                and last[1] == ev.price:
            agg[-1] = (last[0], last[1], last[2] + ev.quantity, last[3], ev.trade_id, last[5],
                       last[6], last[7], last[8])
        else:
            a = self.next_agg.get(sym, 1)
            self.next_agg[sym] = a + 1
            agg.append((a, ev.price, ev.quantity, ev.trade_id, ev.trade_id, t, buyer_maker,
                        ev.taker_order_id, self.seq))
        self.last_trade[sym] = (ev.price, ev.quantity, t)
        self._klines("last", sym).add(t, ev.price, ev.quantity, quote, ev.taker_side == "BUY",
                                      ev.trade_id)
        self._fill(ev.taker_order_id, ev, ev.taker_fee, ev.taker_realized_pnl, False)
        self._fill(ev.maker_order_id, ev, ev.maker_fee, ev.maker_realized_pnl, True)
        taker_buy = ev.taker_side == "BUY"
        for account, order_id, fee, pnl, maker, buyer in (
                (ev.taker_account, ev.taker_order_id, ev.taker_fee, ev.taker_realized_pnl,
                 False, taker_buy),
                (ev.maker_account, ev.maker_order_id, ev.maker_fee, ev.maker_realized_pnl,
                 True, not taker_buy)):
            ut = self.user_trades.get(account)
            if ut is None:
                ut = self.user_trades[account] = deque(maxlen=self.keep)
            o = self.orders.get(order_id)
            side = o.position_side if o is not None else "BOTH"
            ut.append((ev.trade_id, sym, order_id, buyer, ev.price, ev.quantity, quote, fee,
                       pnl, maker, t, side))
            if pnl:  # its REALIZED_PNL and COMMISSION income rows are read off the fills
                self._realized(account, sym, side, pnl)

    def _adl(self, ev: V.AdlTrade) -> None:
        asset = self.assets.get(ev.symbol, "USDT")
        for account, pnl, side in ((ev.account, ev.realized_pnl, ev.position_side),
                                   (ev.counterparty, ev.counterparty_realized_pnl,
                                    ev.counterparty_position_side)):
            if pnl:
                self._realized(account, ev.symbol, side, pnl)
                self._income(account, ev.symbol, "REALIZED_PNL", pnl, asset, str(ev.trade_id))
        o = self.orders.get(ev.order_id)
        if o is not None:
            o.executed += ev.quantity
            o.cum_quote += ev.quantity * ev.price // SCALE
            if o.size:
                o.cum_base += inverse.coin_value(ev.quantity, o.size, ev.price)
                o.inverse_sum += Fraction(ev.quantity, ev.price)
            o.update_time = self._time
            if o.executed >= o.orig_qty:
                self._close(o, "FILLED")

    def _mark(self, ev: V.MarkPriceUpdated) -> None:
        t = self._time
        if ev.mark_price:
            self._klines("mark", ev.symbol).add(t, ev.mark_price)
        if ev.index_price:
            self._klines("index", ev.symbol).add(t, ev.index_price)

    def _klines(self, kind: str, symbol: str) -> Klines:
        k = self.klines.get((kind, symbol))
        if k is None:
            k = self.klines[(kind, symbol)] = Klines()
        return k

    # -- income -----------------------------------------------------------------------------------
    def _realized(self, account: int, symbol: str, side: str, pnl: int) -> None:
        key = (account, symbol, side)
        self.realized[key] = self.realized.get(key, 0) + pnl

    def _income(self, account: int, symbol: str, kind: str, amount: int, asset: str,
                trade_id: str = "") -> None:
        q = self.income.get(account)
        if q is None:
            q = self.income[account] = deque(maxlen=self.keep)
        q.append((symbol, kind, amount, self._time, self.next_tran, trade_id, asset))
        self.next_tran += 1

    def _funding(self, ev: V.FundingPaid) -> None:
        if ev.amount:
            self._income(ev.account, ev.symbol, "FUNDING_FEE", ev.amount, ev.asset)

    def _deposited(self, ev: V.Deposited) -> None:
        self._income(ev.account, "", "TRANSFER", ev.amount, ev.asset)

    def _withdrawn(self, ev: V.Withdrawn) -> None:
        self._income(ev.account, "", "TRANSFER", -ev.amount, ev.asset)

    def _transfer(self, ev: V.FuturesTransferred) -> None:
        self._income(ev.account, "", "TRANSFER", ev.amount if ev.type == 1 else -ev.amount,
                     "USDT")

    def _liq_fee(self, ev: V.LiquidationFeeCharged) -> None:
        self._income(ev.account, ev.symbol, "INSURANCE_CLEAR", -ev.amount, ev.asset)

    def _exchanged(self, ev: V.AssetExchanged) -> None:
        self._income(ev.account, "", "AUTO_EXCHANGE", -ev.from_amount, ev.from_asset)
        self._income(ev.account, "", "AUTO_EXCHANGE", ev.amount, ev.asset)

    # -- conditional (Algo) orders ----------------------------------------------------------------
    def algo(self, account: int, algo_id: int = 0, client_id: str = "") -> AlgoInfo | None:
        if not algo_id and client_id:
            algo_id = self.algo_client_ids.get((account, client_id), 0)
        a = self.algos.get(algo_id)
        return a if a is not None and a.account == account else None

    def account_algos(self, account: int) -> list[AlgoInfo]:
        """Open and retained closed conditional orders of `account`, by algo id."""
        out = list(self.open_algos.get(account, {}).values())
        out += [self.algos[i] for i in self.closed_algos.get(account, ()) if i in self.algos]
        out.sort(key=lambda a: a.algo_id)
        return out

    def open_algo_orders(self, account: int, symbol: str | None = None) -> list[AlgoInfo]:
        out = [a for a in self.open_algos.get(account, {}).values()
               if symbol is None or a.symbol == symbol]
        out.sort(key=lambda a: a.algo_id)
        return out

    def _algo_accepted(self, ev: V.AlgoOrderAccepted) -> None:
        a = AlgoInfo(ev, self._time)
        self.algos[a.algo_id] = a
        self.open_algos.setdefault(a.account, {})[a.algo_id] = a
        if a.client_id:
            self.algo_client_ids[(a.account, a.client_id)] = a.algo_id

    def _algo_close(self, algo_id: int, status: str) -> AlgoInfo | None:
        a = self.algos.get(algo_id)
        if a is None:
            return None
        a.status = status
        a.update_time = self._time
        opened = self.open_algos.get(a.account)
        if opened is not None:
            opened.pop(algo_id, None)
            if not opened:
                del self.open_algos[a.account]
        q = self.closed_algos.get(a.account)
        if q is None:
            q = self.closed_algos[a.account] = deque()
        q.append(algo_id)
        if len(q) > self.keep:
            old = self.algos.pop(q.popleft(), None)
            if old is not None and old.client_id and \
                    self.algo_client_ids.get((old.account, old.client_id)) == old.algo_id:
                del self.algo_client_ids[(old.account, old.client_id)]
        return a

    def _algo_canceled(self, ev: V.AlgoOrderCanceled) -> None:
        self._algo_close(ev.algo_id, "CANCELED")

    def _algo_expired(self, ev: V.AlgoOrderExpired) -> None:
        self._algo_close(ev.algo_id, "EXPIRED")

    def _algo_rejected(self, ev: V.AlgoOrderRejected) -> None:
        a = self._algo_close(ev.algo_id, "REJECTED")
        if a is not None:
            a.trigger_time = self._time
            a.reason = ev.msg

    def _algo_triggered(self, ev: V.AlgoOrderTriggered) -> None:
        a = self._algo_close(ev.algo_id, "TRIGGERED")
        if a is not None:
            a.trigger_time = self._time
            a.actual_order_id = ev.order_id
            self._triggered[ev.order_id] = a  # its OrderAccepted follows in this record

    def income_rows(self, account: int) -> list[tuple]:
        """Every income row of the account, by time: the stored ones and, from its fills,
        REALIZED_PNL (when not zero) and COMMISSION (tranId: the trade id's, doubled, plus
        TRADE_TRAN_BASE). Rows: (symbol, type, amount, time, tranId, tradeId, asset)."""
        rows = list(self.income.get(account, ()))
        assets = self.assets
        for t in self.user_trades.get(account, ()):
            trade_id, sym, pnl, fee, time = t[0], t[1], t[8], t[7], t[10]
            asset = assets.get(sym, "USDT")
            if pnl:
                rows.append((sym, "REALIZED_PNL", pnl, time, TRADE_TRAN_BASE + 2 * trade_id,
                             str(trade_id), asset))
            if fee:
                rows.append((sym, "COMMISSION", -fee, time, TRADE_TRAN_BASE + 2 * trade_id + 1,
                             str(trade_id), asset))
        rows.sort(key=lambda r: (r[3], r[4]))
        return rows

    # -- rolling 24 hours -------------------------------------------------------------------------
    def day_stats(self, symbol: str, now: int) -> dict:
        """The last 24 hours of trades (at minute granularity): open, high, low, volumes,
        count, first and last trade id."""
        k = self.klines.get(("last", symbol))
        since = now - DAY
        rows = [c for c in k.series["1m"] if c[6] >= since] if k is not None else []
        out = {"open": 0, "high": 0, "low": 0, "volume": 0, "quote": 0, "count": 0,
               "first": -1, "last": -1, "open_time": since, "close_time": now}
        if rows:
            out.update(open=rows[0][1], high=max(c[2] for c in rows),
                       low=min(c[3] for c in rows), volume=sum(c[5] for c in rows),
                       quote=sum(c[7] for c in rows), count=sum(c[8] for c in rows),
                       first=rows[0][11], last=rows[-1][12])
        return out
