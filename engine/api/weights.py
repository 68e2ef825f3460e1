"""Binance's rate limits: request weight per IP per minute (-1003, HTTP 429, and the
X-MBX-USED-WEIGHT-1M header on every response) and new orders per account per 10 seconds and
per minute (-1015, HTTP 429; X-MBX-ORDER-COUNT-10S and -1M on order responses). Fixed windows,
as Binance counts them. Memory: one counter per IP and per account that used the API within
the window (older ones are dropped as the window turns)."""
from __future__ import annotations

from engine.api import errors as E

MINUTE = 60_000
TEN_S = 10_000


class Window:
    __slots__ = ("size", "limit", "start", "used")

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        self.start = -1
        self.used: dict = {}

    def count(self, who, n: int, now: int) -> int:
        """Count `n` for `who`; the new total (which may be past the limit)."""
        start = now - now % self.size
        if start != self.start:
            self.start = start
            self.used = {}
        total = self.used.get(who, 0) + n
        self.used[who] = total
        return total

    def peek(self, who, now: int) -> int:
        return self.used.get(who, 0) if now - now % self.size == self.start else 0


class Limits:
    def __init__(self, weight_per_minute: int, orders_per_10s: int, orders_per_minute: int) -> None:
        self.weight = Window(MINUTE, weight_per_minute)
        self.orders_10s = Window(TEN_S, orders_per_10s)
        self.orders_1m = Window(MINUTE, orders_per_minute)

    def use_weight(self, ip: str, weight: int, now: int) -> int:
        used = self.weight.count(ip, weight, now)
        if used > self.weight.limit:
            raise E.error(-1003, f"Too many requests; current limit is {self.weight.limit} "
                                 "requests per minute. Please use the websocket for live "
                                 "updates to avoid polling the API.")
        return used

    def use_orders(self, account: int, n: int, now: int) -> tuple[int, int]:
        a = self.orders_10s.count(account, n, now)
        b = self.orders_1m.count(account, n, now)
        if a > self.orders_10s.limit:
            raise E.error(-1015, f"Too many new orders; current limit is "
                                 f"{self.orders_10s.limit} orders per 10 SECOND.")
        if b > self.orders_1m.limit:
            raise E.error(-1015, f"Too many new orders; current limit is "
                                 f"{self.orders_1m.limit} orders per MINUTE.")
        return a, b
