"""The pictures: an account's timeline from a log, the what-if side by side, the load report.
Checked for their content (the data each figure was drawn from, the events they mark, the
values on their axes, read back from matplotlib's own objects and from the HTML's embedded
JSON) and for labels that never overlap (every drawn text's box against every other's)."""
import html as html_mod
import io
import json
import re
import subprocess
import sys
from array import array
from pathlib import Path

import matplotlib.dates as mdates
import pytest

from engine.core import catalogue as catalogue_mod
from engine.core import EngineConfig
from engine.plots import figure, overlaps, place_labels, texts
from engine.sim.report import latency_timeline, report_figure
from replay.feed import run_feed
from replay.timeline import AccountTimeline, timeline_figure, trace_log, whatif_figure
from replay.whatif import affected_accounts, load_overrides, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "replay" / "examples"
CAT = catalogue_mod.load()
T12, T14, T16, T18 = (f"2022-09-12T{h}:00:00Z" for h in ("12", "14", "16", "18"))


@pytest.fixture(scope="module")
def eth_log(tmp_path_factory):
    log = tmp_path_factory.mktemp("eth") / "eth.log"
    lines = (EXAMPLES / "eth-2022-09-12-session.jsonl").read_text().splitlines()
    assert not run_feed(lines, io.BytesIO(), CAT, EngineConfig(), log_path=str(log)).errors
    return log


def by_gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert found, (gid, [a.get_gid() for a in ax.get_children() if a.get_gid()])
    return found[0]


def when(x) -> str:
    """An x value of a time axis (a datetime or matplotlib's day number) as ISO text."""
    return (x if hasattr(x, "isoformat") else mdates.num2date(x)).isoformat()


def ys(line):
    return [None if y != y else round(float(y), 8) for y in line.get_ydata()]


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "replay", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def embedded(path: Path, data_id: str) -> dict:
    text = path.read_text()
    m = re.search(rf'<script type="application/json" id="{data_id}">\n(.*?)\n</script>', text,
                  re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_the_timeline_of_the_worked_example_from_its_log(eth_log):
    line = trace_log(eth_log, [1], CAT)[1]
    d = line.as_dict()
    # after the long is opened: the marks fed, a fixed liquidation price, the cross ratio
    held = [i for i, v in enumerate(d["marks"]["ETHUSDT"]) if v is not None]
    assert [d["times"][i] for i in held] == [T12, T14, T16, T16, T18]
    assert [d["marks"]["ETHUSDT"][i] for i in held] == ["2000", "1990", "1982", "1982", "2010"]
    assert {d["liquidationPrices"]["ETHUSDT"][i] for i in held} == {"1981.37896326"}
    assert [d["marginRatios"]["cross"][i] for i in held] == \
        ["0.38333333", "0.57175", "0.94858333", "0.94858333", "0.289125"]
    assert d["events"] == [
        {"time": T12, "kind": "fill", "symbol": "ETHUSDT", "side": "BUY", "price": "2000",
         "quantity": "100"},
        {"time": T16, "kind": "marginCall", "symbol": "", "asset": "USDT",
         "marginRatio": "0.94858333"}]
    # the short across from it: two fills, no margin call
    two = trace_log(eth_log, [2], CAT)[2]
    assert [e["kind"] for e in two.events] == ["fill", "fill"]
    assert {e["side"] for e in two.events} == {"SELL"}


def test_the_timeline_picture_shows_those_values_and_events(eth_log):
    line = trace_log(eth_log, [1], CAT)[1]
    fig = timeline_figure(line)
    ax_price, ax_ratio = fig.axes[0], fig.axes[1]
    assert ys(by_gid(ax_price, "mark ETHUSDT"))[-5:] == [2000, 1990, 1982, 1982, 2010]
    assert set(ys(by_gid(ax_price, "liquidation price ETHUSDT"))[-5:]) == {1981.37896326}
    assert ys(by_gid(ax_ratio, "margin ratio cross"))[-5:] == [38.333333, 57.175, 94.858333,
                                                               94.858333, 28.9125]
    lo, hi = ax_price.get_ylim()
    assert lo < 1981.37896326 and hi >= 2010  # the liquidation price and every mark in view
    call = by_gid(ax_price, f"marginCall {T16}")
    assert when(call.get_xdata()[0]).startswith("2022-09-12T16:00")
    fill = by_gid(ax_price, "fills BUY").get_offsets()[0]
    assert round(float(fill[1]), 8) == 2000
    words = {t.get_text() for t in texts(fig)}
    assert {"margin call", "mark ETHUSDT", "liquidation price ETHUSDT", "margin ratio cross",
            "fill buy"} <= words
    assert overlaps(fig) == []


def test_timeline_command_writes_html_with_its_data_and_png(eth_log, tmp_path):
    out = cli("timeline", str(eth_log), "--account", "1", "--out", str(tmp_path / "a.html"))
    assert out.returncode == 0, out.stderr
    assert "1 fills, 1 margin calls, 0 liquidations, 0 ADL trades" in out.stdout
    page = (tmp_path / "a.html").read_text()
    assert "<svg" in page and "margin call" in page and "https://" not in page
    data = embedded(tmp_path / "a.html", "timeline-data")["timeline"]
    assert data == trace_log(eth_log, [1], CAT)[1].as_dict()
    png = tmp_path / "a.png"
    out = cli("timeline", str(eth_log), "--account", "1", "--out", str(png))
    assert out.returncode == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli("timeline", str(eth_log), "--account", "99", "--out", str(png)).returncode == 1
    assert cli("timeline", str(eth_log), "--account", "1", "--out", "x.txt").returncode == 2
    assert cli("timeline", str(tmp_path / "none.log"), "--account", "1", "--out",
               str(png)).returncode == 2


def test_whatif_page_shows_each_affected_account_side_by_side_above_the_summary(
        eth_log, tmp_path):
    out = cli("whatif", str(eth_log), str(EXAMPLES / "eth-table-at-start.json"), "--html",
              str(tmp_path / "w.html"))
    assert out.returncode == 0, out.stderr
    assert "wrote " in out.stdout and "accounts 1, 2" in out.stdout
    page = (tmp_path / "w.html").read_text()
    data = embedded(tmp_path / "w.html", "whatif-data")
    assert data["affectedAccounts"] == [1, 2]  # the liquidated long and its ADL counterparty
    one = data["timelines"]["1"]
    assert [e["kind"] for e in one["original"]["events"]] == ["fill", "marginCall"]
    liq = [e for e in one["whatIf"]["events"] if e["kind"] != "fill"]
    assert liq == [
        {"time": T16, "kind": "marginCall", "symbol": "", "asset": "USDT",
         "marginRatio": "1.07358333"},
        {"time": T16, "kind": "liquidation", "symbol": "", "asset": "USDT",
         "maintMargin": "1288.3", "marginBalance": "1200", "marginRatio": "1.07358333"},
        {"time": T16, "kind": "adl", "symbol": "ETHUSDT", "role": "liquidated",
         "price": "1970", "quantity": "100"}]
    two = data["timelines"]["2"]["whatIf"]["events"]
    assert {"time": T16, "kind": "adl", "symbol": "ETHUSDT", "role": "counterparty",
            "price": "1970", "quantity": "100"} in two
    # the pictures come first, then the summary the text command prints
    assert page.index("<h2>account 1</h2>") < page.index("<h2>account 2</h2>") < \
        page.index("<h2>Summary</h2>")
    summary = html_mod.unescape(page[page.index("<pre>") + 5:page.index("</pre>")])
    text = cli("whatif", str(eth_log), str(EXAMPLES / "eth-table-at-start.json")).stdout
    assert summary.strip() == text.strip()
    assert page.count("<svg") == 2


def test_whatif_figure_both_runs_on_the_same_scales(eth_log):
    r = run(eth_log, load_overrides(EXAMPLES / "eth-table-at-start.json"), CAT, trace=(1,))
    assert affected_accounts(r) == [1, 2]
    fig = whatif_figure(r.traces[0][1], r.traces[1][1])
    (p0, p1), (r0, r1) = (fig.axes[0], fig.axes[1]), (fig.axes[2], fig.axes[3])
    assert p0.get_title() == "account 1: original" and p1.get_title() == "account 1: what-if"
    assert p0.get_ylim() == p1.get_ylim() and r0.get_ylim() == r1.get_ylim()
    assert p0.get_xlim() == p1.get_xlim()
    adl = by_gid(p1, "adl").get_offsets()[0]
    assert when(adl[0]).startswith("2022-09-12T16:00") and adl[1] == 1970
    at_liq = by_gid(r1, "liquidation ratio").get_offsets()[0]
    assert round(float(at_liq[1]), 6) == 107.358333
    assert not [a for a in p0.get_children() if a.get_gid() == "adl"]  # none in the original
    words = {t.get_text() for t in texts(fig)}
    assert {"liquidation", "margin call", "ADL 100 @ 1970", "at the liquidation"} <= words
    assert overlaps(fig) == []


def test_labels_never_overlap_however_crowded():
    """Twenty events within a minute, and labels at one point: moved apart or left out,
    never on top of each other or of the axes' other texts."""
    line = AccountTimeline(7, times=[0, 60_000], marks={"BTCUSDT": [3_000_000_000_000] * 2},
                           liquidation={"BTCUSDT": [2_900_000_000_000] * 2},
                           ratios={"cross": [50_000_000, 90_000_000]})
    for i in range(20):
        line.events.append({"time": 1_000 * i, "kind": "marginCall" if i % 2 else "liquidation",
                            "symbol": "", "asset": "USDT", "marginRatio": "0.9",
                            "maintMargin": "1", "marginBalance": "1"})
        line.events.append({"time": 1_000 * i, "kind": "adl", "symbol": "BTCUSDT",
                            "role": "liquidated", "price": "29500", "quantity": "0.1"})
    fig = timeline_figure(line)
    assert overlaps(fig) == []
    fig, axes = figure(4, 3)
    place_labels(axes[0][0], [(0.5, 0.5, f"label {i}", {}) for i in range(30)])
    assert overlaps(fig) == []
    assert len([t for t in texts(fig) if t.get_text().startswith("label ")]) >= 5


def test_the_load_report_picture(tmp_path):
    """A report's figure: latency percentiles per second from the latencies in their
    acknowledgement order, the histogram of all of them with p50 / p99 / p99.9 labelled (here
    p99 and p99.9 equal: the labels must still not overlap), orders/s and CPU over time."""
    lat = array("q", [1_000_000] * 900 + [2_000_000] * 90 + [50_000_000] * 10 +
                [3_000_000] * 1000)
    timeline = [{"t": 1.0, "acked": 1000, "acked_per_s": 1000, "server_cpu": 40,
                 "loadgen_cpu": 20, "other_cpu": 5},
                {"t": 2.0, "acked": 2000, "acked_per_s": 1000, "server_cpu": 45,
                 "loadgen_cpu": 22, "other_cpu": 7}]
    lt = latency_timeline(timeline, lat)
    assert lt == [{"t": 1.0, "n": 1000, "p50": 1.0, "p99": 2.0, "p99.9": 50.0},
                  {"t": 2.0, "n": 1000, "p50": 3.0, "p99": 3.0, "p99.9": 3.0}]
    rep = {"latency_timeline": lt, "timeline": timeline, "duration_s": 2.0,
           "latency_ms": {"p50": 3.0, "p99": 50.0, "p99.9": 50.0},
           "orders": {"acknowledged": 2000, "acknowledged_per_s": 1000.0, "offered_rate": 1000},
           "cpu_per_ack": {"server": {"us_per_ack": 425.0, "cpu_percent": 42}}}
    fig = report_figure(rep, lat)
    a_lat, a_hist, a_rate, a_cpu = fig.axes
    assert ys(by_gid(a_lat, "latency p99.9")) == [50.0, 3.0]
    assert ys(by_gid(a_lat, "latency p50")) == [1.0, 3.0]
    assert sum(p.get_height() for p in a_hist.patches) == 2000
    assert by_gid(a_hist, "line p99").get_xdata()[0] == 50.0
    assert ys(by_gid(a_rate, "acked per s")) == [1000, 1000]
    assert ys(by_gid(a_cpu, "cpu server")) == [40, 45]
    words = {t.get_text() for t in texts(fig)}
    assert {"p50 3.00 ms", "p99 50.00 ms", "p99.9 50.00 ms"} <= words
    assert "server 425.0 µs per acknowledged order" in a_cpu.get_title()
    assert overlaps(fig) == []
    empty = report_figure({"orders": {}}, array("q"))  # a run that acknowledged nothing
    assert overlaps(empty) == []


def test_the_readme_picture_is_the_command_s(eth_log, tmp_path):
    """The README embeds the worked example's timeline; the committed file is a PNG of the
    size the README's command writes."""
    readme = (ROOT / "README.md").read_text()
    (name,) = re.findall(r"!\[[^\]]*\]\((replay/examples/[\w.-]+\.png)\)", readme)
    out = cli("timeline", str(eth_log), "--account", "1", "--whatif",
              str(EXAMPLES / "eth-table-at-start.json"), "--out", str(tmp_path / "x.png"))
    assert out.returncode == 0, out.stderr
    made, committed = (tmp_path / "x.png").read_bytes(), (ROOT / name).read_bytes()
    assert committed[:8] == b"\x89PNG\r\n\x1a\n" and committed[16:24] == made[16:24]  # size
