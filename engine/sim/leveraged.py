"""The simulator's over-leveraged accounts, so that a crash produces margin calls and
liquidations to learn from.

    Gambler     holds one position on one symbol at high leverage (10x-125x, as the symbol's
                table allows) worth about 80 % of its wallet x leverage (its wallet is smaller
                where the tier's notional cap binds, larger where the minimum order does); it
                never closes it.
                Every `every` steps it reads its account (an admin query); if its position is
                gone (liquidated, or auto-deleveraged) it is topped up to its deposit when its
                wallet is below half of it, and opens again with a MARKET order (a LIMIT 1 %
                through the mark would cost twice its margin: Binance counts the open loss). Half of them are long, half short, spread over the symbols.
    TierSwitch  a scenario's tier_change: `lead` before a bracket-table switch, accounts open
                longs at the old table's tier-1 leverage; once their positions are known the
                index target is computed (engine.core.risk.trigger_price under both tables)
                where most of them are alive under the old table, margin-called (>= 80 %), and
                liquidatable under the new one, so the switch itself liquidates them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.core import fixed, risk
from engine.core.catalogue import SymbolSpec
from engine.sim.makers import steps_for

SCALE = fixed.SCALE
LEVERAGES = (100, 50, 20, 75, 125, 25, 10, 60)


def _position(reply: dict | None, symbol: str) -> tuple[int, int, int] | None:
    """(wallet, position quantity, cost) from an `account` query's reply, or None."""
    if not reply or not reply.get("ok"):
        return None
    r = reply["result"]
    wallet = fixed.parse(r["totalWalletBalance"])
    for p in r.get("positions", ()):
        if p["symbol"] == symbol:
            qty = fixed.parse(p["positionAmt"])
            return wallet, qty, qty * fixed.parse(p["entryPrice"]) // SCALE
    return wallet, 0, 0


@dataclass
class Gambler:
    account: int
    spec: SymbolSpec
    side: str  # "BUY": long, "SELL": short
    leverage: int
    deposit: int  # whole USDT
    target: int  # whole USDT of notional
    phase: int
    wallet: int = 0  # units, as last read
    qty: int = 0  # units, signed, as last read
    known: bool = False
    opened: int = 0
    topups: int = 0

    def step(self, k: int, every: int, centre: int | None) -> list[tuple[dict, object]]:
        """This step's commands with their reply tags."""
        r = (k - self.phase) % every
        if r == 0:
            return [({"op": "query", "query": "account", "account": self.account},
                     ("gambler", self))]
        if r != 1 or not self.known or not centre:
            return []
        self.known = False
        need = steps_for(self.spec, centre, self.target) * self.spec.step_size
        if abs(self.qty) * 2 >= need:
            return []
        out = []
        if self.wallet * 2 < self.deposit * SCALE:
            out.append(({"op": "deposit", "account": self.account,
                         "amount": str(self.deposit)}, None))
            self.topups += 1
        qty = min(need - abs(self.qty), self.spec.max_qty // self.spec.step_size *
                  self.spec.step_size)
        out.append(({"op": "newOrder", "account": self.account, "symbol": self.spec.symbol,
                     "side": self.side, "type": "MARKET", "quantity": fixed.fmt(qty)},
                    None))
        self.opened += 1
        return out

    def on_account(self, reply: dict | None) -> None:
        got = _position(reply, self.spec.symbol)
        if got is not None:
            self.wallet, self.qty, _ = got
            self.known = True


def plan_gamblers(specs: dict[str, SymbolSpec], symbols: list[str], count: int, first: int,
                  deposit: int, at_ms: int, prices: dict[str, int], every: int) -> list[Gambler]:
    """`count` gamblers over `symbols` round-robin, long then short, leverage from LEVERAGES
    as each symbol's table allows at `at_ms` with a position above its minimum order."""
    out = []
    n = len(symbols)
    for i in range(count):
        spec = specs[symbols[i % n]]
        side = "BUY" if (i // n) % 2 == 0 else "SELL"
        table = spec.table_at(at_ms)
        lev = min(LEVERAGES[i % len(LEVERAGES)], table.max_leverage)
        price = prices[spec.symbol]
        least = steps_for(spec, price, 1) * spec.step_size * price // SCALE // SCALE + 1
        # a leverage whose notional cap holds more than the minimum order
        while table.max_notional(lev) // SCALE * 9 // 10 < least * 12 // 10 and lev > 1:
            lev = max(1, lev * 2 // 3)
        target = min(max(deposit * lev * 8 // 10, least * 12 // 10),
                     table.max_notional(lev) // SCALE * 9 // 10)
        # the wallet that makes it about 80 % of the leverage (smaller where the cap binds,
        # larger where the minimum order does)
        wallet = max(-(-target * 10 // (lev * 8)), 10)
        out.append(Gambler(first + i, spec, side, lev, wallet, target, phase=i % every))
    return out


@dataclass
class TierSwitch:
    """One tier_change event's accounts and plan."""
    spec: SymbolSpec
    switch: int  # ms, the table switch
    accounts: list[int]
    label: str
    old_leverage: int = 0
    notional: int = 0  # whole USDT per account
    positions: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    target: int = 0  # the planned index (units)
    expected: int = 0  # accounts expected to be liquidated by the switch

    def open_commands(self, centre: int) -> list[tuple[dict, object]]:
        """Fund each account a little more than the next (1.10 %, 1.15 %, ... of its
        notional), set the old table's tier-1 leverage, buy at most 90 % of tier 1's cap."""
        old = self.spec.table_at(self.switch - 1)
        tier1 = old.tiers[0]
        self.old_leverage = tier1.max_leverage
        self.notional = tier1.cap // SCALE * 9 // 10
        qty = steps_for(self.spec, centre, self.notional) * self.spec.step_size
        out: list[tuple[dict, object]] = []
        for i, acct in enumerate(self.accounts):
            deposit = self.notional * (110 + 5 * i) // 10_000 + 1
            out += [({"op": "createAccount", "account": acct, "registeredAt": 0}, None),
                    ({"op": "deposit", "account": acct, "amount": str(deposit)}, None),
                    ({"op": "setLeverage", "account": acct, "symbol": self.spec.symbol,
                      "leverage": self.old_leverage}, None),
                    ({"op": "newOrder", "account": acct, "symbol": self.spec.symbol,
                      "side": "BUY", "type": "MARKET", "quantity": fixed.fmt(qty)}, None)]
        return out

    def query_commands(self) -> list[tuple[dict, object]]:
        return [({"op": "query", "query": "account", "account": a}, ("tier", self, a))
                for a in self.accounts]

    def on_account(self, account: int, reply: dict | None) -> None:
        got = _position(reply, self.spec.symbol)
        if got is not None and got[1] > 0:
            self.positions[account] = got

    def plan(self) -> int:
        """The index at which the most accounts are liquidatable under the new table and not
        under the old (0 if no account holds a position)."""
        old, new = self.spec.table_at(self.switch - 1), self.spec.table_at(self.switch)
        bands = []
        for wallet, qty, cost in self.positions.values():
            lo = risk.trigger_price(old, wallet, qty, cost, 1, 1)  # liquidated at mark <= lo
            hi = risk.trigger_price(new, wallet, qty, cost, 1, 1)
            if hi > lo:
                bands.append((lo, hi))
        best, best_n = 0, 0
        for lo, hi in bands:
            t = (lo + hi) // 2
            n = sum(1 for a, b in bands if a < t <= b)
            if n > best_n:
                best, best_n = t, n
        self.target = best // self.spec.tick_size * self.spec.tick_size
        self.expected = best_n
        return self.target


__all__ = ["Gambler", "TierSwitch", "plan_gamblers", "LEVERAGES"]
