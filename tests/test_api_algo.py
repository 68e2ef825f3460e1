"""Conditional orders through Binance's Algo service endpoints, end to end on a real server:
ccxt's stop-loss and take-profit (its create_order routes them to POST /fapi/v1/algoOrder)
triggering on a mark move and closing the position, python-binance's rerouted
futures_create_order, every Algo endpoint with its answers and Binance's codes, the user
stream's ALGO_UPDATE / CONDITIONAL_ORDER_TRIGGER_REJECT and the triggered order's
ORDER_TRADE_UPDATE; and GTD, priceMatch and selfTradePreventionMode on ordinary orders."""
from __future__ import annotations

import time

import pytest
from binance.client import Client as BinanceClient

from tests.api_harness import ApiServerProcess
from tests.test_api import call, ccxt_sync, err
from tests.test_api_streams import Rest

S = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ApiServerProcess(tmp_path_factory.mktemp("algo"))
    s.set_mark("BTCUSDT", "30000")
    s.set_mark("ETHUSDT", "2000")
    yield s
    assert s.stop() == 0


def test_ccxt_stop_loss_triggers_on_a_mark_move_and_closes_the_position(server):
    server.set_mark("BTCUSDT", "30000")
    k, maker = server.newkey("10000"), server.newkey("1000000")
    ex, mm = ccxt_sync(server, k), ccxt_sync(server, maker)
    ex.load_markets()
    mm.load_markets()
    mm.create_order(S, "limit", "sell", 0.1, 30000)
    opened = ex.create_order(S, "market", "buy", 0.1)
    assert (opened["status"], opened["filled"]) == ("closed", 0.1)
    # the stop-loss a bot sets: a STOP_MARKET on the mark, reduce-only, through the Algo API
    sl = ex.create_order(S, "market", "sell", 0.1, None,
                         {"stopLossPrice": 29000, "reduceOnly": True,
                          "workingType": "MARK_PRICE"})
    assert (sl["type"], sl["status"], sl["triggerPrice"], sl["reduceOnly"]) == \
        ("market", "open", 29000.0, True)
    info = sl["info"]
    assert (info["algoType"], info["orderType"], info["algoStatus"], info["workingType"]) == \
        ("CONDITIONAL", "STOP_MARKET", "NEW", "MARK_PRICE")
    assert info["clientAlgoId"].startswith("x-")  # ccxt's id, as it sent it
    # and a take-profit above, on the last price (CONTRACT_PRICE, Binance's default)
    tp = ex.create_order(S, "market", "sell", 0.1, None,
                         {"takeProfitPrice": 33000, "reduceOnly": True})
    assert (tp["info"]["orderType"], tp["takeProfitPrice"]) == ("TAKE_PROFIT_MARKET", 33000.0)
    # algo orders are not ordinary open orders (Binance lists them apart)
    assert ex.fetch_open_orders(S) == []
    assert sorted(o["id"] for o in ex.fetch_open_orders(S, params={"trigger": True})) == \
        sorted([sl["id"], tp["id"]])
    assert ex.fetch_order(sl["id"], S, {"trigger": True})["status"] == "open"
    # a bid for the stop to sell into, then the mark falls through the trigger
    mm.create_order(S, "limit", "buy", 0.1, 28950)
    server.set_mark("BTCUSDT", "28990")
    done = ex.fetch_order(sl["id"], S, {"trigger": True})
    assert done["status"] == "closed"
    assert (done["info"]["algoStatus"], done["info"]["actualType"],
            done["info"]["actualQty"], done["info"]["actualPrice"]) == \
        ("FINISHED", "MARKET", "0.1", "28950")
    assert done["info"]["triggerTime"] >= done["info"]["createTime"] > 0
    # the order it placed is an ordinary order: filled at the bid, reduce-only
    placed = ex.fetch_order(done["info"]["actualOrderId"], S)
    assert (placed["status"], placed["filled"], placed["average"], placed["side"]) == \
        ("closed", 0.1, 28950.0, "sell")
    assert (placed["info"]["origType"], placed["info"]["stopPrice"],
            placed["info"]["reduceOnly"], placed["info"]["workingType"]) == \
        ("STOP_MARKET", "29000", True, "MARK_PRICE")
    # the position is gone, its take-profit expired with it (reduce-only: bound to it)
    assert ex.fetch_positions([S]) == []
    assert ex.fetch_order(tp["id"], S, {"trigger": True})["status"] == "expired"
    assert ex.fetch_open_orders(S, params={"trigger": True}) == []
    # the loss is booked: 0.1 x (30000 - 28950) and the two taker fees
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(
        10000 - 105 - 0.1 * 30000 * 0.0005 - 0.1 * 28950 * 0.0005)
    history = ex.fetch_orders(S, params={"trigger": True})
    assert [(o["id"], o["status"]) for o in history] == [(sl["id"], "closed"),
                                                         (tp["id"], "expired")]


def test_ccxt_take_profit_limit_trigger_and_cancel(server):
    server.set_mark("ETHUSDT", "2000")
    k, maker = server.newkey("10000"), server.newkey("1000000")
    ex, mm = ccxt_sync(server, k), ccxt_sync(server, maker)
    ex.load_markets()
    mm.load_markets()
    E = "ETH/USDT:USDT"
    mm.create_order(E, "limit", "buy", 1, 2000)
    ex.create_order(E, "market", "sell", 1)  # short 1 ETH at 2000
    # a TAKE_PROFIT (limit) to buy back at 1900 once the last trade reaches 1900
    tp = ex.create_order(E, "limit", "buy", 1, 1900, {"takeProfitPrice": 1900})
    assert (tp["info"]["orderType"], tp["price"], tp["info"]["timeInForce"]) == \
        ("TAKE_PROFIT", 1900.0, "GTC")
    # a plain trigger (ccxt's triggerPrice): a STOP_MARKET above, canceled by the bot
    stop = ex.create_order(E, "market", "buy", 1, None, {"triggerPrice": 2100})
    assert stop["info"]["orderType"] == "STOP_MARKET"
    canceled = ex.cancel_order(stop["id"], E, {"trigger": True})
    assert canceled["info"] == {"algoId": int(stop["id"]), "clientAlgoId":
                                stop["clientOrderId"], "code": "200", "msg": "success"}
    assert ex.fetch_order(stop["id"], E, {"trigger": True})["status"] == "canceled"
    # ccxt's other spellings: `stopPrice` (the same STOP_MARKET) and `trailingPercent` (a
    # TRAILING_STOP_MARKET with Binance's callbackRate and activatePrice)
    legacy = ex.create_order(E, "market", "buy", 1, None, {"stopPrice": 2100})
    trailing = ex.create_order(E, "market", "buy", 1, None,
                               {"trailingPercent": 1.5, "trailingTriggerPrice": 1950})
    assert (legacy["info"]["orderType"], legacy["info"]["triggerPrice"]) == \
        ("STOP_MARKET", "2100")
    assert (trailing["info"]["orderType"], trailing["info"]["callbackRate"],
            trailing["info"]["activatePrice"]) == ("TRAILING_STOP_MARKET", "1.5", "1950")
    for o in (legacy, trailing):
        assert ex.cancel_order(o["id"], E, {"trigger": True})["info"]["code"] == "200"
    assert [o["id"] for o in ex.fetch_open_orders(E, params={"trigger": True})] == [tp["id"]]
    # another account's trade at 1900 moves the last price: the take-profit becomes a LIMIT
    # buy at 1900 that rests (nobody sells at 1900 any more)
    other = server.newkey("100000")
    oc = ccxt_sync(server, other)
    oc.load_markets()
    mm.create_order(E, "limit", "buy", 0.01, 1900)
    oc.create_order(E, "market", "sell", 0.01)
    got = ex.fetch_order(tp["id"], E, {"trigger": True})
    assert (got["status"], got["info"]["algoStatus"], got["info"]["actualType"]) == \
        ("closed", "TRIGGERED", "LIMIT")
    resting = ex.fetch_open_orders(E)
    assert [(o["id"], o["price"], o["type"], o["info"]["origType"]) for o in resting] == \
        [(got["info"]["actualOrderId"], 1900.0, "limit", "TAKE_PROFIT")]
    # it fills later: the algo order is FINISHED
    oc.create_order(E, "limit", "sell", 1, 1900)
    assert ex.fetch_order(tp["id"], E, {"trigger": True})["info"]["algoStatus"] == "FINISHED"
    assert ex.fetch_positions([E]) == []


def test_python_binance_routes_conditional_types_to_the_algo_endpoints(server):
    k = server.newkey("10000")

    class LocalClient(BinanceClient):
        API_URL = server.url + "/api"
        FUTURES_URL = server.url + "/fapi"

    c = LocalClient(k["apiKey"], k["secret"])
    placed = c.futures_create_order(symbol="ETHUSDT", side="BUY", type="STOP_MARKET",
                                    quantity="0.5", stopPrice="2500", workingType="MARK_PRICE")
    assert (placed["orderType"], placed["triggerPrice"], placed["quantity"]) == \
        ("STOP_MARKET", "2500", "0.5")
    trailing = c.futures_create_algo_order(symbol="ETHUSDT", side="SELL",
                                           type="TRAILING_STOP_MARKET", quantity="0.5",
                                           callbackRate="1.5", activatePrice="2100")
    assert (trailing["activatePrice"], trailing["callbackRate"]) == ("2100", "1.5")
    got = c.futures_get_order(symbol="ETHUSDT", algoId=placed["algoId"])
    assert (got["algoStatus"], got["actualOrderId"]) == ("NEW", "")
    opened = c.futures_get_open_algo_orders(symbol="ETHUSDT")
    assert [o["algoId"] for o in opened] == [placed["algoId"], trailing["algoId"]]
    assert c.futures_cancel_order(symbol="ETHUSDT", algoId=placed["algoId"])["code"] == "200"
    assert c.futures_cancel_all_algo_open_orders(symbol="ETHUSDT") == \
        {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert c.futures_get_open_algo_orders(symbol="ETHUSDT") == []
    assert [o["algoStatus"] for o in c.futures_get_all_algo_orders(symbol="ETHUSDT")] == \
        ["CANCELED", "CANCELED"]


def test_every_algo_endpoint_and_its_codes(server):
    server.set_mark("SOLUSDT", "100")
    k, maker = server.newkey("10000"), server.newkey("1000000")
    p = {"algoType": "CONDITIONAL", "symbol": "SOLUSDT", "side": "SELL", "type": "STOP",
         "quantity": "1", "price": "95", "triggerPrice": "98", "clientAlgoId": "my-stop",
         "workingType": "MARK_PRICE"}
    status, stop = call(server, k, "POST", "/fapi/v1/algoOrder", **p)
    assert status == 200
    assert list(stop) == [
        "algoId", "clientAlgoId", "algoType", "orderType", "symbol", "side", "positionSide",
        "timeInForce", "quantity", "algoStatus", "triggerPrice", "price", "icebergQuantity",
        "selfTradePreventionMode", "workingType", "priceMatch", "closePosition",
        "priceProtect", "reduceOnly", "activatePrice", "callbackRate", "createTime",
        "updateTime", "triggerTime", "goodTillDate"]
    assert (stop["clientAlgoId"], stop["orderType"], stop["price"], stop["triggerPrice"],
            stop["timeInForce"], stop["algoStatus"], stop["workingType"]) == \
        ("my-stop", "STOP", "95", "98", "GTC", "NEW", "MARK_PRICE")
    # by id and by client id; the query shape adds the order it placed (none yet)
    for ref in ({"algoId": stop["algoId"]}, {"clientAlgoId": "my-stop"}):
        status, got = call(server, k, "GET", "/fapi/v1/algoOrder", **ref)
        assert status == 200 and got["algoId"] == stop["algoId"]
        assert (got["actualOrderId"], got["actualPrice"]) == ("", "0")
    # trailing stop: activatePrice and callbackRate
    status, trail = call(server, k, "POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL",
                         symbol="SOLUSDT", side="SELL", type="TRAILING_STOP_MARKET",
                         quantity="1", activatePrice="105", callbackRate="2",
                         workingType="MARK_PRICE")
    assert status == 200 and (trail["activatePrice"], trail["callbackRate"],
                              trail["triggerPrice"]) == ("105", "2", "0")
    status, opened = call(server, k, "GET", "/fapi/v1/openAlgoOrders")
    assert [o["algoId"] for o in opened] == [stop["algoId"], trail["algoId"]]
    assert call(server, k, "GET", "/fapi/v1/openAlgoOrders", symbol="ETHUSDT")[1] == []
    # Binance's codes
    cases = [
        ({**p, "algoType": None}, err(-1102, "Mandatory parameter 'algoType' was not sent, "
                                             "was empty/null, or malformed.")),
        ({**p, "algoType": "VP"}, err(-1130, "Data sent for parameter 'algoType' is not "
                                             "valid.")),
        ({**p, "type": "LIMIT"}, err(-1116, "Invalid orderType.")),
        ({**p, "clientAlgoId": "my-stop"}, err(-4116, "ClientOrderId is duplicated.")),
        ({**p, "clientAlgoId": "bad*id"}, err(-4015, "Client order id is not valid.")),
        ({**p, "clientAlgoId": None, "triggerPrice": "101"},
         err(-2021, "Order would immediately trigger.")),
        ({**p, "clientAlgoId": None, "triggerPrice": None},
         err(-1102, "Mandatory parameter 'triggerPrice' was not sent, was empty/null, or "
                    "malformed.")),
        ({**p, "clientAlgoId": None, "stopPrice": "98"},
         err(-1106, "Parameter 'stopPrice' sent when not required.")),
        ({**p, "clientAlgoId": None, "workingType": "INDEX_PRICE"},
         err(-4031, "Invalid parameter working type: INDEX_PRICE")),
        ({**p, "clientAlgoId": None, "positionSide": "UP"}, err(-4060, "Invalid position "
                                                                       "side.")),
        ({**p, "clientAlgoId": None, "positionSide": "LONG"},
         err(-4061, "Order's position side does not match user's setting.")),
        ({**p, "clientAlgoId": None, "triggerPrice": "98.00005"},
         err(-4014, "Price not increased by tick size.")),
        ({**p, "clientAlgoId": None, "type": "STOP_MARKET", "price": None,
          "closePosition": "true"},
         err(-4137, "Quantity must be zero with closePosition equals true")),
        ({**p, "clientAlgoId": None, "type": "STOP_MARKET", "price": None, "quantity": None,
          "closePosition": "true", "reduceOnly": "false"},
         err(-4138, "Reduce only must be true with closePosition equals true")),
        ({**p, "clientAlgoId": None, "type": "STOP_MARKET", "price": None, "quantity": None,
          "closePosition": "true"},
         err(-4509, "Time in Force (TIF) GTE can only be used with open positions. Please "
                    "ensure that positions are available.")),
        ({**p, "clientAlgoId": None, "type": "TRAILING_STOP_MARKET", "price": None,
          "triggerPrice": None, "callbackRate": "0.05"},
         err(-1130, "Data sent for parameter 'callbackRate' is not valid.")),
        ({**p, "clientAlgoId": None, "type": "TRAILING_STOP_MARKET", "price": None,
          "triggerPrice": None, "callbackRate": "1", "activatePrice": "99"},
         err(-2021, "Order would immediately trigger.")),
        ({**p, "clientAlgoId": None, "type": "STOP_MARKET", "price": None,
          "priceMatch": "OPPONENT"},
         err(-5038, "Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT")),
        ({**p, "clientAlgoId": None, "priceMatch": "QUEUE_7"}, err(-5037, "Invalid price "
                                                                          "match")),
        ({**p, "clientAlgoId": None, "selfTradePreventionMode": "EXPIRE_ALL"},
         err(-5039, "Invalid self trade prevention mode")),
        ({**p, "clientAlgoId": None, "symbol": "BTCUSD_PERP"}, err(-1121, "Invalid symbol.")),
    ]
    for params, expected in cases:
        params = {a: b for a, b in params.items() if b is not None}
        assert call(server, k, "POST", "/fapi/v1/algoOrder", **params) == expected, params
    # and an ordinary order of a conditional type: Binance's -4120
    assert call(server, k, "POST", "/fapi/v1/order", symbol="SOLUSDT", side="SELL",
                type="STOP_MARKET", quantity="1", stopPrice="98") == \
        err(-4120, "Order type not supported for this endpoint. Please use the Algo Order API "
                   "endpoints instead.")
    # closePosition: one per direction (-4130)
    call(server, maker, "POST", "/fapi/v1/order", symbol="SOLUSDT", side="SELL", type="LIMIT",
         quantity="2", price="100", timeInForce="GTC")
    call(server, k, "POST", "/fapi/v1/order", symbol="SOLUSDT", side="BUY", type="MARKET",
         quantity="2")
    close = {"algoType": "CONDITIONAL", "symbol": "SOLUSDT", "side": "SELL",
             "type": "STOP_MARKET", "triggerPrice": "90", "closePosition": "true"}
    status, first = call(server, k, "POST", "/fapi/v1/algoOrder", **close)
    assert status == 200 and (first["closePosition"], first["quantity"]) == (True, "0")
    assert call(server, k, "POST", "/fapi/v1/algoOrder", **close) == err(
        -4130, "An open stop or take profit order with GTE and closePosition in the direction "
               "is existing.")
    # unknown ids; cancel by client id; cancel all
    assert call(server, k, "GET", "/fapi/v1/algoOrder", algoId="999999") == \
        err(-2013, "Order does not exist.")
    assert call(server, k, "GET", "/fapi/v1/algoOrder") == \
        err(-1102, "Param 'algoId' or 'clientAlgoId' must be sent, but both were empty/null!")
    assert call(server, k, "DELETE", "/fapi/v1/algoOrder", algoId="999999") == \
        err(-2011, "Unknown order sent.")
    other = server.newkey("1000")  # another account's algo id is unknown to this key
    assert call(server, other, "GET", "/fapi/v1/algoOrder", algoId=str(stop["algoId"])) == \
        err(-2013, "Order does not exist.")
    assert call(server, other, "DELETE", "/fapi/v1/algoOrder",
                algoId=str(stop["algoId"])) == err(-2011, "Unknown order sent.")
    assert call(server, k, "DELETE", "/fapi/v1/algoOrder", clientAlgoId="my-stop") == \
        (200, {"algoId": stop["algoId"], "clientAlgoId": "my-stop", "code": "200",
               "msg": "success"})
    assert call(server, k, "DELETE", "/fapi/v1/algoOpenOrders", symbol="SOLUSDT") == \
        (200, {"code": 200, "msg": "The operation of cancel all open order is done."})
    assert call(server, k, "GET", "/fapi/v1/openAlgoOrders")[1] == []
    status, every = call(server, k, "GET", "/fapi/v1/allAlgoOrders", symbol="SOLUSDT")
    assert [(a["algoId"], a["algoStatus"]) for a in every] == [
        (stop["algoId"], "CANCELED"), (trail["algoId"], "CANCELED"),
        (first["algoId"], "CANCELED")]
    assert call(server, k, "GET", "/fapi/v1/allAlgoOrders", symbol="SOLUSDT",
                algoId=str(trail["algoId"]), limit="1")[1][0]["algoId"] == trail["algoId"]
    assert call(server, k, "GET", "/fapi/v1/allAlgoOrders")[1]["code"] == -1102
    # the per-symbol limit of open conditional orders (catalogue maxNumAlgoOrders, 100): -4045
    many = {"algoType": "CONDITIONAL", "symbol": "XRPUSDT", "side": "BUY",
            "type": "STOP_MARKET", "quantity": "10", "workingType": "MARK_PRICE"}
    server.set_mark("XRPUSDT", "0.5")
    for i in range(100):
        status, body = call(server, k, "POST", "/fapi/v1/algoOrder", **many,
                            triggerPrice=f"{0.6 + i / 1000:.4f}")
        assert status == 200, body
    assert call(server, k, "POST", "/fapi/v1/algoOrder", **many, triggerPrice="0.9") == \
        err(-4045, "Reach max stop order limit.")
    call(server, k, "DELETE", "/fapi/v1/algoOpenOrders", symbol="XRPUSDT")


async def test_the_user_stream_follows_a_conditional_order(server):
    """ALGO_UPDATE NEW, TRIGGERING, TRIGGERED (with the order it placed), that order's
    ORDER_TRADE_UPDATE (its conditional type in `ot`), FINISHED; REJECTED with the reason and
    CONDITIONAL_ORDER_TRIGGER_REJECT when the triggered order fails its checks."""
    await server.admin_request("setMarkPrice", symbol="LINKUSDT", markPrice="10")
    k, maker = server.newkey("10000"), server.newkey("1000000")
    a, m = Rest(server, k), Rest(server, maker)
    try:
        lk = (await a.call("POST", "/fapi/v1/listenKey"))["listenKey"]
        async with a.session.ws_connect(f"{server.ws_url}/private/ws?listenKey={lk}") as ws:
            await m.call("POST", "/fapi/v1/order", symbol="LINKUSDT", side="SELL",
                         type="LIMIT", quantity="100", price="10.5", timeInForce="GTC")
            algo = await a.call("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL",
                                symbol="LINKUSDT", side="BUY", type="STOP_MARKET",
                                quantity="10", triggerPrice="10.4", workingType="MARK_PRICE")
            # one that fails its checks when it fires (no margin is checked before): a
            # reduce-only buy, which the first one's long position leaves nothing to reduce
            bad = await a.call("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL",
                               symbol="LINKUSDT", side="BUY", type="STOP_MARKET",
                               quantity="10", triggerPrice="10.42", reduceOnly="true",
                               workingType="MARK_PRICE")
            await server.admin_request("setMarkPrice", symbol="LINKUSDT", markPrice="10.45")
            seen = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                msg = await ws.receive_json(timeout=5)
                if msg["e"] == "ALGO_UPDATE":
                    seen.append(("ALGO", msg["o"]["aid"], msg["o"]["X"]))
                elif msg["e"] == "ORDER_TRADE_UPDATE":
                    o = msg["o"]
                    seen.append(("ORDER", o["o"], o["ot"], o["X"], o["sp"], o["wt"]))
                    if o["X"] == "FILLED":
                        actual = o["i"]
                elif msg["e"] == "CONDITIONAL_ORDER_TRIGGER_REJECT":
                    seen.append(("REJECT", msg["or"]["i"], msg["or"]["r"]))
                    break
            assert seen[:2] == [("ALGO", algo["algoId"], "NEW"), ("ALGO", bad["algoId"], "NEW")]
            assert seen[2:8] == [
                ("ALGO", algo["algoId"], "TRIGGERING"), ("ALGO", algo["algoId"], "TRIGGERED"),
                ("ORDER", "MARKET", "STOP_MARKET", "NEW", "10.4", "MARK_PRICE"),
                ("ORDER", "MARKET", "STOP_MARKET", "FILLED", "10.4", "MARK_PRICE"),
                ("ALGO", algo["algoId"], "FINISHED"),
                ("ALGO", bad["algoId"], "REJECTED")]
            assert seen[8] == ("REJECT", bad["algoId"], "ReduceOnly Order is rejected.")
        got = await a.call("GET", "/fapi/v1/algoOrder", algoId=str(algo["algoId"]))
        assert (got["algoStatus"], got["actualOrderId"]) == ("FINISHED", str(actual))
        got = await a.call("GET", "/fapi/v1/algoOrder", algoId=str(bad["algoId"]))
        assert (got["algoStatus"], got["actualOrderId"]) == ("REJECTED", "")
    finally:
        await a.close()
        await m.close()


def test_gtd_price_match_and_self_trade_prevention(server):
    server.set_mark("BNBUSDT", "300")
    k = server.newkey("100000")
    base = {"symbol": "BNBUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1",
            "price": "290"}
    now = int(time.time() * 1000)
    status, gtd = call(server, k, "POST", "/fapi/v1/order", **base, timeInForce="GTD",
                       goodTillDate=str(now + 3_600_000 + 123))
    assert status == 200
    assert (gtd["timeInForce"], gtd["goodTillDate"]) == \
        ("GTD", (now + 3_600_123) // 1000 * 1000)  # kept to the second, as Binance does
    assert call(server, k, "POST", "/fapi/v1/order", **base, timeInForce="GTD") == \
        err(-1102, "Mandatory parameter 'goodTillDate' was not sent, was empty/null, or "
                   "malformed.")
    assert call(server, k, "POST", "/fapi/v1/order", **base, timeInForce="GTD",
                goodTillDate=str(now + 60_000)) == \
        err(-5040, "The goodTillDate timestamp must be greater than the current time plus 600 "
                   "seconds and smaller than 253402300799000 (UTC 9999-12-31 23:59:59)")
    assert call(server, k, "POST", "/fapi/v1/order", **base, timeInForce="GTC",
                goodTillDate=str(now + 3_600_000)) == \
        err(-1106, "Parameter 'goodTillDate' sent when not required.")
    # priceMatch: the n-th price of the book, instead of `price`
    for i in range(3):
        call(server, k, "POST", "/fapi/v1/order", symbol="BNBUSDT", side="SELL", type="LIMIT",
             quantity="1", price=str(301 + i), timeInForce="GTC")
    no_price = {a: b for a, b in base.items() if a != "price"}
    status, queue = call(server, k, "POST", "/fapi/v1/order", **no_price, timeInForce="GTC",
                         priceMatch="QUEUE")  # the best bid: the GTD order's 290
    assert (status, queue["price"], queue["priceMatch"]) == (200, "290", "QUEUE")
    assert call(server, k, "GET", "/fapi/v1/order", symbol="BNBUSDT",
                orderId=str(queue["orderId"]))[1]["priceMatch"] == "QUEUE"
    status, opp = call(server, k, "POST", "/fapi/v1/order", **no_price, timeInForce="GTX",
                       priceMatch="OPPONENT_5")
    assert status == 400 and opp["code"] == -5041  # three asks only
    assert call(server, k, "POST", "/fapi/v1/order", **base, timeInForce="GTC",
                priceMatch="OPPONENT") == err(-1106, "Parameter 'price' sent when not required.")
    assert call(server, k, "POST", "/fapi/v1/order", symbol="BNBUSDT", side="BUY",
                type="MARKET", quantity="1", priceMatch="OPPONENT") == \
        err(-5038, "Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT")
    assert call(server, k, "POST", "/fapi/v1/order", **base, timeInForce="GTC",
                priceMatch="BEST") == err(-5037, "Invalid price match")
    # self-trade prevention: the taker's mode decides
    assert call(server, k, "POST", "/fapi/v1/order", **base, timeInForce="GTC",
                selfTradePreventionMode="EXPIRE_ALL") == \
        err(-5039, "Invalid self trade prevention mode")
    status, taker = call(server, k, "POST", "/fapi/v1/order", symbol="BNBUSDT", side="BUY",
                         type="LIMIT", quantity="1", price="301", timeInForce="GTC",
                         selfTradePreventionMode="EXPIRE_TAKER", newOrderRespType="RESULT")
    assert (status, taker["status"], taker["selfTradePreventionMode"]) == \
        (200, "EXPIRED_IN_MATCH", "EXPIRE_TAKER")
    assert call(server, k, "POST", "/fapi/v1/order", **base, timeInForce="GTC",
                newOrderRespType="FULL") == err(-1136, "Invalid newOrderRespType.")
