"""Orders (TRADE / USER_DATA, signed): new, query, cancel, modify, batches, open and all
orders, fills, liquidation orders, the countdown cancel; and the conditional (Algo) order
endpoints, which answer as Binance does for an unsupported order type until the core has
conditional orders (wiring them is adding handlers here).

Every command goes through the sequencing loop; its response is the order's state right after
the core handled it (a snapshot taken before the next command), sent once its record is in the
log. A key acts on its own account only: another account's order id is unknown to it."""
from __future__ import annotations

import asyncio
import json

from engine.api import errors as E
from engine.api.endpoint import SIGNED, Endpoint
from engine.api.params import Params
from engine.core.fixed import fmt
from engine.views import binance as B
from engine.views.history import OrderInfo
from proto import commands as C
from proto import events as V

SIDES = ("BUY", "SELL")
CONDITIONAL = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                         "TRAILING_STOP_MARKET"})
TIFS = ("GTC", "IOC", "FOK", "GTX", "GTD")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
CONDITIONAL_PARAMS = ("stopPrice", "activationPrice", "callbackRate", "workingType",
                      "goodTillDate")
MAX_BATCH = 5
MAX_CANCEL_LIST = 10
WEEK = 7 * 86_400_000


# -- reading an order's parameters ------------------------------------------------------------------
def parse_new_order(api, req, p: Params) -> tuple[C.NewOrder, str]:
    account = req.account
    symbol = p.symbol(req.symbols)
    side = p.raw("side")
    if side is None:
        raise E.mandatory("side")
    if side not in SIDES:
        raise E.error(-1117, "Invalid side.")
    type_ = p.raw("type")
    if type_ is None:
        raise E.mandatory("type")
    if type_ in CONDITIONAL:
        raise E.algo_unsupported()
    if type_ not in ("LIMIT", "MARKET"):
        raise E.error(-1116, "Invalid orderType.")
    position_side = p.raw("positionSide")
    if position_side not in (None, "BOTH"):
        if position_side in ("LONG", "SHORT"):
            raise E.error(-4061, "Order's position side does not match user's setting.")
        raise E.error(-4060, "Invalid position side.")
    tif = p.raw("timeInForce")
    if tif is not None and tif not in TIFS:
        raise E.error(-1115, "Invalid timeInForce.")
    if tif == "GTD":  # GTD arrives with the core's conditional-order work
        raise E.error(-1115, "Invalid timeInForce.")
    if p.boolean("closePosition"):
        raise E.not_required("closePosition")
    for name in CONDITIONAL_PARAMS:
        if name in p:
            raise E.not_required(name)
    match = p.raw("priceMatch")
    if match not in (None, "NONE"):
        raise E.error(-5037, "Invalid price match")
    quantity = p.decimal("quantity")
    if quantity is None:
        raise E.mandatory("quantity")
    price = p.decimal("price")
    if type_ == "LIMIT":
        if tif is None:
            raise E.mandatory("timeInForce")
        if price is None:
            raise E.mandatory("price")
    else:
        if price is not None:
            raise E.not_required("price")
        if tif is not None:
            raise E.not_required("timeInForce")
    reduce_only = p.boolean("reduceOnly")
    client_id = p.client_id("newClientOrderId") or api.new_client_id()
    stp = p.enum("selfTradePreventionMode", STP_MODES)
    resp = p.enum("newOrderRespType", ("ACK", "RESULT")) or "ACK"
    cmd = C.NewOrder(account=account, symbol=symbol, side=side, type=type_, quantity=quantity,
                     price=price or 0, time_in_force=tif, reduce_only=reduce_only,
                     new_client_order_id=client_id, self_trade_prevention_mode=stp)
    return cmd, resp


def _rejection(record) -> E.ApiError | None:
    for ev in record.events:
        if type(ev) in (V.OrderRejected, V.CommandRejected):
            return E.error(ev.code, ev.msg)
    return None


def new_order_snapshot(api, resp: str):
    def snap(record):
        err = _rejection(record)
        if err is not None:
            return err
        for ev in record.events:
            if type(ev) is V.OrderAccepted:
                o = OrderInfo(ev, record.time) if resp == "ACK" else api.history.orders[ev.order_id]
                return B.order_json(o, with_time=False, cum_qty=True)
        return E.unknown_error()
    return snap


def order_event_snapshot(api, event_type):
    """The order named by the first `event_type` event of the record, as it is after it."""
    def snap(record):
        err = _rejection(record)
        if err is not None:
            return err
        for ev in record.events:
            if type(ev) is event_type:
                o = api.history.orders.get(ev.order_id)
                if o is not None:
                    return B.order_json(o, with_time=False, cum_qty=True)
        return E.unknown_error()
    return snap


async def _run(api, cmd, snapshot):
    _, result = await api.submit(cmd, snapshot)
    if isinstance(result, E.ApiError):
        raise result
    if result is None:
        raise E.unknown_error()
    return result


def _item_params(item) -> Params:
    """One element of a batch (a JSON object) as parameters: values as Binance reads them."""
    if not isinstance(item, dict):
        raise E.error(-1130, "Data sent for parameter 'batchOrders' is not valid.")
    pairs = []
    for k, v in item.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (int, float)):
            v = repr(v) if isinstance(v, float) else str(v)
        elif not isinstance(v, str):
            raise E.invalid_value(str(k))
        pairs.append((str(k), v))
    return Params([], pairs)


def _json_list(p: Params, name: str, max_len: int) -> list | None:
    raw = p.get_ci(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise E.invalid_value(name) from None
    if not isinstance(value, list) or not value:
        raise E.invalid_value(name)
    if len(value) > max_len:
        raise E.error(-4082 if name == "batchOrders" else -1130,
                      f"Invalid number of batch place orders: {len(value)}"
                      if name == "batchOrders" else f"Data sent for parameter '{name}' is not valid.")
    return value


def _order_ref(p: Params) -> tuple[int, str]:
    order_id = p.integer("orderId")
    client_id = p.string("origClientOrderId", max_len=36)
    if order_id is None and client_id is None:
        raise E.either("orderId", "origClientOrderId")
    return order_id or 0, client_id or ""


# -- endpoints ----------------------------------------------------------------------------------------
def new_order_command(api, req):
    cmd, resp = parse_new_order(api, req, req.params)
    return cmd, new_order_snapshot(api, resp)


async def new_order(api, req):
    cmd, snapshot = new_order_command(api, req)
    return await _run(api, cmd, snapshot)


async def query_order(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    order_id, client_id = _order_ref(p)

    def read():
        o = api.history.order(req.account, order_id, client_id)
        if o is None or o.symbol != symbol:
            raise E.no_such_order()
        return B.order_json(o)
    return await api.read(read)


async def query_open_order(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    order_id, client_id = _order_ref(p)

    def read():
        o = api.history.order(req.account, order_id, client_id)
        if o is None or o.symbol != symbol or not o.is_open:
            raise E.no_such_order()
        return B.order_json(o)
    return await api.read(read)


def cancel_order_command(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    order_id, client_id = _order_ref(p)
    cmd = C.CancelOrder(account=req.account, symbol=symbol, order_id=order_id,
                        orig_client_order_id=client_id)
    return cmd, order_event_snapshot(api, V.OrderCanceled)


async def cancel_order(api, req):
    cmd, snapshot = cancel_order_command(api, req)
    return await _run(api, cmd, snapshot)


def _modify_cmd(api, req, p: Params) -> C.ModifyOrder:
    account = req.account
    symbol = p.symbol(req.symbols)
    side = p.raw("side")
    if side is None:
        raise E.mandatory("side")
    if side not in SIDES:
        raise E.error(-1117, "Invalid side.")
    order_id, client_id = _order_ref(p)
    quantity = p.decimal("quantity", required=True)
    price = p.decimal("price")
    if price is None:
        if p.raw("priceMatch") not in (None, "NONE"):
            raise E.error(-5037, "Invalid price match")
        raise E.mandatory("price")
    o = api.history.order(account, order_id, client_id)
    if o is None or o.symbol != symbol or not o.is_open:
        raise E.no_such_order()
    if o.type != "LIMIT":
        raise E.error(-5025, "Only limit order is supported.")
    if o.side != side:
        raise E.invalid_value("side")
    return C.ModifyOrder(account=account, symbol=symbol, order_id=o.order_id, quantity=quantity,
                         price=price)


async def modify_order(api, req):
    # the order's id (from a client id) and side are read between two commands
    cmd = await api.read(lambda: _modify_cmd(api, req, req.params))
    return await _run(api, cmd, order_event_snapshot(api, V.OrderModified))


def _prepare(items, make) -> list:
    out = []
    for item in items:
        try:
            out.append(make(_item_params(item)))
        except E.ApiError as err:
            out.append(err)
    return out


async def _batch(api, items, make, reads_state: bool):
    """Each item a command of its own, sequenced in order; errors in place, as Binance."""
    prepared = await api.read(lambda: _prepare(items, make)) if reads_state \
        else _prepare(items, make)
    futures = [p if isinstance(p, E.ApiError) else api.submit(*p) for p in prepared]
    out = []
    for f in futures:
        if isinstance(f, E.ApiError):
            out.append({"code": f.code, "msg": f.msg})
            continue
        _, result = await f
        if isinstance(result, E.ApiError):
            out.append({"code": result.code, "msg": result.msg})
        else:
            out.append(result)
    return out


async def batch_new(api, req):
    items = _json_list(req.params, "batchOrders", MAX_BATCH)
    if items is None:
        raise E.mandatory("batchOrders")
    a, b = api.limits.use_orders(req.account, len(items) - 1, req.now)
    req.headers["X-MBX-ORDER-COUNT-10S"], req.headers["X-MBX-ORDER-COUNT-1M"] = str(a), str(b)

    def make(p):
        cmd, resp = parse_new_order(api, req, p)
        return cmd, new_order_snapshot(api, resp)
    return await _batch(api, items, make, False)


async def batch_modify(api, req):
    items = _json_list(req.params, "batchOrders", MAX_BATCH)
    if items is None:
        raise E.mandatory("batchOrders")

    def make(p):
        return _modify_cmd(api, req, p), order_event_snapshot(api, V.OrderModified)
    return await _batch(api, items, make, True)


async def batch_cancel(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    ids = _json_list(p, "orderIdList", MAX_CANCEL_LIST)
    cids = _json_list(p, "origClientOrderIdList", MAX_CANCEL_LIST)
    if ids is None and cids is None:
        raise E.either("orderIdList", "origClientOrderIdList")
    refs = [(i, "") for i in ids] if ids is not None else [(0, c) for c in cids]
    out, futures = [], []
    for order_id, client_id in refs:
        if (ids is not None and (not isinstance(order_id, int) or isinstance(order_id, bool)
                                 or not 0 < order_id < 1 << 63)) or \
                (cids is not None and not isinstance(client_id, str)):
            futures.append(E.invalid_value("orderIdList" if ids is not None
                                           else "origClientOrderIdList"))
            continue
        cmd = C.CancelOrder(account=req.account, symbol=symbol, order_id=order_id,
                            orig_client_order_id=client_id)
        futures.append(api.submit(cmd, order_event_snapshot(api, V.OrderCanceled)))
    for f in futures:
        if isinstance(f, E.ApiError):
            out.append({"code": f.code, "msg": f.msg})
            continue
        _, result = await f
        out.append({"code": result.code, "msg": result.msg}
                   if isinstance(result, E.ApiError) else result)
    return out


async def open_orders(api, req):
    symbol = req.params.symbol(req.symbols, required=False)
    return await api.read(lambda: [B.order_json(o)
                                   for o in api.history.open_orders(req.account, symbol)])


def _window(p: Params, now: int, default_days: int | None = 7, max_days: int = 7):
    start, end = p.integer("startTime"), p.integer("endTime")
    if start is not None and end is not None:
        if end < start:
            raise E.error(-1023, "Start time is greater than end time.")
        if end - start > max_days * 86_400_000:
            raise E.error(-4165, f"Invalid time interval. Maximum time interval is "
                                 f"{max_days} days")
    return start, end


async def all_orders(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    from_id = p.integer("orderId")
    limit = min(p.integer("limit", low=1, high=1 << 31) or 500, 1000)
    start, end = _window(p, req.now)

    def read():
        rows = [o for o in api.history.account_orders(req.account) if o.symbol == symbol
                and (from_id is None or o.order_id >= from_id)
                and (start is None or o.time >= start) and (end is None or o.time <= end)]
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return [B.order_json(o) for o in rows]
    return await api.read(read)


async def cancel_all(api, req):
    symbol = req.params.symbol(req.symbols)
    record, _ = await api.submit(C.CancelAllOrders(account=req.account, symbol=symbol))
    err = _rejection(record)
    if err is not None:
        raise err
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


async def countdown_cancel_all(api, req):
    """Cancel the symbol's open orders unless renewed within `countdownTime` ms (0 stops).
    The cancel, when it fires, is an ordinary command through the sequencing loop."""
    p = req.params
    symbol = p.symbol(req.symbols)
    countdown = p.integer("countdownTime", required=True, high=10 ** 10)
    key = (req.account, symbol)
    old = api.countdowns.pop(key, None)
    if old is not None:
        old.cancel()
    if countdown:
        account = req.account

        def fire():
            api.countdowns.pop(key, None)
            api.loop.submit(C.CancelAllOrders(account=account, symbol=symbol))
        api.countdowns[key] = asyncio.get_running_loop().call_later(countdown / 1000, fire)
    return {"symbol": symbol, "countdownTime": str(countdown)}


async def user_trades(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    order_id = p.integer("orderId")
    from_id = p.integer("fromId")
    limit = min(p.integer("limit", low=1, high=1 << 31) or 500, 1000)
    start, end = _window(p, req.now)
    if from_id is not None and (start is not None or end is not None):
        raise E.error(-1128, "Combination of optional parameters invalid.")

    def read():
        rows = [t for t in api.history.user_trades.get(req.account, ()) if t[1] == symbol
                and (order_id is None or t[2] == order_id)
                and (from_id is None or t[0] >= from_id)
                and (start is None or t[10] >= start) and (end is None or t[10] <= end)]
        if from_id is None and start is None and end is None and order_id is None:
            rows = [t for t in rows if t[10] >= req.now - WEEK]
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return [{"buyer": t[3], "commission": fmt(t[7]), "commissionAsset": "USDT",
                 "id": t[0], "maker": t[9], "orderId": t[2], "price": fmt(t[4]),
                 "qty": fmt(t[5]), "quoteQty": fmt(t[6]), "realizedPnl": fmt(t[8]),
                 "side": "BUY" if t[3] else "SELL", "positionSide": "BOTH", "symbol": t[1],
                 "time": t[10]} for t in rows]
    return await api.read(read)


async def force_orders(api, req):
    p = req.params
    symbol = p.symbol(req.symbols, required=False)
    kind = p.enum("autoCloseType", ("LIQUIDATION", "ADL"))
    limit = min(p.integer("limit", low=1, high=1 << 31) or 50, 100)
    start, end = _window(p, req.now)

    def read():
        if kind == "ADL":
            return []
        rows = [o for o in api.history.force.get(req.account, ())
                if (symbol is None or o.symbol == symbol)
                and (start is None or o.time >= start) and (end is None or o.time <= end)]
        return [B.force_order_json(o) for o in rows[-limit:]]
    return await api.read(read)


# -- conditional (Algo) orders: Binance's answers until the core has them ----------------------------
async def algo_new(api, req):
    p = req.params
    p.symbol(req.symbols)
    algo_type = p.raw("algoType")
    if algo_type is None:
        raise E.mandatory("algoType")
    if algo_type != "CONDITIONAL":
        raise E.invalid_value("algoType")
    if p.raw("type") is None:
        raise E.mandatory("type")
    raise E.error(-1116, "Invalid orderType.")


async def algo_query(api, req):
    p = req.params
    if "algoId" not in p and "clientAlgoId" not in p:
        raise E.either("algoId", "clientAlgoId")
    p.integer("algoId")
    raise E.no_such_order()


async def algo_cancel(api, req):
    p = req.params
    if "algoId" not in p and "clientAlgoId" not in p:
        raise E.either("algoId", "clientAlgoId")
    p.integer("algoId")
    raise E.error(-20124, "Invalid algo id or it has been completed")


async def algo_open(api, req):
    req.params.symbol(req.symbols, required=False)
    return []


async def algo_all(api, req):
    req.params.symbol(req.symbols)
    return []


async def algo_cancel_all(api, req):
    req.params.symbol(req.symbols)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _ep(method, path, weight, handler, orders=0, command=None):
    return Endpoint(method, path, SIGNED, weight, handler, orders, command)


def _sym_weight(with_symbol: int, without: int):
    return lambda p: with_symbol if "symbol" in p else without


ROUTES = [
    _ep("POST", "/fapi/v1/order", 0, new_order, orders=1, command=new_order_command),
    _ep("GET", "/fapi/v1/order", 1, query_order),
    _ep("DELETE", "/fapi/v1/order", 1, cancel_order, command=cancel_order_command),
    _ep("PUT", "/fapi/v1/order", 1, modify_order, orders=1),
    _ep("POST", "/fapi/v1/batchOrders", 5, batch_new, orders=1),
    _ep("PUT", "/fapi/v1/batchOrders", 5, batch_modify, orders=1),
    _ep("DELETE", "/fapi/v1/batchOrders", 1, batch_cancel),
    _ep("GET", "/fapi/v1/openOrder", 1, query_open_order),
    _ep("GET", "/fapi/v1/openOrders", _sym_weight(1, 40), open_orders),
    _ep("GET", "/fapi/v1/allOrders", 5, all_orders),
    _ep("DELETE", "/fapi/v1/allOpenOrders", 1, cancel_all),
    _ep("POST", "/fapi/v1/countdownCancelAll", 10, countdown_cancel_all),
    _ep("GET", "/fapi/v1/userTrades", 5, user_trades),
    _ep("GET", "/fapi/v1/forceOrders", _sym_weight(20, 50), force_orders),
    _ep("POST", "/fapi/v1/algoOrder", 0, algo_new, orders=1),
    _ep("GET", "/fapi/v1/algoOrder", 1, algo_query),
    _ep("DELETE", "/fapi/v1/algoOrder", 1, algo_cancel),
    _ep("GET", "/fapi/v1/openAlgoOrders", _sym_weight(1, 40), algo_open),
    _ep("GET", "/fapi/v1/allAlgoOrders", 5, algo_all),
    _ep("DELETE", "/fapi/v1/algoOpenOrders", 1, algo_cancel_all),
]
