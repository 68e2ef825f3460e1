"""A token bucket per connection (Binance answers -1003 past its limits)."""
from __future__ import annotations

import time


class TokenBucket:
    """`rate` requests (or units of request weight) per `period_s` seconds sustained, `burst`
    at once. Tokens are counted in 1/(period_s x 1e9) units so the refill (elapsed ns x rate)
    stays an exact integer."""
    __slots__ = ("rate", "capacity", "tokens", "stamp", "one")

    def __init__(self, rate: int, burst: int, period_s: int = 1) -> None:
        self.rate = rate
        self.one = period_s * 1_000_000_000
        self.capacity = self.tokens = burst * self.one
        self.stamp = time.monotonic_ns()

    def take(self, n: int = 1) -> bool:
        now = time.monotonic_ns()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n * self.one:
            self.tokens -= n * self.one
            return True
        return False
