"""Index price paths for the market simulator, one per fed symbol, seeded.

    GbmPath       a geometric random walk with per-symbol volatility and occasional jumps:
                  x <- x * exp(-sigma^2 dt / 2 + sigma sqrt(dt) Z), and with probability
                  (jumps per day x dt) a jump of +-(jump_size / 3 .. jump_size)
    RecordedPath  the prices of a recorded file (engine.sim.recorded), then, after its last
                  row, a GbmPath from its last price

Both advance by simulated milliseconds (`step(dt_ms, factor, noise)`), so a faster clock moves
prices faster in real time; a scenario multiplies in its moves (`factor`) and scales the noise.
Every step draws the same random numbers whatever the scenario does, so a scenario changes a
path only by its own moves. The walk is an edge-side float (like engine.sim.pricefeed); what
leaves is an integer number of 1e-8 units on the symbol's tick, within its price filter.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from engine.core import fixed
from engine.core.catalogue import SymbolSpec

YEAR_MS = 365 * 86_400_000
DAY_MS = 86_400_000

# starting price and annual volatility of the default symbols (illustrative, not quotes)
DEFAULT_START = {"BTCUSDT": ("30000", 0.60), "ETHUSDT": ("2000", 0.75),
                 "BNBUSDT": ("300", 0.70), "SOLUSDT": ("30", 1.00), "AVAXUSDT": ("20", 1.00),
                 "BTCDOMUSDT": ("1500", 0.40), "BTCBUSD": ("30000", 0.60),
                 "ETHBUSD": ("2000", 0.75), "XRPUSDT": ("0.5", 0.90), "ADAUSDT": ("0.4", 0.90),
                 "LTCUSDT": ("80", 0.80), "LINKUSDT": ("7", 0.90)}
DEFAULT_VOL = 0.90
JUMPS_PER_DAY = 12.0
JUMP_SIZE = 0.015


def default_start(spec: SymbolSpec) -> tuple[int, float]:
    """(starting price in units, annual volatility): the table above, else a price where one
    tick is half a basis point (a catalogue tick of 0.0001 on a 0.07 coin would be 14 bp, too
    coarse for a book quoted a basis point wide)."""
    known = DEFAULT_START.get(spec.symbol)
    if known is not None:
        return fixed.parse(known[0]), known[1]
    return max(spec.tick_size * 20_000, spec.min_price or 0), DEFAULT_VOL


def on_tick(units: float | int, spec: SymbolSpec) -> int:
    """The nearest price on the symbol's tick, inside its price filter."""
    tick = spec.tick_size
    ticks = max(1, int(round(units / tick)))
    lo = -(-(spec.min_price or tick) // tick)
    hi = spec.max_price // tick
    return min(max(ticks, lo), hi) * tick


@dataclass
class PathSettings:
    vol: float = DEFAULT_VOL  # annual volatility of the log price
    jumps_per_day: float = JUMPS_PER_DAY
    jump_size: float = JUMP_SIZE  # the largest jump, as a fraction


class GbmPath:
    kind = "gbm"

    def __init__(self, spec: SymbolSpec, start_units: int, settings: PathSettings,
                 seed: int) -> None:
        self.spec = spec
        self.x = float(start_units)
        self.settings = settings
        self.rng = random.Random(f"{seed}:{spec.symbol}:path")
        self.price = on_tick(self.x, spec)

    def step(self, dt_ms: int, factor: float = 1.0, noise: float = 1.0) -> int:
        s, rng = self.settings, self.rng
        z, u, j = rng.gauss(0.0, 1.0), rng.random(), rng.random()
        dt = dt_ms / YEAR_MS
        sigma = s.vol * noise
        x = self.x * math.exp(-0.5 * sigma * sigma * dt + sigma * math.sqrt(dt) * z)
        if noise > 0 and u < s.jumps_per_day * dt_ms / DAY_MS:
            size = s.jump_size * (1 + 2 * abs(j - 0.5) * 2) / 3  # jump_size/3 .. jump_size
            x *= 1 + size if j >= 0.5 else 1 - size
        x *= factor
        self.price = on_tick(x, self.spec)
        # held at the price filter's edge: the walk restarts from there
        self.x = x if abs(x - self.price) <= self.spec.tick_size else float(self.price)
        return self.price


class RecordedPath:
    """A recorded series played from `origin` (its own time at the simulator's start); once
    past its last row, a GbmPath from the last price carries on. A scenario's factor is kept as
    an overlay multiplying the recorded prices."""
    kind = "recorded"

    def __init__(self, spec: SymbolSpec, series, origin: int, settings: PathSettings,
                 seed: int) -> None:
        self.spec = spec
        self.series = series
        self.t = origin
        self.overlay = 1.0
        self.settings = settings
        self.seed = seed
        self.after: GbmPath | None = None
        self.price = on_tick(series.price_at(origin), spec)

    @property
    def finished(self) -> bool:
        return self.after is not None

    def step(self, dt_ms: int, factor: float = 1.0, noise: float = 1.0) -> int:
        if self.after is not None:
            self.price = self.after.step(dt_ms, factor, noise)
            return self.price
        self.t += dt_ms
        self.overlay *= factor
        if self.t > self.series.last_time:
            self.after = GbmPath(self.spec, self.price, self.settings, self.seed)
            self.price = self.after.step(dt_ms, 1.0, noise)
            return self.price
        self.price = on_tick(self.series.price_at(self.t) * self.overlay, self.spec)
        return self.price


__all__ = ["GbmPath", "RecordedPath", "PathSettings", "default_start", "on_tick",
           "DEFAULT_START", "YEAR_MS"]
