"""User data streams in Binance's payloads: ORDER_TRADE_UPDATE and TRADE_LITE (built right
after each event, from the projection in exactly that state), ALGO_UPDATE for conditional
orders (NEW, CANCELED, EXPIRED, TRIGGERING and TRIGGERED with the order it placed, REJECTED
with the reason, FINISHED once that order is done) and CONDITIONAL_ORDER_TRIGGER_REJECT (which
Binance deprecated on 2025-12-15 in favour of ALGO_UPDATE's `rm`: still sent, for clients that
read it), ACCOUNT_UPDATE with its reason (once per record, account and product, from the
core's state after the record: the balances of the assets it moved, the positions of the
symbols it touched, a row per hedge leg), MARGIN_CALL, ACCOUNT_CONFIG_UPDATE (leverage; the
Multi-Assets mode as `ai.j`).

A listen key belongs to an account and a product (engine.api.endpoint: USDM for /fapi's keys,
COINM for /dapi's): an event of a COIN-M symbol goes to the account's COIN-M stream, of a
USDⓈ-M symbol to its USDⓈ-M stream; a balance row goes to the USDⓈ-M stream for any asset
(every asset is a USDⓈ-M wallet asset here) and to the COIN-M stream for the coins that margin
COIN-M contracts. Built only for accounts with a stream open; sent once the batch is in the log."""
from __future__ import annotations

from engine.api.endpoint import COINM, USDM
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
            (V.AssetExchanged, "AUTO_EXCHANGE"), (V.FuturesTransferred, "DEPOSIT"))
_RANK = {t: i for i, (t, _) in enumerate(_REASONS)}
CLOSED = frozenset({"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"})


def order_update(o: OrderInfo, x: str, t: int, bids: int, asks: int, asset: str,
                 last: bool = False) -> dict:
    """ORDER_TRADE_UPDATE for order `o` as it is now; `last`: with its latest fill."""
    body = {
        "s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type,
        "f": "GTC" if o.type == "MARKET" else o.tif, "q": fmt(o.orig_qty), "p": fmt(o.price),
        "ap": fmt(o.avg_price), "sp": fmt(o.stop_price), "x": x, "X": o.status,
        "i": o.order_id, "l": fmt(o.last_qty if last else 0), "z": fmt(o.executed),
        "L": fmt(o.last_price if last else 0), "N": asset, "n": fmt(o.last_fee if last else 0),
        "T": t, "t": o.last_trade if last else 0, "b": fmt(bids), "a": fmt(asks),
        "m": o.last_maker if last else False, "R": o.reduce_only, "wt": o.working_type,
        "ot": o.orig_type, "ps": o.position_side, "cp": o.close_position,
        "rp": fmt(o.last_pnl if last else 0), "pP": o.price_protect, "si": 0, "ss": 0,
        "V": o.stp, "pm": o.price_match, "gtd": o.gtd}
    if o.orig_type == "TRAILING_STOP_MARKET":
        body["AP"] = fmt(o.activate_price)
        body["cr"] = fmt(o.callback_rate)
    if o.size:
        body["ma"] = asset  # COIN-M: the margin asset
    return {"e": "ORDER_TRADE_UPDATE", "E": t, "T": t, "o": body}


class UserStreams:
    def __init__(self, api, streams) -> None:
        self.api = api
        self.engine = api.engine
        self.streams = streams
        self.coinm = set(api.symbols[COINM])
        self.coins = {api.engine.symbols[s].spec.margin_asset for s in self.coinm}
        self.pending: list[tuple[tuple[int, str], dict]] = []
        self._record: LogRecord | None = None
        # account -> [reason rank, {asset: balance change}, touched symbols]
        self._touched: dict[int, list] = {}

    def product(self, symbol: str) -> str:
        return COINM if symbol in self.coinm else USDM

    def observer(self, record: LogRecord):
        """The per-event hook for the projection, or None when nobody listens."""
        if not self.streams.by_account:
            return None
        self._record = record
        self._touched = {}
        return self._on_event

    def _listening(self, account: int) -> bool:
        by = self.streams.by_account
        return (account, USDM) in by or (account, COINM) in by

    def _send(self, account: int, product: str, msg: dict) -> None:
        if (account, product) in self.streams.by_account:
            self.pending.append(((account, product), msg))

    def _order(self, order_id: int, x: str, last: bool = False) -> None:
        o = self.api.history.orders.get(order_id)
        if o is None or not self._listening(o.account):
            return
        product = self.product(o.symbol)
        if (o.account, product) not in self.streams.by_account:
            return
        acct = self.engine.accounts.get(o.account)
        bids = asks = 0
        if acct is not None:
            for leg in acct.legs(o.symbol):
                bids += leg.buys.notional
                asks += leg.sells.notional
        asset = self.api.history.assets.get(o.symbol, "USDT")
        t = self._record.time
        self._send(o.account, product, order_update(o, x, t, bids, asks, asset, last))
        if last and product == USDM:
            self._send(o.account, product, {
                "e": "TRADE_LITE", "E": t, "T": t, "s": o.symbol, "q": fmt(o.orig_qty),
                "p": fmt(o.price), "m": o.last_maker, "c": o.client_id, "S": o.side,
                "L": fmt(o.last_price), "l": fmt(o.last_qty), "t": o.last_trade,
                "i": o.order_id})
        if o.algo_id and o.status in CLOSED:  # the conditional order's order is done
            self._algo(o.algo_id, "FINISHED")

    def _algo(self, algo_id: int, status: str, reason: str = "") -> None:
        history = self.api.history
        a = history.algos.get(algo_id)
        if a is None or not self._listening(a.account):
            return
        actual = history.orders.get(a.actual_order_id) if a.actual_order_id else None
        live = self.engine.conditional.algos.get(algo_id)
        t = self._record.time
        self._send(a.account, self.product(a.symbol), {"e": "ALGO_UPDATE", "T": t, "E": t, "o": {
            "caid": a.client_id, "aid": a.algo_id, "at": "CONDITIONAL", "o": a.type,
            "s": a.symbol, "S": a.side, "ps": a.position_side, "f": a.tif,
            "q": fmt(a.quantity), "X": status,
            "ai": str(a.actual_order_id) if a.actual_order_id else "",
            "ap": fmt(actual.avg_price) if actual is not None else "0",
            "aq": fmt(actual.executed) if actual is not None else "0",
            "act": actual.type if actual is not None else "0", "tp": fmt(a.trigger),
            "p": fmt(a.price), "V": a.stp, "wt": a.working_type, "pm": a.price_match,
            "cp": a.close_position, "pP": a.price_protect, "R": a.reduce_only,
            "tt": a.trigger_time, "gtd": a.gtd, "rm": reason,
            "ia": bool(live is not None and live.active)}})

    def _touch(self, account: int, ev, symbol: str = "", asset: str = "",
               change: int = 0) -> None:
        if not self._listening(account):
            return
        entry = self._touched.get(account)
        rank = _RANK[type(ev)]
        if entry is None:
            entry = self._touched[account] = [rank, {}, set()]
        elif rank < entry[0]:
            entry[0] = rank
        if symbol:
            entry[2].add(symbol)
            asset = asset or self.api.history.assets.get(symbol, "USDT")
        if asset:
            entry[1][asset] = entry[1].get(asset, 0) + change

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
        elif t is V.AlgoOrderAccepted:
            self._algo(ev.algo_id, "NEW")
        elif t is V.AlgoOrderCanceled:
            self._algo(ev.algo_id, "CANCELED")
        elif t is V.AlgoOrderExpired:
            self._algo(ev.algo_id, "EXPIRED")
        elif t is V.AlgoOrderTriggered:
            self._algo(ev.algo_id, "TRIGGERING")
            self._algo(ev.algo_id, "TRIGGERED")
        elif t is V.AlgoOrderRejected:
            self._algo(ev.algo_id, "REJECTED", ev.msg)
            tm = self._record.time
            self._send(ev.account, self.product(ev.symbol), {
                "e": "CONDITIONAL_ORDER_TRIGGER_REJECT", "E": tm, "T": tm,
                "or": {"s": ev.symbol, "i": ev.algo_id, "r": ev.msg}})
        elif t is V.AdlTrade:
            self._touch(ev.account, ev, ev.symbol)
            self._touch(ev.counterparty, ev, ev.symbol)
        elif t is V.Deposited:
            self._touch(ev.account, ev, "", ev.asset, ev.amount)
        elif t is V.Withdrawn:
            self._touch(ev.account, ev, "", ev.asset, -ev.amount)
        elif t is V.FundingPaid:
            self._touch(ev.account, ev, ev.symbol, ev.asset, ev.amount)
        elif t in (V.IsolatedMarginChanged, V.MarginTypeChanged):
            self._touch(ev.account, ev, ev.symbol)
        elif t in (V.LiquidationFeeCharged, V.InsuranceCovered):
            self._touch(ev.account, ev, ev.symbol, ev.asset)
        elif t is V.AssetExchanged:
            self._touch(ev.account, ev, "", ev.from_asset, -ev.from_amount)
            self._touch(ev.account, ev, "", ev.asset, ev.amount)
        elif t is V.FuturesTransferred:
            self._touch(ev.account, ev, "", "USDT", ev.amount if ev.type == 1 else -ev.amount)
        elif t is V.LeverageChanged:
            tm = self._record.time
            self._send(ev.account, self.product(ev.symbol), {
                "e": "ACCOUNT_CONFIG_UPDATE", "E": tm, "T": tm,
                "ac": {"s": ev.symbol, "l": ev.leverage}})
        elif t is V.MultiAssetsMarginChanged:
            tm = self._record.time
            self._send(ev.account, USDM, {"e": "ACCOUNT_CONFIG_UPDATE", "E": tm, "T": tm,
                                          "ai": {"j": ev.multi_assets_margin}})
        elif t is V.MarginCallIssued and self._listening(ev.account):
            product = self.product(ev.symbol) if ev.symbol else \
                COINM if ev.asset in self.coins else USDM
            self._send(ev.account, product, self._margin_call(ev, product))

    def after_record(self) -> None:
        """One ACCOUNT_UPDATE per account and product the record moved."""
        if not self._touched:
            return
        t = self._record.time
        engine = self.engine
        for account, (rank, changes, symbols) in self._touched.items():
            acct = engine.accounts.get(account)
            if acct is None:
                continue
            isolated: dict[str, int] = {}
            for p in acct.positions.values():
                if p.margin_type == ISOLATED:
                    isolated[p.asset] = isolated.get(p.asset, 0) + p.isolated_margin
            for product in (USDM, COINM):
                if (account, product) not in self.streams.by_account:
                    continue
                balances = [{"a": a, "wb": fmt(acct.balance(a)),
                             "cw": fmt(acct.balance(a) - isolated.get(a, 0)), "bc": fmt(c)}
                            for a, c in sorted(changes.items())
                            if product == USDM or a in self.coins]
                positions = []
                for name in sorted(symbols):
                    if self.product(name) != product:
                        continue
                    for pos in acct.legs(name):
                        _, upnl, _ = engine.ledger.position_figures(pos, engine.symbols[name])
                        positions.append({
                            "s": name, "pa": fmt(pos.qty), "ep": fmt(pos.entry_price()),
                            "bep": fmt(B.break_even(pos)),
                            "cr": fmt(self.api.history.realized.get(
                                (account, name, pos.side), 0)),
                            "up": fmt(upnl),
                            "mt": "isolated" if pos.margin_type == ISOLATED else "cross",
                            "iw": fmt(pos.isolated_margin), "ps": pos.side})
                if balances or positions:
                    self._send(account, product, {"e": "ACCOUNT_UPDATE", "E": t, "T": t, "a": {
                        "m": _REASONS[rank][1], "B": balances, "P": positions}})
        self._touched = {}

    def _margin_call(self, ev: V.MarginCallIssued, product: str) -> dict:
        engine = self.engine
        acct = engine.accounts[ev.account]
        t = self._record.time
        rows = []
        cross_wallet = acct.balance(ev.asset) if ev.asset in acct.assets() else acct.wallet
        for key, pos in sorted(acct.positions.items()):
            name = pos.symbol
            if pos.margin_type == ISOLATED and pos.asset == ev.asset:
                cross_wallet -= pos.isolated_margin
            if ev.symbol:
                in_scope = pos.margin_type == ISOLATED and name == ev.symbol and \
                    pos.side == ev.position_side
            else:
                in_scope = pos.margin_type != ISOLATED and \
                    (acct.multi_assets or pos.asset == ev.asset)
            if not pos.qty or not in_scope or self.product(name) != product:
                continue
            sym = engine.symbols[name]
            notional, upnl, _ = engine.ledger.position_figures(pos, sym)
            rows.append({"s": name, "ps": pos.side, "pa": fmt(pos.qty),
                         "mt": "ISOLATED" if pos.margin_type == ISOLATED else "CROSSED",
                         "iw": fmt(pos.isolated_margin), "mp": fmt(sym.mark), "up": fmt(upnl),
                         "mm": fmt(sym.table_at(engine.time).maint_margin(abs(notional)))})
        out = {"e": "MARGIN_CALL", "E": t}
        if not ev.symbol:
            out["cw"] = fmt(cross_wallet)
        out["p"] = rows
        return out

    def publish(self) -> None:
        pending, self.pending = self.pending, []
        for user, msg in pending:
            self.streams.send_user(user, msg)
