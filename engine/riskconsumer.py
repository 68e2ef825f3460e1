"""The risk consumer: a reader of the event log with its own projection (CQRS).

It rebuilds balances, positions and marks from the log's events alone (a replica applied with
the core's own appliers, so the arithmetic is the same code), recomputes only what a record
touched - the accounts in its events, and for a mark or bracket-table change the holders of that
symbol - and answers with commands for the sequencer:
    MarginCall  when an account (cross, or one isolated position) reaches 80 %, once per crossing
    Liquidate   at a margin ratio >= 100 % or a margin balance <= 0, once until the core answers
The core re-checks every Liquidate, so a stale consumer can never liquidate a healthy account.

`process(record)` is synchronous and deterministic (the feed runs it inline); `follow()` is the
asyncio task that tails a log file from a given sequence number.
"""
from __future__ import annotations

import asyncio
import hashlib
from typing import Awaitable, Callable

import msgspec

from engine import snapshot
from engine.accounts import ISOLATED
from engine.catalogue import Catalogue
from engine.core import Engine, EngineConfig
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
        for aid, acct in self.projection.accounts.items():
            for sym, pos in acct.positions.items():
                if pos.qty:
                    self.holders.setdefault(sym, set()).add(aid)

    # -- the projection -------------------------------------------------------------------------
    def process(self, record: LogRecord) -> list[C.Command]:
        if record.seq <= self.last_seq:
            return []  # already seen (a restart re-reading its last batch)
        if record.seq != self.last_seq + 1:
            raise SequenceGap(f"expected seq {self.last_seq + 1}, got {record.seq}")
        self.projection.apply_record(record.seq, record.time, record.events)
        self.last_seq = record.seq
        accounts: set[int] = set()
        symbols: set[str] = set()
        for ev in record.events:
            t = type(ev)
            fields = _ACCOUNT_FIELDS.get(t)
            if fields:
                for f in fields:
                    accounts.add(getattr(ev, f))
                if t in _POSITION_EVENTS:
                    self._update_holders(ev.symbol, [getattr(ev, f) for f in fields])
                if t is V.LiquidationStarted or t is V.LiquidationDeclined:
                    self.requested.discard((ev.account, ev.symbol))
            elif t is V.MarkPriceUpdated or t is V.BracketTableSwitched:
                symbols.add(ev.symbol)
        for s in symbols:
            accounts |= self.holders.get(s, set())
        out: list[C.Command] = []
        for aid in sorted(accounts):
            self._evaluate(aid, out)
        return out

    def _update_holders(self, symbol: str, accounts: list[int]) -> None:
        holders = self.holders.setdefault(symbol, set())
        for aid in accounts:
            pos = self.projection.accounts[aid].positions.get(symbol)
            if pos is not None and pos.qty:
                holders.add(aid)
            else:
                holders.discard(aid)

    def _evaluate(self, aid: int, out: list[C.Command]) -> None:
        acct = self.projection.accounts.get(aid)
        if acct is None:
            return
        self.evaluations += 1
        scopes = [("", self.projection.cross_risk(acct))]
        for sym, pos in acct.positions.items():
            if pos.margin_type == ISOLATED and pos.qty:
                scopes.append((sym, self.projection.isolated_risk(pos)))
        for scope, figures in scopes:
            key = (aid, scope)
            if figures.margin_call:
                if key not in self.called:
                    self.called.add(key)
                    out.append(C.MarginCall(account=aid, symbol=scope, margin_ratio=figures.ratio))
            else:
                self.called.discard(key)
            if figures.liquidatable and key not in self.requested:
                self.requested.add(key)
                out.append(C.Liquidate(account=aid, symbol=scope))

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
                     stop: asyncio.Event, poll_interval: float = 0.002) -> None:
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
                await asyncio.sleep(poll_interval)

    def lag(self, head_seq: int) -> int:
        return head_seq - self.last_seq


def _quiet(config: EngineConfig | None) -> EngineConfig:
    """The projection never emits checkpoints of its own."""
    base = config or EngineConfig()
    return EngineConfig(**{**base.__dict__, "checkpoint_every": 0})
