"""API keys and what each role may do.

Keys: a JSON file of {"apiKey", "secret", "account" | null, "admin": bool, "risk": bool}. A
connection proves it holds a key's secret by signing the server's per-connection nonce
(proto.wire.sign); secrets never travel on the wire.

Roles: an account key trades and reads its own account only; an admin key runs the feeds and
account administration and may act for any account by naming it; the risk key (the
out-of-process risk consumer) alone sends liquidate and marginCall.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
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
                            "assetIndex", "coinmExchangeInfo", "coinmLeverageBracket"})
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

    def verify(self, api_key: object, nonce: str, signature: object) -> ApiKey | None:
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
