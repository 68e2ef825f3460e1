"""Read-only answers in Binance's shapes (decimal strings) for index, mark and funding:
GET /fapi/v1/premiumIndex, GET /fapi/v1/fundingRate and GET /fapi/v1/indexInfo (the composite's
constituents and weights). Queries change nothing and are not logged.

Choices where Binance's fields are loosely defined:
- lastFundingRate is the last settled rate (the one the mark's price1 uses), and
  predictedFundingRate (an extra field) the rate the current interval would settle at now.
- estimatedSettlePrice is the index price (perpetuals have no delivery settlement).
- Symbols without an index price report their fed mark, an index of 0 and no funding.
"""
from __future__ import annotations

from engine.core import funding as F
from engine.core import Engine
from engine.core.fixed import fmt
from engine.core.composite import COMPOSITE_SYMBOL


def _premium(engine: Engine, name: str) -> dict:
    sym = engine.symbols[name]
    fs = engine.pricing.states.get(name)
    perpetual = sym.spec.contract_type == "PERPETUAL"
    funding = fs is not None and fs.perpetual and engine.pricing.funding_next is not None
    predicted = 0
    if funding:
        avg = fs.average_at(engine.time)
        predicted = F.settlement_rate(avg, F.funding_cap(sym.spec, engine.pricing.funding_next))
    return {
        "symbol": name,
        "markPrice": fmt(sym.mark),
        "indexPrice": fmt(fs.index if fs is not None else sym.index),
        "estimatedSettlePrice": fmt(fs.index if fs is not None else sym.index),
        "lastFundingRate": fmt(fs.last_rate if fs is not None else 0),
        "predictedFundingRate": fmt(predicted),
        "interestRate": fmt(F.INTEREST_RATE if perpetual else 0),
        "nextFundingTime": engine.pricing.funding_next if funding else 0,
        "time": engine.time,
    }


def premium_index(engine: Engine, symbol: str | None = None) -> dict | list[dict]:
    """One symbol's mark, index and funding; every symbol's (a list) without `symbol`."""
    if symbol is None:
        return [_premium(engine, s) for s in sorted(engine.symbols)]
    if symbol not in engine.symbols:
        raise KeyError(f"unknown symbol {symbol}")
    return _premium(engine, symbol)


def funding_rate_history(engine: Engine, symbol: str | None = None, limit: int = 100,
                         start_time: int | None = None, end_time: int | None = None,
                         among=None) -> list[dict]:
    """Settled rates, oldest first: the most recent `limit` (at most 1000) in the window.
    Without `symbol`, every symbol's, or those in `among` (a collection of names) if given."""
    if symbol is not None and symbol not in engine.symbols:
        raise KeyError(f"unknown symbol {symbol}")
    limit = max(1, min(int(limit), F.HISTORY_LIMIT))
    names = [symbol] if symbol is not None else sorted(
        s for s in engine.pricing.states if among is None or s in among)
    rows = []
    for name in names:
        fs = engine.pricing.states.get(name)
        if fs is None:
            continue
        for t, rate, mark in fs.history:
            if (start_time is None or t >= start_time) and (end_time is None or t <= end_time):
                rows.append((t, name, rate, mark))
    rows.sort()
    if start_time is not None and end_time is None:
        rows = rows[:limit]
    else:
        rows = rows[-limit:]
    return [{"symbol": name, "fundingRate": fmt(rate), "fundingTime": t, "markPrice": fmt(mark)}
            for t, name, rate, mark in rows]


def composite_index(engine: Engine, symbol: str = COMPOSITE_SYMBOL) -> dict:
    """Binance's indexInfo shape for the composite: its members (baseAssetList) with their
    weight in quantity (index points per unit of the member's price) and their share of the
    current value; plus the value and the rebalance times."""
    comp = engine.pricing.composite
    if comp is None or symbol != comp.symbol:
        raise KeyError(f"{symbol} is not a composite index")
    members = []
    for name in sorted(comp.weights):
        spec = engine.symbols[name].spec
        members.append({"baseAsset": spec.base_asset, "quoteAsset": spec.quote_asset,
                        "weightInQuantity": fmt(comp.weight_in_quantity(name)),
                        "weightInPercentage": fmt(comp.weight_in_percentage(name)),
                        "symbol": name})
    return {"symbol": comp.symbol, "time": engine.time, "component": "baseAsset",
            "baseAssetList": members, "indexPrice": fmt(comp.value()),
            "lastRebalanceTime": engine.pricing.last_rebalance or 0,
            "nextRebalanceTime": engine.pricing.rebalance_next or 0}
