"""Issue 11, "what a new user tripped over": the command lines. A server that is not running
or a port in use is one clear line; `watch` ends on Ctrl-C and on --timeout; the client's
admin fields are typed; `make run ARGS=...` passes them; `make load` leaves no secrets behind."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

from tests.test_gateway import ROOT, ServerProcess

PY = sys.executable


def client(*args, **kw):
    return subprocess.run([PY, "-m", "engine.client", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_not_running_is_one_line():
    out = client("--port", str(free_port()), "query", "depth", "BTCUSDT")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert "cannot connect" in out.stderr and "connection refused" in out.stderr


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([PY, "-m", "engine", "serve", "--port", str(port), "--log",
                              str(tmp_path / "e.log"), "--keys", str(tmp_path / "k.json")],
                             cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "in use" in out.stderr


def test_watch_on_an_idle_server_times_out_and_ends_on_ctrl_c(tmp_path):
    server = ServerProcess(tmp_path)
    try:
        t0 = time.monotonic()
        out = client("--port", str(server.port), "watch", "trade@BTCUSDT", "--timeout", "1")
        assert out.returncode == 0 and out.stderr == ""
        assert json.loads(out.stdout.splitlines()[0])["streams"] == ["trade@BTCUSDT"]
        assert 1 <= time.monotonic() - t0 < 10
        proc = subprocess.Popen([PY, "-m", "engine.client", "--port", str(server.port), "watch",
                                 "depth@BTCUSDT"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert "depth@BTCUSDT" in proc.stdout.readline()  # subscribed, waiting
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0 and "Traceback" not in err and err == ""
    finally:
        assert server.stop() == 0


def test_admin_fields_are_typed_and_times_may_be_iso(tmp_path):
    server = ServerProcess(tmp_path)
    try:
        keys = ("--port", str(server.port), "--keys", str(server.keys_path))
        made = client(*keys, "admin", "createAccount", "account=7",
                      "registeredAt=2020-01-01T00:00:00Z")
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["events"][0]["registeredAt"] == 1577836800000
        assert client(*keys, "admin", "deposit", "account=7", "amount=10000").returncode == 0
        lev = client(*keys, "admin", "setLeverage", "account=7", "symbol=BTCUSDT", "leverage=50")
        assert lev.returncode == 0, lev.stderr  # registered in 2020: 50x is allowed
        assert json.loads(lev.stdout)["events"][0]["leverage"] == 50
        bad = client(*keys, "admin", "setLeverage", "account=7", "symbol=BTCUSDT", "leverage=x")
        assert bad.returncode == 2 and "leverage must be an integer" in bad.stderr
    finally:
        assert server.stop() == 0


def test_make_run_passes_args():
    out = subprocess.run(["make", "-n", "run", "ARGS=--port 7100 --fsync interval"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "-m engine serve --market --port 7100 --fsync interval" in out.stdout


def test_a_load_run_leaves_no_secrets_behind(tmp_path):
    work = tmp_path / "tmp"
    work.mkdir()
    report = tmp_path / "report.json"
    out = subprocess.run([PY, "-m", "engine.sim.load", "--duration", "0.5", "--accounts", "4",
                          "--tmpdir", str(work), "--report", str(report), "--quiet"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(report.read_text())["ok"] is True
    assert os.listdir(work) == []  # the server's directory (log, keys.json) is gone
