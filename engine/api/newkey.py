"""`python -m engine newkey [--deposit 10000] [--asset USDT]`: beside a running server, create
an account, deposit into it (USDT, or another asset: BTC for COIN-M) and create an API key for
it, as a testnet hands out keys; print one JSON object {"apiKey", "secret", "account"}. It talks to the server over the native protocol with
the admin key of the keys file.

Accounts made this way are registered 400 days back, so the 60-day rule (at most 20x for
accounts younger than 60 days) does not hold them back; `--new-account` registers the account
now, so the rule applies to it."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time

from engine.client import Client, ClientError

DAY_MS = 86_400_000


async def create(host: str, port: int, keys_path: str, deposit: str, new_account: bool,
                 account: int | None, asset: str = "USDT") -> dict:
    with open(keys_path) as f:
        admin = next((k for k in json.load(f) if k.get("admin")), None)
    if admin is None:
        raise SystemExit(f"error: no admin key in {keys_path}")
    c = Client(host, port)
    await c.connect()
    try:
        await c.login(admin["apiKey"], admin["secret"])
        fields = {} if new_account else {"registeredAt": time.time_ns() // 1_000_000 - 400 * DAY_MS}
        rng = random.SystemRandom()
        for _ in range(100):
            aid = account or rng.randrange(1_000_000, 900_000_000)
            try:
                await c.request("createAccount", account=aid, **fields)
                break
            except ClientError as exc:
                if account is not None or "exists" not in exc.msg:
                    raise
        else:
            raise SystemExit("error: no free account number found")
        if deposit and deposit != "0":
            await c.request("deposit", account=aid, amount=deposit, asset=asset)
        key = await c.request("createApiKey", account=aid)
        return {"apiKey": key["apiKey"], "secret": key["secret"], "account": aid}
    finally:
        await c.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine newkey",
                                description="a new account with a deposit and an API key")
    p.add_argument("--deposit", default="10000", help="the amount to deposit (default 10000)")
    p.add_argument("--asset", default="USDT",
                   help="the deposit's asset (default USDT; BTC or ETH margin COIN-M)")
    p.add_argument("--host", default=os.environ.get("PERPENGINE_HOST", "127.0.0.1"),
                   help="the server's native gateway (default: $PERPENGINE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(os.environ.get("PERPENGINE_PORT", "7001")),
                   help="default: $PERPENGINE_PORT or 7001")
    p.add_argument("--keys", default="var/keys.json", help="the keys file with the admin key")
    p.add_argument("--account", type=int, help="this account number (default: a free one)")
    p.add_argument("--new-account", action="store_true",
                   help="registered now: subject to the 60-day rule (at most 20x)")
    a = p.parse_args(argv)
    try:
        out = asyncio.run(create(a.host, a.port, a.keys, a.deposit, a.new_account, a.account,
                                 a.asset))
    except (OSError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0
