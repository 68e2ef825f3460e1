"""Issue 11, item 3: a flipped byte in the middle of the log must not delete what follows it.
Only a torn tail (the last, incomplete write: nothing valid after it) is cut, after saying so;
damage followed by valid records refuses the start, says where and what would be lost, and
leaves the file as it was; --repair moves the damaged part aside (never deletes it); a snapshot
never lets a gap into the log."""
import io
import subprocess
import sys

import pytest

from engine import recovery
from engine.core import EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.eventlog import LogDamaged, LogReader, examine, repair, truncate_to_good
from engine.eventlog.frames import FRAME, MAGIC
from replay.feed import run_feed
from replay.verify import verify
from tests.test_gateway import ROOT, ServerProcess
from tests.test_hardening import reap
from tests.test_log_and_feed import synthetic_lines

CAT = catalogue_mod.load()


def make_log(tmp_path, n=400, name="engine.log", batch=1):
    """A log of the flow; `batch` records to a frame (1: a frame per record, as the tests
    that damage "record k" need)."""
    log = tmp_path / name
    res = run_feed(synthetic_lines(n, seed=5), io.BytesIO(), CAT,
                   EngineConfig(checkpoint_every=50), log_path=str(log), batch=batch)
    assert not res.errors
    offsets = [off for off, _ in LogReader(log).records()]
    return log, offsets


def flip(log, at):
    data = bytearray(log.read_bytes())
    data[at] ^= 0xFF
    log.write_bytes(bytes(data))


def serve(tmp_path, *extra):
    return subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0",
                           "--log", str(tmp_path / "engine.log"),
                           "--keys", str(tmp_path / "keys.json"), *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("where", ["payload", "length", "crc"])
def test_damage_in_the_middle_is_found_with_what_follows_it(tmp_path, where):
    log, offsets = make_log(tmp_path)
    k = len(offsets) // 2
    flip(log, offsets[k] + {"payload": 30, "length": 1, "crc": 5}[where])
    damage = examine(log)
    assert damage.problem.record_number == k + 1 and damage.good_end == offsets[k]
    assert not damage.torn_tail
    assert damage.after == len(offsets) - k - 1  # every later record is found
    assert damage.after_seqs == (k + 2, len(offsets))
    before = log.read_bytes()
    with pytest.raises(LogDamaged) as exc:
        truncate_to_good(log)
    assert log.read_bytes() == before  # nothing was cut
    assert f"record {k + 1:,} at byte {offsets[k]:,}" in str(exc.value)
    assert f"{len(offsets) - k - 1:,} valid records follow it" in str(exc.value)


def test_damage_in_a_batch_of_records_loses_that_batch_only(tmp_path):
    log, offsets = make_log(tmp_path, batch=25)  # format 3: one frame per batch of 25
    frames = sorted(set(offsets))
    assert len(frames) == -(-len(offsets) // 25)
    k = len(frames) // 2
    flip(log, frames[k] + 30)
    damage = examine(log)
    first = offsets.index(frames[k])  # the first record of the damaged frame
    assert damage.problem.record_number == first + 1 and damage.good_end == frames[k]
    assert damage.good_records == first and not damage.torn_tail
    assert damage.after == len(offsets) - first - 25  # the later frames, record by record
    assert damage.after_seqs == (first + 26, len(offsets))


@pytest.mark.parametrize("tail", [b"\x40\x00\x00\x00\xde\xad", b"\x00\x00", b"\x00" * 4096])
def test_a_torn_tail_is_only_the_last_write(tmp_path, tail):
    log, offsets = make_log(tmp_path)
    with open(log, "ab") as f:
        f.write(tail)
    damage = examine(log)
    assert damage.torn_tail and damage.good_records == len(offsets)
    assert truncate_to_good(log) == (len(offsets), damage.problem)
    assert examine(log) is None


def test_a_last_record_cut_short_is_a_torn_tail(tmp_path):
    log, offsets = make_log(tmp_path)
    log.write_bytes(log.read_bytes()[:-7])
    damage = examine(log)
    assert damage.torn_tail and damage.good_records == len(offsets) - 1


def test_the_server_refuses_to_start_on_damage_and_keeps_the_file(tmp_path):
    log, offsets = make_log(tmp_path)
    k = 150
    flip(log, offsets[k] + 25)
    before = log.read_bytes()
    out = serve(tmp_path)
    assert out.returncode == 1
    text = out.stdout + out.stderr
    assert "Traceback" not in text
    assert f"damaged at record {k + 1:,} at byte {offsets[k]:,}" in text
    assert f"{len(offsets) - k - 1:,} valid records follow it" in text
    assert "--repair" in text
    assert log.read_bytes() == before


async def test_repair_moves_the_damage_aside_and_the_log_has_no_gap(tmp_path):
    log, offsets = make_log(tmp_path)
    k = 150
    # a snapshot of a later state (as a server that ran on would have written)
    directory = tmp_path / "engine.log.snapshots"
    engine, _ = recovery.restore(CAT, log, None, EngineConfig(checkpoint_every=50))
    from engine.core.snapshot import take
    recovery.write(directory, engine.seq, take(engine))
    flip(log, offsets[k] + 25)
    before = log.read_bytes()
    server = ServerProcess(tmp_path, "--repair", "--checkpoint-every", "50")
    try:
        aside = tmp_path / f"engine.log.damaged-at-{offsets[k]}"
        assert aside.read_bytes() == before[offsets[k]:]  # every byte kept
        assert log.read_bytes() == before[:offsets[k]]
        assert not list(directory.glob("snapshot-*.bin"))  # the later snapshot: set aside
        assert list((directory / "set-aside").glob("snapshot-*.bin"))
        admin = await server.admin_client()
        await admin.request("createAccount", account=77, registeredAt=0)
        state = await admin.query("state")
        await admin.close()
        assert server.stop() == 0
    finally:
        reap(server)
    assert state["seq"] == k + 1  # going on from the last good record: no gap
    report = verify(log, CAT, progress=False)
    assert report.intact and report.last_seq == k + 1
    assert report.state_hash == state["stateHash"]


async def test_a_snapshot_beyond_a_torn_log_is_never_used(tmp_path):
    log, offsets = make_log(tmp_path)
    directory = tmp_path / "engine.log.snapshots"
    engine, _ = recovery.restore(CAT, log, None, EngineConfig(checkpoint_every=50))
    from engine.core.snapshot import take
    recovery.write(directory, engine.seq, take(engine))
    log.write_bytes(log.read_bytes()[:offsets[-3] + 20])  # the last writes lost, torn
    server = ServerProcess(tmp_path, "--checkpoint-every", "50")
    try:
        assert "cut a bad tail" in server.first_line and "from snapshot" not in server.first_line
        admin = await server.admin_client()
        await admin.request("createAccount", account=77, registeredAt=0)
        await admin.close()
        assert server.stop() == 0
    finally:
        reap(server)
    report = verify(log, CAT, progress=False)
    assert report.intact and report.last_seq == len(offsets) - 2


def test_a_damaged_header_is_never_appended_to(tmp_path):
    log, _ = make_log(tmp_path)
    flip(log, len(MAGIC) + FRAME.size + 2)
    before = log.read_bytes()
    out = serve(tmp_path)
    assert out.returncode == 1 and "cannot be read" in out.stderr
    assert log.read_bytes() == before
    with pytest.raises(LogDamaged):
        repair(log)


async def test_a_header_cut_short_by_a_crash_is_a_new_log(tmp_path):
    log, _ = make_log(tmp_path)
    whole = log.read_bytes()
    header_end = LogReader(log).read_header()
    for cut in (3, len(MAGIC) + 5, header_end - 1):  # the first write, torn
        log.write_bytes(whole[:cut])
        server = ServerProcess(tmp_path)
        try:
            admin = await server.admin_client()
            assert (await admin.query("state"))["seq"] == 0
            await admin.close()
            assert server.stop() == 0
        finally:
            reap(server)
        assert verify(log, CAT, progress=False).intact
