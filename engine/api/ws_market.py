"""Market streams in Binance's payloads, built from the records of a batch and sent once the
batch is in the log.

Depth: right after each record the book levels it moved are noted (from its events: orders
resting, trades against makers, cancels, expiries, modifications) with their totals then;
`last_u[symbol]` is the sequence number of the last record that moved the symbol's book, which
GET /fapi/v1/depth reports as lastUpdateId. One diff per symbol per batch: U = the first such
record of the batch, u = the last, pu = the u of the previous diff (the last record before the
batch that moved the book), quantities absolute. So a client that drops diffs with u <
lastUpdateId, starts where U <= lastUpdateId <= u or pu == lastUpdateId, and then requires
pu == the previous u keeps an exact book (Binance's rules).
"""
from __future__ import annotations

from engine.core.fixed import fmt
from engine.views import funding as funding_views
from engine.views import binance as B
from proto import events as V
from proto.records import LogRecord

DEPTH_SPEEDS = ("", "@100ms", "@250ms", "@500ms", "@0ms")
PARTIAL_LEVELS = (5, 10, 20)


def depth_stream_names(sym: str) -> list[tuple[str, int]]:
    """Every depth stream of a symbol (lower case) with its level count (0: diff)."""
    out = [(f"{sym}@depth{speed}", 0) for speed in DEPTH_SPEEDS]
    for n in PARTIAL_LEVELS:
        out += [(f"{sym}@depth{n}{speed}", n) for speed in DEPTH_SPEEDS]
    return out


class MarketStreams:
    def __init__(self, api, streams) -> None:
        self.api = api
        self.engine = api.engine
        self.streams = streams  # engine.api.ws.Streams: subscribers and sending
        self.last_u: dict[str, int] = {}
        self.lower = {s: s.lower() for s in self.engine.symbols}
        self.usdm = api.symbols["USDM"]  # the all-market streams (`!...`) list these only
        self._depth_names = {s: depth_stream_names(s.lower()) for s in self.engine.symbols}
        # this batch
        self.depth: dict[str, list] = {}  # symbol -> [U, u, pu, {(side, price): qty}]
        self.out: list[tuple[str, dict]] = []
        self.marks: set[str] = set()
        self.traded: set[str] = set()
        self.traded_since_tick: set[str] = set()
        self.time = 0

    # -- right after each record ----------------------------------------------------------------
    def note_depth(self, record: LogRecord, build: bool = True) -> None:
        """Before the projection takes the record: which levels it moved (the prices of known
        orders come from the projection as it was before the record)."""
        orders = self.api.history.orders
        if not build or not self.streams.depth_wanted:  # only which books moved: lastUpdateId
            self._note_symbols(record, orders)
            return
        local: dict[int, tuple[str, str, int]] = {}
        touched: set[tuple[str, str, int]] = set()
        for ev in record.events:
            t = type(ev)
            if t is V.Trade:
                touched.add((ev.symbol, "SELL" if ev.taker_side == "BUY" else "BUY", ev.price))
            elif t is V.OrderAccepted:
                local[ev.order_id] = (ev.symbol, ev.side, ev.price)
                if ev.rest:
                    touched.add((ev.symbol, ev.side, ev.price))
            elif t in (V.OrderRested, V.OrderCanceled, V.OrderExpired, V.OrderModified):
                known = local.get(ev.order_id)
                if known is None:
                    o = orders.get(ev.order_id)
                    if o is None:
                        continue
                    known = (o.symbol, o.side, o.price)
                touched.add(known)
                if t is V.OrderModified:
                    local[ev.order_id] = (known[0], known[1], ev.price)
                    touched.add(local[ev.order_id])
        if not touched:
            return
        seq = record.seq
        wanted = self.streams.depth_wanted
        for symbol, side, price in touched:
            if build and symbol in wanted:
                d = self.depth.get(symbol)
                if d is None:
                    d = self.depth[symbol] = [seq, seq, self.last_u.get(symbol, 0), {}]
                d[1] = seq
                book = self.engine.symbols[symbol].book
                level = (book.bids if side == "BUY" else book.asks).get(price)
                d[3][(side, price)] = level.total if level is not None else 0
        for symbol in {t[0] for t in touched}:
            self.last_u[symbol] = seq

    def _note_symbols(self, record: LogRecord, orders) -> None:
        seq = record.seq
        last_u = self.last_u
        rested: dict[int, str] = {}
        for ev in record.events:
            t = type(ev)
            if t is V.Trade or t is V.OrderCanceled or t is V.OrderModified:
                last_u[ev.symbol] = seq
            elif t is V.OrderAccepted:
                if ev.rest:
                    last_u[ev.symbol] = seq
                else:
                    rested[ev.order_id] = ev.symbol
            elif t is V.OrderRested:
                symbol = rested.get(ev.order_id)
                if symbol is None:
                    o = orders.get(ev.order_id)  # a modified order re-entering the book
                    symbol = o.symbol if o is not None else None
                if symbol is not None:
                    last_u[symbol] = seq
            elif t is V.OrderExpired and ev.order_id not in rested:
                last_u[ev.symbol] = seq  # a resting order expired (STP, reduce-only)

    def after_projection(self, record: LogRecord) -> None:
        """The record's trades, aggregate trades, mark prices and liquidation orders."""
        subs = self.streams.subs
        t = record.time
        self.time = t
        if not subs:  # nobody follows a market stream: nothing to build
            return
        history = self.api.history
        for ev in record.events:
            et = type(ev)
            if et is V.Trade:
                sym = ev.symbol
                low = self.lower[sym]
                self.traded.add(sym)
                if subs.get(f"{low}@trade"):
                    self.out.append((f"{low}@trade", {
                        "e": "trade", "E": t, "T": t, "s": sym, "t": ev.trade_id,
                        "p": fmt(ev.price), "q": fmt(ev.quantity), "X": "MARKET",
                        "m": ev.taker_side == "SELL"}))
            elif et is V.MarkPriceUpdated:
                self.marks.add(ev.symbol)
            elif et is V.OrderAccepted and ev.liquidation:
                o = history.orders.get(ev.order_id)
                if o is not None:
                    self.out.append(("forceOrder", {"e": "forceOrder", "E": t, "o": {
                        "s": o.symbol, "S": o.side, "o": "LIMIT", "f": "IOC",
                        "q": fmt(o.orig_qty), "p": fmt(o.price), "ap": fmt(o.avg_price),
                        "X": o.status if o.status in ("FILLED", "EXPIRED") else "EXPIRED",
                        "l": fmt(o.last_qty), "z": fmt(o.executed), "T": t}}))
        for sym in {ev.symbol for ev in record.events if type(ev) is V.Trade}:
            low = self.lower[sym]
            if subs.get(f"{low}@aggTrade"):
                agg = history.agg.get(sym, ())
                mine = []
                for a in reversed(agg):
                    if a[8] != record.seq:
                        break
                    mine.append(a)
                for a in reversed(mine):
                    self.out.append((f"{low}@aggTrade", {
                        "e": "aggTrade", "E": t, "s": sym, "a": a[0], "p": fmt(a[1]),
                        "q": fmt(a[2]), "nq": fmt(a[2]), "f": a[3], "l": a[4], "T": a[5],
                        "m": a[6]}))

    # -- once the batch is in the log -----------------------------------------------------------
    def publish(self) -> None:
        send = self.streams.send
        subs = self.streams.subs
        t = self.time
        engine = self.engine
        for symbol, (first, last, pu, levels) in self.depth.items():
            low = self.lower[symbol]
            book = engine.symbols[symbol].book
            diff = None
            for name, n in self._depth_names[symbol]:
                if not subs.get(name):
                    continue
                if n == 0:
                    if diff is None:
                        bids = sorted(((p, q) for (s, p), q in levels.items() if s == "BUY"),
                                      reverse=True)
                        asks = sorted((p, q) for (s, p), q in levels.items() if s == "SELL")
                        diff = {"e": "depthUpdate", "E": t, "T": t, "s": symbol, "U": first,
                                "u": last, "pu": pu,
                                "b": [[fmt(p), fmt(q)] for p, q in bids],
                                "a": [[fmt(p), fmt(q)] for p, q in asks]}
                    send(name, diff)
                else:
                    send(name, {"e": "depthUpdate", "E": t, "T": t, "s": symbol, "U": first,
                                "u": last, "pu": pu,
                                "b": [[fmt(p), fmt(q)] for p, q in book.depth("BUY", n)],
                                "a": [[fmt(p), fmt(q)] for p, q in book.depth("SELL", n)]})
            if subs.get(f"{low}@bookTicker") or subs.get("!bookTicker"):
                bt = B.book_ticker(engine, symbol, t, last)
                msg = {"e": "bookTicker", "u": last, "E": t, "T": t, "s": symbol,
                       "b": bt["bidPrice"], "B": bt["bidQty"], "a": bt["askPrice"],
                       "A": bt["askQty"]}
                send(f"{low}@bookTicker", msg)
                if symbol in self.usdm:
                    send("!bookTicker", msg)
        self.depth = {}
        for name, data in self.out:
            if name == "forceOrder":
                send(f"{self.lower[data['o']['s']]}@forceOrder", data)
                if data["o"]["s"] in self.usdm:
                    send("!forceOrder@arr", data)
            else:
                send(name, data)
        self.out = []
        if self.marks:
            self._marks(self.marks, t, every=True)
            self.marks = set()
        if self.traded:
            self._klines(self.traded, t)
            self.traded_since_tick |= self.traded
            self.traded = set()

    def _mark_payload(self, symbol: str, t: int) -> dict:
        row = funding_views.premium_index(self.engine, symbol)
        return {"e": "markPriceUpdate", "E": t, "s": symbol, "p": row["markPrice"],
                "ap": row["markPrice"], "i": row["indexPrice"],
                "P": row["estimatedSettlePrice"], "r": row["predictedFundingRate"],
                "T": row["nextFundingTime"]}

    def _marks(self, symbols, t: int, every: bool) -> None:
        subs = self.streams.subs
        arr, arr1 = subs.get("!markPrice@arr"), subs.get("!markPrice@arr@1s")
        rows = []
        for sym in sorted(symbols):
            low = self.lower[sym]
            one, three = subs.get(f"{low}@markPrice@1s"), subs.get(f"{low}@markPrice")
            if not (one or three or arr or arr1):
                continue
            payload = self._mark_payload(sym, t)
            if sym in self.usdm:
                rows.append(payload)
            if one:
                self.streams.send(f"{low}@markPrice@1s", payload)
            if three and every:
                self.streams.send(f"{low}@markPrice", payload)
        if rows:
            if arr1:
                self.streams.send("!markPrice@arr@1s", rows)
            if arr and every:
                self.streams.send("!markPrice@arr", rows)

    def _klines(self, symbols, t: int) -> None:
        subs = self.streams.subs
        klines = self.api.history.klines
        for sym in symbols:
            low = self.lower[sym]
            k = klines.get(("last", sym))
            if k is None:
                continue
            for interval in self.streams.kline_intervals.get(low, ()):
                name = f"{low}@kline_{interval}"
                if subs.get(name):
                    body = _kline_body(k, interval)
                    if body is not None:
                        self.streams.send(name, {"e": "kline", "E": t, "s": sym,
                                                 "k": {"s": sym, **body}})
            for name, (interval, contract) in self.streams.continuous.get(sym, {}).items():
                body = _kline_body(k, interval)
                if body is not None:  # python-binance's kline_futures_socket
                    self.streams.send(name, {"e": "continuous_kline", "E": t,
                                             "ps": sym.partition("_")[0], "ct": contract,
                                             "k": body})

    # -- every second (a read between two commands) ---------------------------------------------
    def periodic(self, t: int, tick: int) -> None:
        subs = self.streams.subs
        marked = [s for s in self.engine.symbols
                  if self.engine.symbols[s].mark and (
                      subs.get(f"{self.lower[s]}@markPrice@1s") or
                      (tick % 3 == 0 and subs.get(f"{self.lower[s]}@markPrice")))]
        if marked or subs.get("!markPrice@arr@1s") or subs.get("!markPrice@arr"):
            if subs.get("!markPrice@arr@1s") or subs.get("!markPrice@arr"):
                marked = sorted(set(marked) | {s for s in self.usdm if self.usdm[s].mark})
            self._marks(marked, t, every=tick % 3 == 0)
        changed, self.traded_since_tick = self.traded_since_tick, set()
        mini_arr, full_arr = subs.get("!miniTicker@arr"), subs.get("!ticker@arr")
        minis, fulls = [], []
        for sym in sorted(changed):
            low = self.lower[sym]
            mini, full = subs.get(f"{low}@miniTicker"), subs.get(f"{low}@ticker")
            if not (mini or full or mini_arr or full_arr):
                continue
            s = B.ticker_24h(self.engine, self.api.history, sym, t)
            m = {"e": "24hrMiniTicker", "E": t, "s": sym, "c": s["lastPrice"],
                 "o": s["openPrice"], "h": s["highPrice"], "l": s["lowPrice"],
                 "v": s["volume"], "q": s["quoteVolume"]}
            f = {"e": "24hrTicker", "E": t, "s": sym, "p": s["priceChange"],
                 "P": s["priceChangePercent"], "w": s["weightedAvgPrice"], "c": s["lastPrice"],
                 "Q": s["lastQty"], "o": s["openPrice"], "h": s["highPrice"],
                 "l": s["lowPrice"], "v": s["volume"], "q": s["quoteVolume"],
                 "O": s["openTime"], "C": s["closeTime"], "F": s["firstId"], "L": s["lastId"],
                 "n": s["count"]}
            if sym in self.usdm:
                minis.append(m)
                fulls.append(f)
            if mini:
                self.streams.send(f"{low}@miniTicker", m)
            if full:
                self.streams.send(f"{low}@ticker", f)
        if minis and mini_arr:
            self.streams.send("!miniTicker@arr", minis)
        if fulls and full_arr:
            self.streams.send("!ticker@arr", fulls)




def _kline_body(k, interval: str) -> dict | None:
    rows = k.candles(interval, None, None, 1)
    if not rows:
        return None
    c = rows[-1]
    return {"t": c[0], "T": c[6], "i": interval, "f": c[11], "L": c[12], "o": fmt(c[1]),
            "c": fmt(c[4]), "h": fmt(c[2]), "l": fmt(c[3]), "v": fmt(c[5]), "n": c[8],
            "x": False, "q": fmt(c[7]), "V": fmt(c[9]), "Q": fmt(c[10]), "B": "0"}
