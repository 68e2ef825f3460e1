"""re-drive: feed a log's recorded commands through a fresh core and compare the events it
produces with the recorded ones, byte for byte (msgpack). The first divergence is shown with
both sides. This is how a new engine version is checked against old logs.

The core runs under the rules the log's header records (EngineConfig.rules; a log from before
rules existed is rules 1), so an old log re-drives under the rules it was written with. The one
thing those rules do not keep is the wording of rejections (rules 2 gives Binance's texts with
a separate detail): for a rules-1 log the comparison leaves out the rejections' msg and detail,
and the report says so."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec

from engine.core.catalogue import Catalogue
from engine.core import Engine
from engine.eventlog import open_reader
from engine.core.gcpause import without_gc
from proto import events as V
from proto.json_edge import to_wire
from proto.records import CommandRecord
from replay.common import Progress, config_from_header

_encode = msgspec.msgpack.Encoder().encode
_decode_events = msgspec.msgpack.Decoder(list[V.AnyEvent]).decode
_REJECTIONS = (V.OrderRejected, V.CommandRejected, V.AlgoOrderRejected)


def _without_texts(events: list) -> list:
    """The events with the rejections' wording left out (comparing a rules-1 log)."""
    return [msgspec.structs.replace(e, msg="", detail="") if isinstance(e, _REJECTIONS) else e
            for e in events]


@dataclass
class RedriveReport:
    path: str
    identical: bool = False
    records: int = 0
    events: int = 0
    divergence: dict | None = None
    problem: dict | None = None
    state_hash: str = ""
    seconds: float = 0.0
    rules: int = 0  # the rules the log was written (and re-driven) under
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@without_gc
def redrive(path: str | Path, catalogue: Catalogue, progress: bool = True) -> RedriveReport:
    report = RedriveReport(path=str(path))
    reader = open_reader(path)
    engine = None
    meter = None
    n = 0  # the number of the record at hand
    events = 0
    # a frame's records at a time; a current-format log's recorded events stay as their bytes,
    # which the produced events' encoding must equal
    for offset, batch in reader.batches(CommandRecord):
        if engine is None:
            engine = Engine(catalogue, config_from_header(reader.header))
            meter = Progress(reader.size, progress, "re-drive")
            report.rules = engine.config.rules
            if engine.config.rules < 2:
                report.note = ("written under rules 1: rejection texts are left out of the "
                               "comparison")
        handle = engine.handle
        note = report.note
        for record in batch:
            n += 1
            produced = handle(record.command, record.seq, record.time)
            recorded = record.events
            if type(recorded) is msgspec.Raw and not note:
                same = _encode(produced) == bytes(recorded)
            else:  # a rules-1 log, or an older format's record (through the upcasters)
                if type(recorded) is msgspec.Raw:
                    recorded = _decode_events(recorded)
                if note:
                    produced, recorded = _without_texts(produced), _without_texts(recorded)
                same = _encode(produced) == _encode(recorded)
            if not same:
                report.divergence = _first_difference(n, offset, record, produced)
                break
            events += len(produced)
        if report.divergence is not None:
            report.records = n - 1
            break
        report.records = n
        meter.tick(offset, len(batch))
    report.events = events
    if reader.problem is not None and report.divergence is None:
        report.problem = asdict(reader.problem)
    report.identical = report.divergence is None and report.problem is None and engine is not None
    report.state_hash = engine.state_hash() if engine else ""
    report.seconds = round(meter.done(), 4) if meter else 0.0
    return report


def _first_difference(n: int, offset: int, record, produced: list) -> dict:
    recorded = record.events
    if type(recorded) is msgspec.Raw:
        recorded = _decode_events(recorded)
    i = 0
    while i < min(len(recorded), len(produced)) and _encode(recorded[i]) == _encode(produced[i]):
        i += 1
    return {"record_number": n, "offset": offset, "seq": record.seq, "event_index": i,
            "command": to_wire(record.command),
            "recorded": to_wire(recorded[i]) if i < len(recorded) else None,
            "produced": to_wire(produced[i]) if i < len(produced) else None,
            "recorded_count": len(recorded), "produced_count": len(produced)}
