"""The web page in a real browser: Debian's Chromium, headless, driven by selenium through
Debian's chromedriver, against a real venue with the market simulator running (`python -m
engine serve --market` on free ports, stopped by PID).

Checked: every view loads without a console error; a symbol's book equals GET /fapi/v1/depth
(a quiet symbol exactly, and BTCUSDT while the simulator trades it); a trade shows up in the
trades list, the book and the candle; an account's liquidation price equals positionRisk's and
its margin ratio the engine's own; the margin gauge turns amber above 80 % and red after a
forced liquidation. Screenshots of each view are written to a directory the tests print
($PERPENGINE_ARTEFACTS, or a temporary one)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.test_market import ROOT, Venue

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
QUIET = "LTCUSDT"  # not simulated: only this test trades it


class WebVenue(Venue):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        first = self.lines[0]
        assert "Binance API on http://127.0.0.1:" in first, first
        self.api_port = int(first.rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.api_port}"

    def newkey(self, deposit: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "engine", "newkey", "--deposit", deposit, "--port",
             str(self.port), "--keys", str(self.keys_path)],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
        return json.loads(out.stdout)

    def command(self, op: str, **fields):
        async def run():
            c = await self.client(admin=True)
            try:
                return await c.request(op, **fields)
            finally:
                await c.close()
        return asyncio.run(run())

    def query(self, name: str, **fields):
        async def run():
            c = await self.client(admin=True)
            try:
                return await c.query(name, **fields)
            finally:
                await c.close()
        return asyncio.run(run())

    def rest(self, method: str, path: str, params: dict | None = None, key: dict | None = None):
        params = dict(params or {})
        if key is not None:
            params["timestamp"] = int(time.time() * 1000)
        qs = urllib.parse.urlencode(params)
        if key is not None:
            sig = hmac.new(key["secret"].encode(), qs.encode(), hashlib.sha256).hexdigest()
            qs += f"&signature={sig}"
        req = urllib.request.Request(f"{self.url}{path}?{qs}", method=method)
        if key is not None:
            req.add_header("X-MBX-APIKEY", key["apiKey"])
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read()!r}") from None


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    v = WebVenue(tmp_path_factory.mktemp("web-venue"))
    try:
        yield v
    finally:
        assert v.stop() == 0


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request):
    where = os.environ.get("PERPENGINE_ARTEFACTS")
    path = Path(where) / "web" if where else tmp_path_factory.mktemp("web-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:  # printed past pytest's output capture
        with capture.global_and_fixture_disabled():
            print(f"\nweb page screenshots: {path}", flush=True)
    else:
        print(f"web page screenshots: {path}")
    return path


class Browser:
    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1500,1100", "--no-first-run", "--disable-extensions"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.console: list[dict] = []

    def logs(self) -> list[dict]:
        self.console += self.driver.get_log("browser")
        return self.console

    def errors(self) -> list[dict]:
        return [e for e in self.logs() if e["level"] == "SEVERE"]

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, what, timeout: float = 20.0, every: float = 0.2, message: str = ""):
        deadline = time.monotonic() + timeout
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out: {message or what}; console: {self.logs()}")
            time.sleep(every)

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait(lambda: self.js("return document.body.dataset.ready === 'true'"),
                  message="the page is ready")

    def go(self, hash_: str) -> None:
        self.js("location.hash = arguments[0]", hash_)
        view = hash_.lstrip("#/").split("/")[0]
        self.wait(lambda: self.js("return document.body.dataset.view") == view)

    def shot(self, directory: Path, name: str) -> None:
        self.driver.save_screenshot(str(directory / f"{name}.png"))

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def browser(venue):
    b = Browser()
    try:
        b.open(venue.url + "/")
        yield b
    finally:
        b.quit()


def page_book(b: Browser) -> tuple[int, list, list]:
    """(lastUpdateId, bids, asks) as the page shows them, in one read."""
    got = b.js("""
        const box = document.querySelector('#view-symbol .book');
        const rows = (sel) => [...box.querySelectorAll(sel + ' tr')].map(
            (tr) => [tr.dataset.price, tr.dataset.qty]);
        return [box.dataset.lastUpdateId, rows('.bids'), rows('.asks').reverse()];""")
    return int(got[0] or 0), got[1], got[2]


def book_matches_rest(b: Browser, venue: WebVenue, symbol: str, tries: int = 60) -> dict:
    """Read the page, the REST depth and the page again; when all three are at the same
    lastUpdateId, the page's 20 levels a side must be the REST depth's."""
    for _ in range(tries):
        id1, bids, asks = page_book(b)
        rest = venue.rest("GET", "/fapi/v1/depth", {"symbol": symbol, "limit": 20})
        id2, bids2, asks2 = page_book(b)
        if id1 == id2 == rest["lastUpdateId"] and (bids, asks) == (bids2, asks2):
            assert bids == rest["bids"][:20], (bids, rest["bids"])
            assert asks == rest["asks"][:20], (asks, rest["asks"])
            return rest
        time.sleep(0.15)
    raise AssertionError(f"the page's book never caught up with the REST depth of {symbol}")


def trade(venue: WebVenue, maker: dict, taker: dict, side: str, qty: str, price: str) -> dict:
    """A resting order of `maker` and a crossing one of `taker`; the taker's order back."""
    other = "SELL" if side == "BUY" else "BUY"
    venue.rest("POST", "/fapi/v1/order", {"symbol": QUIET, "side": other, "type": "LIMIT",
                                          "timeInForce": "GTC", "quantity": qty, "price": price},
               maker)
    return venue.rest("POST", "/fapi/v1/order", {"symbol": QUIET, "side": side, "type": "LIMIT",
                                                 "timeInForce": "GTC", "quantity": qty,
                                                 "price": price}, taker)


# -- the tests --------------------------------------------------------------------------------
def test_every_view_loads_without_console_errors(venue, browser, shots):
    b = browser
    info = venue.rest("GET", "/fapi/v1/exchangeInfo")
    symbols = {s["symbol"] for s in info["symbols"]}
    coinm = {s["symbol"] for s in venue.rest("GET", "/dapi/v1/exchangeInfo")["symbols"]}
    assert coinm and not coinm & symbols
    listed = "return [...document.querySelectorAll('#view-markets tbody tr')]" \
        ".map((tr) => tr.dataset.symbol)"
    b.wait(lambda: coinm <= set(b.js(listed) or ()), message="the COIN-M rows (polled)")
    rows = b.js(listed)
    assert sorted(rows) == sorted(symbols | coinm)  # every USD-M and COIN-M symbol, once
    # the simulated symbols are live: a mark, an index, a last price, a countdown, open interest
    for sym in ("BTCUSDT", "ETHUSDT", "ALLUSDT"):
        cells = b.wait(lambda: b.js(
            "const tr = document.querySelector(`#view-markets tr[data-symbol='${arguments[0]}']`);"
            "const c = (k) => tr.querySelector(`td[data-field='${k}']`).textContent;"
            "const live = (k) => c(k) !== '' && c(k) !== '0';"
            "return live('mark') && live('last') && live('oi') ? "
            "{mark: c('mark'), index: c('index'), last: c('last'), funding: c('funding'),"
            " countdown: c('countdown'), oi: c('oi'), change: c('change')} : null", sym),
            timeout=40, message=f"{sym} live in the markets table")
        assert Decimal(cells["mark"]) > 0 and Decimal(cells["index"]) > 0 and Decimal(cells["last"]) > 0
        assert cells["funding"].endswith(" %") and cells["change"].endswith(" %")
        h, m, s = (int(x) for x in cells["countdown"].split(":"))
        assert 0 <= h < 8 and (h, m, s) != (0, 0, 0)
        assert Decimal(cells["oi"]) > 0
    # marks move while the page is open (the !markPrice@arr@1s stream)
    first = b.js("return document.querySelector(\"#view-markets tr[data-symbol='BTCUSDT'] "
                 "td[data-field='mark']\").textContent")
    b.wait(lambda: b.js("return document.querySelector(\"#view-markets tr[data-symbol='BTCUSDT'] "
                        "td[data-field='mark']\").textContent") != first, timeout=20,
           message="the BTCUSDT mark moves")
    b.shot(shots, "markets")
    for view, ready in (("#/symbol/BTCUSDT", "#view-symbol .trades tbody tr"),
                        ("#/risk", "#view-risk .funds tbody tr"),
                        ("#/account", "#view-account form.credentials")):
        b.go(view)
        b.wait(lambda: b.js("return document.querySelector(arguments[0]) !== null", ready))
        time.sleep(1.5)
        b.shot(shots, view.strip("#/").replace("/", "-"))
    assert b.errors() == []
    # the page names nothing outside this origin: no CDN
    html = urllib.request.urlopen(venue.url + "/", timeout=10)
    assert "default-src 'self'" in html.headers["Content-Security-Policy"]
    text = html.read().decode()
    assert "http://" not in text and "https://" not in text
    lib = urllib.request.urlopen(
        venue.url + "/web/vendor/lightweight-charts.standalone.production.js", timeout=10)
    assert lib.headers["Content-Type"].startswith("text/javascript")
    assert b"Lightweight Charts" in lib.read(400)


def test_a_live_symbols_book_equals_the_rest_depth(venue, browser, shots):
    b = browser
    b.go("#/symbol/BTCUSDT")
    b.wait(lambda: page_book(b)[1] and page_book(b)[2], message="a two-sided BTCUSDT book")
    # responsive while the market runs: frames keep coming and no task blocks the page long
    b.js("window.__frames = 0; window.__longest = 0;"
         "const tick = () => { window.__frames++; requestAnimationFrame(tick); };"
         "requestAnimationFrame(tick);"
         "new PerformanceObserver((list) => { for (const e of list.getEntries())"
         "  window.__longest = Math.max(window.__longest, e.duration); })"
         ".observe({type: 'longtask', buffered: false});")
    ids = set()
    for _ in range(3):  # three moments of a book the simulator keeps changing
        rest = book_matches_rest(b, venue, "BTCUSDT")
        ids.add(rest["lastUpdateId"])
        time.sleep(1.2)
    assert len(ids) >= 2  # the book moved and the page followed it
    frames, longest = b.js("return [window.__frames, window.__longest]")
    assert frames >= 60 and longest < 500, (frames, longest)  # over the ~5 s above
    b.shot(shots, "symbol-BTCUSDT-book")
    assert b.errors() == []


def test_a_trade_updates_the_trades_the_book_and_the_candle(venue, browser, shots):
    b = browser
    maker, taker = venue.newkey("1000000"), venue.newkey("1000000")
    venue.command("setMarkPrice", symbol=QUIET, markPrice="100")
    for price, qty in (("100.5", "3"), ("101", "4.5"), ("102.25", "1.234")):
        venue.rest("POST", "/fapi/v1/order", {"symbol": QUIET, "side": "SELL", "type": "LIMIT",
                                              "timeInForce": "GTC", "quantity": qty,
                                              "price": price}, maker)
    venue.rest("POST", "/fapi/v1/order", {"symbol": QUIET, "side": "BUY", "type": "LIMIT",
                                          "timeInForce": "GTC", "quantity": "2",
                                          "price": "99.5"}, maker)
    b.go(f"#/symbol/{QUIET}")
    b.wait(lambda: b.js("return document.querySelector('#view-symbol').dataset.symbol")
           == QUIET)
    before = book_matches_rest(b, venue, QUIET)
    assert before["asks"][0] == ["100.5", "3"] and before["bids"] == [["99.5", "2"]]
    placed = venue.rest("POST", "/fapi/v1/order", {"symbol": QUIET, "side": "BUY",
                                                   "type": "MARKET", "quantity": "5"}, taker)
    assert placed["status"] in ("NEW", "FILLED")
    fills = venue.rest("GET", "/fapi/v1/trades", {"symbol": QUIET, "limit": 5})
    assert [(t["price"], t["qty"]) for t in fills[-2:]] == [("100.5", "3"), ("101", "2")]
    shown = b.wait(lambda: b.js(
        "const ids = arguments[0];"
        "const rows = ids.map((id) => document.querySelector("
        "  `#view-symbol .trades tr[data-trade-id='${id}']`));"
        "return rows.every((r) => r) ? rows.map((r) => [r.querySelector('.price').textContent,"
        "  r.querySelector('.qty').textContent]) : null", [t["id"] for t in fills[-2:]]),
        message="the two trades in the trades list")
    assert shown == [["100.5", "3"], ["101", "2"]]
    after = book_matches_rest(b, venue, QUIET)
    assert after["asks"][:2] == [["101", "2.5"], ["102.25", "1.234"]]
    assert after["lastUpdateId"] > before["lastUpdateId"]
    legend = b.wait(lambda: (lambda t: t if "C 101" in t else None)(
        b.js("return document.querySelector('#view-symbol .legend').textContent")))
    assert "H 101" in legend and "L 100.5" in legend
    b.shot(shots, f"symbol-{QUIET}-after-trade")
    assert b.errors() == []


def _gauge(b: Browser, scope: str):
    return b.js("const g = document.querySelector(`#view-account .gauge[data-scope='${arguments[0]}']`);"
                "return g ? {level: g.dataset.level, ratio: g.dataset.ratio,"
                " liquidated: g.dataset.liquidated || null,"
                " text: g.querySelector('.figure').textContent} : null", scope)


def test_an_accounts_liquidation_price_ratio_and_gauge_through_a_forced_liquidation(
        venue, browser, shots):
    b = browser
    maker = venue.newkey("1000000")
    user = venue.newkey("1000")
    venue.command("setMarkPrice", symbol=QUIET, markPrice="100")
    venue.rest("POST", "/fapi/v1/leverage", {"symbol": QUIET, "leverage": 20}, user)
    trade(venue, maker, user, "BUY", "100", "100")
    b.go("#/account")
    b.js("document.querySelector('#view-account [name=apiKey]').value = arguments[0];"
         "document.querySelector('#view-account [name=secret]').value = arguments[1];"
         "document.querySelector('#view-account form.credentials button[type=submit]').click();",
         user["apiKey"], user["secret"])
    row = b.wait(lambda: b.js(
        "const tr = document.querySelector(`#view-account .positions tr[data-symbol='${arguments[0]}']`);"
        "return tr ? {liq: tr.querySelector('.liquidation').textContent,"
        " entry: tr.querySelector('.entry').textContent, mark: tr.querySelector('.mark').textContent,"
        " ratio: tr.querySelector('.ratio').dataset.ratio} : null", QUIET),
        message="the position in the account view")
    b.wait(lambda: b.js("return document.querySelector('#view-account').dataset.userStream")
           == "open", message="the user-data stream open")
    risk = [r for r in venue.rest("GET", "/fapi/v2/positionRisk", {"symbol": QUIET}, user)
            if r["positionAmt"] != "0"]
    assert len(risk) == 1 and risk[0]["positionAmt"] == "100"
    assert row["liq"] == risk[0]["liquidationPrice"] and Decimal(row["liq"]) > 0
    assert row["entry"] == risk[0]["entryPrice"] == "100"
    # the margin ratio the page works out exactly equals the engine's own (native positionRisk)
    native = venue.query("positionRisk", account=user["account"], symbol=QUIET)
    assert row["ratio"] == native[0]["marginRatio"]
    g = _gauge(b, "cross:USDT")
    assert g["level"] == "ok" and g["ratio"] == native[0]["marginRatio"]
    b.shot(shots, "account")

    # a mark 0.05 above the liquidation price: above 80 %, below 100 % -> amber
    liq = risk[0]["liquidationPrice"]
    near = str(Decimal(liq).quantize(Decimal("0.01")) + Decimal("0.05"))
    venue.command("setMarkPrice", symbol=QUIET, markPrice=near)
    native = venue.query("positionRisk", account=user["account"], symbol=QUIET)
    assert Decimal("0.8") <= Decimal(native[0]["marginRatio"]) < 1, native
    g = b.wait(lambda: (lambda g: g if g and g["ratio"] == native[0]["marginRatio"] else None)(
        _gauge(b, "cross:USDT")), message="the gauge at the new mark")
    assert g["level"] == "amber" and g["text"].endswith(" %")
    b.wait(lambda: b.js("return document.querySelector('#view-account .calls').textContent"
                        ".includes('margin call')"), message="the margin call shown")
    b.shot(shots, "account-amber")

    # below the liquidation price: the risk engine liquidates; the gauge turns red
    venue.command("setMarkPrice", symbol=QUIET, markPrice=str(Decimal(liq).quantize(Decimal("0.01")) - 1))
    g = b.wait(lambda: (lambda g: g if g and g["liquidated"] else None)(_gauge(b, "cross:USDT")),
               message="the gauge after the liquidation")
    assert g["level"] == "red" and g["text"] == "liquidated"
    forced = venue.rest("GET", "/fapi/v1/forceOrders", {"symbol": QUIET}, user)
    assert forced and forced[-1]["symbol"] == QUIET
    b.wait(lambda: b.js("return document.querySelectorAll('#view-account .forced tbody tr').length"
                        " >= 1"), message="the account's liquidation listed")
    assert b.js("return document.querySelectorAll('#view-account .positions tbody tr').length") == 0
    b.shot(shots, "account-liquidated")

    # the venue's view: the ADL trade against the maker's short and the insurance fund
    b.go("#/risk")
    adl = venue.rest("GET", "/venue/v1/adlTrades", {"symbol": QUIET})
    fund = venue.rest("GET", "/venue/v1/insurance")
    b.wait(lambda: b.js("return document.querySelectorAll('#view-risk .adl tbody tr').length")
           == len(venue.rest("GET", "/venue/v1/adlTrades", {"limit": 50})),
           message="the ADL trades listed")
    usdt = [f for f in fund["funds"] if f["asset"] == "USDT"][0]
    assert usdt["balance"] == venue.rest("GET", "/fapi/v1/insuranceBalance",
                                         {"symbol": QUIET})["assets"][0]["marginBalance"]
    assert adl and adl[-1]["side"] == "SELL" and adl[-1]["symbol"] == QUIET  # no bid took it all
    assert b.js("return document.querySelector(`#view-risk .adl tr[data-trade-id='${arguments[0]}']`)"
                " !== null", adl[-1]["tradeId"])
    b.wait(lambda: b.js("return [...document.querySelectorAll('#view-risk .funds tr[data-asset=USDT] .balance')]"
                        ".map((td) => td.textContent)[0]") == [
        f for f in venue.rest("GET", "/venue/v1/insurance")["funds"] if f["asset"] == "USDT"
    ][0]["balance"], message="the fund's balance")
    b.shot(shots, "risk-after-liquidation")
    assert b.errors() == []
