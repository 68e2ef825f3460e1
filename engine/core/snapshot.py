"""Whole-state snapshots: the canonical state (the same lists the state hash is taken over)
plus the sequence number and time, as msgpack. Restoring rebuilds books and accounts, then
re-derives the caches (order margins, bracket windows), so restored == live, hash for hash."""
from __future__ import annotations

import msgspec

from engine.core.accounts import BOTH, Account, OpenOrders, Position, position_key
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
    rules = engine.config.rules
    for row in accounts:
        aid, registered, wallet, positions, client_ids = row[:5]
        acct = engine.accounts[aid] = Account(aid, registered)
        acct.wallet = wallet
        acct.client_ids = dict(client_ids)
        acct.dual_side = len(row) > 5 and bool(row[5])
        if len(row) > 6:  # other assets' wallets and the asset mode
            acct.balances = dict(row[6])
            acct.multi_assets = bool(row[7])
        for p in positions:
            (symbol, qty, cost, leverage, margin_type, iso, bq, bn, sq, sn, n_open) = p[:11]
            side = p[11] if len(p) > 11 else BOTH
            sym = engine.symbols[symbol]
            pos = Position(symbol, leverage, sym.spec.taker_fee, rules, side, sym.asset,
                           sym.contract_size)
            acct.positions[pos.key] = pos
            pos.qty, pos.cost, pos.margin_type, pos.isolated_margin = qty, cost, margin_type, iso
            pos.buys = OpenOrders(bq, bn)  # their cost and open loss: from the orders, below
            pos.sells = OpenOrders(sq, sn)
            pos.open_orders = n_open
    gtd = engine.orders.gtd
    for name, mark, index, last_price, sides in books:
        sym = engine.symbols[name]
        sym.mark, sym.index, sym.last_price = mark, index, last_price
        for side, orders in zip((BUY, SELL), sides):
            loaded = []
            for o in orders:
                oid, account, price, quantity, remaining, tif, reduce_only, client_id, stp = o[:9]
                position_side, cost_price, loss_unit, good_till = \
                    o[9] if len(o) > 9 else (BOTH, 0, 0, 0)
                order = Order(oid, account, name, side, price, quantity, tif, "LIMIT",
                              reduce_only, client_id, stp, False, position_side, cost_price,
                              loss_unit, good_till)
                order.remaining = remaining
                order.acct = engine.accounts[account]
                pos = order.acct.positions[position_key(name, position_side)]
                order.pos = pos
                loaded.append(order)
                if good_till:
                    gtd.add((good_till, oid, name))
                if cost_price or loss_unit:
                    totals = pos.buys if side == BUY else pos.sells
                    totals.add_costs(remaining, cost_price, loss_unit)
            sym.book.load_side(side, loaded)
    for acct in engine.accounts.values():
        acct.rederive()  # order margins, what is held per asset, the cross positions
    engine.restored()
    ledger.fees_collected, ledger.insurance_fund = fees, insurance
    ledger.total_deposits, ledger.total_withdrawals = deposits, withdrawals
    ledger.next_order_id, ledger.next_trade_id = next_order, next_trade
    if len(snap.state) > 8 and snap.state[8] is not None:  # index and funding (pricing)
        engine.pricing.restore(snap.state[8])
    if len(snap.state) > 9 and snap.state[9] is not None:  # leveraged tokens, spot wallets
        engine.tokens.restore(snap.state[9])
    if len(snap.state) > 10 and snap.state[10] is not None:  # conditional orders
        engine.conditional.restore(snap.state[10])
    if len(snap.state) > 11 and snap.state[11] is not None:  # per-asset totals, asset indices
        engine.restore_assets(snap.state[11])
    return engine
