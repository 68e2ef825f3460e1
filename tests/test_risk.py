"""Risk: margin ratio, liquidation price, margin modes, liquidation and the consumer."""
import pytest

from engine.core import catalogue as catalogue_mod
from engine.views import positions as queries
from engine.core import risk
from engine.core import EngineConfig
from engine.core.fixed import SCALE, round_half_up
from engine.sequencer import Pipeline
from engine.core.timeutil import parse_iso_ms
from proto import commands as C
from proto import events as V
from tests.harness import Harness, d, kinds, rejection, trades

BTC, ETH = "BTCUSDT", "ETHUSDT"
NO_FEES = [{"symbol": s, "makerFee": "0", "takerFee": "0"} for s in (BTC, ETH)]


class RiskHarness(Harness):
    """A harness whose commands go through the pipeline, so the risk consumer acts."""

    def __init__(self, catalogue=None, time=0):
        super().__init__(catalogue, EngineConfig(checkpoint_every=0), time)
        self.pipeline = Pipeline(self.engine)
        self.pipeline.sequencer.seq = 0

    def send(self, cmd, time=None):
        if time is not None:
            self.time = time
        records = self.pipeline.submit(cmd, self.time)
        self.seq = records[-1].seq
        events = [e for r in records for e in r.events]
        self.records.extend((r.seq, r.time, r.command, r.events) for r in records)
        return events


def cat(*symbol_overrides):
    return catalogue_mod.load(overrides={"symbols": list(symbol_overrides)})


# -- Binance's published example, through a real account --------------------------------------
def test_published_liquidation_prices_and_maintenance_margins_to_the_cent():
    c = cat({"symbol": BTC, "tickSize": "0.01", "makerFee": "0", "takerFee": "0"},
            {"symbol": ETH, "makerFee": "0", "takerFee": "0",
             "brackets": [{"effective": "1970-01-01T00:00:00Z", "table": "ETHUSDT-seed001-old"}]})
    h = Harness(c)
    h.account(1, "1535443.01")
    h.account(2, "100000000")
    h.leverage(1, ETH, 4)  # 5.37M of ETH notional needs <= 4x on this table
    h.leverage(2, ETH, 4)
    assert rejection(h.order(2, BTC, "SELL", "109.488", "32481.98")) is None
    assert rejection(h.order(2, ETH, "SELL", "3683.979", "1456.84")) is None
    assert rejection(h.order(1, BTC, "BUY", "109.488", "32481.98")) is None
    assert rejection(h.order(1, ETH, "BUY", "3683.979", "1456.84")) is None
    h.mark(BTC, "31967.27")
    h.mark(ETH, "1335.18")
    rows = {r["symbol"]: r for r in queries.position_risk(h.engine, 1)}
    cent = lambda s: round_half_up(d(s), 2)  # noqa: E731
    assert cent(rows[BTC]["liquidationPrice"]) == d("26316.89")
    assert cent(rows[ETH]["liquidationPrice"]) == d("1153.26")
    assert d(rows[BTC]["maintMargin"]) == d("71200.811444")  # Binance: 71,200.81144
    assert d(rows[ETH]["maintMargin"]) == d("356512.508122")  # Binance: 356,512.508
    assert d(rows[BTC]["unRealizedProfit"]) == d("-56354.56848")  # UPNL1 of the ETH line
    assert d(rows[ETH]["unRealizedProfit"]) == d("-448192.88514")  # UPNL1 of the BTC line


def test_published_liquidation_prices_from_the_formula_alone():
    c = catalogue_mod.load()
    btc = c.spec(BTC).table_at(0)
    q = d("109.488")
    lp = risk.liquidation_price(btc, d("1535443.01"), d("356512.508"), d("-448192.89"), q,
                                q * d("32481.98") // SCALE)
    assert round_half_up(lp, 2) == d("26316.89")
    eth = c.tables["ETHUSDT-seed001-old"]
    q = d("3683.979")
    lp = risk.liquidation_price(eth, d("1535443.01"), d("71200.81144"), d("-56354.57"), q,
                                q * d("1456.84") // SCALE)
    assert round_half_up(lp, 2) == d("1153.26")


# -- margin ratio at the liquidation price ----------------------------------------------------
def _ratio_at(h, account, symbol, mark):
    h.mark(symbol, mark)
    acct = h.engine.accounts[account]
    pos = acct.positions[symbol]
    return (h.engine.ledger.isolated_risk(pos) if pos.margin_type == "ISOLATED"
            else h.engine.ledger.cross_risk(acct)).ratio


@pytest.mark.parametrize("side", ["BUY", "SELL"])
@pytest.mark.parametrize("mode", ["CROSSED", "ISOLATED"])
@pytest.mark.parametrize("size", ["small", "boundary"])
def test_margin_ratio_is_100_percent_at_the_liquidation_price(side, mode, size):
    # boundary: 34 BTC long (1.02M, tier 4) liquidates below 1M (tier 3); 33 BTC short (990k,
    # tier 3) liquidates above 1M (tier 4), so the LP's tier differs from the entry's
    qty = {"small": "1", "boundary": "34" if side == "BUY" else "33"}[size]
    h = Harness(cat({"symbol": BTC, "tickSize": "0.01"}))
    h.account(1, str(int(qty) * 30000 // 5 + 1000))
    h.account(2, "100000000")
    if mode == "ISOLATED":
        h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="ISOLATED"))
    h.leverage(1, BTC, 5)
    other = "SELL" if side == "BUY" else "BUY"
    h.order(2, BTC, other, qty, "30000")
    assert rejection(h.order(1, BTC, side, qty, "30000")) is None
    h.mark(BTC, "30000")
    pos = h.position(1, BTC)
    table = h.engine.symbols[BTC].table_at(0)
    tier_at_entry = table.tier_for(abs(pos.qty) * d("30000") // SCALE)
    lp_text = queries.position_risk(h.engine, 1, BTC)[0]["liquidationPrice"]
    lp = d(lp_text)
    assert lp > 0
    tier_at_lp = table.tier_for(abs(pos.qty) * lp // SCALE)
    assert (tier_at_lp.bracket != tier_at_entry.bracket) == (size == "boundary")
    ratio = _ratio_at(h, 1, BTC, lp_text)
    assert abs(ratio - SCALE) <= 10  # 100 % to within 1e-7 (the LP is rounded to 1e-8)


# -- the 100 % boundary, re-check and decline ---------------------------------------------------
def _boundary_setup():
    h = RiskHarness(cat(*NO_FEES))
    h.account(1, "1000")
    h.account(2, "1000000")
    h.leverage(1, BTC, 50)
    h.order(2, BTC, "SELL", "1", "30000")
    h.order(1, BTC, "BUY", "1", "30000")
    return h


def test_99_99_percent_is_not_liquidated_100_percent_is():
    h = _boundary_setup()
    # balance = mark - 29,000; MM = 0.4 % x mark; MR = 100 % at mark 29,116.4658...
    ev = h.mark(BTC, "29116.47")
    ratio = h.engine.ledger.cross_risk(h.engine.accounts[1]).ratio
    assert d("0.9999") <= ratio < SCALE
    assert not any(isinstance(e, (V.LiquidationStarted, V.LiquidationDeclined)) for e in ev)
    assert any(isinstance(e, V.MarginCallIssued) for e in ev)  # above 80 %
    ev = h.mark(BTC, "29116.46")
    started = [e for e in ev if isinstance(e, V.LiquidationStarted)]
    assert started and started[0].account == 1
    assert h.position(1, BTC).qty == 0
    assert h.wallet(1) >= 0


def test_a_liquidate_that_arrives_after_recovery_is_declined():
    h = _boundary_setup()
    h.mark(BTC, "29500")
    before = h.engine.state_hash()
    ev = h.send(C.Liquidate(account=1))
    assert kinds(ev) == ["LiquidationDeclined"]
    assert h.engine.state_hash() == before
    ev = h.send(C.Liquidate(account=1, symbol=BTC))  # not isolated: nothing to liquidate
    assert kinds(ev) == ["LiquidationDeclined"]


def test_stale_consumer_request_is_declined_by_the_core():
    h = _boundary_setup()
    h.engine.handle(C.SetMarkPrice(symbol=BTC, mark_price=d("29000")), 100, 0)  # core only
    h.engine.handle(C.SetMarkPrice(symbol=BTC, mark_price=d("29900")), 101, 0)  # recovered
    ev = h.engine.handle(C.Liquidate(account=1), 102, 0)
    assert kinds(ev) == ["LiquidationDeclined"]


def test_liquidation_closes_on_the_book_and_charges_the_fee():
    h = _boundary_setup()
    h.order(2, BTC, "BUY", "1", "29200")  # a bid above the bankruptcy price (29,000)
    ev = h.mark(BTC, "29100")
    names = kinds(ev)
    assert "LiquidationStarted" in names and "Trade" in names and "AdlTrade" not in names
    trade = next(e for e in ev if isinstance(e, V.Trade))
    assert trade.price == d("29200") and trade.taker_fee == 0
    fee = next(e for e in ev if isinstance(e, V.LiquidationFeeCharged))
    # 1.25 % of 29,200 = 365, capped at what was left: 1,000 + (29,200 - 30,000) = 200
    assert fee.amount == d("200") and h.wallet(1) == 0 and h.engine.ledger.insurance_fund == d("200")


def test_liquidation_without_liquidity_is_auto_deleveraged_at_the_bankruptcy_price():
    h = _boundary_setup()
    ev = h.mark(BTC, "29100")
    adl = [e for e in ev if isinstance(e, V.AdlTrade)]
    assert adl and adl[0].counterparty == 2 and adl[0].price == d("29000")
    assert h.position(1, BTC).qty == 0 and h.position(2, BTC).qty == 0
    assert h.wallet(1) == 0


def test_a_gap_past_bankruptcy_is_paid_by_the_insurance_fund_then_adl():
    h = _boundary_setup()  # account 1: long 1 BTC @ 30,000 with 1,000: bankrupt at 29,000
    h.send(C.FundInsurance(amount=d("300")))
    h.order(2, BTC, "BUY", "0.5", "28500")  # the only bid, 500 below the bankruptcy price
    ev = h.mark(BTC, "28700")  # a gap: the margin balance is already -300
    fills = [e for e in ev if isinstance(e, V.Trade)]
    # the fund can pay 300 of loss at 500 per BTC: 0.6 BTC, but the bid holds only 0.5 (250)
    assert [(f.price, f.quantity) for f in fills] == [(d("28500"), d("0.5"))]
    adl = [e for e in ev if isinstance(e, V.AdlTrade)]
    assert [(a.price, a.quantity, a.counterparty) for a in adl] == [(d("29000"), d("0.5"), 2)]
    covered = [e for e in ev if isinstance(e, V.InsuranceCovered)]
    assert [c.amount for c in covered] == [d("250")]
    assert h.wallet(1) == 0 and h.position(1, BTC).qty == 0
    assert h.engine.ledger.insurance_fund == d("50")


def test_without_an_insurance_fund_the_whole_gap_is_auto_deleveraged():
    h = _boundary_setup()
    h.order(2, BTC, "BUY", "1", "28000")
    ev = h.mark(BTC, "28500")
    assert not [e for e in ev if isinstance(e, V.Trade)]
    assert [(a.price, a.quantity) for a in ev if isinstance(a, V.AdlTrade)] == [(d("29000"), d("1"))]
    assert h.wallet(1) == 0 and h.engine.ledger.insurance_fund == 0


def test_isolated_liquidation_touches_only_that_position():
    h = RiskHarness(cat(*NO_FEES))
    h.account(1, "10000")
    h.account(2, "1000000")
    h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="ISOLATED"))
    h.leverage(1, BTC, 50)
    h.order(2, BTC, "SELL", "1", "30000")
    h.order(1, BTC, "BUY", "1", "30000")
    pos = h.position(1, BTC)
    assert pos.isolated_margin == d("600")  # 30,000 / 50
    h.order(1, ETH, "BUY", "1", "1000")  # a resting cross order elsewhere
    ev = h.mark(BTC, "29300")
    started = [e for e in ev if isinstance(e, V.LiquidationStarted)]
    assert started and started[0].symbol == BTC
    assert h.position(1, BTC).qty == 0
    assert h.position(1, ETH).open_orders == 1  # untouched
    assert h.wallet(1) == d("10000") - d("600")  # lost exactly the isolated margin


# -- margin modes and leverage rules -------------------------------------------------------------
def test_margin_type_switch_only_when_flat_and_without_orders():
    h = Harness()
    h.account(1)
    h.account(2)
    assert rejection(h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="CROSSED"))) == -4046
    h.order(1, BTC, "BUY", "0.01", "29000")
    assert rejection(h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="ISOLATED"))) == -4047
    h.order(2, BTC, "SELL", "0.01", "29000")
    assert rejection(h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="ISOLATED"))) == -4048
    assert kinds(h.send(C.SetMarginType(account=1, symbol=ETH, margin_type="ISOLATED"))) == ["MarginTypeChanged"]


def test_isolated_margin_add_and_remove():
    h = Harness(cat(*NO_FEES))
    h.account(1, "10000")
    h.account(2, "1000000")
    h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="ISOLATED"))
    h.leverage(1, BTC, 10)
    assert rejection(h.send(C.AdjustIsolatedMargin(account=1, symbol=BTC, amount=d("1"), type=1))) == -4054
    h.order(2, BTC, "SELL", "1", "30000")
    h.order(1, BTC, "BUY", "1", "30000")
    assert h.position(1, BTC).isolated_margin == d("3000")
    ev = h.send(C.AdjustIsolatedMargin(account=1, symbol=BTC, amount=d("500"), type=1))
    assert kinds(ev) == ["IsolatedMarginChanged"] and ev[0].isolated_margin == d("3500")
    assert rejection(h.send(C.AdjustIsolatedMargin(account=1, symbol=BTC, amount=d("501"), type=2))) == -4051
    assert kinds(h.send(C.AdjustIsolatedMargin(account=1, symbol=BTC, amount=d("500"), type=2))) == ["IsolatedMarginChanged"]
    assert rejection(h.send(C.AdjustIsolatedMargin(account=1, symbol=BTC, amount=d("7000.01"), type=1))) == -2019
    # with an open isolated position leverage may not be lowered
    assert rejection(h.leverage(1, BTC, 5)) == -4161
    assert kinds(h.leverage(1, BTC, 20)) == ["LeverageChanged"]


def test_new_accounts_may_not_go_above_20x():
    day = 86_400_000
    h = Harness(time=100 * day)
    h.account(1, registered_at=100 * day - 59 * day)  # 59 days old
    h.account(2, registered_at=100 * day - 60 * day)  # 60 days old: allowed
    ev = h.leverage(1, BTC, 21)
    assert rejection(ev) == -4205 and ev[0].msg == ("More than 20x leverage is available 60 "
                                                    "days after Futures account registration.")
    assert kinds(h.leverage(1, BTC, 20)) == ["LeverageChanged"]
    assert kinds(h.leverage(2, BTC, 125)) == ["LeverageChanged"]


def test_young_account_above_20x_may_only_reduce():
    day = 86_400_000
    h = Harness(time=0)
    h.account(1, registered_at=-100 * day)
    h.account(2)
    h.leverage(1, BTC, 50)
    h.order(2, BTC, "SELL", "0.1", "30000")
    h.order(1, BTC, "BUY", "0.1", "30000")
    # the same account seen as young (a what-if with a longer new-account period)
    h.engine.ledger.config = EngineConfig(checkpoint_every=0, new_account_days=200)
    assert rejection(h.order(1, BTC, "BUY", "0.01", "29000")) == -2027
    assert rejection(h.order(1, BTC, "SELL", "0.05", "31000", reduce_only=True)) is None
    assert kinds(h.leverage(1, BTC, 20)) == ["LeverageChanged"]


# -- the ETHUSDT switch applies to open positions ------------------------------------------------
def test_ethusdt_switch_liquidates_at_0700_not_before():
    before = parse_iso_ms("2022-09-13T06:59:59Z")
    h = RiskHarness(cat(*NO_FEES), time=before - 3_600_000)
    h.account(1, "3000")
    h.account(2, "1000000")
    h.leverage(1, ETH, 75)
    h.order(2, ETH, "SELL", "100", "2000")
    assert rejection(h.order(1, ETH, "BUY", "100", "2000")) is None
    # balance 3,000 - 1,800 = 1,200; notional 198,200: old MM 1,138.3 (95 %), new MM 1,288.3
    ev = h.send(C.SetMarkPrice(symbol=ETH, mark_price=d("1982")), time=before)
    assert not any(isinstance(e, V.LiquidationStarted) for e in ev)
    ratio = h.engine.ledger.cross_risk(h.engine.accounts[1]).ratio
    assert round_half_up(ratio, 4) == d("0.9486")
    ev = h.send(C.SetMarkPrice(symbol=ETH, mark_price=d("1982")),
                time=parse_iso_ms("2022-09-13T07:00:00Z"))
    assert kinds(ev)[:2] == ["BracketTableSwitched", "MarkPriceUpdated"]
    started = [e for e in ev if isinstance(e, V.LiquidationStarted)]
    assert started and started[0].maint_margin == d("1288.3")
    assert h.position(1, ETH).qty == 0


# -- a seeded market swinging against leveraged accounts ----------------------------------------
def test_seeded_swings_liquidate_every_account_at_100_percent_and_conserve_money():
    import random
    rng = random.Random(5)
    h = RiskHarness()
    n = 30
    for a in range(1, n + 1):
        h.account(a, str(rng.choice([300, 500, 1000, 5000])))
    h.account(99, "100000000")  # the market maker
    h.mark(BTC, "30000")
    for a in range(1, n + 1):
        h.leverage(a, BTC, rng.choice([20, 50, 100]))
        side = rng.choice(["BUY", "SELL"])
        mm_side = "SELL" if side == "BUY" else "BUY"
        h.order(99, BTC, mm_side, "0.5", "30000")
        h.order(a, BTC, side, str(rng.choice(["0.1", "0.2", "0.3", "0.5"])), "30000")
    h.order(99, BTC, "BUY", "5", "29000")
    h.order(99, BTC, "SELL", "5", "31000")
    mark = 30000
    liquidated = set()
    for step in range(150):
        mark = max(20000, mark + rng.randint(-150, 150) + (rng.choice([-900, 900]) if step % 40 == 39 else 0))
        ev = h.mark(BTC, str(mark))
        liquidated |= {e.account for e in ev if isinstance(e, V.LiquidationStarted)}
        if step == 60:
            h.send(C.FundInsurance(amount=d("500")))
        e = h.engine
        for acct in e.accounts.values():
            assert acct.wallet >= 0
            assert not e.ledger.cross_risk(acct).liquidatable  # nobody stays at >= 100 %
        costs = sum(p.cost for a in e.accounts.values() for p in a.positions.values())
        wallets = sum(a.wallet for a in e.accounts.values())
        assert wallets + e.ledger.fees_collected + e.ledger.insurance_fund - costs == e.ledger.total_deposits - e.ledger.total_withdrawals
        longs = sum(p.qty for a in e.accounts.values() for p in a.positions.values() if p.qty > 0)
        shorts = -sum(p.qty for a in e.accounts.values() for p in a.positions.values() if p.qty < 0)
        assert longs == shorts
    assert len(liquidated) >= 5


# -- the consumer: restart and catch-up ----------------------------------------------------------
def _recorded_session():
    h = RiskHarness()
    for a in range(1, 8):
        h.account(a, "800")
    h.account(50, "10000000")
    for a in range(1, 8):
        h.leverage(a, BTC, 50)
        h.order(50, BTC, "SELL" if a % 2 else "BUY", "1", "30000")
        h.order(a, BTC, "BUY" if a % 2 else "SELL", "1", "30000")
    for i, m in enumerate([29900, 29700, 30100, 30500, 29400, 30800, 29000, 31000]):
        h.mark(BTC, str(m))
    from proto.records import LogRecord
    return [LogRecord(seq=s, time=t, command=c, events=ev) for s, t, c, ev in h.records]


def test_consumer_restarted_mid_stream_catches_up_to_the_same_projection():
    from engine.riskconsumer import RiskConsumer
    c = catalogue_mod.load()
    records = _recorded_session()
    assert any(isinstance(e, V.LiquidationStarted) for r in records for e in r.events)
    straight = RiskConsumer(c)
    for r in records:
        straight.process(r)
    half = len(records) // 2
    first = RiskConsumer(c)
    for r in records[:half]:
        first.process(r)
    resumed = RiskConsumer.restore(c, first.save())
    assert resumed.last_seq == records[half - 1].seq
    for r in records[half - 3:]:  # re-reading a few already-seen records is harmless
        resumed.process(r)
    assert resumed.projection_hash() == straight.projection_hash()
    late = RiskConsumer(c)  # a consumer that starts late reads from the beginning
    for r in records:
        late.process(r)
    assert late.projection_hash() == straight.projection_hash()


async def test_consumer_task_follows_a_log_file_and_its_liquidations_come_back(tmp_path):
    import asyncio

    from engine.core import Engine
    from engine.eventlog import LogWriter
    from engine.riskconsumer import RiskConsumer
    from engine.sequencer import Sequencer
    c = catalogue_mod.load(overrides={"symbols": NO_FEES})
    engine = Engine(c, EngineConfig(checkpoint_every=0))
    path = tmp_path / "live.log"
    seqr = Sequencer(engine, LogWriter(path, c.version, fsync=False))
    inbox: asyncio.Queue = asyncio.Queue()
    stop = asyncio.Event()
    consumer = RiskConsumer(c)
    task = asyncio.create_task(consumer.follow(str(path), inbox.put, stop, poll_ms=1))
    script = [C.CreateAccount(account=1, registered_at=0), C.CreateAccount(account=2, registered_at=0),
              C.Deposit(account=1, amount=d("1000")), C.Deposit(account=2, amount=d("1000000")),
              C.SetLeverage(account=1, symbol=BTC, leverage=50),
              C.NewOrder(account=2, symbol=BTC, side="SELL", type="LIMIT", quantity=d("1"),
                         price=d("30000"), time_in_force="GTC"),
              C.NewOrder(account=1, symbol=BTC, side="BUY", type="LIMIT", quantity=d("1"),
                         price=d("30000"), time_in_force="GTC"),
              C.SetMarkPrice(symbol=BTC, mark_price=d("29050"))]
    t = 10**12
    for cmd in script:
        seqr.submit(cmd, t)
    seqr.flush()
    liquidate = None
    for _ in range(20):  # margin call first, then the liquidation request
        cmd = await asyncio.wait_for(inbox.get(), timeout=5)
        if isinstance(cmd, C.Liquidate):
            liquidate = cmd
            break
    assert liquidate == C.Liquidate(account=1, symbol="")
    record = seqr.submit(liquidate, t)
    seqr.flush()
    assert any(isinstance(e, V.LiquidationStarted) for e in record.events)
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert consumer.last_seq == record.seq
    assert consumer.lag(record.seq) == 0
    assert consumer.projection.state_hash() == engine.state_hash()


# -- the consumer's trigger index agrees with evaluating everyone --------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_trigger_index_finds_exactly_what_a_full_scan_finds(seed):
    """Single-position cross accounts, isolated ones, multi-position ones and tiny positions
    (whose rounding zone is wide); marks walk in small steps and jumps. After every mark the
    consumer's flags equal those of a brute-force evaluation of every scope."""
    import random

    from engine.riskconsumer import RiskConsumer
    from engine.sequencer import Sequencer
    from engine.core import Engine
    rng = random.Random(seed)
    c = cat(*NO_FEES)
    engine = Engine(c, EngineConfig(checkpoint_every=0, default_leverage=100))
    consumer = RiskConsumer(c, engine.config)
    seqr = Sequencer(engine)

    def run(cmd):
        return consumer.process(seqr.submit(cmd, 10**12))  # commands are not executed

    run(C.SetMarkPrice(symbol=BTC, mark_price=d("30000")))
    run(C.SetMarkPrice(symbol=ETH, mark_price=d("2000")))
    run(C.CreateAccount(account=999, registered_at=0))
    run(C.Deposit(account=999, amount=d("100000000")))
    run(C.SetLeverage(account=999, symbol=BTC, leverage=10))
    run(C.SetLeverage(account=999, symbol=ETH, leverage=10))
    for a in range(1, 61):
        run(C.CreateAccount(account=a, registered_at=0))
        run(C.Deposit(account=a, amount=d(str(rng.choice([3, 5, 8, 20, 60])))))
        if a % 5 == 0:
            run(C.SetMarginType(account=a, symbol=BTC, margin_type="ISOLATED"))
        side = rng.choice(["BUY", "SELL"])
        qty = rng.choice(["0.001", "0.002", "0.01"])
        other = "SELL" if side == "BUY" else "BUY"
        run(C.NewOrder(account=999, symbol=BTC, side=other, type="LIMIT", quantity=d(qty),
                       price=d("30000"), time_in_force="GTC"))
        run(C.NewOrder(account=a, symbol=BTC, side=side, type="LIMIT", quantity=d(qty),
                       price=d("30000"), time_in_force="GTC"))
        if a % 7 == 0:  # a second cross position: always evaluated in full
            run(C.NewOrder(account=999, symbol=ETH, side="SELL", type="LIMIT", quantity=d("0.01"),
                           price=d("2000"), time_in_force="GTC"))
            run(C.NewOrder(account=a, symbol=ETH, side="BUY", type="LIMIT", quantity=d("0.01"),
                           price=d("2000"), time_in_force="GTC"))
    ever_liquidatable: set = set()

    def brute():
        called = set()
        for aid, acct in engine.accounts.items():
            scopes = [("", engine.ledger.cross_risk(acct))] + [
                (s, engine.ledger.isolated_risk(p)) for s, p in acct.positions.items()
                if p.margin_type == "ISOLATED" and p.qty]
            for scope, fig in scopes:
                if fig.margin_call:
                    called.add((aid, scope))
                if fig.liquidatable:
                    ever_liquidatable.add((aid, scope))
        return called

    assert brute() == consumer.called
    mark = 30000 * SCALE
    for step in range(300):
        move = rng.choice([1, 10, 1000, 10**6, 10**8, 3 * 10**9])  # 1e-8 up to 30 USDT
        mark += rng.choice([-1, 1]) * move + (rng.choice([-1, 1]) * 4 * 10**10 if step % 97 == 96 else 0)
        run(C.SetMarkPrice(symbol=BTC, mark_price=mark))
        if step % 50 == 25:
            run(C.SetMarkPrice(symbol=ETH, mark_price=d(str(rng.choice([1900, 2000, 2100])))))
        assert consumer.called == brute(), step
        assert consumer.requested == ever_liquidatable, step
    assert len(ever_liquidatable) >= 5  # the walk really crosses the levels


# -- found in review ---------------------------------------------------------------------------
def test_a_position_closed_below_bankruptcy_leaves_no_negative_wallet():
    """Closing a cross position at a loss larger than the cross balance is not margin-checked;
    the negative balance (no MM left) is liquidatable, and the insurance fund covers it."""
    h = RiskHarness()
    h.account(1, "1200")
    h.account(99, "10000000")
    h.mark(BTC, "20000")
    h.mark(ETH, "1600")
    h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="ISOLATED"))
    h.order(99, BTC, "SELL", "1", "20000")
    assert rejection(h.order(1, BTC, "BUY", "1", "20000")) is None
    h.order(99, ETH, "SELL", "1", "1600")
    assert rejection(h.order(1, ETH, "BUY", "1", "1600")) is None
    h.order(99, ETH, "BUY", "1", "1360")  # the band's lowest price: mark x 0.85
    ev = h.order(1, ETH, "SELL", "1", "1360", reduce_only=True)
    assert any(isinstance(e, V.InsuranceCovered) for e in ev)
    assert h.wallet(1) >= h.position(1, BTC).isolated_margin >= 0
    h.order(99, BTC, "BUY", "1", "19000")
    h.mark(BTC, "19040")  # the isolated position goes too
    assert h.position(1, BTC).qty == 0 and h.wallet(1) >= 0


def test_market_orders_do_not_fill_beyond_the_price_band():
    h = Harness()
    # Binance's cost of a market buy: best ask x 1.0005 = 22,011 / 20 + open loss
    # (22,011 - mark 20,000) = 3,111.55
    h.account(1, "3111.55")
    h.account(99, "10000000")
    h.mark(BTC, "20000")
    h.order(99, BTC, "SELL", "0.5", "22000")
    h.order(99, BTC, "SELL", "1", "30000")  # far above mark x 1.15 = 23,000
    ev = h.order(1, BTC, "BUY", "1")
    assert [(t.price, t.quantity) for t in trades(ev)] == [(d("22000"), d("0.5"))]
    assert isinstance(ev[-1], V.OrderExpired) and ev[-1].quantity == d("0.5")


def test_a_market_order_whose_best_price_is_outside_the_band_is_rejected():
    h = Harness()
    h.account(1, "100000")
    h.account(99, "10000000")
    h.mark(BTC, "20000")
    h.order(99, BTC, "SELL", "1", "23000.1")  # just above mark x 1.15
    h.order(99, BTC, "BUY", "1", "16999.9")  # just below mark x 0.85
    for side in ("BUY", "SELL"):
        ev = h.order(1, BTC, side, "0.1")
        assert rejection(ev) == -4131 and ev[0].msg == ("The counterparty's best price does "
                                                        "not meet the PERCENT_PRICE filter limit")
