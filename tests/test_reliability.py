"""Issue 11's reliability suite, kept in `make test` and bounded in time: a fuzz of more than
20,000 frames in both framings that must change nothing, every cross-account attempt refused,
and three SIGKILL-restart cycles with every acknowledged order in the log and the re-drive
identical."""
import asyncio
import os
import random
import signal
import time

import msgspec

from engine.core import catalogue as catalogue_mod
from engine.eventlog import LogReader
from engine.server import auth
from proto import wire
from replay.redrive import redrive
from replay.verify import verify
from tests.test_gateway import ServerProcess, order
from tests.test_hardening import reap

CAT = catalogue_mod.load()
OPEN = ("--rate", "1000000", "--burst", "1000000", "--weight-per-min", "100000000")

# valid requests (the login fills "account"); the fuzz makes each invalid in one place
BASE = [
    {"op": "newOrder", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001",
     "price": "29000", "timeInForce": "GTC", "newClientOrderId": "f1"},
    {"op": "newOrder", "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.001"},
    {"op": "cancelOrder", "symbol": "BTCUSDT", "orderId": 1},
    {"op": "cancelAllOrders", "symbol": "BTCUSDT"},
    {"op": "modifyOrder", "symbol": "BTCUSDT", "orderId": 1, "quantity": "0.002", "price": "29000"},
    {"op": "setLeverage", "symbol": "BTCUSDT", "leverage": 5},
    {"op": "setMarginType", "symbol": "ETHUSDT", "marginType": "ISOLATED"},
    {"op": "adjustIsolatedMargin", "symbol": "ETHUSDT", "amount": "1", "type": 1},
    {"op": "withdraw", "amount": "1"},
    {"op": "futuresTransfer", "amount": "1", "type": 2},
    {"op": "subscribeToken", "tokenName": "BTCUP", "cost": "10"},
    {"op": "redeemToken", "tokenName": "BTCUP", "amount": "1"},
    {"op": "newSpotOrder", "symbol": "BTCUPUSDT", "side": "SELL", "type": "LIMIT",
     "quantity": "1", "price": "10", "timeInForce": "GTC"},
    {"op": "cancelSpotOrder", "symbol": "BTCUPUSDT", "orderId": 1},
]
DECIMAL = {"quantity", "price", "amount", "cost"}
INTS = {"orderId", "leverage", "type"}
REQUIRED = {"newOrder": ["symbol", "side", "type", "quantity", "price", "timeInForce"],
            "cancelOrder": ["symbol"], "cancelAllOrders": ["symbol"],
            "modifyOrder": ["symbol", "orderId", "quantity", "price"],
            "setLeverage": ["symbol", "leverage"], "setMarginType": ["symbol", "marginType"],
            "adjustIsolatedMargin": ["symbol", "amount", "type"], "withdraw": ["amount"],
            "futuresTransfer": ["amount", "type"], "subscribeToken": ["tokenName", "cost"],
            "redeemToken": ["tokenName", "amount"],
            "newSpotOrder": ["symbol", "side", "type", "quantity", "price", "timeInForce"],
            "cancelSpotOrder": ["symbol", "orderId"]}


def bad_values(name: str, msgpack: bool) -> list:
    if name in DECIMAL:
        return ["1.000000001", "abc", "", 1.5, [], {}, "92233720368.54775808", "1e5", "--1",
                True, "99999999999999999999999", "0x10", "1,5", "½"]
    if name in INTS:
        huge = [2 ** 63, 2 ** 64 - 1] if msgpack else [2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 30]
        return ["5", 1.5, True, [], {}, None] + huge + ([3, 0, -1] if name == "type" else [])
    if name in ("symbol", "tokenName", "newClientOrderId"):
        return [7, [], {}, 1.5, True]
    return ["NOPE", 7, [], {}, "", True]  # enums: side, type, timeInForce, marginType


def mutate(rng: random.Random, msgpack: bool) -> dict:
    """A request that the edge must refuse: one field broken, missing, unknown, or the op."""
    req = dict(rng.choice(BASE))
    op = req["op"]
    kind = rng.random()
    fields = [k for k in req if k != "op"]
    if kind < 0.6:
        name = rng.choice(fields)
        if op == "newOrder" and req["type"] == "MARKET" and name == "type":
            name = "side"  # LIMIT would be valid without its price
        req[name] = rng.choice(bad_values(name, msgpack))
    elif kind < 0.75:
        req.pop(rng.choice([f for f in REQUIRED[op] if f in req]))
    elif kind < 0.85:
        req[rng.choice(["colour", "stopPrice", "x", "accountId", "leverage2"])] = 1
    elif kind < 0.93:
        req["op"] = rng.choice(["launchRocket", "NEWORDER", "", "newOrder ", "liquidate"])
    else:
        req["account"] = rng.choice([3, 999, 0, -5, 900_000_001])  # nobody it may act for
    return req


async def _fuzz_connection(port: int, mode: str, key: dict, frames: list[dict]) -> list[dict]:
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    hello = wire.decode_body(await r.readline(), wire.JSONL)
    w.write(b"\x00" if mode == wire.MSGPACK else b"\n")
    w.write(wire.encode({"id": 0, "op": "login", "apiKey": key["apiKey"],
                         "signature": wire.sign(key["secret"], hello["nonce"])}, mode))
    answers = []

    async def read():
        while len(answers) < len(frames) + 1:
            if mode == wire.MSGPACK:
                body = await r.readexactly(wire.LENGTH.unpack(await r.readexactly(4))[0])
            else:
                body = await r.readline()
            answers.append(wire.decode_body(body, mode))

    reader = asyncio.create_task(read())
    for i, frame in enumerate(frames, start=1):
        w.write(wire.encode({"id": i, **frame}, mode))
        if i % 500 == 0:
            await w.drain()
    await w.drain()
    await asyncio.wait_for(reader, 60)
    w.close()
    return answers


GARBAGE_JSON = [b"{not json\n", b"\xff\xfe\x00garbage\n", b"[" * 3000 + b"]" * 3000 + b"\n",
                b'{"id": 1, "op": "newOrder", "quantity": "1", ' + b'"x": 1, ' * 9000 + b"}\n",
                b"[1, 2, 3]\n", b'"just a string"\n', b"12345\n", b"{" + b"a" * 70_000 + b"\n"]


async def _garbage(port: int, rng: random.Random) -> int:
    """A frame that is not a request at all: an error reply, then that connection closes."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await r.readline()
    if rng.random() < 0.5:
        w.write(rng.choice(GARBAGE_JSON) if rng.random() < 0.5 else
                b"{" + bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))) + b"\n")
        reply = await asyncio.wait_for(r.readline(), 10)
        answer = wire.decode_body(reply, wire.JSONL)
    else:
        body = rng.choice([b"\xc1", b"\x91" * 2000 + b"\x90", bytes(rng.randrange(256)
                                                                    for _ in range(50)),
                           msgspec.msgpack.encode([1, 2]), b"\xa5hello"])
        length = len(body) if rng.random() < 0.8 else 10_000_000
        w.write(b"\x00" + wire.LENGTH.pack(length) + body)
        head = await asyncio.wait_for(r.readexactly(4), 10)
        answer = wire.decode_body(await r.readexactly(wire.LENGTH.unpack(head)[0]), wire.MSGPACK)
    assert answer["ok"] is False, answer
    w.close()
    return 1


async def test_fuzzed_frames_in_both_framings_change_nothing(tmp_path):
    server = ServerProcess(tmp_path, *OPEN)
    try:
        admin = await server.admin_client()
        keys = {}
        for a in (1, 2):
            t = await server.trader(admin, a)
            await t.request("newOrder", **order("SELL" if a == 1 else "BUY", "0.01",
                                                "30100" if a == 1 else "29900"))
            await t.close()
            keys[a] = await admin.request("createApiKey", account=a)
        before = await admin.query("state")
        rng = random.Random(11)
        t0 = time.monotonic()
        per = 5250
        jobs = [_fuzz_connection(server.port, mode, keys[1 + i % 2],
                                 [mutate(rng, mode == wire.MSGPACK) for _ in range(per)])
                for i, mode in enumerate([wire.JSONL, wire.MSGPACK] * 2)]
        results = await asyncio.gather(*jobs)
        garbage = 0
        for _ in range(300):
            garbage += await _garbage(server.port, rng)
        for answers in results:
            assert answers[0]["ok"] is True  # the login
            assert sorted(a["id"] for a in answers[1:]) == list(range(1, per + 1))
            assert not any(a["ok"] for a in answers[1:]), [a for a in answers if a["ok"]][:3]
            codes = {a["code"] for a in answers[1:]}
            assert codes <= {-1100, -1102, -1103, -1111, -2015}, codes
        frames = per * len(results) + garbage
        assert frames >= 21_000
        after = await admin.query("state")
        assert after == before  # nothing reached the core: same seq, same state
        assert server.proc.poll() is None
        print(f"fuzz: {frames} frames in {time.monotonic() - t0:.1f} s")
        await admin.close()
    finally:
        assert server.stop() == 0


def timeless(view):
    """A view without its updateTime fields."""
    if isinstance(view, dict):
        return {k: timeless(v) for k, v in view.items() if k != "updateTime"}
    if isinstance(view, (list, tuple)):
        return [timeless(v) for v in view]
    return view


async def test_every_cross_account_attempt_is_refused(tmp_path):
    server = ServerProcess(tmp_path, *OPEN)
    try:
        admin = await server.admin_client()
        await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="30000")
        alice = await server.trader(admin, 1)
        bob = await server.trader(admin, 2)
        bob_key = await admin.request("createApiKey", account=2)
        bob_orders = [await bob.request("newOrder", **order("BUY", "0.01", str(29000 + i),
                                                           newClientOrderId=f"bob-{i}"))
                      for i in range(10)]
        await alice.request("newOrder", **order("SELL", "0.005", "29009"))  # bob has a position
        await bob.request("futuresTransfer", amount="100", type=2)
        await alice.subscribe("user")
        bob_view = (await bob.query("openOrders"), await bob.query("positionRisk"),
                    await bob.query("account"), await bob.query("spotAccount"))
        before = await admin.query("state")
        attempts = []
        for o in bob_orders:
            by_id = {"symbol": "BTCUSDT", "orderId": o["orderId"]}
            by_client_id = {"symbol": "BTCUSDT", "origClientOrderId": o["clientOrderId"]}
            modify = {**by_id, "quantity": "0.02", "price": "29500"}
            attempts += [("cancelOrder", by_id, -2011), ("cancelOrder", by_client_id, -2011),
                         ("modifyOrder", modify, -2011),
                         ("cancelOrder", {**by_id, "account": 2}, -2015),
                         ("cancelOrder", {**by_client_id, "account": 2}, -2015),
                         ("modifyOrder", {**modify, "account": 2}, -2015)]
        for op, fields in (
                ("newOrder", order("BUY", "0.001", "29000")),
                ("cancelAllOrders", {"symbol": "BTCUSDT"}),
                ("setLeverage", {"symbol": "BTCUSDT", "leverage": 2}),
                ("setMarginType", {"symbol": "ETHUSDT", "marginType": "ISOLATED"}),
                ("adjustIsolatedMargin", {"symbol": "BTCUSDT", "amount": "1", "type": 2}),
                ("withdraw", {"amount": "1"}), ("futuresTransfer", {"amount": "1", "type": 1}),
                ("subscribeToken", {"tokenName": "BTCUP", "cost": "10"}),
                ("redeemToken", {"tokenName": "BTCUP", "amount": "1"}),
                ("newSpotOrder", {"symbol": "BTCUPUSDT", "side": "BUY", "type": "LIMIT",
                                  "quantity": "1", "price": "10", "timeInForce": "GTC"}),
                ("cancelSpotOrder", {"symbol": "BTCUPUSDT", "orderId": 1})):
            for other in (2, 3, 0, -1, 900_000_001, 2 ** 40):  # 900000001: a token's issuer
                attempts.append((op, {**fields, "account": other}, -2015))
        for op, fields in (("deposit", {"account": 1, "amount": "1000"}),
                           ("createAccount", {"account": 5}), ("fundInsurance", {"amount": "1"}),
                           ("setMarkPrice", {"symbol": "BTCUSDT", "markPrice": "1"}),
                           ("setIndexPrices", {"prices": {"BTCUSDT": "1"}}),
                           ("listSymbol", {"symbol": "BTCUSDT", "onboardTime": 0}),
                           ("scheduleDelisting", {"symbol": "BTCUSDT", "delistTime": 0}),
                           ("launchToken", {"tokenName": "BTCUP"}),
                           ("createApiKey", {"account": 2}), ("liquidate", {"account": 2}),
                           ("marginCall", {"account": 2})):
            attempts.append((op, fields, -2015))
        for name in sorted(auth.ACCOUNT_QUERIES):
            for other in (2, 3, 900_000_001):
                attempts.append(("query", {"query": name, "account": other}, -2015))
        attempts.append(("query", {"query": "state"}, -2015))
        attempts.append(("login", {"apiKey": bob_key["apiKey"], "signature": "00" * 32}, -1020))
        results = await asyncio.gather(*[alice.submit(op, **f) for op, f, _ in attempts])
        for (op, fields, code), r in zip(attempts, results):
            assert not r["ok"] and r["code"] == code, (op, fields, r)
        # a fresh connection may not log in with bob's key and someone else's signature
        stranger = await server.client()
        r = await stranger.submit("login", apiKey=bob_key["apiKey"],
                                  signature=wire.sign("guess", stranger.nonce))
        assert r["code"] == -1022
        r = await stranger.submit("subscribe", streams=["user"])
        assert r["code"] == -2015
        await stranger.close()
        assert len(attempts) + 2 >= 150
        # bob is as he was; the state hash is unchanged (the refusals changed nothing)
        now = (await bob.query("openOrders"), await bob.query("positionRisk"),
               await bob.query("account"), await bob.query("spotAccount"))
        assert timeless(now) == timeless(bob_view)  # (updateTime is the venue's latest time)
        assert (await admin.query("state"))["stateHash"] == before["stateHash"]
        # and alice's stream never carried bob's own events
        await bob.request("cancelAllOrders", symbol="BTCUSDT")
        await alice.request("newOrder", **order("BUY", "0.001", "20000"))  # a marker
        while True:
            msg = await asyncio.wait_for(alice.streams.get(), 5)
            assert msg["data"].get("account") in (None, 1), msg
            if msg["data"]["e"] == "orderAccepted" and msg["data"]["price"] == "20000":
                break
        for c in (admin, alice, bob):
            await c.close()
    finally:
        assert server.stop() == 0


async def test_three_sigkill_restarts_lose_nothing_and_redrive_identically(tmp_path):
    """Restarts from the log alone and from a snapshot, by SIGKILL (three) and cleanly."""
    started: list[ServerProcess] = []
    try:
        await _cycles(tmp_path, started)
    finally:
        reap(*started)


async def _cycles(tmp_path, started: list) -> None:
    acked: dict[int, int] = {}  # seq -> order id, as the acknowledgements said
    for cycle, (end, snapshot_every) in enumerate([("kill", "0"), ("clean", "0"),
                                                   ("kill", "400"), ("kill", "0")]):
        server = ServerProcess(tmp_path, "--snapshot-every", snapshot_every,
                               "--checkpoint-every", "97", "--burst", "100000", "--rate", "100000")
        started.append(server)
        admin = await server.admin_client()
        traders = []
        for a in (1, 2, 3):
            a += 10 * cycle
            traders.append(await server.trader(admin, a))
        stop = asyncio.Event()

        async def trade(t, side, k):
            i = 0
            while not stop.is_set():
                i += 1
                futures = [t.submit("newOrder", **order(side, "0.001",
                                                        str(29000 + (i + j) % 40 * 10),
                                                        tif="GTC" if (i + j) % 3 else "IOC"))
                           for j in range(8)]
                try:
                    for r in await asyncio.gather(*futures):
                        if r.get("ok"):
                            acked[r["result"]["seq"]] = r["result"]["orderId"]
                except (ConnectionError, Exception):
                    return

        tasks = [asyncio.create_task(trade(t, s, k))
                 for k, (t, s) in enumerate(zip(traders, ("BUY", "SELL", "BUY")))]
        await asyncio.sleep(0.8)
        if end == "kill":
            os.kill(server.proc.pid, signal.SIGKILL)  # mid-load
            server.proc.wait()
            server.proc.stdout.close()
            stop.set()
            await asyncio.gather(*tasks)
        else:
            stop.set()
            await asyncio.gather(*tasks)
            assert server.stop() == 0
        for c in traders + [admin]:
            await c.close()
    final = ServerProcess(tmp_path, "--checkpoint-every", "97")
    started.append(final)
    admin = await final.admin_client()
    state = await admin.query("state")
    await admin.close()
    assert final.stop() == 0
    assert len(acked) > 300
    logged = {r.seq: r for _, r in LogReader(final.log).records()}
    for seq, order_id in acked.items():
        assert any(getattr(e, "order_id", None) == order_id for e in logged[seq].events), seq
    report = verify(final.log, CAT, progress=False)
    assert report.intact and state == {"seq": report.last_seq, "stateHash": report.state_hash}
    again = redrive(final.log, CAT, progress=False)
    assert again.identical, again.divergence
