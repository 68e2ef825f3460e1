"""Scripted scenarios: timed events a bot developer wants to test against (`--scenario FILE`).

A scenario is a TOML or JSON file:

    name = "BTC crash"
    description = "..."
    [clock]                        # optional: the clock it is meant for; the simulator says so
    speed = 60                     # when the server's differs
    start = "2022-09-13T06:45:00Z"

    [[events]]
    at = "30s"                     # simulated time after the simulator starts ("90s", "5m",
    kind = "crash"                 # "1h30m", a number of seconds) or an ISO-8601 time
    symbol = "BTCUSDT"             # or symbols = [...], or "all"
    percent = 12
    over = "60s"

Kinds (times are simulated time, so --clock sim --speed N runs a scenario N times faster):

    crash           percent (down), over: the index falls by `percent` spread evenly (in log
                    terms) over `over`; takers lean to selling meanwhile
    squeeze         percent (up), over, thin (default 0.25): the index rises; the makers' asks
                    keep only `thin` of their size; takers lean to buying
    move            percent (signed), over: a plain drift (a recovery, a slow slide)
    pull_liquidity  for, side (both|bids|asks, default both), keep (default 0): the makers keep
                    only `keep` of their size on that side (0: the book empties of them)
    funding_spike   premium (percent, signed), for: the makers quote around index x (1 +
                    premium), so the premium index, the mark and the next funding rate follow
    volatility      times, for: the paths' noise is multiplied by `times` (0: calm)
    tier_change     symbol, lead (default 10m), accounts (default 6): the next bracket-table
                    switch of the symbol (catalogue; ETHUSDT's at 2022-09-13T07:00:00Z); `lead`
                    before it, accounts are opened that the old table keeps alive and the new one
                    liquidates, the index drifts to where that holds and stays calm until the
                    switch has happened. `at` may be given; by default it is the switch.

Events whose time is already past at the simulator's start are skipped with a note (an ISO
time in 2022 under the wall clock, say).
"""
from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.timeutil import iso, parse_iso_ms

EXAMPLES = Path(__file__).resolve().parent / "examples" / "scenarios"

KINDS = {
    # kind: (required fields, optional fields with defaults)
    "crash": ({"percent", "over"}, {}),
    "squeeze": ({"percent", "over"}, {"thin": 0.25}),
    "move": ({"percent", "over"}, {}),
    "pull_liquidity": ({"for"}, {"side": "both", "keep": 0.0}),
    "funding_spike": ({"premium", "for"}, {}),
    "volatility": ({"times", "for"}, {}),
    "tier_change": (set(), {"lead": "10m", "accounts": 6}),
}
COMMON = {"at", "kind", "symbol", "symbols", "note"}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


class ScenarioError(ValueError):
    pass


def parse_duration(value, where: str) -> int:
    """'90s', '5m', '1h30m', 45 (seconds) -> ms (> 0)."""
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: not a duration: {value!r}")
    if isinstance(value, (int, float)):
        ms = int(round(value * 1000))
    elif isinstance(value, str) and value.strip() and _DURATION.match(value.strip()):
        h, m, s = _DURATION.match(value.strip()).groups()
        ms = (int(h or 0) * 3600 + int(m or 0) * 60) * 1000 + int(round(float(s or 0) * 1000))
    else:
        raise ScenarioError(f"{where}: not a duration (e.g. \"90s\", \"5m\", \"1h30m\"): "
                            f"{value!r}")
    if ms <= 0:
        raise ScenarioError(f"{where}: a duration must be positive")
    return ms


@dataclass
class Event:
    index: int
    kind: str
    symbols: list[str] | None  # None: every simulated symbol
    at_text: str | None
    at_offset: int | None  # ms after the start, when relative
    at_time: int | None  # ms, when absolute
    params: dict
    duration: int = 0  # ms: "over" or "for"
    note: str = ""

    def label(self) -> str:
        what = ",".join(self.symbols) if self.symbols else "all symbols"
        return f"#{self.index + 1} {self.kind} {what}" + (f" ({self.note})" if self.note else "")


@dataclass
class Scenario:
    name: str
    description: str
    events: list[Event]
    clock: dict = field(default_factory=dict)
    source: str = ""


def _number(ev: dict, key: str, where: str, lo: float | None = None,
            hi: float | None = None) -> float:
    v = ev[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ScenarioError(f"{where}: '{key}' must be a number, not {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ScenarioError(f"{where}: '{key}' must be between {lo} and {hi}, not {v}")
    return float(v)


def parse(doc: dict, source: str = "scenario", symbols: set[str] | None = None) -> Scenario:
    """A scenario from its decoded document; every fault names the event and the field."""
    if not isinstance(doc, dict):
        raise ScenarioError(f"{source}: expected a table/object at the top")
    unknown = set(doc) - {"name", "description", "clock", "events"}
    if unknown:
        raise ScenarioError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    raw = doc.get("events")
    if not isinstance(raw, list) or not raw:
        raise ScenarioError(f"{source}: 'events' must be a non-empty list ([[events]] in TOML)")
    clock = doc.get("clock", {})
    if not isinstance(clock, dict) or set(clock) - {"speed", "start"}:
        raise ScenarioError(f"{source}: 'clock' may hold 'speed' and 'start' only")
    if "start" in clock:
        try:
            parse_iso_ms(str(clock["start"]))
        except ValueError as exc:
            raise ScenarioError(f"{source}: clock.start: {exc}") from None
    events = []
    for i, ev in enumerate(raw):
        where = f"{source}: event #{i + 1}"
        if not isinstance(ev, dict):
            raise ScenarioError(f"{where}: expected a table/object")
        kind = ev.get("kind")
        if kind not in KINDS:
            raise ScenarioError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, "
                                f"not {kind!r}")
        required, optional = KINDS[kind]
        allowed = COMMON | required | set(optional) | ({"over"} if "over" in required else set())
        extra = set(ev) - allowed
        if extra:
            raise ScenarioError(f"{where}: unknown field(s) for {kind}: "
                                f"{', '.join(sorted(extra))}")
        missing = required - set(ev)
        if missing:
            raise ScenarioError(f"{where}: {kind} needs {', '.join(sorted(missing))}")
        params = {**optional, **{k: v for k, v in ev.items() if k not in COMMON}}
        # symbols
        if "symbol" in ev and "symbols" in ev:
            raise ScenarioError(f"{where}: give 'symbol' or 'symbols', not both")
        names = ev.get("symbols", ev.get("symbol"))
        if names is None or names == "all":
            sel = None
        else:
            sel = [names] if isinstance(names, str) else names
            if not isinstance(sel, list) or not sel or not all(isinstance(s, str) for s in sel):
                raise ScenarioError(f"{where}: 'symbols' must be a symbol or a list of them")
            if symbols is not None:
                bad = [s for s in sel if s not in symbols]
                if bad:
                    raise ScenarioError(f"{where}: not a simulated symbol: {', '.join(bad)} "
                                        f"(simulated: {', '.join(sorted(symbols))})")
        if kind == "tier_change" and (sel is None or len(sel) != 1):
            raise ScenarioError(f"{where}: tier_change needs one 'symbol'")
        # time
        at = ev.get("at")
        at_offset = at_time = None
        if at is None:
            if kind != "tier_change":
                raise ScenarioError(f"{where}: 'at' is required")
        elif isinstance(at, str) and "T" in at:
            try:
                at_time = parse_iso_ms(at)
            except ValueError as exc:
                raise ScenarioError(f"{where}: 'at': {exc}") from None
        elif at == 0 or at == "0s":
            at_offset = 0
        else:
            at_offset = parse_duration(at, f"{where}: 'at'")
        duration = 0
        if kind in ("crash", "squeeze", "move"):
            hi = 99 if kind == "crash" else 1000
            pct = _number(ev, "percent", where, -99 if kind == "move" else 0, hi)
            if pct == 0:
                raise ScenarioError(f"{where}: 'percent' must not be 0")
            params["percent"] = pct
            duration = parse_duration(ev["over"], f"{where}: 'over'")
        elif kind in ("pull_liquidity", "funding_spike", "volatility"):
            duration = parse_duration(ev["for"], f"{where}: 'for'")
        if kind == "squeeze":
            params["thin"] = _number(params, "thin", where, 0, 1)
        if kind == "pull_liquidity":
            params["keep"] = _number(params, "keep", where, 0, 1)
            if params["side"] not in ("both", "bids", "asks"):
                raise ScenarioError(f"{where}: 'side' must be both, bids or asks")
        if kind == "funding_spike":
            params["premium"] = _number(ev, "premium", where, -5, 5)
        if kind == "volatility":
            params["times"] = _number(ev, "times", where, 0, 100)
        if kind == "tier_change":
            params["lead"] = parse_duration(params["lead"], f"{where}: 'lead'")
            n = params["accounts"]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 50:
                raise ScenarioError(f"{where}: 'accounts' must be an integer 1..50")
        events.append(Event(i, kind, sel, None if at is None else str(at), at_offset, at_time,
                            params, duration, str(ev.get("note", ""))))
    name = doc.get("name", Path(source).stem)
    return Scenario(str(name), str(doc.get("description", "")), events, dict(clock), source)


def load(path: str | Path, symbols: set[str] | None = None) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}:"
                            f" {exc}") from None
    return parse(doc, str(path), symbols)


# -- playing a scenario ---------------------------------------------------------------------
@dataclass
class SymbolEffects:
    """What the scenario does to one symbol during one step."""
    factor: float = 1.0  # price multiplier for this step
    noise: float = 1.0  # noise multiplier
    bias: float = 0.0  # takers: +: more buys, -: more sells (-1..1)
    keep_bids: float = 1.0  # makers' size kept on each side
    keep_asks: float = 1.0
    skew: float = 0.0  # makers' quotes centred on index x (1 + skew)


class Player:
    """Turns a scenario into per-step effects. `start` is the simulated time of step 0; a step
    covers [t0, t1) in ms after it."""

    def __init__(self, scenario: Scenario, start: int, symbols: list[str],
                 switch_times: dict[str, int]) -> None:
        self.scenario = scenario
        self.symbols = symbols
        self.start = start
        self.skipped: list[str] = []
        self.timeline: list[tuple[int, int, Event]] = []  # (offset, end offset, event)
        self.tier_events: list[tuple[int, int, Event]] = []  # (setup offset, switch, event)
        self.announced: set[tuple[int, str]] = set()
        for ev in scenario.events:
            if ev.kind == "tier_change":
                sym = ev.symbols[0]
                switch = ev.at_time if ev.at_time is not None else \
                    (start + ev.at_offset if ev.at_offset is not None else switch_times.get(sym))
                if switch is None:
                    self.skipped.append(f"{ev.label()}: {sym} has no later bracket-table "
                                        "switch in the catalogue")
                    continue
                setup = switch - start - ev.params["lead"]
                if setup < 0:
                    self.skipped.append(
                        f"{ev.label()}: the switch at {iso(switch)} is less than its lead "
                        f"before the start ({iso(start)}); start the server with --clock sim "
                        f"--start {iso(switch - ev.params['lead'] - 60_000)}")
                    continue
                self.tier_events.append((setup, switch - start, ev))
                # calm from the setup until a minute after the switch
                calm_end = switch - start + 60_000
                self.timeline.append((setup, calm_end,
                                      Event(ev.index, "volatility", ev.symbols, None, None, None,
                                            {"times": 0.0}, calm_end - setup,
                                            "calm around the switch")))
                continue
            offset = ev.at_offset if ev.at_offset is not None else ev.at_time - start
            if offset < 0:
                self.skipped.append(f"{ev.label()}: its time {ev.at_text} is before the start "
                                    f"({iso(start)})")
                continue
            self.timeline.append((offset, offset + ev.duration, ev))
        self.timeline.sort(key=lambda x: (x[0], x[2].index))

    def affects(self, ev: Event, symbol: str) -> bool:
        return ev.symbols is None or symbol in ev.symbols

    def effects(self, t0: int, t1: int) -> tuple[dict[str, SymbolEffects], list[str]]:
        """Per symbol the effects over [t0, t1), and lines announcing what began or ended."""
        out: dict[str, SymbolEffects] = {}
        notes: list[str] = []
        for begin, end, ev in self.timeline:
            if begin >= t1:
                break
            if end <= t0:
                continue  # over
            if (begin, ev.label()) not in self.announced:
                self.announced.add((begin, ev.label()))
                notes.append(f"{ev.label()} begins" + _describe(ev))
            if end <= t1:
                notes.append(f"{ev.label()} ends")
            for sym in self.symbols:
                if not self.affects(ev, sym):
                    continue
                fx = out.setdefault(sym, SymbolEffects())
                k = ev.kind
                if k in ("crash", "squeeze", "move"):
                    pct = ev.params["percent"]
                    total = 1 - pct / 100 if k == "crash" else 1 + pct / 100
                    share = (min(t1, end) - max(t0, begin)) / (end - begin)
                    fx.factor *= total ** share
                    if k == "crash":
                        fx.bias = -0.4
                    elif k == "squeeze":
                        fx.bias = 0.4
                        fx.keep_asks = min(fx.keep_asks, ev.params["thin"])
                elif k == "pull_liquidity":
                    keep = ev.params["keep"]
                    if ev.params["side"] in ("both", "bids"):
                        fx.keep_bids = min(fx.keep_bids, keep)
                    if ev.params["side"] in ("both", "asks"):
                        fx.keep_asks = min(fx.keep_asks, keep)
                elif k == "funding_spike":
                    fx.skew += ev.params["premium"] / 100
                elif k == "volatility":
                    fx.noise *= ev.params["times"]
        return out, notes

    def tier_setups(self, t0: int, t1: int) -> list[tuple[Event, int]]:
        """tier_change events whose setup falls in [t0, t1), with their switch offset."""
        return [(ev, switch) for setup, switch, ev in self.tier_events if t0 <= setup < t1]


def _describe(ev: Event) -> str:
    p = ev.params
    k = ev.kind
    if k in ("crash", "squeeze", "move"):
        sign = "-" if k == "crash" else ("+" if k == "squeeze" or p["percent"] > 0 else "")
        return f": {sign}{abs(p['percent']):g} % over {ev.duration / 1000:g} s"
    if k == "pull_liquidity":
        return f": {p['side']} keep {p['keep']:g} for {ev.duration / 1000:g} s"
    if k == "funding_spike":
        return f": makers quote at index {p['premium']:+g} % for {ev.duration / 1000:g} s"
    if k == "volatility":
        return f": noise x{p['times']:g} for {ev.duration / 1000:g} s"
    return ""


__all__ = ["Scenario", "Event", "Player", "SymbolEffects", "ScenarioError", "load", "parse",
           "parse_duration", "EXAMPLES", "KINDS"]
