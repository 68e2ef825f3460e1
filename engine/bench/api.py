"""`python -m engine.bench api`: REST order round trips through Binance's API against the native
protocol, on a real server process started here.

For each path (raw HTTP with an aiohttp client, ccxt's async client, the native protocol's
msgpack client) and each offered rate (500, 2,000, 5,000 orders/s by default), orders are sent
open-loop for `--seconds`: order i leaves at start + i / rate, whether or not earlier ones were
answered. Orders come in pairs of accounts that trade with each other (one rests, the other
takes it, sides alternating so positions return to zero), spread over several pairs and
symbols. Reported: orders acknowledged per second, round-trip latency p50 and p99 (from the
moment the request was sent), and the server's CPU time per order (utime + stime of the server
process from /proc/<pid>/stat over the run, divided by the orders acknowledged), so the HTTP
path's cost can be read against the native one's.

ccxt is run with `enableRateLimit: False` (its client-side throttle would otherwise cap it far
below the offered rates). Client and server share the machine's cores: at the higher rates the
client (ccxt above all: it signs and parses in Python) is often the limit, not the server.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from engine.client import Client

PAIRS = [("BTCUSDT", "30000", "0.001"), ("ETHUSDT", "2000", "0.01"),
         ("BNBUSDT", "300", "0.1"), ("XRPUSDT", "0.5", "20")]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    def __init__(self, directory: str, api: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--port", "0",
             "--api-port", "0" if api else "-1",
             "--log", os.path.join(directory, "engine.log"),
             "--keys", os.path.join(directory, "keys.json"), "--summary-every", "3600",
             "--rate", "1000000", "--burst", "1000000", "--api-weight-limit", "1000000000",
             "--api-order-limit", "1000000000", "--snapshot-every", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "serving on" not in line or (api and "Binance API on" not in line):
            raise SystemExit(f"server did not start: {line}")
        self.port = int(line.split("serving on ")[1].split()[0].rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:" + line.rsplit(":", 1)[1].strip() if api else ""
        self.admin = json.load(open(os.path.join(directory, "keys.json")))[0]

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


async def _setup(server: Server, n_pairs: int) -> list[tuple[dict, dict]]:
    admin = Client("127.0.0.1", server.port)
    await admin.connect()
    await admin.login(server.admin["apiKey"], server.admin["secret"])
    for symbol, price, _ in PAIRS:
        await admin.request("setMarkPrice", symbol=symbol, markPrice=price)
    pairs = []
    for i in range(n_pairs):
        keys = []
        for j in (0, 1):
            account = 1000 + 2 * i + j
            await admin.request("createAccount", account=account, registeredAt=0)
            await admin.request("deposit", account=account, amount="100000000")
            keys.append(await admin.request("createApiKey", account=account))
        pairs.append((keys[0], keys[1]))
    await admin.close()
    return pairs


def _orders(pairs, count: int):
    """(key, fields) for order i: pair i/2 % pairs; in each step one rests, the other takes."""
    out = []
    for i in range(count):
        step, taker = divmod(i, 2)
        pair = pairs[(step // 2) % len(pairs)]
        symbol, price, qty = PAIRS[(step // 2) % len(PAIRS)]
        flip = (step // (2 * len(pairs))) % 2
        side = ("SELL", "BUY")[(taker + flip) % 2]
        out.append((pair[taker], {"symbol": symbol, "side": side, "type": "LIMIT",
                                  "quantity": qty, "price": price, "timeInForce": "GTC"}))
    return out


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _open_loop(rate: int, seconds: float, send) -> tuple[int, list[float], float]:
    """Call `send(i)` at start + i / rate; (acknowledged, latencies in s, elapsed s)."""
    count = int(rate * seconds)
    latencies: list[float] = []
    ok = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    pending = set()

    async def one(i):
        nonlocal ok
        t0 = time.perf_counter()
        if await send(i):
            ok += 1
            latencies.append(time.perf_counter() - t0)
    for i in range(count):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=60)
    return ok, latencies, loop.time() - start


async def run_raw(server: Server, pairs, rate: int, seconds: float):
    import aiohttp
    orders = _orders(pairs, int(rate * seconds))
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def send(i):
            key, fields = orders[i]
            qs = "&".join(f"{k}={v}" for k, v in fields.items())
            qs += f"&newOrderRespType=RESULT&timestamp={int(time.time() * 1000)}"
            sig = hmac.new(key["secret"].encode(), qs.encode(), hashlib.sha256).hexdigest()
            async with session.post(server.url + "/fapi/v1/order", data=f"{qs}&signature={sig}",
                                    headers={"X-MBX-APIKEY": key["apiKey"], "Content-Type":
                                             "application/x-www-form-urlencoded"}) as r:
                await r.read()
                return r.status == 200
        return await _open_loop(rate, seconds, send)


async def run_ccxt(server: Server, pairs, rate: int, seconds: float):
    import ccxt.async_support as ccxt
    url = server.url
    urls = {"api": {k: url + v for k, v in {
        "fapiPublic": "/fapi/v1", "fapiPrivate": "/fapi/v1", "fapiPublicV2": "/fapi/v2",
        "fapiPrivateV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3", "fapiPrivateV3": "/fapi/v3",
        "sapi": "/sapi/v1", "public": "/api/v3", "private": "/api/v3"}.items()}}
    clients = {}
    for a, b in pairs:
        for key in (a, b):
            clients[key["apiKey"]] = ccxt.binanceusdm({
                "apiKey": key["apiKey"], "secret": key["secret"], "urls": urls,
                "enableRateLimit": False, "options": {"fetchCurrencies": False}})
    try:
        first = next(iter(clients.values()))
        markets = await first.load_markets()
        for c in clients.values():
            c.set_markets(markets)
        orders = _orders(pairs, int(rate * seconds))
        symbols = {s: f"{s[:-4]}/USDT:USDT" for s, _, _ in PAIRS}

        async def send(i):
            key, f = orders[i]
            try:
                await clients[key["apiKey"]].create_order(
                    symbols[f["symbol"]], "limit", f["side"].lower(), float(f["quantity"]),
                    float(f["price"]))
                return True
            except Exception:  # counted as not acknowledged
                return False
        return await _open_loop(rate, seconds, send)
    finally:
        for c in clients.values():
            await c.close()


async def run_native(server: Server, pairs, rate: int, seconds: float):
    conns = {}
    for a, b in pairs:
        for key in (a, b):
            c = Client("127.0.0.1", server.port)
            await c.connect()
            await c.login(key["apiKey"], key["secret"])
            conns[key["apiKey"]] = c
    try:
        orders = _orders(pairs, int(rate * seconds))

        async def send(i):
            key, f = orders[i]
            msg = await conns[key["apiKey"]].submit("newOrder", **f)
            return bool(msg.get("ok"))
        return await _open_loop(rate, seconds, send)
    finally:
        for c in conns.values():
            await c.close()


PATHS = {"raw": run_raw, "ccxt": run_ccxt, "native": run_native,
         "native-no-api": run_native}


async def bench(rates: list[int], seconds: float, paths: list[str], n_pairs: int) -> list[dict]:
    rows = []
    if "native-no-api" in paths:  # the native path on a server without the API at all
        with tempfile.TemporaryDirectory() as directory:
            rows += await _bench_server(Server(directory, api=False), rates, seconds,
                                        ["native-no-api"], n_pairs)
        paths = [p for p in paths if p != "native-no-api"]
    if paths:
        with tempfile.TemporaryDirectory() as directory:
            rows += await _bench_server(Server(directory), rates, seconds, paths, n_pairs)
    native = {r["offered"]: r["server_cpu_us_per_order"] for r in rows if r["path"] == "native"}
    for r in rows:
        if r["path"] in ("raw", "ccxt") and native.get(r["offered"]) and \
                r["server_cpu_us_per_order"]:
            r["cpu_over_native_us"] = round(r["server_cpu_us_per_order"] -
                                            native[r["offered"]], 1)
    return rows


async def _bench_server(server: Server, rates: list[int], seconds: float, paths: list[str],
                        n_pairs: int) -> list[dict]:
    rows = []
    try:
        pairs = await _setup(server, n_pairs)
        for path in paths:
            for rate in rates:
                cpu0 = server.cpu()
                ok, lat, elapsed = await PATHS[path](server, pairs, rate, seconds)
                await asyncio.sleep(0.2)
                cpu = server.cpu() - cpu0
                row = {"path": path, "offered": rate, "acked": ok,
                       "acked_per_s": round(ok / elapsed),
                       "p50_ms": round(_percentile(lat, 0.5) * 1000, 2),
                       "p99_ms": round(_percentile(lat, 0.99) * 1000, 2),
                       "server_cpu_us_per_order": round(cpu / ok * 1e6, 1) if ok else None}
                rows.append(row)
                print(f"{path:13} offered {rate:5}/s: {row['acked_per_s']:5}/s acknowledged, "
                      f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, server CPU "
                      f"{row['server_cpu_us_per_order']} µs/order", flush=True)
    finally:
        server.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench api")
    p.add_argument("--rates", default="500,2000,5000")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--paths", default="native,raw,ccxt",
                   help="native, raw, ccxt; native-no-api: the native path on a server "
                        "started without the API (what the API's projection costs)")
    p.add_argument("--pairs", type=int, default=8, help="pairs of trading accounts")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    rows = runner(bench([int(r) for r in a.rates.split(",")], a.seconds,
                        a.paths.split(","), a.pairs))
    for r in rows:
        if "cpu_over_native_us" in r:
            print(f"{r['path']:6} offered {r['offered']:5}/s: HTTP path adds "
                  f"{r['cpu_over_native_us']} µs of server CPU per order over the native one")
    if a.json:
        print(json.dumps(rows, indent=1))
    return 0
