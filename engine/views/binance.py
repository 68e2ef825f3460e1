"""Read models in the exact shapes of Binance's USDⓈ-M REST API (decimal strings, Binance's
field names and enums), from the core's state and the log's projection (engine.views.history).
What the HTTP API (engine.api) answers; they change nothing.

Accounts, balances and positions are engine.views.positions' (a wallet per margin asset,
Multi-Assets mode, hedge legs) in the /fapi shapes; `symbols` arguments name the product's
symbols (the API's /fapi knows no COIN-M symbol).

Choices where the engine differs from Binance, each said once:
- Quarterlies: the catalogue's `_0924` contracts deliver on 2021-09-24 08:00 UTC (assumed:
  the seeds' year); the engine does not settle deliveries, so they keep trading.
- MARKET orders are shown with timeInForce GTC, as Binance shows them (the core runs them IOC).
"""
from __future__ import annotations

import msgspec

from engine.core import Engine, collateral
from engine.core import funding as core_funding
from engine.core.accounts import BOTH, ISOLATED, LONG, SHORT, Account, Position
from engine.core.catalogue import BracketTable, SymbolSpec
from engine.core.fixed import SCALE, fmt, parse
from engine.views import markets as market_views
from engine.views import positions as position_views
from engine.views.history import AlgoInfo, History, OrderInfo

PERPETUAL_DELIVERY = 4133404800000  # Binance's deliveryDate for perpetuals (2100-12-25)
ONBOARD_DATE = 1569398400000  # 2019-09-25: BTCUSDT's listing, for every symbol (assumed)
QUARTER_DELIVERY = {"0924": 1632470400000}  # 2021-09-24T08:00:00Z (assumed year)
ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
               "TRAILING_STOP_MARKET"]
TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX", "GTD"]
REQUEST_WEIGHT_LIMIT = 2400
ORDERS_PER_MINUTE = 1200
ORDERS_PER_10S = 300


def decimals(units: int) -> int:
    d = 0
    while units % SCALE:
        units *= 10
        d += 1
    return d


def fixed_places(units: int, places: int) -> str:
    """A decimal with exactly `places` decimals, as Binance prints "0.00000" and "1.1500"."""
    text = fmt(units)
    whole, _, frac = text.partition(".")
    if places == 0:
        return whole
    return f"{whole}.{frac.ljust(places, '0')[:places]}"


def delivery_date(spec: SymbolSpec) -> int:
    if spec.contract_type == "PERPETUAL":
        return PERPETUAL_DELIVERY
    return QUARTER_DELIVERY.get(spec.symbol.rpartition("_")[2], PERPETUAL_DELIVERY)


def symbol_info(spec: SymbolSpec, table: BracketTable) -> dict:
    f = fmt
    tier1 = table.tiers[0]
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol.partition("_")[0],
        "contractType": spec.contract_type,
        "deliveryDate": delivery_date(spec),
        "onboardDate": ONBOARD_DATE,
        "status": "TRADING",
        "maintMarginPercent": fixed_places(tier1.mmr * 100, 4),
        "requiredMarginPercent": fixed_places(SCALE * 100 // tier1.max_leverage, 4),
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.margin_asset,
        "pricePrecision": decimals(spec.tick_size),
        "quantityPrecision": decimals(spec.step_size),
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": spec.underlying_type,
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": fixed_places(spec.liquidation_fee, 6),
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": f(spec.min_price),
             "maxPrice": f(spec.max_price), "tickSize": f(spec.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": f(spec.min_qty), "maxQty": f(spec.max_qty),
             "stepSize": f(spec.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": f(spec.min_qty),
             "maxQty": f(spec.market_max_qty), "stepSize": f(spec.step_size)},
            {"filterType": "MAX_NUM_ORDERS", "limit": spec.max_num_orders},
            # Binance dropped this filter on 2025-12-29 ("200 across all symbols"); kept: it is
            # the engine's limit of open conditional orders per symbol (-4045)
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": spec.max_num_algo_orders},
            {"filterType": "MIN_NOTIONAL", "notional": f(spec.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": fixed_places(spec.multiplier_up, 4),
             "multiplierDown": fixed_places(spec.multiplier_down, 4), "multiplierDecimal": "4"},
        ],
        "orderTypes": ORDER_TYPES,
        "timeInForce": TIME_IN_FORCE,
    }


def exchange_info(engine: Engine, now: int, weight_limit: int = REQUEST_WEIGHT_LIMIT,
                  orders_per_minute: int = ORDERS_PER_MINUTE) -> dict:
    usdm = sorted((name, sym) for name, sym in engine.symbols.items() if not sym.spec.inverse)
    return {
        "timezone": "UTC",
        "serverTime": now,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
             "limit": orders_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": max(1, orders_per_minute // 4)},
        ],
        "exchangeFilters": [],
        "assets": market_views.margin_assets(engine),
        "symbols": [symbol_info(sym.spec, sym.table_at(now)) for _, sym in usdm],
    }


# -- orders ----------------------------------------------------------------------------------------
def order_json(o: OrderInfo, *, with_time: bool = True, cum_qty: bool = False) -> dict:
    """GET responses carry `time` and `updateTime`; POST/PUT/DELETE carry `updateTime` and
    `cumQty`. A COIN-M order (/dapi) carries its `pair` and `cumBase` (the coin value of its
    fills) instead of `cumQuote`. An order a conditional order placed shows the conditional
    type as `origType` and its trigger as `stopPrice` (as Binance showed a triggered order
    before the Algo service; assumed for the order the Algo service places)."""
    out = {
        "orderId": o.order_id, "symbol": o.symbol, "status": o.status,
        "clientOrderId": o.client_id, "price": fmt(o.price), "avgPrice": fmt(o.avg_price),
        "origQty": fmt(o.orig_qty), "executedQty": fmt(o.executed),
    }
    if cum_qty:
        out["cumQty"] = fmt(o.executed)
    if o.size:
        out["cumBase"] = fmt(o.cum_base)
    else:
        out["cumQuote"] = fmt(o.cum_quote)
    out.update({
        "timeInForce": "GTC" if o.type == "MARKET" else o.tif, "type": o.type,
        "reduceOnly": o.reduce_only, "closePosition": o.close_position, "side": o.side,
        "positionSide": o.position_side, "stopPrice": fmt(o.stop_price),
        "workingType": o.working_type, "priceProtect": o.price_protect,
        "origType": o.orig_type, "priceMatch": o.price_match,
        "selfTradePreventionMode": o.stp, "goodTillDate": o.gtd,
    })
    if o.orig_type == "TRAILING_STOP_MARKET":
        out["activatePrice"] = fmt(o.activate_price)
        out["priceRate"] = fmt(o.callback_rate)
    if o.size:
        out["pair"] = o.symbol.partition("_")[0]
    if with_time:
        out["time"] = o.time
    out["updateTime"] = o.update_time
    return out


def algo_json(a: AlgoInfo, actual: OrderInfo | None = None, *, query: bool = True) -> dict:
    """A conditional order in Binance's Algo shape: the answer of POST /fapi/v1/algoOrder
    (`query` False), or of GET algoOrder / openAlgoOrders / allAlgoOrders, which add the
    order it placed once triggered (`actualOrderId` as a string, its average fill price, type
    and quantity)."""
    trailing = a.type == "TRAILING_STOP_MARKET"
    out = {"algoId": a.algo_id, "clientAlgoId": a.client_id, "algoType": "CONDITIONAL",
           "orderType": a.type, "symbol": a.symbol, "side": a.side,
           "positionSide": a.position_side, "timeInForce": a.tif,
           "quantity": fmt(a.quantity), "algoStatus": a.status}
    if query:
        out["actualOrderId"] = str(a.actual_order_id) if a.actual_order_id else ""
        out["actualPrice"] = fmt(actual.avg_price) if actual is not None else "0"
    out.update({
        "triggerPrice": fmt(a.trigger), "price": fmt(a.price), "icebergQuantity": None,
        "selfTradePreventionMode": a.stp, "workingType": a.working_type,
        "priceMatch": a.price_match, "closePosition": a.close_position,
        "priceProtect": a.price_protect, "reduceOnly": a.reduce_only,
        "activatePrice": fmt(a.activate) if trailing else "",
        "callbackRate": fmt(a.rate) if trailing else "",
        "createTime": a.time, "updateTime": a.update_time, "triggerTime": a.trigger_time,
        "goodTillDate": a.gtd})
    if query and actual is not None:
        out["actualType"] = actual.type
        out["actualQty"] = fmt(actual.orig_qty)
    return out


def force_order_json(o: OrderInfo) -> dict:
    out = order_json(o)
    out["clientOrderId"] = o.client_id or f"autoclose-{o.time}"
    return out


# -- positions and accounts ------------------------------------------------------------------------
def break_even(pos: Position) -> int:
    entry = pos.entry_price()
    if not entry:
        return 0
    fee = entry * pos.taker_fee // SCALE
    return entry + 2 * fee if pos.qty > 0 else entry - 2 * fee


def _sides(acct: Account) -> tuple[str, ...]:
    return (LONG, SHORT) if acct.dual_side else (BOTH,)


def _legs(engine: Engine, acct: Account, symbols, symbol: str | None,
          every_symbol: bool) -> list[Position]:
    """The account's positions (hedge legs) among `symbols`: those with a position or open
    orders, by symbol and side; with `every_symbol` one row per symbol and side of the mode
    (v2 lists them all; a leg never opened has the symbol's settings)."""
    if every_symbol:
        names = [symbol] if symbol is not None else sorted(symbols)
        return [engine.ledger.position(acct, name, side) for name in names
                for side in _sides(acct)]
    out = []
    for key in sorted(acct.positions):
        pos = acct.positions[key]
        if pos.symbol not in symbols or (symbol is not None and pos.symbol != symbol):
            continue
        if pos.qty or pos.open_orders:
            out.append(pos)
    return out


def _liquidation_prices(engine: Engine, account: int, product: str) -> dict[tuple, str]:
    return {(r["symbol"], r["positionSide"]): r["liquidationPrice"]
            for r in position_views.position_risk(engine, account, product=product)}


def position_risk(engine: Engine, account: int, symbol: str | None, version: int,
                  symbols) -> list[dict]:
    """GET /fapi/v2|v3/positionRisk: a row per position, per leg in hedge mode (v2: every
    symbol; v3: those with a position or open orders)."""
    acct = engine.accounts[account]
    liq = _liquidation_prices(engine, account, "USDM")
    out = []
    for pos in _legs(engine, acct, symbols, symbol, version == 2):
        name = pos.symbol
        sym = engine.symbols[name]
        notional, upnl, im = engine.ledger.position_figures(pos, sym)
        table = sym.table_at(engine.time)
        mm = table.maint_margin(abs(notional)) if pos.qty else 0
        isolated = pos.margin_type == ISOLATED
        row = {
            "symbol": name, "positionSide": pos.side, "positionAmt": fmt(pos.qty),
            "entryPrice": fmt(pos.entry_price()), "breakEvenPrice": fmt(break_even(pos)),
            "markPrice": fmt(sym.mark), "unRealizedProfit": fmt(upnl),
            "liquidationPrice": liq.get((name, pos.side), "0"),
            "isolatedMargin": fmt(pos.isolated_margin + upnl if isolated else 0),
            "notional": fmt(notional), "marginAsset": sym.spec.margin_asset,
            "isolatedWallet": fmt(pos.isolated_margin if isolated else 0),
        }
        if version == 2:
            row.update({"marginType": "isolated" if isolated else "cross",
                        "isAutoAddMargin": "false", "leverage": str(pos.leverage),
                        "maxNotionalValue": fmt(sym.max_notional(table, pos.leverage))})
        else:
            row.update({"initialMargin": fmt(im + pos.order_margin), "maintMargin": fmt(mm),
                        "positionInitialMargin": fmt(im),
                        "openOrderInitialMargin": fmt(pos.order_margin), "adl": adl_rank(pos),
                        "bidNotional": fmt(pos.buys.notional),
                        "askNotional": fmt(pos.sells.notional)})
        row["updateTime"] = engine.time if pos.qty or pos.open_orders else 0
        out.append(row)
    return out


def adl_rank(pos: Position) -> int:
    """0 without a position; otherwise 2 (Binance's quantile 1-5; the engine ranks ADL
    counterparties when it needs them and does not publish quantiles: assumed middle-low)."""
    return 2 if pos.qty else 0


def balance(engine: Engine, account: int) -> list[dict]:
    """GET /fapi/v2|v3/balance: a row per asset of the USDⓈ-M wallet."""
    return position_views.balances(engine, account)


def _usd_totals(engine: Engine, acct: Account, info: dict) -> dict:
    """The totals the views' account leaves out: position and open-order initial margin, the
    cross wallet and its PnL; USDT's in Single-Asset mode, USD in Multi-Assets mode (open
    orders at the ask rate, as the initial margin is; no isolated positions exist there)."""
    if not acct.multi_assets:
        usdt = next(a for a in info["assets"] if a["asset"] == "USDT")
        return {"totalPositionInitialMargin": usdt["positionInitialMargin"],
                "totalOpenOrderInitialMargin": usdt["openOrderInitialMargin"],
                "totalCrossWalletBalance": usdt["crossWalletBalance"],
                "totalCrossUnPnl": usdt["crossUnPnl"]}
    orders: dict[str, int] = {}
    for pos in acct.positions.values():
        if pos.order_margin:
            orders[pos.asset] = orders.get(pos.asset, 0) + pos.order_margin
    oim = sum(collateral.usd_up(amount, engine.ledger.rates(asset)[1])
              for asset, amount in orders.items())
    total_im = parse(info["totalInitialMargin"])
    return {"totalPositionInitialMargin": fmt(max(0, total_im - oim)),
            "totalOpenOrderInitialMargin": fmt(oim),
            "totalCrossWalletBalance": info["totalWalletBalance"],
            "totalCrossUnPnl": info["totalUnrealizedProfit"]}


def account(engine: Engine, account_id: int, version: int, symbols) -> dict:
    """GET /fapi/v2|v3/account: totals (USDT's in Single-Asset mode, USD in Multi-Assets
    mode), `assets[]` per asset, positions per leg (v2: every symbol)."""
    acct = engine.accounts[account_id]
    info = position_views.account_info(engine, account_id)
    f = fmt
    out: dict = {}
    if version == 2:
        out.update({"feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True,
                    "canWithdraw": True, "updateTime": 0, "multiAssetsMargin": acct.multi_assets,
                    "tradeGroupId": -1})
    extra = _usd_totals(engine, acct, info)
    out.update({
        "totalInitialMargin": info["totalInitialMargin"],
        "totalMaintMargin": info["totalMaintMargin"],
        "totalWalletBalance": info["totalWalletBalance"],
        "totalUnrealizedProfit": info["totalUnrealizedProfit"],
        "totalMarginBalance": info["totalMarginBalance"],
        "totalPositionInitialMargin": extra["totalPositionInitialMargin"],
        "totalOpenOrderInitialMargin": extra["totalOpenOrderInitialMargin"],
        "totalCrossWalletBalance": extra["totalCrossWalletBalance"],
        "totalCrossUnPnl": extra["totalCrossUnPnl"],
        "availableBalance": info["availableBalance"],
        "maxWithdrawAmount": info["maxWithdrawAmount"],
    })
    assets = []
    for row in info["assets"]:
        row = dict(row)
        if version == 3 and not acct.multi_assets:
            row.pop("marginAvailable", None)
        assets.append(row)
    out["assets"] = assets
    positions = []
    for pos in _legs(engine, acct, symbols, None, version == 2):
        sym = engine.symbols[pos.symbol]
        notional, upnl, im = engine.ledger.position_figures(pos, sym)
        table = sym.table_at(engine.time)
        isolated = pos.margin_type == ISOLATED
        row = {"symbol": pos.symbol, "positionSide": pos.side, "positionAmt": f(pos.qty),
               "unrealizedProfit": f(upnl),
               "isolatedMargin": f(pos.isolated_margin + upnl if isolated else 0),
               "notional": f(notional),
               "isolatedWallet": f(pos.isolated_margin if isolated else 0),
               "initialMargin": f(im + pos.order_margin),
               "maintMargin": f(table.maint_margin(abs(notional)) if pos.qty else 0)}
        if version == 2:
            row.update({"positionInitialMargin": f(im),
                        "openOrderInitialMargin": f(pos.order_margin),
                        "leverage": str(pos.leverage), "isolated": isolated,
                        "entryPrice": f(pos.entry_price()),
                        "breakEvenPrice": f(break_even(pos)),
                        "maxNotional": f(sym.max_notional(table, pos.leverage)),
                        "bidNotional": f(pos.buys.notional),
                        "askNotional": f(pos.sells.notional)})
        row["updateTime"] = engine.time if pos.qty or pos.open_orders else 0
        positions.append(row)
    out["positions"] = positions
    return out


def _num(units: int) -> msgspec.Raw:
    """An exact JSON number (leverageBracket's numbers are numbers, not strings)."""
    return msgspec.Raw(fmt(units).encode())


def leverage_brackets(engine: Engine, symbol: str | None, symbols) -> list[dict]:
    names = [symbol] if symbol is not None else sorted(symbols)
    out = []
    for name in names:
        table = engine.symbols[name].table_at(engine.time)
        out.append({"symbol": name, "brackets": [{
            "bracket": t.bracket, "initialLeverage": t.max_leverage,
            "notionalCap": _num(t.cap), "notionalFloor": _num(t.floor),
            "maintMarginRatio": _num(t.mmr), "cum": _num(t.cum)} for t in table.tiers]})
    return out


def commission_rate(engine: Engine, symbol: str) -> dict:
    spec = engine.symbols[symbol].spec
    return {"symbol": symbol, "makerCommissionRate": fmt(spec.maker_fee),
            "takerCommissionRate": fmt(spec.taker_fee), "rpiCommissionRate": "0"}


def adl_quantile(engine: Engine, account: int, symbol: str | None, symbols) -> list[dict]:
    """Per symbol held: LONG, SHORT and BOTH (one-way) or HEDGE (hedge mode) quantiles."""
    acct = engine.accounts[account]
    held: dict[str, dict[str, int]] = {}
    for pos in acct.positions.values():
        name = pos.symbol
        if name not in symbols or (symbol is not None and name != symbol) or not pos.qty:
            continue
        q = held.setdefault(name, {"LONG": 0, "SHORT": 0, "HEDGE" if acct.dual_side
                                   else "BOTH": 0})
        r = adl_rank(pos)
        if pos.side == BOTH:
            q["BOTH"] = r
            q["LONG" if pos.qty > 0 else "SHORT"] = r
        else:
            q[pos.side] = r
    return [{"symbol": name, "adlQuantile": held[name]} for name in sorted(held)]


# -- market data -----------------------------------------------------------------------------------
def depth(engine: Engine, symbol: str, limit: int, last_update_id: int, now: int) -> dict:
    book = engine.symbols[symbol].book
    return {"lastUpdateId": last_update_id, "E": now, "T": engine.time or now,
            "bids": [[fmt(p), fmt(q)] for p, q in book.depth("BUY", limit)],
            "asks": [[fmt(p), fmt(q)] for p, q in book.depth("SELL", limit)]}


def book_ticker(engine: Engine, symbol: str, now: int, last_update_id: int = 0) -> dict:
    book = engine.symbols[symbol].book
    bid, ask = book.best_level("BUY"), book.best_level("SELL")
    return {"symbol": symbol, "bidPrice": fmt(bid.price if bid else 0),
            "bidQty": fmt(bid.total if bid else 0), "askPrice": fmt(ask.price if ask else 0),
            "askQty": fmt(ask.total if ask else 0), "time": now, "lastUpdateId": last_update_id}


def ticker_price(engine: Engine, symbol: str, now: int) -> dict:
    return {"symbol": symbol, "price": fmt(engine.symbols[symbol].last_price), "time": now}


def _pct(change: int, base: int) -> str:
    """Percent with three decimals, rounded half away from zero."""
    if not base:
        return "0.000"
    v = change * 100_000 // base if change >= 0 else -((-change) * 100_000 // base)
    sign = "-" if v < 0 else ""
    v = abs(v)
    return f"{sign}{v // 1000}.{v % 1000:03d}"


def _weighted_average(s: dict, size: int) -> int:
    """Quote over base volume; COIN-M (`quote` is the coin value): contracts x size / coin."""
    if not s["volume"] or not s["quote"]:
        return 0
    if size:
        return s["volume"] * size // s["quote"]
    return s["quote"] * SCALE // s["volume"]


def ticker_24h(engine: Engine, history: History, symbol: str, now: int) -> dict:
    s = history.day_stats(symbol, now)
    last = history.last_trade.get(symbol)
    last_price = engine.symbols[symbol].last_price
    change = last_price - s["open"] if s["count"] else 0
    return {
        "symbol": symbol, "priceChange": fmt(change), "priceChangePercent": _pct(change, s["open"]),
        "weightedAvgPrice": fmt(_weighted_average(s, engine.symbols[symbol].contract_size)),
        "lastPrice": fmt(last_price), "lastQty": fmt(last[1] if last else 0),
        "openPrice": fmt(s["open"]), "highPrice": fmt(s["high"]), "lowPrice": fmt(s["low"]),
        "volume": fmt(s["volume"]), "quoteVolume": fmt(s["quote"]),
        "openTime": s["open_time"], "closeTime": s["close_time"],
        "firstId": s["first"], "lastId": s["last"], "count": s["count"],
    }


def open_interest(engine: Engine, symbol: str, now: int) -> dict:
    oi = 0
    for acct in engine.accounts.values():
        pos = acct.positions.get(symbol)
        if pos is not None and pos.qty > 0:
            oi += pos.qty
    return {"openInterest": fmt(oi), "symbol": symbol, "time": now}


def kline_row(c: list, price_only: bool = False) -> list:
    return [c[0], fmt(c[1]), fmt(c[2]), fmt(c[3]), fmt(c[4]),
            "0" if price_only else fmt(c[5]), c[6], "0" if price_only else fmt(c[7]),
            0 if price_only else c[8], "0" if price_only else fmt(c[9]),
            "0" if price_only else fmt(c[10]), "0"]


def funding_info(engine: Engine, symbols) -> list[dict]:
    """Binance lists only the symbols whose cap, floor or interval differ from the default:
    here those with an absolute cap (catalogue `fundingCap`) or a multiplier of the tier-1 MMR
    other than 0.75 (`fundingCapMultiplier`), with the cap in force now."""
    out = []
    for name in sorted(symbols):
        spec = engine.symbols[name].spec
        cap, multiplier = spec.funding_cap_at(engine.time)
        if spec.contract_type != "PERPETUAL" or (cap is None and multiplier == 75_000_000):
            continue
        rate = core_funding.funding_cap(spec, engine.time)
        out.append({"symbol": name, "adjustedFundingRateCap": fixed_places(rate, 8),
                    "adjustedFundingRateFloor": fixed_places(-rate, 8),
                    "fundingIntervalHours": 8, "disclaimer": False})
    return out


def premium_index_extra(engine: Engine, row: dict) -> dict:
    """Binance's premiumIndex has no predictedFundingRate: the views' extra field goes."""
    row = dict(row)
    row.pop("predictedFundingRate", None)
    return row
