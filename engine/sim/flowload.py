"""The honest flow end to end (`make load ARGS="--flow honest --rate N"`): the very commands the
core and replay benchmarks run (engine.sim.synthetic.HonestFlow: 60 % resting limits, 25 %
cancels of resting orders, 15 % crossing), sent over one connection per account.

A single driver keeps the flow's order: command i leaves at t0 + i / rate on its account's
connection (pipelined; replies are timed as every trader's are). Orders carry the id the flow
expects the engine to give them as their newClientOrderId, and cancels name that, so a cancel
never depends on the order ids the server hands out; what the network reorders between
connections (a crossing order that arrives before its maker, a cancel of an order filled
meanwhile) shows in the report's rejections and outcomes, counted, not hidden."""
from __future__ import annotations

import asyncio
from time import perf_counter

from engine.core import fixed
from engine.core.catalogue import Catalogue
from engine.sim.synthetic import MIDS_USDT, HonestFlow
from engine.sim.traders import Trader
from proto import commands as C


class FlowTrader(Trader):
    """One account's connection; the driver sends for it."""
    role = "flow"
    paced = False

    def next_request(self):
        return None

    async def loop(self) -> None:
        while not self.run.stopping:
            self.wake.clear()
            await self.wake.wait()


def marks(symbols: list[str]) -> dict[str, str]:
    return {s: str(MIDS_USDT[s]) for s in symbols if s in MIDS_USDT}


def requests(catalogue: Catalogue, n: int, accounts: list[int], symbols: list[str],
             seed: int) -> list[tuple[int, str, dict]]:
    """(account, op, fields) for n commands of the flow, decimals as strings."""
    flow = HonestFlow(catalogue, len(accounts), tuple(symbols), seed)
    out = []
    f = fixed.fmt
    for _ in range(n):
        cmd = flow.next()
        account = accounts[cmd.account - 1]
        if type(cmd) is C.CancelOrder:
            out.append((account, "cancelOrder", {"symbol": cmd.symbol,
                                                 "origClientOrderId": f"h{cmd.order_id}"}))
        else:
            oid = flow.last_order_id
            out.append((account, "newOrder", {
                "symbol": cmd.symbol, "side": cmd.side, "type": "LIMIT",
                "quantity": f(cmd.quantity), "price": f(cmd.price),
                "timeInForce": cmd.time_in_force, "newClientOrderId": f"h{oid}",
                "selfTradePreventionMode": "NONE"}))
    return out


async def drive(run, items: list[tuple[int, str, dict]]) -> None:
    """Send items[i] at t0 + i / rate on its account's connection."""
    rate = run.args.rate or 10_000
    traders = {t.account: t for t in run.traders if t.role == "flow"}
    t0 = perf_counter()
    i = 0
    while not run.stopping and i < len(items):
        due = min(len(items), int((perf_counter() - t0) * rate) + 1)
        while i < due:
            account, op, fields = items[i]
            i += 1
            trader = traders.get(account)
            if trader is None or trader.client is None or trader.client.closed.is_set():
                continue
            if not run.take_order():
                return
            trader.send(op, fields)
        await asyncio.sleep(0.001)
    run.stop("the flow was sent" if i >= len(items) else run.stop_reason or "stopped")
