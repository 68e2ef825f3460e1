"""A token bucket per connection (Binance answers -1003 past its limits)."""
from __future__ import annotations

import time


class TokenBucket:
    """`rate` requests per second sustained, `burst` at once. Tokens are counted in
    1e-9 requests so the refill (elapsed ns x rate) stays an exact integer."""
    __slots__ = ("rate", "capacity", "tokens", "stamp")
    ONE = 1_000_000_000

    def __init__(self, rate: int, burst: int) -> None:
        self.rate = rate
        self.capacity = self.tokens = burst * self.ONE
        self.stamp = time.monotonic_ns()

    def take(self, n: int = 1) -> bool:
        now = time.monotonic_ns()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n * self.ONE:
            self.tokens -= n * self.ONE
            return True
        return False
