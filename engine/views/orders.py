"""Orders in Binance's shapes (decimal strings): an order's state after a command, and an
account's open orders. Reads only: they change nothing and are not logged."""
from __future__ import annotations

from engine.core import Engine
from engine.core.fixed import fmt
from proto import events as V


def order_state(order_id: int, events: list, time_ms: int) -> dict:
    """The order as Binance's order endpoints return it, from the events of one record."""
    state: dict = {"orderId": order_id}
    orig = executed = notional = trades = 0
    status = "NEW"
    for ev in events:
        t = type(ev)
        if t is V.OrderAccepted and ev.order_id == order_id:
            state.update(symbol=ev.symbol, side=ev.side, type=ev.type, timeInForce=ev.time_in_force,
                         price=fmt(ev.price), clientOrderId=ev.client_order_id,
                         reduceOnly=ev.reduce_only)
            orig = ev.quantity
        elif t is V.OrderModified and ev.order_id == order_id:
            state.update(symbol=ev.symbol, price=fmt(ev.price))
            orig = ev.quantity
        elif t is V.Trade and order_id in (ev.taker_order_id, ev.maker_order_id):
            executed += ev.quantity
            notional += ev.quantity * ev.price
            trades += 1
        elif t is V.OrderCanceled and ev.order_id == order_id:
            status = "CANCELED"
            state.setdefault("symbol", ev.symbol)
        elif t is V.OrderExpired and ev.order_id == order_id:
            status = ev.status
    if status == "NEW" and executed:
        status = "FILLED" if executed == orig else "PARTIALLY_FILLED"
    state.update(status=status, executedQty=fmt(executed),
                 avgPrice=fmt(notional // executed if executed else 0), updateTime=time_ms,
                 trades=trades)
    if orig:
        state["origQty"] = fmt(orig)
    return state


def open_orders(engine: Engine, account: int, symbol: str | None,
                cap: int | None = None) -> list[dict]:
    """The account's open orders by symbol and order id; at most `cap` of them."""
    if account not in engine.accounts:
        raise KeyError(f"unknown account {account}")
    out: list[dict] = []
    for name, sym in sorted(engine.symbols.items()):
        if symbol and name != symbol:
            continue
        open_here = sum(leg.open_orders for leg in engine.accounts[account].legs(name))
        if not open_here:
            continue
        if cap is not None and len(out) >= cap:
            break
        mine = []  # newest first, and no further than its last open order in this book
        for o in reversed(sym.book.orders.values()):
            if o.account == account:
                mine.append(o)
                if len(mine) >= open_here:
                    break
        mine.sort(key=lambda o: o.order_id)
        for o in mine[:None if cap is None else cap - len(out)]:
            out.append({"orderId": o.order_id, "symbol": name, "side": o.side,
                        "price": fmt(o.price), "origQty": fmt(o.quantity),
                        "executedQty": fmt(o.quantity - o.remaining), "timeInForce": o.tif,
                        "reduceOnly": o.reduce_only, "clientOrderId": o.client_id,
                        "positionSide": o.position_side, "goodTillDate": o.gtd,
                        "status": "PARTIALLY_FILLED" if o.remaining < o.quantity else "NEW"})
    return out


def algo_order(algo, status: str = "NEW") -> dict:
    """A conditional order in the shape of Binance's GET /fapi/v1/algoOrder."""
    trailing = algo.type == "TRAILING_STOP_MARKET"
    return {"algoId": algo.algo_id, "clientAlgoId": algo.client_id, "algoType": "CONDITIONAL",
            "orderType": algo.type, "symbol": algo.symbol, "side": algo.side,
            "positionSide": algo.position_side, "timeInForce": algo.tif,
            "quantity": fmt(algo.quantity), "algoStatus": status, "actualOrderId": "",
            "actualPrice": "0", "triggerPrice": fmt(algo.trigger), "price": fmt(algo.price),
            "icebergQuantity": None, "selfTradePreventionMode": algo.stp,
            "workingType": "MARK_PRICE" if algo.source == 0 else "CONTRACT_PRICE",
            "priceMatch": algo.price_match, "closePosition": algo.close_position,
            "priceProtect": algo.price_protect, "reduceOnly": algo.reduce_only,
            "activatePrice": fmt(algo.activate) if trailing else "",
            "callbackRate": fmt(algo.rate) if trailing else "",
            "createTime": algo.created, "updateTime": algo.created, "triggerTime": 0,
            "goodTillDate": algo.gtd}


def open_algo_orders(engine: Engine, account: int, symbol: str | None = None) -> list[dict]:
    """The account's waiting conditional orders (GET /fapi/v1/openAlgoOrders), oldest first."""
    if account not in engine.accounts:
        raise KeyError(f"unknown account {account}")
    return [algo_order(a) for _, a in sorted(engine.conditional.algos.items())
            if a.account == account and (symbol is None or a.symbol == symbol)]
