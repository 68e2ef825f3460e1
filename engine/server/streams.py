"""From log records to stream messages: private per account, public per symbol.

    user                 the account's order updates, fills, balance/position updates,
                         margin calls and liquidations
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
from engine.core.fixed import SCALE, fmt
from proto import events as V
from proto.json_edge import to_wire
from proto.records import LogRecord

_ACCOUNT_FIELDS = ("account", "maker_account", "taker_account", "counterparty")
_BALANCE_EVENTS = (V.Trade, V.AdlTrade, V.Deposited, V.Withdrawn, V.LiquidationFeeCharged,
                   V.InsuranceCovered, V.IsolatedMarginChanged, V.AssetExchanged)


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
            wire = None
            for f in _ACCOUNT_FIELDS:
                aid = getattr(ev, f, None)
                if aid and accounts_wanted.get(aid):
                    if wire is None:
                        wire = to_wire(ev)
                        wire["E"] = record.time
                    private.setdefault(aid, []).append(wire)
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
                             "mt": "isolated" if p.margin_type == "ISOLATED" else "cross",
                             "iw": fmt(p.isolated_margin), "ps": p.side}
                            for _, p in sorted(acct.positions.items()) if p.qty or p.cost]}}


def _force_fill(order: dict, qty: int, price: int) -> None:
    order["z"] += qty
    order["l"] = qty
    order["notional"] += qty * price // SCALE
