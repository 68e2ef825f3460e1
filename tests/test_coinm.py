"""COIN-M (inverse) contracts: BTCUSD_PERP and ETHUSD_PERP, margined and settled in the coin.

Published figures: seed 002's ETHUSD tables (their maintenance amounts by the recurrence), the
COIN-M FAQ's BTCUSD maintenance amounts (level 5: 1.81 BTC on the older table, 300 BTC: 11.81
BTC; 11.605 on the later one) and its example (100 contracts at 25,000: 0.4 BTC, MM 0.0016 BTC),
ccxt's sample positionRisk row (2 contracts at 38,103.05510455: notionalValue 0.00524892)."""
from __future__ import annotations

from fractions import Fraction

from engine.core import catalogue as catalogue_mod
from engine.core import EngineConfig
from engine.core import inverse
from engine.core.fixed import SCALE, fmt
from engine.core.timeutil import parse_iso_ms
from engine.views import markets as market_views
from engine.views import positions as views
from proto import commands as C
from proto import events as V
from tests.harness import Harness, PipelineHarness, d, kinds, rejection, trades

CAT = catalogue_mod.load()
BTCUSD, ETHUSD = "BTCUSD_PERP", "ETHUSD_PERP"
T2024 = parse_iso_ms("2024-01-02T01:00:00Z")


def coin_accounts(h: Harness, *amounts: tuple[int, str, str]) -> None:
    """(account, asset, amount) deposits, the accounts created long ago."""
    for aid, asset, amount in amounts:
        if aid not in h.engine.accounts:
            h.send(C.CreateAccount(account=aid, registered_at=0))
        assert rejection(h.send(C.Deposit(account=aid, amount=d(amount), asset=asset))) is None


def row(h: Harness, account: int, symbol: str) -> dict:
    (r,) = [r for r in views.position_risk(h.engine, account, symbol)]
    return r


# == the tables ===================================================================================
def cums(table: str) -> list[str]:
    return [fmt(t.cum) for t in CAT.tables[table].tiers]


def test_seed_002_ethusd_tables_and_their_maintenance_amounts():
    before = CAT.tables["ETHUSD_PERP-100x-until-2022-09-13"]
    after = CAT.tables["ETHUSD_PERP-75x-from-2022-09-13"]
    assert [(fmt(t.floor), t.max_leverage, fmt(t.mmr)) for t in before.tiers] == [
        ("0", 100, "0.005"), ("15", 75, "0.0065"), ("100", 50, "0.01"), ("250", 25, "0.02"),
        ("500", 10, "0.05"), ("1000", 5, "0.1"), ("1500", 4, "0.125"), ("2000", 3, "0.15"),
        ("5000", 2, "0.25"), ("7500", 1, "0.5")]
    assert cums("ETHUSD_PERP-100x-until-2022-09-13") == [
        "0", "0.0225", "0.3725", "2.8725", "17.8725", "67.8725", "105.3725", "155.3725",
        "655.3725", "2530.3725"]
    assert [(fmt(t.floor), t.max_leverage, fmt(t.mmr)) for t in after.tiers][:2] == [
        ("0", 75, "0.0065"), ("100", 50, "0.01")]
    assert cums("ETHUSD_PERP-75x-from-2022-09-13") == [
        "0", "0.35", "2.85", "17.85", "67.85", "105.35", "155.35", "655.35", "2530.35"]
    spec = CAT.spec(ETHUSD)
    switch = parse_iso_ms("2022-09-13T07:30:00Z")
    assert spec.table_at(switch - 1) is before and spec.table_at(switch) is after
    assert spec.contract_size == d("10") and spec.pair == "ETHUSD" and spec.margin_asset == "ETH"


def test_btcusd_tables_give_the_faqs_maintenance_amounts():
    old = CAT.tables["BTCUSD_PERP-before-2021-07-27"]
    new = CAT.tables["BTCUSD_PERP-from-2021-07-27"]
    # "the BTCUSD Maintenance Amount on Level 5 = 50 BTC x (5% - 2.5%) + 0.56 BTC = 1.81 BTC"
    assert (fmt(old.tiers[3].cum), fmt(old.tiers[4].cum)) == ("0.56", "1.81")
    assert old.tier_for(d("300")).bracket == 7 and fmt(old.tier_for(d("300")).cum) == "11.81"
    assert fmt(new.tier_for(d("300")).cum) == "11.605"  # the FAQ's later version
    assert fmt(old.tier_for(d("300")).mmr) == "0.125"
    spec = CAT.spec(BTCUSD)
    assert spec.table_at(parse_iso_ms("2021-07-26T23:59:59Z")) is old
    assert spec.table_at(parse_iso_ms("2021-07-27T00:00:00Z")) is new
    assert spec.contract_size == d("100") and spec.pair == "BTCUSD" and spec.margin_asset == "BTC"


def test_a_300_btc_position_on_the_older_table_holds_the_faqs_maintenance():
    h = Harness(time=parse_iso_ms("2021-07-01T00:00:00Z"))
    coin_accounts(h, (1, "BTC", "100"), (2, "BTC", "100"))
    for a in (1, 2):
        h.leverage(a, BTCUSD, 4)
    h.mark(BTCUSD, "25000")
    assert rejection(h.order(1, BTCUSD, "SELL", "75000", "25000")) is None  # 300 BTC
    assert rejection(h.order(2, BTCUSD, "BUY", "75000", "25000")) is None
    r = row(h, 2, BTCUSD)
    assert r["notionalValue"] == "300"
    assert r["maintMargin"] == "25.69"  # 300 x 12.5 % - 11.81


def test_the_faqs_level_1_example_through_an_account():
    """100 BTCUSD perpetual contracts at a mark of 25,000: 100 x 100 / 25,000 = 0.4 BTC,
    level 1, MM = 0.4 x 0.4 % - 0 = 0.0016 BTC."""
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "1"), (2, "BTC", "1"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000")}))
    assert rejection(h.order(1, BTCUSD, "SELL", "100", "25000")) is None
    assert rejection(h.order(2, BTCUSD, "BUY", "100", "25000")) is None
    r = row(h, 2, BTCUSD)
    assert (r["notionalValue"], r["maintMargin"], r["markPrice"]) == ("0.4", "0.0016", "25000")
    assert "notional" not in r  # ccxt tells an inverse row by notionalValue
    assert row(h, 1, BTCUSD)["notionalValue"] == "-0.4"  # signed: ccxt reads the side from it
    assert h.engine.ledger.cross_risk(h.engine.accounts[2], "BTC").maint_margin == d("0.0016")


def test_ccxts_sample_row_notional_value():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "1"), (2, "BTC", "1"))
    h.mark(BTCUSD, "38000")
    h.order(1, BTCUSD, "SELL", "2", "38000")
    h.order(2, BTCUSD, "BUY", "2", "38000")
    h.mark(BTCUSD, "38103.05510455")
    assert row(h, 2, BTCUSD)["notionalValue"] == "0.00524892"  # 2 x 100 / 38,103.055..., down


# == quantities, margin, fees, PnL in the coin ====================================================
def test_quantities_are_whole_contracts():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "1"))
    assert rejection(h.order(1, BTCUSD, "BUY", "1.5", "25000")) == -4023
    assert rejection(h.order(1, BTCUSD, "BUY", "0", "25000")) == -4003
    assert rejection(h.order(1, BTCUSD, "BUY", "1", "25000")) is None  # no MIN_NOTIONAL on COIN-M
    assert rejection(h.order(1, BTCUSD, "BUY", "1", "25000.05")) == -4014  # tick 0.1


def test_open_order_margin_is_in_the_coin_and_draws_on_the_coins_wallet():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "1"), (1, "USDT", "100000"), (2, "BTC", "0.001"),
                  (2, "USDT", "1000000"))
    ledger = h.engine.ledger
    acct = h.engine.accounts[1]
    assert rejection(h.order(1, BTCUSD, "BUY", "100", "25000")) is None  # 20x by default
    # 100 contracts of 100 USD at 25,000: 0.4 BTC, / 20 = 0.02 BTC
    assert ledger.available_balance(acct, "BTC") == d("0.98")
    assert ledger.available_balance(acct, "USDT") == d("100000")  # another wallet
    ev = h.order(2, BTCUSD, "BUY", "100", "25000")
    assert rejection(ev) == -2019
    assert ev[0].detail == "0.02 BTC needed, 0.001 available"  # its USDT does not help


def test_the_position_cap_at_a_leverage_is_in_the_coin():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "1"))
    h.leverage(1, BTCUSD, 125)  # the 2021-07-27 table: 125x up to 5 BTC
    assert rejection(h.order(1, BTCUSD, "BUY", "1250", "25000")) is None  # 5 BTC
    h.cancel(1, BTCUSD, 1)
    ev = h.order(1, BTCUSD, "BUY", "1251", "25000")  # 5.004 BTC
    assert rejection(ev) == -2027 and ev[0].detail == "5.004 > 5 BTC at 125x"
    assert market_views.leverage_result(h.engine, 1, BTCUSD) == \
        {"leverage": 125, "maxQty": "5", "symbol": BTCUSD}


def test_inverse_pnl_fees_and_settlement_in_the_coin():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "1"), (2, "BTC", "1"), (3, "BTC", "1"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000")}))
    h.order(1, BTCUSD, "SELL", "100", "25000")
    (t,) = trades(h.order(2, BTCUSD, "BUY", "100", "25000"))
    assert (t.taker_fee, t.maker_fee) == (d("0.0002"), d("0.00008"))  # 0.05 % / 0.02 % of 0.4 BTC
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("20000")}))
    r = row(h, 2, BTCUSD)
    assert r["unRealizedProfit"] == "-0.1"  # 100 x 100 x (1/25,000 - 1/20,000)
    assert row(h, 1, BTCUSD)["unRealizedProfit"] == "0.1"
    h.order(3, BTCUSD, "BUY", "100", "20000")
    (t,) = trades(h.order(2, BTCUSD, "SELL", "100", "20000"))
    assert t.taker_realized_pnl == d("-0.1") and t.taker_fee == d("0.00025")  # of 0.5 BTC
    accounts = h.engine.accounts
    assert accounts[2].balance("BTC") == d("1") - d("0.0002") - d("0.1") - d("0.00025")
    assert accounts[2].wallet == 0 and accounts[2].positions[BTCUSD].qty == 0
    assert h.engine.ledger.other_fees == {"BTC": d("0.0002") + d("0.00008") + d("0.00025") +
                                          d("0.0001")}


def test_entry_price_is_the_harmonic_mean_of_the_fills():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "10"), (2, "BTC", "10"))
    h.order(1, BTCUSD, "SELL", "100", "20000")
    h.order(1, BTCUSD, "SELL", "100", "30000")
    h.order(2, BTCUSD, "BUY", "200", "30000")
    # 200 contracts of 100 USD for 0.5 + 0.33333333 BTC: 24,000 (a harmonic mean)
    assert row(h, 2, BTCUSD)["entryPrice"] == "24000.000096"  # 20,000 / 0.83333333 (basis down)


def test_funding_is_paid_in_the_coin():
    h = Harness(time=parse_iso_ms("2024-01-02T00:00:01Z"))
    coin_accounts(h, (1, "BTC", "1"), (2, "BTC", "1"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000")}))
    h.order(1, BTCUSD, "SELL", "100", "25000")
    h.order(2, BTCUSD, "BUY", "100", "25000")
    ev = h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000")}),
                time=parse_iso_ms("2024-01-02T08:00:00Z"))
    (rate,) = [e for e in ev if isinstance(e, V.FundingRateSet)]
    assert (rate.funding_rate, rate.mark_price, rate.funding_cap) == (d("0.0001"), d("25000"),
                                                                     d("0.003"))  # 0.75 x 0.4 %
    paid = {e.account: (e.amount, e.asset) for e in ev if isinstance(e, V.FundingPaid)}
    # nominal value 100 x 100 / 25,000 = 0.4 BTC, x 0.01 %
    assert paid == {1: (d("0.00004"), "BTC"), 2: (d("-0.00004"), "BTC")}


def test_the_ethusd_funding_cap_follows_its_table_switch():
    from engine.core import funding as F
    spec = CAT.spec(ETHUSD)
    switch = parse_iso_ms("2022-09-13T07:30:00Z")
    assert F.funding_cap(spec, switch - 1) == d("0.00375")  # 0.75 x 0.5 %
    assert F.funding_cap(spec, switch) == d("0.004875")  # 0.75 x 0.65 %


def test_the_ethusd_switch_applies_to_open_positions_at_0730():
    h = Harness(time=parse_iso_ms("2022-09-13T07:00:00Z"))
    coin_accounts(h, (1, "ETH", "10"), (2, "ETH", "10"))
    h.mark(ETHUSD, "1000")
    h.order(1, ETHUSD, "SELL", "1000", "1000")  # 10 ETH: tier 1 of both tables
    h.order(2, ETHUSD, "BUY", "1000", "1000")
    assert row(h, 2, ETHUSD)["maintMargin"] == "0.05"  # 10 x 0.5 %
    ev = h.mark(ETHUSD, "1000")  # 07:00, ETHUSDT switches, ETHUSD not yet
    ev = h.send(C.SetMarkPrice(symbol=ETHUSD, mark_price=d("1000")),
                time=parse_iso_ms("2022-09-13T07:30:00Z"))
    assert [(e.symbol, e.table) for e in ev if isinstance(e, V.BracketTableSwitched)] == \
        [(ETHUSD, "ETHUSD_PERP-75x-from-2022-09-13")]
    assert row(h, 2, ETHUSD)["maintMargin"] == "0.065"  # 10 x 0.65 %


# == liquidation ==================================================================================
def test_the_inverse_liquidation_price_reselects_the_tier():
    """A long's coin notional grows as the price falls: 95 ETH at 1,000 is tier 1 (<= 100 ETH),
    but at its liquidation price (~911) it is 104 ETH, tier 2 (1 %, cum 0.35)."""
    h = Harness(time=T2024)
    coin_accounts(h, (1, "ETH", "10"), (2, "ETH", "1000"))
    h.mark(ETHUSD, "1000")
    h.order(2, ETHUSD, "SELL", "9500", "1000")
    h.order(1, ETHUSD, "BUY", "9500", "1000")
    wallet = h.engine.accounts[1].balance("ETH")
    assert wallet == d("10") - d("0.0475")  # the taker fee on 95 ETH
    lp = d(row(h, 1, ETHUSD)["liquidationPrice"])
    table = h.engine.symbols[ETHUSD].table_at(h.time)
    assert table.tier_for(inverse.coin_value(d("9500"), d("10"), lp)).bracket == 2
    # the FAQ's one-way long formula with tier 2: LP = B CM (1 + MMR) / (WB + cum + B CM / EP)
    exact = Fraction(9500 * 10) * Fraction(101, 100) / (Fraction(wallet, SCALE) +
                                                         Fraction(35, 100) + 95)
    assert abs(Fraction(lp, SCALE) - exact) < Fraction(1, SCALE)
    acct = h.engine.accounts[1]
    h.mark(ETHUSD, fmt(lp + d("0.01")))
    assert not h.engine.ledger.cross_risk(acct, "ETH").liquidatable
    h.mark(ETHUSD, fmt(lp - d("0.01")))
    assert h.engine.ledger.cross_risk(acct, "ETH").liquidatable


def test_a_coin_margined_long_is_liquidated_in_its_coin_by_the_risk_consumer():
    h = PipelineHarness(time=T2024)
    coin_accounts(h, (1, "BTC", "0.05"), (1, "USDT", "100000"), (2, "BTC", "10"),
                  (3, "BTC", "10"))
    h.send(C.FundInsurance(amount=d("1"), asset="BTC"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000")}))
    h.leverage(1, BTCUSD, 20)
    h.order(2, BTCUSD, "SELL", "250", "25000")
    h.order(1, BTCUSD, "BUY", "250", "25000")  # 1 BTC at 20x: 0.05 BTC of margin
    lp = d(row(h, 1, BTCUSD)["liquidationPrice"])
    h.order(3, BTCUSD, "BUY", "250", "23000")  # a bid below
    start = len(h.records)
    ev = h.send(C.SetIndexPrices(prices={"BTCUSD": lp - d("1")}))
    cmds = h.commands(start)
    assert C.Liquidate(account=1, asset="BTC") in cmds
    (started,) = [e for e in ev if isinstance(e, V.LiquidationStarted)]
    assert (started.asset, started.symbol) == ("BTC", "")
    assert started.maint_margin >= started.margin_balance
    acct = h.engine.accounts[1]
    assert acct.positions[BTCUSD].qty == 0
    assert acct.balance("BTC") >= 0 and acct.wallet == d("100000")  # USDT untouched
    kinds_seen = kinds(ev)
    assert "InsuranceCovered" in kinds_seen or "LiquidationFeeCharged" in kinds_seen
    for e in ev:
        if isinstance(e, (V.LiquidationFeeCharged, V.InsuranceCovered)):
            assert e.asset == "BTC"


def test_coinm_symbols_do_not_exist_under_rules_1():
    h = Harness(config=EngineConfig(checkpoint_every=0, rules=1), time=T2024)
    h.account(1)
    assert rejection(h.order(1, BTCUSD, "BUY", "1", "25000")) == -1121
    assert rejection(h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000")}))) == -1121
    assert rejection(h.send(C.Deposit(account=1, amount=d("1"), asset="BTC"))) == -1130
    assert BTCUSD not in h.engine.symbols


def test_coinm_views_for_the_dapi_paths():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "1"), (2, "BTC", "1"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000"), "ETHUSD": d("1500")}))
    h.order(1, BTCUSD, "SELL", "100", "25000")
    h.order(2, BTCUSD, "BUY", "100", "25000")
    info = market_views.coinm_exchange_info(h.engine)
    sym = {s["symbol"]: s for s in info["symbols"]}
    assert set(sym) == {BTCUSD, ETHUSD}
    b = sym[BTCUSD]
    assert (b["pair"], b["contractSize"], b["contractStatus"], b["marginAsset"], b["baseAsset"],
            b["quoteAsset"], b["contractType"]) == ("BTCUSD", 100, "TRADING", "BTC", "BTC",
                                                    "USD", "PERPETUAL")
    assert {f["filterType"] for f in b["filters"]} >= {"PRICE_FILTER", "LOT_SIZE"}
    assert "MIN_NOTIONAL" not in {f["filterType"] for f in b["filters"]}
    (brackets,) = market_views.coinm_leverage_brackets(h.engine, BTCUSD)
    assert brackets["brackets"][4] == {"bracket": 5, "initialLeverage": 10, "qtyCap": "100",
                                       "qtyFloor": "50", "maintMarginRatio": "0.05",
                                       "cum": "1.605"}
    acct = views.coinm_account_info(h.engine, 2)
    (btc,) = [a for a in acct["assets"] if a["asset"] == "BTC"]
    assert btc["walletBalance"] == "0.9998" and btc["updateTime"] == T2024
    assert btc["positionInitialMargin"] == "0.02" and btc["maintMargin"] == "0.0016"
    (pos,) = acct["positions"]
    assert (pos["symbol"], pos["positionAmt"], pos["notionalValue"]) == (BTCUSD, "100", "0.4")
    (bal,) = [r for r in views.coinm_balances(h.engine, 2) if r["asset"] == "BTC"]
    assert bal["balance"] == "0.9998" and bal["availableBalance"] == "0.9798"
    assert [r["symbol"] for r in views.coinm_position_risk(h.engine, 2, pair="BTCUSD")] == [BTCUSD]
    # the USD-M account leaves COIN-M positions out
    assert views.account_info(h.engine, 2)["positions"] == []


def test_an_isolated_coin_margined_position_is_at_100_percent_at_its_liquidation_price():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "ETH", "5"), (2, "ETH", "1000"))
    h.send(C.SetMarginType(account=1, symbol=ETHUSD, margin_type="ISOLATED"))
    h.mark(ETHUSD, "2000")
    h.order(2, ETHUSD, "BUY", "2000", "2000")
    h.order(1, ETHUSD, "SELL", "2000", "2000")  # short 10 ETH at 20x: 0.5 ETH isolated
    pos = h.engine.accounts[1].positions[ETHUSD]
    assert pos.isolated_margin == d("0.5")
    lp = d(row(h, 1, ETHUSD)["liquidationPrice"])
    assert lp > d("2000")
    ledger = h.engine.ledger
    h.mark(ETHUSD, fmt(lp - d("0.01")))
    assert not ledger.isolated_risk(pos).liquidatable
    h.mark(ETHUSD, fmt(lp + d("0.01")))
    assert ledger.isolated_risk(pos).liquidatable
    assert ledger.cross_risk(h.engine.accounts[1], "ETH").maint_margin == 0  # not in the pool


def test_the_coinm_impact_price_is_a_harmonic_mean_over_usd_of_contracts():
    """BTCUSD_PERP at 125x: impact notional 200 x 125 = 25,000 USD = 250 contracts; bids 100 at
    25,000 and 200 at 24,000 give 250 / (100 / 25,000 + 150 / 24,000) = 24,390.2439..."""
    from engine.core import funding as F
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "10"))
    h.order(1, BTCUSD, "BUY", "100", "25000")
    h.order(1, BTCUSD, "BUY", "200", "24000")
    book = h.engine.symbols[BTCUSD].book
    notional = F.impact_notional(125)
    assert F.impact_price_coin(book, "BUY", notional, d("100")) == d("24390.24390243")
    assert F.impact_price_coin(book, "SELL", notional, d("100")) == 0  # no asks
    ev = h.send(C.SetIndexPrices(prices={"BTCUSD": d("24000")}))
    (upd,) = [e for e in ev if isinstance(e, V.IndexPriceUpdated)]
    assert upd.impact_bid_price == d("24390.24390243")
    assert upd.premium_index == (d("390.24390243") * SCALE) // d("24000")  # toward zero


def test_usd_pairs_feed_the_coinm_index_and_not_the_composite():
    h = Harness(time=T2024)
    ev = h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000"), "BNBUSD": d("300")}))
    assert [(type(e).__name__, getattr(e, "symbol", getattr(e, "pair", ""))) for e in ev] == [
        ("AssetIndexUpdated", "BNBUSD"), ("AssetIndexUpdated", "BTCUSD"),
        ("IndexPriceUpdated", BTCUSD), ("MarkPriceUpdated", BTCUSD)]
    assert h.engine.ledger.asset_index == {"BTC": d("25000"), "BNB": d("300")}
    assert not h.engine.pricing.composite.composed  # pairs are no constituents
    ev = h.send(C.SetIndexPrices(prices={BTCUSD: d("25000")}))
    assert rejection(ev) == -1130 and ev[0].detail == "the index of BTCUSD_PERP is its pair's, " \
                                                      "BTCUSD"
    assert rejection(h.send(C.SetIndexPrices(prices={"DOGEUSD": d("1")}))) == -1121


def test_hedge_legs_of_a_coinm_symbol_share_one_liquidation_price():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "0.5"), (2, "BTC", "100"))
    h.send(C.SetPositionMode(account=1, dual_side_position=True))
    h.mark(BTCUSD, "25000")
    h.order(2, BTCUSD, "SELL", "1000", "25000")
    h.order(1, BTCUSD, "BUY", "1000", "25000", position_side="LONG")
    h.order(2, BTCUSD, "BUY", "400", "25000")
    h.order(1, BTCUSD, "SELL", "400", "25000", position_side="SHORT")
    rows = views.position_risk(h.engine, 1, BTCUSD)
    assert [r["positionSide"] for r in rows] == ["LONG", "SHORT"]
    assert rows[0]["liquidationPrice"] == rows[1]["liquidationPrice"]
    lp = d(rows[0]["liquidationPrice"])
    acct = h.engine.accounts[1]
    h.mark(BTCUSD, fmt(lp + d("0.1")))
    assert not h.engine.ledger.cross_risk(acct, "BTC").liquidatable
    h.mark(BTCUSD, fmt(lp - d("0.1")))
    assert h.engine.ledger.cross_risk(acct, "BTC").liquidatable


def test_a_conditional_order_on_a_coinm_symbol_triggers_and_settles_in_the_coin():
    h = Harness(time=T2024)
    coin_accounts(h, (1, "BTC", "1"), (2, "BTC", "10"))
    h.send(C.SetIndexPrices(prices={"BTCUSD": d("25000")}))
    h.order(2, BTCUSD, "SELL", "100", "25000")
    h.order(1, BTCUSD, "BUY", "100", "25000")
    ev = h.send(C.NewAlgoOrder(account=1, symbol=BTCUSD, side="SELL", type="STOP_MARKET",
                               trigger_price=d("24000"), working_type="MARK_PRICE",
                               close_position=True))
    assert kinds(ev) == ["AlgoOrderAccepted"]
    h.order(2, BTCUSD, "BUY", "100", "23900")
    ev = h.send(C.SetIndexPrices(prices={"BTCUSD": d("23990")}))
    (t,) = trades(ev)
    # 100 x 100 x (1/25,000 - 1/23,900) = 0.4 - 0.41841004 (rounded down) BTC
    assert (t.price, t.taker_realized_pnl) == (d("23900"), d("0.4") - d("0.41841004"))
    assert h.engine.accounts[1].positions[BTCUSD].qty == 0
