"""The log on NATS JetStream (`--log nats://127.0.0.1:4222/STREAM`): a second backend beside the
file, holding the same bytes.

    stream STREAM, subject STREAM.log, file storage, R1 or R3 (`?replicas=3`)
    seq 1        the log header (msgpack LogHeader), header Perp-Kind: header; written with
                 Nats-Expected-Last-Sequence 0, so of two servers creating a log one wins
    seq 2, ...   one message per batch of records the sequencer formed: exactly the frame the
                 file would hold (u32 length | u32 CRC-32 | msgpack [LogRecord, ...]), so the
                 CRC is checked end to end; a batch larger than the server's max_payload goes
                 as several messages, all acknowledged before any reply
                 Nats-Msg-Id: <writer id>-<batch number>  (a retry after a lost PubAck is
                 recognised by JetStream and stored once)
                 Nats-Expected-Last-Sequence: the stream sequence this writer wrote last; a
                 message from a writer that is no longer the last one is refused (fencing)
    fences       Perp-Kind: fence, no payload: a standby taking over writes one with the next
                 expected sequence; the old active's next batch is refused and it stops
    STREAM.alive core NATS (not stored): the active's heartbeat, {"writer", "seq"} every
                 100 ms; a standby takes over when it has heard none for --takeover-ms

A batch is acknowledged to clients only after JetStream's PubAck for it (with R3: a quorum has
it). Durability is JetStream's: nats-server 2.9 writes acknowledged messages to its file store
and fsyncs on its own interval (two minutes), so a single node loses nothing to a crash of any
process but may lose the last writes to a power cut; R3 holds each acknowledged batch on two
of three servers.

Readers: JetStreamReader (LogReader's interface, synchronous: replay and recovery), StreamFeed
(asyncio: an ephemeral or durable pull consumer, messages as they are stored; the standby, the
risk consumer, publishers and replicas). nats-py is imported here only, so the file backend
never loads it.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from engine.eventlog.frames import (LogFormatError, decode_header, encode, frame, frame_decoder,
                                    read_frame)
from proto.records import LOG_FORMAT_VERSION, LogHeader, LogRecord

KIND = "Perp-Kind"
WRONG_LAST_SEQUENCE = 10071  # JetStream's err_code for Nats-Expected-Last-Sequence refused
HEARTBEAT_S = 0.1
RETRY_S = 30.0  # how long a batch is retried (leader elections take seconds) before giving up
PUBLISH_TIMEOUT_S = 2.0


class LogSpecError(ValueError):
    pass


class Fenced(RuntimeError):
    """Another writer wrote to the stream after this one: this writer must stop."""


@dataclass(frozen=True)
class NatsSpec:
    servers: tuple[str, ...]
    stream: str
    replicas: int = 1

    @property
    def subject(self) -> str:
        return f"{self.stream}.log"

    @property
    def alive_subject(self) -> str:
        return f"{self.stream}.alive"

    def __str__(self) -> str:
        hosts = ",".join(s.removeprefix("nats://") for s in self.servers)
        extra = f"?replicas={self.replicas}" if self.replicas != 1 else ""
        return f"nats://{hosts}/{self.stream}{extra}"


def parse_spec(spec: str) -> NatsSpec:
    """nats://HOST:PORT[,HOST:PORT...]/STREAM[?replicas=N]"""
    if not spec.startswith("nats://"):
        raise LogSpecError(f"not a nats:// log: {spec}")
    parts = urlsplit(spec)
    stream = parts.path.strip("/")
    if not stream or not all(c.isalnum() or c in "-_" for c in stream):
        raise LogSpecError(f"{spec}: name the stream after the address, letters, digits, - and _ "
                           "only (nats://127.0.0.1:4222/PERP)")
    hosts = [h for h in parts.netloc.split(",") if h]
    if not hosts:
        raise LogSpecError(f"{spec}: no server address")
    query = parse_qs(parts.query)
    try:
        replicas = int(query.get("replicas", ["1"])[0])
    except ValueError:
        raise LogSpecError(f"{spec}: replicas must be a number") from None
    if replicas not in (1, 3, 5):
        raise LogSpecError(f"{spec}: replicas must be 1, 3 or 5")
    unknown = set(query) - {"replicas"}
    if unknown:
        raise LogSpecError(f"{spec}: unknown option {sorted(unknown)[0]!r}")
    return NatsSpec(tuple(f"nats://{h}" for h in hosts), stream, replicas)


def new_writer_id() -> str:
    return "w" + secrets.token_hex(4)


def is_wrong_last_sequence(exc: BaseException) -> bool:
    return isinstance(exc, nats.js.errors.APIError) and exc.err_code == WRONG_LAST_SEQUENCE


class JetStreamLog:
    """A connection to the stream: create it, read its header and last sequence, publish."""

    def __init__(self, spec: NatsSpec | str, name: str = "perpengine") -> None:
        self.spec = parse_spec(spec) if isinstance(spec, str) else spec
        self.name = name
        self.nc: Any = None
        self.js: Any = None
        self.jsm: Any = None

    async def connect(self, timeout: float = 5.0) -> None:
        """Connect (reconnecting for ever afterwards, through every server of the spec);
        ConnectionError if no server answers within `timeout`."""
        async def error(exc: Exception) -> None:  # reconnects are retried, not printed
            self.last_error = exc

        self.last_error: Exception | None = None
        try:
            self.nc = await asyncio.wait_for(
                nats.connect(list(self.spec.servers), name=self.name, connect_timeout=2,
                             max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                             allow_reconnect=True, error_cb=error), timeout)
        except (asyncio.TimeoutError, nats.errors.NoServersError, OSError) as exc:
            why = self.last_error or exc
            raise ConnectionError(f"no NATS server answers at {', '.join(self.spec.servers)} "
                                  f"within {timeout:g} s ({type(why).__name__}: {why})") from None
        self.js = self.nc.jetstream(timeout=PUBLISH_TIMEOUT_S)
        self.jsm = self.nc.jsm(timeout=PUBLISH_TIMEOUT_S)

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.close()
            except Exception:  # closing a connection that broke meanwhile
                pass

    @property
    def max_payload(self) -> int:
        return self.nc.max_payload

    async def api(self, fn, *args, retry_s: float = RETRY_S, **kw):
        """A JetStream API call, retried while the stream has no leader (an election)."""
        deadline = time.monotonic() + retry_s
        while True:
            try:
                return await fn(*args, **kw)
            except nats.js.errors.NotFoundError:
                raise
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                    nats.js.errors.ServiceUnavailableError, nats.errors.ConnectionClosedError,
                    nats.errors.ConnectionReconnectingError, asyncio.TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise ConnectionError(f"JetStream did not answer for {retry_s:g} s: "
                                          f"{type(exc).__name__}") from None
                await asyncio.sleep(0.1)
            except nats.js.errors.APIError as exc:
                # 10008: "JetStream system temporarily unavailable"; 503s during elections
                if exc.code == 503 or exc.err_code in (10008,):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
                    continue
                raise

    async def ensure_stream(self) -> None:
        """Create the stream if missing (file storage, the spec's replicas)."""
        try:
            await self.api(self.jsm.stream_info, self.spec.stream)
            return
        except nats.js.errors.NotFoundError:
            pass
        config = StreamConfig(name=self.spec.stream, subjects=[self.spec.subject],
                              storage=StorageType.FILE, num_replicas=self.spec.replicas,
                              duplicate_window=120.0, max_msg_size=-1)
        try:
            await self.api(self.jsm.add_stream, config)
        except nats.js.errors.APIError as exc:
            if exc.err_code != 10058:  # created meanwhile by another process: fine
                raise

    async def exists(self) -> bool:
        try:
            await self.api(self.jsm.stream_info, self.spec.stream)
            return True
        except nats.js.errors.NotFoundError:
            return False

    async def last_seq(self) -> int:
        info = await self.api(self.jsm.stream_info, self.spec.stream)
        return info.state.last_seq

    async def message(self, seq: int):
        """The stored message at a stream sequence (None: none there)."""
        try:
            return await self.api(self.jsm.get_msg, self.spec.stream, seq)
        except nats.js.errors.NotFoundError:
            return None

    async def read_header(self) -> LogHeader | None:
        msg = await self.message(1)
        if msg is None:
            return None
        if (msg.headers or {}).get(KIND) != "header":
            raise LogFormatError(f"{self.spec}: the stream's first message is not a log header")
        return decode_header(msg.data)

    async def write_header(self, header: LogHeader) -> LogHeader:
        """Write the header as seq 1 unless the stream has one; returns the stream's header."""
        try:
            await self.api(self.js.publish, self.spec.subject, encode(header),
                            headers={KIND: "header", "Nats-Msg-Id": "header",
                                     "Nats-Expected-Last-Sequence": "0"})
        except nats.js.errors.APIError as exc:
            if not is_wrong_last_sequence(exc):
                raise
        existing = await self.read_header()
        if existing is None:
            raise LogFormatError(f"{self.spec}: the stream has messages but no log header")
        return existing

    async def find_batch(self, record_seq: int) -> int:
        """The stream sequence of the first message holding records after `record_seq` (a
        binary search by first record; stream sequences and record numbers rise together)."""
        last = await self.last_seq()
        lo, hi = 2, last + 1  # the first message whose last record comes after record_seq
        while lo < hi:
            mid = (lo + hi) // 2
            last_record = await self.last_record_at_or_before(mid, 2)
            if last_record is None or last_record <= record_seq:
                lo = mid + 1
            else:
                hi = mid
        return lo

    async def last_record_at_or_before(self, seq: int, floor: int) -> int | None:
        """The last record seq of the batch message at `seq` (skipping fences backwards)."""
        while seq >= floor:
            msg = await self.message(seq)
            if msg is not None and (msg.headers or {}).get(KIND) is None and msg.data:
                payload, _, err = read_frame(msg.data, 0)
                if not err:
                    records = msgspec.msgpack.decode(payload)
                    if records:
                        return records[-1][0]
            seq -= 1
        return None


class JetStreamWriter:
    """Appends batches to the stream as its only writer: every message carries the stream
    sequence this writer wrote last (Nats-Expected-Last-Sequence); a refusal means another
    writer took over (Fenced). A PubAck lost to a leader election or a reconnect is retried
    with the same Nats-Msg-Id for up to RETRY_S: JetStream stores it once."""

    def __init__(self, log: JetStreamLog, last_seq: int, writer_id: str | None = None) -> None:
        self.log = log
        self.last = last_seq
        self.writer_id = writer_id or new_writer_id()
        self.batches = 0
        self.retries = 0
        self.fenced: str | None = None
        self.inflight = 0  # messages published and not yet acknowledged
        self.ack_ns: list[int] = []  # publish -> PubAck, per message (benchmarks read it)
        self.keep_ack_times = False

    async def append(self, records: list[LogRecord]) -> None:
        """The records as one message (several when over the server's max_payload); returns
        once JetStream acknowledged every one."""
        if not records:
            return
        for blob in self._messages(records):
            await self.publish(blob)

    def _messages(self, records: list[LogRecord]) -> list[bytes]:
        payload = encode(records)
        if len(payload) + 256 <= self.log.max_payload or len(records) == 1:
            return [frame(payload)]
        half = len(records) // 2
        return self._messages(records[:half]) + self._messages(records[half:])

    async def publish(self, blob: bytes, kind: str | None = None) -> int:
        if self.fenced:
            raise Fenced(self.fenced)
        self.batches += 1
        headers = {"Nats-Msg-Id": f"{self.writer_id}-{self.batches}",
                   "Nats-Expected-Last-Sequence": str(self.last)}
        if kind:
            headers[KIND] = kind
        deadline = time.monotonic() + RETRY_S
        js = self.log.js
        subject = self.log.spec.subject
        t0 = time.perf_counter_ns()
        self.inflight += 1
        try:
            ack = await self._publish(js, subject, blob, headers, deadline)
        finally:
            self.inflight -= 1
        if self.keep_ack_times:
            self.ack_ns.append(time.perf_counter_ns() - t0)
        self.last = ack.seq
        return ack.seq

    async def _publish(self, js, subject: str, blob: bytes, headers: dict, deadline: float):
        while True:
            try:
                return await js.publish(subject, blob, timeout=PUBLISH_TIMEOUT_S, headers=headers)
            except nats.js.errors.APIError as exc:
                if is_wrong_last_sequence(exc):
                    self.fenced = (f"another writer wrote to {self.log.spec.stream} after seq "
                                   f"{self.last} (this writer is {self.writer_id}): fenced")
                    raise Fenced(self.fenced) from None
                if exc.code != 503 and exc.err_code != 10008:
                    raise
            except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError,
                    nats.errors.NoRespondersError, nats.errors.ConnectionClosedError,
                    nats.errors.ConnectionReconnectingError, asyncio.TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise ConnectionError(f"JetStream did not acknowledge batch {self.batches} "
                                      f"within {RETRY_S:g} s")
            self.retries += 1
            await asyncio.sleep(0.05)

    async def fence(self) -> int:
        """Take the stream over: a fence message at the next sequence (Fenced if someone wrote
        after `last`)."""
        return await self.publish(b"", kind="fence")


# -- reading ----------------------------------------------------------------------------------

@dataclass
class Entry:
    """One stored message: its stream sequence and what it holds."""
    stream_seq: int
    kind: str  # "batch", "header" or "fence"
    records: list[LogRecord] = field(default_factory=list)
    writer: str = ""  # the writer id in its Nats-Msg-Id
    error: str = ""  # a batch that does not read (CRC, decoding)
    size: int = 0
    msg: Any = None


def to_entry(seq: int, headers: dict | None, data: bytes, decode) -> Entry:
    headers = headers or {}
    kind = headers.get(KIND) or "batch"
    writer = headers.get("Nats-Msg-Id", "").rpartition("-")[0]
    entry = Entry(seq, kind, writer=writer, size=len(data))
    if kind != "batch":
        return entry
    payload, end, err = read_frame(data, 0)
    if err or end != len(data):
        entry.error = err or f"{len(data) - end} bytes after the frame"
        return entry
    try:
        entry.records = decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError) as exc:
        entry.error = f"undecodable record: {exc}"
    else:
        if not entry.records:
            entry.error = "undecodable record: an empty batch"
    return entry


def _seq_of(reply: str) -> tuple[int, int]:
    """(stream seq, pending) from a JetStream ack subject $JS.ACK.<stream>.<consumer>.<delivered>.
    <stream seq>.<consumer seq>.<time>.<pending> (older servers) or the v2 form with a domain
    and account hash in front."""
    parts = reply.split(".")
    if len(parts) >= 12:  # $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<n>.<sseq>...
        return int(parts[7]), int(parts[10])
    return int(parts[5]), int(parts[8])


class StreamFeed:
    """The stream's messages in order as they are stored, through a pull consumer: an
    ephemeral one from `start` (replay, the standby) or a durable one (the risk consumer,
    publishers, replicas: the server keeps its position, and a restarted process resumes
    from it). Keeps `window` messages requested ahead; a lost pull request, consumer or
    connection is replaced; a message already seen is skipped and a gap is filled by direct
    reads, so the caller sees each stream sequence once, in order."""

    def __init__(self, log: JetStreamLog, start: int = 1, durable: str | None = None,
                 window: int = 256, decode=None) -> None:
        self.log = log
        self.durable = durable
        self.window = window
        self.next_seq = start  # the next stream sequence the caller should see
        self.decode = decode
        self.consumer = durable
        self.sub: Any = None
        self.inbox = ""
        self.outstanding = 0
        self.last_activity = 0.0
        self.pending = 0  # messages the server says are left for this consumer
        self.redelivered = 0

    async def _ensure_decode(self) -> None:
        if self.decode is None:
            header = await self.log.read_header()
            if header is None:
                raise LogFormatError(f"{self.log.spec}: no log header yet")
            self.decode = frame_decoder(header)

    async def start(self) -> None:
        await self._ensure_decode()
        if self.sub is None:
            self.inbox = self.log.nc.new_inbox()
            self.queue: asyncio.Queue = asyncio.Queue()

            async def arrived(msg) -> None:
                self.queue.put_nowait(msg)

            self.sub = await self.log.nc.subscribe(self.inbox, cb=arrived)
        await self._create_consumer()
        await self._request()

    async def _create_consumer(self) -> None:
        spec = self.log.spec
        if self.durable:
            try:
                await self.log.api(self.log.jsm.consumer_info, spec.stream, self.durable)
                return
            except nats.js.errors.NotFoundError:
                pass
            config = ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.ALL,
                                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                    opt_start_seq=max(self.next_seq, 1), ack_wait=2.0,
                                    max_ack_pending=4 * self.window, max_waiting=16)
        else:
            config = ConsumerConfig(ack_policy=AckPolicy.NONE,
                                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                    opt_start_seq=max(self.next_seq, 1), inactive_threshold=10.0,
                                    num_replicas=1, mem_storage=True, max_waiting=16)
        info = await self.log.api(self.log.jsm.add_consumer, spec.stream, config)
        self.consumer = info.name
        self.outstanding = 0

    async def _request(self) -> None:
        want = self.window - self.outstanding
        if want <= 0:
            return
        body = json.dumps({"batch": want, "expires": 2_000_000_000,
                           "idle_heartbeat": 500_000_000}).encode()
        await self.log.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{self.log.spec.stream}."
                                  f"{self.consumer}", body, reply=self.inbox)
        self.outstanding += want
        self.last_activity = time.monotonic()

    async def position(self) -> int:
        """The durable's acknowledged floor (stream sequence; 0 if it is new)."""
        try:
            info = await self.log.api(self.log.jsm.consumer_info, self.log.spec.stream,
                                       self.durable)
        except nats.js.errors.NotFoundError:
            return 0
        return info.ack_floor.stream_seq

    async def next(self, timeout: float) -> list[Entry]:
        """The entries that arrive within `timeout` (those already here at once; at least one
        if one arrives in time; [] otherwise)."""
        out: list[Entry] = []
        deadline = time.monotonic() + timeout
        while True:
            wait = 0 if out else max(deadline - time.monotonic(), 0)
            try:
                msg = await asyncio.wait_for(self.queue.get(), wait) if wait else \
                    self.queue.get_nowait()
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            self.last_activity = time.monotonic()
            status = (msg.headers or {}).get("Status") if msg.headers else None
            if status:
                await self._status(status, msg)
                continue
            self.outstanding -= 1
            seq, self.pending = _seq_of(msg.reply)
            if seq < self.next_seq:
                self.redelivered += 1
                if self.durable:
                    await msg.ack()
                continue
            if seq > self.next_seq:  # a gap (a consumer recreated late, a redelivery order)
                out.extend(await self._direct(self.next_seq, seq - 1))
            entry = to_entry(seq, msg.headers, msg.data, self.decode)
            entry.msg = msg if self.durable else None
            out.append(entry)
            self.next_seq = seq + 1
            if len(out) >= self.window:
                break
        if self.outstanding <= self.window // 2:
            await self._request()
        elif time.monotonic() - self.last_activity > 2.0:  # nothing, not even a heartbeat
            await self._recover()
        return out

    async def _status(self, status: str, msg) -> None:
        if status == "100":  # an idle heartbeat
            return
        if status in ("404", "408"):  # no messages now / the request expired
            left = msg.headers.get("Nats-Pending-Messages")
            self.outstanding = max(self.outstanding - int(left), 0) if left else 0
            await self._request()
            return
        # 409 (leadership change, consumer deleted, max waiting), 503 (no responders: the
        # consumer is gone): start over from where the caller is
        await self._recover()

    async def _recover(self) -> None:
        self.outstanding = 0
        try:
            await self._create_consumer()
        except nats.js.errors.APIError:
            await asyncio.sleep(0.1)
            return
        await self._request()

    async def _direct(self, first: int, last: int) -> list[Entry]:
        out = []
        for seq in range(first, last + 1):
            msg = await self.log.message(seq)
            if msg is not None:
                out.append(to_entry(seq, msg.headers, msg.data, self.decode))
        return out

    async def ack(self, entry: Entry) -> None:
        """Acknowledge everything up to `entry` (durable consumers; AckAll)."""
        if self.durable and entry.msg is not None:
            try:
                await entry.msg.ack()
            except Exception:  # a lost ack is redelivered and skipped
                pass

    async def close(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:
                pass
        if not self.durable and self.consumer:
            try:
                await self.log.jsm.delete_consumer(self.log.spec.stream, self.consumer)
            except Exception:  # it expires by itself (inactive_threshold)
                pass


class ResumingFeed:
    """A durable consumer's messages for a process that keeps its state in memory: on start it
    rebuilds from the stream's first batch up to the durable's acknowledged floor (an
    ephemeral consumer; `replaying(entry)` is true for those: its predecessor handled them),
    then goes on from the durable. Acknowledge with `ack` after handling."""

    def __init__(self, log: JetStreamLog, durable: str, window: int = 256) -> None:
        self.log = log
        self.durable = StreamFeed(log, 2, durable=durable, window=window)
        self.catchup: StreamFeed | None = None
        self.floor = 0

    async def wait_header(self, timeout: float = 60.0) -> LogHeader:
        deadline = time.monotonic() + timeout
        while True:
            header = await self.log.read_header() if await self.log.exists() else None
            if header is not None:
                self.durable.decode = frame_decoder(header)
                return header
            if time.monotonic() > deadline:
                raise LogFormatError(f"{self.log.spec}: no log header within {timeout:g} s")
            await asyncio.sleep(0.1)

    async def start(self) -> None:
        if self.durable.decode is None:
            await self.wait_header()
        self.floor = await self.durable.position()
        if self.floor >= 2:
            self.catchup = StreamFeed(self.log, 2, decode=self.durable.decode, window=512)
            await self.catchup.start()
        else:
            await self.durable.start()

    def replaying(self, entry: Entry) -> bool:
        return entry.stream_seq <= self.floor

    def replaying_now(self) -> bool:
        return self.catchup is not None

    async def next(self, timeout: float) -> list[Entry]:
        if self.catchup is None:
            return await self.durable.next(timeout)
        entries = await self.catchup.next(timeout)
        if self.catchup.next_seq > self.floor:  # caught up with the durable's position
            self.durable.next_seq = self.catchup.next_seq
            await self.catchup.close()
            self.catchup = None
            await self.durable.start()
        return entries

    async def ack(self, entry: Entry) -> None:
        if entry.msg is not None and self.catchup is None:
            await self.durable.ack(entry)

    async def close(self) -> None:
        if self.catchup is not None:
            await self.catchup.close()
        await self.durable.close()


class JetStreamReader:
    """LogReader's interface over a stream, for the synchronous tools (replay, recovery): its
    own thread runs an asyncio loop with its own connection. `records()` yields (stream
    sequence, record) up to the last message stored when it started; `problem` says where it
    stopped early. `after`: start at the batch holding the record after this sequence number
    (a binary search), for a restore from a snapshot."""

    def __init__(self, spec: str | NatsSpec, after: int = 0) -> None:
        self.spec = parse_spec(spec) if isinstance(spec, str) else spec
        self.path = str(self.spec)
        self.after = after
        self.header: LogHeader | None = None
        self.problem = None
        self.good_end = 0
        self.count = 0
        self.size = 0
        self.fences: list[tuple[int, str]] = []  # (stream seq, writer)
        self.writers: list[str] = []

    def read_header(self, data: bytes | None = None) -> int:
        from engine.eventlog.reader import Problem
        try:
            self.header = run_sync(self._header())
        except (ConnectionError, LogFormatError, msgspec.DecodeError) as exc:
            self.problem = Problem(0, 0, f"header: {exc}")
            return 0
        if self.header is None:
            self.problem = Problem(0, 0, f"no log in stream {self.spec.stream}")
            return 0
        return 1

    async def _header(self) -> LogHeader | None:
        log = JetStreamLog(self.spec, "perpengine-reader")
        await log.connect()
        try:
            if not await log.exists():
                return None
            return await log.read_header()
        finally:
            await log.close()

    def count_records(self) -> int:
        for _ in self.records():
            pass
        return self.count

    def records(self) -> Iterator[tuple[int, LogRecord]]:
        """(stream sequence, record) for each good record, in order."""
        for seq, batch in self.batches():
            n = self.count - len(batch)
            for record in batch:
                n += 1
                self.count = n
                yield seq, record

    def batches(self, record_type: type | None = None) -> Iterator[tuple[int, list]]:
        """(stream sequence, records) for each batch message, in order; `count` is then the
        number of its last record. `record_type` is accepted for LogReader's interface: the
        records here are always full LogRecords."""
        from engine.eventlog.reader import Problem
        runner = _Runner()
        log = JetStreamLog(self.spec, "perpengine-reader")
        try:
            try:
                runner.run(log.connect())
                if not runner.run(log.exists()):
                    self.problem = Problem(0, 0, f"no stream {self.spec.stream} at "
                                                 f"{', '.join(self.spec.servers)}")
                    return
                self.header = runner.run(log.read_header())
                if self.header is None:
                    self.problem = Problem(0, 0, f"no log header in stream {self.spec.stream}")
                    return
                decode = frame_decoder(self.header)
                last = runner.run(log.last_seq())
                start = runner.run(log.find_batch(self.after)) if self.after else 2
            except (ConnectionError, LogFormatError, msgspec.DecodeError) as exc:
                self.problem = Problem(0, 0, str(exc))
                return
            self.size = last
            self.good_end = start - 1
            if start > last:
                return
            feed = StreamFeed(log, start, decode=decode, window=512)
            runner.run(feed.start())
            n = 0
            while feed.next_seq <= last:
                entries = runner.run(feed.next(2.0))
                for entry in entries:
                    if entry.stream_seq > last:
                        break
                    if entry.writer and (not self.writers or self.writers[-1] != entry.writer):
                        self.writers.append(entry.writer)
                    if entry.kind == "fence":
                        self.fences.append((entry.stream_seq, entry.writer))
                        self.good_end = entry.stream_seq
                        continue
                    if entry.kind != "batch":
                        self.good_end = entry.stream_seq
                        continue
                    if entry.error:
                        self.problem = Problem(n + 1, entry.stream_seq, entry.error)
                        return
                    self.good_end = entry.stream_seq
                    n += len(entry.records)
                    self.count = n
                    yield entry.stream_seq, entry.records
            runner.run(feed.close())
        finally:
            try:
                runner.run(log.close())
            finally:
                runner.stop()


class _Runner:
    """An asyncio loop in a thread, for synchronous callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="jetstream-reader")
        self.thread.start()

    def run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


def run_sync(coro):
    runner = _Runner()
    try:
        return runner.run(coro)
    finally:
        runner.stop()


def new_header(catalogue_version: str, engine_config: dict | None) -> LogHeader:
    return LogHeader(format_version=LOG_FORMAT_VERSION, catalogue_version=catalogue_version,
                     engine_config=engine_config or {})


def read_stream_records(spec: str, after: int = 0) -> list[LogRecord]:
    """Every record of the stream (after `after`): for tests and small tools."""
    return [r for _, r in JetStreamReader(spec, after).records() if r.seq > after]


__all__ = ["NatsSpec", "LogSpecError", "Fenced", "JetStreamLog", "JetStreamWriter",
           "JetStreamReader", "StreamFeed", "ResumingFeed", "Entry", "parse_spec", "new_header",
           "HEARTBEAT_S", "read_stream_records"]
