"""The market simulator: a venue that moves (`make run` starts it with the server).

    python -m engine.sim.market [--host H --port P] [--keys FILE | env PERPENGINE_SIM_KEY/SECRET]
        [--symbols ALLUSDT,BTCUSDT,...] [--seed N] [--prices FILE_OR_DIR ...]
        [--scenario FILE] [--step-ms 500] [--duration S | --steps N]

A client of the server like any other: one connection over the native protocol
(engine.client), logged in with an admin key, which feeds index prices and acts for the
simulator's own accounts by naming them. It never touches the core. Every step (every
`--step-ms` of real time; `step-ms x speed` of simulated time under --clock sim):

  1. the scenario's effects for the step (engine.sim.scenarios)
  2. each fed symbol's index path advances (engine.sim.pricepaths: a seeded random walk with
     jumps, or a recorded file: engine.sim.recorded)
  3. makers re-centre their ladders where the centre moved (engine.sim.makers)
  4. setIndexPrices with every fed symbol's index; the core computes ALLUSDT's composite, the
     marks, premiums and funding (sampled from the fresh quotes)
  5. noise takers trade (engine.sim.takers)
  6. over-leveraged accounts read their account or re-open (engine.sim.leveraged)

The step's commands go out pipelined on the one connection, in that order, and the simulator
waits for their replies before the next step. With nothing else connected the same seed gives
the same commands (only the over-leveraged accounts read state, and what they read is the
state those same commands made).

Accounts (the `simulator`, a reserved range from --account-base, 800000000 by default):
    base+1..      makers (1x leverage, 50,000,000 USDT each)
    base+101..    noise takers (5x, 20,000,000 USDT)
    base+201..    over-leveraged gamblers (1,000 USDT, 10x-125x)
    base+301..    a tier_change event's accounts (10 per event)
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

from engine.client import ClientError
from engine.core import catalogue as catalogue_mod
from engine.core import composite, fixed
from engine.core.catalogue import Catalogue, SymbolSpec
from engine.core.timeutil import iso
from engine.sim import recorded as recorded_mod
from engine.sim import scenarios as scenarios_mod
from engine.sim.leveraged import TierSwitch, plan_gamblers
from engine.sim.makers import PPM, PROFILES, Maker
from engine.sim.pricepaths import GbmPath, PathSettings, RecordedPath, default_start
from engine.sim.takers import NoiseTakers
from engine.sim.connections import LoadClient
from proto import wire

__all__ = ["Simulation", "Settings", "SimError", "main", "run", "DEFAULT_SYMBOLS"]

SCALE = fixed.SCALE
# the composite, BTC, ETH (100x -> 75x on 2022-09-13), and one symbol of a few tier groups:
# BNBUSDT (75x table), SOLUSDT (its own 50x table), AVAXUSDT (the DOGE-FTM-AVAX-MATIC 50x
# table), BTCDOMUSDT (25x table)
DEFAULT_SYMBOLS = ("ALLUSDT", "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "AVAXUSDT",
                   "BTCDOMUSDT")
DEFAULT_ACCOUNT_BASE = 800_000_000
COMPOSITE = composite.COMPOSITE_SYMBOL


@dataclass
class Settings:
    symbols: list[str] = field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    seed: int = 1
    account_base: int = DEFAULT_ACCOUNT_BASE
    step_ms: int = 500  # real time per step
    takers: int = 3
    taker_rate: float = 1.5  # orders per symbol per real second
    gamblers: int = 28  # two long and two short per default symbol
    gambler_deposit: int = 1_000  # USDT
    gambler_every: int = 10  # steps between a gambler's looks at its account
    maker_deposit: int = 50_000_000
    taker_deposit: int = 20_000_000
    insurance: int = 10_000_000
    prices: list[str] = field(default_factory=list)
    scenario: str | None = None


class SimError(Exception):
    """A bad setting: the message names it (exit status 2)."""


class Simulation:
    """The simulator's whole state and decisions, without I/O: `setup()` and `step(k)` give
    the commands (dicts for the native protocol, with a reply tag each), `on_reply` digests
    the answers. Deterministic for a seed and the same replies."""

    def __init__(self, s: Settings, catalogue: Catalogue, at_ms: int, dt_ms: int,
                 step_s: float, current_index: dict[str, int] | None = None) -> None:
        """The participants (accounts, leverage from the tables in force at `at_ms`); the
        paths and the scenario come with `begin(start)`, once the setup is done."""
        self.s = s
        self.catalogue = catalogue
        self.start = at_ms  # simulated ms of step 0 (set again by begin)
        self.dt = dt_ms
        self.step_s = step_s
        self.notes: list[str] = []
        for sym in s.symbols:
            if sym not in catalogue.symbols:
                raise SimError(f"--symbols: unknown symbol {sym}")
        if len(set(s.symbols)) != len(s.symbols) or not s.symbols:
            raise SimError("--symbols: give each symbol once, at least one")
        self.specs: dict[str, SymbolSpec] = {sym: catalogue.symbols[sym] for sym in s.symbols}
        self.symbols = list(s.symbols)
        self.fed = [sym for sym in self.symbols if sym != COMPOSITE]
        if COMPOSITE in self.specs and not any(
                composite.is_eligible(self.specs[sym]) for sym in self.fed):
            raise SimError(f"{COMPOSITE}'s index is computed from its constituents: simulate "
                           "at least one USDT perpetual with it (e.g. BTCUSDT)")
        self.current = dict(current_index or {})
        self.series = recorded_mod.load(s.prices) if s.prices else {}
        for sym in self.series:
            if sym not in self.fed:
                raise SimError(f"--prices: {sym} is not among the simulated fed symbols "
                               f"({', '.join(self.fed)})")
        self.scenario = scenarios_mod.load(s.scenario, set(self.symbols)) if s.scenario else None
        for ev in self.scenario.events if self.scenario else ():
            if ev.kind not in ("pull_liquidity", "funding_spike") and ev.symbols and \
                    COMPOSITE in ev.symbols:
                raise SimError(f"{self.scenario.source}: {ev.label()}: {COMPOSITE}'s index "
                               "follows its constituents; move them instead")
        self.index: dict[str, int] = {}
        sizing = {}
        for sym in self.symbols:
            if sym in self.series:
                sizing[sym] = self.series[sym].prices[0]
            elif self.current.get(sym):
                sizing[sym] = self.current[sym]
            elif sym == COMPOSITE:
                sizing[sym] = composite.BASE_VALUE
            else:
                sizing[sym] = default_start(self.specs[sym])[0]
        # -- participants
        base = s.account_base
        self.makers = [Maker(base + 1 + i, p, s.seed) for i, p in enumerate(PROFILES)]
        self.taker_accounts = [base + 101 + i for i in range(s.takers)]
        self.takers = NoiseTakers(self.taker_accounts, s.seed, s.taker_rate)
        self.gamblers = plan_gamblers(self.specs, self.symbols, s.gamblers, base + 201,
                                      s.gambler_deposit, at_ms, sizing, s.gambler_every)
        self.paths: dict[str, GbmPath | RecordedPath] = {}
        self.player: scenarios_mod.Player | None = None
        self.tiers: list[TierSwitch] = []
        self.tier_at: dict[int, TierSwitch] = {}
        self.drifts: dict[str, tuple[float, int]] = {}  # symbol -> (factor per step, steps left)
        self.sent = 0
        self.commands: Counter = Counter()
        self.rejections: Counter = Counter()
        self.k = 0

    def begin(self, start: int) -> None:
        """Step 0 is at simulated time `start`: the price paths (from the venue's current
        index where it has one, so a restart does not jump) and the scenario's timeline."""
        s = self.s
        self.start = start
        for sym in self.fed:
            spec = self.specs[sym]
            begin, vol = default_start(spec)
            settings = PathSettings(vol=vol)
            if sym in self.series:
                ser = self.series[sym]
                # the file's own time when the clock is inside it, else from its beginning
                origin = start if ser.first_time <= start <= ser.last_time else ser.first_time
                path: GbmPath | RecordedPath = RecordedPath(spec, ser, origin, settings, s.seed)
                self.notes.append(f"{sym}: {ser.kind} from {ser.source} ({ser.rows} rows, "
                                  f"{iso(ser.first_time)} to {iso(ser.last_time)}), played "
                                  f"from {iso(origin)}")
            else:
                path = GbmPath(spec, self.current.get(sym) or begin, settings, s.seed)
            self.paths[sym] = path
            self.index[sym] = path.price
        if COMPOSITE in self.specs and self.current.get(COMPOSITE):
            self.index[COMPOSITE] = self.current[COMPOSITE]
        sc = self.scenario
        if sc is None:
            return
        switches = {}
        for sym, spec in self.specs.items():
            later = [t for t, _ in spec.schedule if t > start]
            if later:
                switches[sym] = later[0]
        self.player = scenarios_mod.Player(sc, start, self.symbols, switches)
        self.notes.append(f"scenario {sc.name!r} ({sc.source}): {len(sc.events)} events"
                          + (f"; {sc.description}" if sc.description else ""))
        self.notes += [f"scenario: skipped {m}" for m in self.player.skipped]
        if sc.clock:
            self.notes.append("scenario: meant for --clock sim" +
                              (f" --speed {sc.clock['speed']}" if "speed" in sc.clock else "") +
                              (f" --start {sc.clock['start']}" if "start" in sc.clock else ""))
        for j, (setup, switch, ev) in enumerate(self.player.tier_events):
            accounts = [s.account_base + 301 + 10 * j + i for i in range(ev.params["accounts"])]
            ts = TierSwitch(self.specs[ev.symbols[0]], start + switch, accounts, ev.label())
            self.tiers.append(ts)
            self.tier_at[setup // self.dt] = ts

    # -- who is who --------------------------------------------------------------------------
    def roster(self) -> str:
        def span(accts: list[int]) -> str:
            return f"{accts[0]}-{accts[-1]}" if len(accts) > 1 else str(accts[0])
        parts = [f"makers {span([m.account for m in self.makers])}"]
        if self.taker_accounts:
            parts.append(f"takers {span(self.taker_accounts)}")
        if self.gamblers:
            parts.append(f"over-leveraged {span([g.account for g in self.gamblers])}")
        for ts in self.tiers:
            parts.append(f"tier-switch {span(ts.accounts)}")
        return ", ".join(parts)

    # -- setup -------------------------------------------------------------------------------
    def setup(self) -> list[tuple[dict, object]]:
        """Accounts (created with registeredAt 0, i.e. long established), deposits,
        leverage, the insurance fund; cancel anything left from an earlier run."""
        out: list[tuple[dict, object]] = []
        funded = [(m.account, self.s.maker_deposit, 1) for m in self.makers] + \
            [(a, self.s.taker_deposit, 5) for a in self.taker_accounts]
        for acct, amount, lev in funded:
            out.append(({"op": "createAccount", "account": acct, "registeredAt": 0},
                        ("new", acct, amount)))
            for sym in self.symbols:
                out.append(({"op": "setLeverage", "account": acct, "symbol": sym,
                             "leverage": lev}, None))
        for m in self.makers:
            for sym in self.symbols:
                out.append(({"op": "cancelAllOrders", "account": m.account, "symbol": sym}, None))
        for g in self.gamblers:
            out.append(({"op": "createAccount", "account": g.account, "registeredAt": 0}, None))
            out.append(({"op": "setLeverage", "account": g.account, "symbol": g.spec.symbol,
                         "leverage": g.leverage}, None))
        return out

    def after_setup(self, replies: list[tuple[dict, object, dict | None]]) -> list[dict]:
        """Deposits for the accounts created just now (a restart keeps its old wallets) and,
        on a fresh venue, the insurance fund."""
        out = []
        fresh = False
        for _cmd, tag, reply in replies:
            if isinstance(tag, tuple) and tag[0] == "new" and reply and reply.get("ok"):
                out.append({"op": "deposit", "account": tag[1], "amount": str(tag[2])})
                fresh = True
        if fresh:
            out.append({"op": "fundInsurance", "amount": str(self.s.insurance)})
        return out

    # -- one step ----------------------------------------------------------------------------
    def step(self, k: int) -> list[tuple[dict, object]]:
        self.k = k
        t0, t1 = k * self.dt, (k + 1) * self.dt
        effects: dict[str, scenarios_mod.SymbolEffects] = {}
        if self.player is not None:
            effects, notes = self.player.effects(t0, t1)
            self.notes += notes
        none = scenarios_mod.SymbolEffects()
        out: list[tuple[dict, object]] = []
        # index paths
        for sym in self.fed:
            fx = effects.get(sym, none)
            factor = fx.factor
            drift = self.drifts.get(sym)
            if drift is not None:  # a tier_change's planned drift
                factor *= drift[0]
                if drift[1] > 1:
                    self.drifts[sym] = (drift[0], drift[1] - 1)
                else:
                    del self.drifts[sym]
            self.index[sym] = self.paths[sym].step(self.dt, factor, fx.noise)
        # makers, then the index feed: the premium and the mark sample a fresh book
        quotes: dict[str, tuple[int, scenarios_mod.SymbolEffects]] = {}
        swept, self.takers.swept = self.takers.swept, set()
        for sym in self.symbols:
            centre = self.index.get(sym)
            if not centre:
                continue
            fx = effects.get(sym, none)
            spec = self.specs[sym]
            quote = centre * (PPM + int(fx.skew * PPM)) // PPM
            quotes[sym] = (quote, fx)
            keep = (fx.keep_bids, fx.keep_asks)
            ladders = []
            for m in self.makers:
                m.tick(sym)
                force = sym in swept and m.profile.near
                if m.wants_requote(sym, quote, keep, force):
                    ladders.append(m.ladder(spec, quote, keep))
            # every requoting maker's old orders go first, so a new ladder never meets a
            # stale one after a jump (those that stay are within their threshold: no cross)
            out += [(ladder[0], None) for ladder in ladders]
            out += [(c, None) for ladder in ladders for c in ladder[1:]]
        if self.fed:
            out.append(({"op": "setIndexPrices",
                         "prices": {sym: fixed.fmt(self.index[sym]) for sym in self.fed}},
                        ("index",)))
        # noise takers
        for sym, (quote, fx) in quotes.items():
            out += [(c, None) for c in self.takers.orders(self.specs[sym], quote, self.step_s,
                                                          fx.bias)]
        # over-leveraged accounts
        for g in self.gamblers:
            orders = g.step(k, self.s.gambler_every, self.index.get(g.spec.symbol))
            if any(c["op"] == "newOrder" for c, _ in orders):
                self.takers.swept.add(g.spec.symbol)
            out += orders
        ts = self.tier_at.get(k)
        if ts is not None and self.index.get(ts.spec.symbol):
            self.notes.append(f"{ts.label}: {len(ts.accounts)} accounts open longs at "
                              f"{ts.spec.table_at(ts.switch - 1).max_leverage}x before the "
                              f"{iso(ts.switch)} switch")
            out += ts.open_commands(self.index[ts.spec.symbol])
            self.takers.swept.add(ts.spec.symbol)
        elif self.tier_at.get(k - 1) is not None:
            out += self.tier_at[k - 1].query_commands()
        elif self.tier_at.get(k - 2) is not None:
            self._plan_drift(self.tier_at[k - 2])
        return out

    def _plan_drift(self, ts: TierSwitch) -> None:
        sym = ts.spec.symbol
        target = ts.plan()
        if not target:
            self.notes.append(f"{ts.label}: no account holds a position; nothing to switch")
            return
        now = self.index[sym]
        left = (ts.switch - self.start) // self.dt - self.k - 1  # steps before the switch
        n = max(1, left // 2)
        factor = (target / now) ** (1 / n)  # edge-side float, applied to the path
        self.drifts[sym] = (factor, n)
        self.notes.append(f"{ts.label}: {len(ts.positions)} positions; the index drifts from "
                          f"{fixed.fmt(now)} to {fixed.fmt(target)} over {n} steps, where "
                          f"{ts.expected} of them survive the old table and not the new")

    def on_reply(self, cmd: dict, tag, reply: dict | None) -> None:
        if reply is None:
            self.rejections["no reply"] += 1
        elif not reply.get("ok"):
            self.rejections[f"{cmd['op']} {reply.get('code')}"] += 1
        if tag is None:
            return
        kind = tag[0]
        if kind == "index":
            if reply and reply.get("ok"):
                for ev in reply["result"].get("events", ()):
                    if ev.get("e") == "indexPriceUpdated" and ev.get("symbol") == COMPOSITE:
                        self.index[COMPOSITE] = fixed.parse(ev["indexPrice"])
        elif kind == "gambler":
            tag[1].on_account(reply)
        elif kind == "tier":
            tag[1].on_account(tag[2], reply)


# -- the process -----------------------------------------------------------------------------
def _say(text: str) -> None:
    print(f"market: {text}", flush=True)


def _cpu_s() -> float:  # edge: timing, not money
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _gather(client, items: list[tuple[dict, object]], timeout: float) -> list:
    futs = [client.submit(c["op"], **{k: v for k, v in c.items() if k != "op"})
            for c, _ in items]
    if not futs:
        return []
    done = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), timeout)
    return [r if isinstance(r, dict) else None for r in done]


def _credentials(a) -> tuple[str, str]:
    key, secret = os.environ.get("PERPENGINE_SIM_KEY"), os.environ.get("PERPENGINE_SIM_SECRET")
    if a.key and a.secret:
        return a.key, a.secret
    if key and secret:
        return key, secret
    if a.keys:
        rows = json.loads(open(a.keys).read())
        row = next((r for r in rows if r.get("admin")), None)
        if row is None:
            raise SimError(f"--keys {a.keys}: no admin key in it")
        return row["apiKey"], row["secret"]
    raise SimError("an admin key is needed: --keys FILE (the server's keys file), --key/--secret "
                   "or PERPENGINE_SIM_KEY/PERPENGINE_SIM_SECRET")


async def run(a) -> int:
    settings = Settings(symbols=[x.strip() for x in a.symbols.split(",") if x.strip()],
                        seed=a.seed, account_base=a.account_base, step_ms=a.step_ms,
                        takers=a.takers, gamblers=a.gamblers, prices=a.prices or [],
                        scenario=a.scenario)
    key, secret = _credentials(a)
    stop = asyncio.Event()  # SIGTERM (the server stopping us) or SIGINT: finish the step, leave
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    catalogue = catalogue_mod.load()
    client = LoadClient(a.host, a.port, wire.MSGPACK)
    deadline = time.monotonic() + 10
    while True:
        try:
            await client.connect()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SimError(f"cannot connect to {a.host}:{a.port}") from None
            await asyncio.sleep(0.2)
    await client.login(key, secret)
    clock = await client.query("time")
    info = clock.get("clock", {})
    speed = Fraction(info.get("speed", "1")) if info.get("mode") == "sim" else Fraction(1)
    dt_ms = int(settings.step_ms * speed)
    if dt_ms < 1:
        raise SimError(f"--step-ms {settings.step_ms} at speed {speed} is under 1 ms simulated")
    current = {}
    for sym in settings.symbols:
        with contextlib.suppress(ClientError):
            p = await client.query("premiumIndex", symbol=sym)
            if fixed.parse(p.get("indexPrice", "0") or "0") > 0:
                current[sym] = fixed.parse(p["indexPrice"])
    at = (await client.query("time"))["serverTime"]
    sim = Simulation(settings, catalogue, at, dt_ms, settings.step_ms / 1000, current)
    timeout = a.timeout
    items = sim.setup()
    replies = await _gather(client, items, timeout)
    for (cmd, tag), r in zip(items, replies):
        if cmd["op"] != "createAccount":  # an account left from an earlier run is fine
            sim.on_reply(cmd, None, r)
    more = sim.after_setup([(c, t, r) for (c, t), r in zip(items, replies)])
    await _gather(client, [(c, None) for c in more], timeout)
    start = (await client.query("time"))["serverTime"]
    sim.begin(start)
    _say(f"simulating {','.join(sim.symbols)} (seed {settings.seed}); a step every "
         f"{settings.step_ms} ms real = {dt_ms / 1000:g} s simulated from {iso(start)}; the "
         f"'simulator' accounts: {sim.roster()}")
    for note in sim.notes:
        _say(note)
    sim.notes.clear()

    cpu0, wall0 = _cpu_s(), time.monotonic()
    step_s = settings.step_ms / 1000
    last_report, sent_at_report = wall0, 0
    k = 0
    while not stop.is_set():
        if a.steps and k >= a.steps:
            break
        if a.duration and time.monotonic() - wall0 >= a.duration:
            break
        items = sim.step(k)
        for note in sim.notes:
            _say(f"{iso(start + k * dt_ms)} {note}")
        sim.notes.clear()
        try:
            replies = await _gather(client, items, timeout)
        except asyncio.TimeoutError:
            _say(f"no reply within {timeout} s; stopping")
            return 1
        if client.closed.is_set():
            _say("the server closed the connection; stopping")
            break
        for (cmd, tag), r in zip(items, replies):
            sim.on_reply(cmd, tag, r)
            sim.commands[cmd["op"]] += 1
        sim.sent += len(items)
        k += 1
        now = time.monotonic()
        if a.report_every and now - last_report >= a.report_every:
            rate = (sim.sent - sent_at_report) / (now - last_report)
            prices = " ".join(f"{s} {fixed.fmt(sim.index[s])}" for s in sim.symbols
                              if s in sim.index)
            _say(f"{iso(start + k * dt_ms)}: {sim.sent:,} commands ({rate:,.0f}/s); {prices}")
            last_report, sent_at_report = now, sim.sent
        delay = wall0 + k * step_s - time.monotonic()
        if delay > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
    simulated = k * dt_ms / 1000
    summary = {"steps": k, "simulated_s": simulated, "wall_s": round(wall, 3),
               "cpu_s": round(cpu, 3), "commands": sim.sent,
               "cpu_ms_per_simulated_s": round(cpu * 1000 / simulated, 3) if simulated else None,
               "cpu_share_of_a_core": round(cpu / wall, 4) if wall else None,
               "by_op": dict(sim.commands), "rejected": dict(sim.rejections),
               "gambler_reopens": sum(g.opened for g in sim.gamblers),
               "gambler_topups": sum(g.topups for g in sim.gamblers)}
    _say(f"stopped after {k} steps ({simulated:g} s simulated, {wall:.1f} s real); "
         f"{sim.sent:,} commands; cpu {cpu:.2f} s ({summary['cpu_share_of_a_core']:.1%} of a "
         f"core)" if wall else "stopped")
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(summary, f, indent=1)
    with contextlib.suppress(Exception):
        await client.close()
    return 0


def parse_args(argv: list[str] | None = None):
    p = argparse.ArgumentParser(prog="python -m engine.sim.market",
                                description="The market simulator: index feeds, makers, takers "
                                            "and over-leveraged accounts, a client of the server.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7001)
    p.add_argument("--keys", help="the server's keys file (its first admin key is used)")
    p.add_argument("--key")
    p.add_argument("--secret")
    p.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--prices", action="append",
                   help="a Binance kline or aggTrades CSV (or .zip), or a folder of them")
    p.add_argument("--scenario", help="a scenario file (TOML or JSON)")
    p.add_argument("--account-base", type=int, default=DEFAULT_ACCOUNT_BASE)
    p.add_argument("--step-ms", type=int, default=500, help="real ms per step (default 500)")
    p.add_argument("--takers", type=int, default=3)
    p.add_argument("--gamblers", type=int, default=28)
    p.add_argument("--duration", type=float, default=0, help="stop after S real seconds")
    p.add_argument("--steps", type=int, default=0, help="stop after N steps")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a step's "
                                                                "replies")
    p.add_argument("--report-every", type=float, default=30.0, help="seconds between progress "
                                                                     "lines (0: none)")
    p.add_argument("--summary", help="write a JSON summary here on exit (commands, CPU)")
    a = p.parse_args(argv)
    if a.step_ms < 10 or a.step_ms > 60_000:
        p.error("--step-ms must be 10..60000")
    if not 0 <= a.takers <= 99 or not 0 <= a.gamblers <= 99:
        p.error("--takers and --gamblers must be 0..99 (each role has 100 account ids)")
    if not 0 <= a.account_base <= 10 ** 12:
        p.error("--account-base out of range")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        try:
            import uvloop
            return uvloop.run(run(a))
        except ImportError:
            return asyncio.run(run(a))
    except (SimError, recorded_mod.RecordedError, scenarios_mod.ScenarioError) as exc:
        print(f"market: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except (ConnectionError, ClientError) as exc:
        print(f"market: lost the server: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())

