"""Binance's WebSocket streams end to end: ccxt.pro and python-binance's socket manager pointed
at the local URLs; a raw client for the protocol (SUBSCRIBE, LIST_SUBSCRIPTIONS, combined
streams), a local book kept from depth diffs equal to GET /fapi/v1/depth, a slow reader cut
off while the others are served; and the projection rebuilt from the log after a restart."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import socket
import time
from decimal import Decimal

import aiohttp
import ccxt.pro as ccxtpro
import pytest
from binance.async_client import AsyncClient
from binance.ws.streams import BinanceSocketManager

from engine.api.listenkeys import ListenKeys
from tests.api_harness import ApiServerProcess, ccxt_urls

S = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ApiServerProcess(tmp_path_factory.mktemp("streams"), "--outbound-limit", "300",
                         "--sndbuf", "32768")
    s.set_mark("BTCUSDT", "30000")
    s.set_mark("ETHUSDT", "2000")
    yield s
    assert s.stop() == 0


class Rest:
    """Signed raw HTTP over one aiohttp session."""

    def __init__(self, server, key) -> None:
        self.server, self.key = server, key
        self.session = aiohttp.ClientSession()

    async def call(self, method: str, path: str, **params):
        params["timestamp"] = str(int(time.time() * 1000))
        qs = "&".join(f"{k}={v}" for k, v in params.items())
        sig = hmac.new(self.key["secret"].encode(), qs.encode(), hashlib.sha256).hexdigest()
        async with self.session.request(method, f"{self.server.url}{path}?{qs}&signature={sig}",
                                        headers={"X-MBX-APIKEY": self.key["apiKey"]}) as r:
            return await r.json()

    async def public(self, path: str, **params):
        async with self.session.get(self.server.url + path, params=params) as r:
            return await r.json()

    async def close(self) -> None:
        await self.session.close()


def pro(server, key):
    urls = ccxt_urls(server.url)
    urls["api"]["ws"] = {"linear": server.ws_url + "/ws"}
    return ccxtpro.binanceusdm({"apiKey": key["apiKey"], "secret": key["secret"], "urls": urls})


async def connected(ex) -> None:
    """Until ccxt.pro's WebSocket connections, the private one among them, are open (and a
    moment for its SUBSCRIBEs to arrive)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        clients = [c for c in ex.clients.values() if c.url.startswith("ws")]
        if any("/private/" in c.url for c in clients) and \
                all(c.connected.done() for c in clients):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)


async def test_ccxt_pro_watchers_while_another_account_trades(server):
    k, k2 = server.newkey("10000"), server.newkey("100000")
    ex, other = pro(server, k), pro(server, k2)
    rest = Rest(server, k)
    try:
        await asyncio.gather(ex.load_markets(), other.load_markets())
        await ex.create_order(S, "limit", "sell", 0.05, 30100)
        book = await asyncio.wait_for(ex.watch_order_book(S), 10)
        assert book["asks"] == [[30100.0, 0.05]]
        watchers = {name: asyncio.create_task(coro) for name, coro in {
            "trades": ex.watch_trades(S), "ohlcv": ex.watch_ohlcv(S, "1m"),
            "orders": ex.watch_orders(S), "my_trades": ex.watch_my_trades(S),
            "balance": ex.watch_balance()}.items()}
        snapshot = asyncio.create_task(ex.watch_positions([S]))
        await connected(ex)
        assert await asyncio.wait_for(snapshot, 10) == []  # the REST snapshot: no position yet
        watchers["positions"] = asyncio.create_task(ex.watch_positions([S]))
        await asyncio.sleep(0.1)
        await other.create_order(S, "market", "buy", 0.004)
        got = {}
        for name, task in watchers.items():
            try:
                got[name] = await asyncio.wait_for(task, 10)
            except asyncio.TimeoutError:
                raise AssertionError(f"watch {name}: nothing within 10 s") from None
        assert [(t["price"], t["amount"], t["side"]) for t in got["trades"]] == \
            [(30100.0, 0.004, "buy")]
        assert got["ohlcv"][-1][4:] == [30100.0, 0.004]
        assert [(o["status"], o["filled"]) for o in got["orders"]] == [("open", 0.004)]
        assert [(t["amount"], t["takerOrMaker"]) for t in got["my_trades"]] == [(0.004, "maker")]
        assert [(p["side"], p["contracts"]) for p in got["positions"]] == [("short", 0.004)]
        assert got["balance"]["USDT"]["total"] == pytest.approx(10000 - 0.02408)
        # the local book follows every change: equal to the REST depth at the end
        latest = {}

        async def follow():
            while True:
                latest["book"] = await ex.watch_order_book(S)
        follower = asyncio.create_task(follow())
        rng = random.Random(7)
        trader = Rest(server, k2)
        for i in range(60):
            side = rng.choice(["BUY", "SELL"])
            price = 30000 + rng.randrange(-20, 20) * 5 if side == "BUY" else \
                30105 + rng.randrange(0, 20) * 5
            if i % 7 == 6:
                await trader.call("POST", "/fapi/v1/order", symbol="BTCUSDT", side=side,
                                  type="MARKET", quantity="0.003")
            else:
                await trader.call("POST", "/fapi/v1/order", symbol="BTCUSDT", side=side,
                                  type="LIMIT", quantity=str(rng.randrange(1, 9) / 1000),
                                  price=str(price), timeInForce="GTC")
        await trader.close()
        depth = await rest.public("/fapi/v1/depth", symbol="BTCUSDT", limit="1000")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                latest.get("book", {}).get("nonce", 0) < depth["lastUpdateId"]:
            await asyncio.sleep(0.05)
        follower.cancel()
        book = latest["book"]
        assert book["nonce"] == depth["lastUpdateId"]
        assert [[Decimal(str(p)), Decimal(str(q))] for p, q in book["bids"]] == \
            [[Decimal(p), Decimal(q)] for p, q in depth["bids"]]
        assert [[Decimal(str(p)), Decimal(str(q))] for p, q in book["asks"]] == \
            [[Decimal(p), Decimal(q)] for p, q in depth["asks"]]
        assert depth["bids"] and len(depth["asks"]) > 3
    finally:
        await asyncio.gather(ex.close(), other.close(), rest.close())


async def test_python_binance_user_socket(server):
    k, k2 = server.newkey("10000"), server.newkey("10000")
    base = {"API_URL": server.url + "/api", "FUTURES_URL": server.url + "/fapi",
            "FUTURES_DATA_URL": server.url + "/futures/data"}
    local_async = type("LocalAsyncClient", (AsyncClient,), base)
    local_bsm = type("LocalBSM", (BinanceSocketManager,), {"FSTREAM_URL": server.ws_url + "/"})
    client = await local_async.create(k["apiKey"], k["secret"])
    other = await local_async.create(k2["apiKey"], k2["secret"])
    try:
        # python-binance re-asks for the key to keep it alive: it must stay the same
        first = await client.futures_stream_get_listen_key()
        assert await client.futures_stream_get_listen_key() == first
        async with local_bsm(client).futures_user_socket() as stream:
            await asyncio.sleep(0.3)
            await client.futures_create_order(symbol="ETHUSDT", side="SELL", type="LIMIT",
                                              quantity="0.1", price="2000", timeInForce="GTC")
            await other.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET",
                                             quantity="0.1")
            events = [await asyncio.wait_for(stream.recv(), 10) for _ in range(4)]
            # python-binance leaves its read loop on the next message (or after 10 s)
            nudge = asyncio.get_running_loop().call_later(0.2, lambda: asyncio.create_task(
                client.futures_change_leverage(symbol="ETHUSDT", leverage=9)))
        nudge.cancel()
        assert [(e["e"], e.get("o", {}).get("x")) for e in events] == [
            ("ORDER_TRADE_UPDATE", "NEW"), ("ORDER_TRADE_UPDATE", "TRADE"), ("TRADE_LITE", None),
            ("ACCOUNT_UPDATE", None)]
        fill = events[1]["o"]
        assert (fill["X"], fill["l"], fill["L"], fill["z"], fill["m"], fill["n"]) == \
            ("FILLED", "0.1", "2000", "0.1", True, "0.04")
        update = events[3]["a"]
        assert update["m"] == "ORDER" and update["B"][0]["wb"] == "9999.96"
        assert update["P"] == [{"s": "ETHUSDT", "pa": "-0.1", "ep": "2000", "bep": "1998",
                                "cr": "0", "up": "0", "mt": "cross", "iw": "0", "ps": "BOTH"}]
    finally:
        await client.close_connection()
        await other.close_connection()


async def test_raw_protocol_combined_streams_and_listen_keys(server):
    k = server.newkey("10000")
    rest = Rest(server, k)
    try:
        async with rest.session.ws_connect(
                server.ws_url + "/stream?streams=ethusdt@trade/ethusdt@aggTrade") as ws:
            await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@kline_1m",
                                                                  "ethusdt@bookTicker"], "id": 1})
            assert await ws.receive_json(timeout=5) == {"result": None, "id": 1}
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})
            assert await ws.receive_json(timeout=5) == {"result": [
                "ethusdt@aggTrade", "ethusdt@bookTicker", "ethusdt@kline_1m", "ethusdt@trade"],
                "id": 2}
            await ws.send_json({"method": "UNSUBSCRIBE", "params": ["ethusdt@bookTicker"],
                                "id": 3})
            assert await ws.receive_json(timeout=5) == {"result": None, "id": 3}
            await ws.send_json({"method": "SUBSCRIBE", "params": ["nosuch@trade"], "id": 4})
            assert (await ws.receive_json(timeout=5))["error"]["code"] == 2
            await ws.send_str("not json")
            assert (await ws.receive_json(timeout=5))["error"]["code"] == 3
            await rest.call("POST", "/fapi/v1/order", symbol="ETHUSDT", side="SELL",
                            type="LIMIT", quantity="0.2", price="2001", timeInForce="GTC")
            await rest.call("POST", "/fapi/v1/order", symbol="ETHUSDT", side="BUY",
                            type="MARKET", quantity="0.2")  # a self-trade: EXPIRE_MAKER
            await rest.call("POST", "/fapi/v1/order", symbol="ETHUSDT", side="SELL",
                            type="LIMIT", quantity="0.2", price="2001", timeInForce="GTC")
            other = Rest(server, server.newkey("10000"))
            await other.call("POST", "/fapi/v1/order", symbol="ETHUSDT", side="BUY",
                             type="MARKET", quantity="0.2")
            await other.close()
            got = {}
            while len(got) < 3:
                msg = await ws.receive_json(timeout=5)
                got.setdefault(msg["stream"], msg["data"])
            assert got["ethusdt@trade"]["p"] == "2001" and got["ethusdt@trade"]["m"] is False
            assert got["ethusdt@aggTrade"]["q"] == "0.2"
            assert got["ethusdt@kline_1m"]["k"]["i"] == "1m"
        # listen keys: one per account, kept alive, user data at /ws/<key> too
        lk = (await rest.call("POST", "/fapi/v1/listenKey"))["listenKey"]
        assert (await rest.call("PUT", "/fapi/v1/listenKey")) == {"listenKey": lk}
        async with rest.session.ws_connect(f"{server.ws_url}/ws/{lk}") as ws:
            await rest.call("POST", "/fapi/v1/leverage", symbol="ETHUSDT", leverage="7")
            msg = await ws.receive_json(timeout=5)
            assert msg["e"] == "ACCOUNT_CONFIG_UPDATE" and msg["ac"] == {"s": "ETHUSDT", "l": 7}
        assert await rest.call("DELETE", "/fapi/v1/listenKey") == {}
        assert (await rest.call("PUT", "/fapi/v1/listenKey"))["code"] == -1125
        async with rest.session.get(f"{server.url}/private/ws?listenKey={lk}",
                                    headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                             "Sec-WebSocket-Version": "13",
                                             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
            assert r.status == 400
    finally:
        await rest.close()


def test_listen_keys_expire_after_sixty_minutes_without_keepalive():
    keys = ListenKeys()
    key = keys.create(1, now=0)
    assert keys.create(1, now=1000) == key  # the same key, extended
    assert keys.keepalive(1, now=30 * 60_000) == key
    assert keys.expire(now=30 * 60_000 + 60 * 60_000 - 1) == []
    assert keys.account_of(key, now=90 * 60_000 - 1) == 1
    assert keys.expire(now=90 * 60_000) == [(key, 1)]
    assert keys.account_of(key, now=90 * 60_000) is None
    assert keys.keepalive(1, now=90 * 60_000) is None
    assert keys.create(1, now=90 * 60_000) != key


async def test_local_book_from_raw_depth_diffs_equals_rest_depth(server):
    keys = [server.newkey("1000000") for _ in range(3)]
    rests = [Rest(server, k) for k in keys]
    book = {"BUY": {}, "SELL": {}}
    try:
        async with rests[0].session.ws_connect(
                server.ws_url + "/public/ws/0") as ws:  # ccxt's route
            await ws.send_json({"method": "SUBSCRIBE", "params": ["solusdt@depth"], "id": 1})
            assert await ws.receive_json(timeout=5) == {"result": None, "id": 1}
            rng = random.Random(11)

            async def trade(i):
                r = rests[i % 3]
                kind = rng.random()
                if kind < 0.75:
                    side = rng.choice(["BUY", "SELL"])
                    price = Decimal("20") + Decimal(rng.randrange(-30, 30)) / 100
                    await r.call("POST", "/fapi/v1/order", symbol="SOLUSDT", side=side,
                                 type="LIMIT", quantity=str(rng.randrange(1, 20)),
                                 price=str(price), timeInForce="GTC")
                elif kind < 0.9:
                    await r.call("POST", "/fapi/v1/order", symbol="SOLUSDT",
                                 side=rng.choice(["BUY", "SELL"]), type="MARKET", quantity="3")
                else:
                    await r.call("DELETE", "/fapi/v1/allOpenOrders", symbol="SOLUSDT")
            await asyncio.gather(*[trade(i) for i in range(30)])
            snap = await rests[0].public("/fapi/v1/depth", symbol="SOLUSDT", limit="1000")
            for side, rows in (("BUY", snap["bids"]), ("SELL", snap["asks"])):
                book[side] = {Decimal(p): Decimal(q) for p, q in rows}
            last = snap["lastUpdateId"]
            async def flow():
                await asyncio.gather(*[trade(i) for i in range(30, 150)])
                for side, price in (("BUY", "19.5"), ("SELL", "20.5")):  # a book at the end
                    await rests[0].call("POST", "/fapi/v1/order", symbol="SOLUSDT", side=side,
                                        type="LIMIT", quantity="1", price=price,
                                        timeInForce="GTC")
            more = asyncio.ensure_future(flow())
            started = False
            prev_u = None
            diffs = 0
            while True:
                try:
                    msg = await ws.receive_json(timeout=2)
                except asyncio.TimeoutError:
                    if more.done():
                        break
                    continue
                if msg["u"] < last:
                    continue
                if not started:
                    assert msg["U"] <= last <= msg["u"] or msg["pu"] == last
                    started = True
                else:
                    assert msg["pu"] == prev_u
                prev_u = msg["u"]
                diffs += 1
                for side, key in (("BUY", "b"), ("SELL", "a")):
                    for p, q in msg[key]:
                        if Decimal(q) == 0:
                            book[side].pop(Decimal(p), None)
                        else:
                            book[side][Decimal(p)] = Decimal(q)
            await more
        final = await rests[0].public("/fapi/v1/depth", symbol="SOLUSDT", limit="1000")
        assert prev_u == final["lastUpdateId"]
        assert sorted(book["BUY"].items(), reverse=True) == \
            [(Decimal(p), Decimal(q)) for p, q in final["bids"]]
        assert sorted(book["SELL"].items()) == [(Decimal(p), Decimal(q)) for p, q in final["asks"]]
        assert final["bids"] and final["asks"] and diffs > 0
    finally:
        for r in rests:
            await r.close()


async def test_a_slow_reader_is_cut_off_and_the_others_are_served(server):
    k = server.newkey("1000000")
    rest = Rest(server, k)
    streams = "/".join(f"adausdt@{s}" for s in ("depth", "depth20", "depth10", "depth5",
                                                "depth@100ms", "depth20@100ms", "trade",
                                                "aggTrade", "bookTicker"))
    # a client that connects, subscribes, and never reads (a tiny receive buffer)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", server.api_port))
    slow.sendall((f"GET /stream?streams={streams} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    try:
        async with rest.session.ws_connect(f"{server.ws_url}/stream?streams={streams}") as good:
            received = 0
            for i in range(120):
                for j in range(5):
                    await rest.call("POST", "/fapi/v1/order", symbol="ADAUSDT", side="BUY",
                                    type="LIMIT", quantity="10",
                                    price=str(Decimal("1") - Decimal(i * 5 + j) / 1000),
                                    timeInForce="GTC")
                await rest.call("POST", "/fapi/v1/order", symbol="ADAUSDT", side="SELL",
                                type="MARKET", quantity="10")
                while True:  # the good reader keeps up
                    try:
                        await good.receive_json(timeout=0.01)
                        received += 1
                    except asyncio.TimeoutError:
                        break
            assert received > 1000
        # the slow one was reset: reading gives what the kernel held, then the end
        slow.settimeout(5)
        total = 0
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            while True:
                chunk = slow.recv(65536)
                if not chunk:
                    raise ConnectionResetError("closed")
                total += len(chunk)
        assert server.alive()
        assert (await rest.public("/fapi/v1/ping")) == {}
    finally:
        slow.close()
        await rest.close()


def test_the_projection_is_rebuilt_from_the_log_after_a_restart(tmp_path):
    s = ApiServerProcess(tmp_path)
    paths = [("/fapi/v1/allOrders", {"symbol": "BTCUSDT"}),
             ("/fapi/v1/userTrades", {"symbol": "BTCUSDT"}), ("/fapi/v1/income", {}),
             ("/fapi/v1/openOrders", {})]
    public = [("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m"}),
              ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1d"}),
              ("/fapi/v1/aggTrades", {"symbol": "BTCUSDT"}),
              ("/fapi/v1/trades", {"symbol": "BTCUSDT"}),
              ("/fapi/v1/depth", {"symbol": "BTCUSDT"})]

    async def snapshot(server, key):
        rest = Rest(server, key)
        try:
            out = [await rest.call("GET", p, **q) for p, q in paths]
            out += [await rest.public(p, **q) for p, q in public]
            out[-1].pop("E")  # the depth's message time
            tick = await rest.public("/fapi/v1/ticker/24hr", symbol="BTCUSDT")
            out.append({k: v for k, v in tick.items() if k not in ("openTime", "closeTime")})
            return out
        finally:
            await rest.close()

    async def trade(server, k, k2):
        a, b = Rest(server, k), Rest(server, k2)
        try:
            for i in range(5):
                await a.call("POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL",
                             type="LIMIT", quantity="0.01", price=str(30000 + i * 10),
                             timeInForce="GTC")
            await b.call("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY",
                         type="MARKET", quantity="0.025")
            await a.call("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId="5")
        finally:
            await a.close()
            await b.close()
    try:
        s.set_mark("BTCUSDT", "30000")
        k, k2 = s.newkey("10000"), s.newkey("10000")
        asyncio.run(trade(s, k, k2))
        before = asyncio.run(snapshot(s, k))
        assert len(before[0]) == 5 and len(before[1]) == 3
    finally:
        assert s.stop() == 0
    s = ApiServerProcess(tmp_path)
    try:
        assert asyncio.run(snapshot(s, k)) == before
    finally:
        assert s.stop() == 0


async def test_market_streams_and_a_liquidation_through_the_api(server):
    """Mark price, partial depth, book ticker, tickers, and a liquidation: forceOrder on the
    public streams, MARGIN_CALL and ACCOUNT_UPDATE on the user stream, GET forceOrders."""
    maker, gambler = server.newkey("1000000"), server.newkey("700")
    m, g = Rest(server, maker), Rest(server, gambler)
    streams = "/".join(["dogeusdt@markPrice@1s", "dogeusdt@depth5", "dogeusdt@bookTicker",
                        "dogeusdt@miniTicker", "dogeusdt@ticker", "dogeusdt@forceOrder",
                        "!forceOrder@arr", "!markPrice@arr@1s", "dogeusdt@kline_1m"])
    try:
        await server.admin_request("setMarkPrice", symbol="DOGEUSDT", markPrice="0.1")
        lk = (await g.call("POST", "/fapi/v1/listenKey"))["listenKey"]
        async with m.session.ws_connect(f"{server.ws_url}/market/stream?streams={streams}") as ws, \
                m.session.ws_connect(f"{server.ws_url}/private/ws?listenKey={lk}") as user:
            assert (await g.call("POST", "/fapi/v1/leverage", symbol="DOGEUSDT",
                                 leverage="50"))["leverage"] == 50
            await m.call("POST", "/fapi/v1/order", symbol="DOGEUSDT", side="SELL", type="LIMIT",
                         quantity="300000", price="0.1", timeInForce="GTC")
            filled = await g.call("POST", "/fapi/v1/order", symbol="DOGEUSDT", side="BUY",
                                  type="MARKET", quantity="300000", newOrderRespType="RESULT")
            assert filled["status"] == "FILLED"
            await m.call("POST", "/fapi/v1/order", symbol="DOGEUSDT", side="BUY", type="LIMIT",
                         quantity="300000", price="0.098", timeInForce="GTC")
            got: dict = {}
            while not {"dogeusdt@depth5", "dogeusdt@bookTicker", "dogeusdt@miniTicker",
                       "dogeusdt@ticker", "dogeusdt@markPrice@1s", "!markPrice@arr@1s",
                       "dogeusdt@kline_1m"} <= set(got):
                msg = await ws.receive_json(timeout=5)
                got[msg["stream"]] = msg["data"]
            assert got["dogeusdt@depth5"]["b"] == [["0.098", "300000"]]
            assert got["dogeusdt@bookTicker"]["b"] == "0.098"
            assert got["dogeusdt@miniTicker"]["c"] == "0.1"
            assert got["dogeusdt@ticker"]["v"] == "300000"
            assert got["dogeusdt@markPrice@1s"]["p"] == "0.1"
            assert any(r["s"] == "DOGEUSDT" for r in got["!markPrice@arr@1s"])
            # the mark falls: 700 USDT behind 30,000 of notional at 50x is liquidated
            await server.admin_request("setMarkPrice", symbol="DOGEUSDT", markPrice="0.0985")
            force = {}
            while len(force) < 2:
                msg = await ws.receive_json(timeout=10)
                if "forceOrder" in msg["stream"]:
                    force[msg["stream"]] = msg["data"]["o"]
            assert force["dogeusdt@forceOrder"] == force["!forceOrder@arr"]
            assert (force["!forceOrder@arr"]["S"], force["!forceOrder@arr"]["z"]) == \
                ("SELL", "300000")
            kinds = []
            while "MARGIN_CALL" not in kinds or kinds[-1] != "ACCOUNT_UPDATE":
                msg = await user.receive_json(timeout=10)
                kinds.append(msg["e"])
            assert kinds[:5] == ["ACCOUNT_CONFIG_UPDATE", "ORDER_TRADE_UPDATE",
                                 "ORDER_TRADE_UPDATE", "TRADE_LITE", "ACCOUNT_UPDATE"]
            assert msg["a"]["P"][0]["pa"] == "0"  # closed by the liquidation
        rows = await g.call("GET", "/fapi/v1/forceOrders", symbol="DOGEUSDT")
        assert [(r["side"], r["status"], r["clientOrderId"][:10]) for r in rows] == \
            [("SELL", "FILLED", "autoclose-")]
        risk = await g.call("GET", "/fapi/v3/positionRisk")
        assert risk == []
    finally:
        await m.close()
        await g.close()


async def test_a_listen_key_expires_without_keepalive(tmp_path):
    s = ApiServerProcess(tmp_path, "--api-listen-key-minutes", "0.03")  # 1.8 s
    try:
        k = s.newkey("100")
        rest = Rest(s, k)
        try:
            lk = (await rest.call("POST", "/fapi/v1/listenKey"))["listenKey"]
            async with rest.session.ws_connect(f"{s.ws_url}/private/ws?listenKey={lk}") as ws:
                msg = await ws.receive_json(timeout=10)
            assert msg["e"] == "listenKeyExpired" and msg["listenKey"] == lk
            assert (await rest.call("PUT", "/fapi/v1/listenKey"))["code"] == -1125
            assert (await rest.call("POST", "/fapi/v1/listenKey"))["listenKey"] != lk
        finally:
            await rest.close()
    finally:
        assert s.stop() == 0


async def test_python_binance_market_sockets(server):
    k, k2 = server.newkey("100000"), server.newkey("100000")
    base = {"API_URL": server.url + "/api", "FUTURES_URL": server.url + "/fapi",
            "FUTURES_DATA_URL": server.url + "/futures/data"}
    local_async = type("LocalAsyncClient", (AsyncClient,), base)
    local_bsm = type("LocalBSM", (BinanceSocketManager,), {"FSTREAM_URL": server.ws_url + "/"})
    client = await local_async.create(k["apiKey"], k["secret"])
    other = await local_async.create(k2["apiKey"], k2["secret"])
    bsm = local_bsm(client)
    try:
        # /market/ws/ethusdt_perpetual@continuousKline_1m and /public/stream?streams=...@depth10
        async with bsm.kline_futures_socket("ETHUSDT") as klines, \
                bsm.futures_depth_socket("ETHUSDT", depth="10") as depth:
            await asyncio.sleep(0.3)
            await client.futures_create_order(symbol="ETHUSDT", side="SELL", type="LIMIT",
                                              quantity="0.5", price="2005", timeInForce="GTC")
            await other.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET",
                                             quantity="0.2")
            kline = await asyncio.wait_for(klines.recv(), 10)
            book = await asyncio.wait_for(depth.recv(), 10)
            # their read loops leave on the next message
            nudge = asyncio.get_running_loop().call_later(0.2, lambda: asyncio.create_task(
                other.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET",
                                           quantity="0.1")))
        nudge.cancel()
        assert (kline["e"], kline["ps"], kline["ct"], kline["k"]["i"], kline["k"]["c"]) == \
            ("continuous_kline", "ETHUSDT", "PERPETUAL", "1m", "2005")
        assert book["stream"] == "ethusdt@depth10" and book["data"]["e"] == "depthUpdate"
        assert book["data"]["a"][0][0] == "2005"
    finally:
        await client.close_connection()
        await other.close_connection()
