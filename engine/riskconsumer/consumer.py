"""The risk consumer: a reader of the event log with its own projection (CQRS).

It rebuilds balances, positions and marks from the log's events alone (a replica applied with
the core's own appliers, so the arithmetic is the same code), recomputes only what a record
touched, and answers with commands for the sequencer:
    MarginCall  when an account (cross, or one isolated position) reaches 80 %, once per crossing
    Liquidate   at a margin ratio >= 100 % or a margin balance <= 0, once until the core answers
The core re-checks every Liquidate, so a stale consumer can never liquidate a healthy account.

What a record touches: the accounts named in its events, and for a mark change on a symbol the
holders whose state can have crossed 80 % or 100 %. A margin scope with a single position (a
cross account holding one symbol, or an isolated position) is at >= 80 % or >= 100 % exactly
when the mark is beyond a trigger price (engine.core.risk.trigger_price), which depends on the
account's state but not on the mark. So each symbol keeps its scopes' trigger prices sorted; a
mark move from a to b visits only the triggers between a and b and decides each by comparing
the mark with it (with the exact figures when within two units of it). Scopes with several cross
positions are evaluated in full on every mark change of any of their symbols. Triggers are
re-derived when an event changes the account; the index is derived state, rebuilt on restore.

Margin assets: a margin scope is "" (the USDT cross pool, or a Multi-Assets account as a
whole), "@ASSET" (the cross pool of another margin asset: BUSD, or a coin for COIN-M), or an
isolated position's key. Trigger prices are kept for single-position pools of USD-M contracts;
COIN-M pools, pools of several positions and Multi-Assets accounts are evaluated in full on
every mark change of a symbol they hold, and Multi-Assets accounts also on every move of an
asset's index (AssetIndexUpdated: a BTC crash can liquidate an account holding only BTC
collateral) and when the collateral ratios change.

`process(record)` is synchronous and deterministic (the feed runs it inline); `follow()` is the
asyncio task that tails a log file from a given sequence number; engine.riskconsumer.process
runs it as its own process.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from typing import Awaitable, Callable

import msgspec
from sortedcontainers import SortedList

from engine.core import Engine, EngineConfig, risk, snapshot
from engine.core.accounts import CROSSED, ISOLATED, position_key
from engine.core.catalogue import Catalogue
from engine.core.fixed import SCALE
from engine.eventlog import LogTail
from proto import commands as C
from proto import events as V
from proto.records import LogRecord

_ACCOUNT_FIELD_NAMES = ("account", "maker_account", "taker_account", "counterparty")
# per event type, the fields naming accounts whose balances or positions it may change
_ACCOUNT_FIELDS = {
    t: tuple(f for f in t.__struct_fields__ if f in _ACCOUNT_FIELD_NAMES)
    for t in V.AnyEvent.__args__
    if t not in (V.OrderRejected, V.CommandRejected, V.MarginCallIssued, V.AccountCreated,
                 V.OrderAccepted, V.OrderRested, V.OrderCanceled, V.OrderExpired,
                 V.OrderModified)  # orders change neither balances nor positions
}
_POSITION_EVENTS = (V.Trade, V.AdlTrade)


class SequenceGap(Exception):
    pass


CALL, LIQUIDATE = 0, 1  # trigger levels: 80 % and 100 %


def _near(size: int) -> int:
    """Price units around a trigger where the engine's rounding (MM up, PnL and notional down:
    a few 1e-8 USDT) can disagree with the exact root: such marks are checked exactly."""
    return 4 * SCALE // size + 2


class _TriggerIndex:
    """One symbol's single-position scopes by trigger price, as (price, account, level, scope,
    near) for longs (at the level when mark <= price) and shorts (mark >= price), and the
    accounts that must always be evaluated in full. `widest` is the largest `near` ever
    indexed, so a search widened by it finds every entry whose zone the mark touched."""
    __slots__ = ("longs", "shorts", "always", "widest")

    def __init__(self) -> None:
        self.longs = SortedList()
        self.shorts = SortedList()
        self.always: set[int] = set()
        self.widest = 0


class RiskConsumer:
    def __init__(self, catalogue: Catalogue, config: EngineConfig | None = None,
                 projection: Engine | None = None) -> None:
        self.catalogue = catalogue
        self.projection = projection or Engine(catalogue, _quiet(config))
        self.last_seq = self.projection.seq
        self.holders: dict[str, set[int]] = {}
        self.called: set[tuple[int, str]] = set()  # (account, "" or isolated symbol) >= 80 %
        self.requested: set[tuple[int, str]] = set()  # Liquidate sent, no answer yet
        self.evaluations = 0
        self._index: dict[str, _TriggerIndex] = {}
        self._entries: dict[int, list] = {}  # account -> what _reindex inserted
        self.multi_assets: set[int] = {aid for aid, a in self.projection.accounts.items()
                                       if a.multi_assets}
        for aid, acct in self.projection.accounts.items():
            for pos in acct.positions.values():
                if pos.qty:
                    self.holders.setdefault(pos.symbol, set()).add(aid)
            self._reindex(aid)

    # -- the projection -------------------------------------------------------------------------
    def process(self, record: LogRecord) -> list[C.Command]:
        if record.seq <= self.last_seq:
            return []  # already seen (a restart re-reading its last batch)
        if record.seq != self.last_seq + 1:
            raise SequenceGap(f"expected seq {self.last_seq + 1}, got {record.seq}")
        old_marks: dict[str, int] = {}
        for ev in record.events:
            if type(ev) is V.MarkPriceUpdated and ev.symbol not in old_marks:
                old_marks[ev.symbol] = self.projection.symbols[ev.symbol].mark
        self.projection.apply_record(record.seq, record.time, record.events)
        self.last_seq = record.seq
        accounts: set[int] = set()
        symbols: set[str] = set()
        revalue = False  # an asset's index or the collateral ratios moved
        for ev in record.events:
            t = type(ev)
            fields = _ACCOUNT_FIELDS.get(t)
            if fields:
                for f in fields:
                    accounts.add(getattr(ev, f))
                if t in _POSITION_EVENTS:
                    self._update_holders(ev.symbol, [getattr(ev, f) for f in fields])
                if t is V.LiquidationStarted or t is V.LiquidationDeclined:
                    self.requested.discard((ev.account, _event_scope(ev)))
                elif t is V.MultiAssetsMarginChanged:
                    if ev.multi_assets_margin:
                        self.multi_assets.add(ev.account)
                    else:
                        self.multi_assets.discard(ev.account)
            elif t is V.BracketTableSwitched:
                symbols.add(ev.symbol)
            elif t is V.AssetIndexUpdated or t is V.CollateralRatiosSwitched:
                revalue = True
        for s in symbols:  # new tiers: every holder
            accounts |= self.holders.get(s, set())
        out: list[C.Command] = []
        full: set[int] = set()  # evaluated with the exact figures; their state is unchanged
        if revalue:
            full |= self.multi_assets
        for s, old in old_marks.items():
            new = self.projection.symbols[s].mark
            if not old:
                full |= self.holders.get(s, set())
            elif s in self._index:
                self._mark_moved(self._index[s], old, new, out, full)
        for aid in sorted(full - accounts):
            self._evaluate(aid, out)
        for aid in sorted(accounts):
            self._evaluate(aid, out)
            self._reindex(aid)
        # margin calls before liquidations (a stable sort keeps each kind's order)
        out.sort(key=lambda c: type(c) is C.Liquidate)
        return out

    def _mark_moved(self, index: _TriggerIndex, old: int, new: int, out: list[C.Command],
                    full: set[int]) -> None:
        full |= index.always
        lo, hi = min(old, new) - index.widest, max(old, new) + index.widest + 1
        called, requested = self.called, self.requested
        append, margin_call, liquidate = out.append, C.MarginCall, C.Liquidate  # hot loop
        for book, long in ((index.longs, True), (index.shorts, False)):
            for price, aid, level, scope, near in book.irange((lo,), (hi,),
                                                              inclusive=(True, False)):
                d = new - price
                if -near <= d <= near:
                    full.add(aid)
                    continue
                beyond = d < 0 if long else d > 0  # |d| > near here: its sign decides
                key = (aid, scope)
                if level == LIQUIDATE:
                    if beyond and key not in requested:
                        requested.add(key)
                        append(_scope_command(liquidate, aid, scope))
                elif not beyond:
                    called.discard(key)
                elif key not in called:
                    called.add(key)
                    append(_scope_command(margin_call, aid, scope))

    def _reindex(self, aid: int) -> None:
        """Re-derive the account's trigger prices after its state changed."""
        for index, book, item in self._entries.pop(aid, ()):
            if book is None:
                index.always.discard(aid)
            else:
                book.remove(item)
        acct = self.projection.accounts.get(aid)
        if acct is None:
            return
        entries = []
        pools: dict[str, list] = {}  # margin asset -> its cross positions
        for p in acct.positions.values():
            if p.qty and p.margin_type == CROSSED:
                pools.setdefault(p.asset, []).append(p)
        scopes = []
        for asset, cross in sorted(pools.items()):
            if len(cross) == 1 and not acct.multi_assets and not cross[0].contract_size:
                scopes.append((cross[0], None))  # backing: the cross wallet, computed below
            else:
                for p in cross:
                    index = self._index.setdefault(p.symbol, _TriggerIndex())
                    index.always.add(aid)
                    entries.append((index, None, None))
        for p in acct.positions.values():
            if p.qty and p.margin_type == ISOLATED:
                if p.contract_size:
                    index = self._index.setdefault(p.symbol, _TriggerIndex())
                    index.always.add(aid)
                    entries.append((index, None, None))
                else:
                    scopes.append((p, p.isolated_margin))
        for pos, backing in scopes:
            scope = pos.key if backing is not None else _cross_scope(pos.asset)
            if backing is None:
                backing = acct.balance(pos.asset) - sum(
                    p.isolated_margin for p in acct.positions.values()
                    if p.margin_type == ISOLATED and p.asset == pos.asset)
            sym = self.projection.symbols[pos.symbol]
            table = sym.table_at(self.projection.time)
            index = self._index.setdefault(pos.symbol, _TriggerIndex())
            book = index.longs if pos.qty > 0 else index.shorts
            near = _near(abs(pos.qty))
            index.widest = max(index.widest, near)
            for level, k_num, k_den in ((CALL, risk.MARGIN_CALL_NUM, risk.MARGIN_CALL_DEN),
                                        (LIQUIDATE, 1, 1)):
                price = risk.trigger_price(table, backing, pos.qty, pos.cost, k_num, k_den)
                if price > 0:
                    item = (price, aid, level, scope, near)
                    book.add(item)
                    entries.append((index, book, item))
        if entries:
            self._entries[aid] = entries

    def evaluate_all(self) -> list[C.Command]:
        """Evaluate every account once (after a restart: one may have been left under water
        with its Liquidate never sequenced)."""
        out: list[C.Command] = []
        for aid in sorted(self.projection.accounts):
            self._evaluate(aid, out)
        out.sort(key=lambda c: type(c) is C.Liquidate)
        return out

    def _update_holders(self, symbol: str, accounts: list[int]) -> None:
        holders = self.holders.setdefault(symbol, set())
        for aid in accounts:
            if any(p.qty for p in self.projection.accounts[aid].legs(symbol)):
                holders.add(aid)
            else:
                holders.discard(aid)

    def _evaluate(self, aid: int, out: list[C.Command]) -> None:
        acct = self.projection.accounts.get(aid)
        if acct is None:
            return
        self.evaluations += 1
        ledger = self.projection.ledger
        if acct.multi_assets:
            scopes = [("", ledger.cross_risk(acct))]
        else:
            scopes = [(_cross_scope(a), ledger.cross_risk(acct, a))
                      for a in ledger.cross_assets(acct)]
        for key, pos in acct.positions.items():
            if pos.margin_type == ISOLATED and pos.qty:
                scopes.append((key, self.projection.ledger.isolated_risk(pos)))
        for scope, figures in scopes:
            key = (aid, scope)
            if figures.margin_call:
                if key not in self.called:
                    self.called.add(key)
                    out.append(_scope_command(C.MarginCall, aid, scope))
            else:
                self.called.discard(key)
            if figures.liquidatable and key not in self.requested:
                self.requested.add(key)
                out.append(_scope_command(C.Liquidate, aid, scope))

    # -- restart ---------------------------------------------------------------------------------
    def save(self) -> bytes:
        return msgspec.msgpack.encode([snapshot.take(self.projection), sorted(self.called),
                                       sorted(self.requested)])

    @classmethod
    def restore(cls, catalogue: Catalogue, blob: bytes,
                config: EngineConfig | None = None) -> "RiskConsumer":
        snap, called, requested = msgspec.msgpack.decode(blob)
        consumer = cls(catalogue, config, snapshot.restore(catalogue, snap, _quiet(config)))
        consumer.called = {tuple(k) for k in called}
        consumer.requested = {tuple(k) for k in requested}
        return consumer

    def projection_hash(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(self.projection.state_hash().encode())
        h.update(msgspec.msgpack.encode([self.last_seq, sorted(self.called), sorted(self.requested),
                                         sorted((s, sorted(a)) for s, a in self.holders.items() if a)]))
        return h.hexdigest()

    # -- the asyncio task -----------------------------------------------------------------------
    async def follow(self, path: str, submit: Callable[[C.Command], Awaitable[None]],
                     stop: asyncio.Event, poll_ms: int = 2) -> None:
        """Tail the log from the record after `last_seq`; submit what it asks for."""
        tail = LogTail(path)
        while True:
            records = tail.poll()
            for rec in records:
                for cmd in self.process(rec):
                    await submit(cmd)
            if not records:
                if stop.is_set():
                    return
                await asyncio.sleep(poll_ms / 1000)

    def lag(self, head_seq: int) -> int:
        return head_seq - self.last_seq


def _cross_scope(asset: str) -> str:
    """The scope of a cross margin pool: "" for USDT (and a Multi-Assets account), "@ASSET"."""
    return "" if asset in ("USDT", "USD") else "@" + asset


def _event_scope(ev: V.LiquidationStarted | V.LiquidationDeclined) -> str:
    if ev.symbol:
        return position_key(ev.symbol, ev.position_side)
    return _cross_scope(ev.asset)


def _scope_command(cls, aid: int, scope: str):
    """The command for a margin scope: "" (USDT cross, or a Multi-Assets account), "@ASSET"
    (another margin asset's cross pool), a symbol, or "SYMBOL:SIDE" (a hedge leg)."""
    if scope.startswith("@"):
        return cls(account=aid, asset=scope[1:])
    symbol, _, side = scope.partition(":")
    return cls(account=aid, symbol=symbol, position_side=side or "BOTH")


def _quiet(config: EngineConfig | None) -> EngineConfig:
    """The projection never emits checkpoints of its own."""
    base = config or EngineConfig()
    return dataclasses.replace(base, checkpoint_every=0)  # (a compiled core has no __dict__)
