"""The server on a JetStream log (`--log nats://HOST:PORT/STREAM`): recovery from the stream,
the active writer with its heartbeat and its fence watch, and the standby that takes over.

    active   recovers (snapshot + the stream's tail), refuses to start while another writer's
             heartbeat is heard, then writes every batch with the stream sequence it wrote
             last (engine.eventlog.jetstream.JetStreamWriter) and publishes a heartbeat on
             STREAM.alive every 100 ms. A refused batch, or a stream that grew under it while
             it was idle, means another server took over: it stops (exit status 3) without
             acknowledging anything more.
    standby  (`--standby`) recovers likewise, then follows the stream message by message,
             applying every record to its own core (engine.apply_record: the rebuild path) and
             to its listeners (stream publishers' state, snapshots). When no heartbeat has been
             heard for `takeover_ms` and it has applied everything stored, it writes a fence
             at the next stream sequence (Nats-Expected-Last-Sequence = the last it applied).
             If that is refused the active wrote meanwhile: it goes on following. Once the
             fence is in, the old active can write nothing more; the standby opens its key
             store, binds its port and serves.

Nothing acknowledged is lost (a batch is acknowledged after its PubAck, and the standby applies
every stored message before fencing); nothing is applied twice (records are applied in
sequence, a record at or below the core's sequence is skipped, a gap stops the standby).
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import structlog

from engine.eventlog.jetstream import (HEARTBEAT_S, Fenced, JetStreamLog, JetStreamReader,
                                       JetStreamWriter, StreamFeed, new_header, parse_spec,
                                       run_sync)
from engine.eventlog.frames import frame_decoder
from engine import recovery as snapshots

log = structlog.get_logger("natslog")


class ActiveElsewhere(RuntimeError):
    """Another server's heartbeat is heard on the stream."""


class StreamUnreadable(RuntimeError):
    """The stream cannot be read to its end (the server refuses to start)."""


def set_aside_beyond(directory: str, last_seq: int, facts: dict) -> None:
    """Snapshots the stream does not reach would put a gap into it: never use them."""
    ahead = snapshots.beyond(directory, last_seq)
    if ahead:
        moved = snapshots.set_aside(ahead)
        print(f"perpengine: {len(moved)} snapshot(s) beyond the stream's last record (seq "
              f"{last_seq:,}) moved aside to {moved[0].parent}, not used", file=sys.stderr,
              flush=True)
        facts["set_aside"] = [m.name for m in moved]


def recover(server) -> dict:
    """The state from the newest local snapshot the stream reaches plus the stream's tail
    (synchronous; the reader runs its own loop in a thread)."""
    config = server.config
    facts: dict = {"records": 0, "truncated": None, "snapshot": None, "repaired": None,
                   "set_aside": [], "stream_seq": 1}
    reader = JetStreamReader(config.log_path)
    if not reader.read_header():
        if reader.problem is not None and "no stream" not in reader.problem.what and \
                "no log" not in reader.problem.what:
            raise StreamUnreadable(f"{config.log_path}: {reader.problem.what}")
        set_aside_beyond(config.snapshots(), 0, facts)
        return facts  # a new stream: the header is written when the server starts
    last_record, stream_seq = _last_record(config.log_path)
    set_aside_beyond(config.snapshots(), last_record, facts)
    server.engine, restored = snapshots.restore(server.catalogue, config.log_path,
                                                config.snapshots(), server.engine.config,
                                                max_seq=last_record)
    if restored["log_problem"]:
        raise StreamUnreadable(f"{config.log_path}: {restored['log_problem']}")
    facts.update(records=server.engine.seq, snapshot=restored["snapshot"],
                 stream_seq=max(stream_seq, 1))
    return facts


def _last_record(spec: str) -> tuple[int, int]:
    """(the last record's seq, the stream's last sequence)."""
    async def find() -> tuple[int, int]:
        jlog = JetStreamLog(spec, "perpengine-recover")
        await jlog.connect()
        try:
            last = await jlog.last_seq()
            record = await jlog.last_record_at_or_before(last, 2) if last >= 2 else None
            return record or 0, last
        finally:
            await jlog.close()
    return run_sync(find())


class NatsRole:
    """The server's side of the stream: writer, heartbeat, fence watch; or the standby."""

    def __init__(self, server) -> None:
        self.server = server
        self.spec = parse_spec(server.config.log_path)
        self.log = JetStreamLog(self.spec, "perpengine-server")
        self.writer: JetStreamWriter | None = None
        self.tasks: list[asyncio.Task] = []
        self.heard: dict[str, float] = {}  # writer id -> when its heartbeat was last heard
        self.takeover: dict[str, Any] = {}
        self._alive_sub = None

    async def connect(self) -> None:
        await self.log.connect()

        async def heard(msg) -> None:
            try:
                beat = json.loads(msg.data)
                writer = str(beat["writer"])
            except (ValueError, KeyError, TypeError):
                return
            if self.writer is None or writer != self.writer.writer_id:
                self.heard[writer] = time.monotonic()

        self._alive_sub = await self.log.nc.subscribe(self.spec.alive_subject, cb=heard)

    def last_heard(self) -> float:
        return max(self.heard.values(), default=0.0)

    # -- the active -------------------------------------------------------------------------------
    async def open_active(self, check_s: float = 3 * HEARTBEAT_S) -> JetStreamWriter:
        """Create the stream and header if new; refuse if another writer is alive or the stream
        moved past what was recovered; the writer from the stream's last sequence."""
        server = self.server
        if self.writer is not None:  # a standby that took over: it holds the fence
            return self.writer
        await self.connect()
        await asyncio.sleep(check_s)  # listen for another active's heartbeat
        if self.heard:
            raise ActiveElsewhere(
                f"another server is writing {self.spec.stream} (heartbeat from writer "
                f"{max(self.heard, key=self.heard.get)} within {check_s * 1000:.0f} ms); "
                "stop it, or start this one with --standby")
        await self.log.ensure_stream()
        header = new_header(server.catalogue.version, server.log_header_config())
        await self.log.write_header(header)
        last = await self.log.last_seq()
        expected = server.recovered.get("stream_seq", 1)
        if last != expected:
            stored = await self.log.last_record_at_or_before(last, 2) if last >= 2 else 0
            if (stored or 0) != server.engine.seq:
                raise ActiveElsewhere(
                    f"{self.spec.stream} moved on while this server recovered (stream seq "
                    f"{expected} -> {last}): another server is writing it")
        self.writer = JetStreamWriter(self.log, last)
        return self.writer

    def start_tasks(self) -> None:
        self.tasks = [asyncio.create_task(self._heartbeat(), name="heartbeat")]

    async def _heartbeat(self) -> None:
        """Tell standbys this writer is alive; while idle, check that nobody wrote after it."""
        nc, subject, writer = self.log.nc, self.spec.alive_subject, self.writer
        loop = self.server.loop
        checks = 0
        while not loop.fatal.is_set():
            try:
                await nc.publish(subject, json.dumps({"writer": writer.writer_id,
                                                      "seq": writer.last}).encode())
            except Exception:  # reconnecting; the next beat goes out when it is back
                pass
            await asyncio.sleep(HEARTBEAT_S)
            checks += 1
            if checks % 3 == 0 or self.heard:
                before = writer.last
                try:
                    last = await self.log.last_seq()
                except Exception:
                    continue
                if last > before and writer.last == before and writer.inflight == 0 and \
                        not writer.fenced:
                    writer.fenced = (f"{self.spec.stream} holds stream seq {last} beyond this "
                                     f"writer's {before}: another server took over")
                    loop.fatal_reason = writer.fenced
                    loop.fatal.set()
                    return

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        try:  # NATS may be gone: never hang on the way out
            await asyncio.wait_for(self.log.close(), 2)
        except asyncio.TimeoutError:
            pass

    # -- the standby ------------------------------------------------------------------------------
    async def follow(self, takeover_ms: int) -> JetStreamWriter:
        """Follow the stream until the active goes quiet, then fence it; returns the writer."""
        server = self.server
        await self.connect()
        while not await self.log.exists() or await self.log.read_header() is None:
            await asyncio.sleep(0.1)  # the active has not created the log yet
        header = await self.log.read_header()
        decode = frame_decoder(header)
        position = server.recovered.get("stream_seq", 1)
        feed = StreamFeed(self.log, position + 1, decode=decode, window=512)
        await feed.start()
        started = time.monotonic()
        takeover_s = takeover_ms / 1000
        applied_batches = 0
        while True:
            entries = await feed.next(min(takeover_s / 4, 0.05))
            for entry in entries:
                if entry.kind == "batch":
                    if entry.error:
                        raise RuntimeError(f"{self.spec.stream} stream seq {entry.stream_seq}: "
                                           f"{entry.error}")
                    server.apply_followed(entry.records)
                    applied_batches += 1
                position = entry.stream_seq
            quiet_since = self.last_heard() or started
            if entries or time.monotonic() - quiet_since < takeover_s:
                continue
            last = await self.log.last_seq()
            if last > position:
                continue  # stored but not applied yet: catch up first
            writer = JetStreamWriter(self.log, position)
            t0 = time.monotonic()
            try:
                fence_seq = await writer.fence()
            except Fenced:
                continue  # the active wrote meanwhile: it is alive
            await feed.close()
            self.writer = writer
            self.takeover = {"stream_seq": fence_seq, "record_seq": server.engine.seq,
                             "quiet_ms": round((t0 - quiet_since) * 1000),
                             "fenced": ", ".join(sorted(self.heard)) or "-",
                             "batches": applied_batches}
            self.heard.clear()
            return writer


def report_takeover(role: NatsRole) -> None:
    t = role.takeover
    print(f"perpengine: took over {role.spec.stream}: fence at stream seq {t['stream_seq']} "
          f"after {t['quiet_ms']} ms without the active's heartbeat (writer {t['fenced']}); "
          f"record seq {t['record_seq']}; this writer is {role.writer.writer_id}", flush=True)


def stop_line(reason: str) -> None:
    print(f"perpengine: fenced: {reason}; stopping (exit status 3)", file=sys.stderr,
          flush=True)
