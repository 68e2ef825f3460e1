"""The sequencer: stamps each command with the next sequence number and a time, runs it
through the core, and hands the resulting record to the log writer (if any).

The feed and tests pass times explicitly; the server stamps the wall clock here, at the edge,
so the core itself never reads a clock.
"""
from __future__ import annotations

from engine.core import Engine
from engine.eventlog import LogWriter, encode_record
from proto.commands import Command
from proto.records import LogRecord


class Sequencer:
    def __init__(self, engine: Engine, writer: LogWriter | None = None) -> None:
        self.engine = engine
        self.writer = writer
        self.seq = engine.seq
        self._batch: list[bytes] = []

    def submit(self, cmd: Command, time: int) -> LogRecord:
        """Sequence and execute one command; its record joins the current batch."""
        self.seq += 1
        events = self.engine.handle(cmd, self.seq, time)
        record = LogRecord(seq=self.seq, time=time, command=cmd, events=events)
        if self.writer is not None:
            self._batch.append(encode_record(record))
        return record

    def flush(self) -> None:
        """Write the batch to the log (durable when the writer fsyncs)."""
        if self._batch and self.writer is not None:
            self.writer.append_encoded(b"".join(self._batch))
        self._batch.clear()
