"""Noise takers of the simulator: random IOC and MARKET orders around the quote centre, so
trades (and with them klines, tickers, last prices) exist.

Per symbol and step the number of orders is Poisson with mean `rate_per_s` x the step's real
length (activity is per real second: a faster clock moves prices faster without loading the
engine more). Each order: a side (evenly, or leaning with a scenario's crash or squeeze), a
log-normal notional (median 1,500 USDT, capped at 25,000), MARKET with probability 0.35,
otherwise an IOC limit 1-5 bp through the centre; one of the taker accounts, at random. The
symbols where an order may have emptied the touch (`swept`) get their near makers requoted in
the next step, before the index is sampled: the simulator knows what its own takers took.
"""
from __future__ import annotations

import math
import random

from engine.core import fixed
from engine.core.catalogue import SymbolSpec
from engine.sim.makers import PPM, steps_for

SWEEP_USDT = 3_000  # an IOC this large (or any MARKET order) may empty the touch


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method (small means only); always draws at least one number."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class NoiseTakers:
    def __init__(self, accounts: list[int], seed: int, rate_per_s: float = 1.5,
                 median_usdt: float = 1_500.0) -> None:
        self.accounts = accounts
        self.rng = random.Random(f"{seed}:takers")
        self.rate_per_s = rate_per_s
        self.median = median_usdt
        self.swept: set[str] = set()  # symbols where an order may have taken the touch

    def orders(self, spec: SymbolSpec, centre: int, step_s: float, bias: float) -> list[dict]:
        rng = self.rng
        out = []
        if not self.accounts:
            return out
        for _ in range(poisson(rng, self.rate_per_s * step_s)):
            u_side, u_size, u_type, u_reach, u_acct = (rng.random(), rng.gauss(0.0, 1.0),
                                                       rng.random(), rng.random(), rng.random())
            side = "BUY" if u_side < 0.5 + bias / 2 else "SELL"
            notional = int(min(self.median * math.exp(0.9 * u_size), 25_000.0))
            tick = spec.tick_size
            c = centre // tick
            reach = 100 + int(u_reach * 400)  # 1-5 bp, in ppm
            ticks = -(-c * (PPM + reach) // PPM) if side == "BUY" else c * (PPM - reach) // PPM
            price = max(ticks, 1) * tick
            qty = steps_for(spec, centre, max(notional, 1)) * spec.step_size
            order = {"op": "newOrder", "account": self.accounts[int(u_acct * len(self.accounts))],
                     "symbol": spec.symbol, "side": side}
            if u_type < 0.35 or notional >= SWEEP_USDT:
                self.swept.add(spec.symbol)
            if u_type < 0.35:
                qty = min(qty, spec.market_max_qty // spec.step_size * spec.step_size)
                order.update(type="MARKET", quantity=fixed.fmt(qty))
            else:
                order.update(type="LIMIT", timeInForce="IOC", quantity=fixed.fmt(qty),
                             price=fixed.fmt(price))
            out.append(order)
        return out


__all__ = ["NoiseTakers", "poisson"]
