"""The market simulator's own cost (a report, not a test).

    python -m engine.bench market [--duration S] [--speeds 1,60]

For each speed: a real server (`python -m engine serve`, --clock sim --speed N unless N is 1)
on 127.0.0.1 with a fresh log, and the simulator at its default settings
(`python -m engine.sim.market`) against it for S seconds of real time. Reported: the
simulator's CPU per simulated second (its steady state, measured by the simulator itself around
its step loop, and its whole process from exec to exit, from wait4), its share of a core, the
commands it sent per real second, and the server's CPU over the same time (what the simulated
market costs the engine). Both processes are stopped by PID.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:  # edge: timing, not money
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def run_once(speed: int, duration: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="perpbench-market-"))
    clock = [] if speed == 1 else ["--clock", "sim", "--speed", str(speed)]
    server = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--port", "0", "--log", str(tmp / "e.log"),
         "--keys", str(tmp / "keys.json"), "--summary-every", "3600", *clock],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.split("serving on ")[1].split()[0].rsplit(":", 1)[1])
        server.stdout.readline()
        cpu0 = _proc_cpu_s(server.pid)
        sim = subprocess.Popen(
            [sys.executable, "-m", "engine.sim.market", "--port", str(port), "--keys",
             str(tmp / "keys.json"), "--duration", str(duration), "--report-every", "0",
             "--summary", str(tmp / "summary.json")],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(sim.pid, 0)
        sim.returncode = os.waitstatus_to_exitcode(status)
        server_cpu = _proc_cpu_s(server.pid) - cpu0
        if sim.returncode != 0:
            raise RuntimeError(f"the simulator failed: {sim.stderr.read()[-2000:]}")
        s = json.loads((tmp / "summary.json").read_text())
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        server.wait(60)
    whole = usage.ru_utime + usage.ru_stime
    return {"speed": speed, "steps": s["steps"], "simulated_s": s["simulated_s"],
            "wall_s": s["wall_s"], "commands_per_s": round(s["commands"] / s["wall_s"]),
            "sim_cpu_ms_per_simulated_s": s["cpu_ms_per_simulated_s"],
            "sim_cpu_share": s["cpu_share_of_a_core"],
            "sim_process_cpu_s": round(whole, 3),
            "sim_process_cpu_ms_per_simulated_s": round(whole * 1000 / s["simulated_s"], 3),
            "server_cpu_share": round(server_cpu / s["wall_s"], 4),
            "rejected": s["rejected"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench market")
    p.add_argument("--duration", type=float, default=30.0, help="real seconds per run")
    p.add_argument("--speeds", default="1,60", help="clock speeds to run at (1: the wall clock)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    rows = [run_once(int(x), a.duration) for x in a.speeds.split(",")]
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("market simulator, default settings (7 symbols, 3 makers, 3 takers, 28 "
          "over-leveraged accounts, a step every 500 ms)")
    for r in rows:
        print(f"  x{r['speed']:<5} {r['simulated_s']:>7g} s simulated in {r['wall_s']:.1f} s: "
              f"simulator {r['sim_cpu_ms_per_simulated_s']:.2f} ms CPU per simulated s "
              f"({r['sim_cpu_share']:.1%} of a core; whole process "
              f"{r['sim_process_cpu_ms_per_simulated_s']:.2f} ms/s incl. start-up), "
              f"{r['commands_per_s']} commands/s; server {r['server_cpu_share']:.1%} of a core"
              + (f"; rejected {r['rejected']}" if r["rejected"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
