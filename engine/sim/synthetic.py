"""The honest order flow for benchmarks and load: seeded, and made of what it says it is.

    60 % resting limits   GTC limits that cross nothing, 1-50 ticks inside the quote's side of
                          a drifting mid (never through the opposite best price)
    25 % cancels          of orders that rest on the book at that moment, by the id the engine
                          gives them (the flow knows it: the engine numbers accepted orders 1, 2,
                          3, ... and the flow keeps its own copy of every book)
    15 % crossing         limits that take 1-4 makers at the touch (IOC or GTC; a GTC remainder
                          rests and may be cancelled later)

The flow runs its own copy of the books (engine.core.book, the core's own price-time queues) to
know which orders rest, so its cancels name real orders; it spreads accounts so that none nears
the 200 open orders of a symbol, and keeps notionals far below the position caps and the
margin of the accounts setup_commands makes. Rejections are therefore rare (the benchmarks
count and print them: `outcomes`). A `HonestFlow` continues where it stopped (`take(n)` again),
so a log of any length is one flow.
"""
from __future__ import annotations

import random
from collections import Counter

from engine.core.book import BUY, SELL, Order, OrderBook
from engine.core.catalogue import Catalogue
from engine.core.fixed import SCALE
from proto import commands as C
from proto import events as V

START_MS = 1_700_000_000_000
SYMBOLS = ("BTCUSDT", "ETHUSDT", "ALLUSDT")
MIDS_USDT = {"BTCUSDT": 30_000, "ETHUSDT": 2_000, "ALLUSDT": 10}
MIX = {"rest": 0.60, "cancel": 0.25, "cross": 0.15}
MAX_OPEN = 150  # per account and symbol (the engine allows 200)


def setup_commands(accounts: int, deposit_usdt: int = 10_000_000) -> list[C.Command]:
    cmds: list[C.Command] = []
    for a in range(1, accounts + 1):
        cmds.append(C.CreateAccount(account=a, registered_at=0))
        cmds.append(C.Deposit(account=a, amount=deposit_usdt * SCALE))
    return cmds


class HonestFlow:
    def __init__(self, catalogue: Catalogue, accounts: int = 100,
                 symbols: tuple[str, ...] = SYMBOLS, seed: int = 1, spread_ticks: int = 50,
                 first_order_id: int = 1) -> None:
        self.rng = random.Random(seed)
        self.accounts = accounts
        self.specs = [catalogue.spec(s) for s in symbols]
        self.spread = spread_ticks
        self.mids = {s.symbol: MIDS_USDT.get(s.symbol, 1_000) * SCALE // s.tick_size
                     for s in self.specs}  # in ticks
        self.books = {s.symbol: OrderBook(s.symbol) for s in self.specs}
        self.resting: dict[str, list[Order]] = {s.symbol: [] for s in self.specs}
        self.slot: dict[int, int] = {}  # order id -> index in its symbol's resting list
        self.open = Counter()  # (account, symbol) -> resting orders
        self.next_id = first_order_id
        self.last_order_id = 0  # the id the engine will give the last NewOrder made
        self.intent = Counter()  # what the flow meant: rest, cancel, cross

    def take(self, n: int) -> list[C.Command]:
        return [self.next() for _ in range(n)]

    def next(self) -> C.Command:
        rng = self.rng
        spec = self.specs[rng.randrange(len(self.specs))]
        sym = spec.symbol
        self.mids[sym] += rng.randint(-2, 2)
        r = rng.random()
        if r < MIX["cancel"] and self.resting[sym]:
            self.intent["cancel"] += 1
            lst = self.resting[sym]
            order = lst[rng.randrange(len(lst))]
            self._forget(order)
            self.books[sym].remove(order)
            return C.CancelOrder(account=order.account, symbol=sym, order_id=order.order_id)
        if r >= 1 - MIX["cross"]:
            cmd = self._crossing(spec)
            if cmd is not None:
                self.intent["cross"] += 1
                return cmd
        self.intent["rest"] += 1
        return self._resting(spec)

    # -- the three kinds -------------------------------------------------------------------------
    def _account(self, sym: str) -> int:
        while True:
            a = self.rng.randint(1, self.accounts)
            if self.open[(a, sym)] < MAX_OPEN:
                return a

    def _qty(self, spec, price: int) -> int:
        qty = spec.min_qty + spec.step_size * self.rng.randint(0, 20)
        if qty * price // SCALE < spec.min_notional:
            qty = (spec.min_notional * SCALE // price // spec.step_size + 1) * spec.step_size
        return qty

    def _resting(self, spec) -> C.Command:
        rng, sym, book = self.rng, spec.symbol, self.books[spec.symbol]
        side = BUY if rng.random() < 0.5 else SELL
        away = rng.randint(1, self.spread)
        if side == BUY:
            ticks = self.mids[sym] - away
            if book.ask is not None:
                ticks = min(ticks, book.ask // spec.tick_size - 1)
        else:
            ticks = self.mids[sym] + away
            if book.bid is not None:
                ticks = max(ticks, book.bid // spec.tick_size + 1)
        price = max(ticks, 1) * spec.tick_size
        qty = self._qty(spec, price)
        account = self._account(sym)
        order = Order(self.next_id, account, sym, side, price, qty, "GTC", "LIMIT", False, "",
                      "NONE")
        self.last_order_id = self.next_id
        self.next_id += 1
        self._rest(order)
        return C.NewOrder(account=account, symbol=sym, side=side, type="LIMIT", quantity=qty,
                          price=price, time_in_force="GTC", self_trade_prevention_mode="NONE")

    def _crossing(self, spec) -> C.Command | None:
        rng, sym, book = self.rng, spec.symbol, self.books[spec.symbol]
        side = BUY if rng.random() < 0.5 else SELL
        maker_side = SELL if side == BUY else BUY
        if book.best_level(maker_side) is None:
            side, maker_side = maker_side, side
            if book.best_level(maker_side) is None:
                return None
        want = rng.randint(1, 4)
        qty = 0
        price = 0
        taken = 0
        for level in book.levels(maker_side):  # the makers it will meet, in priority order
            maker = level.head
            while maker is not None and taken < want:
                qty += maker.remaining
                price = level.price
                taken += 1
                maker = maker.next
            if taken >= want:
                break
        if rng.random() < 0.5:  # a little less than the makers hold: the last one stays, partly
            qty -= min(qty - spec.step_size, rng.randint(0, 3) * spec.step_size)
        least = self._qty(spec, price) if spec.min_qty else spec.step_size
        qty = max(qty, spec.min_qty, (spec.min_notional * SCALE // price // spec.step_size + 1)
                  * spec.step_size, least if qty < spec.min_qty else qty)
        tif = "IOC" if rng.random() < 0.5 else "GTC"
        extra = 0
        if tif == "GTC" and rng.random() < 0.3:  # more than the makers hold: the rest rests
            extra = spec.step_size * rng.randint(1, 5)
        account = self._account(sym)
        taker = Order(self.next_id, account, sym, side, price, qty + extra, tif, "LIMIT", False,
                      "", "NONE")
        self.last_order_id = self.next_id
        self.next_id += 1
        is_buy = side == BUY
        while taker.remaining:
            level = book.best_level(maker_side)
            if level is None or (level.price > price if is_buy else level.price < price):
                break
            maker = level.head
            q = min(taker.remaining, maker.remaining)
            if q == maker.remaining:
                self._forget(maker)
            book.reduce(maker, q)
            taker.remaining -= q
        if taker.remaining and tif == "GTC":
            self._rest(taker)
        return C.NewOrder(account=account, symbol=sym, side=side, type="LIMIT",
                          quantity=qty + extra, price=price, time_in_force=tif,
                          self_trade_prevention_mode="NONE")

    # -- the flow's copy of the books -------------------------------------------------------------
    def _rest(self, order: Order) -> None:
        self.books[order.symbol].add(order)
        lst = self.resting[order.symbol]
        self.slot[order.order_id] = len(lst)
        lst.append(order)
        self.open[(order.account, order.symbol)] += 1

    def _forget(self, order: Order) -> None:
        lst = self.resting[order.symbol]
        i = self.slot.pop(order.order_id)
        last = lst.pop()
        if last is not order:
            lst[i] = last
            self.slot[last.order_id] = i
        self.open[(order.account, order.symbol)] -= 1


def order_flow(catalogue: Catalogue, n: int, accounts: int = 100,
               symbols: tuple[str, ...] = SYMBOLS, seed: int = 1) -> list[C.Command]:
    """n commands of a fresh HonestFlow (for an engine whose next order id is 1)."""
    return HonestFlow(catalogue, accounts, symbols, seed).take(n)


class Outcomes:
    """What the commands of a run came to, counted from their events: orders resting, filled
    (in full, on arrival), partly filled then resting, canceled, expired; rejections by code."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def add(self, events: list) -> None:
        c = self.counts
        kinds = {type(e) for e in events}
        if V.OrderRejected in kinds or V.CommandRejected in kinds:
            for e in events:
                if type(e) in (V.OrderRejected, V.CommandRejected):
                    c[f"rejected {e.code}"] += 1
                    break
            return
        if V.OrderCanceled in kinds:
            c["canceled"] += 1
        elif V.OrderAccepted in kinds:
            if V.Trade in kinds:
                if V.OrderRested in kinds:
                    c["filled partly, rest resting"] += 1
                elif V.OrderExpired in kinds:
                    c["filled partly, rest expired"] += 1
                else:
                    c["filled"] += 1
            elif V.OrderExpired in kinds:
                c["expired"] += 1
            else:
                c["resting"] += 1
        else:
            c["other"] += 1
        c["trades"] += sum(1 for e in events if type(e) is V.Trade)

    def total(self) -> int:
        return sum(v for k, v in self.counts.items() if k != "trades")

    def rejected(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("rejected"))

    def as_dict(self) -> dict:
        out = dict(sorted(self.counts.items(), key=lambda kv: (kv[0].startswith("rejected"),
                                                                kv[0] == "trades", kv[0])))
        total = self.total()
        out["rejected %"] = round(100 * self.rejected() / total, 3) if total else 0.0
        return out

    def line(self) -> str:
        d = self.as_dict()
        return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                         for k, v in d.items())
