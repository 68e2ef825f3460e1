"""Issue 11: what an adversarial test of the running server found, each reproduced against a
real server process on 127.0.0.1 (items 1, 2, 5, 6, 7, 8, 10 and what a new user tripped
over). Each test failed on the code before its fix."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from engine.client import Client, ClientError
from engine.eventlog import LogReader
from proto import wire
from tests.test_gateway import ROOT, ServerProcess, next_stream, order


def reap(*servers) -> None:
    """Kill what a failed test left running (a passing test stopped its servers itself)."""
    for s in servers:
        if s is not None and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def raw_jsonl(port: int):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    hello = json.loads(await r.readline())
    return r, w, hello


async def login_line(server, key: dict, nonce: str) -> bytes:
    return json.dumps({"id": 0, "op": "login", "apiKey": key["apiKey"],
                       "signature": wire.sign(key["secret"], nonce)}).encode() + b"\n"


@pytest.fixture
def server(tmp_path):
    s = ServerProcess(tmp_path)
    yield s
    assert s.stop() == 0


# -- item 1 ----------------------------------------------------------------------------------
async def test_one_request_cannot_stop_the_server(server):
    admin = await server.admin_client()
    trader = await server.trader(admin, 1, mode=wire.JSONL)
    for op, fields, name in (
            ("newOrder", order("BUY", "184467440737.09551616", "30000"), "quantity"),
            ("cancelOrder", {"symbol": "BTCUSDT", "orderId": 18446744073709551616}, "orderId"),
            ("setLeverage", {"symbol": "BTCUSDT", "leverage": 10 ** 30}, "leverage"),
            ("withdraw", {"amount": "99999999999999999999999"}, "amount")):
        with pytest.raises(ClientError) as e:
            await trader.request(op, **fields)
        assert e.value.code == -1102 and f"'{name}'" in e.value.msg
    # the same process still serves, and the log holds none of them
    assert server.proc.poll() is None
    assert (await trader.request("newOrder", **order("BUY", "0.001", "29000")))["status"] == "NEW"
    for c in (admin, trader):
        await c.close()


# -- item 2 ----------------------------------------------------------------------------------
async def _deep_book(server, admin, levels: int = 1200) -> None:
    """`levels` price levels on BTCUSDT (200 open orders per account and symbol)."""
    for a in range((levels + 199) // 200):
        t = await server.trader(admin, 100 + a)
        futures = [t.submit("newOrder", **order("BUY", "0.001", str(20000 + 200 * a + i)))
                   for i in range(min(200, levels - 200 * a))]
        assert all(r["ok"] for r in await asyncio.gather(*futures))
        await t.close()


async def test_unread_depth_answers_are_bounded_in_bytes_and_others_are_served(tmp_path):
    s = ServerProcess(tmp_path, "--weight-per-min", "100000000", "--rate", "100000",
                      "--burst", "100000")
    try:
        admin = await s.admin_client()
        await _deep_book(s, admin)
        before = rss_kb(s.proc.pid)
        greedy = socket.socket()
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.connect(("127.0.0.1", s.port))
        greedy.setblocking(False)
        line = b'{"id": 1, "op": "query", "query": "depth", "symbol": "BTCUSDT", "limit": 1000}\n'
        sent = 0
        deadline = time.monotonic() + 15
        while sent < 3000 and time.monotonic() < deadline:  # never reads an answer
            try:
                greedy.send(line)
                sent += 1
            except BlockingIOError:
                await asyncio.sleep(0.01)  # the server stopped reading us: backpressure
        await asyncio.sleep(0.5)
        grown = rss_kb(s.proc.pid) - before
        # another client is greeted and answered at once
        t0 = time.monotonic()
        other = await s.client(wire.JSONL)
        depth = await other.query("depth", symbol="BTCUSDT", limit=5)
        assert len(depth["bids"]) == 5 and time.monotonic() - t0 < 2
        assert grown < 80_000, f"the server grew {grown} kB for {sent} unread depth answers"
        greedy.close()
        await other.close()
        await admin.close()
    finally:
        assert s.stop() == 0


async def test_depth_limits_are_binances_and_reads_are_weighed(server):
    admin = await server.admin_client()
    await _deep_book(server, admin, levels=600)
    c = await server.client(wire.JSONL)
    assert len((await c.query("depth", symbol="BTCUSDT"))["bids"]) == 500  # Binance's default
    for limit in (5, 10, 20, 50, 100, 500, 1000):
        got = await c.query("depth", symbol="BTCUSDT", limit=limit)
        assert len(got["bids"]) == min(limit, 600)
    for bad in (7, 0, -1, 5000, 10 ** 30):
        with pytest.raises(ClientError) as e:
            await c.query("depth", symbol="BTCUSDT", limit=bad)
        assert e.value.code == -4021 and str(bad) in e.value.msg
    # depth 1000 weighs 20 of the 2,400 a minute: the budget runs out, with Binance's -1003
    answers = await asyncio.gather(*[c.submit("query", query="depth", symbol="BTCUSDT",
                                              limit=1000) for _ in range(130)])
    refused = [a for a in answers if not a["ok"]]
    assert refused and len(answers) - len(refused) < 120
    assert {a["code"] for a in refused} == {-1003} and "request weight" in refused[0]["msg"]
    await c.close()
    await admin.close()


async def test_list_answers_are_capped(server):
    admin = await server.admin_client()
    t = await server.trader(admin, 1)
    symbols = ("AXSUSDT", "FILUSDT", "THETAUSDT", "UNIUSDT", "DOGEUSDT", "FTMUSDT")
    for sym in symbols:  # tick 0.0001, step 0.1: 200 orders of 1 at 10, 9.999, ...
        results = await asyncio.gather(*[t.submit("newOrder", **order(
            "BUY", "1", f"{10 - i / 1000:.3f}", symbol=sym)) for i in range(200)])
        assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:2]
    everything = await t.query("openOrders")
    assert len(everything) == 1000
    assert [o["symbol"] for o in everything[::200]] == sorted(symbols)[:5]
    assert len(await t.query("openOrders", symbol="UNIUSDT")) == 200
    await t.close()
    await admin.close()


async def test_idle_connections_time_out_and_the_server_has_a_connection_limit(tmp_path):
    s = ServerProcess(tmp_path, "--idle-timeout", "1", "--max-connections", "4")
    try:
        r, w, _ = await raw_jsonl(s.port)
        sub_r, sub_w, _ = await raw_jsonl(s.port)
        sub_w.write(b'{"id": 1, "op": "subscribe", "streams": ["trade@BTCUSDT"]}\n')
        await sub_w.drain()
        assert json.loads(await sub_r.readline())["ok"]
        # the idle one is told and closed; the subscriber is not idle
        bye = json.loads(await asyncio.wait_for(r.readline(), 5))
        assert bye["ok"] is False and "idle" in bye["msg"]
        assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
        # four at most: the fifth is refused with a reason, the others go on
        held = [await raw_jsonl(s.port) for _ in range(3)]
        r5, w5 = await asyncio.open_connection("127.0.0.1", s.port)
        refused = json.loads(await asyncio.wait_for(r5.readline(), 5))
        assert refused["ok"] is False and "connections" in refused["msg"]
        assert await asyncio.wait_for(r5.read(), 5) == b""
        w5.close()
        for _, hw, _ in held:
            hw.close()
        await asyncio.sleep(0.2)
        again = await s.client(wire.JSONL)  # room again
        assert (await again.request("ping")) == {}
        await again.close()
        sub_w.close()
    finally:
        assert s.stop() == 0


# -- item 5 ----------------------------------------------------------------------------------
async def test_a_second_login_on_a_connection_is_refused(server):
    admin = await server.admin_client()
    keys = {}
    for a in (1, 2):
        await admin.request("createAccount", account=a, registeredAt=0)
        await admin.request("deposit", account=a, amount="100000")
        keys[a] = await admin.request("createApiKey", account=a)
    c = await server.client()
    assert (await c.login(keys[1]["apiKey"], keys[1]["secret"]))["account"] == 1
    await c.subscribe("user")
    for secret in (keys[2]["secret"], "wrong"):
        with pytest.raises(ClientError) as e:
            await c.login(keys[2]["apiKey"], secret)
        assert "already logged in" in e.value.msg
    # still account 1, and only account 1's stream
    placed = await c.request("newOrder", **order("BUY", "0.001", "29000"))
    assert (await c.query("openOrders"))[0]["orderId"] == placed["orderId"]
    msg = await next_stream(c, "user")
    assert msg["account"] == 1
    await c.close()
    await admin.close()


async def test_closed_connections_leave_no_subscriptions_behind(tmp_path):
    """In-process, to look at the gateway's tables: 40 connections log in as A, subscribe to
    `user`, try B, close; afterwards nothing refers to them."""
    from engine.server.app import Server, ServerConfig
    config = ServerConfig(port=0, log_path=str(tmp_path / "e.log"),
                          keys_path=str(tmp_path / "k.json"), summary_every_s=60)
    server = Server(config)
    await server.start()
    try:
        port = server.address[1]
        admin_key = next(iter(server.keys.keys.values()))
        admin = Client("127.0.0.1", port)
        await admin.connect()
        await admin.login(admin_key.apiKey, admin_key.secret)
        keys = {}
        for a in (1, 2):
            await admin.request("createAccount", account=a, registeredAt=0)
            keys[a] = await admin.request("createApiKey", account=a)
        for _ in range(40):
            c = Client("127.0.0.1", port)
            await c.connect()
            await c.login(keys[1]["apiKey"], keys[1]["secret"])
            await c.subscribe("user", "trade@BTCUSDT")
            with pytest.raises(ClientError):
                await c.login(keys[2]["apiKey"], keys[2]["secret"])
            await c.close()
        await asyncio.sleep(0.3)
        gw = server.gateway
        # the admin's, and the risk consumer's when it runs as a process (the default)
        assert len([c for c in gw.connections if not c.risk]) == 1
        assert not any(gw.user_subscribers.values()) and not any(gw.subscribers.values())
        await admin.close()
    finally:
        await server.stop()


# -- item 6 ----------------------------------------------------------------------------------
COUNTERPARTY_KEYS = {"makerAccount", "takerAccount", "makerOrderId", "takerOrderId",
                     "makerFee", "takerFee", "makerRealizedPnl", "takerRealizedPnl",
                     "counterpartyRealizedPnl"}


async def test_a_user_sees_only_its_own_side_of_a_trade(server):
    admin = await server.admin_client()
    alice = await server.trader(admin, 1)
    bob = await server.trader(admin, 2)
    await alice.subscribe("user")
    await bob.subscribe("user")
    ask = await alice.request("newOrder", **order("SELL", "0.01", "30000"))
    bid = await bob.request("newOrder", **order("BUY", "0.004", "30000", tif="IOC"))
    for me, mine, my_order, side in ((alice, 1, ask, "SELL"), (bob, 2, bid, "BUY")):
        msg = await next_stream(me, "user")
        while msg["e"] != "trade":
            msg = await next_stream(me, "user")
        assert set(msg) == {"e", "E", "tradeId", "account", "symbol", "orderId", "side", "price",
                            "quantity", "maker", "fee", "feeAsset", "realizedPnl"}
        assert (msg["account"], msg["orderId"], msg["side"]) == (mine, my_order["orderId"], side)
        assert msg["quantity"] == "0.004" and msg["price"] == "30000"
        assert msg["maker"] is (side == "SELL")
        assert msg["fee"] == ("0.024" if side == "SELL" else "0.06")  # 0.02 % / 0.05 % of 120
    for c in (admin, alice, bob):
        await c.close()


async def test_a_token_subscription_reply_carries_no_counterparty_data(server):
    admin = await server.admin_client()
    await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="50000")
    mm = await server.trader(admin, 1)
    ask = await mm.request("newOrder", **order("SELL", "1", "50000"))
    await admin.request("launchToken", tokenName="BTCUP")
    alice = await server.trader(admin, 2)
    await alice.request("futuresTransfer", amount="20000", type=2)
    res = await alice.request("subscribeToken", tokenName="BTCUP", cost="10000")
    text = json.dumps(res)
    assert not any(k in text for k in COUNTERPARTY_KEYS)
    assert '"account": 1' not in text and f'"orderId": {ask["orderId"]}' not in text
    assert [e["e"] for e in res["events"] if "account" in e] == ["tokenSubscribed"]
    for c in (admin, mm, alice):
        await c.close()


async def test_account_update_names_the_margin_type_as_binance_does(server):
    admin = await server.admin_client()
    a = await server.trader(admin, 1)
    b = await server.trader(admin, 2)
    await a.subscribe("user")
    await b.request("newOrder", **order("SELL", "0.01", "30000"))
    await a.request("newOrder", **order("BUY", "0.01", "30000"))
    msg = await next_stream(a, "user")
    while msg["e"] != "ACCOUNT_UPDATE":
        msg = await next_stream(a, "user")
    assert msg["a"]["P"][0]["mt"] == "cross"
    for c in (admin, a, b):
        await c.close()


# -- item 7 ----------------------------------------------------------------------------------
async def test_a_half_closed_connection_gets_its_reply(server):
    admin = await server.admin_client()
    key = (await server.trader(admin, 1))
    await key.close()
    k = await admin.request("createApiKey", account=1)
    sock = socket.create_connection(("127.0.0.1", server.port))
    f = sock.makefile("rb")
    hello = json.loads(f.readline())
    sock.sendall(await login_line(server, k, hello["nonce"]))
    sock.sendall(json.dumps({"id": 1, "op": "newOrder", **order("BUY", "0.001", "29000")})
                 .encode() + b"\n")
    sock.shutdown(socket.SHUT_WR)  # end of input right after the order
    lines = [json.loads(x) for x in f.read().splitlines()]
    sock.close()
    assert [m["id"] for m in lines] == [0, 1] and lines[1]["ok"]
    assert lines[1]["result"]["status"] == "NEW"
    await admin.close()


async def test_deeply_nested_frames_get_an_error_reply(server):
    for first, deep in ((b"", b"[" * 5000 + b"]" * 5000 + b"\n"),
                        (b"", b'{"id": 1, "op": "query", "x": ' + b"[" * 5000 + b"]" * 5000
                         + b"}\n")):
        r, w, _ = await raw_jsonl(server.port)
        w.write(first + deep)
        await w.drain()
        answer = json.loads(await asyncio.wait_for(r.readline(), 5))
        assert answer["ok"] is False and answer["code"] == -1100 and "nested" in answer["msg"]
        w.close()
    # msgpack framing too
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    await r.readline()
    body = b"\x91" * 5000 + b"\x90"
    w.write(b"\x00" + wire.LENGTH.pack(len(body)) + body)
    await w.drain()
    head = await asyncio.wait_for(r.readexactly(4), 5)
    error = wire.decode_body(await r.readexactly(wire.LENGTH.unpack(head)[0]), wire.MSGPACK)
    assert error["code"] == -1100 and "nested" in error["msg"]
    w.close()


async def test_cancel_all_orders_answers_for_every_order(server):
    admin = await server.admin_client()
    t = await server.trader(admin, 1)
    ids = [(await t.request("newOrder", **order("BUY", "0.001", str(29000 - i))))["orderId"]
           for i in range(5)]
    res = await t.request("cancelAllOrders", symbol="BTCUSDT")
    assert res["code"] == 200 and res["msg"] == "The operation of cancel all open order is done."
    assert [o["orderId"] for o in res["orders"]] == ids
    assert {o["status"] for o in res["orders"]} == {"CANCELED"}
    await t.close()
    await admin.close()


# -- item 8 ----------------------------------------------------------------------------------
def test_two_servers_cannot_share_a_log_or_a_key_store(server, tmp_path):
    for log in (server.log, tmp_path / "other.log"):  # the same log; the same key store
        second = subprocess.run(
            [sys.executable, "-m", "engine", "serve", "--port", "0", "--log", str(log),
             "--keys", str(server.keys_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=20)
        assert second.returncode != 0
        out = second.stdout + second.stderr
        assert "Traceback" not in out and "another server" in out, out
    assert server.proc.poll() is None
    reader = LogReader(server.log)
    list(reader.records())
    assert reader.problem is None


# -- item 10 ---------------------------------------------------------------------------------
async def test_keys_are_appended_and_survive_a_crash(tmp_path):
    s = ServerProcess(tmp_path)
    try:
        await _keys_survive(s, tmp_path)
    finally:
        reap(s)


async def _keys_survive(s, tmp_path):
    admin = await s.admin_client()
    await admin.request("createAccount", account=1, registeredAt=0)
    first = s.keys_path.read_bytes()
    inode = os.stat(s.keys_path).st_ino
    made = [await admin.request("createApiKey", account=1) for _ in range(20)]
    after = s.keys_path.read_bytes()
    assert os.stat(s.keys_path).st_ino == inode  # the same file, not a rewritten copy
    assert after.startswith(first.rstrip(b"\n]"))  # earlier keys untouched: appended
    os.kill(s.proc.pid, signal.SIGKILL)
    s.proc.wait()
    s.proc.stdout.close()
    with open(s.keys_path, "ab") as f:  # a key line torn by a crash
        f.write(b',\n{"apiKey": "abc", "sec')
    again = ServerProcess(tmp_path)
    try:
        for k in made[::7]:
            c = await again.client()
            assert (await c.login(k["apiKey"], k["secret"]))["account"] == 1
            await c.close()
        assert again.stop() == 0
    finally:
        reap(again)
    assert json.loads(s.keys_path.read_text())[0]["admin"] is True  # still a JSON array
