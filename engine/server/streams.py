"""From log records to stream messages: private per account, public per symbol.

    user                 the account's order updates, fills, balance/position updates,
                         margin calls and liquidations; a trade shows only the account's own
                         side (own_events): never the other side's account, order, fee or PnL
    trade@SYMBOL         trades
    depth@SYMBOL         depth diffs: {"U", "u", "pu", "b", "a"}; u is the record's sequence
                         number and pu the u of the previous diff of that symbol, so a client
                         that starts from a snapshot ({"lastUpdateId", "bids", "asks"}) keeps an
                         exact book: drop diffs with u <= lastUpdateId, then require pu == the
                         last u applied
    markPrice@SYMBOL     mark prices
    forceOrder@SYMBOL    liquidation orders, in Binance's forceOrder shape; !forceOrder: all
"""
from __future__ import annotations

from engine.core import Engine
from engine.core.accounts import ISOLATED
from engine.core.fixed import SCALE, fmt
from proto import events as V
from proto.json_edge import to_wire
from proto.records import LogRecord

_ACCOUNT_FIELDS = ("account", "maker_account", "taker_account", "counterparty")
_BALANCE_EVENTS = (V.Trade, V.AdlTrade, V.Deposited, V.Withdrawn, V.LiquidationFeeCharged,
                   V.InsuranceCovered, V.IsolatedMarginChanged, V.AssetExchanged)


def involved(ev) -> list[int]:
    """The accounts an event concerns (none: market data, public to everyone)."""
    out = []
    for f in _ACCOUNT_FIELDS:
        aid = getattr(ev, f, None)
        if aid and aid not in out:
            out.append(aid)
    return out


def own_events(ev, aid: int) -> list[dict]:
    """What account `aid` may see of `ev`, in wire shape: its own side of a trade (both sides
    for a self-trade), its own events whole, nothing of anyone else's. Binance's
    ORDER_TRADE_UPDATE likewise shows one side: order id, side, maker flag, fee and realized
    PnL of the account's own order."""
    t = type(ev)
    if t is V.Trade or t is V.SpotTrade:
        out = []
        for side_is_taker in (False, True):
            account = ev.taker_account if side_is_taker else ev.maker_account
            if account != aid:
                continue
            side = ev.taker_side if side_is_taker else ("SELL" if ev.taker_side == "BUY" else "BUY")
            view = {"e": "trade" if t is V.Trade else "spotTrade", "tradeId": ev.trade_id,
                    "account": aid, "symbol": ev.symbol,
                    "orderId": ev.taker_order_id if side_is_taker else ev.maker_order_id,
                    "side": side, "price": fmt(ev.price), "quantity": fmt(ev.quantity),
                    "maker": not side_is_taker}
            if t is V.Trade:
                view["fee"] = fmt(ev.taker_fee if side_is_taker else ev.maker_fee)
                view["feeAsset"] = "USDT"
                view["realizedPnl"] = fmt(ev.taker_realized_pnl if side_is_taker
                                          else ev.maker_realized_pnl)
            else:  # the buyer's fee is taken in the token it receives
                view["fee"] = fmt(ev.buyer_fee if side == "BUY" else ev.seller_fee)
                view["feeAsset"] = ev.symbol[:-4] if side == "BUY" else "USDT"
            out.append(view)
        return out
    if t is V.AdlTrade:
        base = {"e": "adlTrade", "tradeId": ev.trade_id, "account": aid, "symbol": ev.symbol,
                "price": fmt(ev.price), "quantity": fmt(ev.quantity)}
        if ev.account == aid:  # the liquidated account: its liquidation order
            return [{**base, "orderId": ev.order_id, "realizedPnl": fmt(ev.realized_pnl)}]
        if ev.counterparty == aid:  # the deleveraged one: its own PnL only
            return [{**base, "realizedPnl": fmt(ev.counterparty_realized_pnl)}]
        return []
    if getattr(ev, "account", None) == aid:  # its own event (a token's issuer sees none)
        return [to_wire(ev)]
    return []


class StreamPublisher:
    """Builds the messages for one record. The depth diff is computed right after the core
    handled the record (the books record which levels they touched), so it is exact."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.last_depth_u: dict[str, int] = {}
        # one set for every book, so a record's touched levels are found without a scan
        self.touched: set[tuple[str, str, int]] = set()
        for sym in engine.symbols.values():
            sym.book.touched = self.touched

    def depth_diffs(self, record: LogRecord, wanted) -> list[tuple[str, dict]]:
        """Call right after the core handled `record`, before the next command. Diffs are
        built only for the symbols in `wanted` (those with subscribers); for the others only
        the update id moves on."""
        out = []
        if not self.touched:
            return out
        by_symbol: dict[str, list[tuple[str, int]]] = {}
        for name, side, price in self.touched:
            by_symbol.setdefault(name, []).append((side, price))
        self.touched.clear()
        for name in sorted(by_symbol):
            if name not in wanted:
                self.last_depth_u[name] = record.seq
                continue
            book = self.engine.symbols[name].book
            bids, asks = [], []
            for side, price in sorted(by_symbol[name]):
                levels = book.bids if side == "BUY" else book.asks
                level = levels.get(price)
                (bids if side == "BUY" else asks).append([fmt(price), fmt(level.total if level else 0)])
            pu = self.last_depth_u.get(name, 0)
            self.last_depth_u[name] = record.seq
            out.append((f"depth@{name}", {"e": "depthUpdate", "E": record.time, "s": name,
                                          "U": record.seq, "u": record.seq, "pu": pu,
                                          "b": bids, "a": asks}))
        return out

    def snapshot(self, symbol: str, limit: int | None = None) -> dict:
        book = self.engine.symbols[symbol].book
        return {"lastUpdateId": self.last_depth_u.get(symbol, 0),
                "bids": [[fmt(p), fmt(q)] for p, q in book.depth("BUY", limit)],
                "asks": [[fmt(p), fmt(q)] for p, q in book.depth("SELL", limit)]}

    def messages(self, record: LogRecord, accounts_wanted, streams_wanted) \
            -> tuple[list[tuple[str, dict]], dict[int, list[dict]]]:
        """(public (stream, data) pairs, private messages by account) for one record; only
        those somebody subscribed to (accounts_wanted / streams_wanted map names to sets of
        subscribers) are built."""
        public: list[tuple[str, dict]] = []
        private: dict[int, list[dict]] = {}
        balance_touched: set[int] = set()
        force: dict[int, dict] = {}
        for ev in record.events:
            t = type(ev)
            for aid in involved(ev):
                if accounts_wanted.get(aid):
                    views = own_events(ev, aid)
                    for view in views:
                        view["E"] = record.time
                    private.setdefault(aid, []).extend(views)
                    if t in _BALANCE_EVENTS:
                        balance_touched.add(aid)
            if t is V.Trade:
                if streams_wanted.get(f"trade@{ev.symbol}"):
                    public.append((f"trade@{ev.symbol}", {
                        "e": "trade", "E": record.time, "s": ev.symbol, "t": ev.trade_id,
                        "p": fmt(ev.price), "q": fmt(ev.quantity), "T": record.time,
                        "m": ev.taker_side == "SELL"}))
                if ev.taker_order_id in force:
                    _force_fill(force[ev.taker_order_id], ev.quantity, ev.price)
            elif t is V.AdlTrade and ev.order_id in force:
                _force_fill(force[ev.order_id], ev.quantity, ev.price)
            elif t is V.MarkPriceUpdated and streams_wanted.get(f"markPrice@{ev.symbol}"):
                public.append((f"markPrice@{ev.symbol}", {
                    "e": "markPriceUpdate", "E": record.time, "s": ev.symbol,
                    "p": fmt(ev.mark_price), "i": fmt(ev.index_price)}))
            elif t is V.OrderAccepted and ev.liquidation:
                force[ev.order_id] = {"s": ev.symbol, "S": ev.side, "o": "LIMIT", "f": "IOC",
                                      "q": ev.quantity, "p": ev.price, "z": 0, "notional": 0,
                                      "l": 0, "T": record.time}
        for order in force.values():
            filled = order["z"]
            data = {"e": "forceOrder", "E": record.time, "o": {
                "s": order["s"], "S": order["S"], "o": "LIMIT", "f": "IOC",
                "q": fmt(order["q"]), "p": fmt(order["p"]),
                "ap": fmt(order["notional"] * SCALE // filled if filled else 0),
                "X": "FILLED" if filled == order["q"] else "EXPIRED",
                "l": fmt(order["l"]), "z": fmt(filled), "T": order["T"]}}
            public.append((f"forceOrder@{order['s']}", data))
            public.append(("!forceOrder", data))
        for aid in balance_touched:
            update = self.account_update(aid, record.time)
            if update is not None:
                private.setdefault(aid, []).append(update)
        return public, private

    def account_update(self, aid: int, time: int) -> dict | None:
        acct = self.engine.accounts.get(aid)
        if acct is None:
            return None
        return {"e": "ACCOUNT_UPDATE", "E": time,
                "a": {"B": [{"a": asset, "wb": fmt(acct.balance(asset))}
                            for asset in acct.assets()],
                      "P": [{"s": p.symbol, "pa": fmt(p.qty), "ep": fmt(p.entry_price()),
                             "mt": "isolated" if p.margin_type == ISOLATED else "cross",
                             "iw": fmt(p.isolated_margin), "ps": p.side}
                            for _, p in sorted(acct.positions.items()) if p.qty or p.cost]}}


def _force_fill(order: dict, qty: int, price: int) -> None:
    order["z"] += qty
    order["l"] = qty
    order["notional"] += qty * price // SCALE
