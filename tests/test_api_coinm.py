"""COIN-M (/dapi, /dstream) end to end on a real server: ccxt `binancecoinm` (markets, book,
trades, OHLCV, ticker, funding, leverage and its tiers, orders, fills, balance, positions, a
stop-loss through /dapi/v1/algoOrder), ccxt.pro `binancecoinm` (order book and orders over
/dstream), python-binance's futures_coin_* calls and its COIN-M user socket; each product's
symbols its own (-1121 across), quantities in contracts, amounts in the coin; a /dapi listen
key carries the COIN-M user data only."""
from __future__ import annotations

import asyncio

import ccxt
import ccxt.pro as ccxtpro
import pytest
from binance.async_client import AsyncClient
from binance.client import Client as BinanceClient
from binance.exceptions import BinanceAPIException
from binance.ws.streams import BinanceSocketManager

from tests.api_harness import ApiServerProcess
from tests.test_api import http
from tests.test_api_streams import Rest

C = "BTC/USD:BTC"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ApiServerProcess(tmp_path_factory.mktemp("coinm"))
    s.set_mark("BTCUSDT", "30000")
    s.set_mark("BTCUSD_PERP", "30000")
    s.set_mark("ETHUSD_PERP", "2000")
    yield s
    assert s.stop() == 0


def coin_key(server, btc: str = "1") -> dict:
    k = server.newkey("0")
    server.admin_sync("deposit", account=k["account"], amount=btc, asset="BTC")
    return k


def urls(server) -> dict:
    L = server.url
    return {"api": {"dapiPublic": L + "/dapi/v1", "dapiPrivate": L + "/dapi/v1",
                    "dapiPrivateV2": L + "/dapi/v2", "dapiData": L + "/futures/data",
                    "sapi": L + "/sapi/v1", "public": L + "/api/v3", "private": L + "/api/v3"}}


def coinm(server, key):
    return ccxt.binancecoinm({"apiKey": key["apiKey"], "secret": key["secret"],
                              "urls": urls(server)})


def test_each_product_knows_its_own_symbols(server):
    info = http(server, "GET", "/dapi/v1/exchangeInfo")[2]
    btc = {s["symbol"]: s for s in info["symbols"]}["BTCUSD_PERP"]
    assert (btc["pair"], btc["contractType"], btc["contractStatus"], btc["contractSize"],
            btc["marginAsset"], btc["baseAsset"], btc["quoteAsset"], btc["quantityPrecision"]) \
        == ("BTCUSD", "PERPETUAL", "TRADING", 100, "BTC", "BTC", "USD", 0)
    assert "MIN_NOTIONAL" not in [f["filterType"] for f in btc["filters"]]
    fapi = {s["symbol"] for s in http(server, "GET", "/fapi/v1/exchangeInfo")[2]["symbols"]}
    assert "BTCUSD_PERP" not in fapi and "BTCUSDT" in fapi
    invalid = {"code": -1121, "msg": "Invalid symbol."}
    assert http(server, "GET", "/fapi/v1/depth", {"symbol": "BTCUSD_PERP"})[2] == invalid
    assert http(server, "GET", "/dapi/v1/depth", {"symbol": "BTCUSDT"})[2] == invalid
    assert {t["symbol"] for t in http(server, "GET", "/dapi/v1/ticker/price")[2]} == \
        {"BTCUSD_PERP", "ETHUSD_PERP"}
    # /dapi's tickers are lists, by symbol or by pair
    for params in ({"symbol": "BTCUSD_PERP"}, {"pair": "BTCUSD"}):
        rows = http(server, "GET", "/dapi/v1/ticker/bookTicker", params)[2]
        assert [(r["symbol"], r["pair"]) for r in rows] == [("BTCUSD_PERP", "BTCUSD")]
    assert isinstance(http(server, "GET", "/fapi/v1/ticker/price", {"symbol": "BTCUSDT"})[2],
                      dict)
    assert all(r["symbol"] != "BTCUSD_PERP"
               for r in http(server, "GET", "/fapi/v1/premiumIndex")[2])
    k = coin_key(server)
    status, _, body = http(server, "POST", "/fapi/v1/order", {
        "symbol": "BTCUSD_PERP", "side": "BUY", "type": "MARKET", "quantity": "1"}, key=k)
    assert (status, body) == (400, invalid)
    premium = http(server, "GET", "/dapi/v1/premiumIndex", {"symbol": "BTCUSD_PERP"})[2]
    assert [(r["symbol"], r["pair"], r["markPrice"]) for r in premium] == \
        [("BTCUSD_PERP", "BTCUSD", "30000")]


def test_ccxt_binancecoinm(server):
    server.set_mark("BTCUSD_PERP", "30000")
    k, maker = coin_key(server, "1"), coin_key(server, "10")
    ex, mm = coinm(server, k), coinm(server, maker)
    markets = ex.load_markets()
    mm.load_markets()
    assert sorted(markets) == ["BTC/USD:BTC", "ETH/USD:ETH"]
    m = markets[C]
    assert (m["inverse"], m["contractSize"], m["settle"], m["precision"]["amount"]) == \
        (True, 100.0, "BTC", 1.0)
    assert ex.set_leverage(20, C) == {"leverage": 20, "maxQty": "50", "symbol": "BTCUSD_PERP"}
    tiers = ex.fetch_leverage_tiers([C])[C]
    assert (tiers[0]["maxLeverage"], tiers[0]["maxNotional"], tiers[0]["currency"]) == \
        (125, 5.0, "USD")
    rest = mm.create_order(C, "limit", "sell", 10, 30000)
    assert (rest["status"], rest["amount"], rest["price"]) == ("open", 10.0, 30000.0)
    bought = ex.create_order(C, "market", "buy", 6)
    # 6 contracts of 100 USD at 30,000: 0.02 BTC
    assert (bought["status"], bought["filled"], bought["average"], bought["cost"]) == \
        ("closed", 6.0, 30000.0, 0.02)
    assert bought["info"]["cumBase"] == "0.02" and bought["info"]["pair"] == "BTCUSD"
    assert ex.fetch_order(bought["id"], C)["status"] == "closed"
    assert mm.fetch_order(rest["id"], C)["filled"] == 6.0
    assert [o["id"] for o in mm.fetch_open_orders(C)] == [rest["id"]]
    book = ex.fetch_order_book(C)
    assert book["asks"] == [[30000.0, 4.0]]
    trades = ex.fetch_my_trades(C)
    assert [(t["amount"], t["price"], t["info"]["baseQty"], t["fee"]["currency"]) for t in
            trades] == [(6.0, 30000.0, "0.02", "BTC")]
    assert trades[0]["fee"]["cost"] == pytest.approx(0.02 * 0.0005)
    assert ex.fetch_ohlcv(C, "1m")[-1][1:] == [30000.0] * 4 + [0.02]  # volume in the coin
    ticker = ex.fetch_ticker(C)
    assert (ticker["last"], ticker["info"]["volume"], ticker["info"]["baseVolume"]) == \
        (30000.0, "6", "0.02")
    assert ex.fetch_funding_rate(C)["markPrice"] == 30000.0
    positions = ex.fetch_positions([C])
    assert [(p["side"], p["contracts"], p["notional"], p["entryPrice"]) for p in positions] == \
        [("long", 6.0, 0.02, 30000.0)]
    balance = ex.fetch_balance()["BTC"]
    assert balance["total"] == pytest.approx(1 - 0.00001)  # the taker fee, in BTC
    assert balance["used"] == pytest.approx(0.02 / 20)  # initial margin at 20x
    # a stop-loss on the COIN-M position: /dapi/v1/algoOrder, fired by the mark
    sl = ex.create_order(C, "market", "sell", 6, None,
                         {"stopLossPrice": 29000, "reduceOnly": True,
                          "workingType": "MARK_PRICE"})
    assert (sl["info"]["orderType"], sl["info"]["symbol"]) == ("STOP_MARKET", "BTCUSD_PERP")
    assert [o["id"] for o in ex.fetch_open_orders(C, params={"trigger": True})] == [sl["id"]]
    mm.create_order(C, "limit", "buy", 6, 28900)
    server.set_mark("BTCUSD_PERP", "28950")
    done = ex.fetch_order(sl["id"], C, {"trigger": True})
    assert (done["status"], done["info"]["actualType"]) == ("closed", "MARKET")
    assert ex.fetch_positions([C]) == []
    # the loss in BTC: 600 USD bought at 30,000 and sold at 28,900
    pnl = 600 / 30000 - 600 / 28900
    assert ex.fetch_balance()["BTC"]["total"] == pytest.approx(
        1 + pnl - 0.00001 - 600 / 28900 * 0.0005, abs=2e-8)
    assert mm.cancel_order(rest["id"], C)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        mm.cancel_order(rest["id"], C)


async def test_ccxt_pro_binancecoinm_over_dstream(server):
    await server.admin_request("setMarkPrice", symbol="ETHUSD_PERP", markPrice="2000")
    k = server.newkey("0")
    maker = server.newkey("0")
    for key in (k, maker):
        await server.admin_request("deposit", account=key["account"], amount="10", asset="ETH")
    u = urls(server)
    u["api"]["ws"] = {"inverse": server.ws_url + "/dstream/ws"}
    ex = ccxtpro.binancecoinm({"apiKey": k["apiKey"], "secret": k["secret"], "urls": u,
                               "options": {"watchPositions": {"fetchPositionsSnapshot": False}}})
    mm = ccxtpro.binancecoinm({"apiKey": maker["apiKey"], "secret": maker["secret"],
                               "urls": urls(server)})
    E = "ETH/USD:ETH"
    try:
        await asyncio.gather(ex.load_markets(), mm.load_markets())
        await mm.create_order(E, "limit", "sell", 50, 2010)
        book = await asyncio.wait_for(ex.watch_order_book(E), 10)
        assert book["asks"] == [[2010.0, 50.0]]
        orders = asyncio.create_task(ex.watch_orders(E))
        await asyncio.sleep(0.5)
        await ex.create_order(E, "market", "buy", 20)
        got = await asyncio.wait_for(orders, 10)
        assert [(o["status"], o["filled"]) for o in got][-1] == ("closed", 20.0)
        assert any("/dstream/ws/" in c.url for c in ex.clients.values()
                   if isinstance(c.url, str))
    finally:
        await ex.close()
        await mm.close()


def test_python_binance_futures_coin(server):
    server.set_mark("BTCUSD_PERP", "30000")
    k, maker = coin_key(server, "1"), coin_key(server, "10")

    class LocalClient(BinanceClient):
        API_URL = server.url + "/api"
        FUTURES_COIN_URL = server.url + "/dapi"

    c, m = LocalClient(k["apiKey"], k["secret"]), LocalClient(maker["apiKey"], maker["secret"])
    assert len(c.futures_coin_exchange_info()["symbols"]) == 2
    assert c.futures_coin_change_leverage(symbol="BTCUSD_PERP", leverage=10) == \
        {"leverage": 10, "maxQty": "100", "symbol": "BTCUSD_PERP"}
    brackets = c.futures_coin_leverage_bracket(symbol="BTCUSD_PERP")
    assert brackets[0]["brackets"][0] == {"bracket": 1, "initialLeverage": 125, "qtyCap": "5",
                                          "qtyFloor": "0", "maintMarginRatio": "0.004",
                                          "cum": "0"}
    m.futures_coin_create_order(symbol="BTCUSD_PERP", side="SELL", type="LIMIT", quantity="3",
                                price="30000", timeInForce="GTC")
    placed = c.futures_coin_create_order(symbol="BTCUSD_PERP", side="BUY", type="LIMIT",
                                         quantity="5", price="30000", timeInForce="GTC",
                                         newOrderRespType="RESULT")
    assert (placed["status"], placed["executedQty"], placed["cumBase"]) == \
        ("PARTIALLY_FILLED", "3", "0.01")
    got = c.futures_coin_get_order(symbol="BTCUSD_PERP", orderId=placed["orderId"])
    assert (got["status"], got["origQty"], got["pair"]) == ("PARTIALLY_FILLED", "5", "BTCUSD")
    assert [o["orderId"] for o in c.futures_coin_get_open_orders(symbol="BTCUSD_PERP")] == \
        [placed["orderId"]]
    assert c.futures_coin_cancel_order(symbol="BTCUSD_PERP",
                                       orderId=placed["orderId"])["status"] == "CANCELED"
    rows = c.futures_coin_position_information()
    assert [(r["symbol"], r["positionAmt"], r["notionalValue"], r["marginAsset"],
             r["positionSide"]) for r in rows] == \
        [("BTCUSD_PERP", "3", "0.01", "BTC", "BOTH")]
    account = c.futures_coin_account()
    assert [(a["asset"], a["walletBalance"]) for a in account["assets"]] == \
        [("BTC", "0.999995")]  # 1 BTC less the taker fee on 0.01 BTC
    assert [(p["symbol"], p["positionAmt"]) for p in account["positions"]] == \
        [("BTCUSD_PERP", "3")]
    assert c.futures_coin_account_balance()[0]["balance"] == "0.999995"
    trades = c.futures_coin_account_trades(symbol="BTCUSD_PERP")
    assert [(t["qty"], t["baseQty"], t["commissionAsset"]) for t in trades] == \
        [("3", "0.01", "BTC")]
    income = c.futures_coin_income_history()
    assert [(r["incomeType"], r["income"], r["asset"]) for r in income] == \
        [("TRANSFER", "1", "BTC"), ("COMMISSION", "-0.000005", "BTC")]
    assert c.futures_coin_get_position_mode() == {"dualSidePosition": False}
    with pytest.raises(BinanceAPIException) as e:  # a conditional type on /dapi/v1/order
        c.futures_coin_create_order(symbol="BTCUSD_PERP", side="SELL", type="STOP_MARKET",
                                    quantity="3", stopPrice="29000")
    assert e.value.code == -4120
    with pytest.raises(BinanceAPIException) as e:
        c.futures_coin_create_order(symbol="BTCUSD_PERP", side="BUY", type="LIMIT",
                                    quantity="1.5", price="30000", timeInForce="GTC")
    assert (e.value.code, e.value.message) == (-4023, "Qty not increased by step size.")


async def test_the_coinm_user_stream_is_its_own(server):
    """A /dapi listen key carries COIN-M orders and BTC balances; the same account's /fapi
    key sees its USDⓈ-M order and nothing of the COIN-M one (python-binance's
    coin_futures_user_socket over /dstream)."""
    await server.admin_request("setMarkPrice", symbol="BTCUSD_PERP", markPrice="30000")
    k = server.newkey("1000")
    await server.admin_request("deposit", account=k["account"], amount="1", asset="BTC")
    base = {"API_URL": server.url + "/api", "FUTURES_URL": server.url + "/fapi",
            "FUTURES_COIN_URL": server.url + "/dapi"}
    local_async = type("LocalAsyncClient", (AsyncClient,), base)
    local_bsm = type("LocalBSM", (BinanceSocketManager,), {"DSTREAM_URL": server.ws_url +
                                                           "/dstream/"})
    client = await local_async.create(k["apiKey"], k["secret"])
    rest = Rest(server, k)
    try:
        coin_key = await client.futures_coin_stream_get_listen_key()
        usd_key = (await rest.call("POST", "/fapi/v1/listenKey"))["listenKey"]
        assert coin_key != usd_key
        async with rest.session.ws_connect(f"{server.ws_url}/ws/{usd_key}") as usd, \
                local_bsm(client).coin_futures_user_socket() as coin:
            await asyncio.sleep(0.3)
            await client.futures_coin_create_order(symbol="BTCUSD_PERP", side="BUY",
                                                   type="LIMIT", quantity="1", price="29000",
                                                   timeInForce="GTC")
            await client.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT",
                                              quantity="0.001", price="29000",
                                              timeInForce="GTC")
            first = await asyncio.wait_for(coin.recv(), 10)
            assert (first["e"], first["o"]["s"], first["o"]["x"], first["o"]["N"]) == \
                ("ORDER_TRADE_UPDATE", "BTCUSD_PERP", "NEW", "BTC")
            got = await usd.receive_json(timeout=10)
            assert (got["e"], got["o"]["s"]) == ("ORDER_TRADE_UPDATE", "BTCUSDT")
            nudge = asyncio.get_running_loop().call_later(0.2, lambda: asyncio.create_task(
                server.admin_request("deposit", account=k["account"], amount="0.5",
                                     asset="BTC")))
            update = await asyncio.wait_for(coin.recv(), 10)
            nudge.cancel()
            assert update["e"] == "ACCOUNT_UPDATE" and update["a"]["m"] == "DEPOSIT"
            assert update["a"]["B"] == [{"a": "BTC", "wb": "1.5", "cw": "1.5", "bc": "0.5"}]
    finally:
        await rest.close()
        await client.close_connection()
