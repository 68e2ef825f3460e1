"""re-drive: feed a log's recorded commands through a fresh core and compare the events it
produces with the recorded ones, byte for byte (msgpack). The first divergence is shown with
both sides. This is how a new engine version is checked against old logs."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec

from engine.core.catalogue import Catalogue
from engine.core import Engine
from engine.eventlog import LogReader
from engine.core.gcpause import without_gc
from proto.json_edge import to_wire
from replay.common import Progress, config_from_header

_encode = msgspec.msgpack.Encoder().encode


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

    def as_dict(self) -> dict:
        return asdict(self)


@without_gc
def redrive(path: str | Path, catalogue: Catalogue, progress: bool = True) -> RedriveReport:
    report = RedriveReport(path=str(path))
    reader = LogReader(path)
    engine = None
    meter = None
    for offset, record in reader.records():
        if engine is None:
            engine = Engine(catalogue, config_from_header(reader.header))
            meter = Progress(reader.size, progress, "re-drive")
        produced = engine.handle(record.command, record.seq, record.time)
        if _encode(produced) != _encode(record.events):
            report.divergence = _first_difference(reader.count, offset, record, produced)
            break
        report.records = reader.count
        report.events += len(produced)
        meter.tick(offset)
    if reader.problem is not None and report.divergence is None:
        report.problem = asdict(reader.problem)
    report.identical = report.divergence is None and report.problem is None and engine is not None
    report.state_hash = engine.state_hash() if engine else ""
    report.seconds = round(meter.done(), 4) if meter else 0.0
    return report


def _first_difference(n: int, offset: int, record, produced: list) -> dict:
    recorded = record.events
    i = 0
    while i < min(len(recorded), len(produced)) and _encode(recorded[i]) == _encode(produced[i]):
        i += 1
    return {"record_number": n, "offset": offset, "seq": record.seq, "event_index": i,
            "command": to_wire(record.command),
            "recorded": to_wire(recorded[i]) if i < len(recorded) else None,
            "produced": to_wire(produced[i]) if i < len(produced) else None,
            "recorded_count": len(recorded), "produced_count": len(produced)}
