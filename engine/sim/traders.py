"""The synthetic traders, one connection each, and the market they trade in.

  maker     keeps GTC limit orders on both sides around the mark, refreshing them with
            modifyOrder and cancelOrder
  taker     IOC limits across the spread and MARKET orders
  canceler  places passive GTC orders and cancels each as soon as it is acknowledged
  gambler   over-leveraged (50x-100x) directional positions that the price feed's jumps
            liquidate; the admin tops its wallet up and it goes again
  watcher   an extra connection of a gambler's account: holds it and reads the position

Every price and quantity sent is a decimal string made from integer ticks and steps of the
instrument; the random choices are edge-side floats. A trader reaches its run (engine.sim.load
.Run) for its settings, statistics, order budget and the admin's top-ups.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from time import perf_counter, perf_counter_ns
from typing import Any

from engine.client import ClientError
from engine.core import fixed
from engine.sim.connections import LoadClient

SCALE = fixed.SCALE
ROLES = ("maker", "taker", "canceler", "gambler")
CONN_ROLES = ROLES + ("watcher",)


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


class Trader:
    """One connection. Subclasses choose the next request and digest the reply."""
    role = "?"
    paced = True

    def __init__(self, run: Any, index: int, account: int, market: Market, slots: int) -> None:
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
