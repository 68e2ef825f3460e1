"""Market makers of the simulator: ladders of GTC limit orders around the index.

Each maker has a depth profile: a half-spread, a gap between levels, a number of levels, the
size at the touch and its growth per level away from it (sizes in USDT of notional, each level
jittered by the seed). Together the default three (tight, mid, deep) give a book a couple of
basis points wide at the touch with about 1.4 million USDT a side within half a percent.

Requoting: a maker re-centres its ladder on the symbol's quote centre (the index, or index x
(1 + skew) during a funding spike) when the centre has moved by more than its threshold (80 % of
its half-spread, so two makers' ladders never cross however stale), and refreshes it every
`refresh_steps` steps to refill what others took; the near makers also in the step after the
simulator's own takers may have emptied the touch (engine.sim.takers). A requote is cancelAllOrders then the new
ladder, sent back to back: one command per order, no order ids to track, so the commands depend
only on the seed and the prices (the same seed gives the same quotes).

Prices are integer ticks (bids rounded down, asks up; at least one tick from the centre),
quantities integer steps at least the symbol's minimum quantity and notional.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from engine.core import fixed
from engine.core.catalogue import SymbolSpec

SCALE = fixed.SCALE
PPM = 1_000_000  # distances in millionths of the price (1 bp = 100)


@dataclass(frozen=True)
class Profile:
    name: str
    half_spread: int  # ppm
    gap: int  # ppm between levels
    levels: int
    touch: int  # USDT notional at the touch (whole USDT)
    growth_pct: int  # size growth per level, percent (170: x1.7)
    refresh_steps: int
    near: bool  # requoted at once where the simulator's own takers may have taken the touch

    @property
    def threshold(self) -> int:
        return self.half_spread * 8 // 10


PROFILES = (
    Profile("tight", 100, 150, 4, 2_000, 170, 10, True),
    Profile("mid", 250, 400, 5, 8_000, 180, 20, True),
    Profile("deep", 600, 1_000, 5, 40_000, 200, 40, False),
)


def steps_for(spec: SymbolSpec, price: int, notional_usdt: int) -> int:
    """Quantity steps for about `notional_usdt` at `price`, at least the minimum quantity and
    1.1 x the minimum notional."""
    step = spec.step_size
    want = notional_usdt * SCALE * SCALE // (price * step)
    least_notional = -(-spec.min_notional * 11 * SCALE // (10 * price * step))
    return max(want, -(-spec.min_qty // step), least_notional, 1)


class Maker:
    def __init__(self, account: int, profile: Profile, seed: int) -> None:
        self.account = account
        self.profile = profile
        self.rng = random.Random(f"{seed}:maker:{account}")
        self.anchor: dict[str, int] = {}  # symbol -> centre quoted around (units)
        self.since: dict[str, int] = {}  # symbol -> steps since the last requote
        self.keep: dict[str, tuple[float, float]] = {}  # symbol -> (bids, asks) kept
        self.requotes = 0

    def wants_requote(self, symbol: str, centre: int, keep: tuple[float, float],
                      force: bool) -> bool:
        anchor = self.anchor.get(symbol)
        if anchor is None or force or keep != self.keep.get(symbol):
            return True
        if abs(centre - anchor) * PPM >= self.profile.threshold * anchor:
            return True
        return self.since.get(symbol, 0) >= self.profile.refresh_steps

    def ladder(self, spec: SymbolSpec, centre: int, keep: tuple[float, float]) -> list[dict]:
        """cancelAllOrders, then the new ladder's orders (fields for the native protocol)."""
        sym = spec.symbol
        p, tick, rng = self.profile, spec.tick_size, self.rng
        self.anchor[sym] = centre
        self.since[sym] = 0
        self.keep[sym] = keep
        self.requotes += 1
        c = centre // tick  # in ticks
        out = [{"op": "cancelAllOrders", "account": self.account, "symbol": sym}]
        size = p.touch
        for level in range(p.levels):
            dist = p.half_spread + level * p.gap
            jitter = [rng.randint(80, 120), rng.randint(80, 120)]  # always drawn: same stream
            bid = min(c * (PPM - dist) // PPM, c - 1)
            ask = max(-(-c * (PPM + dist) // PPM), c + 1)
            for side, ticks, kept, jit in (("BUY", bid, keep[0], jitter[0]),
                                           ("SELL", ask, keep[1], jitter[1])):
                if kept <= 0 or ticks <= 0:
                    continue
                price = ticks * tick
                notional = int(size * jit // 100 * kept)  # edge-side float share, to whole USDT
                if notional <= 0:
                    continue
                qty = steps_for(spec, price, notional) * spec.step_size
                qty = min(qty, spec.max_qty // spec.step_size * spec.step_size)
                out.append({"op": "newOrder", "account": self.account, "symbol": sym,
                            "side": side, "type": "LIMIT", "timeInForce": "GTC",
                            "quantity": fixed.fmt(qty), "price": fixed.fmt(price)})
            size = size * p.growth_pct // 100
        return out

    def tick(self, symbol: str) -> None:
        self.since[symbol] = self.since.get(symbol, 0) + 1


__all__ = ["Maker", "Profile", "PROFILES", "steps_for", "PPM"]
