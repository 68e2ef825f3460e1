"""Issue 11, item 9 and the feed's time: `replay feed --log PATH` refuses an existing log
unless --append, and with --append goes on from it exactly; a refused line's time still counts."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.core import EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.eventlog import LogReader
from replay.feed import FeedError, run_feed
from replay.redrive import redrive
from tests.test_gateway import ROOT as _ROOT
from tests.test_log_and_feed import synthetic_lines

CAT = catalogue_mod.load()
ROOT = Path(_ROOT)
EXAMPLE = ROOT / "replay" / "examples" / "eth-2022-09-12-session.jsonl"
RULES = ROOT / "replay" / "examples" / "eth-table-at-start.json"


def replay(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "replay", *args], capture_output=True,
                          text=True, cwd=ROOT, input=stdin)


def test_the_readme_what_if_run_twice_refuses_the_second_feed(tmp_path):
    log = tmp_path / "eth.log"
    assert replay("feed", str(EXAMPLE), "--log", str(log)).returncode == 0
    before = log.read_bytes()
    again = replay("feed", str(EXAMPLE), "--log", str(log))
    assert again.returncode == 2 and "exists" in again.stderr and "--append" in again.stderr
    assert log.read_bytes() == before
    out = replay("whatif", str(log), str(RULES))
    assert out.returncode == 0 and "ADL: original 0 trades (0), what-if 1 (100)" in out.stdout


def test_append_goes_on_exactly_as_one_run(tmp_path):
    lines = synthetic_lines(600, seed=9)
    whole, parts = tmp_path / "whole.log", tmp_path / "parts.log"
    config = EngineConfig(checkpoint_every=100)
    run_feed(lines, io.BytesIO(), CAT, config, log_path=str(whole))
    run_feed(lines[:250], io.BytesIO(), CAT, config, log_path=str(parts))
    with pytest.raises(FeedError):
        run_feed(lines[250:], io.BytesIO(), CAT, config, log_path=str(parts))
    res = run_feed(lines[250:400], io.BytesIO(), CAT, config, log_path=str(parts), append=True)
    assert not res.errors
    # the CLI, for the rest
    rest = tmp_path / "rest.jsonl"
    rest.write_text("\n".join(lines[400:]) + "\n")
    out = replay("feed", str(rest), "--log", str(parts), "--append")
    assert out.returncode == 0, out.stderr
    # the same records (the frames differ: a run's batches end where the run did)
    records = [r for _, r in LogReader(parts).records()]
    assert records == [r for _, r in LogReader(whole).records()] and len(records) >= 600
    assert redrive(parts, CAT, progress=False).identical


def test_append_refuses_a_damaged_log_and_times_before_its_end(tmp_path):
    lines = synthetic_lines(100, seed=9)
    log = tmp_path / "a.log"
    run_feed(lines, io.BytesIO(), CAT, log_path=str(log))
    last = [r for _, r in LogReader(log).records()][-1]
    early = json.dumps({"op": "deposit", "account": 1, "amount": "1", "time": last.time - 1})
    res = run_feed([early], io.BytesIO(), CAT, log_path=str(log), append=True)
    assert res.errors and res.errors[0][1] == -1102 and "before the log's last" in res.errors[0][2]
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0xFF
    log.write_bytes(bytes(data))
    with pytest.raises(FeedError) as exc:
        run_feed([], io.BytesIO(), CAT, log_path=str(log), append=True)
    assert "does not read to its end" in str(exc.value)


def test_a_refused_lines_time_still_counts():
    out = io.BytesIO()
    res = run_feed([
        json.dumps({"op": "createAccount", "account": 1, "registeredAt": "soon",
                    "time": "2024-01-01T00:00:00Z"}),  # refused: registeredAt
        json.dumps({"op": "createAccount", "account": 1, "registeredAt": 0}),
    ], out, CAT)
    assert [e[1] for e in res.errors] == [-1102]
    created = [json.loads(x) for x in out.getvalue().splitlines() if b"accountCreated" in x]
    assert created[0]["time"] == 1704067200000
