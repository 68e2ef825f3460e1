"""Issue 11, item 4: a restart must not change what the core emits. A core rebuilt from a log
(the events alone, or a snapshot plus the log's tail) and then driven on must produce exactly
the events a core that never stopped produces, so `replay redrive` of a log spanning any number
of restarts is identical byte for byte."""
import io
import json

import msgspec

from engine import recovery
from engine.core import Engine, EngineConfig, snapshot
from engine.core import catalogue as catalogue_mod
from engine.eventlog import LogReader
from replay.feed import run_feed
from replay.redrive import redrive
from tests.test_log_and_feed import synthetic_lines

CAT = catalogue_mod.load()
FIXTURE = "tests/fixtures/before-layout.jsonl"
_encode = msgspec.msgpack.Encoder().encode


def _records(tmp_path, lines, name="live.log"):
    log = tmp_path / name
    res = run_feed(lines, io.BytesIO(), CAT, EngineConfig(checkpoint_every=7), log_path=str(log))
    assert not res.errors
    return [r for _, r in LogReader(log).records()]


def _continue(engine, records):
    for r in records:
        produced = engine.handle(r.command, r.seq, r.time)
        assert _encode(produced) == _encode(r.events), (r.seq, r.command)


def test_a_core_rebuilt_at_any_record_goes_on_exactly_like_one_that_never_stopped(tmp_path):
    """Orders, a liquidation, funding at 08:00, a token, spot; every split point, rebuilt from
    the events alone and from a snapshot."""
    lines = open(FIXTURE).read().splitlines()
    records = _records(tmp_path, lines)
    assert len(records) > 25
    for k in range(1, len(records)):
        rebuilt = Engine(CAT, EngineConfig(checkpoint_every=7))
        for r in records[:k]:
            rebuilt.apply_record(r.seq, r.time, r.events)
        _continue(rebuilt, records[k:])
        restored = snapshot.restore(CAT, snapshot.take(_rebuild(records[:k])),
                                    EngineConfig(checkpoint_every=7))
        _continue(restored, records[k:])


def _rebuild(records):
    engine = Engine(CAT, EngineConfig(checkpoint_every=7))
    for r in records:
        engine.apply_record(r.seq, r.time, r.events)
    return engine


def test_recovery_then_more_commands_redrives_identically(tmp_path):
    """The server's path: recovery.restore (the log alone) then new commands appended."""
    from engine.eventlog import LogWriter
    from engine.sequencer import Sequencer
    import dataclasses
    log = tmp_path / "spans.log"
    lines = synthetic_lines(300, seed=11)
    run_feed(lines[:100], io.BytesIO(), CAT, EngineConfig(checkpoint_every=50), log_path=str(log))
    for chunk in (lines[100:200], lines[200:]):  # two restarts
        engine, _ = recovery.restore(CAT, log, None, EngineConfig(checkpoint_every=50))
        writer = LogWriter(log, CAT.version, engine_config=dataclasses.asdict(engine.config))
        seq = Sequencer(engine, writer)
        t = engine.time
        for line in chunk:
            obj = json.loads(line)
            obj.pop("time", None)
            from proto.json_edge import decode_command
            t += 1000
            seq.submit(decode_command(obj), t)
        seq.flush()
        writer.close()
    report = redrive(log, CAT, progress=False)
    assert report.identical, report.divergence
