"""The core: a pure, synchronous state machine. `handle(command, seq, time)` validates, then
emits events; every event is applied as it is emitted, and appliers are the only code that
mutates state. Rebuilding from a log is therefore `apply_record` over its events, and cannot
drift from live.

No I/O, no clock, no randomness: time arrives with the command. A failed check is a rejection
event carrying Binance's code; validation finishes before the first state-changing event.
All numbers are ints of 1e-8 units (engine.core.fixed); times are ms.

The Engine is assembled from parts that share one Ledger (engine.core.ledger: the state and
`emit`) and each own the commands and events of one concern:

    Accounting   accounts, deposits, withdrawals, leverage, margin type, isolated margin,
                 position mode (one-way or hedge)
    Orders       validation, matching, cancel, modify, good-till-date expiry (everyone's
                 orders go through it)
    ConditionalOrders  stop, take-profit and trailing orders: triggers    (uses Orders)
    Liquidator   margin calls, liquidation, ADL, insurance fund          (uses Orders)
    Pricing      index, composite, mark price, premium, funding settlement
    SpotDesk     spot wallets and the tokens' spot books
    TokenDesk    leveraged tokens: issuers, NAV, subscriptions, rebalancing
                                                  (uses Orders and SpotDesk; Pricing calls it
                                                   at each settlement)
"""
from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from engine.core.accounting import Accounting
from engine.core.accounts import BOTH
from engine.core.book import BUY, SELL, Level, Order, OrderBook
from engine.core.catalogue import Catalogue
from engine.core.conditional import ConditionalOrders
from engine.core.ledger import Applier, EngineConfig, Ledger
from engine.core.liquidation import Liquidator
from engine.core.orders import Orders
from engine.core.pricing import Pricing
from engine.core.spot import SpotDesk
from engine.core.tokens import TokenDesk
from proto import commands as C
from proto import events as V

__all__ = ["Engine", "EngineConfig"]

# Final names: mypyc keeps them in C statics (V.Checkpoint would be two lookups on every use)
_NEW_ORDER: Final = C.NewOrder
_CANCEL_ORDER: Final = C.CancelOrder
_CHECKPOINT: Final = V.Checkpoint


class Engine:
    def __init__(self, catalogue: Catalogue, config: EngineConfig | None = None) -> None:
        self.catalogue = catalogue
        ledger = self.ledger = Ledger(catalogue, config or EngineConfig())
        self.accounting = Accounting(ledger)
        self.orders = Orders(ledger)
        self.conditional = ConditionalOrders(ledger, self.orders)
        self.liquidator = Liquidator(ledger, self.orders)
        self.pricing = Pricing(ledger)
        self.spot = SpotDesk(ledger)
        self.tokens = TokenDesk(ledger, self.orders, self.spot)
        self.pricing.on_settled = self.tokens.on_funding
        self.orders.cancel_conditional = self.conditional.cancel_account
        self.liquidator.expire_conditional = self.conditional.expire_account
        self.accounting.open_conditional = self.conditional.open_orders
        parts = (self.accounting, self.orders, self.conditional, self.liquidator, self.pricing,
                 self.spot, self.tokens)
        self._handlers: dict[type, Applier] = {}
        for part in parts:
            self._handlers.update(part.handlers())
            ledger.register(part.appliers())
        ledger.register({V.BracketTableSwitched: self._on_table_switched,
                         V.CollateralRatiosSwitched: self._on_collateral_switched,
                         V.Checkpoint: _ignore})
        # the shared state, under the names the rest of the project reads
        self.symbols = ledger.symbols
        self.accounts = ledger.accounts
        self._next_switch = self._earliest_switch()
        self._next_collateral = self._collateral_change_after(0)

    # == entry points =============================================================================
    @property
    def config(self) -> EngineConfig:
        return self.ledger.config

    @property
    def seq(self) -> int:
        return self.ledger.seq

    @property
    def time(self) -> int:
        return self.ledger.time

    def handle(self, cmd: C.Command, seq: int, time: int) -> list[V.Event]:
        """Run one sequenced command; returns the events it caused (already applied)."""
        ledger = self.ledger
        first = ledger.seq == 0
        previous = ledger.time
        ledger.seq = seq
        ledger.time = time
        out: list[V.Event] = []
        ledger.out = out
        if self._next_switch is not None and time >= self._next_switch:
            self._switch_tables(time, announce=not first)
        if self._next_collateral is not None and time >= self._next_collateral:
            self._switch_collateral(time, announce=not first and
                                    previous < self._next_collateral)
        if time >= self.pricing.next_due:  # funding settlements and index rebalances
            self.pricing.run_due(time)
        if self.orders.gtd and time >= self.orders.next_expiry():  # good-till-date orders
            self.orders.expire_due(time)
        kind = type(cmd)
        if kind is _NEW_ORDER:  # the hot commands by a direct (native) call
            self.orders.new_order(cmd)
        elif kind is _CANCEL_ORDER:
            self.orders.cancel_order(cmd)
        else:
            self._handlers[kind](cmd)
        conditional = self.conditional
        if conditional.moved or ledger.closed:  # triggers, and orders a closed position frees
            conditional.after_command()
        if self.tokens.by_symbol:  # leveraged tokens: NAV and rebalancing on mark moves
            self.tokens.after_command(out)
        every = ledger.config.checkpoint_every
        if every and seq % every == 0:
            ledger.emit(V.Checkpoint(seq=seq, state_hash=self.state_hash()))
        return out

    def apply_record(self, seq: int, time: int, events: list[V.Event]) -> V.Checkpoint | None:
        """Rebuild: apply a logged command's events without running the command. Returns its
        Checkpoint event, if it has one (the caller may compare the state hash)."""
        ledger = self.ledger
        ledger.seq = seq
        ledger.time = time
        appliers = ledger.appliers
        orders = self.orders
        checkpoint: V.Checkpoint | None = None
        for ev in events:
            # the order events that make up most of a log by a direct call, the rest by type
            if not orders.apply(ev):
                appliers[type(ev)](ev)
                if type(ev) is _CHECKPOINT:
                    checkpoint = ev
        # what a live command checks at its end was decided when it ran (its events say so)
        moved = self.conditional.moved
        if moved:
            moved.clear()
        closed = ledger.closed
        if closed:
            closed.clear()
        # live, every switch due by `time` took effect before the command ran (announced, or
        # silently on a first command): a rebuilt core must not announce it again
        if self._next_switch is not None and time >= self._next_switch:
            self._switch_tables(time, announce=False)
        return checkpoint

    def apply_records(self, records: list, start: int,
                      expected: int) -> tuple[int, int, V.Checkpoint | None]:
        """Rebuild from a batch of logged records (anything with seq, time and events):
        apply records[start:] in order while their seq runs on from `expected`; stop after a
        record that carries a checkpoint, or before one out of sequence. Returns (records
        applied, their events, that checkpoint or None). The loop of a verify, compiled."""
        applied = 0
        events = 0
        i = start
        end = len(records)
        while i < end:
            record = records[i]
            seq: int = record.seq
            if seq != expected + applied:
                break
            evs: list = record.events
            checkpoint = self.apply_record(seq, record.time, evs)
            applied += 1
            events += len(evs)
            i += 1
            if checkpoint is not None:
                return applied, events, checkpoint
        return applied, events, None

    # == effective-dated bracket tables ===========================================================
    def _earliest_switch(self) -> int | None:
        times = [s.table_until for s in self.symbols.values() if s.table_until is not None]
        return min(times) if times else None

    def _switch_tables(self, time: int, announce: bool) -> None:
        """A table took effect since the last command: announce it; every figure computed from
        now on (re-checks, liquidation, queries, the risk consumer) uses the new tiers. Before
        the first command there is no "since": the tables are simply those in force."""
        for name in sorted(self.symbols):
            sym = self.symbols[name]
            if sym.table_until is not None and time >= sym.table_until:
                table, since, _ = sym.spec.window(time)
                if announce:
                    self.ledger.emit(V.BracketTableSwitched(symbol=name, table=table.name,
                                                            effective_time=since))
                else:
                    sym.table_at(time)
        self._next_switch = self._earliest_switch()

    def _on_table_switched(self, ev: V.BracketTableSwitched) -> None:
        self.symbols[ev.symbol].table_at(ev.effective_time)
        self._next_switch = self._earliest_switch()

    # == effective-dated collateral ratios (Multi-Assets mode; rules 2) ===========================
    def _collateral_change_after(self, time: int) -> int | None:
        if self.ledger.config.rules < 2:
            return None
        return self.catalogue.collateral.next_change_after(time)

    def _switch_collateral(self, time: int, announce: bool) -> None:
        """A table of collateral ratios took effect since the last command: announce it (the
        risk consumer re-evaluates Multi-Assets accounts); the ratios are read by time. Not
        announced before the first command, nor when the previous command was already past it
        (an engine rebuilt from events continues where the log left off)."""
        table = self.catalogue.collateral.at(time)
        if announce and table is not None:
            self.ledger.emit(V.CollateralRatiosSwitched(effective_time=table.effective))
        else:
            self._next_collateral = self._collateral_change_after(time)

    def _on_collateral_switched(self, ev: V.CollateralRatiosSwitched) -> None:
        self._next_collateral = self._collateral_change_after(ev.effective_time)

    def restored(self) -> None:
        """After a snapshot restore set the state: re-derive the bracket windows."""
        for sym in self.symbols.values():
            sym.table_at(self.ledger.time)
        self._next_switch = self._earliest_switch()
        self._next_collateral = self._collateral_change_after(self.ledger.time)

    # == state hash ===============================================================================
    def canonical_state(self, encoded_sides: bool = False) -> list:
        """Everything that defines the state, in a fixed order (for hashing and snapshots).
        `encoded_sides`: each side of a book as its msgpack bytes (msgspec.Raw), put together
        from the orders' cached rows (Order.row): the same bytes once encoded."""
        ledger = self.ledger
        accounts = []
        for aid in sorted(self.accounts):
            a = self.accounts[aid]
            positions = []
            for _, p in sorted(a.positions.items()):
                row = [p.symbol, p.qty, p.cost, p.leverage, p.margin_type, p.isolated_margin,
                       p.buys.qty, p.buys.notional, p.sells.qty, p.sells.notional,
                       p.open_orders]
                if p.side != BOTH:  # a hedge leg (the order costs are derived from the orders)
                    row.append(p.side)
                positions.append(row)
            row = [aid, a.registered_at, a.wallet, positions, sorted(a.client_ids.items())]
            if a.balances or a.multi_assets:  # other assets' wallets, the asset mode
                row += [a.dual_side, sorted(a.balances.items()), a.multi_assets]
            elif a.dual_side:
                row.append(True)
            accounts.append(row)
        books = []
        for name in sorted(self.symbols):
            s = self.symbols[name]
            if not s.book.orders and not s.mark and not s.last_price:
                continue
            sides: list = []
            for side in (BUY, SELL):
                if encoded_sides:
                    sides.append(_encoded_side(s.book, side))
                    continue
                # rows as tuples (encoded as the same arrays as lists, built with less work),
                # the orders walked through their links
                rows: list[tuple] = []
                for level in s.book.levels(side):
                    _level_rows(level, rows)
                sides.append(rows)
            books.append([name, s.mark, s.index, s.last_price, sides])
        state: list = [accounts, books, ledger.fees_collected, ledger.insurance_fund,
                       ledger.total_deposits, ledger.total_withdrawals, ledger.next_order_id,
                       ledger.next_trade_id]
        # the parts that came later: None while unused, so older logs hash as they did
        sections = [self.pricing.canonical(), self.tokens.canonical(),
                    self.conditional.canonical(), self._assets_canonical()]
        while sections and sections[-1] is None:
            sections.pop()
        return state + sections

    def _assets_canonical(self) -> list | None:
        """The per-asset totals of assets other than USDT, the venue's auto-exchange position
        and the assets' index prices; None while all are empty (a USDT-only state hashes as
        it always did)."""
        ledger = self.ledger
        parts = [ledger.other_fees, ledger.other_insurance, ledger.other_deposits,
                 ledger.other_withdrawals, ledger.exchanged, ledger.asset_index]
        if not any(parts):
            return None
        return [sorted(p.items()) for p in parts]

    def restore_assets(self, data: list) -> None:
        ledger = self.ledger
        (ledger.other_fees, ledger.other_insurance, ledger.other_deposits,
         ledger.other_withdrawals, ledger.exchanged, ledger.asset_index) = \
            [dict(rows) for rows in data]

    def state_hash(self) -> str:
        """blake2b of the canonical state's msgpack; a resting order's row is encoded once
        and kept until the order changes (most do not between two checkpoints)."""
        blob = _encode(self.canonical_state(encoded_sides=True))
        return hashlib.blake2b(blob, digest_size=16).hexdigest()


_encode: Final = msgspec.msgpack.Encoder().encode
_Raw: Final = msgspec.Raw


def _row(o: Order) -> tuple:
    """An order's row of the canonical state (a tuple: encoded as the same array as a list,
    built with less work)."""
    if o.position_side != BOTH or o.cost_price or o.loss_unit or o.gtd:
        return (o.order_id, o.account, o.price, o.quantity, o.remaining, o.tif, o.reduce_only,
                o.client_id, o.stp, (o.position_side, o.cost_price, o.loss_unit, o.gtd))
    return (o.order_id, o.account, o.price, o.quantity, o.remaining, o.tif, o.reduce_only,
            o.client_id, o.stp)


def _level_rows(level: Level, rows: list[tuple]) -> None:
    """A level's orders as rows of the canonical state, in time priority, onto `rows`."""
    o = level.head
    while o is not None:
        rows.append(_row(o))
        o = o.next


def _array_header(n: int) -> bytes:
    """msgpack's (smallest) header of an array of n items."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _encoded_side(book: OrderBook, side: str) -> msgspec.Raw:
    """A side's rows as msgpack: the array header, then each order's encoded row, encoded
    again only for an order that changed since (book.add and book.reduce drop it)."""
    parts: list[bytes] = []
    for level in book.levels(side):
        o = level.head
        while o is not None:
            row = o.row
            if row is None:
                row = o.row = _encode(_row(o))
            parts.append(row)
            o = o.next
    return _Raw(_array_header(len(parts)) + b"".join(parts))


def _ignore(_ev: V.Event) -> None:
    return None
