"""what-if: the same commands under other risk rules, side by side with what happened.

The log's commands are driven through a fresh core built with the changed configuration (a
file in the catalogue's format: "tables" and "symbols" merged over the catalogue, "collateral"
for Multi-Assets collateral ratios ({"assets": {"BTC": {"ratio": "0.85"}}} over every table of
the schedule, or a whole "schedule"), and optionally "engineConfig"), with its own risk
consumer. The commands the original risk consumer sent
(marginCall, liquidate) are left out: the what-if run's consumer decides for itself. Reported:
accounts margin-called or liquidated in one run and not the other (when, at what mark, with what
loss), and the insurance fund and auto-deleveraging in each.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.core import catalogue as catalogue_mod
from engine.core.catalogue import Catalogue
from engine.core import Engine
from engine.eventlog import open_reader
from engine.core.fixed import SCALE, fmt
from engine.sequencer import Pipeline
from engine.core.timeutil import iso
from proto import commands as C
from proto import events as V
from replay.common import config_from_header

RISK_COMMANDS = (C.Liquidate, C.MarginCall)


@dataclass
class RunFacts:
    """What the risk rules did in one run."""
    margin_calls: dict = field(default_factory=dict)  # (account, scope) -> first call
    liquidations: dict = field(default_factory=dict)  # (account, scope) -> first liquidation
    insurance_fund: int = 0
    adl_trades: int = 0
    adl_quantity: int = 0
    liquidation_fees: int = 0
    insurance_paid: int = 0
    adl_accounts: set = field(default_factory=set)  # accounts on either side of an ADL trade

    def observe(self, engine: Engine, record, wallets_before: dict[int, dict[str, int]]) -> None:
        for ev in record.events:
            t = type(ev)
            if t is V.MarginCallIssued:
                key = (ev.account, _scope(ev))
                self.margin_calls.setdefault(key, {"time": iso(record.time),
                                                   "marginRatio": fmt(ev.margin_ratio),
                                                   **_asset(ev), "marks": _marks(engine)})
            elif t is V.LiquidationStarted:
                key = (ev.account, _scope(ev))
                loss = _loss(engine, ev.account, ev.asset, wallets_before.get(ev.account, {}))
                self.liquidations.setdefault(key, {
                    "time": iso(record.time), "marks": _marks(engine), **_asset(ev),
                    "maintMargin": fmt(ev.maint_margin), "marginBalance": fmt(ev.margin_balance),
                    "loss": fmt(loss)})
            elif t is V.AdlTrade:
                self.adl_trades += 1
                self.adl_quantity += ev.quantity
                self.adl_accounts.update((ev.account, ev.counterparty))
            elif t is V.LiquidationFeeCharged:
                self.liquidation_fees += ev.amount
            elif t is V.InsuranceCovered:
                self.insurance_paid += ev.amount
        self.insurance_fund = engine.ledger.insurance_fund


def _marks(engine: Engine) -> dict[str, str]:
    """The marks of the symbols, and the assets' USD indices ("BTCUSD") where fed."""
    marks = {s: fmt(sym.mark) for s, sym in sorted(engine.symbols.items()) if sym.mark}
    marks.update((a + "USD", fmt(p)) for a, p in sorted(engine.ledger.asset_index.items()))
    return marks


def _asset(ev: V.MarginCallIssued | V.LiquidationStarted) -> dict[str, str]:
    """The scope's asset, named when it is not USDT ("USD": a Multi-Assets account)."""
    return {} if ev.asset == "USDT" else {"asset": ev.asset}


def _scope(ev: V.MarginCallIssued | V.LiquidationStarted) -> str:
    """"" for the USDT cross pool or a Multi-Assets account, "@BUSD" another asset's cross
    pool, the symbol (and leg) of an isolated position."""
    if ev.symbol:
        return ev.symbol if ev.position_side == "BOTH" else f"{ev.symbol}:{ev.position_side}"
    return "" if ev.asset in ("USDT", "USD") else "@" + ev.asset


def _wallets(engine: Engine) -> dict[int, dict[str, int]]:
    return {a: {"USDT": acct.wallet, **acct.balances} for a, acct in engine.accounts.items()}


def _loss(engine: Engine, account: int, asset: str, before: dict[str, int]) -> int:
    """What the liquidation cost the account: in its asset, or for a Multi-Assets account
    ("USD") the change of its wallets' value at the index prices now."""
    acct = engine.accounts[account]
    if asset != "USD":
        return before.get(asset, 0) - acct.balance(asset)
    ledger = engine.ledger
    assets = sorted(set(before) | set(acct.assets()))
    prices = ledger.prices_for(assets)
    return (sum(before.get(a, 0) * prices[a] for a in assets) -
            sum(acct.balance(a) * prices[a] for a in assets)) // SCALE


def load_overrides(path: str | Path) -> dict:
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict) or \
            not set(doc) <= {"tables", "symbols", "collateral", "engineConfig", "note"}:
        raise ValueError("a what-if file has 'tables', 'symbols', 'collateral' and/or "
                         "'engineConfig'")
    return doc


@dataclass
class WhatIfRun:
    report: dict
    original: RunFacts
    alternative: RunFacts
    traces: tuple[dict, dict]  # account -> AccountTimeline, in the original and the what-if


def whatif(path: str | Path, catalogue_doc_overrides: dict,
           base: Catalogue | None = None) -> dict:
    return run(path, catalogue_doc_overrides, base).report


def run(path: str | Path, catalogue_doc_overrides: dict, base: Catalogue | None = None,
        trace: tuple[int, ...] = ()) -> WhatIfRun:
    """Both runs; `trace`: accounts whose timelines (replay.timeline) are kept in each."""
    from replay.timeline import Tracer
    base = base or catalogue_mod.load()
    changed = catalogue_mod.load(overrides=catalogue_doc_overrides)
    reader = open_reader(path)
    records = [r for _, r in reader.records()]
    if reader.problem is not None:
        raise ValueError(f"log problem at record {reader.problem.record_number}, byte "
                         f"{reader.problem.offset}: {reader.problem.what}")
    config = config_from_header(reader.header, checkpoint_every=0)
    what_config = config_from_header(reader.header, checkpoint_every=0,
                                     **catalogue_doc_overrides.get("engineConfig", {}))
    original = RunFacts()
    traced = Tracer(trace), Tracer(trace)
    replica = Engine(base, config)
    for record in records:  # the original run, rebuilt from its events
        before = _wallets(replica)
        replica.apply_record(record.seq, record.time, record.events)
        original.observe(replica, record, before)
        if trace:
            traced[0].observe(replica, record)
    alternative = RunFacts()
    engine = Engine(changed, what_config)
    pipeline = Pipeline(engine)
    for record in records:
        if isinstance(record.command, RISK_COMMANDS):
            continue
        before = _wallets(engine)
        for produced in pipeline.stream(record.command, record.time):
            alternative.observe(engine, produced, before)
            before = _wallets(engine)
            if trace:
                traced[1].observe(engine, produced)
    for tracer in traced:
        for line in tracer.lines.values():
            line.thin()
    return WhatIfRun(compare(original, alternative, str(path)), original, alternative,
                     (traced[0].lines, traced[1].lines))


MAX_PICTURES = 12  # accounts drawn in a what-if page (the summary names them all)


def affected_accounts(r: WhatIfRun) -> list[int]:
    """Accounts the changed rules treated differently: margin-called or liquidated in one run
    only or at another time, or on either side of an ADL trade in one run only."""
    out: set[int] = set()
    for x, y in ((r.original.liquidations, r.alternative.liquidations),
                 (r.original.margin_calls, r.alternative.margin_calls)):
        for key in x.keys() ^ y.keys():
            out.add(key[0])
        for key in x.keys() & y.keys():
            if x[key]["time"] != y[key]["time"]:
                out.add(key[0])
    out |= r.original.adl_accounts ^ r.alternative.adl_accounts
    return sorted(out)


def write_html(path: str | Path, catalogue_doc_overrides: dict, out: str | Path,
               base: Catalogue | None = None) -> WhatIfRun:
    """The what-if as a page: per affected account, its timeline in the original and in the
    what-if side by side, above the text summary; the data as JSON in the page."""
    import html as html_mod
    from engine.plots import html_page, svg_text
    from replay.timeline import summary, whatif_figure
    first = run(path, catalogue_doc_overrides, base)
    accounts = affected_accounts(first)
    shown = accounts[:MAX_PICTURES]
    r = run(path, catalogue_doc_overrides, base, trace=tuple(shown)) if shown else first
    parts = []
    data: dict = {"report": r.report, "affectedAccounts": accounts, "timelines": {}}
    for account in shown:
        a, b = r.traces[0][account], r.traces[1][account]
        fig = whatif_figure(a, b)
        parts += [f"<h2>account {account}</h2>", f"<figure>{svg_text(fig)}</figure>",
                  f"<p>original: {html_mod.escape(summary(a))}<br>what-if: "
                  f"{html_mod.escape(summary(b))}</p>"]
        data["timelines"][str(account)] = {"original": a.as_dict(), "whatIf": b.as_dict()}
    if not accounts:
        parts.append("<p>No account was treated differently.</p>")
    elif len(accounts) > len(shown):
        parts.append(f"<p>{len(accounts) - len(shown)} more affected accounts are not drawn: "
                     f"{html_mod.escape(', '.join(map(str, accounts[len(shown):])))}</p>")
    parts += ["<h2>Summary</h2>",
              f"<pre>{html_mod.escape(chr(10).join(summary_lines(r.report)))}</pre>"]
    Path(out).write_text(html_page(f"what-if on {Path(path).name}", parts, data,
                                   data_id="whatif-data"))
    return r


def _key(k: tuple[int, str]) -> str:
    if k[1].startswith("@"):  # another margin asset's cross pool: "7:cross BUSD"
        return f"{k[0]}:cross {k[1][1:]}"
    return f"{k[0]}:{k[1] or 'cross'}"


def compare(a: RunFacts, b: RunFacts, path: str) -> dict:
    def diff(x: dict, y: dict) -> dict:
        return {"onlyOriginal": {_key(k): x[k] for k in sorted(x.keys() - y.keys())},
                "onlyWhatIf": {_key(k): y[k] for k in sorted(y.keys() - x.keys())},
                "both": {_key(k): {"original": x[k], "whatIf": y[k]}
                         for k in sorted(x.keys() & y.keys())}}
    return {
        "log": path,
        "liquidations": diff(a.liquidations, b.liquidations),
        "marginCalls": diff(a.margin_calls, b.margin_calls),
        "insuranceFund": {"original": fmt(a.insurance_fund), "whatIf": fmt(b.insurance_fund),
                          "difference": fmt(b.insurance_fund - a.insurance_fund)},
        "insurancePaid": {"original": fmt(a.insurance_paid), "whatIf": fmt(b.insurance_paid)},
        "liquidationFees": {"original": fmt(a.liquidation_fees), "whatIf": fmt(b.liquidation_fees)},
        "adl": {"original": {"trades": a.adl_trades, "quantity": fmt(a.adl_quantity)},
                "whatIf": {"trades": b.adl_trades, "quantity": fmt(b.adl_quantity)}},
    }


def summary_lines(report: dict) -> list[str]:
    lines = [f"what-if on {report['log']}"]
    for kind in ("liquidations", "marginCalls"):
        d = report[kind]
        lines.append(f"{kind}: {len(d['both'])} in both, {len(d['onlyOriginal'])} only in the "
                     f"original, {len(d['onlyWhatIf'])} only in the what-if")
        for side, label in (("onlyOriginal", "original only"), ("onlyWhatIf", "what-if only")):
            for key, facts in d[side].items():
                extra = f", loss {facts['loss']}" if "loss" in facts else ""
                lines.append(f"  {label}: account {key} at {facts['time']}, marks "
                             f"{facts['marks']}{extra}")
        for key, both in d["both"].items():
            if both["original"]["time"] != both["whatIf"]["time"]:
                lines.append(f"  both, at different times: account {key}: "
                             f"{both['original']['time']} vs {both['whatIf']['time']}")
    f = report["insuranceFund"]
    lines.append(f"insurance fund: original {f['original']}, what-if {f['whatIf']} "
                 f"(difference {f['difference']})")
    adl = report["adl"]
    lines.append(f"ADL: original {adl['original']['trades']} trades "
                 f"({adl['original']['quantity']}), what-if {adl['whatIf']['trades']} "
                 f"({adl['whatIf']['quantity']})")
    return lines
