"""The catalogue: cum by the recurrence for every table, Binance's published figures, the CLI."""
import json
import subprocess
import sys

import pytest

from engine.core import catalogue as catalogue_mod
from engine.core.fixed import parse as d
from engine.core.timeutil import parse_iso_ms

CAT = catalogue_mod.load()


@pytest.mark.parametrize("name", sorted(CAT.tables))
def test_cum_follows_the_recurrence(name):
    tiers = CAT.tables[name].tiers
    assert tiers[0].cum == 0 and tiers[0].floor == 0
    for prev, t in zip(tiers, tiers[1:]):
        assert t.floor == prev.cap
        # floor is whole USDT, so floor x (MMR(n) - MMR(n-1)) is exact at 1e-8
        assert t.cum == prev.cum + t.floor * (t.mmr - prev.mmr) // 100_000_000
        # MM is continuous at the boundary: both tiers give the same MM at the floor
        assert t.floor * prev.mmr // 10**8 - prev.cum == t.floor * t.mmr // 10**8 - t.cum


def test_binance_published_cum_line_btcusdt_level_3():
    # "level 3 of BTCUSDT = 250,000 x (1% - 0.5%) + 50 = 1,300 USDT"
    t = CAT.spec("BTCUSDT").table_at(0).tiers[2]
    assert (t.bracket, t.floor, t.cap, t.mmr, t.cum) == (3, d("250000"), d("1000000"), d("0.01"), d("1300"))
    assert CAT.spec("BTCUSDT").table_at(0).tiers[3].cum == d("16300")


def test_published_maintenance_margins_to_the_unit():
    # SEED-NOTES §1: BTCUSDT 109.488 @ 31,967.27 -> 71,200.81144 (Binance prints 5 decimals)
    btc = CAT.spec("BTCUSDT").table_at(0)
    notional = d("109.488") * d("31967.27") // 10**8
    assert notional == d("3500032.45776")
    assert btc.tier_for(notional).bracket == 4
    assert btc.maint_margin(notional) == d("71200.811444")
    # ETHUSDT 3,683.979 @ 1,335.18 at 10% with cum 135,365: that tier is seed 001's older table
    eth_old = CAT.tables["ETHUSDT-seed001-old"]
    notional = d("3683.979") * d("1335.18") // 10**8
    assert notional == d("4918775.08122")
    tier = eth_old.tier_for(notional)
    assert (tier.mmr, tier.cum) == (d("0.1"), d("135365"))
    assert eth_old.maint_margin(notional) == d("356512.508122")


def test_notional_equal_to_a_cap_belongs_to_the_lower_tier():
    btc = CAT.spec("BTCUSDT").table_at(0)
    assert btc.tier_for(d("50000")).bracket == 1
    assert btc.tier_for(d("50000.00000001")).bracket == 2
    assert btc.tier_for(d("500000000")).bracket == 10
    assert btc.tier_for(d("500000000.00000001")) is None


def test_leverage_caps_by_notional():
    btc = CAT.spec("BTCUSDT").table_at(0)
    assert btc.max_notional(21) == d("1000000")
    assert btc.max_notional(20) == d("5000000")
    assert btc.max_notional(100) == d("250000")
    assert btc.max_notional(125) == d("50000")
    assert btc.max_notional(126) == 0


def test_ethusdt_tables_switch_at_0700_utc():
    eth = CAT.spec("ETHUSDT")
    switch = parse_iso_ms("2022-09-13T07:00:00Z")
    assert eth.table_at(switch - 1).max_leverage == 100
    assert eth.table_at(switch).max_leverage == 75
    assert eth.table_at(switch).tiers[0].cap == d("250000")
    assert eth.table_at(switch - 1).tiers[0].cap == d("100000")


def test_every_seed_group_is_present():
    for sym in ["ALLUSDT", "BTCUSDT", "ETHUSDT", "ADAUSDT", "BCHUSDT", "ALPHAUSDT", "KEEPUSDT",
                "CTKUSDT", "1INCHUSDT", "AXSUSDT", "FILUSDT", "DOGEUSDT", "NKNUSDT", "BTCDOMUSDT",
                "IOTXUSDT", "BNBBUSD", "DOGEBUSD", "BTCBUSD", "ETHBUSD", "BTCUSDT_0924",
                "ETHUSDT_0924", "LUNAUSDT", "SOLUSDT", "ATOMUSDT", "ALGOUSDT"]:
        assert sym in CAT.symbols, sym
    allusdt = CAT.spec("ALLUSDT")
    assert (allusdt.tick_size, allusdt.min_qty, allusdt.funding_cap) == (d("0.001"), d("10"), d("0.03"))
    assert allusdt.table_at(0).max_leverage == 75
    assert CAT.tables["BTCBUSD"].assumed and CAT.tables["ETHBUSD"].assumed
    assert "stepSize" in allusdt.assumed and "tickSize" not in allusdt.assumed


def test_catalogue_rejects_non_contiguous_tables():
    doc = {"tables": {"bad": {"tiers": [
        {"floor": "0", "cap": "100", "maxLeverage": 10, "mmr": "0.01"},
        {"floor": "200", "cap": "300", "maxLeverage": 5, "mmr": "0.02"}]}},
        "symbols": []}
    with pytest.raises(catalogue_mod.CatalogueError, match="floor"):
        catalogue_mod.from_dict(doc)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True)


def test_brackets_cli_prints_binance_shape_with_json_numbers():
    out = _cli("brackets", "BTCUSDT")
    assert out.returncode == 0
    doc = json.loads(out.stdout)
    assert list(doc[0]) == ["symbol", "brackets"] and doc[0]["symbol"] == "BTCUSDT"
    b3 = doc[0]["brackets"][2]
    assert list(b3) == ["bracket", "initialLeverage", "notionalCap", "notionalFloor",
                        "maintMarginRatio", "cum"]
    assert b3 == {"bracket": 3, "initialLeverage": 50, "notionalCap": 1000000,
                  "notionalFloor": 250000, "maintMarginRatio": 0.01, "cum": 1300}
    assert '"maintMarginRatio":0.004' in out.stdout  # a JSON number, not a string


def test_brackets_cli_at_a_time():
    before = json.loads(_cli("brackets", "ETHUSDT", "--at", "2022-09-12T00:00:00Z").stdout)
    after = json.loads(_cli("brackets", "ETHUSDT", "--at", "2022-09-13T07:00:00Z").stdout)
    assert before[0]["brackets"][0]["initialLeverage"] == 100
    assert before[0]["brackets"][1]["cum"] == 150
    assert after[0]["brackets"][0]["initialLeverage"] == 75


@pytest.mark.parametrize("args", [("brackets", "NOPEUSDT"), ("brackets", "ETHUSDT", "--at", "soon"),
                                  ("symbols", "--at", "2022-13-40")])
def test_cli_bad_usage_is_one_line_and_status_2(args):
    out = _cli(*args)
    assert out.returncode == 2
    assert out.stdout == "" and out.stderr.count("\n") == 1 and out.stderr.startswith("error:")


def test_symbols_cli_lists_filters():
    out = _cli("symbols")
    assert out.returncode == 0
    btc = next(line for line in out.stdout.splitlines() if line.startswith("BTCUSDT "))
    assert "0.1" in btc and "0.001" in btc and "125x" in btc
    doc = json.loads(_cli("symbols", "--json").stdout)
    assert len(doc["symbols"]) == len(CAT.symbols)
    types = {f["filterType"] for f in doc["symbols"][0]["filters"]}
    assert {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MIN_NOTIONAL", "PERCENT_PRICE",
            "MAX_NUM_ORDERS"} <= types
