"""Binance's USDⓈ-M REST API end to end: a real server process on 127.0.0.1, the real ccxt
(sync and async) and python-binance clients, pointed at the local URLs and nothing else
changed; and raw HTTP for what the clients never send (bad input)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from binance.client import Client as BinanceClient
from binance.exceptions import BinanceAPIException

from tests.api_harness import ApiServerProcess, ccxt_urls

S = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ApiServerProcess(tmp_path_factory.mktemp("api"))
    s.set_mark("BTCUSDT", "30000")
    s.set_mark("ETHUSDT", "2000")
    yield s
    assert s.stop() == 0


def ccxt_sync(server, key, **extra):
    return ccxt.binanceusdm({"apiKey": key["apiKey"], "secret": key["secret"],
                             "urls": ccxt_urls(server.url), **extra})


# -- raw HTTP, as Binance documents it ---------------------------------------------------------------
def http(server, method, path, params=None, key=None, body=None, sign=True, query=None,
         headers=None):
    """(status, headers, JSON) of one request; signed with `key` when given."""
    params = dict(params or {})
    if key is not None and sign:
        params.setdefault("timestamp", str(int(time.time() * 1000)))
    qs = query if query is not None else "&".join(f"{k}={v}" for k, v in params.items())
    if key is not None and sign and query is None:
        sig = hmac.new(key["secret"].encode(), qs.encode(), hashlib.sha256).hexdigest()
        qs += f"&signature={sig}"
    req = urllib.request.Request(server.url + path + ("?" + qs if qs else ""), method=method,
                                 data=body)
    if key is not None:
        req.add_header("X-MBX-APIKEY", key["apiKey"])
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def call(server, key, method, path, **params):
    """(status, body) of a signed request."""
    status, _, body = http(server, method, path, params, key=key)
    return status, body


def err(code: int, msg: str) -> tuple[int, dict]:
    """Binance's error answer: HTTP 400 with its code and message."""
    return 400, {"code": code, "msg": msg}


def test_public_endpoints_in_binances_shapes(server):
    status, headers, info = http(server, "GET", "/fapi/v1/exchangeInfo")
    assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) >= 1
    assert [r["rateLimitType"] for r in info["rateLimits"]] == ["REQUEST_WEIGHT", "ORDERS",
                                                                 "ORDERS"]
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert len(symbols) == 128
    btc = symbols["BTCUSDT"]
    assert (btc["status"], btc["contractType"], btc["marginAsset"], btc["deliveryDate"]) == \
        ("TRADING", "PERPETUAL", "USDT", 4133404800000)
    assert [f["filterType"] for f in btc["filters"]] == [
        "PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MAX_NUM_ORDERS", "MAX_NUM_ALGO_ORDERS",
        "MIN_NOTIONAL", "PERCENT_PRICE"]
    assert btc["filters"][0]["tickSize"] == "0.1" and btc["pricePrecision"] == 1
    assert btc["orderTypes"][:2] == ["LIMIT", "MARKET"] and "GTX" in btc["timeInForce"]
    quarterly = symbols["BTCUSDT_0924"]
    assert quarterly["contractType"] == "CURRENT_QUARTER"
    assert quarterly["deliveryDate"] == 1632470400000
    assert {a["asset"] for a in info["assets"]} >= {"USDT"}
    assert http(server, "GET", "/fapi/v1/ping")[2] == {}
    assert abs(http(server, "GET", "/fapi/v1/time")[2]["serverTime"] - time.time() * 1000) < 5000
    for path in ("/fapi/v1/premiumIndex", "/fapi/v1/ticker/24hr", "/fapi/v1/ticker/price",
                 "/fapi/v2/ticker/price", "/fapi/v1/ticker/bookTicker", "/fapi/v1/openInterest",
                 "/fapi/v1/trades", "/fapi/v1/aggTrades", "/fapi/v1/depth"):
        status, _, body = http(server, "GET", path, {"symbol": "BTCUSDT"})
        assert status == 200, (path, body)
    assert http(server, "GET", "/fapi/v1/fundingInfo")[0] == 200
    premium = http(server, "GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"})[2]
    assert premium["markPrice"] == "30000" and "predictedFundingRate" not in premium
    assert http(server, "GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "7"})[2] == \
        {"code": -4021, "msg": "'7' is not valid depth limit."}
    assert http(server, "GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "2m"})[2] \
        == {"code": -1120, "msg": "Invalid interval."}
    assert http(server, "GET", "/fapi/v1/depth", {"symbol": "NOPE"})[2] == \
        {"code": -1121, "msg": "Invalid symbol."}
    # historicalTrades is MARKET_DATA: a key, no signature
    status, _, body = http(server, "GET", "/fapi/v1/historicalTrades", {"symbol": "BTCUSDT"})
    assert (status, body) == (401, {"code": -2014, "msg": "API-key format invalid."})
    key = server.newkey("0")
    assert http(server, "GET", "/fapi/v1/historicalTrades", {"symbol": "BTCUSDT"}, key=key,
                sign=False)[0] == 200


def test_startup_calls_about_other_markets_let_clients_go_on(server):
    assert http(server, "GET", "/api/v3/exchangeInfo")[2]["symbols"] == []
    # COIN-M is served (tests/test_api_coinm.py): /dapi lists its symbols, /fapi none of them
    assert [s["symbol"] for s in http(server, "GET", "/dapi/v1/exchangeInfo")[2]["symbols"]] \
        == ["BTCUSD_PERP", "ETHUSD_PERP"]
    assert http(server, "GET", "/sapi/v1/margin/allPairs")[2] == []
    assert http(server, "GET", "/sapi/v1/margin/isolated/allPairs")[2] == []
    key = server.newkey("100")
    assert http(server, "GET", "/sapi/v1/capital/config/getall", key=key)[2] == []
    # ccxt with a key calls the sapi endpoints in load_markets; nothing to switch off
    assert len(ccxt_sync(server, key).load_markets()) == 128


def test_ccxt_sync_every_method(server):
    k, k2 = server.newkey("10000"), server.newkey("100000")
    ex, other = ccxt_sync(server, k), ccxt_sync(server, k2)
    markets = ex.load_markets()
    assert markets[S]["precision"]["price"] == 0.1 and markets[S]["limits"]["amount"]["min"] == 0.001
    assert abs(ex.fetch_time() - time.time() * 1000) < 5000
    assert ex.set_leverage(10, S)["leverage"] == 10
    assert ex.set_margin_mode("isolated", "ETH/USDT:USDT")["code"] == 200
    with pytest.raises(ccxt.MarginModeAlreadySet):
        ex.set_margin_mode("isolated", "ETH/USDT:USDT")
    with pytest.raises(ccxt.OperationRejected, match="-4059"):  # one-way already
        ex.set_position_mode(False)
    assert ex.fetch_position_mode(S)["hedged"] is False  # hedge mode: test_api_hedge_assets.py
    # orders of every kind
    rest = ex.create_order(S, "limit", "sell", 0.01, 30000)
    assert (rest["status"], rest["timeInForce"], rest["amount"]) == ("open", "GTC", 0.01)
    post = ex.create_order(S, "limit", "sell", 0.01, 30500, {"postOnly": True})
    assert post["postOnly"] is True and post["timeInForce"] == "PO"
    with pytest.raises(ccxt.InvalidOrder, match="-5022"):  # would take: rejected
        ex.create_order(S, "limit", "buy", 0.01, 30000, {"postOnly": True})
    ioc = ex.create_order(S, "limit", "buy", 0.01, 29000, {"timeInForce": "IOC"})
    assert (ioc["status"], ioc["filled"]) == ("expired", 0.0)
    with pytest.raises(ccxt.InvalidOrder, match="-5021"):
        ex.create_order(S, "limit", "buy", 0.01, 29000, {"timeInForce": "FOK"})
    taken = other.create_order(S, "market", "buy", 0.004)
    assert (taken["status"], taken["filled"], taken["average"]) == ("closed", 0.004, 30000.0)
    fok = other.create_order(S, "limit", "buy", 0.006, 30000, {"timeInForce": "FOK"})
    assert (fok["status"], fok["filled"]) == ("closed", 0.006)
    reduce = other.create_order(S, "market", "sell", 0.002, None, {"reduceOnly": True})
    assert reduce["reduceOnly"] is True and reduce["filled"] == 0.0  # nobody bids: expired
    with pytest.raises(ccxt.ExchangeError, match="-2022"):
        other.create_order(S, "market", "sell", 1, None, {"reduceOnly": True})
    batch = ex.create_orders([
        {"symbol": S, "type": "limit", "side": "buy", "amount": 0.01, "price": 29000},
        {"symbol": S, "type": "limit", "side": "buy", "amount": 0.01, "price": 29100}])
    assert [o["status"] for o in batch] == ["open", "open"]
    edited = ex.edit_order(batch[0]["id"], S, "limit", "buy", 0.02, 29050)
    assert (edited["amount"], edited["price"]) == (0.02, 29050.0)
    assert ex.fetch_order(batch[0]["id"], S)["amount"] == 0.02
    assert ex.fetch_order(rest["id"], S)["status"] == "closed"  # filled by the taker and FOK
    assert {o["id"] for o in ex.fetch_open_orders(S)} == {post["id"], batch[0]["id"],
                                                          batch[1]["id"]}
    assert [o["id"] for o in ex.fetch_orders(S)][:2] == [rest["id"], post["id"]]
    mine = ex.fetch_my_trades(S)
    assert [(t["side"], t["amount"], t["takerOrMaker"]) for t in mine] == \
        [("sell", 0.004, "maker"), ("sell", 0.006, "maker")]
    assert mine[0]["fee"]["cost"] == 0.024  # 0.02 % of 120
    assert ex.cancel_order(post["id"], S)["status"] == "canceled"
    assert len(ex.cancel_all_orders(S)) == 1 and ex.fetch_open_orders(S) == []
    # market data of what just happened
    book = ex.fetch_order_book(S)
    assert book["bids"] == [] and book["asks"] == []
    trades = ex.fetch_trades(S)
    assert [(t["price"], t["amount"]) for t in trades] == [(30000.0, 0.004), (30000.0, 0.006)]
    candle = ex.fetch_ohlcv(S, "1m")[-1]
    assert candle[1:] == [30000.0, 30000.0, 30000.0, 30000.0, 0.01]
    assert ex.fetch_ohlcv(S, "1h")[-1][5] == 0.01 and ex.fetch_ohlcv(S, "1M")[-1][5] == 0.01
    assert ex.fetch_ohlcv(S, "1m", params={"price": "mark"})[-1][4] == 30000.0
    ticker = ex.fetch_ticker(S)
    assert (ticker["last"], ticker["baseVolume"], ticker["quoteVolume"]) == (30000.0, 0.01, 300.0)
    assert len(ex.fetch_tickers()) == 128
    assert ex.fetch_funding_rate(S)["markPrice"] == 30000.0
    assert len(ex.fetch_funding_rates()) >= 100
    assert ex.fetch_funding_rate_history(S) == []  # no settlement yet
    tiers = ex.fetch_leverage_tiers([S])[S]
    assert (tiers[0]["maxLeverage"], tiers[0]["maxNotional"], tiers[2]["minNotional"]) == \
        (125, 50000, 250000)
    # money
    balance = ex.fetch_balance()["USDT"]
    assert balance["total"] == pytest.approx(10000 - 0.024 - 0.036)
    positions = ex.fetch_positions([S])
    assert [(p["side"], p["contracts"], p["entryPrice"]) for p in positions] == \
        [("short", 0.01, 30000.0)]
    assert ex.fetch_funding_history(S) == []  # no settlement yet
    income = http(server, "GET", "/fapi/v1/income", key=k)[2]
    assert [(r["incomeType"], r["income"]) for r in income] == \
        [("TRANSFER", "10000"), ("COMMISSION", "-0.024"), ("COMMISSION", "-0.036")]


def test_ccxt_errors(server):
    k = server.newkey("1000")
    ex = ccxt_sync(server, k)
    ex.load_markets()
    # beyond the margin: Binance's -2019; ccxt maps the linear codes only for its production
    # host, so locally it is an ExchangeError carrying the code ...
    with pytest.raises(ccxt.ExchangeError, match='"code":-2019,"msg":"Margin is insufficient."'):
        ex.create_order(S, "limit", "buy", 10, 30000)
    # ... and InsufficientFunds with ccxt's own linear table as the `exceptions` option
    mapped = ccxt_sync(server, k, exceptions={"exact": ex.exceptions["linear"]["exact"]})
    with pytest.raises(ccxt.InsufficientFunds):
        mapped.create_order(S, "limit", "buy", 10, 30000)
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        ex.fetch_order("123456", S)
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        ex.cancel_order("123456", S)
    bad = ccxt.binanceusdm({"apiKey": "nosuchkey", "secret": "x",
                            "urls": ccxt_urls(server.url), "options": {"fetchCurrencies": False}})
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        bad.fetch_balance()
    wrong_secret = ccxt.binanceusdm({"apiKey": k["apiKey"], "secret": "0" * 64,
                                     "urls": ccxt_urls(server.url),
                                     "options": {"fetchCurrencies": False}})
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        wrong_secret.fetch_balance()
    assert ex.fetch_balance()["USDT"]["total"] == 1000  # nothing changed


async def test_ccxt_async_every_method(server):
    k, k2 = server.newkey("10000"), server.newkey("100000")

    def make(key):
        return ccxt_async.binanceusdm({"apiKey": key["apiKey"], "secret": key["secret"],
                                       "urls": ccxt_urls(server.url)})
    ex, other = make(k), make(k2)
    try:
        await asyncio.gather(ex.load_markets(), other.load_markets())
        E = "ETH/USDT:USDT"
        assert abs(await ex.fetch_time() - time.time() * 1000) < 5000
        assert (await ex.set_leverage(5, E))["leverage"] == 5
        sells = await ex.create_orders([
            {"symbol": E, "type": "limit", "side": "sell", "amount": 0.5, "price": 2000},
            {"symbol": E, "type": "limit", "side": "sell", "amount": 0.5, "price": 2010,
             "params": {"postOnly": True}}])
        assert [o["status"] for o in sells] == ["open", "open"]
        fills = await asyncio.gather(*[other.create_order(E, "market", "buy", 0.1)
                                       for _ in range(5)])
        assert sum(f["filled"] for f in fills) == pytest.approx(0.5)
        assert (await ex.fetch_order(sells[0]["id"], E))["status"] == "closed"
        edited = await ex.edit_order(sells[1]["id"], E, "limit", "sell", 0.4, 2020)
        assert (edited["amount"], edited["price"]) == (0.4, 2020.0)
        assert [o["id"] for o in await ex.fetch_open_orders(E)] == [sells[1]["id"]]
        assert len(await ex.fetch_orders(E)) == 2
        assert len(await ex.fetch_my_trades(E)) == 5
        book = await ex.fetch_order_book(E)
        assert book["asks"] == [[2020.0, 0.4]]
        assert len(await ex.fetch_trades(E)) == 5
        assert (await ex.fetch_ohlcv(E, "5m"))[-1][5] == pytest.approx(0.5)
        assert (await ex.fetch_ticker(E))["last"] == 2000.0
        assert len(await ex.fetch_tickers()) == 128
        assert (await ex.fetch_funding_rate(E))["markPrice"] == 2000.0
        assert len(await ex.fetch_funding_rates()) >= 100
        assert await ex.fetch_funding_rate_history(E) == []
        assert (await ex.fetch_leverage_tiers([E]))[E][0]["maxLeverage"] == 75  # the 2022-09-13 table
        assert (await ex.cancel_order(sells[1]["id"], E))["status"] == "canceled"
        await ex.cancel_all_orders(E)
        positions = await ex.fetch_positions([E])
        assert [(p["side"], p["contracts"]) for p in positions] == [("short", 0.5)]
        assert (await other.fetch_balance())["USDT"]["used"] > 0
        assert await ex.fetch_funding_history(E) == []
        with pytest.raises(ccxt.OrderNotFound):
            await ex.cancel_order("424242", E)
        with pytest.raises(ccxt.ExchangeError, match="-2019"):
            await ex.create_order(E, "limit", "sell", 100, 2000)
    finally:
        await ex.close()
        await other.close()


def test_python_binance(server):
    k, k2 = server.newkey("10000"), server.newkey("100000")

    class LocalClient(BinanceClient):  # the only change: where the API is
        API_URL = server.url + "/api"
        FUTURES_URL = server.url + "/fapi"
        FUTURES_DATA_URL = server.url + "/futures/data"
    c, c2 = LocalClient(k["apiKey"], k["secret"]), LocalClient(k2["apiKey"], k2["secret"])
    info = c.futures_exchange_info()
    assert len(info["symbols"]) == 128
    assert c.futures_change_leverage(symbol="BNBUSDT", leverage=10) == \
        {"leverage": 10, "maxNotionalValue": "1000000", "symbol": "BNBUSDT"}
    assert c.futures_change_margin_type(symbol="BNBUSDT", marginType="ISOLATED") == \
        {"code": 200, "msg": "success"}
    with pytest.raises(BinanceAPIException) as e:
        c.futures_change_margin_type(symbol="BNBUSDT", marginType="ISOLATED")
    assert (e.value.code, e.value.status_code) == (-4046, 400)
    c.futures_create_order(symbol="BNBUSDT", side="SELL", type="LIMIT", quantity="1",
                           price="300", timeInForce="GTC")
    order = c.futures_create_order(symbol="BNBUSDT", side="SELL", type="LIMIT", quantity="2",
                                   price="301", timeInForce="GTC", newClientOrderId="mine-1")
    assert (order["status"], order["clientOrderId"], order["origQty"]) == ("NEW", "mine-1", "2")
    book = c.futures_order_book(symbol="BNBUSDT")
    assert book["asks"] == [["300", "1"], ["301", "2"]]
    filled = c2.futures_create_order(symbol="BNBUSDT", side="BUY", type="MARKET", quantity="1.5",
                                     newOrderRespType="RESULT")
    assert (filled["status"], filled["executedQty"], filled["avgPrice"]) == \
        ("FILLED", "1.5", "300.33333333")
    got = c.futures_get_order(symbol="BNBUSDT", origClientOrderId="mine-1")
    assert (got["status"], got["executedQty"]) == ("PARTIALLY_FILLED", "0.5")
    assert [o["orderId"] for o in c.futures_get_open_orders(symbol="BNBUSDT")] == \
        [order["orderId"]]
    klines = c.futures_klines(symbol="BNBUSDT", interval="1m")
    assert klines[-1][1:6] == ["300", "301", "300", "301", "1.5"]
    canceled = c.futures_cancel_order(symbol="BNBUSDT", orderId=order["orderId"])
    assert canceled["status"] == "CANCELED"
    account = c.futures_account()
    assert account["totalWalletBalance"] == c.futures_account_balance()[0]["balance"]
    positions = c.futures_position_information()
    assert [(p["symbol"], p["positionAmt"], p["isolatedWallet"] != "0") for p in positions] == \
        [("BNBUSDT", "-1.5", True)]
    with pytest.raises(BinanceAPIException) as e:
        c.futures_get_order(symbol="BNBUSDT", orderId=filled["orderId"])  # another's order
    assert (e.value.code, e.value.message) == (-2013, "Order does not exist.")


def _state(server, key):
    return (http(server, "GET", "/fapi/v3/account", key=key)[2]["totalWalletBalance"],
            http(server, "GET", "/fapi/v1/openOrders", key=key)[2],
            http(server, "GET", "/fapi/v1/depth", {"symbol": "LTCUSDT"})[2]["asks"])


def test_bad_input_gets_binances_code_and_changes_nothing(server):
    k, other = server.newkey("1000"), server.newkey("1000")
    order = {"symbol": "LTCUSDT", "side": "SELL", "type": "LIMIT", "quantity": "1",
             "price": "100", "timeInForce": "GTC"}
    status, _, placed = http(server, "POST", "/fapi/v1/order", order, key=other)
    assert status == 200
    before = _state(server, k)
    ts = str(int(time.time() * 1000))
    qs = "&".join(f"{a}={b}" for a, b in {**order, "timestamp": ts}.items())
    cases = {
        "wrong signature": dict(query=qs + "&signature=" + "0" * 64),
        "expired timestamp": dict(params={**order, "timestamp": str(int(ts) - 60_000)}),
        "missing parameter": dict(params={k_: v for k_, v in order.items() if k_ != "side"}),
        "malformed number": dict(params={**order, "quantity": "1e3"}),
        "unneeded parameter": dict(params={**order, "type": "MARKET", "timeInForce": None}),
    }
    cases["unneeded parameter"]["params"].pop("timeInForce")
    expected = {
        "wrong signature": (400, -1022, "Signature for this request is not valid."),
        "expired timestamp": (400, -1021, "Timestamp for this request is outside of the "
                                          "recvWindow."),
        "missing parameter": (400, -1102, "Mandatory parameter 'side' was not sent, was "
                                          "empty/null, or malformed."),
        "malformed number": (400, -1100, "Illegal characters found in parameter 'quantity'; "
                                         "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'."),
        "unneeded parameter": (400, -1106, "Parameter 'price' sent when not required."),
    }
    for name, how in cases.items():
        status, headers, body = http(server, "POST", "/fapi/v1/order", key=k, **how)
        assert (status, body["code"], body["msg"]) == expected[name], name
        assert "X-MBX-USED-WEIGHT-1M" in headers
    # another account's order: unknown to this key, for reading and for cancelling
    got = http(server, "GET", "/fapi/v1/order", {"symbol": "LTCUSDT",
                                                 "orderId": str(placed["orderId"])}, key=k)
    assert got[:1] + (got[2],) == (400, {"code": -2013, "msg": "Order does not exist."})
    got = http(server, "DELETE", "/fapi/v1/order", {"symbol": "LTCUSDT",
                                                    "orderId": str(placed["orderId"])}, key=k)
    assert got[2] == {"code": -2011, "msg": "Unknown order sent."}
    # no key, an unknown key
    assert http(server, "GET", "/fapi/v3/account")[2]["code"] == -2014
    status, _, body = http(server, "GET", "/fapi/v3/account", key={"apiKey": "feed", "secret": "x"})
    assert (status, body["code"]) == (401, -2015)
    # a 10 MB body and 100,000 parameters: refused before any work
    status, _, body = http(server, "POST", "/fapi/v1/order", key=k, sign=False,
                           body=b"a=" + b"1" * 10_000_000,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body["code"]) == (413, -1101)
    many = "&".join(f"p{i}={i}" for i in range(100_000))
    status, _, body = http(server, "GET", "/fapi/v1/depth", query=many)
    assert (status, body) == (400, {"code": -1101, "msg": "Too many parameters; expected '200' "
                                                          "and received '100000'."})
    assert http(server, "GET", "/fapi/v1/ping", query="a=1&a=2")[2]["code"] == -1101
    # nothing changed, and the server serves the others
    assert _state(server, k) == before
    assert http(server, "GET", "/fapi/v1/order", {"symbol": "LTCUSDT",
                                                  "orderId": str(placed["orderId"])},
                key=other)[2]["status"] == "NEW"
    assert server.alive()


def test_signing_as_binance_documents_it(server):
    """Query and body concatenated without '&', the signature last of whichever part; DELETE
    parameters in the body (python-binance); recvWindow up to 60,000."""
    k = server.newkey("1000")
    ts = str(int(time.time() * 1000))
    query = "symbol=XRPUSDT&side=SELL&type=LIMIT&timeInForce=GTC"
    body = f"quantity=100&price=1&recvWindow=10000&timestamp={ts}"
    sig = hmac.new(k["secret"].encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    status, _, placed = http(server, "POST", "/fapi/v1/order", key=k, sign=False,
                             query=query, body=(body + "&signature=" + sig.upper()).encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and placed["status"] == "NEW"
    body = f"orderId={placed['orderId']}&symbol=XRPUSDT&timestamp={ts}"
    sig = hmac.new(k["secret"].encode(), body.encode(), hashlib.sha256).hexdigest()
    status, _, canceled = http(server, "DELETE", "/fapi/v1/order", key=k, sign=False,
                               query="", body=(body + "&signature=" + sig).encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, canceled["status"]) == (200, "CANCELED")
    assert http(server, "GET", "/fapi/v3/balance", {"recvWindow": "60001"}, key=k)[2]["code"] \
        == -1130
    ahead = http(server, "GET", "/fapi/v3/balance",
                 {"timestamp": str(int(time.time() * 1000) + 5000)}, key=k)[2]
    assert ahead == {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the "
                                           "server's time."}


def _inside_window(size_ms: int, need_ms: int) -> None:
    """Wait until `need_ms` fit before the current fixed window of `size_ms` turns."""
    while int(time.time() * 1000) % size_ms > size_ms - need_ms:
        time.sleep(0.2)


def test_request_weight_and_order_limits(tmp_path):
    s = ApiServerProcess(tmp_path, "--api-weight-limit", "60", "--api-order-limit", "8")
    try:
        k = s.newkey("1000")
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
                 "price": "20000", "timeInForce": "GTC"}
        _inside_window(10_000, 4000)
        got = [http(s, "POST", "/fapi/v1/order", order, key=k) for _ in range(3)]
        assert [g[0] for g in got] == [200, 200, 429]
        assert got[1][1]["X-MBX-ORDER-COUNT-10S"] == "2"
        assert got[2][2] == {"code": -1015, "msg": "Too many new orders; current limit is 2 "
                                                   "orders per 10 SECOND."}
        assert len(http(s, "GET", "/fapi/v1/openOrders", key=k)[2]) == 2
        _inside_window(60_000, 10_000)
        time.sleep(1.0)
        used = int(http(s, "GET", "/fapi/v1/ping")[1]["X-MBX-USED-WEIGHT-1M"])
        statuses = [http(s, "GET", "/fapi/v1/exchangeInfo")[:2] for _ in range(60 - used)]
        assert [st for st, _ in statuses] == [200] * (60 - used)
        assert [int(h["X-MBX-USED-WEIGHT-1M"]) for _, h in statuses[:2]] == [used + 1, used + 2]
        status, _, body = http(s, "GET", "/fapi/v1/ping")
        assert (status, body["code"]) == (429, -1003)
        assert "60 requests per minute" in body["msg"]
    finally:
        assert s.stop() == 0


def test_the_other_signed_endpoints(server):
    k = server.newkey("100000")
    call = lambda method, path, **p: http(server, method, path, p, key=k)  # noqa: E731
    placed = [call("POST", "/fapi/v1/order", symbol="LINKUSDT", side="BUY", type="LIMIT",
                   quantity="1", price=str(10 + i), timeInForce="GTC")[2] for i in range(3)]
    ids = [p["orderId"] for p in placed]
    assert call("GET", "/fapi/v1/openOrder", symbol="LINKUSDT", orderId=ids[0])[2]["status"] \
        == "NEW"
    # batch modify, then batch cancel by ids (ccxt's lower-case orderidlist) and client ids
    mods = json.dumps([{"symbol": "LINKUSDT", "orderId": ids[0], "side": "BUY",
                        "quantity": "2", "price": "10"},
                       {"symbol": "LINKUSDT", "orderId": 999999, "side": "BUY",
                        "quantity": "2", "price": "10"}], separators=(",", ":"))
    got = call("PUT", "/fapi/v1/batchOrders", batchOrders=urllib.request.quote(mods))[2]
    assert got[0]["origQty"] == "2" and got[1] == {"code": -2013, "msg": "Order does not exist."}
    got = call("DELETE", "/fapi/v1/batchOrders", symbol="LINKUSDT",
               orderidlist=urllib.request.quote(f"[{ids[0]},{ids[1]},424242]"))[2]
    assert [g.get("status", g.get("code")) for g in got] == ["CANCELED", "CANCELED", -2011]
    cid = placed[2]["clientOrderId"]
    got = call("DELETE", "/fapi/v1/batchOrders", symbol="LINKUSDT",
               origClientOrderIdList=urllib.request.quote(json.dumps([cid])))[2]
    assert got[0]["status"] == "CANCELED"
    assert call("GET", "/fapi/v1/openOrder", symbol="LINKUSDT", orderId=ids[2])[2]["code"] \
        == -2013
    # the countdown cancels what is open when it runs out
    call("POST", "/fapi/v1/order", symbol="LINKUSDT", side="BUY", type="LIMIT", quantity="1",
         price="10", timeInForce="GTC")
    assert call("POST", "/fapi/v1/countdownCancelAll", symbol="LINKUSDT",
                countdownTime="300")[2] == {"symbol": "LINKUSDT", "countdownTime": "300"}
    deadline = time.monotonic() + 5
    while call("GET", "/fapi/v1/openOrders", symbol="LINKUSDT")[2] and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert call("GET", "/fapi/v1/openOrders", symbol="LINKUSDT")[2] == []
    # an isolated position and its margin
    other = server.newkey("100000")
    call("POST", "/fapi/v1/marginType", symbol="LINKUSDT", marginType="ISOLATED")
    http(server, "POST", "/fapi/v1/order", {"symbol": "LINKUSDT", "side": "SELL",
                                            "type": "LIMIT", "quantity": "10", "price": "12",
                                            "timeInForce": "GTC"}, key=other)
    call("POST", "/fapi/v1/order", symbol="LINKUSDT", side="BUY", type="MARKET", quantity="10")
    assert call("POST", "/fapi/v1/positionMargin", symbol="LINKUSDT", amount="5",
                type="1")[2] == {"amount": 5, "code": 200,
                                 "msg": "Successfully modify position margin.", "type": 1}
    v2 = call("GET", "/fapi/v2/positionRisk", symbol="LINKUSDT")[2]
    assert (v2[0]["marginType"], v2[0]["positionAmt"], v2[0]["leverage"]) == \
        ("isolated", "10", "20")
    assert len(call("GET", "/fapi/v2/positionRisk")[2]) == 128  # v2 lists every symbol
    assert call("GET", "/fapi/v2/balance")[2][0]["asset"] == "USDT"
    account = call("GET", "/fapi/v2/account")[2]
    assert account["canTrade"] is True and len(account["positions"]) == 128
    assert call("GET", "/fapi/v1/commissionRate", symbol="LINKUSDT")[2] == {
        "symbol": "LINKUSDT", "makerCommissionRate": "0.0002", "takerCommissionRate": "0.0005",
        "rpiCommissionRate": "0"}
    assert call("GET", "/fapi/v1/adlQuantile")[2][0]["symbol"] == "LINKUSDT"
    assert call("GET", "/fapi/v1/symbolConfig", symbol="LINKUSDT")[2][0]["marginType"] == \
        "ISOLATED"
    assert call("GET", "/fapi/v1/accountConfig")[2]["dualSidePosition"] is False
    income = call("GET", "/fapi/v1/income", incomeType="COMMISSION")[2]
    assert [r["income"] for r in income] == ["-0.06"]  # taker 0.05 % of 120
    brackets = call("GET", "/fapi/v1/leverageBracket", symbol="LINKUSDT")[2]
    assert brackets["symbol"] == "LINKUSDT" and brackets["brackets"][0]["bracket"] == 1


def _raw(server, data: bytes, until_close: bool = True) -> bytes:
    import socket
    with socket.create_connection(("127.0.0.1", server.api_port), timeout=10) as s:
        s.sendall(data)
        if not until_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_http_pipelining_chunked_bodies_and_malformed_requests(server):
    # two pipelined requests, answered in order; the second asks to close
    out = _raw(server, b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /fapi/v1/time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    first, second = out.split(b"HTTP/1.1 200 OK")[1:]
    assert first.endswith(b"\r\n\r\n{}") and b'"serverTime"' in second
    # HTTP/1.0 without keep-alive: answered, then closed
    assert _raw(server, b"GET /fapi/v1/ping HTTP/1.0\r\n\r\n").endswith(b"\r\n\r\n{}")
    # a chunked body goes to aiohttp on the same connection, and is read as a form
    key = server.newkey("100")
    body = f"timestamp={int(time.time() * 1000)}"
    sig = hmac.new(key["secret"].encode(), body.encode(), hashlib.sha256).hexdigest()
    body = f"{body}&signature={sig}".encode()
    out = _raw(server, b"POST /fapi/v1/listenKey HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: " +
               key["apiKey"].encode() + b"\r\nTransfer-Encoding: chunked\r\nConnection: close"
               b"\r\n\r\n" + f"{len(body):x}".encode() + b"\r\n" + body + b"\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK") and b'"listenKey"' in out
    # not HTTP at all: Binance's error shape, and the connection closes
    out = _raw(server, b"HELLO\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 Bad Request") and out.endswith(
        b'{"code":-1000,"msg":"Malformed HTTP request."}')
    assert http(server, "GET", "/fapi/v1/ping")[2] == {}


def test_newkey_accounts_and_the_sixty_day_rule(server):
    old, new = server.newkey("1000"), server.newkey("1000", "--new-account")
    assert old["account"] != new["account"]
    assert http(server, "POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": "50"},
                key=old)[2]["leverage"] == 50
    status, _, body = http(server, "POST", "/fapi/v1/leverage",
                           {"symbol": "BTCUSDT", "leverage": "50"}, key=new)
    # Binance's code for this rule (its error page: ADJUST_LEVERAGE_X_DAYS_FAILED)
    assert (status, body) == (400, {"code": -4205, "msg": "More than 20x leverage is available "
                                                          "60 days after Futures account "
                                                          "registration."})
    assert http(server, "GET", "/fapi/v3/balance", key=new)[2][0]["balance"] == "1000"
