"""Hedge mode and Multi-Assets mode through Binance's API on a real server: ccxt's
set_position_mode / hedged orders / positions per leg, python-binance's position-mode calls,
positionRisk and account rows per leg, the switch codes (-4059, -4061, -4067, -4068, -1106
reduceonly); multiAssetsMargin, the switch codes (-4167, -4168, -4170, -4171), assets[] per
asset in account and balance, exchangeInfo's assets, assetIndex; and the user stream's rows
per leg and per asset."""
from __future__ import annotations

import ccxt
import pytest
from binance.client import Client as BinanceClient
from binance.exceptions import BinanceAPIException

from tests.api_harness import ApiServerProcess
from tests.test_api import call, ccxt_sync, err, http
from tests.test_api_streams import Rest

S = "BTC/USDT:USDT"
E = "ETH/USDT:USDT"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ApiServerProcess(tmp_path_factory.mktemp("hedge"))
    s.set_mark("BTCUSDT", "30000")
    s.set_mark("ETHUSDT", "2000")
    yield s
    assert s.stop() == 0


def test_hedge_mode_round_trip_through_ccxt(server):
    k, maker = server.newkey("10000"), server.newkey("1000000")
    ex, mm = ccxt_sync(server, k), ccxt_sync(server, maker)
    ex.load_markets()
    mm.load_markets()
    assert ex.fetch_position_mode(S)["hedged"] is False
    assert ex.set_position_mode(True) == {"code": 200, "msg": "success"}
    assert ex.fetch_position_mode(S) == {"info": {"dualSidePosition": True}, "hedged": True}
    with pytest.raises(ccxt.OperationRejected, match="-4059"):
        ex.set_position_mode(True)
    assert call(server, k, "GET", "/fapi/v1/accountConfig")[1]["dualSidePosition"] is True
    mm.create_order(S, "limit", "sell", 0.03, 30000)
    mm.create_order(S, "limit", "buy", 0.03, 29990)
    # a long and a short leg at once (ccxt's `hedged` sets positionSide)
    long_ = ex.create_order(S, "market", "buy", 0.02, None, {"hedged": True})
    short = ex.create_order(S, "market", "sell", 0.01, None, {"hedged": True})
    assert (long_["info"]["positionSide"], short["info"]["positionSide"]) == ("LONG", "SHORT")
    positions = sorted((p["side"], p["contracts"], p["entryPrice"], p["hedged"])
                       for p in ex.fetch_positions([S]))
    assert positions == [("long", 0.02, 30000.0, True), ("short", 0.01, 29990.0, True)]
    v3 = call(server, k, "GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")[1]
    assert [(r["positionSide"], r["positionAmt"], r["notional"]) for r in v3] == \
        [("LONG", "0.02", "600"), ("SHORT", "-0.01", "-300")]
    v2 = call(server, k, "GET", "/fapi/v2/positionRisk")[1]
    assert len(v2) == 2 * 128  # every symbol, a row per leg
    assert [(r["positionSide"], r["leverage"]) for r in v2 if r["symbol"] == "BTCUSDT"] == \
        [("LONG", "20"), ("SHORT", "20")]  # both legs share the symbol's leverage
    account = call(server, k, "GET", "/fapi/v3/account")[1]
    assert [(p["positionSide"], p["positionAmt"]) for p in account["positions"]] == \
        [("LONG", "0.02"), ("SHORT", "-0.01")]
    assert call(server, k, "GET", "/fapi/v1/adlQuantile")[1] == \
        [{"symbol": "BTCUSDT", "adlQuantile": {"LONG": 2, "SHORT": 2, "HEDGE": 0}}]
    # hedge mode's order rules
    plain = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
    assert call(server, k, "POST", "/fapi/v1/order", **plain) == \
        err(-4061, "Order's position side does not match user's setting.")
    assert call(server, k, "POST", "/fapi/v1/order", **plain, positionSide="BOTH") == \
        err(-4061, "Order's position side does not match user's setting.")
    assert call(server, k, "POST", "/fapi/v1/order", **plain, positionSide="LONG",
                reduceOnly="false") == err(-1106, "Parameter 'reduceonly' sent when not "
                                                  "required.")
    assert call(server, k, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY",
                type="MARKET", quantity="0.02", positionSide="SHORT") == \
        err(-2022, "ReduceOnly Order is rejected.")  # a close larger than its leg
    # a stop-loss per leg (closePosition), and the switch refused while anything is open
    sl = ex.create_order(S, "market", "sell", None, None,
                         {"stopLossPrice": 25000, "closePosition": True, "positionSide": "LONG",
                          "workingType": "MARK_PRICE"})
    assert (sl["info"]["positionSide"], sl["info"]["closePosition"]) == ("LONG", True)
    with pytest.raises(ccxt.ExchangeError, match="-4068"):
        ex.set_position_mode(False)
    # close both legs (ccxt: hedged + reduceOnly turns into the closing side's positionSide)
    ex.create_order(S, "market", "sell", 0.02, None, {"hedged": True, "reduceOnly": True})
    ex.create_order(S, "market", "buy", 0.01, None, {"hedged": True, "reduceOnly": True})
    assert ex.fetch_positions([S]) == []
    # the LONG leg's closePosition stop expired with its position
    assert ex.fetch_order(sl["id"], S, {"trigger": True})["status"] == "expired"
    # an open order (a conditional one too) still blocks the switch: -4067
    algo = ex.create_order(S, "market", "buy", 0.01, None,
                           {"triggerPrice": 35000, "positionSide": "LONG"})
    with pytest.raises(ccxt.ExchangeError, match="-4067"):
        ex.set_position_mode(False)
    ex.cancel_order(algo["id"], S, {"trigger": True})
    assert ex.set_position_mode(False) == {"code": 200, "msg": "success"}
    assert call(server, k, "POST", "/fapi/v1/order", **plain, positionSide="LONG") == \
        err(-4061, "Order's position side does not match user's setting.")
    assert call(server, k, "POST", "/fapi/v1/order", **plain, positionSide="UP") == \
        err(-4060, "Invalid position side.")


def test_python_binance_position_mode_and_legs(server):
    k, maker = server.newkey("10000"), server.newkey("1000000")

    class LocalClient(BinanceClient):
        API_URL = server.url + "/api"
        FUTURES_URL = server.url + "/fapi"

    c, m = LocalClient(k["apiKey"], k["secret"]), LocalClient(maker["apiKey"], maker["secret"])
    assert c.futures_get_position_mode() == {"dualSidePosition": False}
    assert c.futures_change_position_mode(dualSidePosition="true") == \
        {"code": 200, "msg": "success"}
    assert c.futures_get_position_mode() == {"dualSidePosition": True}
    m.futures_create_order(symbol="ETHUSDT", side="SELL", type="LIMIT", quantity="1",
                           price="2000", timeInForce="GTC")
    o = c.futures_create_order(symbol="ETHUSDT", side="BUY", positionSide="LONG", type="MARKET",
                               quantity="1", newOrderRespType="RESULT")
    assert (o["status"], o["positionSide"]) == ("FILLED", "LONG")
    rows = c.futures_position_information(symbol="ETHUSDT")
    assert [(r["positionSide"], r["positionAmt"]) for r in rows] == [("LONG", "1")]
    with pytest.raises(BinanceAPIException) as e:  # a position exists
        c.futures_change_margin_type(symbol="ETHUSDT", marginType="ISOLATED")
    assert (e.value.code, e.value.message) == \
        (-4048, "Margin type cannot be changed if there exists position.")
    with pytest.raises(BinanceAPIException) as e:
        c.futures_change_position_mode(dualSidePosition="false")
    assert e.value.code == -4068
    trades = c.futures_account_trades(symbol="ETHUSDT")
    assert [(t["positionSide"], t["side"], t["qty"]) for t in trades] == [("LONG", "BUY", "1")]


def test_multi_assets_mode_through_the_api(server):
    server.admin_sync("setIndexPrices", prices={"BTCUSD": "30000", "ETHUSD": "2000"})
    k = server.newkey("1000")
    server.admin_sync("deposit", account=k["account"], amount="0.5", asset="BTC")
    info = http(server, "GET", "/fapi/v1/exchangeInfo")[2]
    assets = {a["asset"]: a for a in info["assets"]}
    assert assets["BTC"] == {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "0"}
    assert assets["USDT"]["marginAvailable"] is True
    # Single-Asset mode: each asset its own row; the totals are USDT's
    account = call(server, k, "GET", "/fapi/v2/account")[1]
    assert account["multiAssetsMargin"] is False
    rows = {a["asset"]: a for a in account["assets"]}
    assert (rows["USDT"]["walletBalance"], rows["BTC"]["walletBalance"]) == ("1000", "0.5")
    assert set(rows) == {"USDT", "BTC"} and rows["BTC"]["updateTime"] > 0
    assert account["totalWalletBalance"] == "1000"
    balances = {b["asset"]: b["balance"] for b in call(server, k, "GET", "/fapi/v3/balance")[1]}
    assert (balances["USDT"], balances["BTC"]) == ("1000", "0.5")
    ex = ccxt_sync(server, k)
    assert ex.fetch_balance()["BTC"]["total"] == 0.5
    # the switch and its codes
    assert call(server, k, "GET", "/fapi/v1/multiAssetsMargin") == \
        (200, {"multiAssetsMargin": False})
    assert call(server, k, "POST", "/fapi/v1/multiAssetsMargin", multiAssetsMargin="false") == \
        err(-4171, "Adjusted asset mode is currently set and does not need to be adjusted "
                   "repeatedly.")
    call(server, k, "POST", "/fapi/v1/marginType", symbol="BNBUSDT", marginType="ISOLATED")
    assert call(server, k, "POST", "/fapi/v1/multiAssetsMargin", multiAssetsMargin="true") == \
        err(-4167, "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures under "
                   "isolated-margin mode.")
    call(server, k, "POST", "/fapi/v1/marginType", symbol="BNBUSDT", marginType="CROSSED")
    status, placed = call(server, k, "POST", "/fapi/v1/order", symbol="ETHUSDT", side="BUY",
                          type="LIMIT", quantity="0.1", price="1900", timeInForce="GTC")
    assert call(server, k, "POST", "/fapi/v1/multiAssetsMargin", multiAssetsMargin="true") == \
        err(-4170, "Unable to adjust Multi-Assets Mode with open orders in USDⓈ-M Futures.")
    call(server, k, "DELETE", "/fapi/v1/order", symbol="ETHUSDT", orderId=placed["orderId"])
    assert call(server, k, "POST", "/fapi/v1/multiAssetsMargin", multiAssetsMargin="true") == \
        (200, {"code": 200, "msg": "success"})
    assert call(server, k, "GET", "/fapi/v1/multiAssetsMargin")[1] == {"multiAssetsMargin": True}
    assert call(server, k, "GET", "/fapi/v1/accountConfig")[1]["multiAssetsMargin"] is True
    assert call(server, k, "POST", "/fapi/v1/marginType", symbol="BNBUSDT",
                marginType="ISOLATED") == \
        err(-4168, "Unable to adjust to isolated-margin mode under the Multi-Assets mode.")
    # the pool in USD: 1000 USDT at 99.99 % and 0.5 BTC at 30,000 x 95 %
    account = call(server, k, "GET", "/fapi/v3/account")[1]
    assert account["totalMarginBalance"] == "15249.9"
    assert account["availableBalance"] == "15249.9"
    assert {a["asset"]: a["availableBalance"] for a in account["assets"]}["BTC"] == "15249.9"
    # BTC collateral carries a USDT position the USDT wallet alone could not
    maker = server.newkey("1000000")
    call(server, maker, "POST", "/fapi/v1/order", symbol="ETHUSDT", side="SELL", type="LIMIT",
         quantity="50", price="2000", timeInForce="GTC")
    status, big = call(server, k, "POST", "/fapi/v1/order", symbol="ETHUSDT", side="BUY",
                       type="MARKET", quantity="50", newOrderRespType="RESULT")
    assert (status, big["status"]) == (200, "FILLED")  # 100,000 at 20x: 5,000 of margin
    account = call(server, k, "GET", "/fapi/v3/account")[1]
    assert account["totalInitialMargin"] == "5000"
    assert account["totalPositionInitialMargin"] == "5000"
    # the asset index
    row = http(server, "GET", "/fapi/v1/assetIndex", {"symbol": "BTCUSD"})[2]
    assert row.pop("time") > 0
    assert row == {"symbol": "BTCUSD", "index": "30000", "bidBuffer": "0.05", "askBuffer": "0",
                   "bidRate": "28500", "askRate": "30000"}
    every = http(server, "GET", "/fapi/v1/assetIndex")[2]
    assert {r["symbol"] for r in every} >= {"BTCUSD", "ETHUSD"}
    assert http(server, "GET", "/fapi/v1/assetIndex", {"symbol": "DOGEUSD"})[2] == \
        {"code": -1121, "msg": "Invalid symbol."}


async def test_the_user_stream_per_leg_and_per_asset(server):
    k, maker = server.newkey("10000"), server.newkey("1000000")
    a, m = Rest(server, k), Rest(server, maker)
    try:
        lk = (await a.call("POST", "/fapi/v1/listenKey"))["listenKey"]
        async with a.session.ws_connect(f"{server.ws_url}/ws/{lk}") as ws:
            await a.call("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true")
            await m.call("POST", "/fapi/v1/order", symbol="ETHUSDT", side="SELL",
                         type="LIMIT", quantity="1", price="2000", timeInForce="GTC")
            await a.call("POST", "/fapi/v1/order", symbol="ETHUSDT", side="BUY",
                         positionSide="LONG", type="MARKET", quantity="1")
            await server.admin_request("deposit", account=k["account"], amount="0.1",
                                       asset="BTC")
            await a.call("POST", "/fapi/v1/multiAssetsMargin", multiAssetsMargin="true")
            got = {}
            while len(got) < 4:
                msg = await ws.receive_json(timeout=5)
                if msg["e"] == "ORDER_TRADE_UPDATE" and msg["o"]["X"] == "FILLED":
                    got["fill"] = msg["o"]
                elif msg["e"] == "ACCOUNT_UPDATE":
                    got[msg["a"]["m"]] = msg["a"]
                elif msg["e"] == "ACCOUNT_CONFIG_UPDATE":
                    got["config"] = msg
            assert (got["fill"]["ps"], got["fill"]["N"]) == ("LONG", "USDT")
            assert [(p["s"], p["ps"], p["pa"]) for p in got["ORDER"]["P"]] == \
                [("ETHUSDT", "LONG", "1")]
            assert [b["a"] for b in got["ORDER"]["B"]] == ["USDT"]
            assert got["DEPOSIT"]["B"] == [{"a": "BTC", "wb": "0.1", "cw": "0.1", "bc": "0.1"}]
            assert got["config"]["ai"] == {"j": True}
    finally:
        await a.close()
        await m.close()
