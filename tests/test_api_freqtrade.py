"""freqtrade against the engine: ccxt.binance configured exactly as freqtrade configures it
(fast), and a real freqtrade process trading live through the API (slow; `make test-slow`
installs freqtrade). Only the URLs of examples/freqtrade-exchange.json point it here."""
from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import ccxt
import pytest

from tests.api_harness import ROOT, ApiServerProcess
from tests.test_api import http

EXAMPLE = Path(ROOT) / "examples" / "freqtrade-exchange.json"


def _config(server, key) -> dict:
    """examples/freqtrade-exchange.json with this server's port and the key filled in."""
    text = EXAMPLE.read_text().replace("http://127.0.0.1:8080", server.url)
    cfg = json.loads(text)
    cfg["exchange"]["key"], cfg["exchange"]["secret"] = key["apiKey"], key["secret"]
    return cfg


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ApiServerProcess(tmp_path_factory.mktemp("freqtrade"))
    s.set_mark("BTCUSDT", "30000")
    yield s
    assert s.stop() == 0


def test_ccxt_binance_as_freqtrade_configures_it(server):
    """freqtrade builds ccxt.binance from {apiKey, secret} + its static {"options":
    {"defaultType": "swap"}} for futures + the user's ccxt_config; then at start-up it loads
    markets (spot, USDⓈ-M and COIN-M), checks the time, the leverage tiers, the position and
    asset modes, and trades through the calls below."""
    key = server.newkey("10000")
    ft = _config(server, key)["exchange"]
    ex = ccxt.binance(_merge({"apiKey": ft["key"], "secret": ft["secret"]},
                             _merge({"options": {"defaultType": "swap"}}, ft["ccxt_config"])))
    markets = ex.load_markets()
    # the USDⓈ-M markets, and the COIN-M ones from /dapi (no spot market here)
    assert "BTC/USDT:USDT" in markets and "BTC/USD:BTC" in markets and len(markets) == 130
    assert abs(ex.fetch_time() - time.time() * 1000) < 5000
    assert ex.fetch_leverage_tiers(["BTC/USDT:USDT"])["BTC/USDT:USDT"][0]["maxLeverage"] == 125
    assert ex.fapiPrivateGetPositionSideDual() == {"dualSidePosition": False}
    assert ex.fapiPrivateGetMultiAssetsMargin() == {"multiAssetsMargin": False}
    ex.set_margin_mode("isolated", "BTC/USDT:USDT", {"leverage": 2})
    assert ex.set_leverage(2, "BTC/USDT:USDT")["leverage"] == 2
    assert ex.fetch_order_book("BTC/USDT:USDT", 5)["bids"] == []
    assert ex.fetch_tickers(["BTC/USDT:USDT"])["BTC/USDT:USDT"]["symbol"] == "BTC/USDT:USDT"
    assert ex.fetch_bids_asks(["BTC/USDT:USDT"]) is not None
    assert ex.fetch_ohlcv("BTC/USDT:USDT", "5m", params={"price": "mark"}) is not None
    order = ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.002, 29000, {"leverage": 2})
    assert ex.fetch_order(order["id"], "BTC/USDT:USDT")["status"] == "open"
    assert ex.cancel_order(order["id"], "BTC/USDT:USDT")["status"] == "canceled"
    assert ex.fetch_balance()["USDT"]["total"] == 10000
    assert ex.fetch_positions(["BTC/USDT:USDT"]) == []
    assert ex.fetch_funding_history("BTC/USDT:USDT") == []


STRATEGY = '''
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class AlwaysLong(IStrategy):
    """Enters long at once and leaves after a minute."""
    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"1": -1}
    stoploss = -0.5
    startup_candle_count = 0
    process_only_new_candles = False

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe


class LongWithStop(AlwaysLong):
    """Enters long at once; leaves only by its 2 % stop-loss, kept on the exchange."""
    minimal_roi = {"0": 10}
    stoploss = -0.02
'''


def _freqtrade_config(server, key, tmp_path, strategy: str, **order_types) -> Path:
    user_data = tmp_path / "user_data"
    (user_data / "strategies").mkdir(parents=True)
    (user_data / "strategies" / "always_long.py").write_text(STRATEGY)
    cfg = _config(server, key)
    cfg["exchange"]["pair_whitelist"] = ["BTC/USDT:USDT"]
    cfg.update({
        "max_open_trades": 1, "stake_currency": "USDT", "stake_amount": 100, "dry_run": False,
        "timeframe": "1m", "strategy": strategy, "db_url": f"sqlite:///{tmp_path}/t.sqlite",
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1,
                          "price_last_balance": 0.0},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "order_types": {"entry": "market", "exit": "market", "stoploss": "market",
                        "stoploss_on_exchange": False, **order_types},
        "pairlists": [{"method": "StaticPairList"}], "internals": {"process_throttle_secs": 2},
        "initial_state": "running", "user_data_dir": str(user_data)})
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return user_data


class Freqtrade:
    """A real freqtrade process; its log in tmp_path/freqtrade.log, stopped by its PID."""

    def __init__(self, tmp_path, user_data) -> None:
        self.log = tmp_path / "freqtrade.log"
        self.out = open(self.log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "freqtrade", "trade", "--config", str(tmp_path / "config.json"),
             "--userdir", str(user_data)], cwd=tmp_path, stdout=self.out,
            stderr=subprocess.STDOUT)

    def text(self) -> str:
        if not self.out.closed:
            self.out.flush()
        return " ".join(self.log.read_text().split())  # freqtrade wraps its lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def _liquidity(server, maker, taker):
    """A market maker on both sides, and a trade so the candles are fresh."""
    http(server, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": "BTCUSDT"}, key=maker)
    for side, price in (("SELL", "30010"), ("BUY", "29990")):
        http(server, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": side,
                                                "type": "LIMIT", "quantity": "5",
                                                "price": price, "timeInForce": "GTC"}, key=maker)
    http(server, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                            "quantity": "0.001"}, key=taker)


@pytest.mark.slow
def test_a_real_freqtrade_trades_live_through_the_api(server, tmp_path):
    key, maker, taker = server.newkey("10000"), server.newkey("10000000"), server.newkey("100000")
    user_data = _freqtrade_config(server, key, tmp_path, "AlwaysLong")
    _liquidity(server, maker, taker)
    bot = Freqtrade(tmp_path, user_data)
    try:
        deadline = time.monotonic() + 180
        filled = []
        while time.monotonic() < deadline and bot.proc.poll() is None:
            time.sleep(3)
            _liquidity(server, maker, taker)
            orders = http(server, "GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT"}, key=key)[2]
            filled = [(o["side"], o["type"], o["status"], o["reduceOnly"]) for o in orders]
            if len(filled) >= 2 and "MARKET_SELL has been fulfilled" in bot.text():
                break
    finally:
        bot.stop()
    text = bot.text()
    assert filled[:2] == [("BUY", "MARKET", "FILLED", False), ("SELL", "MARKET", "FILLED", True)], \
        text[-3000:]
    assert "MARKET_BUY has been fulfilled" in text and "MARKET_SELL has been fulfilled" in text
    assert " - ERROR - " not in text
    positions = http(server, "GET", "/fapi/v3/positionRisk", {"symbol": "BTCUSDT"}, key=key)[2]
    assert all(p["positionAmt"] == "0" for p in positions)


@pytest.mark.slow
def test_freqtrades_stoploss_on_exchange_is_an_algo_order_that_fires(server, tmp_path):
    """freqtrade's stoploss_on_exchange on Binance futures: a STOP_MARKET on the mark through
    POST /fapi/v1/algoOrder, watched with GET algoOrder; when the mark falls through it, the
    order it placed (actualOrderId) closes the trade, which freqtrade books as
    stoploss_on_exchange."""
    server.set_mark("BTCUSDT", "30000")
    key, maker, taker = server.newkey("10000"), server.newkey("10000000"), server.newkey("100000")
    user_data = _freqtrade_config(server, key, tmp_path, "LongWithStop", stoploss_on_exchange=True,
                                  stoploss_price_type="mark")
    _liquidity(server, maker, taker)
    bot = Freqtrade(tmp_path, user_data)
    algos: list = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and bot.proc.poll() is None and not algos:
            time.sleep(2)
            _liquidity(server, maker, taker)
            algos = http(server, "GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"},
                         key=key)[2]
        assert [(a["orderType"], a["side"], a["workingType"], a["reduceOnly"]) for a in algos] \
            == [("STOP_MARKET", "SELL", "MARK_PRICE", True)], bot.text()[-3000:]
        trigger = float(algos[0]["triggerPrice"])
        assert 29000 < trigger < 29990  # 2 % below the entry at 30,010
        server.set_mark("BTCUSDT", "28900")  # through the stop: it sells into the 29,990 bid
        while time.monotonic() < deadline and bot.proc.poll() is None:
            time.sleep(2)
            # booked, and freqtrade's own follow-up done (its pair lock; stopping it in the
            # middle of its database work makes freqtrade log an error of its own)
            if "stoploss_on_exchange" in bot.text() and "Auto lock" in bot.text():
                break
    finally:
        bot.stop()
        server.set_mark("BTCUSDT", "30000")
    text = bot.text()
    done = http(server, "GET", "/fapi/v1/algoOrder", {"algoId": str(algos[0]["algoId"])},
                key=key)[2]
    assert done["algoStatus"] == "FINISHED", text[-3000:]
    placed = http(server, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT",
                                                    "orderId": done["actualOrderId"]}, key=key)[2]
    assert (placed["status"], placed["origType"], placed["reduceOnly"]) == \
        ("FILLED", "STOP_MARKET", True)
    assert "stoploss_on_exchange" in text, text[-3000:]
    assert " - ERROR - " not in text
    positions = http(server, "GET", "/fapi/v3/positionRisk", {"symbol": "BTCUSDT"}, key=key)[2]
    assert all(p["positionAmt"] == "0" for p in positions)
