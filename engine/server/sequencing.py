"""The server's sequencing loop: the one path to state, shared by every edge.

    edges --submit(cmd) / read(fn)--> inbox --> batch: each command through the sequencer
          (core + record), each read in its place --> the batch's records written and flushed
          (fsync per batch, in a thread) --> the `done` callbacks in order (replies) -->
          listeners' after_flush (streams, the risk consumer, snapshots)

* A command's `done` runs only after its record is in the log: nothing is acknowledged that a
  restart would not find. While a batch is flushed new requests queue up and form the next
  batch (group commit).
* A read (a query, a subscription) runs between two commands, so it sees the state exactly as
  of the records before it; its `done` runs with the batch's replies.
* Listeners (BatchListener) hear of every record right after the core handled it, before the
  next command (the depth diff needs the books' touched levels of that record alone), of the
  batch once it is flushed and before its replies, and again after the replies.
* Time is stamped here by `clock()` (wall-clock ms, never backwards), never read by the core.
* An exception in the core or a failed log write stops the loop and sets `fatal`: serving a
  state the log does not hold is worse than stopping (a restart rebuilds from the log).
* The log is the sequencer's file writer, or (`log`) JetStream: the batch is one message and
  its replies wait for the PubAck; a writer fenced off by a standby stops the loop likewise.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable

import structlog

from engine.core.gcpause import serving_gc
from engine.sequencer import Sequencer
from proto.commands import Command
from proto.records import LogRecord

log = structlog.get_logger("sequencing")

Done = Callable[[Any], None]


class BatchListener:
    """What a listener may hear of; each does nothing unless overridden."""

    def after_command(self, record: LogRecord) -> None:
        """Right after the core handled `record`, before the next command."""

    def before_replies(self, records: list[LogRecord]) -> None:
        """The batch is in the log; its replies go out next."""

    def after_flush(self, records: list[LogRecord]) -> None:
        """The batch is in the log and its replies went out."""


class SequencingLoop:
    def __init__(self, sequencer: Sequencer, clock: Callable[[], int],
                 batch_max: int = 4096) -> None:
        # an asynchronous log (JetStream: engine.eventlog.jetstream.JetStreamWriter), set
        # before `run`: `await log.append(records)` returns once the batch is acknowledged;
        # None: the sequencer's file writer
        self.log: Any = None
        self.fatal_reason = ""
        self.sequencer = sequencer
        self.clock = clock
        self.batch_max = batch_max
        # what edges hand in, in order: a plain deque (an append per request) and an event the
        # loop waits on only when it ran dry (set once per wait, not once per request)
        self.inbox: deque = deque()
        self._arrived = asyncio.Event()
        self._waiting = False
        self.listeners: list[BatchListener] = []
        self.fatal = asyncio.Event()
        self.commands = 0  # sequenced since start

    def submit(self, cmd: Command, done: Done | None = None) -> None:
        """Sequence `cmd`; `done(record)` once its record is in the log."""
        self.inbox.append((cmd, None, done))
        if self._waiting:
            self._wake()

    def read(self, fn: Callable[[], Any], done: Done) -> None:
        """Run `fn()` between two commands; `done(result)` with the batch's replies."""
        self.inbox.append((None, fn, done))
        if self._waiting:
            self._wake()

    def _wake(self) -> None:
        self._waiting = False
        self._arrived.set()

    def idle(self) -> bool:
        return not self.inbox

    async def stop(self) -> None:
        """Finish what is queued, then end `run`."""
        self.inbox.append(None)
        if self._waiting:
            self._wake()

    async def run(self) -> None:
        serving_gc()  # the state is built: keep it out of the collector's way
        loop = asyncio.get_running_loop()
        inbox = self.inbox
        sequencer = self.sequencer
        listeners = self.listeners
        stopping = False
        arrived = self._arrived
        batch_max = self.batch_max
        while not stopping:
            if not inbox:
                arrived.clear()
                self._waiting = True
                await arrived.wait()
                continue
            if len(inbox) <= batch_max:
                batch = list(inbox)
                inbox.clear()
            else:
                batch = [inbox.popleft() for _ in range(batch_max)]
            replies: list[tuple[Done, Any]] = []
            records: list[LogRecord] = []
            for it in batch:
                if it is None:
                    stopping = True
                    continue
                cmd, fn, done = it
                if cmd is not None:
                    try:
                        record = sequencer.submit(cmd, self.clock())
                    except Exception:  # a bug in the core: stop rather than serve a state
                        log.exception("the core raised; stopping (restart rebuilds from the log)")
                        self.fatal.set()  # that the log does not describe
                        raise
                    records.append(record)
                    for listener in listeners:
                        listener.after_command(record)
                    if done is not None:
                        replies.append((done, record))
                else:
                    replies.append((done, fn()))
            if records and self.log is not None:
                try:
                    await self.log.append(records)  # one message per batch; its PubAck
                except Exception as exc:  # fenced, or JetStream lost: acknowledge nothing more
                    self.fatal_reason = str(exc) or type(exc).__name__
                    log.error("log append failed; stopping", reason=self.fatal_reason)
                    self.fatal.set()
                    raise
            elif records:
                try:
                    if sequencer.writer is not None and not sequencer.writer.fsync:
                        sequencer.flush()  # a write alone (fsync on an interval): no thread hop
                    else:
                        await loop.run_in_executor(None, sequencer.flush)
                except OSError:  # the log cannot be written: acknowledge nothing more
                    log.exception("log write failed; stopping")
                    self.fatal.set()
                    raise
            if records:
                self.commands += len(records)
                for listener in listeners:
                    listener.before_replies(records)
            for done, result in replies:
                done(result)
            if records:
                for listener in listeners:
                    listener.after_flush(records)
