"""Seeded synthetic order flow for benchmarks and load: about 60% new limit orders resting
around a drifting mid, 25% cancels, 15% orders that cross. Deterministic for a given seed."""
from __future__ import annotations

import random

from engine.core.catalogue import Catalogue
from engine.core.fixed import SCALE
from proto import commands as C

START_MS = 1_700_000_000_000


def setup_commands(accounts: int, deposit_usdt: int = 10_000_000) -> list[C.Command]:
    cmds: list[C.Command] = []
    for a in range(1, accounts + 1):
        cmds.append(C.CreateAccount(account=a, registered_at=0))
        cmds.append(C.Deposit(account=a, amount=deposit_usdt * SCALE))
    return cmds


def order_flow(catalogue: Catalogue, n: int, accounts: int = 100,
               symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "ALLUSDT"),
               seed: int = 1, spread_ticks: int = 50) -> list[C.Command]:
    rng = random.Random(seed)
    specs = [catalogue.spec(s) for s in symbols]
    mids = {s.symbol: {"BTCUSDT": 30_000, "ETHUSDT": 2_000}.get(s.symbol, 1_000) * SCALE // s.tick_size
            for s in specs}  # in ticks
    placed: list[tuple[int, str, int]] = []  # (account, symbol, order id guess)
    next_id = 1
    out: list[C.Command] = []
    for _ in range(n):
        spec = specs[rng.randrange(len(specs))]
        sym = spec.symbol
        mids[sym] += rng.randint(-2, 2)
        account = rng.randint(1, accounts)
        r = rng.random()
        if r < 0.25 and placed:
            a, s, oid = placed.pop(rng.randrange(len(placed)))
            out.append(C.CancelOrder(account=a, symbol=s, order_id=oid))
            continue
        side = "BUY" if rng.random() < 0.5 else "SELL"
        away = rng.randint(1, spread_ticks)
        crossing = r >= 0.85
        if crossing:
            away = -rng.randint(0, 5)
        ticks = mids[sym] - away if side == "BUY" else mids[sym] + away
        qty = spec.min_qty + spec.step_size * rng.randint(0, 20)
        price = ticks * spec.tick_size
        if qty * price // SCALE < spec.min_notional:
            qty = (spec.min_notional * SCALE // price // spec.step_size + 1) * spec.step_size
        out.append(C.NewOrder(account=account, symbol=sym, side=side, type="LIMIT",
                              quantity=qty, price=price,
                              time_in_force="IOC" if crossing and rng.random() < 0.5 else "GTC",
                              self_trade_prevention_mode="NONE"))
        if not crossing:
            placed.append((account, sym, next_id))
        next_id += 1  # the engine numbers accepted orders 1, 2, 3, ... (a guess, as a client's)
    return out
