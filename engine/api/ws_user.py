"""User data streams in Binance's payloads: ORDER_TRADE_UPDATE and TRADE_LITE (built right
after each event, from the projection in exactly that state), ACCOUNT_UPDATE with its reason
(once per record and account, from the core's state after the record), MARGIN_CALL,
ACCOUNT_CONFIG_UPDATE; ALGO_UPDATE comes with the core's conditional orders. Built only for
accounts with a stream open; sent once the batch is in the log."""
from __future__ import annotations

from engine.core.accounts import ISOLATED
from engine.core.fixed import fmt
from engine.views import binance as B
from engine.views.history import OrderInfo
from proto import events as V
from proto.records import LogRecord

# ACCOUNT_UPDATE's reason ("m") for the events that move a wallet or a position; the first in
# this order that the record holds for the account
_REASONS = ((V.Trade, "ORDER"), (V.AdlTrade, "ORDER"), (V.LiquidationFeeCharged, "ORDER"),
            (V.FundingPaid, "FUNDING_FEE"), (V.Deposited, "DEPOSIT"), (V.Withdrawn, "WITHDRAW"),
            (V.IsolatedMarginChanged, "MARGIN_TRANSFER"),
            (V.MarginTypeChanged, "MARGIN_TYPE_CHANGE"), (V.InsuranceCovered, "INSURANCE_CLEAR"),
            (V.FuturesTransferred, "DEPOSIT"))
_REASON_OF = dict(_REASONS)
_RANK = {t: i for i, (t, _) in enumerate(_REASONS)}


def order_update(o: OrderInfo, x: str, t: int, bids: int, asks: int, last: bool = False) -> dict:
    """ORDER_TRADE_UPDATE for order `o` as it is now; `last`: with its latest fill."""
    return {"e": "ORDER_TRADE_UPDATE", "E": t, "T": t, "o": {
        "s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type,
        "f": "GTC" if o.type == "MARKET" else o.tif, "q": fmt(o.orig_qty), "p": fmt(o.price),
        "ap": fmt(o.avg_price), "sp": "0", "x": x, "X": o.status, "i": o.order_id,
        "l": fmt(o.last_qty if last else 0), "z": fmt(o.executed),
        "L": fmt(o.last_price if last else 0), "N": "USDT", "n": fmt(o.last_fee if last else 0),
        "T": t, "t": o.last_trade if last else 0, "b": fmt(bids), "a": fmt(asks),
        "m": o.last_maker if last else False, "R": o.reduce_only, "wt": "CONTRACT_PRICE",
        "ot": o.type, "ps": "BOTH", "cp": False, "rp": fmt(o.last_pnl if last else 0),
        "pP": False, "si": 0, "ss": 0, "V": o.stp, "pm": "NONE", "gtd": 0}}


class UserStreams:
    def __init__(self, api, streams) -> None:
        self.api = api
        self.engine = api.engine
        self.streams = streams
        self.pending: list[tuple[int, dict]] = []
        self._record: LogRecord | None = None
        self._touched: dict[int, list] = {}  # account -> [reason rank, balance change, symbols]

    def observer(self, record: LogRecord):
        """The per-event hook for the projection, or None when nobody listens."""
        if not self.streams.by_account:
            return None
        self._record = record
        self._touched = {}
        return self._on_event

    def _notional(self, account: int, symbol: str) -> tuple[int, int]:
        acct = self.engine.accounts.get(account)
        pos = acct.positions.get(symbol) if acct is not None else None
        return (pos.buys.notional, pos.sells.notional) if pos is not None else (0, 0)

    def _order(self, order_id: int, x: str, last: bool = False) -> None:
        o = self.api.history.orders.get(order_id)
        if o is None or o.account not in self.streams.by_account:
            return
        b, a = self._notional(o.account, o.symbol)
        self.pending.append((o.account, order_update(o, x, self._record.time, b, a, last)))
        if last:
            t = self._record.time
            self.pending.append((o.account, {
                "e": "TRADE_LITE", "E": t, "T": t, "s": o.symbol, "q": fmt(o.orig_qty),
                "p": fmt(o.price), "m": o.last_maker, "c": o.client_id, "S": o.side,
                "L": fmt(o.last_price), "l": fmt(o.last_qty), "t": o.last_trade,
                "i": o.order_id}))

    def _touch(self, account: int, ev, symbol: str = "", change: int = 0) -> None:
        if account not in self.streams.by_account:
            return
        entry = self._touched.get(account)
        rank = _RANK[type(ev)]
        if entry is None:
            entry = self._touched[account] = [rank, 0, set()]
        elif rank < entry[0]:
            entry[0] = rank
        entry[1] += change
        if symbol:
            entry[2].add(symbol)

    def _on_event(self, ev) -> None:
        t = type(ev)
        if t is V.OrderAccepted:
            self._order(ev.order_id, "NEW")
        elif t is V.Trade:
            self._order(ev.maker_order_id, "TRADE", last=True)
            self._order(ev.taker_order_id, "TRADE", last=True)
            self._touch(ev.maker_account, ev, ev.symbol)
            self._touch(ev.taker_account, ev, ev.symbol)
        elif t is V.OrderCanceled:
            self._order(ev.order_id, "CANCELED")
        elif t is V.OrderExpired:
            self._order(ev.order_id, "EXPIRED")
        elif t is V.OrderModified:
            self._order(ev.order_id, "AMENDMENT")
        elif t is V.AdlTrade:
            self._touch(ev.account, ev, ev.symbol)
            self._touch(ev.counterparty, ev, ev.symbol)
        elif t in (V.Deposited, V.Withdrawn):
            self._touch(ev.account, ev, "", ev.amount if t is V.Deposited else -ev.amount)
        elif t is V.FundingPaid:
            self._touch(ev.account, ev, ev.symbol, ev.amount)
        elif t in (V.IsolatedMarginChanged, V.MarginTypeChanged, V.LiquidationFeeCharged,
                   V.InsuranceCovered):
            self._touch(ev.account, ev, ev.symbol)
        elif t is V.FuturesTransferred:
            self._touch(ev.account, ev, "", ev.amount if ev.type == 1 else -ev.amount)
        elif t is V.LeverageChanged and ev.account in self.streams.by_account:
            tm = self._record.time
            self.pending.append((ev.account, {"e": "ACCOUNT_CONFIG_UPDATE", "E": tm, "T": tm,
                                              "ac": {"s": ev.symbol, "l": ev.leverage}}))
        elif t is V.MarginCallIssued and ev.account in self.streams.by_account:
            self.pending.append((ev.account, self._margin_call(ev)))

    def after_record(self) -> None:
        """One ACCOUNT_UPDATE per account the record moved."""
        if not self._touched:
            return
        t = self._record.time
        for account, (rank, change, symbols) in self._touched.items():
            acct = self.engine.accounts.get(account)
            if acct is None:
                continue
            isolated = sum(p.isolated_margin for p in acct.positions.values()
                           if p.margin_type == ISOLATED)
            positions = []
            for name in sorted(symbols):
                pos = acct.positions.get(name)
                if pos is None:
                    continue
                _, upnl, _ = self.engine.ledger.position_figures(pos, self.engine.symbols[name])
                positions.append({
                    "s": name, "pa": fmt(pos.qty), "ep": fmt(pos.entry_price()),
                    "bep": fmt(B.break_even(pos)),
                    "cr": fmt(self.api.history.realized.get((account, name), 0)),
                    "up": fmt(upnl), "mt": "isolated" if pos.margin_type == ISOLATED else "cross",
                    "iw": fmt(pos.isolated_margin), "ps": "BOTH"})
            self.pending.append((account, {"e": "ACCOUNT_UPDATE", "E": t, "T": t, "a": {
                "m": _REASONS[rank][1],
                "B": [{"a": "USDT", "wb": fmt(acct.wallet), "cw": fmt(acct.wallet - isolated),
                       "bc": fmt(change)}],
                "P": positions}}))
        self._touched = {}

    def _margin_call(self, ev: V.MarginCallIssued) -> dict:
        acct = self.engine.accounts[ev.account]
        t = self._record.time
        rows = []
        cross_wallet = acct.wallet
        for name, pos in sorted(acct.positions.items()):
            if pos.margin_type == ISOLATED:
                cross_wallet -= pos.isolated_margin
            in_scope = (pos.margin_type == ISOLATED and name == ev.symbol) or \
                (not ev.symbol and pos.margin_type != ISOLATED)
            if not pos.qty or not in_scope:
                continue
            sym = self.engine.symbols[name]
            notional, upnl, _ = self.engine.ledger.position_figures(pos, sym)
            rows.append({"s": name, "ps": "BOTH", "pa": fmt(pos.qty),
                         "mt": "ISOLATED" if pos.margin_type == ISOLATED else "CROSSED",
                         "iw": fmt(pos.isolated_margin), "mp": fmt(sym.mark), "up": fmt(upnl),
                         "mm": fmt(sym.table_at(self.engine.time).maint_margin(abs(notional)))})
        out = {"e": "MARGIN_CALL", "E": t}
        if not ev.symbol:
            out["cw"] = fmt(cross_wallet)
        out["p"] = rows
        return out

    def publish(self) -> None:
        pending, self.pending = self.pending, []
        for account, msg in pending:
            self.streams.send_user(account, msg)
