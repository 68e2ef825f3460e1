"""`python -m replay feed FILE.jsonl|-`: commands as JSON lines in, events as JSON lines out.

Each input line is one command object: {"op": "newOrder", "account": 1, ...} with prices,
quantities and amounts as decimal strings. An optional "time" (Unix ms or ISO-8601) stamps it;
without one the command takes the previous line's time (0 at the start), so a file always
replays identically. A line that is not a valid command prints an error line, reaches neither
the core nor the log, and the feed goes on with the next line.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import IO, Iterable

from engine.catalogue import Catalogue
from engine.core import Engine, EngineConfig
from engine.eventlog import LogWriter
from engine.sequencer import Sequencer
from engine.timeutil import parse_iso_ms
from proto import json_edge


@dataclass
class FeedResult:
    commands: int = 0
    events: int = 0
    errors: list[tuple[int, int, str]] = field(default_factory=list)  # (line, code, msg)


def _line_time(obj: dict, previous: int) -> int:
    if "time" not in obj:
        return previous
    t = obj.pop("time")
    if isinstance(t, bool) or not isinstance(t, (int, str)):
        raise json_edge.BadInput("field 'time': Unix ms or an ISO-8601 string", -1102)
    if isinstance(t, str):
        try:
            return parse_iso_ms(t)
        except ValueError as exc:
            raise json_edge.BadInput(f"field 'time': {exc}", -1102) from None
    return t


def run_feed(lines: Iterable[str | bytes], out: IO[bytes], catalogue: Catalogue,
             config: EngineConfig | None = None, log_path: str | None = None,
             fsync: bool = False, batch: int = 1000) -> FeedResult:
    engine = Engine(catalogue, config)
    writer = LogWriter(log_path, catalogue.version, fsync=fsync) if log_path else None
    seqr = Sequencer(engine, writer)
    result = FeedResult()
    now = 0
    write = out.write
    try:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json_edge.parse_json(line)
                if not isinstance(obj, dict):
                    raise json_edge.BadInput("expected a JSON object", -1102)
                t = _line_time(obj, now)
                cmd = json_edge.decode_command(obj)
            except json_edge.BadInput as bad:
                result.errors.append((lineno, bad.code, bad.msg))
                write(json_edge.dumps({"error": {"line": lineno, "code": bad.code,
                                                 "msg": bad.msg}}) + b"\n")
                continue
            now = t
            record = seqr.submit(cmd, t)
            result.commands += 1
            for ev in record.events:
                write(json_edge.event_json(ev, seq=record.seq, time=record.time) + b"\n")
            result.events += len(record.events)
            if result.commands % batch == 0:
                seqr.flush()
        seqr.flush()
    finally:
        if writer is not None:
            writer.close()
    return result


def open_lines(path: str) -> Iterable[bytes]:
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")
