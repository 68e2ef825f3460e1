"""User data stream keys (POST/PUT/DELETE /fapi/v1/listenKey and /dapi/v1/listenKey): one
active key per user, a user being (account, product): /fapi's key and /dapi's key of one
account are two keys, as on Binance's two hosts. POST returns it again (extending it) while it
lives, as Binance does (python-binance reconnects if the key changes); a key expires 60 minutes
after its creation or last keepalive. Memory: at most one key per account and product."""
from __future__ import annotations

from typing import Hashable

import secrets

TTL_MS = 60 * 60_000


class ListenKeys:
    def __init__(self, ttl_ms: int = TTL_MS) -> None:
        self.ttl = ttl_ms
        self.by_key: dict[str, tuple[Hashable, int]] = {}  # key -> (user, expires at)
        self.by_account: dict[Hashable, str] = {}

    def create(self, account: Hashable, now: int) -> str:
        key = self.by_account.get(account)
        if key is None or self.by_key[key][1] <= now:
            if key is not None:
                del self.by_key[key]
            key = secrets.token_urlsafe(48).replace("-", "a").replace("_", "b")[:64]
            self.by_account[account] = key
        self.by_key[key] = (account, now + self.ttl)
        return key

    def keepalive(self, account: Hashable, now: int, key: str | None = None) -> str | None:
        """Extend the account's key (a named key must be the account's); None if none."""
        current = self.by_account.get(account)
        if current is None or (key is not None and key != current) or \
                self.by_key[current][1] <= now:
            return None
        self.by_key[current] = (account, now + self.ttl)
        return current

    def delete(self, account: Hashable) -> None:
        key = self.by_account.pop(account, None)
        if key is not None:
            self.by_key.pop(key, None)

    def account_of(self, key: str, now: int) -> Hashable | None:
        entry = self.by_key.get(key)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def expire(self, now: int) -> list[tuple[str, Hashable]]:
        """Remove and return the keys that expired by `now`: (key, account)."""
        gone = [(k, a) for k, (a, until) in self.by_key.items() if until <= now]
        for k, a in gone:
            del self.by_key[k]
            if self.by_account.get(a) == k:
                del self.by_account[a]
        return gone
