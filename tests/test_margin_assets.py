"""Margin assets: a wallet per asset (seed 001), Multi-Assets mode with haircuts (seed 000), its
switch and Binance's codes, the FAQ's worked example, a BTC crash liquidating an account that
holds only BTC collateral (auto-exchange), and what-if under changed collateral ratios."""
from __future__ import annotations

import json
from pathlib import Path

from engine.core import catalogue as catalogue_mod
from engine.core import collateral
from engine.core import EngineConfig
from engine.core.fixed import SCALE, fmt, round_half_up
from engine.core.timeutil import parse_iso_ms
from engine.views import markets as market_views
from engine.views import positions as views
from proto import commands as C
from proto import events as V
from replay import whatif as W
from replay.feed import run_feed
from tests.harness import Harness, PipelineHarness, d, kinds, rejection, trades

ROOT = Path(__file__).resolve().parent.parent
T = parse_iso_ms("2024-01-02T01:00:00Z")
BTC, ETH = "BTCUSDT", "ETHUSDT"
NO_FEES = [{"symbol": s, "makerFee": "0", "takerFee": "0"} for s in (BTC, ETH, "BTCBUSD")]


def fund(h: Harness, *rows: tuple[int, str, str]) -> None:
    for aid, asset, amount in rows:
        if aid not in h.engine.accounts:
            h.send(C.CreateAccount(account=aid, registered_at=0))
        assert rejection(h.send(C.Deposit(account=aid, amount=d(amount), asset=asset))) is None


def multi(h: Harness, aid: int, on: bool = True) -> list:
    return h.send(C.SetMultiAssetsMargin(account=aid, multi_assets_margin=on))


def trade(h: Harness, buyer: int, seller: int, symbol: str, qty: str, price: str) -> None:
    assert rejection(h.order(seller, symbol, "SELL", qty, price)) is None
    ev = h.order(buyer, symbol, "BUY", qty, price)
    assert rejection(ev) is None and trades(ev), ev


# == one wallet per margin asset ===================================================================
def test_a_busd_contract_draws_on_the_busd_wallet_only():
    h = Harness(catalogue_mod.load(overrides={"symbols": NO_FEES}), time=T)
    fund(h, (1, "USDT", "100000"), (2, "BUSD", "1000000"), (2, "USDT", "1000000"))
    h.mark("BTCBUSD", "30000")
    assert rejection(h.order(2, "BTCBUSD", "SELL", "1", "30000")) is None
    ev = h.order(1, "BTCBUSD", "BUY", "1", "30000")
    assert rejection(ev) == -2019 and ev[0].detail == "1500 BUSD needed, 0 available"
    fund(h, (1, "BUSD", "2000"))
    assert trades(h.order(1, "BTCBUSD", "BUY", "1", "30000"))
    acct = h.engine.accounts[1]
    ledger = h.engine.ledger
    assert ledger.available_balance(acct, "BUSD") == d("500")  # 2,000 - 30,000 / 20
    assert ledger.available_balance(acct, "USDT") == d("100000")
    # a loss in BUSD stays in BUSD: the BUSD pool is liquidated, the USDT wallet untouched
    h.mark("BTCBUSD", "28100")
    assert ledger.cross_risk(acct, "BUSD").liquidatable
    assert not ledger.cross_risk(acct, "USDT").liquidatable
    h.order(2, "BTCBUSD", "BUY", "1", "28050")
    ev = h.send(C.Liquidate(account=1, asset="BUSD"))
    (started,) = [e for e in ev if isinstance(e, V.LiquidationStarted)]
    assert started.asset == "BUSD"
    assert acct.wallet == d("100000") and acct.balance("BUSD") >= 0
    assert all(e.asset == "BUSD" for e in ev if isinstance(e, (V.LiquidationFeeCharged,
                                                                V.InsuranceCovered)))
    # the USDT scope declines: nothing of it was at risk
    ev = h.send(C.Liquidate(account=1))
    assert kinds(ev) == ["LiquidationDeclined"] and ev[0].asset == "USDT"


def test_deposits_withdrawals_and_insurance_are_per_asset():
    h = Harness(time=T)
    fund(h, (1, "BUSD", "100"), (1, "BTC", "0.5"))
    acct = h.engine.accounts[1]
    assert (acct.wallet, acct.balance("BUSD"), acct.balance("BTC")) == (0, d("100"), d("0.5"))
    ev = h.send(C.Withdraw(account=1, amount=d("0.6"), asset="BTC"))
    assert rejection(ev) == -5013 and ev[0].detail == "0.5 BTC available"
    ev = h.send(C.Withdraw(account=1, amount=d("0.2"), asset="BTC"))
    assert ev == [V.Withdrawn(account=1, amount=d("0.2"), balance=d("0.3"), asset="BTC")]
    assert rejection(h.send(C.Deposit(account=1, amount=d("1"), asset="DOGE"))) == -1130
    ev = h.send(C.FundInsurance(amount=d("2"), asset="BTC"))
    assert ev == [V.InsuranceFunded(amount=d("2"), balance=d("2"), asset="BTC")]
    ledger = h.engine.ledger
    assert ledger.other_deposits == {"BUSD": d("100"), "BTC": d("2.5")}
    assert ledger.other_withdrawals == {"BTC": d("0.2")}
    assert ledger.insurance("BTC") == d("2") and ledger.insurance_fund == 0
    rows = {r["asset"]: r for r in views.balances(h.engine, 1)}
    assert rows["BTC"]["balance"] == "0.3" and rows["BTC"]["updateTime"] == T
    assert rows["USDT"]["updateTime"] == 0  # empty: ccxt skips it


def test_rules_1_keeps_every_contract_on_the_usdt_wallet():
    h = Harness(catalogue_mod.load(overrides={"symbols": NO_FEES}),
                EngineConfig(checkpoint_every=0, rules=1), time=T)
    h.account(1, "100000")
    h.account(2, "100000")
    h.mark("BTCBUSD", "30000")
    trade(h, 1, 2, "BTCBUSD", "1", "30000")
    acct = h.engine.accounts[1]
    assert acct.positions["BTCBUSD"].asset == "USDT" and acct.balances == {}
    assert rejection(h.send(C.Deposit(account=1, amount=d("1"), asset="BUSD"))) == -1130
    assert rejection(multi(h, 1)) == -1130


# == Multi-Assets mode: the switch ================================================================
def test_the_switch_and_its_codes():
    h = Harness(catalogue_mod.load(overrides={"symbols": NO_FEES}), time=T)
    fund(h, (1, "USDT", "1000"), (2, "USDT", "10000000"))
    ev = multi(h, 1, False)
    assert rejection(ev) == -4171
    assert ev[0].msg == "Adjusted asset mode is currently set and does not need to be adjusted " \
                        "repeatedly."
    h.send(C.SetMarginType(account=1, symbol=ETH, margin_type="ISOLATED"))
    ev = multi(h, 1)
    assert rejection(ev) == -4167 and ev[0].detail == ETH
    assert ev[0].msg == "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures " \
                        "under isolated-margin mode."
    h.send(C.SetMarginType(account=1, symbol=ETH, margin_type="CROSSED"))
    h.mark(BTC, "30000")
    h.order(1, BTC, "BUY", "0.01", "29000")
    assert rejection(multi(h, 1)) == -4170
    h.send(C.CancelAllOrders(account=1, symbol=BTC))
    h.send(C.NewAlgoOrder(account=1, symbol=BTC, side="BUY", type="STOP_MARKET",
                          quantity=d("0.01"), trigger_price=d("31000")))
    assert rejection(multi(h, 1)) == -4170  # a conditional order counts
    h.send(C.CancelAllAlgoOrders(account=1, symbol=BTC))
    assert multi(h, 1) == [V.MultiAssetsMarginChanged(account=1, multi_assets_margin=True)]
    ev = h.send(C.SetMarginType(account=1, symbol=BTC, margin_type="ISOLATED"))
    assert rejection(ev) == -4168
    assert ev[0].msg == "Unable to adjust to isolated-margin mode under the Multi-Assets mode."
    assert views.multi_assets_margin(h.engine, 1) == {"multiAssetsMargin": True}
    assert multi(h, 1, False) == [V.MultiAssetsMarginChanged(account=1,
                                                             multi_assets_margin=False)]


def test_open_positions_do_not_block_the_switch_but_a_short_margin_does():
    """Binance's API has no code for open positions (-4169 is its margin check): 0.5 BTC at
    39,999 and 20x holds 999.975 USDT of 1,000; in Multi-Assets mode the same 1,000 USDT is worth
    999.9 (USDT's ratio 99.99 %): -4169."""
    h = Harness(catalogue_mod.load(overrides={"symbols": NO_FEES}), time=T)
    fund(h, (1, "USDT", "1000"), (2, "USDT", "10000000"))
    h.mark(BTC, "39999")
    trade(h, 1, 2, BTC, "0.5", "39999")
    acct = h.engine.accounts[1]
    assert h.engine.ledger.available_balance(acct) == d("0.025")
    ev = multi(h, 1)
    assert rejection(ev) == -4169 and ev[0].detail == "uniAvailable -0.075 USD"
    assert ev[0].msg == "Unable to adjust Multi-Assets Mode with insufficient margin balance " \
                        "in USDⓈ-M Futures."
    fund(h, (1, "USDT", "1"))
    assert kinds(multi(h, 1)) == ["MultiAssetsMarginChanged"]  # with the position open


def test_switching_off_with_a_negative_balance_or_a_pool_left_short():
    h = Harness(time=T)
    fund(h, (1, "BTC", "1"), (2, "BUSD", "10000000"), (2, "USDT", "10000000"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("30000")}))
    assert kinds(multi(h, 1)) == ["MultiAssetsMarginChanged"]
    h.mark("BTCBUSD", "30000")
    trade(h, 1, 2, "BTCBUSD", "0.1", "30000")  # margined by BTC collateral; the fee in BUSD
    acct = h.engine.accounts[1]
    assert acct.balance("BUSD") == -d("1.5")  # 0.05 % of 3,000: negative, allowed
    ev = multi(h, 1, False)
    assert rejection(ev) == -4172 and ev[0].detail == "BUSD"
    assert ev[0].msg == "Unable to adjust Multi-Assets Mode with a negative wallet balance of " \
                        "margin available asset in USDⓈ-M Futures account."
    fund(h, (1, "BUSD", "10"))  # 8.5 BUSD: no longer negative, but 150 of margin is needed
    ev = multi(h, 1, False)
    assert rejection(ev) == -4169 and ev[0].detail == "BUSD -141.5"
    fund(h, (1, "BUSD", "200"))
    assert kinds(multi(h, 1, False)) == ["MultiAssetsMarginChanged"]


# == Multi-Assets mode: the FAQ's worked example ==================================================
EXAMPLE = {
    "tables": {
        "example-100x": {"source": "Binance FAQ, Multi-Assets margin ratio example",
                         "tiers": [{"floor": "0", "cap": "1000000", "maxLeverage": 100,
                                    "mmr": "0.008"}]},
        "example-50x": {"source": "Binance FAQ, Multi-Assets margin ratio example",
                        "tiers": [{"floor": "0", "cap": "1000000", "maxLeverage": 50,
                                   "mmr": "0.01"}]},
    },
    "symbols": [
        {"symbol": BTC, "makerFee": "0", "takerFee": "0",
         "brackets": [{"effective": "1970-01-01T00:00:00Z", "table": "example-100x"}]},
        {"symbol": "ETHUSDC", "baseAsset": "ETH", "quoteAsset": "USDC", "marginAsset": "USDC",
         "tickSize": "0.01", "stepSize": "0.001", "minQty": "0.001", "makerFee": "0",
         "takerFee": "0",
         "brackets": [{"effective": "1970-01-01T00:00:00Z", "table": "example-50x"}]},
    ],
    "collateral": {"assets": {"USDT": {"ratio": "0.99", "askBuffer": "0.005"},
                              "USDC": {"ratio": "1"}}},
}


def test_the_faqs_worked_example_through_the_valuation_function():
    table = catalogue_mod.load(overrides=EXAMPLE).collateral.at(T)
    prices = {"USDT": d("0.99"), "USDC": d("1")}
    equity, im, mm = collateral.account_figures(
        table, prices, {"USDT": d("200"), "USDC": d("220")},
        {"USDT": d("100"), "USDC": d("240")},  # 0.5 x 20,000 / 100 and 20 x 600 / 50
        {"USDT": d("80"), "USDC": d("120")})  # 0.8 % and 1 % of the notionals
    assert (equity, equity - im, mm) == (d("416.02"), d("76.525"), d("199.596"))
    bid, ask = collateral.rates(table, "USDT", d("0.99"))
    assert (bid, ask) == (d("0.9801") * SCALE, d("0.99495") * SCALE)


def test_the_faqs_worked_example_through_real_accounts():
    """USDT index 0.99 with bid/ask buffers 0.01/0.005, USDC at 1; wallets 200 USDT and 220
    USDC: equity 416.02 (USDT available 418.13, USDC 416.02); with BTCUSDT 0.5 @ 20,000 at 100x
    (MMR 0.8 %) and ETHUSDC 20 @ 600 at 50x (MMR 1 %): uniAvailable 76.525 (USDT 76.91), the
    maintenance 199.596 USD and a margin ratio of 47.98 %."""
    h = Harness(catalogue_mod.load(overrides=EXAMPLE), time=T)
    fund(h, (1, "USDT", "200"), (1, "USDC", "220"), (2, "USDT", "1000000"),
         (2, "USDC", "1000000"))
    assert kinds(multi(h, 1)) == ["MultiAssetsMarginChanged"]
    h.send(C.SetIndexPrices(prices={"USDTUSD": d("0.99")}))
    ledger = h.engine.ledger
    acct = h.engine.accounts[1]
    uni, equity, _ = ledger.multi_assets_figures(acct)
    assert (equity, uni) == (d("416.02"), d("416.02"))
    assert round_half_up(ledger.available_balance(acct, "USDT"), 2) == d("418.13")
    assert ledger.available_balance(acct, "USDC") == d("416.02")
    h.leverage(1, BTC, 100)
    h.leverage(1, "ETHUSDC", 50)
    h.mark(BTC, "20000")
    h.mark("ETHUSDC", "600")
    trade(h, 1, 2, BTC, "0.5", "20000")
    trade(h, 1, 2, "ETHUSDC", "20", "600")
    uni, equity, mm = ledger.multi_assets_figures(acct)
    assert (equity, uni, mm) == (d("416.02"), d("76.525"), d("199.596"))
    assert round_half_up(ledger.available_balance(acct, "USDT"), 2) == d("76.91")
    assert ledger.available_balance(acct, "USDC") == d("76.525")
    figures = ledger.cross_risk(acct)
    assert round_half_up(figures.ratio * 100, 2) == d("47.98")
    info = views.account_info(h.engine, 1)
    assert (info["totalMarginBalance"], info["availableBalance"], info["totalMaintMargin"],
            info["multiAssetsMargin"]) == ("416.02", "76.525", "199.596", True)
    rows = {r["asset"]: r for r in info["assets"]}
    assert rows["USDT"]["availableBalance"] == rows["USDC"]["availableBalance"] == "76.525"
    assert rows["USDT"]["walletBalance"] == "200" and rows["USDC"]["walletBalance"] == "220"
    # every USD-M contract of any asset shares the pool: 76.525 USD buys 3.8 ETHUSDC at 600 / 50
    ev = h.order(1, "ETHUSDC", "BUY", "6.4", "600")  # 76.8 USDC of margin
    assert rejection(ev) == -2019
    assert rejection(h.order(1, "ETHUSDC", "BUY", "6.3", "600")) is None  # 75.6
    index = views.asset_index(h.engine, "USDTUSD")
    assert (index["index"], index["bidBuffer"], index["askBuffer"], index["bidRate"],
            index["askRate"]) == ("0.99", "0.01", "0.005", "0.9801", "0.99495")


def test_collateral_assets_in_exchange_info():
    h = Harness(time=T)
    assets = {a["asset"]: a for a in market_views.margin_assets(h.engine)}
    assert assets["BTC"] == {"asset": "BTC", "marginAvailable": True, "autoAssetExchange": "0"}
    assert {"USDT", "BUSD", "USDC", "BTC", "ETH", "BNB"} <= set(assets)
    table = h.engine.catalogue.collateral.at(T)
    assert {a: fmt(r.ratio) for a, r in table.assets.items() if a in ("BTC", "USDT", "BUSD")} \
        == {"BTC": "0.95", "USDT": "0.9999", "BUSD": "1"}
    assert "2021-05-28" in table.source


# == Multi-Assets mode: a BTC crash ===============================================================
def crash_setup(catalogue=None) -> PipelineHarness:
    """Account 10 holds 1 BTC and nothing else, in Multi-Assets mode, and buys 100 ETHUSDT at
    2,000 with 20x (200,000 USDT of notional, 1,300 USDT of maintenance); the taker fee (100
    USDT) leaves its USDT wallet at -100. Account 20 makes the market and bids 1,990."""
    h = PipelineHarness(catalogue, time=T)
    fund(h, (10, "BTC", "1"), (20, "USDT", "10000000"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("30000"), ETH: d("2000")}))
    assert kinds(multi(h, 10)) == ["MultiAssetsMarginChanged"]
    assert rejection(h.order(20, ETH, "SELL", "100", "2000")) is None
    assert trades(h.order(10, ETH, "BUY", "100", "2000"))
    assert h.engine.accounts[10].wallet == -d("100")
    assert rejection(h.order(20, ETH, "BUY", "100", "1990")) is None
    return h


def test_a_btc_crash_liquidates_an_account_holding_only_btc_collateral():
    h = crash_setup()
    ledger = h.engine.ledger
    acct = h.engine.accounts[10]
    # 1 BTC at 30,000 counts 28,500 (95 %): equity 28,400 USD against 1,300 of maintenance
    assert ledger.cross_risk(acct) == ledger.cross_risk(acct, "BTC")
    figures = ledger.cross_risk(acct)
    assert (figures.margin_balance, figures.maint_margin) == (d("28400"), d("1300"))
    # step 1: BTC at 2,000: 1,900 - 100 = 1,800 USD, 72 %: nothing
    ev = h.send(C.SetIndexPrices(prices={"BTCUSD": d("2000")}))
    assert not [e for e in ev if isinstance(e, (V.MarginCallIssued, V.LiquidationStarted))]
    # step 2: BTC at 1,700: 1,615 - 100 = 1,515 USD, 85.8 %: a margin call, in USD
    ev = h.send(C.SetIndexPrices(prices={"BTCUSD": d("1700")}))
    (call,) = [e for e in ev if isinstance(e, V.MarginCallIssued)]
    assert (call.account, call.asset, fmt(round_half_up(call.margin_ratio, 4))) == \
        (10, "USD", "0.8581")
    # step 3: BTC at 1,450: 1,377.5 - 100 = 1,277.5 < 1,300: liquidated, though ETH never moved
    ev = h.send(C.SetIndexPrices(prices={"BTCUSD": d("1450")}))
    assert h.engine.symbols[ETH].mark == d("2000")
    seen = [k for k in kinds(ev) if k not in ("IndexPriceUpdated", "MarkPriceUpdated")]
    assert seen == ["AssetIndexUpdated", "LiquidationStarted", "OrderAccepted", "Trade",
                    "LiquidationFeeCharged", "AssetExchanged"]
    get = {type(e).__name__: e for e in ev}
    started = get["LiquidationStarted"]
    assert (started.asset, started.maint_margin, started.margin_balance) == \
        ("USD", d("1300"), d("1277.5"))
    # the bankruptcy price: the account's net value at the index (1,450 - 100 USD) is zero at
    # (200,000 - 1,350) / 100 = 1,986.50; the bid at 1,990 takes it
    order = get["OrderAccepted"]
    assert (order.side, order.price, order.liquidation) == ("SELL", d("1986.5"), True)
    trade_ = get["Trade"]
    assert (trade_.price, trade_.taker_realized_pnl) == (d("1990"), -d("1000"))
    # the liquidation fee (1.25 % of 199,000) is capped by the 350 USD the account had left
    assert get["LiquidationFeeCharged"].amount == d("350")
    assert get["LiquidationFeeCharged"].asset == "USDT"
    # USDT stood at -1,450: auto-exchange sells BTC at its index, exactly
    assert get["AssetExchanged"] == V.AssetExchanged(
        account=10, asset="USDT", amount=d("1450"), from_asset="BTC", from_amount=d("1"),
        index_price=d("1"), from_index_price=d("1450"))
    assert (acct.wallet, acct.balance("BTC"), acct.positions[ETH].qty) == (0, 0, 0)
    assert ledger.insurance_fund == d("350")
    assert ledger.exchanged == {"BTC": d("1"), "USDT": -d("1450")}


def test_auto_exchange_covers_from_several_assets_in_proportion():
    balances = {"USDT": -d("1000"), "BTC": d("0.05"), "ETH": d("1"), "BUSD": d("0")}
    prices = {"USDT": d("1"), "BTC": d("20000"), "ETH": d("1000"), "BUSD": d("1")}
    plan = collateral.exchange_plan(balances, prices, "USDT")
    # 1,000 USD of BTC and 1,000 of ETH: half each
    assert plan == [("BTC", d("0.025"), d("500")), ("ETH", d("0.5"), d("500"))]
    for source, given, credited in plan:
        assert credited * prices["USDT"] <= given * prices[source] < \
            credited * prices["USDT"] + prices[source]
    # more debt than collateral: everything is converted, the rest is the insurance fund's
    plan = collateral.exchange_plan({**balances, "USDT": -d("5000")}, prices, "USDT")
    assert plan == [("BTC", d("0.05"), d("1000")), ("ETH", d("1"), d("1000"))]


# == what-if under other collateral ratios ========================================================
def test_whatif_with_a_higher_btc_haircut_lists_who_would_have_been_liquidated(tmp_path):
    """replay/examples/btc-collateral-session.jsonl: the crash account's BTC falls to 1,600;
    at 95 % it is margin-called and survives (1,420 USD against 1,300); had BTC's haircut been
    15 % (replay/examples/btc-haircut-15.json) it would have been liquidated."""
    examples = ROOT / "replay" / "examples"
    log = tmp_path / "btc.log"
    with open(examples / "btc-collateral-session.jsonl") as f, open(tmp_path / "out", "wb") as out:
        result = run_feed(f, out, catalogue_mod.load(), log_path=str(log))
    assert not result.errors
    overrides = W.load_overrides(examples / "btc-haircut-15.json")
    report = W.whatif(log, overrides)
    liq = report["liquidations"]
    assert liq["onlyOriginal"] == {} and list(liq["onlyWhatIf"]) == ["10:cross"]
    facts = liq["onlyWhatIf"]["10:cross"]
    assert facts["asset"] == "USD" and facts["marks"]["BTCUSD"] == "1600"
    assert list(report["marginCalls"]["both"]) == ["10:cross"]
    lines = W.summary_lines(report)
    assert any("what-if only: account 10:cross" in line for line in lines)
    assert json.loads(json.dumps(report))  # the report is plain JSON


# == the risk consumer per margin asset ===========================================================
def test_the_consumer_flags_every_margin_scope_as_a_full_scan_does():
    """USDT and BUSD pools with one position (trigger prices, scopes "" and "@BUSD"), COIN-M
    pools in BTC ("@BTC", evaluated in full), Multi-Assets accounts on BTC collateral (revalued
    when BTC's index moves); marks and the BTC index walk. After every step the consumer's
    margin calls and liquidation requests equal a brute-force evaluation of every scope."""
    import random

    from engine.core import Engine
    from engine.riskconsumer import RiskConsumer
    from engine.sequencer import Sequencer
    rng = random.Random(7)
    c = catalogue_mod.load(overrides={"symbols": NO_FEES + [
        {"symbol": "BTCUSD_PERP", "makerFee": "0", "takerFee": "0"}]})
    engine = Engine(c, EngineConfig(checkpoint_every=0))
    consumer = RiskConsumer(c, engine.config)
    seqr = Sequencer(engine)

    def run(cmd):
        return consumer.process(seqr.submit(cmd, T))  # the consumer's answers are not sequenced

    run(C.SetIndexPrices(prices={"BTCUSD": d("30000")}))
    for s in (BTC, "BTCBUSD"):
        run(C.SetMarkPrice(symbol=s, mark_price=d("30000")))
    run(C.CreateAccount(account=999, registered_at=0))
    for asset, amount in (("USDT", "100000000"), ("BUSD", "100000000"), ("BTC", "10000")):
        run(C.Deposit(account=999, amount=d(amount), asset=asset))
    plan = [("USDT", BTC, "0.01"), ("BUSD", "BTCBUSD", "0.01"), ("BTC", "BTCUSD_PERP", "3"),
            ("MULTI", BTC, "0.01")]
    for a in range(1, 41):
        asset, symbol, qty = plan[a % 4]
        run(C.CreateAccount(account=a, registered_at=0))
        amount = rng.choice([10, 14, 20, 40])  # 20x: 15 of margin for 300 of notional
        if asset == "BTC":
            run(C.Deposit(account=a, amount=amount * SCALE // 20000, asset="BTC"))
        elif asset == "MULTI":
            run(C.Deposit(account=a, amount=amount * SCALE // 20000, asset="BTC"))
            run(C.SetMultiAssetsMargin(account=a, multi_assets_margin=True))
        else:
            run(C.Deposit(account=a, amount=d(str(amount)), asset=asset))
        side = rng.choice(["BUY", "SELL"])
        other = "SELL" if side == "BUY" else "BUY"
        price = d("30000")
        run(C.NewOrder(account=999, symbol=symbol, side=other, type="LIMIT", quantity=d(qty),
                       price=price, time_in_force="GTC"))
        run(C.NewOrder(account=a, symbol=symbol, side=side, type="LIMIT", quantity=d(qty),
                       price=price, time_in_force="GTC"))
    held = {p.asset for acct in engine.accounts.values() for p in acct.positions.values()
            if p.qty}
    assert held == {"USDT", "BUSD", "BTC"}
    ever_liquidatable: set = set()

    def brute():
        called = set()
        ledger = engine.ledger
        for aid, acct in engine.accounts.items():
            if acct.multi_assets:
                scopes = [("", ledger.cross_risk(acct))]
            else:
                scopes = [("" if a == "USDT" else "@" + a, ledger.cross_risk(acct, a))
                          for a in ledger.cross_assets(acct)]
            for scope, fig in scopes:
                if fig.margin_call:
                    called.add((aid, scope))
                if fig.liquidatable:
                    ever_liquidatable.add((aid, scope))
        return called

    assert brute() == consumer.called
    marks = {BTC: 30000 * SCALE, "BTCBUSD": 30000 * SCALE, "BTCUSD": 30000 * SCALE}
    for step in range(240):  # down for a while, then up: longs and shorts both go under
        key = rng.choice(list(marks))
        move = rng.choice([1, 1000, 10**8, 10**10, 5 * 10**10, 2 * 10**11])
        down = rng.random() < (0.75 if step < 120 else 0.25)
        marks[key] = max(marks[key] + (-move if down else move), 1000 * SCALE)
        if key == "BTCUSD":
            run(C.SetIndexPrices(prices={"BTCUSD": marks[key]}))
        else:
            run(C.SetMarkPrice(symbol=key, mark_price=marks[key]))
        assert consumer.called == brute(), step
        assert consumer.requested == ever_liquidatable, step
    scopes = {s for _, s in ever_liquidatable}
    assert {"", "@BUSD", "@BTC"} <= scopes
    assert any(engine.accounts[a].multi_assets for a, _ in ever_liquidatable)


def test_a_change_of_collateral_ratios_is_announced_and_applies_from_its_time():
    later = parse_iso_ms("2024-01-02T02:00:00Z")
    c = catalogue_mod.load(overrides={"collateral": {"schedule": [
        {"effective": "2021-05-28T00:00:00Z", "assets": {"BTC": {"ratio": "0.95"},
                                                         "USDT": {"ratio": "1"}}},
        {"effective": "2024-01-02T02:00:00Z", "source": "a what-if",
         "assets": {"BTC": {"ratio": "0.5"}, "USDT": {"ratio": "1"}}}]}})
    h = PipelineHarness(c, time=T)
    fund(h, (10, "BTC", "1"), (20, "USDT", "10000000"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("30000"), ETH: d("2000")}))
    multi(h, 10)
    h.order(20, ETH, "SELL", "100", "2000")
    h.order(10, ETH, "BUY", "100", "2000")  # equity 28,500 - 100
    h.order(20, ETH, "BUY", "100", "1990")
    assert h.engine.ledger.cross_risk(h.engine.accounts[10]).margin_balance == d("28400")
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("2900")}))  # 2,755 - 100 = 2,655: healthy
    ev = h.send(C.SetMarkPrice(symbol=BTC, mark_price=d("30000")), time=later)
    assert ev[0] == V.CollateralRatiosSwitched(effective_time=later)
    # at 50 %: 1,450 - 100 = 1,350 USD... and the consumer sees it at once
    assert "LiquidationStarted" not in kinds(ev)  # 1,350 >= 1,300: a margin call only
    assert any(isinstance(e, V.MarginCallIssued) and e.account == 10 for e in ev)
    assert h.engine.ledger.cross_risk(h.engine.accounts[10]).margin_balance == d("1350")


def test_withdrawals_in_multi_assets_mode():
    """What may leave: at most the pool's available in the asset (its ask rate), and an asset
    that counts nothing in the pool (BNB without an index price) as long as the pool is not
    short."""
    h = Harness(time=T)
    fund(h, (1, "BTC", "1"), (1, "BNB", "10"), (2, "USDT", "10000000"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("20000")}))
    multi(h, 1)
    ledger = h.engine.ledger
    acct = h.engine.accounts[1]
    assert ledger.withdrawable(acct, "BNB") == d("10")
    h.mark(BTC, "20000")
    trade(h, 1, 2, BTC, "0.5", "20000")  # 10,000 of notional: 500 USD of margin at 20x
    uni, equity, _ = ledger.multi_assets_figures(acct)
    assert equity == d("19000") - d("5")  # 95 % of 20,000, less the fee (USDT -5)
    assert uni == equity - d("500")
    assert ledger.withdrawable(acct, "BTC") == uni * SCALE // d("20000")
    assert ledger.withdrawable(acct, "BTC") == d("0.92475")  # 18,495 USD at 20,000
    ev = h.send(C.Withdraw(account=1, amount=d("0.93"), asset="BTC"))
    assert rejection(ev) == -5013 and ev[0].detail == "0.92475 BTC available"
    assert kinds(h.send(C.Withdraw(account=1, amount=d("0.92"), asset="BTC"))) == ["Withdrawn"]
    assert ledger.multi_assets_figures(acct)[0] >= 0
    assert kinds(h.send(C.Withdraw(account=1, amount=d("10"), asset="BNB"))) == ["Withdrawn"]
