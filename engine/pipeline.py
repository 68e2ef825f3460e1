"""Sequencer plus an inline risk consumer: the deterministic single-process arrangement used by
the feed, the tests and the benchmarks. A command's record comes first; the consumer's
answers to it (MarginCall, Liquidate) are sequenced right after, at the same time."""
from __future__ import annotations

from engine.core import Engine
from engine.eventlog import LogWriter
from engine.riskconsumer import RiskConsumer
from engine.sequencer import Sequencer
from proto.commands import Command
from proto.records import LogRecord


class Pipeline:
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
