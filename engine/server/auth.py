"""API keys and what each role may do.

Keys: a JSON array of {"apiKey", "secret", "account" | null, "admin": bool, "risk": bool}, one
key per line, appended to in place (KeyStore). A
connection proves it holds a key's secret by signing the server's per-connection nonce
(proto.wire.sign); secrets never travel on the wire.

Roles: an account key trades and reads its own account only; an admin key runs the feeds and
account administration and may act for any account by naming it; the risk key (the
out-of-process risk consumer) alone sends liquidate and marginCall.
"""
from __future__ import annotations

import asyncio
import fcntl
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from proto.wire import sign

ADMIN_OPS = frozenset({"createAccount", "deposit", "setMarkPrice", "fundInsurance",
                       "setIndexPrices", "listSymbol", "scheduleDelisting", "launchToken"})
ACCOUNT_OPS = frozenset({"newOrder", "cancelOrder", "cancelAllOrders", "modifyOrder",
                         "setLeverage", "setMarginType", "adjustIsolatedMargin", "withdraw",
                         "futuresTransfer", "subscribeToken", "redeemToken", "newSpotOrder",
                         "cancelSpotOrder", "setPositionMode", "newAlgoOrder",
                         "cancelAlgoOrder", "cancelAllAlgoOrders", "setMultiAssetsMargin"})
INTERNAL_OPS = frozenset({"liquidate", "marginCall"})  # only the risk consumer sends these
PUBLIC_QUERIES = frozenset({"depth", "premiumIndex", "fundingRate", "indexInfo", "tokenInfo",
                            "time", "assetIndex", "coinmExchangeInfo", "coinmLeverageBracket"})
ADMIN_QUERIES = frozenset({"state"})
ACCOUNT_QUERIES = frozenset({"positionRisk", "account", "openOrders", "userLimit",
                             "spotAccount", "balance", "multiAssetsMargin", "coinmAccount",
                             "coinmBalance", "coinmPositionRisk"})
TOKEN_QUERIES = frozenset({"tokenInfo", "userLimit"})  # their "tokenName" travels as the symbol
UNAUTHORISED = -2015
UNAUTHORISED_MSG = "Invalid API-key, IP, or permissions for action."


@dataclass(frozen=True)
class ApiKey:
    apiKey: str
    secret: str
    account: int | None
    admin: bool = False
    risk: bool = False  # the out-of-process risk consumer: may send liquidate and marginCall


class KeyStoreLocked(RuntimeError):
    """Another process holds the key store."""


class KeyStore:
    """The keys file: a JSON array with one key per line, so a new key is appended in place
    (the closing bracket overwritten; O(1) per key, fsynced) instead of the file rewritten.
    A line torn by a crash (a key never acknowledged) is skipped and the file tidied on load.
    With `lock`, the file is held with an exclusive flock for the process's life: a second
    server on the same key store is refused. `create_durable` writes off the event loop,
    keys arriving meanwhile in one write (group commit)."""

    def __init__(self, path: str | Path | None, lock: bool = False) -> None:
        self.path = Path(path) if path else None
        self.keys: dict[str, ApiKey] = {}
        self.skipped = 0  # torn lines found on load
        self._fd = -1
        self._size = 0
        self._write = threading.Lock()
        self._pending: list[tuple[ApiKey, asyncio.Future]] = []
        self._flushing = False
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if lock:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise KeyStoreLocked(f"another server is using the key store {self.path} "
                                     "(it is locked); stop it, or give this one --keys") from None
        self._fd = fd
        data = _read_all(fd)
        rows = self._parse(data)
        for row in rows:
            key = ApiKey(**row)
            self.keys[key.apiKey] = key
        canonical = _layout([_line(k) for k in self.keys.values()])
        if data != canonical:  # new, written by an older version, or torn: tidy it once
            os.ftruncate(fd, 0)
            os.pwrite(fd, canonical, 0)
            os.fsync(fd)
        self._size = len(canonical)

    def _parse(self, data: bytes) -> list[dict]:
        if not data.strip():
            return []
        try:
            return json.loads(data)
        except ValueError:
            pass
        rows = []  # torn: every whole line but the torn one
        for line in data.splitlines():
            line = line.strip().rstrip(b",")
            if not line.startswith(b"{"):
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                self.skipped += 1
        return rows

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1

    def fileno(self) -> int:
        return self._fd

    def create(self, account: int | None, admin: bool = False, risk: bool = False) -> ApiKey:
        """A new key, written before this returns (start-up; the loop uses create_durable)."""
        key = self._new(account, admin, risk)
        self._append([key])
        return key

    async def create_durable(self, account: int | None) -> ApiKey:
        """A new account key, returned once it is in the file (written in a thread)."""
        key = self._new(account, False, False)
        if self._fd < 0:
            return key
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((key, fut))
        if not self._flushing:
            asyncio.ensure_future(self._flush())
        await fut
        return key

    async def _flush(self) -> None:
        self._flushing = True
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await loop.run_in_executor(None, self._append, [k for k, _ in batch])
                except OSError as exc:
                    for _, fut in batch:
                        fut.set_exception(exc)
                    continue
                for _, fut in batch:
                    fut.set_result(None)
        finally:
            self._flushing = False

    def _new(self, account: int | None, admin: bool, risk: bool) -> ApiKey:
        key = ApiKey(secrets.token_hex(16), secrets.token_hex(32), account, admin, risk)
        self.keys[key.apiKey] = key
        return key

    def _append(self, keys: list[ApiKey]) -> None:
        if self._fd < 0:
            return
        with self._write:
            lead = b",\n" if self._size > len(_EMPTY) else b"\n"
            blob = lead + b",\n".join(_line(k) for k in keys) + _TAIL
            os.pwrite(self._fd, blob, self._size - len(_TAIL))
            os.fsync(self._fd)
            self._size += len(blob) - len(_TAIL)

    def verify(self, api_key: object, nonce: str, signature: object) -> ApiKey | None:
        key = self.keys.get(api_key) if isinstance(api_key, str) else None
        if key is None or not isinstance(signature, str):
            return None
        expected = sign(key.secret, nonce).encode()
        return key if hmac.compare_digest(expected, signature.encode("utf-8", "replace")) else None


_EMPTY = b"[\n]\n"
_TAIL = b"\n]\n"


def _line(key: ApiKey) -> bytes:
    return json.dumps(asdict(key)).encode()


def _layout(lines: list[bytes]) -> bytes:
    return b"[\n" + b",\n".join(lines) + _TAIL if lines else _EMPTY


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)
