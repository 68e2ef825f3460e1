"""Orders (TRADE / USER_DATA, signed): new, query, cancel, modify, batches, open and all
orders, fills, liquidation orders, the countdown cancel; and the conditional orders of
Binance's Algo service (algoOrder, openAlgoOrders, allAlgoOrders, algoOpenOrders). The same
handlers serve /fapi (USDⓈ-M) and /dapi (COIN-M): a request knows its product's symbols.

Every command goes through the sequencing loop; its response is the order's state right after
the core handled it (a snapshot taken before the next command), sent once its record is in the
log. A key acts on its own account only: another account's order id is unknown to it. The
API checks what the core cannot see (names, enums, formats: Binance's -1100/-1102/-1106/-1116/
-1117/-1115/-4060/-4031/-5037/-5039/-1136); the core decides the rest (hedge mode's -4061 and
-1106 reduceonly, GTD's -5040, priceMatch's -5041, -2021, -4045, -4137/-4138/-4509/-4130, the
margin and filter checks)."""
from __future__ import annotations

import asyncio
import json

from engine.api import errors as E
from engine.api.endpoint import COINM, SIGNED, Endpoint
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
POSITION_SIDES = ("BOTH", "LONG", "SHORT")
PRICE_MATCH = ("NONE", "OPPONENT", "OPPONENT_5", "OPPONENT_10", "OPPONENT_20", "QUEUE",
               "QUEUE_5", "QUEUE_10", "QUEUE_20")
WORKING_TYPES = ("MARK_PRICE", "CONTRACT_PRICE")
# parameters of a conditional order: on /fapi/v1/order they are not needed (-1106)
CONDITIONAL_PARAMS = ("stopPrice", "triggerPrice", "activationPrice", "activatePrice",
                      "callbackRate", "workingType", "priceProtect")
MAX_BATCH = 5
MAX_CANCEL_LIST = 10
WEEK = 7 * 86_400_000


# -- reading an order's parameters ------------------------------------------------------------------
def _side(p: Params) -> str:
    side = p.raw("side")
    if side is None:
        raise E.mandatory("side")
    if side not in SIDES:
        raise E.error(-1117, "Invalid side.")
    return side


def _common(p: Params) -> dict:
    """What a new order and a new conditional order read alike: position side, time in force,
    priceMatch, STP mode, goodTillDate, reduceOnly (None when not sent)."""
    position_side = p.raw("positionSide")
    if position_side is not None and position_side not in POSITION_SIDES:
        raise E.error(-4060, "Invalid position side.")
    tif = p.raw("timeInForce")
    if tif is not None and tif not in TIFS:
        raise E.error(-1115, "Invalid timeInForce.")
    match = p.raw("priceMatch")
    if match is not None and match not in PRICE_MATCH:
        raise E.error(-5037, "Invalid price match")
    stp = p.raw("selfTradePreventionMode")
    if stp is not None and stp not in STP_MODES:
        raise E.error(-5039, "Invalid self trade prevention mode")
    resp = p.raw("newOrderRespType") or "ACK"
    if resp not in ("ACK", "RESULT"):
        raise E.error(-1136, "Invalid newOrderRespType.")
    return {"position_side": position_side, "time_in_force": tif, "price_match": match,
            "self_trade_prevention_mode": stp, "good_till_date": p.integer("goodTillDate") or 0,
            "reduce_only": p.flag("reduceOnly"), "resp": resp}


def parse_new_order(api, req, p: Params) -> tuple[C.NewOrder, str]:
    symbol = p.symbol(req.symbols)
    side = _side(p)
    type_ = p.raw("type")
    if type_ is None:
        raise E.mandatory("type")
    if type_ in CONDITIONAL:
        raise E.algo_unsupported()
    if type_ not in ("LIMIT", "MARKET"):
        raise E.error(-1116, "Invalid orderType.")
    common = _common(p)
    if p.boolean("closePosition"):
        raise E.not_required("closePosition")
    for name in CONDITIONAL_PARAMS:
        if name in p:
            raise E.not_required(name)
    quantity = p.decimal("quantity")
    if quantity is None:
        raise E.mandatory("quantity")
    price = p.decimal("price")
    client_id = p.client_id("newClientOrderId") or api.new_client_id()
    resp = common.pop("resp")
    cmd = C.NewOrder(account=req.account, symbol=symbol, side=side, type=type_,
                     quantity=quantity, price=price or 0, new_client_order_id=client_id,
                     **common)
    return cmd, resp


def parse_new_algo_order(api, req, p: Params) -> C.NewAlgoOrder:
    symbol = p.symbol(req.symbols)
    algo_type = p.raw("algoType")
    if algo_type is None:
        raise E.mandatory("algoType")
    if algo_type != "CONDITIONAL":
        raise E.invalid_value("algoType")
    side = _side(p)
    type_ = p.raw("type")
    if type_ is None:
        raise E.mandatory("type")
    if type_ not in CONDITIONAL:
        raise E.error(-1116, "Invalid orderType.")
    common = _common(p)
    common.pop("resp")
    for name in ("stopPrice", "activationPrice"):  # the old /fapi/v1/order names
        if name in p:
            raise E.not_required(name)
    working = p.raw("workingType") or "CONTRACT_PRICE"
    if working not in WORKING_TYPES:
        raise E.error(-4031, f"Invalid parameter working type: {working}")
    client_id = p.client_id("clientAlgoId") or api.new_client_id()
    return C.NewAlgoOrder(
        account=req.account, symbol=symbol, side=side, type=type_,
        quantity=p.decimal("quantity") or 0, price=p.decimal("price") or 0,
        trigger_price=p.decimal("triggerPrice") or 0, working_type=working,
        price_protect=p.boolean("priceProtect"), close_position=p.boolean("closePosition"),
        activate_price=p.decimal("activatePrice") or 0,
        callback_rate=p.decimal("callbackRate") or 0, client_algo_id=client_id, **common)


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
                o = api.history.orders[ev.order_id]
                if resp == "ACK":  # the order as accepted, before any fill
                    o = OrderInfo(ev, record.time, o.price_match, None, o.size)
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
    a, b = api.limits.use_orders(req.account, len(items) - 1, api.now())
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
                                   for o in api.history.open_orders(req.account, symbol)
                                   if o.symbol in req.symbols])


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
        assets = api.history.assets
        out = []
        for t in rows:
            row = {"buyer": t[3], "commission": fmt(t[7]),
                   "commissionAsset": assets.get(t[1], "USDT"), "id": t[0], "maker": t[9],
                   "orderId": t[2], "price": fmt(t[4]), "qty": fmt(t[5])}
            if req.product == COINM:  # the fill's value in the coin
                row.update({"baseQty": fmt(t[6]), "pair": t[1].partition("_")[0],
                            "marginAsset": assets.get(t[1], "USDT")})
            else:
                row["quoteQty"] = fmt(t[6])
            row.update({"realizedPnl": fmt(t[8]), "side": "BUY" if t[3] else "SELL",
                        "positionSide": t[11], "symbol": t[1], "time": t[10]})
            out.append(row)
        return out
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
                if (symbol is None or o.symbol == symbol) and o.symbol in req.symbols
                and (start is None or o.time >= start) and (end is None or o.time <= end)]
        return [B.force_order_json(o) for o in rows[-limit:]]
    return await api.read(read)


# -- conditional (Algo) orders ----------------------------------------------------------------
def _algo_answer(api, a, query: bool = True) -> dict:
    actual = api.history.orders.get(a.actual_order_id) if a.actual_order_id else None
    return B.algo_json(a, actual, query=query)


def new_algo_command(api, req):
    cmd = parse_new_algo_order(api, req, req.params)

    def snap(record):
        err = _rejection(record)
        if err is not None:
            return err
        for ev in record.events:
            if type(ev) is V.AlgoOrderAccepted:
                return _algo_answer(api, api.history.algos[ev.algo_id], query=False)
        return E.unknown_error()
    return cmd, snap


async def algo_new(api, req):
    cmd, snapshot = new_algo_command(api, req)
    return await _run(api, cmd, snapshot)


def _algo_ref(p: Params) -> tuple[int, str]:
    algo_id = p.integer("algoId")
    client_id = p.string("clientAlgoId", max_len=36)
    if algo_id is None and client_id is None:
        raise E.either("algoId", "clientAlgoId")
    return algo_id or 0, client_id or ""


async def algo_query(api, req):
    algo_id, client_id = _algo_ref(req.params)

    def read():
        a = api.history.algo(req.account, algo_id, client_id)
        if a is None or a.symbol not in req.symbols:
            raise E.no_such_order()
        return _algo_answer(api, a)
    return await api.read(read)


def cancel_algo_command(api, req):
    algo_id, client_id = _algo_ref(req.params)
    cmd = C.CancelAlgoOrder(account=req.account, algo_id=algo_id, client_algo_id=client_id)

    def snap(record):
        err = _rejection(record)
        if err is not None:
            return err
        for ev in record.events:
            if type(ev) is V.AlgoOrderCanceled:
                a = api.history.algos[ev.algo_id]
                # Binance's answer carries `code` as a string here
                return {"algoId": a.algo_id, "clientAlgoId": a.client_id, "code": "200",
                        "msg": "success"}
        return E.unknown_error()
    return cmd, snap


async def algo_cancel(api, req):
    cmd, snapshot = cancel_algo_command(api, req)
    return await _run(api, cmd, snapshot)


async def algo_open(api, req):
    p = req.params
    symbol = p.symbol(req.symbols, required=False)
    if p.raw("algoType") not in (None, "CONDITIONAL"):
        raise E.invalid_value("algoType")
    algo_id = p.integer("algoId")

    def read():
        return [_algo_answer(api, a) for a in api.history.open_algo_orders(req.account, symbol)
                if a.symbol in req.symbols and (algo_id is None or a.algo_id == algo_id)]
    return await api.read(read)


async def algo_all(api, req):
    """Oldest first: from `algoId` on, or within the window; otherwise the most recent (the
    last 7 days when no window is given), `limit` (500, at most 1000) per `page`."""
    p = req.params
    symbol = p.symbol(req.symbols)
    from_id = p.integer("algoId")
    limit = min(p.integer("limit", low=1, high=1 << 31) or 500, 1000)
    page = p.integer("page", low=1, high=1 << 31) or 1
    start, end = _window(p, req.now)
    if from_id is None and start is None and end is None:
        start = req.now - WEEK

    def read():
        rows = [a for a in api.history.account_algos(req.account) if a.symbol == symbol
                and (from_id is None or a.algo_id >= from_id)
                and (start is None or a.time >= start) and (end is None or a.time <= end)]
        if from_id is not None:
            rows = rows[(page - 1) * limit:page * limit]
        else:  # the most recent first page, older ones on the next pages
            stop = len(rows) - (page - 1) * limit
            rows = rows[max(0, stop - limit):stop] if stop > 0 else []
        return [_algo_answer(api, a) for a in rows]
    return await api.read(read)


async def algo_cancel_all(api, req):
    symbol = req.params.symbol(req.symbols)
    record, _ = await api.submit(C.CancelAllAlgoOrders(account=req.account, symbol=symbol))
    err = _rejection(record)
    if err is not None:
        raise err
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _ep(method, path, weight, handler, orders=0, command=None):
    return Endpoint(method, path, SIGNED, weight, handler, orders, command)


def _sym_weight(with_symbol: int, without: int):
    return lambda p: with_symbol if "symbol" in p else without


def _routes(prefix: str) -> list[Endpoint]:
    """The same endpoints under /fapi (USDⓈ-M) and /dapi (COIN-M)."""
    v1 = prefix + "/v1/"
    return [
        _ep("POST", v1 + "order", 0, new_order, orders=1, command=new_order_command),
        _ep("GET", v1 + "order", 1, query_order),
        _ep("DELETE", v1 + "order", 1, cancel_order, command=cancel_order_command),
        _ep("PUT", v1 + "order", 1, modify_order, orders=1),
        _ep("POST", v1 + "batchOrders", 5, batch_new, orders=1),
        _ep("PUT", v1 + "batchOrders", 5, batch_modify, orders=1),
        _ep("DELETE", v1 + "batchOrders", 1, batch_cancel),
        _ep("GET", v1 + "openOrder", 1, query_open_order),
        _ep("GET", v1 + "openOrders", _sym_weight(1, 40), open_orders),
        _ep("GET", v1 + "allOrders", 5, all_orders),
        _ep("DELETE", v1 + "allOpenOrders", 1, cancel_all),
        _ep("POST", v1 + "countdownCancelAll", 10, countdown_cancel_all),
        _ep("GET", v1 + "userTrades", 5, user_trades),
        _ep("GET", v1 + "forceOrders", _sym_weight(20, 50), force_orders),
        _ep("POST", v1 + "algoOrder", 0, algo_new, orders=1, command=new_algo_command),
        _ep("GET", v1 + "algoOrder", 1, algo_query),
        _ep("DELETE", v1 + "algoOrder", 1, algo_cancel, command=cancel_algo_command),
        _ep("GET", v1 + "openAlgoOrders", _sym_weight(1, 40), algo_open),
        _ep("GET", v1 + "allAlgoOrders", 5, algo_all),
        _ep("DELETE", v1 + "algoOpenOrders", 1, algo_cancel_all),
    ]


ROUTES = _routes("/fapi") + _routes("/dapi")
