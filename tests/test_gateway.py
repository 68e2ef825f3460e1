"""End to end: a real server process on 127.0.0.1, real clients over TCP."""
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from engine.client import Client, ClientError
from engine.eventlog import LogReader
from proto import wire

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ServerProcess:
    def __init__(self, tmp_path, *extra: str) -> None:
        self.log = tmp_path / "engine.log"
        self.keys_path = tmp_path / "keys.json"
        self.stderr_path = tmp_path / "server.stderr"
        with open(self.stderr_path, "ab") as err:  # kept for a failing test to show
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine", "serve", "--port", "0", "--log", str(self.log),
                 "--keys", str(self.keys_path), "--summary-every", "60", *extra],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.first_line = self.proc.stdout.readline()
        assert "serving on" in line, line + self.stderr_path.read_text()
        self.port = int(line.split("serving on ")[1].split()[0].rsplit(":", 1)[1])
        self.admin = json.loads(self.keys_path.read_text())[0]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.proc.stdout.close()

    async def client(self, mode=wire.MSGPACK) -> Client:
        c = Client("127.0.0.1", self.port, mode)
        await c.connect()
        return c

    async def admin_client(self) -> Client:
        c = await self.client()
        await c.login(self.admin["apiKey"], self.admin["secret"])
        return c

    async def trader(self, admin: Client, account: int, deposit: str = "1000000",
                     mode=wire.MSGPACK) -> Client:
        await admin.request("createAccount", account=account, registeredAt=0)
        await admin.request("deposit", account=account, amount=deposit)
        key = await admin.request("createApiKey", account=account)
        c = await self.client(mode)
        await c.login(key["apiKey"], key["secret"])
        return c


@pytest.fixture
def server(tmp_path):
    s = ServerProcess(tmp_path, "--rate", "2000", "--burst", "400", "--outbound-limit", "200",
                      "--sndbuf", "65536")
    yield s
    assert s.stop() == 0


def order(side, qty, price, tif="GTC", symbol="BTCUSDT", **kw):
    return dict(symbol=symbol, side=side, type="LIMIT", quantity=qty, price=price,
                timeInForce=tif, **kw)


async def test_login_good_and_bad(server):
    c = await server.client(wire.JSONL)
    with pytest.raises(ClientError) as bad:
        await c.request("login", apiKey=server.admin["apiKey"], signature="00" * 32)
    assert bad.value.code == -1022
    with pytest.raises(ClientError) as unknown:
        await c.login("no-such-key", "secret")
    assert unknown.value.code == -1022
    # not logged in: public data only
    with pytest.raises(ClientError) as anon:
        await c.request("newOrder", **order("BUY", "0.01", "30000"))
    assert anon.value.code == -2015
    assert (await c.query("depth", symbol="BTCUSDT"))["bids"] == []
    with pytest.raises(ClientError) as user:
        await c.subscribe("user")
    assert user.value.code == -2015
    assert await c.login(server.admin["apiKey"], server.admin["secret"]) == {"account": None, "admin": True}
    await c.close()


async def test_trading_cancelling_and_other_accounts_orders_are_untouchable(server):
    admin = await server.admin_client()
    alice = await server.trader(admin, 1)
    bob = await server.trader(admin, 2, mode=wire.JSONL)
    placed = await alice.request("newOrder", **order("SELL", "0.010", "30000", newClientOrderId="a-1"))
    assert placed["status"] == "NEW" and placed["orderId"] == 1
    filled = await bob.request("newOrder", **order("BUY", "0.004", "30100", tif="IOC"))
    assert (filled["status"], filled["executedQty"], filled["avgPrice"]) == ("FILLED", "0.004", "30000")
    # bob may not cancel, modify or act for alice
    with pytest.raises(ClientError) as e:
        await bob.request("cancelOrder", symbol="BTCUSDT", orderId=1)
    assert e.value.code == -2011
    with pytest.raises(ClientError) as e:
        await bob.request("cancelOrder", symbol="BTCUSDT", orderId=1, account=1)
    assert e.value.code == -2015
    with pytest.raises(ClientError) as e:
        await bob.request("deposit", account=2, amount="1")  # admin only
    assert e.value.code == -2015
    with pytest.raises(ClientError) as e:
        await bob.request("liquidate", account=1)  # the risk engine's only
    assert e.value.code == -2015
    assert await bob.query("openOrders") == []
    mine = await alice.query("openOrders")
    assert [(o["orderId"], o["executedQty"]) for o in mine] == [(1, "0.004")]
    canceled = await alice.request("cancelOrder", symbol="BTCUSDT", origClientOrderId="a-1")
    assert canceled["status"] == "CANCELED"
    risk = await bob.query("positionRisk", symbol="BTCUSDT")
    assert risk[0]["positionAmt"] == "0.004"
    with pytest.raises(ClientError) as e:
        await bob.query("positionRisk", account=1)
    assert e.value.code == -2015
    for c in (admin, alice, bob):
        await c.close()


async def next_stream(client: Client, name: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = await asyncio.wait_for(client.streams.get(), deadline - time.monotonic())
        if msg["stream"] == name:
            return msg["data"]


async def test_streams_deliver_private_public_mark_and_liquidation(server):
    admin = await server.admin_client()
    maker = await server.trader(admin, 1)
    gambler = await server.trader(admin, 2, deposit="700")
    watcher = await server.client()
    await watcher.subscribe("trade@BTCUSDT", "markPrice@BTCUSDT", "!forceOrder")
    await gambler.subscribe("user")
    await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="30000")
    await gambler.request("setLeverage", symbol="BTCUSDT", leverage=50)
    await maker.request("newOrder", **order("SELL", "1", "30000"))
    await gambler.request("newOrder", **order("BUY", "1", "30000"))
    mark = await next_stream(watcher, "markPrice@BTCUSDT")
    assert mark["p"] == "30000"
    trade = await next_stream(watcher, "trade@BTCUSDT")
    assert (trade["p"], trade["q"], trade["m"]) == ("30000", "1", False)
    kinds = set()
    while not {"orderAccepted", "trade", "ACCOUNT_UPDATE"} <= kinds:
        kinds.add((await next_stream(gambler, "user"))["e"])
    await maker.request("newOrder", **order("BUY", "1", "29400"))
    # wallet 685 after fees: at 29,350 the balance is 35 against MM 117.4; bankrupt at 29,315
    await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="29350")
    force = await next_stream(watcher, "!forceOrder")
    assert force["o"]["s"] == "BTCUSDT" and force["o"]["S"] == "SELL" and force["o"]["z"] == "1"
    seen = set()
    while "liquidationStarted" not in seen:
        seen.add((await next_stream(gambler, "user"))["e"])
    assert "marginCall" in seen
    risk = await gambler.query("positionRisk", symbol="BTCUSDT")
    assert risk[0]["positionAmt"] == "0"
    for c in (admin, maker, gambler, watcher):
        await c.close()


async def test_local_book_from_depth_diffs_equals_the_servers_book(server):
    admin = await server.admin_client()
    traders = [await server.trader(admin, a) for a in (1, 2, 3)]
    rng = random.Random(4)
    for _ in range(20):  # a book before the watcher arrives
        await traders[0].request("newOrder", **order(rng.choice(["BUY", "SELL"]), "0.01",
                                                     str(30000 + rng.randint(-50, 50) * 10)))
    watcher = await server.client(wire.JSONL)
    snapshot = (await watcher.subscribe("depth@BTCUSDT"))["snapshots"]["depth@BTCUSDT"]
    book = {"b": {Decimal(p): Decimal(q) for p, q in snapshot["bids"]},
            "a": {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}}
    last_u = snapshot["lastUpdateId"]
    futures = []
    for i in range(300):
        t = traders[rng.randrange(3)]
        r = rng.random()
        if r < 0.2:
            futures.append(t.submit("cancelOrder", symbol="BTCUSDT", orderId=rng.randint(1, 250)))
        else:
            tif = "IOC" if r > 0.9 else "GTC"
            futures.append(t.submit("newOrder", **order(
                rng.choice(["BUY", "SELL"]), f"0.0{rng.randint(1, 5)}",
                str(30000 + rng.randint(-30, 30) * 10), tif=tif, selfTradePreventionMode="NONE")))
    responses = await asyncio.gather(*futures)
    assert sum(r["ok"] for r in responses) > 200
    final = await traders[0].query("depth", symbol="BTCUSDT")
    applied = 0
    while last_u < final["lastUpdateId"]:
        diff = await next_stream(watcher, "depth@BTCUSDT")
        if diff["u"] <= last_u:
            continue  # older than the snapshot
        assert diff["pu"] == last_u  # no gap
        for side in ("b", "a"):
            for p, q in diff[side]:
                if Decimal(q) == 0:
                    book[side].pop(Decimal(p), None)
                else:
                    book[side][Decimal(p)] = Decimal(q)
        last_u = diff["u"]
        applied += 1
    assert applied > 50
    assert sorted(book["b"].items(), reverse=True) == [(Decimal(p), Decimal(q)) for p, q in final["bids"]]
    assert sorted(book["a"].items()) == [(Decimal(p), Decimal(q)) for p, q in final["asks"]]
    for c in traders + [admin, watcher]:
        await c.close()


async def test_a_slow_reader_is_cut_off_while_others_keep_trading(server):
    admin = await server.admin_client()
    a = await server.trader(admin, 1)
    b = await server.trader(admin, 2)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", server.port))
    slow.sendall(b'{"id": 1, "op": "subscribe", "streams": ["depth@BTCUSDT", "trade@BTCUSDT"]}\n')
    slow.setblocking(False)
    cut_off = False
    deadline = time.monotonic() + 60
    i = 0
    while not cut_off and time.monotonic() < deadline:
        await a.request("cancelAllOrders", symbol="BTCUSDT")  # keep under 200 open orders
        batch = []
        for _ in range(100):
            i += 1
            price = str(30000 + (i % 40) * 10)
            batch.append(a.submit("newOrder", **order("SELL", "0.001", price)))
            batch.append(b.submit("newOrder", **order("BUY", "0.001", price, tif="IOC")))
        results = await asyncio.gather(*batch)
        # the others keep trading throughout (this pace meets the 2,000/s limit at times)
        assert {r.get("code") for r in results} <= {None, -1003}
        assert sum(r["ok"] for r in results) >= 150
        await asyncio.sleep(0.1)  # stay well inside the rate limit
        # never read: only look whether the server has reset the connection (the pending
        # socket error; queued data would still be readable before it)
        cut_off = slow.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0
    slow.close()
    assert cut_off, "the server never disconnected the slow reader"
    # the fast ones are still served
    assert (await a.request("newOrder", **order("SELL", "0.001", "31000")))["status"] == "NEW"
    for c in (admin, a, b):
        await c.close()


async def test_malformed_and_oversized_frames_close_only_that_connection(server):
    admin = await server.admin_client()
    trader = await server.trader(admin, 1)

    async def raw(first: bytes) -> list[dict]:
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        await r.readline()  # hello
        w.write(first)
        await w.drain()
        lines = []
        while True:
            line = await asyncio.wait_for(r.readline(), 5)
            if not line:
                break
            lines.append(json.loads(line))
        w.close()
        return lines

    bad_json = await raw(b'{"id": 1, "op": "newOrder", "symbol": \n')
    assert bad_json[-1]["ok"] is False and bad_json[-1]["code"] == -1100
    big = await raw(b'{"id": 1, "pad": "' + b"x" * 70_000 + b'"}\n')
    assert big[-1]["code"] == -1100 and "limit" in big[-1]["msg"]
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    await r.readline()
    w.write(b"\x00" + wire.LENGTH.pack(10_000_000))  # msgpack frame header announcing 10 MB
    await w.drain()
    head = await asyncio.wait_for(r.readexactly(4), 5)  # an error frame comes back
    error = wire.decode_body(await r.readexactly(wire.LENGTH.unpack(head)[0]), wire.MSGPACK)
    assert error["code"] == -1100 and "limit" in error["msg"]
    assert await asyncio.wait_for(r.read(), 5) == b""  # then the connection is closed
    w.close()
    not_object = await raw(b"[1, 2, 3]\n")
    assert not_object[-1]["code"] == -1102
    # a well-formed request that is wrong is an error, but the connection stays
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    await r.readline()
    w.write(b'{"id": 7, "op": "frobnicate"}\n{"id": 8, "op": "query", "query": "depth", '
            b'"symbol": "BTCUSDT"}\n')
    await w.drain()
    first, second = json.loads(await r.readline()), json.loads(await r.readline())
    assert (first["id"], first["ok"], first["code"]) == (7, False, -1103)
    assert (second["id"], second["ok"]) == (8, True)
    w.close()
    # and a field out of range from a logged-in trader is refused by name, changing nothing
    with pytest.raises(ClientError) as e:
        await trader.request("newOrder", **order("UP", "1", "1"))
    assert e.value.code == -1102 and "side" in e.value.msg
    # everyone else was unaffected
    assert (await trader.request("newOrder", **order("BUY", "0.001", "29000")))["status"] == "NEW"
    for c in (admin, trader):
        await c.close()


async def test_a_flood_past_the_rate_limit_gets_1003_and_changes_nothing(server):
    admin = await server.admin_client()
    trader = await server.trader(admin, 1)
    futures = [trader.submit("newOrder", **order("BUY", "0.001", str(29000 - i % 150)))
               for i in range(1000)]
    responses = await asyncio.gather(*futures)
    codes = [None if r["ok"] else r["code"] for r in responses]
    limited = codes.count(-1003)
    assert limited > 0 and set(codes) <= {None, -1003, -2025}  # -2025: 200 open orders
    accepted = codes.count(None)
    assert len(await trader.query("openOrders")) == accepted
    # what the rate limit refused never reached the core: the log holds exactly the others
    logged = [r for _, r in LogReader(server.log).records()
              if type(r.command).__name__ == "NewOrder" and r.command.account == 1]
    assert len(logged) == 1000 - limited
    for c in (admin, trader):
        await c.close()


async def test_clean_shutdown_keeps_every_acknowledged_order_in_the_log(tmp_path):
    server = ServerProcess(tmp_path)
    admin = await server.admin_client()
    traders = [await server.trader(admin, a) for a in (1, 2)]
    acked = {}
    for i in range(200):
        t = traders[i % 2]
        side = "BUY" if i % 2 else "SELL"
        result = await t.request("newOrder", **order(side, "0.001", str(30000 + (i % 7) * 10)))
        acked[result["seq"]] = result["orderId"]
    for c in traders + [admin]:
        await c.close()
    assert server.stop() == 0
    reader = LogReader(server.log)
    logged = {r.seq: r for _, r in reader.records()}
    assert reader.problem is None
    for seq, order_id in acked.items():
        assert any(getattr(e, "order_id", None) == order_id for e in logged[seq].events)


async def test_fields_of_the_wrong_type_get_an_error_and_everything_goes_on(server):
    c = await server.client(wire.JSONL)
    for bad, code in (({"op": ["newOrder"]}, -1102),
                      ({"op": "query", "query": ["depth"]}, -1102),
                      ({"op": "query", "query": "depth", "symbol": ["BTCUSDT"]}, -1102),
                      ({"op": "login", "apiKey": server.admin["apiKey"], "signature": "é" * 64},
                       -1022)):
        with pytest.raises(ClientError) as e:
            await c.request(bad.pop("op"), **bad)
        assert e.value.code == code
    admin = await server.admin_client()
    with pytest.raises(ClientError) as e:
        await admin.query("positionRisk", account=[1])
    assert e.value.code == -1102
    # the same connections, and the server, are still fine
    assert (await c.query("depth", symbol="BTCUSDT"))["bids"] == []
    assert (await admin.query("state"))["seq"] == 0
    await c.close()
    await admin.close()


@pytest.mark.parametrize("risk", ["--risk-inline", "--risk-process"])
async def test_a_restart_liquidates_an_account_the_crash_left_under_water(tmp_path, risk):
    """Inline, the server evaluates every account before it serves; in its own process the
    consumer catches up on the log, evaluates every account, and asks soon after."""
    """The last record before the crash put account 1 past 100 %; its Liquidate was never
    sequenced. The restarted server finds it at start."""
    import io

    from engine.core import catalogue as catalogue_mod
    from engine.core import EngineConfig
    from replay.feed import run_feed
    lines = [json.dumps(x) for x in (
        {"op": "createAccount", "account": 1, "registeredAt": 0, "time": 1_700_000_000_000},
        {"op": "createAccount", "account": 2, "registeredAt": 0},
        {"op": "deposit", "account": 1, "amount": "1000"},
        {"op": "deposit", "account": 2, "amount": "1000000"},
        {"op": "setLeverage", "account": 1, "symbol": "BTCUSDT", "leverage": 50},
        {"op": "newOrder", "account": 2, "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
         "quantity": "1", "price": "30000", "timeInForce": "GTC"},
        {"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
         "quantity": "1", "price": "30000", "timeInForce": "GTC"},
        {"op": "setMarkPrice", "symbol": "BTCUSDT", "markPrice": "29000"})]
    run_feed(lines, io.BytesIO(), catalogue_mod.load(), EngineConfig(),
             log_path=str(tmp_path / "engine.log"), risk=False)  # as if the consumer died
    server = ServerProcess(tmp_path, risk)
    try:
        assert ("in its own process" in server.first_line) == (risk == "--risk-process")
        admin = await server.admin_client()
        position = await admin.query("positionRisk", account=1, symbol="BTCUSDT")
        deadline = time.monotonic() + (15 if risk == "--risk-process" else 0)
        while position[0]["positionAmt"] != "0" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            position = await admin.query("positionRisk", account=1, symbol="BTCUSDT")
        assert position[0]["positionAmt"] == "0"
        await admin.close()
    finally:
        assert server.stop() == 0
    kinds = [type(e).__name__ for _, r in LogReader(server.log).records() for e in r.events]
    assert "LiquidationStarted" in kinds


async def test_a_person_can_log_in_with_nc_using_the_sign_helper(server):
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    hello = json.loads(await r.readline())
    line = subprocess.run([sys.executable, "-m", "engine.client", "--keys",
                           str(server.keys_path), "sign", hello["nonce"]],
                          capture_output=True, text=True, cwd=ROOT, check=True).stdout
    w.write(line.encode())  # exactly what a person would paste
    await w.drain()
    answer = json.loads(await asyncio.wait_for(r.readline(), 5))
    assert answer == {"id": 1, "ok": True, "result": {"account": None, "admin": True}}
    w.close()


async def test_the_risk_consumer_as_its_own_process_liquidates(tmp_path):
    server = ServerProcess(tmp_path)  # the default
    assert "risk consumer in its own process" in server.first_line
    admin = await server.admin_client()
    maker = await server.trader(admin, 1)
    gambler = await server.trader(admin, 2, deposit="700")
    await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="30000")
    await gambler.request("setLeverage", symbol="BTCUSDT", leverage=50)
    await maker.request("newOrder", **order("SELL", "1", "30000"))
    await gambler.request("newOrder", **order("BUY", "1", "30000"))
    await maker.request("newOrder", **order("BUY", "1", "29400"))
    # a client may not send what only the risk engine sends
    with pytest.raises(ClientError) as e:
        await admin.request("liquidate", account=2)
    assert e.value.code == -2015
    await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="29350")  # over 100 %
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        risk = await gambler.query("positionRisk", symbol="BTCUSDT")
        if risk[0]["positionAmt"] == "0":
            break
        await asyncio.sleep(0.05)
    assert risk[0]["positionAmt"] == "0"
    for c in (admin, maker, gambler):
        await c.close()
    assert server.stop() == 0
    kinds = [type(e).__name__ for _, r in LogReader(server.log).records() for e in r.events]
    assert "MarginCallIssued" in kinds and "LiquidationStarted" in kinds
