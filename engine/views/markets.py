"""The catalogue in Binance's shapes (decimal strings), for the COIN-M paths and the USDⓈ-M
margin assets: reads only.

    coinm_exchange_info(engine)            GET /dapi/v1/exchangeInfo (symbols with pair,
                                           contractSize, contractStatus, marginAsset, filters)
    coinm_leverage_brackets(engine, symbol=None)
                                           GET /dapi/v2/leverageBracket (qtyFloor / qtyCap in
                                           the coin, the table in force now)
    leverage_result(engine, account, symbol)
                                           the answer to POST /fapi/v1/leverage
                                           (maxNotionalValue) or POST /dapi/v1/leverage (maxQty,
                                           in the coin) after a leverage change
    margin_assets(engine)                  exchangeInfo's "assets" of /fapi/v1/exchangeInfo:
                                           which assets count in Multi-Assets mode

Numbers in brackets are strings of the exact decimals here (JSON numbers are the API layer's
choice: engine.cli writes them as exact JSON numbers for the USD-M brackets).
"""
from __future__ import annotations

from engine.core import Engine
from engine.core.catalogue import SymbolSpec
from engine.core.fixed import fmt

PERPETUAL_DELIVERY = 4133404800000  # Binance's deliveryDate of a perpetual (2100-12-25)


def _coin_symbol(spec: SymbolSpec, max_leverage: int) -> dict:
    f = fmt
    return {
        "symbol": spec.symbol, "pair": spec.pair, "contractType": spec.contract_type,
        "deliveryDate": PERPETUAL_DELIVERY, "onboardDate": 0, "contractStatus": "TRADING",
        "contractSize": int(spec.contract_size // 100_000_000), "quoteAsset": spec.quote_asset,
        "baseAsset": spec.base_asset, "marginAsset": spec.margin_asset,
        "pricePrecision": _decimals(spec.tick_size), "quantityPrecision": 0,
        "baseAssetPrecision": 8, "quotePrecision": 8, "equalQtyPrecision": 4,
        "triggerProtect": f(spec.trigger_protect), "underlyingType": spec.underlying_type,
        "underlyingSubType": [], "liquidationFee": f(spec.liquidation_fee),
        "marketTakeBound": "0.30", "maxLeverage": max_leverage,
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": f(spec.min_price),
             "maxPrice": f(spec.max_price), "tickSize": f(spec.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": f(spec.min_qty), "maxQty": f(spec.max_qty),
             "stepSize": f(spec.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": f(spec.min_qty),
             "maxQty": f(spec.market_max_qty), "stepSize": f(spec.step_size)},
            {"filterType": "MAX_NUM_ORDERS", "limit": spec.max_num_orders},
            {"filterType": "PERCENT_PRICE", "multiplierUp": f(spec.multiplier_up),
             "multiplierDown": f(spec.multiplier_down), "multiplierDecimal": "4"},
        ],
    }


def _decimals(units: int) -> int:
    d = 0
    while units % 100_000_000:
        units *= 10
        d += 1
    return d


def coinm_exchange_info(engine: Engine) -> dict:
    """GET /dapi/v1/exchangeInfo: the COIN-M symbols (no MIN_NOTIONAL filter, as Binance's)."""
    symbols = []
    for name in sorted(engine.symbols):
        sym = engine.symbols[name]
        if sym.contract_size:
            symbols.append(_coin_symbol(sym.spec, sym.table_at(engine.time).max_leverage))
    return {"timezone": "UTC", "serverTime": engine.time,
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                            "intervalNum": 1, "limit": 6000},
                           {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                            "limit": 6000}],
            "exchangeFilters": [], "symbols": symbols}


def coinm_leverage_brackets(engine: Engine, symbol: str | None = None) -> list[dict]:
    """GET /dapi/v2/leverageBracket: per COIN-M symbol its tiers in force, in the coin."""
    out = []
    for name in sorted(engine.symbols):
        sym = engine.symbols[name]
        if not sym.contract_size or (symbol is not None and name != symbol):
            continue
        table = sym.table_at(engine.time)
        out.append({"symbol": name, "brackets": [
            {"bracket": t.bracket, "initialLeverage": t.max_leverage, "qtyCap": fmt(t.cap),
             "qtyFloor": fmt(t.floor), "maintMarginRatio": fmt(t.mmr), "cum": fmt(t.cum)}
            for t in table.tiers]})
    if symbol is not None and not out:
        raise KeyError(f"unknown COIN-M symbol {symbol}")
    return out


def leverage_result(engine: Engine, account: int, symbol: str) -> dict:
    """What POST /fapi/v1/leverage (USD-M: maxNotionalValue) or /dapi/v1/leverage (COIN-M:
    maxQty, the cap in the coin) answers, from the account's leverage in the symbol."""
    acct = engine.accounts.get(account)
    sym = engine.symbols.get(symbol)
    if acct is None or sym is None:
        raise KeyError(f"unknown account {account} or symbol {symbol}")
    settings = engine.ledger.symbol_settings(acct, symbol)
    cap = sym.max_notional(sym.table_at(engine.time), settings.leverage)
    key = "maxQty" if sym.contract_size else "maxNotionalValue"
    return {"leverage": settings.leverage, key: fmt(cap), "symbol": symbol}


def margin_assets(engine: Engine) -> list[dict]:
    """exchangeInfo "assets" (USD-M): every asset a wallet can hold, marginAvailable when it
    counts in Multi-Assets mode now; autoAssetExchange "0" for those (only the liquidation
    case of Binance's auto-exchange is modelled), null otherwise."""
    table = engine.catalogue.collateral.at(engine.time)
    out = []
    for asset in sorted(engine.ledger.asset_names):
        available = table is not None and asset in table.assets
        out.append({"asset": asset, "marginAvailable": available,
                    "autoAssetExchange": "0" if available else None})
    return out
