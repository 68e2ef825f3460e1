"""`make load`: synthetic traders against the gateway, a report of throughput and ack latency.

    python -m engine.load [--duration S] [--orders N] [--rate ORDERS_PER_S] [--accounts N]
                          [--connections N] [--inflight N] [--seed N] [--fsync batch|interval]
                          [--connect HOST:PORT --keys FILE] [--report PATH] ...

By default it starts its own server (`python -m engine serve --port 0` with a log and keys file
in a fresh temporary directory, and a per-connection rate limit high enough not to throttle the
load), sets up accounts through the admin key, runs the traders, stops the server with SIGTERM
and reports its exit code. `--connect HOST:PORT --keys FILE` uses a running server instead.

The traders, each on its own connection (one per account unless --connections is larger):
  maker     keeps GTC limit orders on both sides around the mark, refreshing them with
            modifyOrder and cancelOrder
  taker     IOC limits across the spread and MARKET orders
  canceler  places passive GTC orders and cancels each as soon as it is acknowledged
  gambler   over-leveraged (50x-100x) directional positions that the price feed's jumps
            liquidate; the admin tops its wallet up and it goes again
  watcher   an extra connection of a gambler's account (one position has one owner): holds
            its connection and reads the position once a second
  feed      (the admin connection) moves every mark as a seeded random walk with jumps
Every trader pipelines (at most --inflight requests outstanding per connection) and times each
order request from send to acknowledgement with time.perf_counter_ns. An observer connection
counts liquidations on !forceOrder and trades on trade@SYMBOL.

This is an edge tool: it uses floats for its random walk and its statistics, but every price and
quantity it sends is a decimal string made from integer ticks and steps of the instrument.
Progress goes to stderr once a second; the report to stdout, as JSON to --report, and as a
latency histogram PNG next to it when matplotlib is importable.
"""
from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import functools
import itertools
import json
import math
import os
import random
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from time import perf_counter, perf_counter_ns

import msgspec

from engine import catalogue as catalogue_mod
from engine import fixed
from engine.client import Client, ClientError
from proto import wire

ROOT = Path(__file__).resolve().parent.parent
ORDER_OPS = ("newOrder", "cancelOrder", "modifyOrder")
DEFAULT_MARKS = {"BTCUSDT": "30000", "ETHUSDT": "2000", "ALLUSDT": "1.5"}
ROLES = ("maker", "taker", "canceler", "gambler")
CONN_ROLES = ROLES + ("watcher",)
SCALE = fixed.SCALE
_mp_decode = msgspec.msgpack.Decoder().decode


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- a client tuned for load: corked writes, bulk reads, receive timestamps -----------------------
class LoadClient(Client):
    """engine.client.Client with writes gathered per loop iteration (one syscall for a burst of
    pipelined requests) and msgpack frames parsed in bulk. Each response dict gets "_rx", the
    perf_counter_ns at which its bytes were read from the socket."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self._out: list[bytes] = []
        self._flush_pending = False

    def submit(self, op: str, **fields) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.closed.is_set() or self._writer is None:
            fut.set_exception(ConnectionError("connection closed"))
            return fut
        req_id = next(self._ids)
        self._waiting[req_id] = fut
        self._out.append(wire.encode({"id": req_id, "op": op, **fields}, self.mode))
        if len(self._out) >= 32:
            self._flush()
        elif not self._flush_pending:
            self._flush_pending = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._flush_pending = False
        if self._out and not self.closed.is_set():
            try:
                self._writer.write(b"".join(self._out))
            except (ConnectionError, RuntimeError):
                pass
        self._out.clear()

    async def _read_loop(self) -> None:
        if self.mode != wire.MSGPACK:
            return await super()._read_loop()
        r = self._reader
        buf = bytearray()
        unpack = wire.LENGTH.unpack_from
        try:
            while True:
                chunk = await r.read(1 << 18)
                if not chunk:
                    break
                rx = perf_counter_ns()
                buf += chunk
                pos, n = 0, len(buf)
                with memoryview(buf) as view:
                    while n - pos >= 4:
                        (length,) = unpack(view, pos)
                        if n - pos - 4 < length:
                            break
                        msg = _mp_decode(view[pos + 4:pos + 4 + length])
                        pos += 4 + length
                        self._dispatch(msg, rx)
                del buf[:pos]
        except (ConnectionError, asyncio.IncompleteReadError, msgspec.DecodeError):
            pass
        finally:
            self._connection_lost()

    def _dispatch(self, msg, rx: int) -> None:
        if "stream" in msg:
            self.streams.put_nowait(msg)
            return
        msg["_rx"] = rx
        fut = self._waiting.pop(msg.get("id"), None)
        if fut is not None:
            if not fut.done():
                fut.set_result(msg)
        elif msg.get("id") is None and not msg.get("ok", True):
            for f in self._waiting.values():  # the server is closing us
                if not f.done():
                    f.set_exception(ClientError(msg.get("code", -1000), msg.get("msg", "")))
            self._waiting.clear()


# -- markets: integer ticks and steps, decimal strings on the wire --------------------------------
class Market:
    def __init__(self, spec, mark_units: int, now_ms: int) -> None:
        self.symbol = spec.symbol
        self.tick, self.step = spec.tick_size, spec.step_size
        self.spec = spec
        self.mark = max(1, mark_units // self.tick)  # ticks
        self.start = self.mark
        self.level = float(self.mark)  # the random walk, in ticks (edge-side float)
        self.max_leverage = spec.table_at(now_ms).max_leverage
        self.min_steps = 1
        self.set_mark(self.mark)

    def set_mark(self, ticks: int) -> None:
        self.mark = ticks
        price = ticks * self.tick
        need = -(-self.spec.min_notional * 13 * SCALE // (10 * self.step * price))  # 30% margin
        self.min_steps = max(-(-self.spec.min_qty // self.step), need, 1)
        # stay inside the PERCENT_PRICE band, with a margin: [0.86, 1.14] x mark
        self.lo = -(-ticks * 86 // 100)
        self.hi = ticks * 114 // 100

    def px(self, ticks: int) -> str:
        return fixed.fmt(min(self.hi, max(self.lo, ticks, 1)) * self.tick)

    def qty(self, steps: int) -> str:
        return fixed.fmt(steps * self.step)

    def frac_ticks(self, fraction: float) -> int:  # edge: timing and statistics, not money
        """A distance from the mark, in whole ticks (at least one)."""
        return max(1, int(self.mark * fraction))


# -- statistics ----------------------------------------------------------------------------------
class Stats:
    HIST_FINE = 10_000  # 1 us buckets below 10 ms, then 100 us buckets to 10 s

    def __init__(self) -> None:
        self.sent = Counter()
        self.acked = Counter()
        self.ok = Counter()
        self.rejected = Counter()  # code -> count
        self.queries = 0
        self.lat = array.array("q")  # ns, order requests only
        self.hist = [0] * (self.HIST_FINE + 100_001)
        self.max_ns = 0
        self.trades_acked = 0
        self.trades_stream = 0
        self.liquidations = 0
        self.wipeouts = 0  # gambler positions closed by the venue
        self.timeouts = 0
        self.lost = 0  # requests failed by a closed connection
        self.conn_lost = 0
        self.connect_failures = 0
        self.feed_updates = 0
        self.unpaced_orders = 0  # the gamblers': --rate leaves room for them
        self.feed_jumps = 0
        self.jump_log: list = []
        self.feed_rejected = 0
        self.topups = 0
        self.first_send = 0.0
        self.last_ack = 0.0

    def record(self, op: str, ns: int, msg: dict) -> None:
        self.acked[op] += 1
        self.lat.append(ns)
        us = ns // 1000
        h = us if us < self.HIST_FINE else min(self.HIST_FINE + us // 100, len(self.hist) - 1)
        self.hist[h] += 1
        if ns > self.max_ns:
            self.max_ns = ns
        if msg["ok"]:
            self.ok[op] += 1
            result = msg["result"]
            if "trades" in result:  # an order's reply counts its fills
                self.trades_acked += result["trades"]
            else:
                for ev in result.get("events") or ():
                    if ev.get("e") == "trade":
                        self.trades_acked += 1
        else:
            self.rejected[msg.get("code", 0)] += 1

    def hist_quantile(self, q: float) -> float:  # edge: timing and statistics, not money
        """ms, from the histogram (cheap enough for a progress line)."""
        total = len(self.lat)
        if not total:
            return 0.0
        target = q * total
        acc = 0
        for i, c in enumerate(self.hist):
            if c:
                acc += c
                if acc >= target:
                    return (i if i < self.HIST_FINE else (i - self.HIST_FINE) * 100) / 1000
        return self.max_ns / 1e6


def quantiles(sorted_ns, qs) -> dict:
    n = len(sorted_ns)
    out = {}
    for name, q in qs:
        i = min(n - 1, max(0, math.ceil(q * n) - 1))
        out[name] = round(sorted_ns[i] / 1e6, 3) if n else None
    return out


# -- traders -------------------------------------------------------------------------------------
class Trader:
    """One connection. Subclasses choose the next request and digest the reply."""
    role = "?"
    paced = True

    def __init__(self, run: "Run", index: int, account: int, market: Market, slots: int) -> None:
        self.run, self.index, self.account, self.market = run, index, account, market
        self.rng = random.Random(run.args.seed * 1_000_003 + index)
        self.client: LoadClient | None = None
        self.inflight = run.args.inflight
        self.free = self.inflight
        self.wake = asyncio.Event()
        self.pending: dict[asyncio.Future, int] = {}
        self.rate = 0.0  # requests/s when paced (--rate); 0: as fast as the in-flight bound allows
        self.credit = self.rng.random()  # a random phase: paced traders do not send in step
        self.nslots = slots

    def send(self, op: str, fields: dict, tag=None) -> asyncio.Future:
        t0 = perf_counter_ns()
        fut = self.client.submit(op, **fields)
        self.free -= 1
        self.pending[fut] = t0
        self.run.stats.sent[op] += 1
        fut.add_done_callback(functools.partial(self._done, op, t0, tag))
        return fut

    def _done(self, op: str, t0: int, tag, fut: asyncio.Future) -> None:
        self.pending.pop(fut, None)
        self.free += 1
        self.wake.set()
        if fut.cancelled():
            return
        st = self.run.stats
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, asyncio.TimeoutError):
                st.timeouts += 1
            elif isinstance(exc, ClientError):
                st.rejected[exc.code] += 1
            else:
                st.lost += 1
            self.on_reply(tag, None, None)
            return
        msg = fut.result()
        rx = msg.get("_rx") or perf_counter_ns()
        st.record(op, rx - t0, msg)
        st.last_ack = perf_counter()
        if msg["ok"]:
            self.on_reply(tag, msg["result"], None)
        else:
            self.on_reply(tag, None, msg.get("code"))

    def next_request(self):
        raise NotImplementedError

    def on_reply(self, tag, result, code) -> None:
        pass

    async def loop(self) -> None:
        run, client = self.run, self.client
        last = run.t_start
        burst = 0
        while not run.stopping:
            if client.closed.is_set():
                run.on_conn_lost(self)
                return
            if self.free <= 0:
                self.wake.clear()
                await self.wake.wait()
                continue
            if self.rate:
                now = perf_counter()
                # credit accrues at the rate; at most 1 s of backlog is kept (beyond that the
                # offered load is dropped, not queued: see the report's sent_per_s)
                self.credit = min(self.credit + (now - last) * self.rate, max(1.0, self.rate))
                last = now
                if self.credit < 1:
                    await asyncio.sleep((1 - self.credit) / self.rate)
                    continue
            req = self.next_request()
            if req is None:
                self.wake.clear()
                await self.wake.wait()
                continue
            if not run.take_order():
                self.on_reply(req[2], None, None)  # give the slot back
                return
            self.send(*req)
            self.credit -= 1
            burst += 1
            if burst >= 64:
                burst = 0
                await asyncio.sleep(0)


class SlotTrader(Trader):
    """Keeps `nslots` orders, each either resting (an order id) or not; one request per slot in
    flight at most."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        n = max(2, self.nslots)
        self.order_ids: list[int | None] = [None] * n
        self.qtys: list[int] = [0] * n
        self.sides = ["BUY" if i % 2 == 0 else "SELL" for i in range(n)]
        self.idle = list(range(n))

    def take_slot(self) -> int | None:
        idle = self.idle
        if not idle:
            return None
        j = self.rng.randrange(len(idle))
        idle[j], idle[-1] = idle[-1], idle[j]
        return idle.pop()


class Maker(SlotTrader):
    role = "maker"

    def next_request(self):
        i = self.take_slot()
        if i is None:
            return None
        m, rng = self.market, self.rng
        side = self.sides[i]
        off = rng.randint(1, m.frac_ticks(0.0025))
        price = m.mark - off if side == "BUY" else m.mark + off
        oid = self.order_ids[i]
        if oid is None:
            q = m.min_steps * rng.randint(2, 12)
            self.qtys[i] = q
            return ("newOrder", {"symbol": m.symbol, "side": side, "type": "LIMIT",
                                 "quantity": m.qty(q), "price": m.px(price),
                                 "timeInForce": "GTC"}, ("new", i))
        if rng.random() < 0.75:
            return ("modifyOrder", {"symbol": m.symbol, "orderId": oid,
                                    "quantity": m.qty(self.qtys[i]), "price": m.px(price)},
                    ("mod", i))
        return ("cancelOrder", {"symbol": m.symbol, "orderId": oid}, ("cxl", i))

    def on_reply(self, tag, result, code) -> None:
        kind, i = tag
        if kind == "new":
            self.order_ids[i] = result["orderId"] if result and \
                result.get("status") in ("NEW", "PARTIALLY_FILLED") else None
        elif kind == "mod":
            if result is not None:
                if result.get("status") not in ("NEW", "PARTIALLY_FILLED"):
                    self.order_ids[i] = None
            elif code is None or code == -2011:  # unknown: filled meanwhile
                self.order_ids[i] = None
        elif result is not None or code is None or code == -2011:
            self.order_ids[i] = None
        self.idle.append(i)


class Canceler(SlotTrader):
    role = "canceler"

    def next_request(self):
        i = self.take_slot()
        if i is None:
            return None
        m, rng = self.market, self.rng
        oid = self.order_ids[i]
        if oid is not None:
            return ("cancelOrder", {"symbol": m.symbol, "orderId": oid}, ("cxl", i))
        side = self.sides[i]
        off = m.frac_ticks(rng.uniform(0.005, 0.03))
        price = m.mark - off if side == "BUY" else m.mark + off
        return ("newOrder", {"symbol": m.symbol, "side": side, "type": "LIMIT",
                             "quantity": m.qty(m.min_steps * rng.randint(1, 3)),
                             "price": m.px(price), "timeInForce": "GTC"}, ("new", i))

    def on_reply(self, tag, result, code) -> None:
        kind, i = tag
        if kind == "new":
            self.order_ids[i] = result["orderId"] if result and \
                result.get("status") in ("NEW", "PARTIALLY_FILLED") else None
        elif result is not None or code is None or code == -2011:
            self.order_ids[i] = None
        self.idle.append(i)


class Taker(Trader):
    role = "taker"

    def next_request(self):
        m, rng = self.market, self.rng
        side = "BUY" if rng.random() < 0.5 else "SELL"
        q = m.qty(m.min_steps * rng.randint(1, 4))
        if rng.random() < 0.2:
            return ("newOrder", {"symbol": m.symbol, "side": side, "type": "MARKET",
                                 "quantity": q}, None)
        reach = m.frac_ticks(rng.uniform(0.0005, 0.004))
        price = m.mark + reach if side == "BUY" else m.mark - reach
        return ("newOrder", {"symbol": m.symbol, "side": side, "type": "LIMIT", "quantity": q,
                             "price": m.px(price), "timeInForce": "IOC"}, None)


class Gambler(Trader):
    """Over-leveraged: opens a position worth ~80% of its wallet x leverage with IOC orders,
    holds it until the feed's jumps liquidate it, asks the admin for a top-up, goes again."""
    role = "gambler"
    paced = False

    def __init__(self, *a, leverage: int, wallet_units: int, **kw) -> None:
        super().__init__(*a, **kw)
        self.leverage = leverage
        self.wallet_units = wallet_units
        self.log = {"account": self.account, "symbol": self.market.symbol, "leverage": leverage,
                    "orders": 0, "filled": 0, "rejected": {}, "largest_position": "0",
                    "largest_notional": "0", "closed": 0}
        self._largest = 0

    def target_steps(self) -> int:
        m = self.market
        notional = self.wallet_units * 8 * self.leverage // 10
        return max(m.min_steps, notional * SCALE // (m.step * m.mark * m.tick))

    async def _call(self, op: str, fields: dict, order: bool = True):
        if order:
            if not self.run.take_order():
                return None
            fut = self.send(op, fields)
            self.run.stats.unpaced_orders += 1
        else:
            fut = self.client.submit(op, **fields)
            self.run.stats.queries += 1
        try:
            return await asyncio.wait_for(fut, self.run.args.timeout)
        except (ClientError, ConnectionError, asyncio.TimeoutError):
            return None

    async def loop(self) -> None:
        run, m, rng = self.run, self.market, self.rng
        holding = False
        while not run.stopping:
            if self.client.closed.is_set():
                run.on_conn_lost(self)
                return
            risk = await self._call("query", {"query": "positionRisk", "symbol": m.symbol},
                                    order=False)
            if run.stopping:
                return
            if not (risk and risk.get("ok")):
                await asyncio.sleep(0.2)
                continue
            amt = sum(fixed.parse(r["positionAmt"]) for r in risk["result"]
                      if r.get("symbol", m.symbol) == m.symbol) // m.step
            if abs(amt) > self._largest:
                self._largest = abs(amt)
                self.log["largest_position"] = m.qty(abs(amt))
                self.log["largest_notional"] = fixed.fmt(abs(amt) * m.step * m.mark * m.tick
                                                         // SCALE)
            if holding and amt == 0:  # liquidated or auto-deleveraged (it never closes itself)
                run.stats.wipeouts += 1
                self.log["closed"] += 1
                holding = False
                done = asyncio.Event()
                run.topups.put_nowait((self.account, done))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done.wait(), 5)
                continue
            if amt:
                holding = True
                side = "BUY" if amt > 0 else "SELL"
            else:
                side = "BUY" if rng.random() < 0.5 else "SELL"
            target, have = self.target_steps(), abs(amt)
            if have < target * 9 // 10:  # build (or top up) the position
                reach = m.frac_ticks(0.01)
                price = m.mark + reach if side == "BUY" else m.mark - reach
                reply = await self._call("newOrder", {
                    "symbol": m.symbol, "side": side, "type": "LIMIT",
                    "quantity": m.qty(min(target - have, m.spec.max_qty // m.step)),
                    "price": m.px(price), "timeInForce": "IOC"})
                self.log["orders"] += 1
                if reply is not None and reply.get("ok"):
                    if reply["result"].get("executedQty", "0") != "0":
                        self.log["filled"] += 1
                elif reply is not None:
                    code = str(reply.get("code"))
                    self.log["rejected"][code] = self.log["rejected"].get(code, 0) + 1
            await asyncio.sleep(0.2 + rng.random() * 0.1)


class Watcher(Trader):
    """An extra connection of a gambler's account: the gambler trades on its first connection
    only (one position, one owner); the others hold their connection and look at the position
    once a second."""
    role = "watcher"
    paced = False

    async def loop(self) -> None:
        run, m = self.run, self.market
        await asyncio.sleep(self.rng.random())
        while not run.stopping:
            if self.client.closed.is_set():
                run.on_conn_lost(self)
                return
            run.stats.queries += 1
            with contextlib.suppress(ClientError, ConnectionError, asyncio.TimeoutError):
                await asyncio.wait_for(self.client.request("query", query="positionRisk",
                                                           symbol=m.symbol), run.args.timeout)
            await asyncio.sleep(1.0)


# -- the run -------------------------------------------------------------------------------------
class Run:
    def __init__(self, args) -> None:
        self.args = args
        self.stats = Stats()
        self.stopping = False
        self.stop_reason = ""
        self.traders: list[Trader] = []
        self.markets: dict[str, Market] = {}
        self.topups: asyncio.Queue = asyncio.Queue()
        self.t_start = 0.0
        self.t_stop = 0.0
        self.order_limit = args.orders or 0
        self.orders_taken = 0
        self.admin: LoadClient | None = None
        self.observer: LoadClient | None = None
        self.observer_lost = False
        self.peak_connections = 0
        self.server = ServerInfo()
        self.timeline: list[dict] = []
        self.lags: list[float] = []
        self.setup_s = None

    def take_order(self) -> bool:
        if self.stopping:
            return False
        if self.order_limit:
            if self.orders_taken >= self.order_limit:
                self.stop("--orders reached")
                return False
            self.orders_taken += 1
        return True

    def stop(self, reason: str) -> None:
        if not self.stopping:
            self.stopping = True
            self.stop_reason = reason
            self.t_stop = perf_counter()
            for t in self.traders:
                t.wake.set()

    def on_conn_lost(self, trader: Trader) -> None:
        self.stats.conn_lost += 1
        log(f"load: connection {trader.index} (account {trader.account}, {trader.role}) lost")

    def held(self) -> int:
        return sum(1 for t in self.traders if t.client is not None and not t.client.closed.is_set())


class ServerInfo:
    def __init__(self) -> None:
        self.proc = None
        self.tmpdir: Path | None = None
        self.log_path: Path | None = None
        self.keys_path: Path | None = None
        self.stderr_path: Path | None = None
        self.address = ""
        self.lines: list[str] = []
        self.exit_code = None
        self.stop_s = None
        self.log_bytes = None
        self.reader: asyncio.Task | None = None


def raise_nofile(need: int) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    info = {"soft_before": soft, "hard": hard, "needed": need}
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError) as exc:
            log(f"load: could not raise the open-files limit to {new}: {exc}")
    info["soft"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if info["soft"] != resource.RLIM_INFINITY and info["soft"] < need:
        log(f"load: open-files limit {info['soft']} < {need} needed; expect connect failures")
    return info


def _server_preexec(nofile: int) -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):  # its own session: a terminal's Ctrl-C stops only us,
        os.setsid()                      # and we stop the server with SIGTERM after the drain
    with contextlib.suppress(Exception):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < nofile:
            new = nofile if hard == resource.RLIM_INFINITY else min(hard, nofile)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    with contextlib.suppress(Exception):  # Linux: the server dies with us if we are killed
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def start_server(run: Run, nofile: int) -> tuple[str, int, Path]:
    a, srv = run.args, run.server
    tmp = Path(tempfile.mkdtemp(prefix="perpload-", dir=a.tmpdir))
    srv.tmpdir = tmp
    srv.log_path, srv.keys_path = tmp / "load.log", tmp / "keys.json"
    srv.stderr_path = tmp / "server.stderr"
    cmd = [sys.executable, "-m", "engine", "serve", "--host", "127.0.0.1", "--port", "0",
           "--log", str(srv.log_path), "--keys", str(srv.keys_path), "--fsync", a.fsync,
           "--fsync-interval-ms", str(a.fsync_interval_ms),
           "--rate", str(a.limit_rate), "--burst", str(a.limit_burst),
           "--summary-every", str(a.summary_every)]
    if a.outbound_limit is not None:
        cmd += ["--outbound-limit", str(a.outbound_limit)]
    for extra in a.server_arg:
        cmd += extra.split()
    with open(srv.stderr_path, "wb") as err:
        srv.proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=err,
            stdin=asyncio.subprocess.DEVNULL, preexec_fn=functools.partial(_server_preexec, nofile))
    try:
        first = await asyncio.wait_for(srv.proc.stdout.readline(), a.server_start_timeout)
    except asyncio.TimeoutError:
        first = b""
    line = first.decode(errors="replace").strip()
    if "serving on " not in line:
        raise RuntimeError(f"the server did not start (first line {line!r}); see {srv.stderr_path}")
    srv.lines.append(line)
    host, _, port = line.split("serving on ", 1)[1].split()[0].rpartition(":")
    srv.address = f"{host}:{port}"
    log(f"load: server pid {srv.proc.pid} on {srv.address}, fsync per {a.fsync}; dir {tmp}")
    srv.reader = asyncio.create_task(_server_output(run))
    return host, int(port), srv.keys_path


async def _server_output(run: Run) -> None:
    srv = run.server
    while True:
        raw = await srv.proc.stdout.readline()
        if not raw:
            return
        line = raw.decode(errors="replace").rstrip()
        srv.lines.append(line)
        del srv.lines[:-20]
        if not run.args.quiet:
            log(f"  server| {line}")


async def stop_server(run: Run) -> None:
    srv = run.server
    if srv.proc is None:
        return
    t0 = perf_counter()
    if srv.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            srv.proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(srv.proc.wait(), run.args.server_stop_timeout)
    except asyncio.TimeoutError:
        log(f"load: the server (pid {srv.proc.pid}) did not stop within "
            f"{run.args.server_stop_timeout} s of SIGTERM; killing it")
        with contextlib.suppress(ProcessLookupError):
            srv.proc.kill()
        await srv.proc.wait()
    srv.exit_code = srv.proc.returncode
    srv.stop_s = round(perf_counter() - t0, 3)
    if srv.reader is not None:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(srv.reader, 5)
    if srv.log_path is not None and srv.log_path.exists():
        srv.log_bytes = srv.log_path.stat().st_size
        if not run.args.keep_log:
            srv.log_path.unlink()


# -- setup ---------------------------------------------------------------------------------------
def plan_roles(args) -> list[str]:
    """One role per account, in proportions --mix, at least one maker and one taker."""
    mix = dict(zip(ROLES, (0.30, 0.30, 0.25, 0.15)))
    if args.mix:
        mix = {r: 0.0 for r in ROLES}
        for part in args.mix.split(","):
            k, _, v = part.partition("=")
            if k.strip() not in mix:
                raise SystemExit(f"error: --mix: unknown role {k!r} (roles: {', '.join(ROLES)})")
            mix[k.strip()] = float(v)  # edge: timing and statistics, not money
    total = sum(mix.values()) or 1.0
    n = args.accounts
    counts = {r: int(round(mix[r] / total * n)) for r in ROLES}
    for must in ("maker", "taker"):
        if n >= 2 and mix[must] > 0 and counts[must] == 0:
            counts[must] = 1
    while sum(counts.values()) > n:
        big = max(ROLES, key=lambda r: counts[r])
        counts[big] -= 1
    while sum(counts.values()) < n:
        big = max(ROLES, key=lambda r: mix[r])
        counts[big] += 1
    roles: list[str] = []
    for r in ROLES:
        roles += [r] * counts[r]
    return roles


async def setup(run: Run, host: str, port: int, keys_path: Path) -> None:
    a = run.args
    rows = json.loads(Path(keys_path).read_text())
    admin_row = next((r for r in rows if r.get("admin")), None)
    if admin_row is None:
        raise RuntimeError(f"no admin key in {keys_path}")
    base = a.account_base
    if base is None:
        base = 1 + max([r["account"] for r in rows if isinstance(r.get("account"), int)] or [0])
    t_setup = perf_counter()
    admin = LoadClient(host, port, wire.MSGPACK)
    await asyncio.wait_for(admin.connect(), 10)
    await admin.login(admin_row["apiKey"], admin_row["secret"])
    run.admin = admin

    cat = catalogue_mod.load()
    now_ms = time.time_ns() // 1_000_000
    symbols = [s.strip() for s in a.symbols.split(",") if s.strip()]
    marks = dict(DEFAULT_MARKS)
    for kv in a.mark:
        k, _, v = kv.partition("=")
        marks[k] = v
    for s in symbols:
        if s not in marks:
            raise RuntimeError(f"no starting mark for {s}: pass --mark {s}=PRICE")
        spec = cat.spec(s)
        run.markets[s] = Market(spec, fixed.parse(marks[s]), now_ms)
    gsym = "BTCUSDT" if "BTCUSDT" in run.markets else symbols[0]

    roles = plan_roles(a)
    accounts = [base + i for i in range(a.accounts)]
    futs = [admin.submit("setMarkPrice", symbol=m.symbol, markPrice=m.px(m.mark))
            for m in run.markets.values()]
    futs.append(admin.submit("fundInsurance", amount=a.insurance))
    rng = random.Random(a.seed)
    leverage = {}
    for acct, role in zip(accounts, roles):
        futs.append(admin.submit("createAccount", account=acct, registeredAt=0))
        amount = a.gambler_deposit if role == "gambler" else a.deposit
        futs.append(admin.submit("deposit", account=acct, amount=amount))
        if role == "gambler":
            m = run.markets[gsym]
            choices = [x for x in (50, 75, 100) if x <= m.max_leverage] or [m.max_leverage]
            leverage[acct] = rng.choice(choices)
            futs.append(admin.submit("setLeverage", account=acct, symbol=gsym,
                                     leverage=leverage[acct]))
    for msg in await asyncio.gather(*futs):
        if not msg.get("ok"):
            raise RuntimeError(f"setup rejected: {msg.get('code')} {msg.get('msg')} "
                               f"(accounts {base}..{base + a.accounts - 1}; try --account-base)")
    keys = await asyncio.gather(*[admin.request("createApiKey", account=acct)
                                  for acct in accounts])
    creds = {acct: (k["apiKey"], k["secret"]) for acct, k in zip(accounts, keys)}
    run.setup_s = round(perf_counter() - t_setup, 3)

    # connections: one per account, then round-robin over the accounts
    nconn = max(a.connections or a.accounts, 1)
    per_account = Counter(accounts[i % len(accounts)] for i in range(nconn))
    sym_cycle = {r: itertools.cycle(symbols) for r in ROLES}
    acct_symbol = {}
    for acct, role in zip(accounts, roles):
        acct_symbol[acct] = gsym if role == "gambler" else next(sym_cycle[role])
    role_of = dict(zip(accounts, roles))
    gwallet = fixed.parse(a.gambler_deposit)
    for i in range(nconn):
        acct = accounts[i % len(accounts)]
        role = role_of[acct]
        m = run.markets[acct_symbol[acct]]
        slots = min(a.inflight, max(2, 180 // per_account[acct]))  # MAX_NUM_ORDERS is 200
        cls = {"maker": Maker, "taker": Taker, "canceler": Canceler}.get(role)
        if cls is None and i >= len(accounts):
            t = Watcher(run, i, acct, m, slots)
        elif cls is None:
            t = Gambler(run, i, acct, m, slots, leverage=leverage[acct], wallet_units=gwallet)
        else:
            t = cls(run, i, acct, m, slots)
        run.traders.append(t)

    sem = asyncio.Semaphore(a.connect_concurrency)

    async def open_one(t: Trader) -> None:
        async with sem:
            c = LoadClient(host, port, wire.MSGPACK if a.wire == "msgpack" else wire.JSONL)
            try:
                await asyncio.wait_for(c.connect(), a.timeout)
                await asyncio.wait_for(c.login(*creds[t.account]), a.timeout)
                t.client = c
            except (OSError, ConnectionError, ClientError, asyncio.TimeoutError) as exc:
                run.stats.connect_failures += 1
                log(f"load: connection {t.index} failed: {type(exc).__name__} {exc}")
                with contextlib.suppress(Exception):
                    await c.close()

    t0 = perf_counter()
    await asyncio.gather(*[open_one(t) for t in run.traders])
    run.traders = [t for t in run.traders if t.client is not None]
    run.peak_connections = len(run.traders)
    paced = [t for t in run.traders if t.paced]
    if a.rate and paced:
        for t in paced:
            t.rate = a.rate / len(paced)
    counts = Counter(t.role for t in run.traders)
    log(f"load: {len(accounts)} accounts (set up in {run.setup_s:.1f} s); connections: "
        f"{', '.join(f'{counts[r]} {r}' for r in CONN_ROLES if counts[r])}"
        f" on {', '.join(symbols)}; {len(run.traders)}/{nconn} open "
        f"in {perf_counter() - t0:.1f} s")

    obs = LoadClient(host, port, wire.MSGPACK)
    await asyncio.wait_for(obs.connect(), a.timeout)
    await obs.subscribe("!forceOrder", *[f"trade@{s}" for s in symbols])
    run.observer = obs


# -- the running tasks ---------------------------------------------------------------------------
async def observe(run: Run) -> None:
    obs, st = run.observer, run.stats
    queue = obs.streams

    async def sentinel() -> None:
        await obs.closed.wait()
        queue.put_nowait(None)

    watcher = asyncio.create_task(sentinel())
    try:
        while True:
            msg = await queue.get()
            if msg is None:
                if not run.stopping:
                    run.observer_lost = True
                    log("load: the observer connection was closed by the server")
                return
            stream = msg["stream"]
            if stream == "!forceOrder":
                st.liquidations += 1
            elif stream.startswith("trade@"):
                st.trades_stream += 1
    finally:
        watcher.cancel()


async def feed(run: Run) -> None:
    """The price feed (admin): marks as a seeded mean-reverting random walk with jumps; also
    tops up gamblers' wallets after a liquidation."""
    a, admin, st = run.args, run.admin, run.stats
    rng = random.Random(a.seed)
    interval = a.feed_interval_ms / 1000
    markets = list(run.markets.values())
    nxt = perf_counter()

    def check(fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None or not fut.result().get("ok"):
            st.feed_rejected += 1

    while not run.stopping:
        for m in markets:
            x = m.level
            x *= math.exp(rng.gauss(0.0, a.volatility) - a.mean_reversion * math.log(x / m.start))
            if rng.random() < a.jump_prob:
                jump = rng.choice((-1, 1)) * rng.uniform(a.jump_size / 3, a.jump_size)
                x *= 1 + jump
                st.feed_jumps += 1
                st.jump_log.append([round(perf_counter() - run.t_start, 2), m.symbol,
                                    round(jump * 100, 2)])
            m.level = x
            ticks = max(1, int(round(x)))
            admin.submit("setMarkPrice", symbol=m.symbol,
                         markPrice=fixed.fmt(ticks * m.tick)).add_done_callback(check)
            m.set_mark(ticks)
            st.feed_updates += 1
        while not run.topups.empty():
            account, done = run.topups.get_nowait()
            fut = admin.submit("deposit", account=account, amount=a.gambler_deposit)
            fut.add_done_callback(lambda f, d=done: d.set())
            st.topups += 1
        nxt += interval
        await asyncio.sleep(max(0.0, nxt - perf_counter()))


async def watchdog(run: Run) -> None:
    """Requests unanswered after --timeout seconds fail with TimeoutError (counted)."""
    limit = int(run.args.timeout * 1e9)
    while True:
        await asyncio.sleep(0.5)
        now = perf_counter_ns()
        for t in run.traders:
            for fut, t0 in list(t.pending.items()):
                if now - t0 > limit and not fut.done():
                    fut.set_exception(asyncio.TimeoutError())


async def loop_lag(run: Run) -> None:
    """How late a 10 ms timer fires in this process: if the load generator itself is saturated,
    its latencies include its own queueing, and the report says so."""
    lags = run.lags
    while True:
        t = perf_counter()
        await asyncio.sleep(0.01)
        lags.append(perf_counter() - t - 0.01)


class CpuMeter:
    """CPU use per interval, from /proc (Linux; silent elsewhere): the server's, this process's
    and every other process's, in % of one core, so a report shows whether the server was
    saturated and whether something else on the machine competed with the run."""

    def __init__(self, server_pid: int | None) -> None:
        self.pid = server_pid
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = self._read()

    def _read(self):
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
            total_busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
            server = 0
            if self.pid:
                with open(f"/proc/{self.pid}/stat") as f:
                    parts = f.read().rsplit(")", 1)[1].split()
                server = int(parts[11]) + int(parts[12])
            t = os.times()
            return perf_counter(), total_busy, server, (t.user + t.system) * self.hz
        except (OSError, ValueError, IndexError):
            return None

    def sample(self) -> dict | None:
        now = self._read()
        last, self.last = self.last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        ticks = (now[0] - last[0]) * self.hz / 100  # ticks in 1% of one core
        busy, server, me = (now[i] - last[i] for i in (1, 2, 3))
        return {"server_cpu": round(server / ticks), "loadgen_cpu": round(me / ticks),
                "other_cpu": max(0, round((busy - server - me) / ticks))}


async def progress(run: Run) -> None:
    st = run.stats
    last_acked, last_t, last_unpaced = 0, perf_counter(), 0
    paced = [t for t in run.traders if t.paced]
    cpu = CpuMeter(run.server.proc.pid if run.server.proc else None)
    while True:
        await asyncio.sleep(1.0)
        if run.stopping:
            return
        now = perf_counter()
        sent, acked = sum(st.sent[o] for o in ORDER_OPS), len(st.lat)
        rate = (acked - last_acked) / (now - last_t)
        if run.args.rate and paced:  # the gamblers' own orders count toward --rate
            unpaced = (st.unpaced_orders - last_unpaced) / (now - last_t)
            share = max(run.args.rate - unpaced, run.args.rate * 0.1) / len(paced)
            for t in paced:
                t.rate = share
        last_acked, last_t, last_unpaced = acked, now, st.unpaced_orders
        p99 = st.hist_quantile(0.99)
        held = run.held()
        run.peak_connections = max(run.peak_connections, held)
        row = {"t": round(now - run.t_start, 1), "sent": sent, "acked": acked,
               "acked_per_s": round(rate), "p99_ms": p99, "liquidations": st.liquidations,
               "connections": held}
        row.update(cpu.sample() or {})
        run.timeline.append(row)
        errors = st.timeouts + st.lost + st.conn_lost
        cpu_text = f", cpu server {row['server_cpu']}% load {row['loadgen_cpu']}% " \
            f"other {row['other_cpu']}%" if "server_cpu" in row else ""
        log(f"load {row['t']:5.1f}s: sent {sent:,} acked {acked:,} ({rate:,.0f}/s) "
            f"p99 {p99:.2f} ms, {st.liquidations} liquidations, "
            f"{sum(st.rejected.values()):,} rejected, {errors} errors, {held} connections"
            f"{cpu_text}")


async def run_load(run: Run) -> None:
    a = run.args
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, run.stop, f"signal {sig.name}")
    run.t_start = perf_counter()
    run.stats.first_send = run.t_start
    helpers = [asyncio.create_task(observe(run)), asyncio.create_task(feed(run)),
               asyncio.create_task(watchdog(run)), asyncio.create_task(progress(run)),
               asyncio.create_task(loop_lag(run))]
    traders = [asyncio.create_task(t.loop()) for t in run.traders]
    try:
        all_done = asyncio.gather(*traders)
        try:
            await asyncio.wait_for(asyncio.shield(all_done), a.duration)
            run.stop(run.stop_reason or "all traders finished")
        except asyncio.TimeoutError:
            run.stop("--duration reached")
        await all_done
        if run.t_stop == 0.0:
            run.t_stop = perf_counter()
        run.held_at_end = run.held()
        # drain: wait for the acknowledgements still in flight
        deadline = perf_counter() + a.drain
        while perf_counter() < deadline and any(t.pending for t in run.traders):
            await asyncio.sleep(0.02)
        unanswered = sum(len(t.pending) for t in run.traders)
        run.stats.unanswered = unanswered
        for t in run.traders:
            for fut in list(t.pending):
                if not fut.done():
                    fut.cancel()
        # the observer: a reply on its connection comes after every stream message queued before
        # it, so once it is in, the liquidations and trades so far have been delivered
        obs = run.observer
        if obs is not None and not obs.closed.is_set():
            with contextlib.suppress(ClientError, ConnectionError, asyncio.TimeoutError):
                await asyncio.wait_for(obs.query("depth", symbol=next(iter(run.markets)),
                                                 limit=1), a.drain + 1)
            deadline = perf_counter() + 2
            while obs.streams.qsize() and perf_counter() < deadline:
                await asyncio.sleep(0.01)
    finally:
        for task in traders + helpers:
            task.cancel()
        await asyncio.gather(*traders, *helpers, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


async def close_all(run: Run) -> None:
    clients = [t.client for t in run.traders if t.client is not None]
    clients += [c for c in (run.observer, run.admin) if c is not None]
    sem = asyncio.Semaphore(200)

    async def close(c: LoadClient) -> None:
        async with sem:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 5)

    await asyncio.gather(*[close(c) for c in clients])


# -- report --------------------------------------------------------------------------------------
def build_report(run: Run, nofile: dict) -> dict:
    a, st, srv = run.args, run.stats, run.server
    window = max(1e-9, (run.t_stop or perf_counter()) - run.t_start)
    ack_window = max(1e-9, (st.last_ack or run.t_stop) - run.t_start)
    sent = sum(st.sent[o] for o in ORDER_OPS)
    acked = len(st.lat)
    lat = sorted(st.lat)
    lat_ms = quantiles(lat, (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)))
    lat_ms["max"] = round(lat[-1] / 1e6, 3) if lat else None
    lat_ms["min"] = round(lat[0] / 1e6, 3) if lat else None
    lat_ms["mean"] = round(sum(lat) / len(lat) / 1e6, 3) if lat else None
    lat_ms["count"] = acked
    return {
        "ok": True,
        "stopped_by": run.stop_reason,
        "config": {k: v for k, v in vars(a).items() if k not in ("report",)},
        "duration_s": round(window, 3),
        "setup_s": run.setup_s,
        "orders": {
            "sent": sent, "acknowledged": acked, "accepted": sum(st.ok[o] for o in ORDER_OPS),
            "rejected": sum(st.rejected.values()),
            "sent_per_s": round(sent / window, 1),
            "acknowledged_per_s": round(acked / ack_window, 1),
            "offered_rate": a.rate or "max",
            "by_op": {o: {"sent": st.sent[o], "acknowledged": st.acked[o], "accepted": st.ok[o]}
                      for o in ORDER_OPS},
        },
        "latency_ms": lat_ms,
        "rejections": {str(k): v for k, v in sorted(st.rejected.items())},
        "trades": st.trades_acked,
        "trades_stream": st.trades_stream,
        "liquidations": st.liquidations,
        "gambler_positions_closed": st.wipeouts,
        "feed": {"updates": st.feed_updates, "jumps": st.feed_jumps,
                 "jump_log": st.jump_log[:200], "rejected": st.feed_rejected,
                 "topups": st.topups},
        "queries": st.queries,
        "errors": {"connection_lost": st.conn_lost, "connect_failures": st.connect_failures,
                   "requests_lost": st.lost, "timeouts": st.timeouts,
                   "unanswered_at_end": getattr(st, "unanswered", 0),
                   "observer_lost": run.observer_lost},
        "connections": {"requested": a.connections or a.accounts, "opened": len(run.traders),
                        "held_at_end": getattr(run, "held_at_end", run.held()),
                        "peak": run.peak_connections},
        "roles": dict(Counter(t.role for t in run.traders)),
        "gamblers": [t.log for t in run.traders if isinstance(t, Gambler)],
        "server": {"own": a.connect is None, "address": srv.address,
                   "pid": srv.proc.pid if srv.proc else None, "exit_code": srv.exit_code,
                   "stop_s": srv.stop_s, "log_bytes": srv.log_bytes,
                   "log": str(srv.log_path) if srv.log_path and a.keep_log else None,
                   "stderr": str(srv.stderr_path) if srv.stderr_path else None,
                   "last_lines": srv.lines[-3:]},
        "cpu_percent_mean": {k: round(sum(r[k] for r in run.timeline) / len(run.timeline))
                             for k in ("server_cpu", "loadgen_cpu", "other_cpu")}
        if run.timeline and all("server_cpu" in r for r in run.timeline) else None,
        "loadgen_loop_lag_ms": quantiles([int(x * 1e9) for x in sorted(run.lags)],
                                         (("p50", 0.5), ("p99", 0.99), ("max", 1.0))),
        "nofile": nofile,
        "timeline": run.timeline,
    }


def print_report(rep: dict) -> None:
    o, l, e, c = rep["orders"], rep["latency_ms"], rep["errors"], rep["connections"]
    rej = ", ".join(f"{k}: {v:,}" for k, v in rep["rejections"].items()) or "none"

    def ms(x):
        return "-" if x is None else f"{x:.3f}"
    lines = [
        f"perpengine load: {rep['duration_s']:.1f} s ({rep['stopped_by']}), "
        f"{c['opened']} connections, offered rate {o['offered_rate']}",
        f"  orders     sent {o['sent']:,} ({o['sent_per_s']:,.0f}/s), acknowledged "
        f"{o['acknowledged']:,} ({o['acknowledged_per_s']:,.0f}/s), accepted {o['accepted']:,}, "
        f"rejected {o['rejected']:,}",
        "  by op      " + ", ".join(f"{k} {v['acknowledged']:,}/{v['sent']:,}"
                                    for k, v in o["by_op"].items()),
        f"  ack        p50 {ms(l['p50'])} ms  p99 {ms(l['p99'])} ms  p99.9 {ms(l['p99.9'])} ms  "
        f"max {ms(l['max'])} ms  (mean {ms(l['mean'])} ms, n={l['count']:,})",
        f"  rejections {rej}",
        f"  trades     {rep['trades']:,} in acks, {rep['trades_stream']:,} on trade streams; "
        f"liquidations {rep['liquidations']} (!forceOrder)",
        f"  gamblers   {rep['gambler_positions_closed']} positions closed (liquidated or "
        f"auto-deleveraged); mark updates {rep['feed']['updates']:,} "
        f"({rep['feed']['jumps']} jumps)",
        f"  errors     {e['connection_lost']} connections lost, {e['connect_failures']} connect "
        f"failures, {e['requests_lost']} requests lost, {e['timeouts']} timeouts, "
        f"{e['unanswered_at_end']} unanswered at end"
        f"{', observer lost' if e['observer_lost'] else ''}",
        f"  connections held {c['held_at_end']}/{c['requested']} at the end (peak {c['peak']})",
    ]
    cpu, lag = rep.get("cpu_percent_mean"), rep.get("loadgen_loop_lag_ms") or {}
    if cpu:
        lines.append(f"  cpu        server {cpu['server_cpu']}%, load generator "
                     f"{cpu['loadgen_cpu']}%, other processes {cpu['other_cpu']}% (means, % of "
                     f"one core); load generator loop lag p99 {lag.get('p99')} ms")
    s = rep["server"]
    if s["own"]:
        lines.append(f"  server     pid {s['pid']} exit code {s['exit_code']} "
                     f"({s['stop_s']} s to stop), log {s['log_bytes'] or 0:,} bytes")
    print("\n".join(lines), flush=True)


def write_png(lat_ns, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        return False
    try:
        data = [x / 1e6 for x in lat_ns]
        if not data:
            return False
        lo, hi = max(min(data), 1e-3), max(data)
        bins = [lo * (hi / lo) ** (i / 80) for i in range(81)] if hi > lo else 80
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.hist(data, bins=bins)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ack latency (ms)")
        ax.set_ylabel("orders")
        s = sorted(lat_ns)
        for name, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)):
            v = s[min(len(s) - 1, int(q * len(s)))] / 1e6
            ax.axvline(v, linestyle="--", linewidth=1)
            ax.text(v, ax.get_ylim()[1] * 0.5, f" {name} {v:.2f}", fontsize=8)
        ax.set_title("perpengine load: ack latency")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return True
    except Exception:
        return False


# -- main ----------------------------------------------------------------------------------------
async def amain(args) -> int:
    run = Run(args)
    nofile = raise_nofile(args.connections + args.accounts + 256 if args.connections
                          else args.accounts + 256)
    failure = None
    try:
        if args.connect:
            host, _, port = args.connect.rpartition(":")
            if not args.keys:
                raise RuntimeError("--connect needs --keys FILE (the server's keys file)")
            keys_path = Path(args.keys)
            host, port = host or "127.0.0.1", int(port)
        else:
            host, port, keys_path = await start_server(run, nofile["soft"] or 0)
        await setup(run, host, port, keys_path)
        await run_load(run)
    except (RuntimeError, OSError, ClientError, asyncio.TimeoutError, ValueError,
            catalogue_mod.CatalogueError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
        log(f"load: error: {failure}")
    finally:
        await close_all(run)
        await stop_server(run)
    if failure is not None and not run.t_start:
        if run.server.exit_code is not None:
            log(f"load: server exit code {run.server.exit_code}")
        return 1
    rep = build_report(run, nofile)
    if failure is not None:
        rep["ok"] = False
        rep["failure"] = failure
    base = run.server.tmpdir if run.server.tmpdir else Path.cwd()
    path = Path(args.report) if args.report else base / "load-report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    png = path.with_suffix(".png")
    rep["report"] = str(path)
    rep["histogram_png"] = str(png) if write_png(run.stats.lat, png) else None
    path.write_text(json.dumps(rep, indent=1))
    print_report(rep)
    print(f"  report     {path}" + (f" (histogram {png})" if rep["histogram_png"] else ""),
          flush=True)
    return 0 if failure is None else 1  # 1: the run broke off (the report says why)


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m engine.load",
                                description="Synthetic traders against the gateway.")
    g = p.add_argument_group("the run")
    g.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    g.add_argument("--orders", type=int, default=0, help="stop after this many order requests")
    g.add_argument("--rate", type=float, default=0.0,
                   help="offered order requests per second, all traders together (0: as fast "
                        "as possible)")
    g.add_argument("--accounts", type=int, default=40)
    g.add_argument("--connections", type=int, default=0,
                   help="connections (default: one per account; more: several per account)")
    g.add_argument("--inflight", type=int, default=32, help="requests in flight per connection")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--symbols", default="BTCUSDT,ETHUSDT,ALLUSDT")
    g.add_argument("--mark", action="append", default=[], metavar="SYMBOL=PRICE",
                   help="starting mark (defaults: " +
                        ", ".join(f"{k} {v}" for k, v in DEFAULT_MARKS.items()) + ")")
    g.add_argument("--mix", help="role proportions, e.g. maker=0.3,taker=0.3,canceler=0.25,"
                                 "gambler=0.15 (the default)")
    g.add_argument("--wire", choices=["msgpack", "json"], default="msgpack")
    g.add_argument("--timeout", type=float, default=10.0,
                   help="seconds before an unanswered request counts as a timeout")
    g.add_argument("--drain", type=float, default=5.0,
                   help="seconds to wait for outstanding acks after the end")
    g.add_argument("--connect-concurrency", type=int, default=64)
    f = p.add_argument_group("accounts and the price feed")
    f.add_argument("--account-base", type=int,
                   help="first account id (default: 1 + the largest in the keys file)")
    f.add_argument("--deposit", default="10000000", help="USDT per maker/taker/canceler")
    f.add_argument("--gambler-deposit", default="300", help="USDT per gambler (and top-up)")
    f.add_argument("--insurance", default="1000000", help="USDT paid into the insurance fund")
    f.add_argument("--feed-interval-ms", type=float, default=100.0)
    f.add_argument("--volatility", type=float, default=0.0005,
                   help="stdev of one feed step's log return")
    f.add_argument("--mean-reversion", type=float, default=0.003,
                   help="pull of each feed step back toward the starting mark")
    f.add_argument("--jump-prob", type=float, default=0.05, help="per symbol per feed step")
    f.add_argument("--jump-size", type=float, default=0.04, help="largest jump (fraction)")
    s = p.add_argument_group("the server")
    s.add_argument("--connect", metavar="HOST:PORT", help="use a running server")
    s.add_argument("--keys", help="with --connect: its keys file (for the admin key)")
    s.add_argument("--fsync", choices=["batch", "interval"], default="batch")
    s.add_argument("--fsync-interval-ms", type=int, default=20)
    s.add_argument("--limit-rate", type=int, default=1_000_000_000,
                   help="the server's per-connection --rate (default: no throttling)")
    s.add_argument("--limit-burst", type=int, default=1_000_000_000)
    s.add_argument("--outbound-limit", type=int)
    s.add_argument("--summary-every", type=int, default=5, help="the server's summary lines (s)")
    s.add_argument("--server-arg", action="append", default=[],
                   help="extra arguments for `engine serve`, e.g. --server-arg=--sndbuf=0 "
                        "(repeatable)")
    s.add_argument("--server-start-timeout", type=float, default=30.0)
    s.add_argument("--server-stop-timeout", type=float, default=60.0)
    s.add_argument("--tmpdir", help="where the server's directory is made (default: system tmp)")
    s.add_argument("--keep-log", action="store_true", help="keep the server's event log")
    o = p.add_argument_group("output")
    o.add_argument("--report",
                   help="JSON report path (default: <server dir or cwd>/load-report.json)")
    o.add_argument("--quiet", action="store_true", help="do not echo the server's summary lines")
    args = p.parse_args(argv)
    if args.accounts < 1 or args.inflight < 1 or args.duration <= 0:
        p.error("--accounts, --inflight and --duration must be positive")
    if args.rate < 0:
        p.error("--rate must be >= 0")
    for name in ("deposit", "gambler_deposit", "insurance"):
        try:
            fixed.parse(getattr(args, name))
        except fixed.DecimalFormatError as exc:
            p.error(f"--{name.replace('_', '-')}: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
        return uvloop.run(amain(args))
    except ImportError:
        return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
