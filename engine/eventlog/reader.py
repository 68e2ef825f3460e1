"""Reading the log: whole (LogReader, which stops at the first torn or corrupt frame and says
where), telling a torn tail from damage (examine: are there valid records after the problem?),
cutting only a torn tail (truncate_to_good; damage raises LogDamaged and nothing changes),
moving damage aside (repair: never deletes), and following a log that is still being written
(LogTail).

A frame holds a batch of records (format 3; one record in formats 1 and 2). Records are
yielded one by one with the byte offset of their frame; a frame that cannot be read is a
Problem at the number of the first record it would hold and at the frame's offset, and
everything before it is good (good_end: the end of the last good frame)."""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import msgspec

from engine.eventlog.frames import (FRAME, MAGIC, LogFormatError, decode_header, frame_decoder,
                                    read_frame)
from proto.records import LOG_FORMAT_VERSION, LogHeader, LogRecord


@dataclass
class Problem:
    record_number: int  # 1-based index of the record that could not be read
    offset: int  # byte offset of its frame
    what: str


class LogReader:
    """Iterate a log's records; after iteration `problem` says where it stopped early, if it did,
    `good_end` is the byte offset just after the last good frame, `count` the records yielded,
    and `size` the file's."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.header: LogHeader | None = None
        self.problem: Problem | None = None
        self.good_end = 0
        self.count = 0
        self.size = 0

    def read_header(self, data: bytes | None = None) -> int:
        """Read the magic and header; returns the offset of the first record (0 on a problem,
        which `problem` then describes)."""
        if data is None:
            with open(self.path, "rb") as f:
                data = f.read(64 * 1024)
        if not data.startswith(MAGIC):
            self.problem = Problem(0, 0, "not an event log: bad magic bytes")
            return 0
        header, pos, err = read_frame(data, len(MAGIC))
        if err:
            self.problem = Problem(0, len(MAGIC), f"header: {err}")
            return 0
        try:
            self.header = decode_header(header)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.problem = Problem(0, len(MAGIC), f"header: {exc}")
            return 0
        return pos

    def count_records(self) -> int:
        for _ in self.records():
            pass
        return self.count

    def records(self) -> Iterator[tuple[int, LogRecord]]:
        """(byte offset, record) for each good record, in order."""
        for pos, batch in self.batches():
            n = self.count - len(batch)
            for record in batch:
                n += 1
                self.count = n
                yield pos, record

    def batches(self, record_type: type | None = None) -> Iterator[tuple[int, list]]:
        """(byte offset, records) for each good frame, in order (a batch per frame; one
        record per frame in formats 1 and 2); `count` is then the number of its last record.
        `record_type` (proto.records.EventsRecord or CommandRecord) reads a current-format log
        into that lighter shape; an older log still yields LogRecords."""
        data = self.path.read_bytes()
        self.size = len(data)
        pos = self.read_header(data)
        if not pos:
            return
        try:
            decode = frame_decoder(self.header)
            if record_type is not None and self.header.format_version == LOG_FORMAT_VERSION:
                decode = msgspec.msgpack.Decoder(list[record_type]).decode  # type: ignore[valid-type]
        except LogFormatError as exc:
            self.problem = Problem(0, len(MAGIC), str(exc))
            return
        self.good_end = pos
        n = 0  # records yielded
        size = len(data)
        while pos < size:
            payload, end, err = read_frame(data, pos)
            if err:
                self.problem = Problem(n + 1, pos, err)
                return
            try:
                batch = decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError) as exc:
                self.problem = Problem(n + 1, pos, f"undecodable record: {exc}")
                return
            if not batch:
                self.problem = Problem(n + 1, pos, "undecodable record: an empty batch")
                return
            self.good_end = end
            n += len(batch)
            self.count = n
            yield pos, batch
            pos = end


@dataclass
class Damage:
    """A log that does not read to its end: where, and whether valid records follow."""
    problem: Problem
    good_records: int  # readable records before the damage
    last_seq: int  # the last good record's seq (0: none)
    good_end: int  # byte offset where the damage starts
    size: int  # the file's size
    after: int  # valid records found after the damage (0: a torn tail)
    after_seqs: tuple[int, int] | None  # (first, last) seq of those
    certain: bool = True  # False: the search for later records gave up (treated as damage)

    @property
    def torn_tail(self) -> bool:
        """Only the last, incomplete write: nothing valid after it."""
        return self.after == 0 and self.certain

    def describe(self) -> str:
        p = self.problem
        return f"record {p.record_number:,} at byte {p.offset:,}: {p.what}"


class LogDamaged(Exception):
    """Damage followed by valid records (or the header): cutting would lose history."""

    def __init__(self, path: Path, damage: Damage) -> None:
        self.path = path
        self.damage = damage
        super().__init__(self.explain())

    def explain(self) -> str:
        d = self.damage
        if d.problem.record_number == 0:
            return f"{self.path} cannot be read: {d.problem.what} (the file was not changed)"
        found = (f"{d.after:,} valid records follow it (seq {d.after_seqs[0]:,} to "
                 f"{d.after_seqs[1]:,})" if d.after else
                 "it could not be told whether valid records follow it")
        return (f"{self.path} is damaged at {d.describe()}; {found}. Starting would lose the "
                f"damaged record and everything after it ({d.size - d.good_end:,} bytes); the "
                f"file was not changed. Run `python -m replay verify {self.path}` to look, or "
                f"start with --repair to move bytes {d.good_end:,}-{d.size:,} aside to "
                f"{aside_path(self.path, d.good_end)} and go on from seq {d.last_seq:,}")


SCAN_SPAN = 4 * 1024 * 1024  # bytes after the damage searched offset by offset
SCAN_BUDGET = 256 * 1024 * 1024  # bytes of CRC work in that search
_MARKER = b"\xa3seq"  # a record's msgpack map starts with its "seq" key (formats 1 and 2;
# format 3's positional batches have no marker: the offset-by-offset search below finds them)


def examine(path: str | Path) -> Damage | None:
    """None if the log reads to its end; else where it stops and what follows."""
    reader = LogReader(path)
    last_seq = 0
    for _, record in reader.records():
        last_seq = record.seq
    if reader.problem is None:
        return None
    damage = Damage(reader.problem, reader.count, last_seq, reader.good_end, reader.size, 0,
                    None)
    data = Path(path).read_bytes()
    if reader.problem.record_number == 0:  # the header: only a first write cut short is torn
        damage.certain = (len(data) < len(MAGIC) and MAGIC.startswith(data)) or \
            (data.startswith(MAGIC) and "header: torn" in reader.problem.what)
        return damage
    decode = frame_decoder(reader.header)
    start = _next_valid(data, reader.good_end, last_seq, decode)
    if start is None:
        return damage
    if start < 0:
        damage.certain = False
        return damage
    pos, first = start, None
    while pos < len(data):  # count what follows, up to the next problem
        payload, end, err = read_frame(data, pos)
        if err:
            break
        try:
            batch = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError):
            break
        if not batch:
            break
        first = batch[0].seq if first is None else first
        damage.after += len(batch)
        damage.after_seqs = (first, batch[-1].seq)
        pos = end
    return damage


def _next_valid(data: bytes, start: int, last_seq: int, decode) -> int | None:
    """The offset of the first valid frame after `start` (a good CRC, a batch of records that
    decodes, a later seq); None if there is none; -1 if the search ran out of budget."""

    def valid(off: int) -> bool:
        payload, _, err = read_frame(data, off)
        if err:
            return False
        try:
            batch = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError):
            return False
        return bool(batch) and batch[0].seq > last_seq

    size = len(data)
    # the cheap guesses first: the damaged frame's own length, then every "seq" key
    if start + FRAME.size <= size:
        length, _ = FRAME.unpack_from(data, start)
        after = start + FRAME.size + length
        if after + FRAME.size <= size and valid(after):
            return after
    m = data.find(_MARKER, start + 1)
    while m >= 0:
        off = m - 1 - FRAME.size
        if off > start and valid(off):
            return off
        m = data.find(_MARKER, m + 1)
    # then every offset (a record of another shape), within a span and a budget: a torn tail
    # is one write; beyond that, "nothing valid follows" cannot be told cheaply
    budget = SCAN_BUDGET
    for off in range(start + 1, min(size - FRAME.size, start + SCAN_SPAN)):
        length, crc = FRAME.unpack_from(data, off)
        if length < 8 or off + FRAME.size + length > size:
            continue
        budget -= length
        if budget < 0:
            return -1
        if zlib.crc32(data[off + FRAME.size:off + FRAME.size + length]) == crc and valid(off):
            return off
    return -1 if size - start > SCAN_SPAN else None


def aside_path(path: str | Path, offset: int) -> Path:
    return Path(f"{path}.damaged-at-{offset}")


def truncate_to_good(path: str | Path) -> tuple[int, Problem | None]:
    """Cut a torn tail (the last, incomplete write) off the log; returns (records kept, the
    problem found or None). Damage followed by valid records, or an unreadable header, raises
    LogDamaged and changes nothing."""
    damage = examine(path)
    if damage is None:
        return LogReader(path).count_records(), None
    if not damage.torn_tail:
        raise LogDamaged(Path(path), damage)
    _cut(path, damage.good_end)
    return damage.good_records, damage.problem


def repair(path: str | Path) -> tuple[Damage | None, Path | None]:
    """Move everything from the damage on to `<path>.damaged-at-<offset>` (written and
    fsynced first), then cut the log there. Never deletes a byte. (None, None) if intact."""
    damage = examine(path)
    if damage is None:
        return None, None
    if damage.problem.record_number == 0:
        raise LogDamaged(Path(path), damage)
    aside = aside_path(path, damage.good_end)
    with open(path, "rb") as f:
        f.seek(damage.good_end)
        tail = f.read()
    with open(aside, "xb") as out:  # never overwrite an earlier repair's file
        out.write(tail)
        out.flush()
        os.fsync(out.fileno())
    _fsync_dir(aside.parent)
    _cut(path, damage.good_end)
    return damage, aside


def _cut(path: str | Path, end: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(end)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LogTail:
    """Incremental reader for a log that is still being written: `poll()` returns the records
    of the frames (batches) completed since the last call; a partial frame at the end is left
    for the next poll. Older formats are read through the upcasters."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self._buf = b""
        self.header: LogHeader | None = None

    def poll(self) -> list[LogRecord]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset + len(self._buf))
                chunk = f.read()
        except FileNotFoundError:
            return []
        data = self._buf + chunk
        pos = 0
        out = []
        if self.header is None:
            if len(data) < len(MAGIC) + FRAME.size:
                self._buf = data
                return out
            if not data.startswith(MAGIC):
                raise ValueError(f"{self.path}: not an event log")
            payload, end, err = read_frame(data, len(MAGIC))
            if err:
                self._buf = data
                return out
            self.header = decode_header(payload)
            self._decode = frame_decoder(self.header)
            pos = end
        while pos < len(data):
            payload, end, err = read_frame(data, pos)
            if err:
                if err.startswith("torn"):
                    break  # still being written
                raise ValueError(f"{self.path}: record at byte {self.offset + pos}: {err}")
            out.extend(self._decode(payload))
            pos = end
        self.offset += pos
        self._buf = data[pos:]
        return out
