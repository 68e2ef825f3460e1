"""Replay: verify, re-drive, snapshots, crash recovery, upcasting and what-if."""
import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from engine.core import catalogue as catalogue_mod
from engine.core import snapshot
from engine.core import Engine, EngineConfig
from engine.eventlog import MAGIC, LogFormatError, LogReader, LogWriter, frame
from proto.positional import as_map
from engine import recovery as snapshots
from replay.feed import run_feed
from replay.redrive import redrive
from replay.verify import verify
from replay.whatif import load_overrides, whatif
from tests.test_gateway import ServerProcess, order
from tests.test_log_and_feed import synthetic_lines

CAT = catalogue_mod.load()
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "replay" / "examples"


def make_log(tmp_path, n=1500, every=100, name="a.log", batch=1):
    """batch=1: one record per frame, so damage can be placed at any record (format 3 frames
    batches; the batch tests are in test_log_and_feed)."""
    path = tmp_path / name
    res = run_feed(synthetic_lines(n, seed=3), io.BytesIO(), CAT,
                   EngineConfig(checkpoint_every=every), log_path=str(path), batch=batch)
    assert not res.errors
    return path


def frames(path):
    """[(offset, end)] of every record frame."""
    reader = LogReader(path)
    offsets = [off for off, _ in reader.records()]
    return offsets + [reader.good_end]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "replay", *args], capture_output=True,
                          text=True, cwd=ROOT)


def test_verify_and_redrive_round_trip(tmp_path):
    log = make_log(tmp_path, batch=200)
    report = verify(log, CAT, progress=False)
    assert report.intact and report.records == report.last_seq >= 1508
    assert report.checkpoints == report.last_seq // 100
    live = Engine(CAT, EngineConfig(checkpoint_every=0))
    for _, r in LogReader(log).records():
        live.apply_record(r.seq, r.time, r.events)
    assert report.state_hash == live.state_hash()
    again = redrive(log, CAT, progress=False)
    assert again.identical and again.records == report.records
    assert again.state_hash == report.state_hash
    out = cli("verify", str(log), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["intact"] is True
    out = cli("redrive", str(log))
    assert out.returncode == 0 and out.stdout.startswith("identical:")


def test_a_flipped_byte_is_found_by_crc_at_its_record(tmp_path):
    log = make_log(tmp_path)
    offs = frames(log)
    data = bytearray(log.read_bytes())
    data[offs[700] + 30] ^= 0x01
    log.write_bytes(bytes(data))
    report = verify(log, CAT, progress=False)
    assert not report.intact and report.records == 700
    assert report.problem["record_number"] == 701 and report.problem["offset"] == offs[700]
    assert "CRC mismatch" in report.problem["what"]
    out = cli("verify", str(log))
    assert out.returncode == 1 and f"record 701 at byte {offs[700]}" in out.stdout


def test_a_truncated_record_is_found_at_the_tail(tmp_path):
    log = make_log(tmp_path)
    offs = frames(log)
    log.write_bytes(log.read_bytes()[:offs[-1] - 7])
    report = verify(log, CAT, progress=False)
    last = len(offs) - 1
    assert report.problem["record_number"] == last and report.problem["offset"] == offs[last - 1]
    assert "torn record" in report.problem["what"]


def test_a_missing_record_is_found_where_the_sequence_breaks(tmp_path):
    log = make_log(tmp_path)
    offs = frames(log)
    data = log.read_bytes()
    log.write_bytes(data[:offs[500]] + data[offs[501]:])  # drop record 501 (seq 501)
    report = verify(log, CAT, progress=False)
    assert report.problem["record_number"] == 501 and report.problem["offset"] == offs[500]
    assert report.problem["what"] == "missing record(s): expected seq 501, found seq 502"


def test_a_reordered_record_is_found_and_named(tmp_path):
    log = make_log(tmp_path)
    offs = frames(log)
    data = log.read_bytes()
    a, b = data[offs[300]:offs[301]], data[offs[301]:offs[302]]
    log.write_bytes(data[:offs[300]] + b + a + data[offs[302]:])  # swap records 301 and 302
    report = verify(log, CAT, progress=False)
    assert report.problem["record_number"] == 301 and report.problem["offset"] == offs[300]
    assert report.problem["what"].startswith("record out of order (seq 301 comes 1 records later)")


def _rewrite_record(log, index, change):
    """Re-encode record `index` (0-based, alone in its frame) after `change(positional record)`,
    with a valid CRC."""
    offs = frames(log)
    data = log.read_bytes()
    (raw,) = msgspec.msgpack.decode(data[offs[index] + 8:offs[index + 1]])
    change(raw)
    raw = [raw]
    log.write_bytes(data[:offs[index]] + frame(msgspec.msgpack.encode(raw)) + data[offs[index + 1]:])


def test_a_doctored_event_fails_the_next_checkpoint_and_the_redrive(tmp_path):
    log = make_log(tmp_path)

    def richer(raw):  # a deposit that claims more money (CRC made valid again)
        deposited = raw[3][0]  # [seq, time, command, events]; ["deposited", account, amount, balance]
        assert deposited[0] == "deposited"
        deposited[2] += 100_000_000
        deposited[3] += 100_000_000
    _rewrite_record(log, 1, richer)  # seq 2 is the first deposit
    report = verify(log, CAT, progress=False)
    assert report.problem["record_number"] == 100  # the first checkpoint after it
    assert "checkpoint at seq 100: expected state hash" in report.problem["what"]
    again = redrive(log, CAT, progress=False)
    assert not again.identical
    d = again.divergence
    assert (d["record_number"], d["seq"], d["event_index"]) == (2, 2, 0)
    assert d["recorded"]["amount"] == "1000001" and d["produced"]["amount"] == "1000000"
    out = cli("redrive", str(log))
    assert out.returncode == 1 and "DIVERGENCE at record 2" in out.stdout


def test_unreadable_and_bad_usage_exit_2(tmp_path):
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"not a log at all")
    assert cli("verify", str(junk)).returncode == 2
    assert cli("verify", str(tmp_path / "absent.log")).returncode == 2
    assert cli("frobnicate").returncode == 2


def test_snapshot_plus_tail_equals_full_replay(tmp_path):
    log = make_log(tmp_path)
    records = [r for _, r in LogReader(log).records()]
    engine = Engine(CAT, EngineConfig(checkpoint_every=0))
    for r in records[:900]:
        engine.apply_record(r.seq, r.time, r.events)
    directory = tmp_path / "snaps"
    snapshots.write(directory, engine.seq, snapshot.take(engine))
    full = verify(log, CAT, progress=False)
    restored, facts = snapshots.restore(CAT, log, directory)
    assert facts["snapshot_seq"] == 900 and facts["tail_records"] == len(records) - 900
    assert restored.state_hash() == full.state_hash
    # a damaged newer snapshot is skipped, not trusted
    (directory / snapshots.file_name(1200)).write_bytes(b"PERPSNAP" + b"\0" * 20)
    restored, facts = snapshots.restore(CAT, log, directory)
    assert facts["skipped_snapshots"] == [snapshots.file_name(1200)]
    assert restored.state_hash() == full.state_hash
    out = cli("restore", str(log), "--snapshots", str(directory), "--json")
    assert json.loads(out.stdout)["state_hash"] == full.state_hash


def test_a_format_1_log_is_read_through_the_upcaster(tmp_path):
    """Format 1 logs carried marginRatio in marginCall commands; format 2 dropped it."""
    session = (EXAMPLES / "eth-2022-09-12-session.jsonl").read_text().splitlines()
    current = tmp_path / "current.log"
    run_feed(session, io.BytesIO(), CAT, EngineConfig(checkpoint_every=5), log_path=str(current))
    reader = LogReader(current)
    records = [r for _, r in reader.records()]
    assert any(type(r.command).__name__ == "MarginCall" for r in records)
    old = tmp_path / "old.log"
    header = {"formatVersion": 1, "catalogueVersion": CAT.version, "createdBy": "perpengine"}
    blob = MAGIC + frame(msgspec.msgpack.encode(header))
    for r in records:  # written as version 1 wrote them: a map per record, a frame per record
        raw = as_map(r)
        if raw["command"]["op"] == "marginCall":
            raw["command"]["marginRatio"] = 94858333
        blob += frame(msgspec.msgpack.encode(raw))
    old.write_bytes(blob)
    upcast = [r for _, r in LogReader(old).records()]
    assert upcast == records
    assert verify(old, CAT, progress=False).intact
    with pytest.raises(LogFormatError, match="format 1"):
        LogWriter(old, CAT.version)
    out = cli("upgrade", str(old), str(tmp_path / "new.log"))
    assert out.returncode == 0
    assert [r for _, r in LogReader(tmp_path / "new.log").records()] == records
    assert LogReader(tmp_path / "new.log").read_header() and \
        cli("verify", str(tmp_path / "new.log")).returncode == 0


def test_a_format_2_log_verifies_redrives_follows_and_upgrades_to_format_3(tmp_path):
    """Format 2: a map per record and a frame per record. Read through the upcaster (maps to
    positions), it gives the same records as the format-3 log of the same commands."""
    from engine.eventlog import LogTail
    current = make_log(tmp_path, n=600, batch=100, name="current.log")
    records = [r for _, r in LogReader(current).records()]
    old = tmp_path / "v2.log"
    reader = LogReader(current)
    reader.read_header()
    header = {"formatVersion": 2, "catalogueVersion": CAT.version, "createdBy": "perpengine",
              "engineConfig": reader.header.engine_config}
    blob = MAGIC + frame(msgspec.msgpack.encode(header))
    for r in records:
        blob += frame(msgspec.msgpack.encode(as_map(r)))
    old.write_bytes(blob)
    assert [r for _, r in LogReader(old).records()] == records
    tail = LogTail(old)
    assert tail.poll() == records
    v = verify(old, CAT, progress=False)
    assert v.intact and v.format_version == 2 and v.state_hash == verify(current, CAT,
                                                                         progress=False).state_hash
    assert redrive(old, CAT, progress=False).identical
    out = cli("upgrade", str(old), str(tmp_path / "v3.log"))
    assert out.returncode == 0, out.stderr
    up = LogReader(tmp_path / "v3.log")
    assert [r for _, r in up.records()] == records and up.header.format_version == 3
    assert (tmp_path / "v3.log").stat().st_size < 0.6 * old.stat().st_size


def test_whatif_eth_table_from_the_start(tmp_path):
    """The README's worked example: a recorded 2022-09-12 ETHUSDT session replayed as if the
    2022-09-13 tiers had applied from the start."""
    log = tmp_path / "eth.log"
    lines = (EXAMPLES / "eth-2022-09-12-session.jsonl").read_text().splitlines()
    run_feed(lines, io.BytesIO(), CAT, EngineConfig(), log_path=str(log))
    report = whatif(log, load_overrides(EXAMPLES / "eth-table-at-start.json"))
    liq = report["liquidations"]
    assert liq["onlyOriginal"] == {} and liq["both"] == {}
    assert liq["onlyWhatIf"] == {"1:cross": {
        "time": "2022-09-12T16:00:00Z", "marks": {"ETHUSDT": "1982"},
        "maintMargin": "1288.3", "marginBalance": "1200", "loss": "3000"}}
    calls = report["marginCalls"]
    assert list(calls["both"]) == ["1:cross"]
    assert calls["both"]["1:cross"]["original"]["marginRatio"] == "0.94858333"
    assert calls["both"]["1:cross"]["whatIf"]["marginRatio"] == "1.07358333"
    assert report["adl"] == {"original": {"trades": 0, "quantity": "0"},
                             "whatIf": {"trades": 1, "quantity": "100"}}
    assert report["insuranceFund"]["difference"] == "0"
    out = cli("whatif", str(log), str(EXAMPLES / "eth-table-at-start.json"))
    assert out.returncode == 0
    assert "what-if only: account 1:cross at 2022-09-12T16:00:00Z" in out.stdout


async def test_sigkill_during_load_loses_no_acknowledged_order(tmp_path):
    server = ServerProcess(tmp_path, "--snapshot-every", "300", "--checkpoint-every", "0")
    admin = await server.admin_client()
    traders = [await server.trader(admin, a) for a in (1, 2, 3)]
    acked: dict[int, int] = {}  # seq -> order id, as the acknowledgements said
    stop = asyncio.Event()

    async def trade(t, side):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = await t.request("newOrder", **order(side, "0.001", str(29000 + i % 50 * 10),
                                                        tif="GTC" if i % 3 else "IOC"))
            except (ConnectionError, Exception):
                return
            acked[r["seq"]] = r["orderId"]

    tasks = [asyncio.create_task(trade(t, s)) for t, s in zip(traders, ("BUY", "SELL", "BUY"))]
    await asyncio.sleep(1.5)
    os.kill(server.proc.pid, signal.SIGKILL)  # mid-load
    server.proc.wait()
    stop.set()
    await asyncio.gather(*tasks)
    for c in traders + [admin]:
        await c.close()
    assert len(acked) > 100
    assert list((tmp_path / "engine.log.snapshots").glob("snapshot-*.bin"))  # written meanwhile
    with open(server.log, "ab") as f:  # a write torn by the crash
        f.write(b"\x40\x00\x00\x00\xde\xad")
    restarted = ServerProcess(tmp_path, "--checkpoint-every", "0")
    assert "cut a bad tail: record" in restarted.first_line
    assert "from snapshot snapshot-" in restarted.first_line
    admin = await restarted.admin_client()
    state = await admin.query("state")
    await admin.close()
    assert restarted.stop() == 0
    reader = LogReader(server.log)
    logged = {r.seq: r for _, r in reader.records()}
    assert reader.problem is None  # the torn tail was cut off
    for seq, order_id in acked.items():
        assert any(getattr(e, "order_id", None) == order_id for e in logged[seq].events)
    offline = verify(server.log, CAT, progress=False)
    assert offline.intact and state == {"seq": offline.last_seq, "stateHash": offline.state_hash}
