"""The price feed of a load run (its admin connection): every mark as a seeded mean-reverting
random walk with jumps (an edge-side float walk, sent as integer ticks), and the gamblers'
wallet top-ups after a liquidation."""
from __future__ import annotations

import asyncio
import math
import random
from time import perf_counter
from typing import Any

from engine.core import fixed


async def feed(run: Any) -> None:
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
