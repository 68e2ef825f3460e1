"""The log on NATS JetStream (issue 17), the slow part: real nats-servers (a single node, an R3
cluster of three on 127.0.0.1), real server processes, SIGKILL and SIGSTOP.

* the active server SIGKILLed under load: the standby takes over, every acknowledged order is
  in the stream once, and the standby's state hash equals an offline rebuild of the stream;
* an old active that comes back (SIGSTOP, then SIGCONT after the takeover) finds itself fenced
  and exits without acknowledging anything more;
* the stream's leader SIGKILLed under load (R3): no acknowledged order lost, none duplicated;
* the risk consumer as a durable consumer liquidates; a read-only replica serves queries and
  streams, refuses commands, and resumes from its durable position after a SIGKILL.
"""
from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import pytest

from engine.bench.natsservers import NatsServers
from engine.client import Client, ClientError
from engine.core import catalogue as catalogue_mod
from engine.eventlog.jetstream import JetStreamReader
from proto import events as V
from proto import wire
from replay.verify import verify
from tests.jsharness import NatsServer, Proc, port_of, reap
from tests.test_gateway import order

pytestmark = pytest.mark.slow
CAT = catalogue_mod.load()
ACCOUNTS = 40


async def setup_accounts(admin: Client) -> None:
    for a in range(1, ACCOUNTS + 1):
        await admin.request("createAccount", account=a, registeredAt=0)
        await admin.request("deposit", account=a, amount="1000000")
    await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="30000")
    await admin.request("setMarkPrice", symbol="ETHUSDT", markPrice="2000")


class Load:
    """Workers sending resting orders, `depth` in flight each, with unique client order ids;
    on a lost connection each moves to whatever port `where()` gives and carries on. What was
    acknowledged (ok) and what was in flight when a connection went are kept apart."""

    def __init__(self, admin: dict, where, workers: int = 4, depth: int = 8,
                 limit: int = 4000, rate: float = 400.0) -> None:
        self.rate = rate  # orders per second and worker at most
        self.admin = admin
        self.where = where
        self.workers = workers
        self.depth = depth
        self.limit = limit  # orders per worker at most
        self.acked: dict[str, int] = {}  # client order id -> seq
        self.unknown: set[str] = set()  # in flight when the connection went
        self.ack_times: list[tuple[float, int]] = []  # (monotonic, port)
        self.stop = asyncio.Event()
        self.errors: Counter = Counter()

    async def _connect(self) -> tuple[Client, int]:
        while True:
            port = self.where()
            if port:
                try:
                    c = Client("127.0.0.1", port, wire.MSGPACK)
                    await c.connect()
                    await c.login(self.admin["apiKey"], self.admin["secret"])
                    return c, port
                except (OSError, ConnectionError, ClientError, asyncio.IncompleteReadError):
                    pass
            await asyncio.sleep(0.02)

    async def worker(self, w: int) -> None:
        n = 0
        started = time.monotonic()
        while not self.stop.is_set() and n < self.limit:
            client, port = await self._connect()
            inflight: dict[str, asyncio.Future] = {}
            try:
                while inflight or (not self.stop.is_set() and n < self.limit):
                    while len(inflight) < self.depth and n < self.limit and \
                            not self.stop.is_set():
                        ahead = started + n / self.rate - time.monotonic()
                        if ahead > 0:
                            await asyncio.sleep(ahead)
                        n += 1
                        cid = f"w{w}-{n}"
                        account = 1 + (w * 10 + n // 2) % ACCOUNTS
                        sym, base = ("BTCUSDT", 29000) if n % 2 else ("ETHUSDT", 1900)
                        inflight[cid] = client.submit(
                            "newOrder", account=account,
                            **order("BUY", "0.01" if sym == "ETHUSDT" else "0.001",
                                    str(base + n % 90), symbol=sym, newClientOrderId=cid))
                    if not inflight:
                        continue
                    done, _ = await asyncio.wait(inflight.values(),
                                                 return_when=asyncio.FIRST_COMPLETED)
                    for cid, fut in list(inflight.items()):
                        if not fut.done():
                            continue
                        del inflight[cid]
                        exc = fut.exception()
                        if exc is not None:
                            raise exc
                        reply = fut.result()
                        if reply.get("ok"):
                            self.acked[cid] = reply["result"]["seq"]
                            self.ack_times.append((time.monotonic(), port))
                        else:
                            self.errors[reply.get("code")] += 1
                    if client.closed.is_set():
                        raise ConnectionError("closed")
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                self.unknown.update(inflight)
                continue
            finally:
                for fut in inflight.values():
                    fut.cancel()
                await client.close()
            self.unknown.update(inflight)

    async def run(self) -> None:
        await asyncio.gather(*(self.worker(w) for w in range(self.workers)))


def orders_in_stream(spec: str) -> tuple[Counter, list[int]]:
    """Client order ids of the accepted orders (how often each), and every record's seq."""
    ids: Counter = Counter()
    seqs = []
    for _, record in JetStreamReader(spec).records():
        seqs.append(record.seq)
        for e in record.events:
            if type(e) is V.OrderAccepted and e.client_order_id:
                ids[e.client_order_id] += 1
    return ids, seqs


def check_stream(spec: str, load: Load) -> None:
    ids, seqs = orders_in_stream(spec)
    assert seqs == list(range(1, len(seqs) + 1))  # nothing applied twice, nothing skipped
    missing = [cid for cid in load.acked if ids[cid] != 1]
    assert missing == [], f"{len(missing)} acknowledged orders not in the stream once"
    assert all(ids[cid] <= 1 for cid in load.unknown)  # the in-flight ones: at most once
    assert max(ids.values()) == 1


async def test_the_standby_takes_over_when_the_active_is_killed_under_load(tmp_path):
    active = standby = None
    with NatsServers(1) as nodes:
        spec = nodes.spec("FAILOVER")
        keys = tmp_path / "keys.json"
        try:
            active = NatsServer(tmp_path, spec, "active", keys, "--checkpoint-every", "500")
            admin = await active.admin_client()
            await setup_accounts(admin)
            await admin.close()
            standby = NatsServer(tmp_path, spec, "standby", keys, "--takeover-ms", "500",
                                 standby=True)
            standby.wait_line("standby on")
            ports = {"now": active.port}
            load = Load(active.admin, lambda: ports["now"], limit=20_000)
            runner = asyncio.create_task(load.run())
            await asyncio.sleep(2.0)
            acked_before = len(load.acked)
            assert acked_before > 100
            active.kill()  # SIGKILL under load
            killed_at = time.monotonic()
            ports["now"] = 0
            port = await asyncio.get_running_loop().run_in_executor(None, standby.serving, 30)
            assert "took over FAILOVER" in standby.wait_line("took over")
            ports["now"] = port
            await asyncio.sleep(1.5)
            load.stop.set()
            await asyncio.wait_for(runner, 30)
            after = [t for t, p in load.ack_times if p == port]
            assert len(load.acked) > acked_before and after, "the standby acknowledged nothing"
            last_old = max(t for t, p in load.ack_times if p != port)
            print(f"failover: {(min(after) - last_old) * 1000:.0f} ms from the last ack by the "
                  f"old active to the first by the standby ({(min(after) - killed_at) * 1000:.0f}"
                  f" ms after the kill); {len(load.acked)} acknowledged, "
                  f"{len(load.unknown)} in flight at the kill")
            admin = await standby.admin_client()
            state = await admin.query("state")
            await admin.close()
            assert standby.stop() == 0
            check_stream(spec, load)
            rebuilt = verify(spec, CAT, progress=False)  # the offline rebuild of the stream
            assert rebuilt.intact and rebuilt.checkpoints > 0
            assert (rebuilt.last_seq, rebuilt.state_hash) == (state["seq"], state["stateHash"])
        finally:
            reap(active, standby)


async def test_an_old_active_that_comes_back_finds_itself_fenced_and_exits(tmp_path):
    active = standby = None
    with NatsServers(1) as nodes:
        spec = nodes.spec("ZOMBIE")
        keys = tmp_path / "keys.json"
        try:
            active = NatsServer(tmp_path, spec, "active", keys)
            admin = await active.admin_client()
            await setup_accounts(admin)
            standby = NatsServer(tmp_path, spec, "standby", keys, "--takeover-ms", "400",
                                 standby=True)
            standby.wait_line("standby on")
            active.signal(signal.SIGSTOP)  # paused (a partition, a stall), not dead
            port = await asyncio.get_running_loop().run_in_executor(None, standby.serving, 30)
            late = admin.submit("newOrder", account=1,
                                **order("BUY", "0.001", "29000", newClientOrderId="late"))
            active.signal(signal.SIGCONT)
            code = await asyncio.get_running_loop().run_in_executor(None, active.proc.wait, 20)
            assert code == 3
            assert "fenced" in active.stderr_path.read_text()
            try:
                reply = await asyncio.wait_for(late, 5)
            except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                reply = None
            assert reply is None or not reply.get("ok")  # never acknowledged
            await admin.close()
            fresh = Client("127.0.0.1", port, wire.MSGPACK)
            await fresh.connect()
            await fresh.login(active.admin["apiKey"], active.admin["secret"])
            ok = await fresh.request("newOrder", account=1,
                                     **order("BUY", "0.001", "29001", newClientOrderId="new"))
            await fresh.close()
            assert standby.stop() == 0
            ids, seqs = orders_in_stream(spec)
            assert ids["late"] == 0 and ids["new"] == 1 and seqs[-1] == ok["seq"]
            assert verify(spec, CAT, progress=False).intact
        finally:
            reap(active, standby)


async def test_the_stream_leader_killed_under_load_loses_and_duplicates_nothing(tmp_path):
    server = None
    with NatsServers(3) as cluster:
        spec = cluster.spec("R3", replicas=3)
        keys = tmp_path / "keys.json"
        try:
            server = NatsServer(tmp_path, spec, "active", keys)
            admin = await server.admin_client()
            await setup_accounts(admin)
            await admin.close()
            load = Load(server.admin, lambda: server.port, limit=2500, rate=300)
            runner = asyncio.create_task(load.run())
            await asyncio.sleep(1.5)
            before = len(load.acked)
            leader = await asyncio.get_running_loop().run_in_executor(None, cluster.leader, "R3")
            cluster.kill(leader)  # SIGKILL the stream's leader
            await asyncio.wait_for(runner, 90)
            assert not load.unknown and server.proc.poll() is None  # the server rode it out
            times = sorted(t for t, _ in load.ack_times)
            pause = max(b - a for a, b in zip(times, times[1:]))
            print(f"leader n{leader} killed: {before} acknowledged before, {len(load.acked)} "
                  f"in all; the longest pause between two acks {pause * 1000:.0f} ms")
            assert not load.errors and len(load.acked) == 4 * 2500
            assert server.stop() == 0
            check_stream(spec, load)
            assert verify(spec, CAT, progress=False).intact
        finally:
            reap(server)


async def test_durable_consumers_liquidate_and_a_replica_serves_and_resumes(tmp_path):
    server = replica = again = None
    with NatsServers(1) as nodes:
        spec = nodes.spec("CONSUMERS")
        keys = tmp_path / "keys.json"
        try:
            server = NatsServer(tmp_path, spec, "active", keys)
            assert "risk consumer in its own process" in server.lines[0]
            admin = await server.admin_client()
            await setup_accounts(admin)
            replica = Proc(["replica", "--log", spec, "--port", "0", "--keys", str(keys),
                            "--durable", "replica-a"], tmp_path / "replica.stderr")
            rport = port_of(replica.wait_line("serving reads"), "streams on ")
            reader = Client("127.0.0.1", rport, wire.MSGPACK)
            await reader.connect()
            await reader.login(server.admin["apiKey"], server.admin["secret"])
            sub = await reader.subscribe("depth@BTCUSDT", "trade@BTCUSDT")
            assert sub["snapshots"]["depth@BTCUSDT"]["bids"] == []
            # the risk consumer (a durable consumer of the stream) liquidates
            await admin.request("setLeverage", account=2, symbol="BTCUSDT", leverage=50)
            await admin.request("withdraw", account=2, amount="999300")
            await admin.request("newOrder", account=1, **order("SELL", "1", "30000"))
            await admin.request("newOrder", account=2, **order("BUY", "1", "30000"))
            await admin.request("newOrder", account=1, **order("BUY", "1", "29400"))
            await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="29350")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                risk = await admin.query("positionRisk", account=2, symbol="BTCUSDT")
                if risk[0]["positionAmt"] == "0":
                    break
                await asyncio.sleep(0.05)
            assert risk[0]["positionAmt"] == "0"
            # the replica streamed the trades and holds the same state
            seen = []

            async def streamed():
                while True:
                    msg = await reader.streams.get()
                    seen.append(msg["stream"])
                    if msg["stream"] == "trade@BTCUSDT":
                        return
            await asyncio.wait_for(streamed(), 10)
            assert "depth@BTCUSDT" in seen
            state = await admin.query("state")
            for _ in range(100):
                if (await reader.query("state")) == state:
                    break
                await asyncio.sleep(0.05)
            assert (await reader.query("state")) == state
            assert (await reader.query("positionRisk", account=2, symbol="BTCUSDT")) == \
                await admin.query("positionRisk", account=2, symbol="BTCUSDT")
            with pytest.raises(ClientError) as refused:  # commands go to the active server
                await reader.request("newOrder", account=1, **order("BUY", "1", "29000"))
            assert refused.value.code == -1000 and "read-only replica" in refused.value.msg
            await reader.close()
            # a replica killed mid-stream resumes from its durable position
            replica.kill()
            for i in range(30):
                await admin.request("newOrder", account=3 + i % 5,
                                    **order("BUY", "0.001", str(28000 + i)))
            again = Proc(["replica", "--log", spec, "--port", "0", "--keys", str(keys),
                          "--durable", "replica-a"], tmp_path / "replica2.stderr")
            rport = port_of(again.wait_line("serving reads"), "streams on ")
            state = await admin.query("state")
            reader = Client("127.0.0.1", rport, wire.MSGPACK)
            await reader.connect()
            await reader.login(server.admin["apiKey"], server.admin["secret"])
            for _ in range(100):
                if (await reader.query("state")) == state:
                    break
                await asyncio.sleep(0.05)
            assert (await reader.query("state")) == state
            await reader.close()
            assert again.stop() == 0
            await admin.close()
            assert server.stop() == 0
            kinds = {type(e).__name__ for _, r in JetStreamReader(spec).records()
                     for e in r.events}
            assert {"MarginCallIssued", "LiquidationStarted"} <= kinds
        finally:
            reap(server, replica, again)


async def test_the_shard_simulation_runs_real_cores_on_loopback():
    from engine.sim.shards import paced, saturated
    for k in (1, 2):
        sat = await saturated(k, 6000, CAT)
        assert sat["commands"] == 6000 and sat["rejected"] == 0 and sat["trades"] > 1000
    lat = await paced(2, 2000, 1.0, CAT)
    assert lat["achieved_per_s"] > 1000 and 0 < lat["p50_ms"] <= lat["p99_ms"]
