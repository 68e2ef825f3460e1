"""A load run's figures: the statistics kept while it runs, CPU use from /proc, and the
report (JSON, text, latency histogram)."""
from __future__ import annotations

import array
import math
import os
from collections import Counter
from pathlib import Path
from time import perf_counter
from typing import Any

ORDER_OPS = ("newOrder", "cancelOrder", "modifyOrder")


class Stats:
    HIST_FINE = 10_000  # 1 us buckets below 10 ms, then 100 us buckets to 10 s

    def __init__(self) -> None:
        self.sent = Counter()
        self.acked = Counter()
        self.ok = Counter()
        self.rejected = Counter()  # code -> count
        self.outcomes = Counter()  # an accepted order request's status: NEW, FILLED, CANCELED, ...
        self.queries = 0
        self.lat = array.array("q")  # ns, order requests only
        self.hist = [0] * (self.HIST_FINE + 100_001)
        self.max_ns = 0
        self.trades_acked = 0
        self.trades_stream = 0
        self.liquidations = 0
        self.wipeouts = 0  # gambler positions closed by the venue
        self.timeouts = 0
        self.lost = 0  # requests failed by a closed connection
        self.conn_lost = 0
        self.connect_failures = 0
        self.feed_updates = 0
        self.unpaced_orders = 0  # the gamblers': --rate leaves room for them
        self.feed_jumps = 0
        self.jump_log: list = []
        self.feed_rejected = 0
        self.topups = 0
        self.first_send = 0.0
        self.last_ack = 0.0

    def record(self, op: str, ns: int, msg: dict) -> None:
        self.acked[op] += 1
        self.lat.append(ns)
        us = ns // 1000
        h = us if us < self.HIST_FINE else min(self.HIST_FINE + us // 100, len(self.hist) - 1)
        self.hist[h] += 1
        if ns > self.max_ns:
            self.max_ns = ns
        if msg["ok"]:
            self.ok[op] += 1
            result = msg["result"]
            if "status" in result:
                self.outcomes[result["status"]] += 1
            if "trades" in result:  # an order's reply counts its fills
                self.trades_acked += result["trades"]
            else:
                for ev in result.get("events") or ():
                    if ev.get("e") == "trade":
                        self.trades_acked += 1
        else:
            self.rejected[msg.get("code", 0)] += 1

    def hist_quantile(self, q: float) -> float:  # edge: timing and statistics, not money
        """ms, from the histogram (cheap enough for a progress line)."""
        total = len(self.lat)
        if not total:
            return 0.0
        target = q * total
        acc = 0
        for i, c in enumerate(self.hist):
            if c:
                acc += c
                if acc >= target:
                    return (i if i < self.HIST_FINE else (i - self.HIST_FINE) * 100) / 1000
        return self.max_ns / 1e6


def quantiles(sorted_ns, qs) -> dict:
    n = len(sorted_ns)
    out = {}
    for name, q in qs:
        i = min(n - 1, max(0, math.ceil(q * n) - 1))
        out[name] = round(sorted_ns[i] / 1e6, 3) if n else None
    return out


class CpuMeter:
    """CPU use per interval, from /proc (Linux; silent elsewhere): the server's, this process's
    and every other process's, in % of one core, so a report shows whether the server was
    saturated and whether something else on the machine competed with the run."""

    def __init__(self, server_pid: int | None) -> None:
        self.pid = server_pid
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = self._read()

    def _read(self):
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
            total_busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
            server = 0
            if self.pid:
                with open(f"/proc/{self.pid}/stat") as f:
                    parts = f.read().rsplit(")", 1)[1].split()
                server = int(parts[11]) + int(parts[12])
            t = os.times()
            return perf_counter(), total_busy, server, (t.user + t.system) * self.hz
        except (OSError, ValueError, IndexError):
            return None

    def sample(self) -> dict | None:
        now = self._read()
        last, self.last = self.last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        ticks = (now[0] - last[0]) * self.hz / 100  # ticks in 1% of one core
        busy, server, me = (now[i] - last[i] for i in (1, 2, 3))
        return {"server_cpu": round(server / ticks), "loadgen_cpu": round(me / ticks),
                "other_cpu": max(0, round((busy - server - me) / ticks))}


class ProcessCpu:
    """CPU seconds (user + system) of one process from /proc/<pid>/stat, and of the server's
    risk-consumer child (python -m engine.riskconsumer) found among its children."""

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @classmethod
    def seconds(cls, pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return (int(parts[11]) + int(parts[12])) / cls.HZ
        except (OSError, ValueError, IndexError):
            return None

    @classmethod
    def risk_child(cls, pid: int) -> int | None:
        try:
            names = os.listdir("/proc")
        except OSError:
            return None
        for name in names:
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                if ppid != pid:
                    continue
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if b"engine.riskconsumer" in f.read():
                        return int(name)
            except (OSError, ValueError, IndexError):
                continue
        return None

    @classmethod
    def sample_all(cls, server_pid: int | None) -> dict:
        t = os.times()
        out = {"t": perf_counter(), "loadgen": t.user + t.system, "server": None, "risk": None}
        if server_pid:
            out["server"] = cls.seconds(server_pid)
            child = cls.risk_child(server_pid)
            out["risk"] = cls.seconds(child) if child else None
        return out


def cpu_per_ack(start: dict | None, end: dict | None, acked: int) -> dict | None:
    """µs of CPU per acknowledged order request, per process, over the load (and each one's
    mean CPU use in % of one core)."""
    if not start or not end or not acked:
        return None
    wall = max(1e-9, end["t"] - start["t"])
    out: dict = {"acknowledged": acked, "seconds": round(wall, 3)}
    for k in ("server", "risk", "loadgen"):
        if start.get(k) is None or end.get(k) is None:
            out[k] = None
            continue
        used = end[k] - start[k]
        out[k] = {"us_per_ack": round(used / acked * 1e6, 1), "cpu_percent": round(100 * used / wall)}
    return out


def build_report(run: Any, nofile: dict) -> dict:
    a, st, srv = run.args, run.stats, run.server
    window = max(1e-9, (run.t_stop or perf_counter()) - run.t_start)
    ack_window = max(1e-9, (st.last_ack or run.t_stop) - run.t_start)
    sent = sum(st.sent[o] for o in ORDER_OPS)
    acked = len(st.lat)
    lat = sorted(st.lat)
    lat_ms = quantiles(lat, (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)))
    lat_ms["max"] = round(lat[-1] / 1e6, 3) if lat else None
    lat_ms["min"] = round(lat[0] / 1e6, 3) if lat else None
    lat_ms["mean"] = round(sum(lat) / len(lat) / 1e6, 3) if lat else None
    lat_ms["count"] = acked
    return {
        "ok": True,
        "stopped_by": run.stop_reason,
        "config": {k: v for k, v in vars(a).items() if k not in ("report",)},
        "duration_s": round(window, 3),
        "setup_s": run.setup_s,
        "orders": {
            "sent": sent, "acknowledged": acked, "accepted": sum(st.ok[o] for o in ORDER_OPS),
            "rejected": sum(st.rejected.values()),
            "sent_per_s": round(sent / window, 1),
            "acknowledged_per_s": round(acked / ack_window, 1),
            "offered_rate": a.rate or "max",
            "by_op": {o: {"sent": st.sent[o], "acknowledged": st.acked[o], "accepted": st.ok[o]}
                      for o in ORDER_OPS},
        },
        "latency_ms": lat_ms,
        "rejections": {str(k): v for k, v in sorted(st.rejected.items())},
        "outcomes": dict(st.outcomes.most_common()),
        "trades": st.trades_acked,
        "trades_stream": st.trades_stream,
        "liquidations": st.liquidations,
        "gambler_positions_closed": st.wipeouts,
        "feed": {"updates": st.feed_updates, "jumps": st.feed_jumps,
                 "jump_log": st.jump_log[:200], "rejected": st.feed_rejected,
                 "topups": st.topups},
        "queries": st.queries,
        "errors": {"connection_lost": st.conn_lost, "connect_failures": st.connect_failures,
                   "requests_lost": st.lost, "timeouts": st.timeouts,
                   "unanswered_at_end": getattr(st, "unanswered", 0),
                   "observer_lost": run.observer_lost},
        "connections": {"requested": a.connections or a.accounts, "opened": len(run.traders),
                        "held_at_end": getattr(run, "held_at_end", run.held()),
                        "peak": run.peak_connections},
        "roles": dict(Counter(t.role for t in run.traders)),
        "gamblers": [t.log for t in run.traders if t.role == "gambler"],
        "server": {"own": a.connect is None, "address": srv.address,
                   "pid": srv.proc.pid if srv.proc else None, "exit_code": srv.exit_code,
                   "stop_s": srv.stop_s, "log_bytes": srv.log_bytes,
                   "log": str(srv.log_path) if srv.log_path and a.keep_log else None,
                   "stderr": str(srv.stderr_path) if srv.stderr_path else None,
                   "last_lines": srv.lines[-3:]},
        "cpu_percent_mean": {k: round(sum(r[k] for r in run.timeline) / len(run.timeline))
                             for k in ("server_cpu", "loadgen_cpu", "other_cpu")}
        if run.timeline and all("server_cpu" in r for r in run.timeline) else None,
        "cpu_per_ack": cpu_per_ack(getattr(run, "cpu_start", None), getattr(run, "cpu_end", None),
                                   acked),
        "flow": a.flow if hasattr(a, "flow") else "traders",
        "fsync": getattr(a, "fsync", None),
        "loadgen_loop_lag_ms": quantiles([int(x * 1e9) for x in sorted(run.lags)],
                                         (("p50", 0.5), ("p99", 0.99), ("max", 1.0))),
        "nofile": nofile,
        "timeline": run.timeline,
        "latency_timeline": latency_timeline(run.timeline, st.lat),
    }


def print_report(rep: dict) -> None:
    o, l, e, c = rep["orders"], rep["latency_ms"], rep["errors"], rep["connections"]
    rej = ", ".join(f"{k}: {v:,}" for k, v in rep["rejections"].items()) or "none"

    def ms(x):
        return "-" if x is None else f"{x:.3f}"
    lines = [
        f"perpengine load: {rep['duration_s']:.1f} s ({rep['stopped_by']}), "
        f"{c['opened']} connections, offered rate {o['offered_rate']}",
        f"  orders     sent {o['sent']:,} ({o['sent_per_s']:,.0f}/s), acknowledged "
        f"{o['acknowledged']:,} ({o['acknowledged_per_s']:,.0f}/s), accepted {o['accepted']:,}, "
        f"rejected {o['rejected']:,}",
        "  by op      " + ", ".join(f"{k} {v['acknowledged']:,}/{v['sent']:,}"
                                    for k, v in o["by_op"].items()),
        f"  ack        p50 {ms(l['p50'])} ms  p99 {ms(l['p99'])} ms  p99.9 {ms(l['p99.9'])} ms  "
        f"max {ms(l['max'])} ms  (mean {ms(l['mean'])} ms, n={l['count']:,})",
        f"  rejections {rej}",
        "  outcomes   " + (", ".join(f"{k} {v:,}" for k, v in rep.get("outcomes", {}).items())
                           or "-") + " (accepted order requests by status)",
        f"  trades     {rep['trades']:,} in acks, {rep['trades_stream']:,} on trade streams; "
        f"liquidations {rep['liquidations']} (!forceOrder)",
        f"  gamblers   {rep['gambler_positions_closed']} positions closed (liquidated or "
        f"auto-deleveraged); mark updates {rep['feed']['updates']:,} "
        f"({rep['feed']['jumps']} jumps)",
        f"  errors     {e['connection_lost']} connections lost, {e['connect_failures']} connect "
        f"failures, {e['requests_lost']} requests lost, {e['timeouts']} timeouts, "
        f"{e['unanswered_at_end']} unanswered at end"
        f"{', observer lost' if e['observer_lost'] else ''}",
        f"  connections held {c['held_at_end']}/{c['requested']} at the end (peak {c['peak']})",
    ]
    cpu, lag = rep.get("cpu_percent_mean"), rep.get("loadgen_loop_lag_ms") or {}
    if cpu:
        lines.append(f"  cpu        server {cpu['server_cpu']}%, load generator "
                     f"{cpu['loadgen_cpu']}%, other processes {cpu['other_cpu']}% (means, % of "
                     f"one core); load generator loop lag p99 {lag.get('p99')} ms")
    per = rep.get("cpu_per_ack")
    if per and per.get("server"):
        risk = per.get("risk")
        lines.append(f"  cpu/ack    server {per['server']['us_per_ack']} µs "
                     f"({per['server']['cpu_percent']}% of one core)"
                     + (f", risk consumer process {risk['us_per_ack']} µs "
                        f"({risk['cpu_percent']}%)" if risk else "")
                     + f", load generator {per['loadgen']['us_per_ack']} µs "
                       f"({per['loadgen']['cpu_percent']}%); per acknowledged order request, "
                       f"from /proc/<pid>/stat over {per['seconds']} s")
    s = rep["server"]
    if s["own"]:
        lines.append(f"  server     pid {s['pid']} exit code {s['exit_code']} "
                     f"({s['stop_s']} s to stop), log {s['log_bytes'] or 0:,} bytes")
    print("\n".join(lines), flush=True)


def latency_timeline(timeline: list[dict], lat_ns) -> list[dict]:
    """Ack latency percentiles per progress interval (ms): the latencies are kept in the order
    their acknowledgements came, and each progress row counts the acknowledgements so far, so
    the slice between two rows is one interval's."""
    out = []
    prev = 0
    for row in timeline:
        n = min(row["acked"], len(lat_ns))
        part = sorted(lat_ns[prev:n])
        prev = n
        if not part:
            continue
        q = quantiles(part, (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)))
        out.append({"t": row["t"], "n": len(part), **q})
    return out


def write_picture(rep: dict, lat_ns, path: Path) -> Path:
    """The report's picture as PNG at `path` (always: matplotlib is a dependency)."""
    from engine.plots import save_png
    save_png(report_figure(rep, lat_ns), path)
    return path


def report_figure(rep: dict, lat_ns):
    """The run as a picture: ack latency percentiles over time, the latency histogram with
    p50 / p99 / p99.9 marked, orders/s over time and CPU over time (the server, this load
    generator, everything else). Labels never overlap (engine.plots.place_labels)."""
    from engine.plots import figure, place_labels
    fig, axes = figure(12, 8, rows=2, cols=2)
    (a_lat, a_hist), (a_rate, a_cpu) = axes
    lt = rep.get("latency_timeline") or []
    tl = rep.get("timeline") or []
    empty = {"ha": "center", "va": "center", "color": "#777"}
    if lt:
        t = [r["t"] for r in lt]
        for name, colour in (("p50", "#1f6fd1"), ("p99", "#d1731f"), ("p99.9", "#c0392b")):
            a_lat.plot(t, [r[name] for r in lt], marker=".", color=colour, label=name,
                       gid=f"latency {name}")
        a_lat.set_ylim(bottom=0)
        a_lat.legend(fontsize=8, loc="upper left")
    else:
        a_lat.text(0.5, 0.5, "no interval with acknowledgements", transform=a_lat.transAxes,
                   **empty)
    a_lat.set_title("ack latency per second", fontsize=10)
    a_lat.set_xlabel("time since start (s)")
    a_lat.set_ylabel("ms")
    data = [x / 1e6 for x in lat_ns]  # drawing and statistics: not money
    marks = []
    if data:
        lo, hi = max(min(data), 1e-3), max(max(data), 1e-3)
        bins = [lo * (hi / lo) ** (i / 80) for i in range(81)] if hi > lo else 80
        a_hist.hist(data, bins=bins, color="#5b8bd6", gid="histogram")
        a_hist.set_xscale("log")
        a_hist.set_yscale("log")
        lat = rep.get("latency_ms") or {}
        for name, colour in (("p50", "#1f6fd1"), ("p99", "#d1731f"), ("p99.9", "#c0392b")):
            v = lat.get(name)
            if v:
                a_hist.axvline(v, linestyle="--", linewidth=1, color=colour, gid=f"line {name}")
                marks.append((v, name, colour))
    else:
        a_hist.text(0.5, 0.5, "no acknowledged orders", transform=a_hist.transAxes, **empty)
    a_hist.set_title("ack latency histogram", fontsize=10)
    a_hist.set_xlabel("ack latency (ms)")
    a_hist.set_ylabel("orders")
    if tl:
        t = [r["t"] for r in tl]
        a_rate.plot(t, [r["acked_per_s"] for r in tl], color="#2e9e4f", label="acknowledged/s",
                    gid="acked per s")
        a_rate.legend(fontsize=8, loc="lower right")
        cpu_keys = [(k, label, c) for k, label, c in (
            ("server_cpu", "server", "#c0392b"), ("loadgen_cpu", "load generator", "#1f6fd1"),
            ("other_cpu", "other processes", "#7f8c8d")) if all(k in r for r in tl)]
        for k, label, colour in cpu_keys:
            a_cpu.plot(t, [r[k] for r in tl], color=colour, label=label, gid=f"cpu {label}")
        if cpu_keys:
            a_cpu.legend(fontsize=8, loc="lower right")
        else:
            a_cpu.text(0.5, 0.5, "no CPU samples (/proc)", transform=a_cpu.transAxes, **empty)
    else:
        for ax in (a_rate, a_cpu):
            ax.text(0.5, 0.5, "no progress samples (a run under a second)",
                    transform=ax.transAxes, **empty)
    a_rate.set_title("orders per second", fontsize=10)
    a_rate.set_xlabel("time since start (s)")
    a_rate.set_ylabel("orders/s")
    per = (rep.get("cpu_per_ack") or {}).get("server")
    a_cpu.set_title("CPU (% of one core)" + (f"; server {per['us_per_ack']} µs per acknowledged "
                                             f"order" if per else ""), fontsize=10)
    a_cpu.set_xlabel("time since start (s)")
    a_cpu.set_ylabel("% of one core")
    o = rep.get("orders") or {}
    fig.suptitle(f"perpengine load: {rep.get('duration_s', 0):.1f} s, "
                 f"{o.get('acknowledged', 0):,} orders acknowledged "
                 f"({o.get('acknowledged_per_s', 0):,.0f}/s), offered {o.get('offered_rate')}",
                 fontsize=11)
    if marks:
        top = a_hist.get_ylim()[1]
        place_labels(a_hist, [(v, top, f"{name} {v:.2f} ms",
                               {"color": c, "fontsize": 8, "va": "top", "gid": f"label {name}"})
                              for v, name, c in marks], offset=(3, -3))
    return fig


def print_sweep(reports: list[dict]) -> None:
    """The end-to-end benchmark's table (load --sweep)."""
    lines = ["", "| fsync | offered orders/s | acknowledged/s | p50 ms | p99 ms | p99.9 ms | "
                 "server CPU µs/ack (% core) | risk process µs/ack | load generator µs/ack (% core) "
                 "| rejected |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        o, lat, per = r["orders"], r["latency_ms"], r.get("cpu_per_ack") or {}
        srv, risk, gen = per.get("server"), per.get("risk"), per.get("loadgen")
        lines.append(
            f"| {r.get('fsync')} | {o['offered_rate']:,.0f} | {o['acknowledged_per_s']:,.0f} | "
            f"{lat['p50']} | {lat['p99']} | {lat['p99.9']} | "
            f"{srv['us_per_ack'] if srv else '-'} ({srv['cpu_percent'] if srv else '-'}%) | "
            f"{risk['us_per_ack'] if risk else '-'} | "
            f"{gen['us_per_ack'] if gen else '-'} ({gen['cpu_percent'] if gen else '-'}%) | "
            f"{o['rejected']:,} of {o['acknowledged']:,} |")
    print("\n".join(lines), flush=True)
