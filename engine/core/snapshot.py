"""Whole-state snapshots: the canonical state (the same lists the state hash is taken over)
plus the sequence number and time, as msgpack. Restoring rebuilds books and accounts, then
re-derives the caches (order margins, bracket windows), so restored == live, hash for hash."""
from __future__ import annotations

import msgspec

from engine.core.accounts import Account, Position
from engine.core.book import BUY, SELL, Order
from engine.core.catalogue import Catalogue
from engine.core.engine import Engine, EngineConfig
from engine.core.gcpause import without_gc

SNAPSHOT_VERSION = 1


class Snapshot(msgspec.Struct, frozen=True, array_like=True):
    version: int
    seq: int
    time: int
    state: list


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Snapshot).decode


def take(engine: Engine) -> bytes:
    return _encode(Snapshot(SNAPSHOT_VERSION, engine.seq, engine.time, engine.canonical_state()))


@without_gc  # a restore allocates millions of objects that all stay alive
def restore(catalogue: Catalogue, blob: bytes, config: EngineConfig | None = None) -> Engine:
    snap = _decode(blob)
    if snap.version != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {snap.version}, expected {SNAPSHOT_VERSION}")
    engine = Engine(catalogue, config)
    ledger = engine.ledger
    ledger.seq, ledger.time = snap.seq, snap.time
    accounts, books, fees, insurance, deposits, withdrawals, next_order, next_trade = snap.state[:8]
    for aid, registered, wallet, positions, client_ids in accounts:
        acct = engine.accounts[aid] = Account(aid, registered)
        acct.wallet = wallet
        acct.client_ids = dict(client_ids)
        for (symbol, qty, cost, leverage, margin_type, iso, bq, bn, sq, sn, n_open) in positions:
            pos = acct.positions[symbol] = Position(symbol, leverage,
                                                    engine.symbols[symbol].spec.taker_fee)
            pos.qty, pos.cost, pos.margin_type, pos.isolated_margin = qty, cost, margin_type, iso
            pos.open_buy_qty, pos.open_buy_notional = bq, bn
            pos.open_sell_qty, pos.open_sell_notional = sq, sn
            pos.open_orders = n_open
            acct.refresh_order_margin(pos)
    for name, mark, index, last_price, sides in books:
        sym = engine.symbols[name]
        sym.mark, sym.index, sym.last_price = mark, index, last_price
        for side, orders in zip((BUY, SELL), sides):
            loaded = []
            for (oid, account, price, quantity, remaining, tif, reduce_only, client_id,
                 stp) in orders:
                order = Order(oid, account, name, side, price, quantity, tif, "LIMIT",
                              reduce_only, client_id, stp)
                order.remaining = remaining
                loaded.append(order)
            sym.book.load_side(side, loaded)
    engine.restored()
    ledger.fees_collected, ledger.insurance_fund = fees, insurance
    ledger.total_deposits, ledger.total_withdrawals = deposits, withdrawals
    ledger.next_order_id, ledger.next_trade_id = next_order, next_trade
    if len(snap.state) > 8 and snap.state[8] is not None:  # index and funding (pricing)
        engine.pricing.restore(snap.state[8])
    if len(snap.state) > 9:  # leveraged tokens and spot wallets (tokens, spot)
        engine.tokens.restore(snap.state[9])
    return engine
