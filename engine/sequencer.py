"""The sequencer: stamps each command with the next sequence number and a time, runs it
through the core, and hands the resulting record to the log writer (if any). And the Pipeline:
a sequencer with the risk consumer inline, the deterministic single-process arrangement of the
feed, the replays, the tests and the benchmarks.

The feed and tests pass times explicitly; the server stamps the wall clock at its edge, so the
core itself never reads a clock. Both are synchronous; the server's asyncio loop around the
sequencer is engine.server.sequencing.
"""
from __future__ import annotations

from engine.core import Engine
from engine.eventlog import LogWriter, encode_batch
from engine.riskconsumer import RiskConsumer
from proto.commands import Command
from proto.records import LogRecord


class Sequencer:
    def __init__(self, engine: Engine, writer: LogWriter | None = None) -> None:
        self.engine = engine
        self.writer = writer
        self.seq = engine.seq
        self._batch: list[LogRecord] = []

    def submit(self, cmd: Command, time: int) -> LogRecord:
        """Sequence and execute one command; its record joins the current batch."""
        self.seq += 1
        events = self.engine.handle(cmd, self.seq, time)
        record = LogRecord(self.seq, time, cmd, events)
        if self.writer is not None:
            self._batch.append(record)
        return record

    def flush(self) -> None:
        """Write the batch to the log as one frame (durable when the writer fsyncs)."""
        if self._batch and self.writer is not None:
            self.writer.append_encoded(encode_batch(self._batch))
        self._batch = []


class Pipeline:
    """Sequencer plus an inline risk consumer. A command's record comes first; the consumer's
    answers to it (MarginCall, Liquidate) are sequenced right after, at the same time."""

    def __init__(self, engine: Engine, writer: LogWriter | None = None,
                 risk: bool = True) -> None:
        self.engine = engine
        self.sequencer = Sequencer(engine, writer)
        self.consumer = RiskConsumer(engine.catalogue, engine.config) if risk else None

    def submit(self, cmd: Command, time: int) -> list[LogRecord]:
        return list(self.stream(cmd, time))

    def stream(self, cmd: Command, time: int):
        """The records one at a time; the next is sequenced only when asked for, so between
        two the engine's state is that after the record just yielded."""
        todo = [cmd]
        while todo:
            record = self.sequencer.submit(todo.pop(0), time)
            yield record
            if self.consumer is not None:
                todo.extend(self.consumer.process(record))

    def flush(self) -> None:
        self.sequencer.flush()
