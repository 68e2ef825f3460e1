"""End to end: `python -m engine.sim.load` starts its own server, trades for 3 s and reports."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_a_short_load_run_reports_acks_latencies_trades_and_a_clean_server_stop(tmp_path):
    report_path = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.sim.load", "--duration", "3", "--accounts", "20",
         "--seed", "7", "--inflight", "8", "--tmpdir", str(tmp_path), "--report",
         str(report_path), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ack" in proc.stdout and str(report_path) in proc.stdout
    report = json.loads(report_path.read_text())
    assert report["ok"] is True
    orders = report["orders"]
    assert orders["acknowledged"] > 0 and orders["sent"] >= orders["acknowledged"]
    assert orders["acknowledged_per_s"] > 0
    lat = report["latency_ms"]
    assert lat["count"] == orders["acknowledged"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert report["trades"] >= 1
    assert report["trades_stream"] >= report["trades"]  # + liquidation trades, none missed
    assert isinstance(report["liquidations"], int)
    assert isinstance(report["rejections"], dict)
    errors = report["errors"]
    assert errors["timeouts"] == 0 and errors["connection_lost"] == 0
    assert errors["connect_failures"] == 0 and errors["unanswered_at_end"] == 0
    assert report["connections"]["opened"] == 20 and report["connections"]["held_at_end"] == 20
    assert report["server"]["exit_code"] == 0
    # the picture, always: latency per second from the same acknowledgements
    picture = tmp_path / "report.png"
    assert report["picture"] == str(picture) and f"picture {picture}" in proc.stdout
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_second = report["latency_timeline"]
    assert per_second and sum(r["n"] for r in per_second) <= lat["count"]
    assert all(r["p50"] <= r["p99"] <= r["p99.9"] <= lat["max"] for r in per_second)


@pytest.mark.slow
def test_the_honest_flow_end_to_end_reports_cpu_per_acknowledged_order(tmp_path):
    """The benchmarks' flow over the gateway: few rejections, and the server's own CPU time
    per acknowledged order (from /proc/<pid>/stat), its risk consumer's and the load
    generator's."""
    report_path = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.sim.load", "--flow", "honest", "--rate", "2000",
         "--duration", "3", "--accounts", "20", "--tmpdir", str(tmp_path), "--report",
         str(report_path), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cpu/ack    server" in proc.stdout
    report = json.loads(report_path.read_text())
    orders = report["orders"]
    assert orders["acknowledged"] >= 5000 and orders["by_op"]["cancelOrder"]["sent"] > 1000
    assert orders["rejected"] < 0.02 * orders["acknowledged"]
    assert report["trades"] > 100 and report["flow"] == "honest"
    per = report["cpu_per_ack"]
    assert per["acknowledged"] == orders["acknowledged"]
    for who in ("server", "risk", "loadgen"):
        assert per[who]["us_per_ack"] > 0, who
    assert report["server"]["exit_code"] == 0
