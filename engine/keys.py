"""API keys: a JSON file of {"apiKey", "secret", "account" | null, "admin": bool}.

A connection proves it holds a key's secret by signing the server's per-connection nonce:
signature = hex(HMAC-SHA256(secret, nonce)). Secrets never travel on the wire.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ApiKey:
    apiKey: str
    secret: str
    account: int | None
    admin: bool = False
    risk: bool = False  # the out-of-process risk consumer: may send liquidate and marginCall


def sign(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()


class KeyStore:
    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.keys: dict[str, ApiKey] = {}
        if self.path and self.path.exists():
            for row in json.loads(self.path.read_text()):
                key = ApiKey(**row)
                self.keys[key.apiKey] = key

    def create(self, account: int | None, admin: bool = False, risk: bool = False) -> ApiKey:
        key = ApiKey(secrets.token_hex(16), secrets.token_hex(32), account, admin, risk)
        self.keys[key.apiKey] = key
        self._save()
        return key

    def verify(self, api_key: str, nonce: str, signature: str) -> ApiKey | None:
        key = self.keys.get(api_key) if isinstance(api_key, str) else None
        if key is None or not isinstance(signature, str):
            return None
        expected = sign(key.secret, nonce).encode()
        return key if hmac.compare_digest(expected, signature.encode("utf-8", "replace")) else None

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(k) for k in self.keys.values()], indent=1))
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)
