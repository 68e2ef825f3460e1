"""Public market data (security NONE, historicalTrades MARKET_DATA), with Binance's weights, for
/fapi (USDⓈ-M) and /dapi (COIN-M: the same endpoints with /dapi's extra fields, `pair`,
`baseQty`, `baseVolume`, quantities in contracts); the Multi-Assets asset index; and the
start-up calls some clients make about markets the engine does not have (spot, margin),
answered so that the client goes on (an empty market list)."""
from __future__ import annotations

from engine.api import errors as E
from engine.api.endpoint import COINM, MARKET_DATA, NONE, SIGNED, Endpoint
from engine.api.params import Params
from engine.core.fixed import fmt
from engine.views import binance as B
from engine.views import funding as funding_views
from engine.views import markets as market_views
from engine.views import positions as position_views
from engine.views.history import INTERVALS

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def _depth_weight(p: Params) -> int:
    limit = p.integer("limit") if "limit" in p else 500
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def _kline_weight(p: Params) -> int:
    limit = p.integer("limit") if "limit" in p else 500
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def _sym_weight(with_symbol: int, without: int):
    return lambda p: with_symbol if "symbol" in p else without


def _limit(p: Params, default: int, high: int) -> int:
    n = p.integer("limit", low=1, high=1 << 31)
    if n is None:
        return default
    return min(n, high)


async def ping(api, req):
    return {}


async def server_time(api, req):
    return {"serverTime": req.now}


async def exchange_info(api, req):
    c = api.config
    if req.product == COINM:
        def coinm():
            info = market_views.coinm_exchange_info(api.engine)
            info["serverTime"] = req.now
            return info
        return await api.read(coinm)
    return await api.read(lambda: B.exchange_info(api.engine, req.now, c.weight_per_minute,
                                                  c.orders_per_minute))


def _pair(symbol: str) -> str:
    return symbol.partition("_")[0]


async def depth(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    limit = p.integer("limit")
    if limit is None:
        limit = 500
    elif limit not in DEPTH_LIMITS:
        raise E.error(-4021, f"'{limit}' is not valid depth limit.")
    market = api.ws.market

    def read():
        out = B.depth(api.engine, symbol, limit, market.last_u.get(symbol, 0), req.now)
        if req.product == COINM:
            out = {"lastUpdateId": out["lastUpdateId"], "E": out["E"], "T": out["T"],
                   "symbol": symbol, "pair": _pair(symbol), "bids": out["bids"],
                   "asks": out["asks"]}
        return out
    return await api.read(read)


def _trade_rows(rows, coinm: bool = False) -> list[dict]:
    if coinm:  # the trade's value in the coin
        return [{"id": t[0], "price": fmt(t[1]), "qty": fmt(t[2]), "baseQty": fmt(t[3]),
                 "time": t[4], "isBuyerMaker": t[5]} for t in rows]
    return [{"id": t[0], "price": fmt(t[1]), "qty": fmt(t[2]), "quoteQty": fmt(t[3]),
             "time": t[4], "isBuyerMaker": t[5], "isRPITrade": False} for t in rows]


async def trades(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    limit = _limit(p, 500, 1000)

    def rows():
        q = api.history.trades.get(symbol, ())
        return _trade_rows(list(q)[-limit:], req.product == COINM)
    return await api.read(rows)


async def historical_trades(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    limit = _limit(p, 100, 500)
    from_id = p.integer("fromId")

    def rows():
        q = list(api.history.trades.get(symbol, ()))
        if from_id is None:
            return _trade_rows(q[-limit:], req.product == COINM)
        return _trade_rows([t for t in q if t[0] >= from_id][:limit], req.product == COINM)
    return await api.read(rows)


async def agg_trades(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    limit = _limit(p, 500, 1000)
    from_id = p.integer("fromId")
    start, end = p.integer("startTime"), p.integer("endTime")
    if start is not None and end is not None and end < start:
        raise E.error(-1023, "Start time is greater than end time.")

    def rows():
        q = list(api.history.agg.get(symbol, ()))
        if from_id is not None:
            q = [a for a in q if a[0] >= from_id][:limit]
        elif start is not None or end is not None:
            q = [a for a in q if (start is None or a[5] >= start) and
                 (end is None or a[5] <= end)][:limit]
        else:
            q = q[-limit:]
        return [{"a": a[0], "p": fmt(a[1]), "q": fmt(a[2]), "nq": fmt(a[2]), "f": a[3],
                 "l": a[4], "T": a[5], "m": a[6]} for a in q]
    return await api.read(rows)


def _klines(kind: str, symbol_param: str = "symbol"):
    async def handler(api, req):
        p = req.params
        if symbol_param == "pair" and req.product == COINM:  # the pair names its perpetual
            pair = p.raw("pair")
            if pair is None:
                raise E.mandatory("pair")
            symbol = next((s for s in sorted(req.symbols) if _pair(s) == pair), None)
            if symbol is None:
                raise E.error(-4144, "Invalid pair")
        else:
            symbol = p.symbol(req.symbols, name=symbol_param)
        interval = p.raw("interval")
        if interval is None:
            raise E.mandatory("interval")
        if interval not in INTERVALS:
            raise E.error(-1120, "Invalid interval.")
        if symbol_param == "pair" and p.raw("contractType") not in (None, "PERPETUAL",
                                                                    "CURRENT_QUARTER",
                                                                    "NEXT_QUARTER"):
            raise E.invalid_value("contractType")
        limit = _limit(p, 500, 1500)
        start, end = p.integer("startTime"), p.integer("endTime")
        if start is not None and end is not None and end < start:
            raise E.error(-1023, "Start time is greater than end time.")

        def rows():
            k = api.history.klines.get((kind, symbol))
            if k is None:
                return []
            return [B.kline_row(c, price_only=kind != "last")
                    for c in k.candles(interval, start, end, limit)]
        return await api.read(rows)
    return handler


async def premium_index(api, req):
    symbol = req.params.symbol(req.symbols, required=False)

    def read():
        if req.product == COINM:  # /dapi answers a list, with the pair (`pair` may narrow it)
            pair = req.params.raw("pair")
            names = [symbol] if symbol is not None else sorted(req.symbols)
            return [{**B.premium_index_extra(api.engine,
                                             funding_views.premium_index(api.engine, n)),
                     "pair": _pair(n)} for n in names if pair is None or _pair(n) == pair]
        rows = funding_views.premium_index(api.engine, symbol)
        if isinstance(rows, list):
            return [B.premium_index_extra(api.engine, r) for r in rows
                    if r["symbol"] in req.symbols]
        return B.premium_index_extra(api.engine, rows)
    return await api.read(read)


async def funding_rate(api, req):
    p = req.params
    symbol = p.symbol(req.symbols, required=False)
    limit = _limit(p, 100, 1000)
    start, end = p.integer("startTime"), p.integer("endTime")
    if start is None and end is None and "limit" not in p:
        limit = 200  # no window: the most recent 200, as Binance
    return await api.read(lambda: funding_views.funding_rate_history(
        api.engine, symbol, limit, start, end, among=req.symbols))


async def funding_info(api, req):
    return await api.read(lambda: B.funding_info(api.engine, req.symbols))


def _each_symbol(fn):
    """One symbol's row, or every symbol's; /dapi answers a list either way, and takes `pair`
    (every symbol of the pair), as Binance's COIN-M tickers do."""
    async def handler(api, req):
        symbol = req.params.symbol(req.symbols, required=False)
        pair = req.params.raw("pair") if req.product == COINM else None
        if pair is not None and symbol is not None:
            raise E.error(-1128, "Combination of optional parameters invalid.")

        def read():
            if symbol is not None and req.product != COINM:
                return fn(api, symbol, req.now)
            names = [symbol] if symbol is not None else sorted(
                s for s in req.symbols if pair is None or _pair(s) == pair)
            return [fn(api, s, req.now) for s in names]
        return await api.read(read)
    return handler


def _ticker_24h(api, symbol, now):
    row = B.ticker_24h(api.engine, api.history, symbol, now)
    if api.engine.symbols[symbol].contract_size:  # /dapi: volume in contracts and the coin
        row = dict(row)
        row["baseVolume"] = row.pop("quoteVolume")
        row["pair"] = _pair(symbol)
    return row


def _ticker_price(api, symbol, now):
    row = B.ticker_price(api.engine, symbol, now)
    if api.engine.symbols[symbol].contract_size:
        row = {"symbol": symbol, "ps": _pair(symbol), "price": row["price"], "time": now}
    return row


def _book_ticker(api, symbol, now):
    row = B.book_ticker(api.engine, symbol, now, api.ws.market.last_u.get(symbol, 0))
    if api.engine.symbols[symbol].contract_size:
        row = {"symbol": symbol, "pair": _pair(symbol), **{k: v for k, v in row.items()
                                                            if k != "symbol"}}
    return row


async def open_interest(api, req):
    symbol = req.params.symbol(req.symbols)

    def read():
        row = B.open_interest(api.engine, symbol, req.now)
        if req.product == COINM:
            spec = api.engine.symbols[symbol].spec
            row = {"symbol": symbol, "pair": spec.pair, "openInterest": row["openInterest"],
                   "contractType": spec.contract_type, "time": req.now}
        return row
    return await api.read(read)


async def asset_index(api, req):
    """The Multi-Assets asset index (GET /fapi/v1/assetIndex): one asset's row with
    `symbol` (e.g. BTCUSD), every asset's without."""
    symbol = req.params.raw("symbol")

    def read():
        try:
            return position_views.asset_index(api.engine, symbol)
        except KeyError:
            raise E.invalid_symbol() from None
    return await api.read(read)


# -- other markets: what clients ask at start-up ---------------------------------------------------
async def empty_list(api, req):
    return []


async def empty_exchange_info(api, req):
    return {"timezone": "UTC", "serverTime": req.now, "rateLimits": [], "exchangeFilters": [],
            "symbols": []}


def _ep(method, path, weight, handler, security=NONE):
    return Endpoint(method, path, security, weight, handler)


def _routes(prefix: str) -> list[Endpoint]:
    """The market data /fapi and /dapi share (their shapes follow the request's product)."""
    v1 = prefix + "/v1/"
    return [
        _ep("GET", v1 + "ping", 1, ping),
        _ep("GET", v1 + "time", 1, server_time),
        _ep("GET", v1 + "exchangeInfo", 1, exchange_info),
        _ep("GET", v1 + "depth", _depth_weight, depth),
        _ep("GET", v1 + "trades", 5, trades),
        _ep("GET", v1 + "historicalTrades", 20, historical_trades, MARKET_DATA),
        _ep("GET", v1 + "aggTrades", 20, agg_trades),
        _ep("GET", v1 + "klines", _kline_weight, _klines("last")),
        _ep("GET", v1 + "continuousKlines", _kline_weight, _klines("last", "pair")),
        _ep("GET", v1 + "markPriceKlines", _kline_weight, _klines("mark")),
        _ep("GET", v1 + "indexPriceKlines", _kline_weight, _klines("index", "pair")),
        _ep("GET", v1 + "premiumIndex", _sym_weight(1, 10), premium_index),
        _ep("GET", v1 + "fundingRate", 1, funding_rate),
        _ep("GET", v1 + "fundingInfo", 1, funding_info),
        _ep("GET", v1 + "ticker/24hr", _sym_weight(1, 40), _each_symbol(_ticker_24h)),
        _ep("GET", v1 + "ticker/price", _sym_weight(1, 2), _each_symbol(_ticker_price)),
        _ep("GET", v1 + "ticker/bookTicker", _sym_weight(2, 5), _each_symbol(_book_ticker)),
        _ep("GET", v1 + "openInterest", 1, open_interest),
    ]


ROUTES = _routes("/fapi") + _routes("/dapi") + [
    _ep("GET", "/fapi/v2/ticker/price", _sym_weight(1, 2), _each_symbol(_ticker_price)),
    _ep("GET", "/fapi/v1/assetIndex", _sym_weight(1, 10), asset_index),
    # spot and margin: no markets here
    _ep("GET", "/api/v3/ping", 1, ping),
    _ep("GET", "/api/v3/time", 1, server_time),
    _ep("GET", "/api/v3/exchangeInfo", 20, empty_exchange_info),
    _ep("GET", "/sapi/v1/capital/config/getall", 10, empty_list, SIGNED),
    _ep("GET", "/sapi/v1/margin/allPairs", 1, empty_list),
    _ep("GET", "/sapi/v1/margin/isolated/allPairs", 10, empty_list),
]
