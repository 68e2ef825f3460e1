"""The market simulator (engine/sim/market.py) and the venue's clock (engine/server/clock.py).

Unit parts run offline; the end-to-end ones start a real server (`python -m engine serve
--market ...`, which spawns the simulator) on 127.0.0.1 and stop it by PID; the scenario runs
are slow tests."""
from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from engine.client import Client
from engine.core import catalogue as catalogue_mod
from engine.core import fixed
from engine.core.timeutil import iso, parse_iso_ms
from engine.eventlog import LogReader
from engine.server.clock import SimClock, WallClock, make_clock
from engine.sim import recorded, scenarios
from engine.sim.makers import PROFILES
from engine.sim.market import DEFAULT_SYMBOLS, Settings, Simulation
from proto import commands as C
from proto import events as V
from proto.positional import as_map

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "engine" / "sim" / "examples"
KLINES = EXAMPLES / "prices" / "BTCUSDT-1m-generated.csv"
SCENARIOS = sorted((EXAMPLES / "scenarios").glob("*.toml"))
SIM_FIRST, SIM_LAST = 800_000_001, 800_999_999
CAT = catalogue_mod.load()


# -- a real venue ---------------------------------------------------------------------------
class Venue:
    """`python -m engine serve` on a free port with its own log and keys; its output is read
    by a thread (so the pipe never fills); stopped with SIGTERM by PID."""

    def __init__(self, tmp_path: Path, *args: str, market: bool = True) -> None:
        self.dir = tmp_path
        self.log = tmp_path / "engine.log"
        self.keys_path = tmp_path / "keys.json"
        self.stderr = open(tmp_path / "stderr.txt", "w")
        cmd = [sys.executable, "-m", "engine", "serve", "--port", "0", "--api-port", "0", "--log", str(self.log),
               "--keys", str(self.keys_path), "--summary-every", "60",
               *(["--market"] if market else []), *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr,
                                     stdin=subprocess.DEVNULL, text=True)
        first = self.proc.stdout.readline()
        assert "serving on" in first, (first, (tmp_path / "stderr.txt").read_text()[-2000:])
        self.lines = [first.rstrip("\n"), self.proc.stdout.readline().rstrip("\n")]
        self.port = int(first.split("serving on ")[1].split()[0].rsplit(":", 1)[1])
        self.admin = json.loads(self.keys_path.read_text())[0]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self._reader.join(5)
            self.stderr.close()

    async def client(self, admin: bool = False) -> Client:
        c = Client("127.0.0.1", self.port)
        await c.connect()
        if admin:
            await c.login(self.admin["apiKey"], self.admin["secret"])
        return c

    def records(self):
        return [r for _, r in LogReader(self.log).records()]


def sim_commands(records) -> list:
    """The commands the simulator sent (the risk consumer's marginCall/liquidate left out),
    without their timestamps."""
    return [as_map(r.command) for r in records
            if not isinstance(r.command, (C.Liquidate, C.MarginCall))]


def events_of(records, kind):
    return [(r.time, e) for r in records for e in r.events if isinstance(e, kind)]


# -- the clock ------------------------------------------------------------------------------
def test_sim_clock_runs_at_speed_from_start_and_never_goes_back():
    now = [0]
    start = parse_iso_ms("2022-09-12T00:00:00Z")
    clock = SimClock(start, "60", monotonic_ns=lambda: now[0])
    assert clock() == start
    now[0] = 1_000_000_000  # one real second
    assert clock() == start + 60_000
    now[0] = 8 * 60 * 1_000_000_000  # eight real minutes: eight simulated hours
    assert clock() == parse_iso_ms("2022-09-12T08:00:00Z")
    now[0] = 1  # a monotonic clock cannot go back, but the clock would not either
    assert clock() == parse_iso_ms("2022-09-12T08:00:00Z")
    now[0] = 5
    half = SimClock(start, "0.5", monotonic_ns=lambda: now[0])
    now[0] = 3_000_000_005
    assert half.speed == Fraction(1, 2)
    assert half() == start + 1_500  # exact: no float on the way
    assert half.describe() == {"mode": "sim", "speed": "0.5", "start": "2022-09-12T00:00:00Z",
                               "origin": "2022-09-12T00:00:00Z"}


def test_sim_clock_after_a_restart_carries_on_from_the_log():
    start = parse_iso_ms("2022-09-12T00:00:00Z")
    later = parse_iso_ms("2022-09-12T05:00:00Z")
    clock = SimClock(start, 60, floor=later, monotonic_ns=lambda: 0)
    assert clock() == later and clock.describe()["origin"] == "2022-09-12T05:00:00Z"


def test_make_clock_checks_its_settings():
    assert isinstance(make_clock("wall"), WallClock)
    assert make_clock("wall").describe() == {"mode": "wall"}
    with pytest.raises(ValueError, match="need --clock sim"):
        make_clock("wall", start="2022-09-12T00:00:00Z")
    with pytest.raises(ValueError, match="need --clock sim"):
        make_clock("wall", speed="60")
    for bad in ("0", "-1", "abc", "2000000"):
        with pytest.raises(ValueError, match="--speed"):
            make_clock("sim", speed=bad)
    with pytest.raises(ValueError, match="ISO"):
        make_clock("sim", speed="60", start="yesterday")
    c = make_clock("sim", speed="60", start="2022-09-12T00:00:00Z")
    assert abs(c() - parse_iso_ms("2022-09-12T00:00:00Z")) < 60_000


def test_serve_refuses_bad_clock_and_market_settings(tmp_path):
    for args, text in ((["--clock", "sim", "--speed", "0"], "--speed"),
                       (["--start", "2022-09-12T00:00:00Z"], "need --clock sim"),
                       (["--scenario", "x.toml"], "add --market")):
        p = subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--log",
                            str(tmp_path / "e.log"), *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2 and text in p.stderr, (args, p.stderr)


# -- recorded prices --------------------------------------------------------------------------
def test_shipped_example_files_are_what_the_generator_writes():
    for rel, make in recorded.EXAMPLE_FILES.items():
        assert (EXAMPLES / rel).read_text() == make(), rel


def test_kline_csv_with_and_without_header_and_microseconds(tmp_path):
    rows = ["1662940800000,100.0,101,99,100.5,1,1662940859999,1,1,1,1,0",
            "1662940860000,100.5,102,100,101.5,1,1662940919999,1,1,1,1,0"]
    a = tmp_path / "ETHUSDT-1m-2022-09-12.csv"
    a.write_text("\n".join(rows) + "\n")
    b = tmp_path / "b" / "ETHUSDT-1m-x.csv"
    b.parent.mkdir()
    b.write_text(",".join(recorded.KLINE_HEADER) + "\n" + "\n".join(
        r.replace("1662940800000", "1662940800000000").replace("1662940859999",
                                                               "1662940859999000")
        for r in rows) + "\n")
    for path in (a, b):
        s = recorded.read_file(path)
        assert s.symbol == "ETHUSDT" and s.kind == "klines" and s.rows == 2
        assert s.price_at(1662940800000) == fixed.parse("100")  # before the first close
        assert s.price_at(1662940859999) == fixed.parse("100.5")
        assert s.price_at(1662940919999 + 10 ** 6) == fixed.parse("101.5")
        assert s.closes == [(1662940859999, fixed.parse("100.5")),
                            (1662940919999, fixed.parse("101.5"))]


def test_agg_trades_csv_zip_folder_and_errors(tmp_path):
    import zipfile
    text = recorded.example_agg_trades(seconds=20)
    body = text.split("\n", 1)[1]  # without the header, as the older files
    z = tmp_path / "ETHUSDT-aggTrades-2022-09-12.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("ETHUSDT-aggTrades-2022-09-12.csv", body)
    s = recorded.read_file(z)
    first = body.splitlines()[0].split(",")
    assert s.kind == "aggTrades" and s.price_at(int(first[5])) == fixed.parse(first[1])
    spot = tmp_path / "spot" / "BTCUSDT-aggTrades-2022-09-12.csv"  # 8 columns
    spot.parent.mkdir()
    spot.write_text("1,20000.5,0.1,1,1,1662940800000,True,True\n")
    assert recorded.load([str(spot.parent)])["BTCUSDT"].prices[0] == fixed.parse("20000.5")
    bad = tmp_path / "BTCUSDT-1m-bad.csv"
    for content, msg in (("1,2,3\n", "columns"), ("", "no rows"),
                         ("2,20000,1,1,1,1662940800000,true\n1,20000,1,1,1,1662940700000,true\n",
                          "backwards"),
                         ("1,abc,1,1,1,1662940800000,true\n", "not a decimal")):
        bad.write_text(content)
        with pytest.raises(recorded.RecordedError, match=msg):
            recorded.read_file(bad)
    with pytest.raises(recorded.RecordedError, match="no such file"):
        recorded.load([str(tmp_path / "nope.csv")])


# -- scenarios --------------------------------------------------------------------------------
def test_the_three_shipped_scenarios_load_and_each_has_a_crash():
    assert len(SCENARIOS) == 3
    for path in SCENARIOS:
        sc = scenarios.load(path, set(DEFAULT_SYMBOLS))
        assert sc.events and any(e.kind == "crash" for e in sc.events), path
    tier = scenarios.load(EXAMPLES / "scenarios" / "eth-tier-change-2022-09-13.toml")
    assert [e.kind for e in tier.events] == ["tier_change", "crash"]


@pytest.mark.parametrize("doc,msg", [
    ({"events": []}, "non-empty"),
    ({"events": [{"kind": "boom", "at": "1s"}]}, "'kind' must be one of"),
    ({"events": [{"kind": "crash", "at": "1s", "percent": 10}]}, "needs over"),
    ({"events": [{"kind": "crash", "at": "soon", "percent": 10, "over": "1m"}]}, "duration"),
    ({"events": [{"kind": "crash", "at": "1s", "percent": 150, "over": "1m"}]}, "between"),
    ({"events": [{"kind": "crash", "at": "1s", "percent": 5, "over": "1m", "speed": 2}]},
     "unknown field"),
    ({"events": [{"kind": "crash", "at": "1s", "percent": 5, "over": "1m",
                  "symbol": "NOPEUSDT"}]}, "not a simulated symbol"),
    ({"events": [{"kind": "pull_liquidity", "at": "1s", "for": "1m", "side": "up"}]}, "side"),
    ({"events": [{"kind": "tier_change", "symbols": ["ETHUSDT", "BTCUSDT"]}]}, "one 'symbol'"),
    ({"events": [{"kind": "move", "percent": 5, "over": "1m"}]}, "'at' is required"),
    ({"name": "x", "colour": "red", "events": [{}]}, "unknown top-level"),
])
def test_bad_scenarios_are_refused_naming_the_fault(doc, msg):
    with pytest.raises(scenarios.ScenarioError, match=msg):
        scenarios.parse(doc, "t.toml", set(DEFAULT_SYMBOLS))


def test_scenario_player_moves_exactly_by_the_percent_whatever_the_step():
    sc = scenarios.parse({"events": [
        {"kind": "crash", "at": "10s", "percent": 12, "over": "60s", "symbol": "BTCUSDT"},
        {"kind": "funding_spike", "at": "0s", "premium": 0.5, "for": "30s",
         "symbol": "ETHUSDT"},
        {"kind": "pull_liquidity", "at": "20s", "for": "5s", "side": "bids", "keep": 0.25}]})
    for dt in (7_000, 10_000, 45_000):
        p = scenarios.Player(sc, 0, ["BTCUSDT", "ETHUSDT"], {})
        total, notes = 1.0, []
        for k in range(20):
            fx, n = p.effects(k * dt, (k + 1) * dt)
            notes += n
            total *= fx.get("BTCUSDT", scenarios.SymbolEffects()).factor
        assert total == pytest.approx(0.88, rel=1e-12)
        assert sum("begins" in n for n in notes) == 3 and sum("ends" in n for n in notes) == 3
    p = scenarios.Player(sc, 0, ["BTCUSDT", "ETHUSDT"], {})
    fx, _ = p.effects(20_000, 21_000)
    assert fx["ETHUSDT"].skew == pytest.approx(0.005) and fx["ETHUSDT"].keep_bids == 0.25
    assert fx["BTCUSDT"].keep_asks == 1.0 and fx["BTCUSDT"].bias < 0


def test_scenario_events_before_the_start_are_skipped_with_a_note():
    sc = scenarios.load(EXAMPLES / "scenarios" / "eth-tier-change-2022-09-13.toml")
    now = parse_iso_ms("2026-01-01T00:00:00Z")
    p = scenarios.Player(sc, now, ["ETHUSDT"], {})  # no later switch under the wall clock
    assert not p.timeline and not p.tier_events and len(p.skipped) == 2
    switch = parse_iso_ms("2022-09-13T07:00:00Z")
    p = scenarios.Player(sc, parse_iso_ms("2022-09-13T06:55:00Z"), ["ETHUSDT"],
                         {"ETHUSDT": switch})
    assert "--clock sim --start 2022-09-13T06:49:00Z" in p.skipped[0]
    p = scenarios.Player(sc, parse_iso_ms("2022-09-13T06:45:00Z"), ["ETHUSDT"],
                         {"ETHUSDT": switch})
    assert p.tier_events == [(5 * 60_000, 15 * 60_000, sc.events[0])]


# -- the simulation, offline ------------------------------------------------------------------
def _offline(seed: int, steps: int = 60, **kw) -> tuple[Simulation, list]:
    start = parse_iso_ms("2022-09-12T00:00:00Z")
    sim = Simulation(Settings(seed=seed, **kw), CAT, start, 30_000, 0.5)
    out = [c for c, _ in sim.setup()]
    sim.begin(start)
    for k in range(steps):
        out += [c for c, _ in sim.step(k)]
    return sim, out


def test_same_seed_same_commands_offline_and_another_seed_differs():
    assert _offline(5)[1] == _offline(5)[1]
    assert _offline(5)[1] != _offline(6)[1]


def test_makers_ladders_straddle_the_centre_with_size_growing_away_from_the_touch():
    sim, cmds = _offline(3, steps=5)
    ladders: dict = {}
    for c in cmds:
        if c["op"] == "cancelAllOrders":
            ladders[(c["account"], c["symbol"])] = []
        elif c["op"] == "newOrder" and c.get("timeInForce") == "GTC":
            ladders[(c["account"], c["symbol"])].append(c)
    ladders = {k: v for k, v in ladders.items() if v}  # not the setup's clean-up
    assert {a for a, _ in ladders} == {m.account for m in sim.makers}
    for (acct, sym), orders in ladders.items():
        profile = PROFILES[acct - 800_000_001]
        bids = [o for o in orders if o["side"] == "BUY"]
        asks = [o for o in orders if o["side"] == "SELL"]
        assert len(bids) == len(asks) == profile.levels
        assert max(fixed.parse(o["price"]) for o in bids) < \
            min(fixed.parse(o["price"]) for o in asks)
        for side in (bids, asks):
            qty = [fixed.parse(o["quantity"]) for o in side]
            spec = CAT.spec(sym)
            if max(qty) > spec.min_qty * 2:  # above the minimum the size grows outward
                assert qty == sorted(qty), (sym, side)


def test_gamblers_are_over_leveraged_on_every_symbol_both_ways():
    sim, _ = _offline(1, steps=1)
    by_symbol = Counter((g.spec.symbol, g.side) for g in sim.gamblers)
    assert set(by_symbol) == {(s, side) for s in DEFAULT_SYMBOLS for side in ("BUY", "SELL")}
    for g in sim.gamblers:
        assert g.leverage >= 10 and g.target * 10 >= g.deposit * g.leverage * 7  # ~80 % of it


# -- end to end --------------------------------------------------------------------------------
def test_start_line_and_an_empty_venue_without_the_market(tmp_path):
    (tmp_path / "a").mkdir()
    v = Venue(tmp_path / "a")
    try:
        line = v.lines[1]
        assert re.search(r"Binance API http://127.0.0.1:\d+, native", line), line
        assert f"native 127.0.0.1:{v.port}" in line
        assert "python -m engine newkey --deposit 10000" in line
        assert "market simulator" in line and "800000001-800999999" in line and \
            "'simulator'" in line and "clock wall" in line
    finally:
        assert v.stop() == 0
    (tmp_path / "b").mkdir()
    v = Venue(tmp_path / "b", market=False)
    try:
        assert "no market simulator" in v.lines[1]
        time.sleep(2)
    finally:
        assert v.stop() == 0
    assert v.records() == []  # nobody moved anything


async def test_the_market_is_alive_within_seconds(tmp_path):
    v = Venue(tmp_path)
    try:
        c = await v.client()
        await c.subscribe(*[f"markPrice@{s}" for s in DEFAULT_SYMBOLS],
                          *[f"trade@{s}" for s in DEFAULT_SYMBOLS])
        marks: dict[str, set] = {s: set() for s in DEFAULT_SYMBOLS}
        trades: Counter = Counter()
        deadline = time.monotonic() + 20
        t0 = time.monotonic()
        while time.monotonic() < deadline:
            if all(len(m) >= 2 for m in marks.values()) and len(trades) >= 4:
                break
            try:
                msg = await asyncio.wait_for(c.streams.get(), 1)
            except asyncio.TimeoutError:
                continue
            kind, sym = msg["stream"].split("@")
            if kind == "markPrice":
                marks[sym].add(msg["data"]["p"])
            else:
                trades[sym] += 1
        alive_after = time.monotonic() - t0
        assert all(len(m) >= 2 for m in marks.values()), marks  # a changing mark everywhere
        assert len(trades) >= 4, trades
        assert alive_after < 10
        for s in DEFAULT_SYMBOLS:
            depth = await c.query("depth", symbol=s)
            assert depth["bids"] and depth["asks"], s
            assert fixed.parse(depth["bids"][0][0]) < fixed.parse(depth["asks"][0][0])
        t = await c.query("time")
        assert t["clock"] == {"mode": "wall"}
        assert abs(t["serverTime"] - time.time() * 1000) < 5_000
        await c.close()
    finally:
        assert v.stop() == 0
    records = v.records()
    accounts = {getattr(r.command, "account", None) for r in records} - {None}
    assert accounts and all(SIM_FIRST <= a <= SIM_LAST for a in accounts)
    assert any("market: simulating" in line for line in v.lines)


def _run_simulator(v: Venue, *args: str) -> dict:
    summary = v.dir / "summary.json"
    p = subprocess.run([sys.executable, "-m", "engine.sim.market", "--port", str(v.port),
                        "--keys", str(v.keys_path), "--report-every", "0", "--summary",
                        str(summary), *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(summary.read_text())


def test_same_seed_twice_gives_the_same_simulator_commands(tmp_path):
    runs = []
    for n, seed in enumerate((7, 7, 8)):
        d = tmp_path / str(n)
        d.mkdir()
        v = Venue(d, market=False)
        try:
            s = _run_simulator(v, "--seed", str(seed), "--steps", "24", "--step-ms", "150")
        finally:
            assert v.stop() == 0
        assert s["steps"] == 24
        runs.append(sim_commands(v.records()))
    assert len(runs[0]) > 300
    kinds = Counter(c["op"] for c in runs[0])
    assert kinds["setIndexPrices"] == 24 and kinds["newOrder"] > 200
    assert runs[0] == runs[1]  # prices, sides, sizes and prices, in order
    assert runs[0] != runs[2]


async def test_recorded_prices_are_followed_within_the_makers_spread(tmp_path):
    series = recorded.read_file(KLINES)
    closes = dict(series.closes)
    v = Venue(tmp_path, "--clock", "sim", "--speed", "60", "--start", "2022-09-12T00:00:00Z",
              "--symbols", "BTCUSDT", "--prices", str(KLINES))
    seen = []
    try:
        c = await v.client()
        await c.subscribe("markPrice@BTCUSDT", "trade@BTCUSDT")
        trades = []
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(c.streams.get(), 1)
            except asyncio.TimeoutError:
                continue
            d = msg["data"]
            if msg["stream"].startswith("markPrice"):
                seen.append((d["E"], fixed.parse(d["p"]), fixed.parse(d["i"])))
            else:
                trades.append((d["T"], fixed.parse(d["p"])))
        t = await c.query("time")
        await c.close()
    finally:
        assert v.stop() == 0
    assert t["clock"]["mode"] == "sim" and t["clock"]["speed"] == "60"
    assert parse_iso_ms("2022-09-12T00:00:00Z") < t["serverTime"] < \
        parse_iso_ms("2022-09-12T00:20:00Z")
    assert len(seen) >= 15
    opening = series.prices[0]
    values = set(closes.values()) | {opening}
    tight = PROFILES[0].half_spread  # ppm
    distinct = []
    for when, mark, index in seen:
        assert index in values, fixed.fmt(index)  # every index is a close of the file
        # ... of a kline that closed within a step (30 s simulated) of the update
        if index != opening:
            times = [ct for ct, cl in series.closes if cl == index]
            assert any(abs(when - ct) <= 90_000 for ct in times), (iso(when), fixed.fmt(index))
        # the mark stays within the tight maker's half-spread (and a tick) of the index
        assert abs(mark - index) <= index * tight // 1_000_000 + CAT.spec("BTCUSDT").tick_size, \
            (fixed.fmt(mark), fixed.fmt(index))
        if not distinct or distinct[-1] != index:
            distinct.append(index)
    # the closes come in the file's order, none skipped
    order = [cl for _, cl in series.closes]
    first = order.index(distinct[1]) if distinct[0] == opening else order.index(distinct[0])
    expect = order[first:first + len(distinct) - (1 if distinct[0] == opening else 0)]
    got = distinct[1:] if distinct[0] == opening else distinct
    dedup = [x for i, x in enumerate(expect) if i == 0 or expect[i - 1] != x]
    assert got == dedup and len(got) >= 6
    assert trades
    for when, price in trades:  # trades within 1 % of the index (the file's close) then
        ref = max(((e, i) for e, _, i in seen if e <= when), default=(0, seen[0][2]))[1]
        assert abs(price - ref) * 100 <= ref, (iso(when), fixed.fmt(price), fixed.fmt(ref))


def test_a_funding_settlement_within_the_test_at_speed_3600_pays_exactly_zero(tmp_path):
    v = Venue(tmp_path, "--clock", "sim", "--speed", "3600", "--start", "2022-09-12T06:00:00Z")
    try:
        deadline = time.monotonic() + 30
        settled = parse_iso_ms("2022-09-12T08:00:00Z")

        async def now():
            c = await v.client()
            t = await c.query("time")
            await c.close()
            return t

        while time.monotonic() < deadline:
            t = asyncio.run(now())
            if t["serverTime"] > settled + 3_600_000:
                break
            time.sleep(0.5)
        assert t["clock"]["mode"] == "sim" and t["clock"]["speed"] == "3600"
        # the Binance API reports the venue's (simulated) time too, and its default windows
        # start from it: the week of userTrades-like queries is the simulated week
        api = re.search(r"Binance API (http://127.0.0.1:\d+)", v.lines[1]).group(1)
        for path, key in (("/fapi/v1/time", "serverTime"), ("/fapi/v1/exchangeInfo",
                                                            "serverTime")):
            with urllib.request.urlopen(api + path, timeout=10) as r:
                when = json.loads(r.read())[key]
            assert settled < when < parse_iso_ms("2022-09-13T00:00:00Z"), (path, iso(when))
        with urllib.request.urlopen(api + "/fapi/v1/premiumIndex?symbol=BTCUSDT",
                                    timeout=10) as r:
            assert settled < json.loads(r.read())["time"] < parse_iso_ms("2022-09-13T00:00:00Z")
    finally:
        assert v.stop() == 0
    records = v.records()
    header = LogReader(v.log)
    header.read_header()
    assert header.header.engine_config["clock"] == {
        "mode": "sim", "speed": "3600", "start": "2022-09-12T06:00:00Z",
        "origin": "2022-09-12T06:00:00Z"}
    rates = [e for _, e in events_of(records, V.FundingRateSet) if e.funding_time == settled]
    assert {e.symbol for e in rates} == set(DEFAULT_SYMBOLS)
    paid = [e for _, e in events_of(records, V.FundingPaid) if e.funding_time == settled]
    assert len(paid) >= 20
    for sym in DEFAULT_SYMBOLS:
        mine = [e.amount for e in paid if e.symbol == sym]
        assert mine and sum(mine) == 0, sym  # payments sum to exactly zero
    assert any(e.amount != 0 for e in paid)


# -- the shipped scenarios (slow) ------------------------------------------------------------
def gamblers(at: str) -> dict[int, tuple[str, str]]:
    """The over-leveraged accounts of the default settings: account -> (symbol, BUY|SELL)."""
    sim = Simulation(Settings(), CAT, parse_iso_ms(at), 30_000, 0.5)
    return {g.account: (g.spec.symbol, g.side) for g in sim.gamblers}


def facts(records, accounts, t0: int, t1: int) -> tuple[set[int], set[int]]:
    """The accounts margin-called and liquidated in [t0, t1]."""
    called = {e.account for t, e in events_of(records, V.MarginCallIssued)
              if e.account in accounts and t0 <= t <= t1}
    liquidated = {e.account for t, e in events_of(records, V.LiquidationStarted)
                  if e.account in accounts and t0 <= t <= t1}
    return called, liquidated


def _run_scenario(tmp_path, name: str, seconds: float, *clock: str) -> Venue:
    v = Venue(tmp_path, *clock, "--scenario", str(EXAMPLES / "scenarios" / name))
    try:
        time.sleep(seconds)
    finally:
        assert v.stop() == 0
    assert not any("skipped" in line for line in v.lines), v.lines
    return v


def _began(v: Venue, what: str) -> int:
    """The simulated time the simulator announced `what ... begins` at."""
    line = next(x for x in v.lines if what in x and "begins" in x)
    return parse_iso_ms(line.split()[1])


@pytest.mark.slow
def test_btc_crash_scenario_margin_calls_and_liquidates_the_over_leveraged(tmp_path):
    v = _run_scenario(tmp_path, "btc-crash.toml", 10, "--clock", "sim", "--speed", "20",
                      "--start", "2022-09-12T00:00:00Z")
    records = v.records()
    crash = _began(v, "crash BTCUSDT")
    longs = {a for a, (sym, side) in gamblers("2022-09-12T00:00:00Z").items()
             if sym == "BTCUSDT" and side == "BUY"}
    called, liquidated = facts(records, longs, crash, crash + 2 * 60_000)
    assert called and len(liquidated) == len(longs) == 2, (called, liquidated)
    _, before = facts(records, longs, 0, crash - 1)
    assert not before  # the crash did it, not the noise


@pytest.mark.slow
def test_eth_squeeze_and_funding_scenario(tmp_path):
    v = _run_scenario(tmp_path, "eth-squeeze-funding.toml", 20, "--clock", "sim", "--speed",
                      "30", "--start", "2022-09-12T07:55:00Z")
    records = v.records()
    layout = gamblers("2022-09-12T07:55:00Z")
    squeeze, crash = _began(v, "squeeze ETHUSDT"), _began(v, "crash ETHUSDT,BTCUSDT")
    shorts = {a for a, (sym, side) in layout.items() if sym == "ETHUSDT" and side == "SELL"}
    called, liquidated = facts(records, shorts, squeeze, squeeze + 2 * 60_000)
    assert called and liquidated, (called, liquidated)
    longs = {a for a, (sym, side) in layout.items()
             if sym in ("ETHUSDT", "BTCUSDT") and side == "BUY"}
    called, liquidated = facts(records, longs, crash, crash + 3 * 60_000)
    assert called and len(liquidated) >= 2, (called, liquidated)
    # the premium spike: ETHUSDT's funding at 08:00 far above the others' 0.01 %
    rates = {e.symbol: e.funding_rate for _, e in events_of(records, V.FundingRateSet)
             if e.funding_time == parse_iso_ms("2022-09-12T08:00:00Z")}
    assert rates["ETHUSDT"] >= fixed.parse("0.002") > fixed.parse("0.0001") == rates["BTCUSDT"]


@pytest.mark.slow
def test_eth_tier_change_scenario_the_switch_liquidates_what_the_old_table_allowed(tmp_path):
    switch = parse_iso_ms("2022-09-13T07:00:00Z")
    v = _run_scenario(tmp_path, "eth-tier-change-2022-09-13.toml", 16, "--clock", "sim",
                      "--speed", "120", "--start", "2022-09-13T06:45:00Z")
    records = v.records()
    switched = events_of(records, V.BracketTableSwitched)
    assert [(e.symbol, e.table) for _, e in switched] == [("ETHUSDT",
                                                           "ETHUSDT-75x-from-2022-09-13")]
    assert switch <= switched[0][0] < switch + 60_000
    tier_accounts = set(range(800_000_301, 800_000_307))
    called, _ = facts(records, tier_accounts, 0, switch - 1)
    _, early = facts(records, tier_accounts, 0, switch - 1)
    _, at_switch = facts(records, tier_accounts, switch, switch + 60_000)
    assert len(called) >= 3 and not early  # margin-called, alive under the old table
    # the switch liquidates them (one at 77-80 % under the old table is liquidated without a
    # margin call first: 0.5 % / 0.65 % of the new table's ratio)
    assert len(at_switch & called) >= 3, (called, at_switch)
    crash = _began(v, "crash ETHUSDT")
    longs = {a for a, (sym, side) in gamblers("2022-09-13T06:45:00Z").items()
             if sym == "ETHUSDT" and side == "BUY"}
    called, liquidated = facts(records, longs, crash, crash + 3 * 60_000)
    assert called and liquidated, (called, liquidated)


@pytest.mark.slow
def test_a_restarted_venue_carries_on_from_its_prices_and_clock(tmp_path):
    v = Venue(tmp_path, "--clock", "sim", "--speed", "60", "--start", "2022-09-12T00:00:00Z")
    time.sleep(4)
    assert v.stop() == 0
    first = v.records()
    last_index = {e.symbol: e.index_price for _, e in events_of(first, V.IndexPriceUpdated)}
    v = Venue(tmp_path, "--clock", "sim", "--speed", "60", "--start", "2022-09-12T00:00:00Z")
    time.sleep(3)
    assert v.stop() == 0
    assert "log already past --start" in v.lines[1]
    second = v.records()[len(first):]
    assert second[0].time >= first[-1].time
    again = {}
    for _, e in events_of(second, V.IndexPriceUpdated):
        again.setdefault(e.symbol, e.index_price)
    for sym, price in again.items():  # no jump back to the default starting prices
        assert abs(price - last_index[sym]) * 50 < last_index[sym], sym
    reject = [e for _, e in events_of(second, V.OrderRejected)]
    assert len(reject) <= 2, reject
