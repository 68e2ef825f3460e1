"""`python -m engine.sim.adversary depth|openorders|keys`: the clients of issue 11 that once
exhausted the server, against a server this starts itself; prints what they cost it.

    depth       a 1,200-level BTCUSDT book; one connection sends N `depth` queries (limit
                1,000) and never reads: the server's peak RSS, and how long another client
                then waits for an answer                                      (default N 12,000)
    openorders  an account with 200 open orders on each of ~100 symbols; one connection sends
                N `openOrders` (no symbol) and never reads: likewise                (N 40)
    keys        N `createApiKey` one after another: the time of the last hundred, and how long a
                read on another connection waits meanwhile                         (N 2,000)

--server-arg passes options to the server (e.g. --server-arg=--weight-per-min=0 to see the
byte bound without request weights); --root runs `python -m engine serve` in another checkout
(to compare with an older version). A measuring tool, not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.client import Client
from engine.core import catalogue as catalogue_mod
from engine.core.fixed import parse
from proto import wire

ROOT = Path(__file__).resolve().parents[2]


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


class Server:
    def __init__(self, root: Path, extra: list[str]) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="perpadversary-")
        d = self.dir.name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--port", "0", "--log", f"{d}/e.log",
             "--keys", f"{d}/k.json", "--rate", "100000", "--burst", "100000", *extra],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "serving on" not in line:
            raise SystemExit(f"the server did not start: {line!r}")
        self.port = int(line.split("serving on ")[1].split()[0].rsplit(":", 1)[1])
        self.admin_key = json.loads(Path(f"{d}/k.json").read_text())[0]
        self.peak = 0

    async def client(self, key: dict | None = None, mode: str = wire.MSGPACK) -> Client:
        c = Client("127.0.0.1", self.port, mode)
        await c.connect()
        if key is not None:
            await c.login(key["apiKey"], key["secret"])
        return c

    async def watch_rss(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb(self.proc.pid))
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


async def account(admin: Client, server: Server, number: int) -> dict:
    await admin.request("createAccount", account=number, registeredAt=0)
    await admin.request("deposit", account=number, amount="100000000")
    return await admin.request("createApiKey", account=number)


async def flood(server: Server, line: bytes, n: int, key: dict | None = None) -> tuple[int, float]:
    """Send `line` n times on a connection that never reads; (sent, seconds)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hello = b""
    while not hello.endswith(b"\n"):
        hello += sock.recv(1)
    if key is not None:
        nonce = json.loads(hello)["nonce"]
        sock.sendall(json.dumps({"id": 0, "op": "login", "apiKey": key["apiKey"],
                                 "signature": wire.sign(key["secret"], nonce)}).encode() + b"\n")
    sock.setblocking(False)
    sent, t0 = 0, time.monotonic()
    while sent < n and time.monotonic() - t0 < 120:
        try:
            sock.send(line)
            sent += 1
        except BlockingIOError:
            await asyncio.sleep(0.01)  # the server stopped reading: its backpressure
    server.flooder = sock  # kept open (unread) until the end
    return sent, time.monotonic() - t0


async def another_client_waits(server: Server) -> float:
    t0 = time.monotonic()
    other = await asyncio.wait_for(server.client(mode=wire.JSONL), 300)
    await asyncio.wait_for(other.query("depth", symbol="BTCUSDT", limit=5), 300)
    await other.close()
    return time.monotonic() - t0


async def run_depth(server: Server, n: int) -> str:
    admin = await server.client(server.admin_key)
    for a in range(6):
        t = await server.client(await account(admin, server, 100 + a))
        await asyncio.gather(*[t.submit("newOrder", symbol="BTCUSDT", side="BUY", type="LIMIT",
                                        quantity="0.001", price=str(20000 + 200 * a + i),
                                        timeInForce="GTC") for i in range(200)])
        await t.close()
    before = rss_mb(server.proc.pid)
    watcher = asyncio.create_task(server.watch_rss())
    line = b'{"id": 1, "op": "query", "query": "depth", "symbol": "BTCUSDT", "limit": 1000}\n'
    sent, took = await flood(server, line, n)
    await asyncio.sleep(1)
    wait = await another_client_waits(server)
    await asyncio.sleep(2)
    watcher.cancel()
    await admin.close()
    return (f"{sent:,} unread depth(1000) queries (sent in {took:.1f} s) on a 1,200-level book: "
            f"RSS {before} MB, peak {server.peak} MB; another client answered after {wait:.2f} s")


async def run_open_orders(server: Server, n: int) -> str:
    cat = catalogue_mod.load()
    symbols = [s.symbol for s in cat.symbols.values()
               if s.contract_type == "PERPETUAL" and s.max_num_orders >= 200
               and parse("0.001") % s.tick_size == 0 and parse("1") % s.step_size == 0
               and s.min_qty <= parse("1") and s.min_price <= parse("9.8") <= s.max_price]
    admin = await server.client(server.admin_key)
    key = await account(admin, server, 1)
    t = await server.client(key)
    placed = 0
    for sym in symbols:
        replies = await asyncio.gather(*[t.submit("newOrder", symbol=sym, side="BUY",
                                                  type="LIMIT", quantity="1",
                                                  price=f"{10 - i / 1000:.3f}",
                                                  timeInForce="GTC") for i in range(200)])
        placed += sum(r["ok"] for r in replies)
    before = rss_mb(server.proc.pid)
    watcher = asyncio.create_task(server.watch_rss())
    sent, _ = await flood(server, b'{"id": 1, "op": "query", "query": "openOrders"}\n', n, key)
    await asyncio.sleep(0.2)
    wait = await another_client_waits(server)
    await asyncio.sleep(3)
    watcher.cancel()
    await t.close()
    await admin.close()
    return (f"{sent:,} unread openOrders of an account with {placed:,} open orders on "
            f"{len(symbols)} symbols: RSS {before} MB, peak {server.peak} MB; another client "
            f"answered after {wait:.2f} s")


async def run_keys(server: Server, n: int) -> str:
    admin = await server.client(server.admin_key)
    await admin.request("createAccount", account=1, registeredAt=0)
    probe = await server.client()
    times, stalls = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        fut = admin.submit("createApiKey", account=1)
        t1 = time.perf_counter()
        await probe.query("premiumIndex", symbol="BTCUSDT")
        stalls.append(time.perf_counter() - t1)
        await fut
        times.append(time.perf_counter() - t0)
    last, stall = sorted(times[-100:]), sorted(stalls[-100:])
    await admin.close()
    await probe.close()
    median = last[len(last) // 2] * 1000
    return (f"createApiKey as keys {max(n - 100, 0):,}-{n:,}: median {median:.1f} ms; "
            f"a read on another connection meanwhile: median "
            f"{stall[len(stall) // 2] * 1000:.2f} ms, max {stall[-1] * 1000:.1f} ms")


RUNS = {"depth": (run_depth, 12_000), "openorders": (run_open_orders, 40),
        "keys": (run_keys, 2_000)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.sim.adversary",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=sorted(RUNS))
    p.add_argument("-n", type=int, help="how many requests (default: the issue's)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="an option for the server, e.g. --server-arg=--weight-per-min=0")
    p.add_argument("--root", default=str(ROOT), help="the checkout whose server is run")
    a = p.parse_args(argv)
    run, default_n = RUNS[a.what]
    server = Server(Path(a.root), [x for arg in a.server_arg for x in arg.split("=", 1)])
    try:
        print(f"{a.what} ({a.root}): " + asyncio.run(run(server, a.n or default_n)), flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
