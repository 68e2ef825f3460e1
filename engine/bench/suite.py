"""`make bench` (`python -m engine.bench all`): every benchmark in turn, progress on stderr, and
at the end one table in the README's form (what | figure | target | command).

The full core runs twice: on the core this process loaded (compiled when built) and, in a
child process with PERPENGINE_PURE=1, on the pure-Python core. Figures vary from run to run on
a shared machine by up to a third; the core and book rows are medians of several runs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from engine.bench import core, funding, gateway, replay, risk, tokens
from engine.bench.common import machine_line
from engine.core.build import core_build


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _outcomes(o: dict) -> str:
    keep = ("resting", "filled", "canceled", "expired")
    parts = [f"{k} {v:,}" for k, v in o.items() if k in keep or k.startswith("filled")]
    rejected = {k: v for k, v in o.items() if k.startswith("rejected ") and k != "rejected %"}
    parts.append("rejected " + (", ".join(f"{k[9:]}: {v:,}" for k, v in rejected.items())
                                if rejected else "0"))
    return "; ".join(parts)


def run_all(quick: bool = False) -> int:
    n = 100_000 if quick else 300_000
    steps = [
        ("book alone", lambda: core.bench_book(n)),
        ("full core", lambda: core.bench_core(n, 3)),
        ("full core, pure Python (child process)", lambda: _pure_core(n)),
        ("1,000,000 resting orders", lambda: core.bench_rss(200_000 if quick else 1_000_000)),
        ("gateway parse", lambda: gateway.bench_parse(20_000 if quick else 100_000)),
        ("verify and re-drive", lambda: replay.bench_replay(200_000 if quick else 1_000_000)),
        ("snapshot", lambda: replay.bench_snapshot(200_000 if quick else 1_000_000)),
        ("risk mark update", lambda: risk.bench_mark_update(20_000 if quick else 100_000)),
        ("risk lag", lambda: risk.bench_lag(50_000 if quick else 200_000)),
        ("index", lambda: funding.bench_index(100_000)),
        ("index through the core", lambda: funding.bench_index_cmd(20_000)),
        ("mark + premium", lambda: funding.bench_mark(20_000)),
        ("funding settlement", lambda: funding.bench_settle(100_000)),
        ("token NAV", lambda: tokens.bench_nav_mark(4_000)),
        ("token flows", lambda: tokens.bench_flows(4_000)),
    ]
    results: dict[str, dict] = {}
    print(machine_line(), flush=True)
    t_all = time.perf_counter()
    for i, (name, fn) in enumerate(steps, start=1):
        print(f"[{i}/{len(steps)}] {name} ...", end="", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results[name] = fn()
        print(f" {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        print(f"{name}: {results[name]}", flush=True)
    print(f"all benchmarks in {time.perf_counter() - t_all:.0f} s", file=sys.stderr)
    print()
    print(table(results))
    return 0


def _pure_core(n: int) -> dict:
    env = {**os.environ, "PERPENGINE_PURE": "1"}
    out = subprocess.run([sys.executable, "-m", "engine.bench", "core", "--n", str(n), "--json"],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)["core"]


def table(r: dict) -> str:
    rows = []
    b = r["book alone"]
    rows.append(("book alone (add, cancel, match on `OrderBook`, honest flow), median of "
                 f"{b['repeats']} runs, {b['build']}", f"**{_n(b['ops_per_s_median'])} ops/s** "
                 f"(best {_n(b['ops_per_s_best'])})", "≥ 800,000", "`python -m engine.bench book`"))
    for key, label, cmd in (("full core", core_build(), "`python -m engine.bench core`"),
                            ("full core, pure Python (child process)", "pure",
                             "`PERPENGINE_PURE=1 python -m engine.bench core`")):
        c = r[key]
        rows.append((f"full core, {label}: checks, matching, events, log written (60 % resting, "
                     f"25 % cancels, 15 % crossing; 100 accounts, 3 symbols); outcomes: "
                     f"{_outcomes(c['outcomes'])}",
                     f"**{_n(c['commands_per_s'])} commands/s** (median of "
                     f"{', '.join(_n(x) for x in c['commands_per_s_runs'])}), "
                     f"{_n(c['events_per_s'])} events/s; mean {c['latency_mean_us']} µs, p99 "
                     f"{c['latency_p99_us']} µs; {c['log_bytes_per_command']} log bytes/command",
                     "≥ 150,000" if label == "compiled" else "report", cmd))
    m = r["1,000,000 resting orders"]
    rows.append((f"{_n(m['resting_orders'])} resting orders held through the core",
                 f"**{m['peak_rss_mb']} MB** peak RSS ({m['rss_before_orders_mb']} MB before)",
                 "≤ 500 MB", "`python -m engine.bench rss`"))
    g = r["gateway parse"]
    rows.append(("gateway: a newOrder request from bytes to its command (JSON / msgpack)",
                 f"{g['json_us']} µs / {g['msgpack_us']} µs", "report",
                 "`python -m engine.bench gateway`"))
    v = r["verify and re-drive"]
    rows.append((f"verify (rebuild + {v['checkpoints_matched']} checkpoint hashes) of a "
                 f"{_n(v['log']['events'])}-event log ({_n(v['log']['bytes'] / v['log']['records'])}"
                 " bytes/record)", f"**{_n(v['verify_events_per_s'])} events/s**", "≥ 500,000",
                 "`python -m engine.bench replay`"))
    rows.append(("re-drive of the same log, byte-for-byte comparison",
                 f"**{_n(v['redrive_commands_per_s'])} commands/s**", "≥ 150,000",
                 "`python -m engine.bench replay`"))
    s = r["snapshot"]
    rows.append((f"snapshot of {_n(s['resting_orders'])} resting orders",
                 f"{s['snapshot_mb']} MB; encode {s['encode_seconds']} s, write "
                 f"{s['write_seconds']} s; **restore {s['restore_seconds']} s**, hash equal",
                 "restore ≤ 5 s", "`python -m engine.bench replay`"))
    mu = r["risk mark update"]
    ms = [u["ms"] for u in mu["updates"]]
    rows.append((f"risk consumer, mark update on a symbol held by {_n(mu['holders'])} accounts",
                 f"{min(ms)}–{max(ms)} ms over {len(ms)} marks", "≤ 100 ms",
                 "`python -m engine.bench risk`"))
    lag = r["risk lag"]
    rows.append(("risk consumer following the core at full rate",
                 f"lag at most {_n(lag['max_lag_records'])} records, {lag['final_lag']} at the "
                 f"end; core + consumer {_n(lag['commands_per_s_core_plus_consumer'])} "
                 "commands/s", "bounded", "`python -m engine.bench risk`"))
    rows.append(("ALL index, one constituent move (200 constituents); through the core",
                 f"{r['index']['per_update_us']} µs; "
                 f"{r['index through the core']['per_command_us']} µs", "≤ 20 µs",
                 "`python -m engine.bench funding`"))
    mp = r["mark + premium"]
    rows.append(("mark + premium for one symbol (20 levels a side); through the core",
                 f"{mp['pure_us']} µs; {mp['through_core_us']} µs", "report",
                 "`python -m engine.bench funding`"))
    st = r["funding settlement"]
    rows.append((f"funding settlement over {_n(st['positions'])} positions",
                 f"**{st['settle_ms']} ms** (+{st['encode_record_ms']} ms to encode its record)",
                 "≤ 500 ms", "`python -m engine.bench funding`"))
    rows.append(("token NAV update on a mark move, per token",
                 f"{r['token NAV']['nav_update_per_token_us']} µs", "≤ 50 µs",
                 "`python -m engine.bench tokens`"))
    tf = r["token flows"]
    rows.append(("token subscription / redemption (with one hedge fill)",
                 f"{tf['subscribe_us']} µs / {tf['redeem_us']} µs", "≤ 50 µs",
                 "`python -m engine.bench tokens`"))
    lines = ["| what | figure | target | command |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)
