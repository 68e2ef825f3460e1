"""Money conservation per asset over random sessions: USDT, BUSD, BTC and ETH wallets,
USD-M contracts margined in USDT and BUSD, COIN-M contracts margined in BTC and ETH, accounts in
Single-Asset and Multi-Assets mode, index moves and crashes (liquidations, the insurance fund,
auto-exchange), funding settlements and withdrawals, with the risk consumer inline.

After every command, for every asset A:
    sum of wallets in A - sum of the costs of positions margined in A + fees in A
        + insurance fund of A + the venue's auto-exchange position in A
    == deposits of A - withdrawals of A
and every auto-exchange balances at its recorded index prices (what the account gave is worth
at least what it got, by less than one unit of what it gave); long open interest equals short.
At the end the state rebuilt from the events, the state restored from a snapshot and a re-drive
of the recorded commands all give the live state hash, the events byte for byte."""
from __future__ import annotations

import random

import msgspec
import pytest

from engine.core import Engine, EngineConfig, snapshot
from engine.core.fixed import SCALE
from engine.core.timeutil import parse_iso_ms
from proto import commands as C
from proto import events as V
from tests.harness import PipelineHarness, check_derived

T0 = parse_iso_ms("2024-03-01T05:00:00Z")
ASSETS = ("USDT", "BUSD", "BTC", "ETH")
# symbol -> (base price key, tick, step, minimum quantity in steps, maximum in steps)
SYMBOLS = {
    "BTCUSDT": ("BTC", 10_000_000, 100_000, 1, 300),
    "BTCBUSD": ("BTC", 10_000_000, 100_000, 1, 300),
    "ETHUSDT": ("ETH", 1_000_000, 100_000, 1, 3000),
    "BTCUSD_PERP": ("BTC", 10_000_000, SCALE, 1, 400),
    "ETHUSD_PERP": ("ETH", 1_000_000, SCALE, 1, 900),
}
TRADERS = (1, 2, 3, 4, 5, 6)
MAKERS = (7, 8)
_encode = msgspec.msgpack.Encoder().encode


def totals(engine: Engine, asset: str) -> tuple[int, int]:
    ledger = engine.ledger
    lhs = 0
    for acct in engine.accounts.values():
        lhs += acct.balance(asset)
        for pos in acct.positions.values():
            if pos.asset == asset:
                lhs -= pos.cost
    if asset == "USDT":
        lhs += ledger.fees_collected + ledger.insurance_fund
        rhs = ledger.total_deposits - ledger.total_withdrawals
    else:
        lhs += ledger.other_fees.get(asset, 0) + ledger.other_insurance.get(asset, 0)
        rhs = ledger.other_deposits.get(asset, 0) - ledger.other_withdrawals.get(asset, 0)
    lhs += ledger.exchanged.get(asset, 0)
    return lhs, rhs


def check(engine: Engine, events: list[V.Event]) -> None:
    for asset in ASSETS:
        lhs, rhs = totals(engine, asset)
        assert lhs == rhs, f"{asset} not conserved: {lhs} != {rhs}"
    for ev in events:
        if isinstance(ev, V.AssetExchanged):
            got = ev.amount * ev.index_price
            gave = ev.from_amount * ev.from_index_price
            assert got <= gave < got + ev.from_index_price, ev
        elif isinstance(ev, V.LiquidationStarted) and not ev.symbol:
            # a liquidated account never ends below zero: in the pool's asset, or in any asset
            # of a Multi-Assets account (auto-exchange, then the insurance fund)
            acct = engine.accounts[ev.account]
            assets = acct.assets() if ev.asset == "USD" else [ev.asset]
            assert all(acct.balance(a) >= 0 for a in assets), (ev, acct.balances)
    check_derived(engine)
    longs: dict[str, int] = {}
    shorts: dict[str, int] = {}
    for acct in engine.accounts.values():
        for pos in acct.positions.values():
            if pos.qty > 0:
                longs[pos.symbol] = longs.get(pos.symbol, 0) + pos.qty
            elif pos.qty < 0:
                shorts[pos.symbol] = shorts.get(pos.symbol, 0) - pos.qty
    assert longs == shorts


def deposit(h: PipelineHarness, aid: int, asset: str, amount: int) -> list[V.Event]:
    return h.send(C.Deposit(account=aid, amount=amount, asset=asset))


def session(seed: int, steps: int) -> tuple[PipelineHarness, dict[str, int]]:
    rng = random.Random(seed)
    h = PipelineHarness(time=T0)
    for aid in TRADERS + MAKERS:
        h.send(C.CreateAccount(account=aid, registered_at=0))
    for aid in MAKERS:
        for asset, amount in (("USDT", 50_000_000), ("BUSD", 50_000_000), ("BTC", 2000),
                              ("ETH", 30000)):
            deposit(h, aid, asset, amount * SCALE)
    for aid in TRADERS:
        if aid < 5:  # Single-Asset traders hold every asset; the Multi-Assets ones only coins
            deposit(h, aid, "USDT", rng.randint(500, 3_000) * SCALE)
            deposit(h, aid, "BUSD", rng.randint(300, 2_000) * SCALE)
        deposit(h, aid, "BTC", rng.randint(2, 20) * SCALE // 100)
        deposit(h, aid, "ETH", rng.randint(2, 20) * SCALE // 10)
        for symbol in SYMBOLS:
            h.send(C.SetLeverage(account=aid, symbol=symbol, leverage=rng.choice((20, 50))))
    for asset in ("USDT", "BUSD", "BTC", "ETH"):
        h.send(C.FundInsurance(amount=(1000 if asset in ("BTC", "ETH") else 100_000) * SCALE,
                               asset=asset))
    prices = {"BTC": 30_000 * SCALE, "ETH": 2_000 * SCALE}
    bias = {(aid, s): rng.choice(("BUY", "SELL")) for aid in TRADERS for s in SYMBOLS}

    def feed() -> list[V.Event]:
        b, e = prices["BTC"], prices["ETH"]
        return h.send(C.SetIndexPrices(prices={"BTCUSDT": b, "BTCBUSD": b, "BTCUSD": b,
                                               "ETHUSDT": e, "ETHUSD": e}))
    check(h.engine, feed())
    for aid in (5, 6):  # Multi-Assets from the start
        h.send(C.SetMultiAssetsMargin(account=aid, multi_assets_margin=True))
    for _ in range(steps):
        roll = rng.random()
        symbol = rng.choice(list(SYMBOLS))
        base, tick, step, lo, hi = SYMBOLS[symbol]
        mark = h.engine.symbols[symbol].mark or prices[base]
        if roll < 0.35:  # makers quote around the mark
            aid = rng.choice(MAKERS)
            side = rng.choice(("BUY", "SELL"))
            off = rng.randint(-40, 40) * mark // 10_000
            price = max((mark + off) // tick * tick, tick)
            events = h.send(C.NewOrder(account=aid, symbol=symbol, side=side, type="LIMIT",
                                       quantity=rng.randint(lo, hi) * step, price=price,
                                       time_in_force="GTC"))
        elif roll < 0.55:  # traders take, mostly their way: limit IOC or market
            aid = rng.choice(TRADERS)
            side = bias[(aid, symbol)] if rng.random() < 0.8 else rng.choice(("BUY", "SELL"))
            qty = rng.randint(lo, 3 * hi) * step
            if rng.random() < 0.5:
                off = rng.randint(0, 60) * mark // 10_000
                price = (mark + off if side == "BUY" else mark - off) // tick * tick
                events = h.send(C.NewOrder(account=aid, symbol=symbol, side=side, type="LIMIT",
                                           quantity=qty, price=price, time_in_force="IOC"))
            else:
                events = h.send(C.NewOrder(account=aid, symbol=symbol, side=side,
                                           type="MARKET", quantity=qty))
        elif roll < 0.65:
            aid = rng.choice(MAKERS + TRADERS)
            events = h.send(C.CancelAllOrders(account=aid, symbol=symbol))
        elif roll < 0.80:  # the index moves; sometimes a crash or a squeeze
            which = rng.choice(("BTC", "ETH"))
            move = rng.choice((-300, -150, -60, -20, 20, 60, 150, 250))
            prices[which] = max(prices[which] * (10_000 + move) // 10_000, 100 * SCALE)
            if rng.random() < 0.1:  # a crash or a squeeze
                prices[which] = prices[which] * rng.choice((7, 13)) // 10
            events = feed()
        elif roll < 0.85:
            h.time += rng.choice((600_000, 3_600_000, 4 * 3_600_000))  # funding on the way
            events = feed()
        elif roll < 0.90:
            aid = rng.choice(TRADERS)
            asset = rng.choice(ASSETS)
            events = h.send(C.Withdraw(account=aid, asset=asset,
                                       amount=rng.randint(1, 50) * SCALE // 100))
        elif roll < 0.94:
            aid = rng.choice(TRADERS)
            asset = rng.choice(ASSETS)
            amount = rng.randint(1, 20) * (SCALE // 10 if asset in ("BTC", "ETH") else 100 * SCALE)
            events = deposit(h, aid, asset, amount)
        elif roll < 0.97:
            aid = rng.choice(TRADERS)
            events = h.send(C.SetMultiAssetsMargin(
                account=aid, multi_assets_margin=not h.engine.accounts[aid].multi_assets))
        else:
            aid = rng.choice(TRADERS)
            events = h.send(C.SetLeverage(account=aid, symbol=symbol,
                                          leverage=rng.choice((5, 10, 20, 50))))
        check(h.engine, events)
    counts: dict[str, int] = {}
    for _, _, _, events in h.records:
        for ev in events:
            name = type(ev).__name__
            counts[name] = counts.get(name, 0) + 1
    return h, counts


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_money_is_conserved_per_asset_in_a_random_session(seed):
    h, counts = session(seed, 800)
    assert counts.get("Trade", 0) > 50
    for asset in ASSETS:
        assert totals(h.engine, asset)[1] > 0


def test_the_random_sessions_liquidate_and_exchange():
    """Across the seeds, the sessions reach what the checks are for."""
    seen: dict[str, int] = {}
    for seed in (1, 2, 3, 4):
        _, counts = session(seed, 800)
        for k, v in counts.items():
            seen[k] = seen.get(k, 0) + v
    for kind in ("LiquidationStarted", "FundingPaid", "MultiAssetsMarginChanged",
                 "AssetExchanged", "Withdrawn", "LiquidationFeeCharged", "InsuranceCovered",
                 "AdlTrade"):
        assert seen.get(kind, 0) > 0, (kind, seen)


def test_rebuild_restore_and_redrive_equal_live_after_a_random_session():
    h, _ = session(5, 400)
    live = h.engine.state_hash()
    config = EngineConfig(checkpoint_every=0)
    rebuilt = Engine(h.engine.catalogue, config)
    redriven = Engine(h.engine.catalogue, config)
    for seq, time, cmd, events in h.records:
        rebuilt.apply_record(seq, time, events)
        produced = redriven.handle(cmd, seq, time)
        assert _encode(produced) == _encode(events), (seq, cmd)
    assert rebuilt.state_hash() == live == redriven.state_hash()
    restored = snapshot.restore(h.engine.catalogue, snapshot.take(h.engine), config)
    assert restored.state_hash() == live
    for aid, acct in h.engine.accounts.items():  # the derived caches come back too
        other = restored.accounts[aid]
        assert other.balances == acct.balances and other.multi_assets == acct.multi_assets
        assert other.order_margin == acct.order_margin
