"""An account's timeline from a log: the marks of the symbols it holds, each position's
liquidation price and each margin scope's margin ratio over time, with its fills, margin calls,
liquidations and auto-deleveraging marked.

    python -m replay timeline LOG --account N --out FILE.html|FILE.png

The state is rebuilt from the log's events (the core's own appliers, as `verify` does) and
sampled after every record that touched the account or moved the mark of a symbol it held;
the figures are the views' exact ones (engine.views.positions: the liquidation price and margin
ratio the native positionRisk reports). The same tracer follows both runs of a what-if
(replay.whatif). The data is kept as integers of 1e-8 and written as decimal strings; floats
appear only in the drawing (engine.plots).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine.core import Engine
from engine.core.fixed import fmt, parse
from engine.core.risk import RiskFigures
from engine.core.timeutil import iso
from engine.eventlog import LogReader
from engine.views import positions as position_views
from proto import events as V
from replay.common import config_from_header

MAX_SAMPLES = 20_000  # beyond this, samples are thinned evenly (never those at an event)
EVENT_KINDS = ("fill", "marginCall", "liquidation", "adl")


@dataclass
class AccountTimeline:
    account: int
    times: list[int] = field(default_factory=list)  # ms, one per sample
    marks: dict[str, list[int | None]] = field(default_factory=dict)  # symbol -> per sample
    liquidation: dict[str, list[int | None]] = field(default_factory=dict)  # position -> ...
    ratios: dict[str, list[int | None]] = field(default_factory=dict)  # margin scope -> ...
    events: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for e in self.events if e["kind"] == k) for k in EVENT_KINDS}

    def as_dict(self) -> dict[str, Any]:
        """The data as decimal strings (ratios: 1 = 100 %) and ISO times."""
        def series(d: dict[str, list[int | None]]) -> dict[str, list[str | None]]:
            return {k: [None if v is None else fmt(v) for v in vals] for k, vals in d.items()}
        return {"account": self.account, "times": [iso(t) for t in self.times],
                "marks": series(self.marks), "liquidationPrices": series(self.liquidation),
                "marginRatios": series(self.ratios),
                "events": [{**e, "time": iso(e["time"])} for e in self.events],
                "counts": self.counts()}

    def thin(self, limit: int = MAX_SAMPLES) -> None:
        n = len(self.times)
        if n <= limit:
            return
        at_events = {e["time"] for e in self.events}
        step = -(-n // limit)
        keep = [i for i in range(n) if i % step == 0 or i == n - 1 or self.times[i] in at_events]
        self.times = [self.times[i] for i in keep]
        for d in (self.marks, self.liquidation, self.ratios):
            for k in d:
                d[k] = [d[k][i] for i in keep]


class Tracer:
    """Follows some accounts through a sequence of (engine state, record) pairs."""

    def __init__(self, accounts: Iterable[int]) -> None:
        self.lines = {a: AccountTimeline(a) for a in accounts}
        self.held: dict[int, set[str]] = {a: set() for a in self.lines}
        self.scopes: dict[int, set[str]] = {a: set() for a in self.lines}

    def observe(self, engine: Engine, record) -> None:
        lines = self.lines
        touched: set[int] = set()
        moved: set[str] = set()
        t = record.time
        for ev in record.events:
            et = type(ev)
            if et is V.MarkPriceUpdated:
                moved.add(ev.symbol)
            elif et is V.Trade:
                for account, side in ((ev.taker_account, ev.taker_side),
                                      (ev.maker_account,
                                       "SELL" if ev.taker_side == "BUY" else "BUY")):
                    if account in lines:
                        touched.add(account)
                        lines[account].events.append({
                            "time": t, "kind": "fill", "symbol": ev.symbol, "side": side,
                            "price": fmt(ev.price), "quantity": fmt(ev.quantity)})
            elif et is V.MarginCallIssued and ev.account in lines:
                touched.add(ev.account)
                lines[ev.account].events.append({
                    "time": t, "kind": "marginCall", "symbol": ev.symbol, "asset": ev.asset,
                    "marginRatio": fmt(ev.margin_ratio)})
            elif et is V.LiquidationStarted and ev.account in lines:
                touched.add(ev.account)
                lines[ev.account].events.append({
                    "time": t, "kind": "liquidation", "symbol": ev.symbol, "asset": ev.asset,
                    "maintMargin": fmt(ev.maint_margin), "marginBalance": fmt(ev.margin_balance),
                    "marginRatio": fmt(RiskFigures(ev.maint_margin, ev.margin_balance).ratio)})
            elif et is V.AdlTrade:
                for account, role in ((ev.account, "liquidated"),
                                      (ev.counterparty, "counterparty")):
                    if account in lines:
                        touched.add(account)
                        lines[account].events.append({
                            "time": t, "kind": "adl", "symbol": ev.symbol, "role": role,
                            "price": fmt(ev.price), "quantity": fmt(ev.quantity)})
            else:
                account = getattr(ev, "account", None)
                if account in lines:
                    touched.add(account)
        for account in lines:
            if account in touched or moved & self.held[account]:
                self._sample(engine, account, t)

    def _sample(self, engine: Engine, account: int, t: int) -> None:
        if account not in engine.accounts:
            return
        line = self.lines[account]
        held = self.held[account]
        scopes = self.scopes[account]
        liq: dict[str, int | None] = {}
        ratios: dict[str, int] = {}
        for row in position_views.position_risk(engine, account):
            if parse(row["positionAmt"]) == 0:
                continue
            symbol = row["symbol"]
            held.add(symbol)
            key = symbol if row["positionSide"] == "BOTH" else f"{symbol} {row['positionSide']}"
            lp = parse(row["liquidationPrice"])
            liq[key] = lp or None
            if row["marginType"] == "isolated":
                scope = f"isolated {key}"
            else:
                asset = row.get("marginAsset", "USDT")
                scope = "cross" if asset == "USDT" else f"cross {asset}"
            scopes.add(scope)
            ratios[scope] = parse(row["marginRatio"])
        n = len(line.times)
        line.times.append(t)
        for symbol in held:
            mark = engine.symbols[symbol].mark
            _put(line.marks, symbol, n, mark or None)
        for key in set(line.liquidation) | set(liq):
            _put(line.liquidation, key, n, liq.get(key))
        for scope in scopes:  # a scope without a position: 0 (cross) or nothing (isolated)
            _put(line.ratios, scope, n, ratios.get(scope, None if scope.startswith("isolated")
                                                   else 0))


def _put(series: dict[str, list], key: str, n: int, value) -> None:
    vals = series.get(key)
    if vals is None:
        vals = series[key] = [None] * n
    vals.append(value)


def trace_log(path: str | Path, accounts: Iterable[int], base=None) -> dict[int, AccountTimeline]:
    """The accounts' timelines of a log, rebuilt from its events."""
    from engine.core import catalogue as catalogue_mod
    reader = LogReader(path)
    records = reader.records()
    tracer = Tracer(accounts)
    engine = None
    for _, record in records:
        if engine is None:
            engine = Engine(base or catalogue_mod.load(),
                            config_from_header(reader.header, checkpoint_every=0))
        engine.apply_record(record.seq, record.time, record.events)
        tracer.observe(engine, record)
    if reader.problem is not None:
        raise ValueError(f"log problem at record {reader.problem.record_number}, byte "
                         f"{reader.problem.offset}: {reader.problem.what}")
    for line in tracer.lines.values():
        line.thin()
    return tracer.lines


# -- pictures ----------------------------------------------------------------------------------
COLOURS = ["#1f6fd1", "#d1731f", "#2e9e4f", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"]
AMBER, RED, ADL = "#e0a030", "#d62728", "#8e44ad"


def _dates(times: list[int]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(t / 1000, dt.timezone.utc) for t in times]


def _f(v: int | None) -> float:
    return float("nan") if v is None else v / 1e8  # drawing only


def draw(ax_price, ax_ratio, line: AccountTimeline, title: str, labels: list) -> None:
    """One run of one account: marks and liquidation prices (top), margin ratios (bottom),
    events marked on both; text labels to place are appended to `labels`."""
    import matplotlib.dates as mdates
    x = _dates(line.times)
    for i, (symbol, vals) in enumerate(sorted(line.marks.items())):
        ax_price.plot(x, [_f(v) for v in vals], drawstyle="steps-post", linewidth=1.6,
                      color=COLOURS[i % len(COLOURS)], label=f"mark {symbol}", gid=f"mark {symbol}")
    for i, (key, vals) in enumerate(sorted(line.liquidation.items())):
        ax_price.plot(x, [_f(v) for v in vals], drawstyle="steps-post", linewidth=1.3,
                      linestyle="--", color=RED if i == 0 else COLOURS[(i + 3) % len(COLOURS)],
                      label=f"liquidation price {key}", gid=f"liquidation price {key}")
    for i, (scope, vals) in enumerate(sorted(line.ratios.items())):
        ax_ratio.plot(x, [float("nan") if v is None else v / 1e6 for v in vals],
                      drawstyle="steps-post", linewidth=1.6, color=COLOURS[i % len(COLOURS)],
                      label=f"margin ratio {scope}", gid=f"margin ratio {scope}")
    ax_ratio.axhline(80, color=AMBER, linewidth=1, linestyle=":", label="margin call 80 %")
    ax_ratio.axhline(100, color=RED, linewidth=1, linestyle=":", label="liquidation 100 %")
    fills = [e for e in line.events if e["kind"] == "fill"]
    for side, marker, colour in (("BUY", "^", "#2e9e4f"), ("SELL", "v", RED)):
        pts = [e for e in fills if e["side"] == side]
        if pts:
            ax_price.scatter(_dates([e["time"] for e in pts]),
                             [_f(parse(e["price"])) for e in pts], marker=marker, s=46,
                             color=colour, zorder=5, label=f"fill {side.lower()}",
                             gid=f"fills {side}")
    adl = [e for e in line.events if e["kind"] == "adl"]
    if adl:
        ax_price.scatter(_dates([e["time"] for e in adl]), [_f(parse(e["price"])) for e in adl],
                         marker="D", s=46, color=ADL, zorder=6, label="ADL", gid="adl")
    for kind, colour, marker in (("marginCall", AMBER, "o"), ("liquidation", RED, "X")):
        pts = [e for e in line.events if e["kind"] == kind]
        if pts:  # the ratio the risk engine acted on (a liquidation's, from its figures;
            # drawn at most at 150 %: a negative balance's ratio is the engine's 99,900 %)
            ax_ratio.scatter(_dates([e["time"] for e in pts]),
                             [min(parse(e["marginRatio"]) / 1e6, 150.0) for e in pts],
                             marker=marker, s=50,
                             color=colour, zorder=6, gid=f"{kind} ratio",
                             label="at the margin call" if kind == "marginCall" else
                             "at the liquidation")
    for kind, colour, text in (("marginCall", AMBER, "margin call"),
                               ("liquidation", RED, "liquidation")):
        seen = set()
        for e in line.events:
            if e["kind"] != kind or e["time"] in seen:
                continue
            seen.add(e["time"])
            when = _dates([e["time"]])[0]
            for ax in (ax_price, ax_ratio):
                ax.axvline(when, color=colour, linewidth=1.2, linestyle="-" if kind ==
                           "liquidation" else "--", gid=f"{kind} {iso(e['time'])}")
            labels.append((ax_price, mdates.date2num(when), text, colour))
    for e in adl:
        labels.append((ax_price, mdates.date2num(_dates([e["time"]])[0]),
                       f"ADL {e['quantity']} @ {e['price']}", ADL))
    ax_price.set_title(title, fontsize=11)
    ax_price.set_ylabel("price")
    ax_ratio.set_ylabel("margin ratio (%)")
    ax_ratio.set_xlabel("time (UTC)")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    ax_ratio.xaxis.set_major_locator(locator)
    ax_ratio.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax_price.grid(alpha=0.25)
    ax_ratio.grid(alpha=0.25)


def _legend(ax_price, ax_ratio, others: tuple = ()) -> None:
    """One legend per row, right of it, with the entries of every column of that row."""
    for i, ax in enumerate((ax_price, ax_ratio)):
        handles: dict[str, Any] = {}
        for a in (ax, *[pair[i] for pair in others]):
            for h, label in zip(*a.get_legend_handles_labels()):
                handles.setdefault(label, h)
        ax.legend(list(handles.values()), list(handles), loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _place(labels: list) -> None:
    from engine.plots import place_labels
    by_axes: dict[Any, list] = {}
    for ax, x, text, colour in labels:
        by_axes.setdefault(ax, []).append((x, ax.get_ylim()[1], text,
                                           {"color": colour, "fontsize": 8,
                                            "va": "top", "gid": f"label {text}"}))
    for ax, items in by_axes.items():
        place_labels(ax, [(x, y, text, style) for x, y, text, style in items], offset=(3, -3))


def timeline_figure(line: AccountTimeline, title: str | None = None):
    from engine.plots import figure
    fig, axes = figure(11, 6.5, rows=2, sharex=True, height_ratios=[3, 2])
    labels: list = []
    draw(axes[0][0], axes[1][0], line, title or _title(line), labels)
    _legend(axes[0][0], axes[1][0])
    _place(labels)
    return fig


def whatif_figure(original: AccountTimeline, whatif: AccountTimeline):
    """The same account in both runs, side by side, on the same scales."""
    from engine.plots import figure
    fig, axes = figure(15, 6.5, rows=2, cols=2, sharex=True, sharey="row",
                       height_ratios=[3, 2])
    labels: list = []
    draw(axes[0][0], axes[1][0], original, f"account {original.account}: original", labels)
    draw(axes[0][1], axes[1][1], whatif, f"account {whatif.account}: what-if", labels)
    _legend(axes[0][1], axes[1][1], ((axes[0][0], axes[1][0]),))
    _place(labels)
    return fig


def _title(line: AccountTimeline) -> str:
    symbols = ", ".join(sorted(line.marks)) or "no position"
    return f"account {line.account}: {symbols}"


def summary(line: AccountTimeline) -> str:
    c = line.counts()
    span = f"{iso(line.times[0])} to {iso(line.times[-1])}" if line.times else "no samples"
    return (f"account {line.account}: {len(line.times)} samples, {span}; {c['fill']} fills, "
            f"{c['marginCall']} margin calls, {c['liquidation']} liquidations, {c['adl']} ADL "
            f"trades")


def events_table(line: AccountTimeline) -> str:
    from engine.plots import table
    rows = []
    for e in line.events:
        detail = {k: v for k, v in e.items() if k not in ("time", "kind", "symbol")}
        rows.append([iso(e["time"]), e["kind"], e.get("symbol", ""),
                     ", ".join(f"{k} {v}" for k, v in detail.items())])
    return table(["time", "event", "symbol", "detail"], rows, "events")


def write_timeline(line: AccountTimeline, out: str | Path, log: str,
                   whatif: AccountTimeline | None = None) -> str:
    """FILE.png (the picture) or FILE.html (the picture as SVG, the events, and the data it
    was drawn from as JSON); with `whatif`, the account in the original and the what-if run
    side by side. Returns the summary line(s)."""
    import html as html_mod
    from engine.plots import html_page, save_png, svg_text
    out = Path(out)
    fig = timeline_figure(line) if whatif is None else whatif_figure(line, whatif)
    text = summary(line) if whatif is None else \
        f"original {summary(line)}; what-if {summary(whatif)}"
    if out.suffix.lower() == ".png":
        save_png(fig, out)
        return text
    parts = [f"<figure>{svg_text(fig)}</figure>", f"<p>{html_mod.escape(text)}</p>",
             "<h2>Events</h2>", events_table(line)]
    data: dict[str, Any] = {"log": str(log), "timeline": line.as_dict()}
    if whatif is not None:
        parts[2] = "<h2>Events, original</h2>"
        parts += ["<h2>Events, what-if</h2>", events_table(whatif)]
        data["whatIf"] = whatif.as_dict()
    out.write_text(html_page(f"account {line.account} in {Path(log).name}", parts, data,
                             data_id="timeline-data"))
    return text
