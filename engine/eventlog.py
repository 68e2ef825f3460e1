"""The append-only event log: a header, then length-prefixed, CRC-checked records.

File layout:
    b"PERPLOG\\n"                                  8-byte magic
    frame(LogHeader)                               format and catalogue versions
    frame(LogRecord) ...                           one per sequenced command

    frame = u32 little-endian payload length | u32 CRC-32 of the payload | msgpack payload

Records are written in batches (one write call per batch); `fsync=True` makes a batch durable
before `append` returns. The reader stops at the first torn or corrupt frame and says where,
so a crashed writer's tail can be truncated to the last good record.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import msgspec

from proto.records import LOG_FORMAT_VERSION, LogHeader, LogRecord
from proto.upcasters import upcast

MAGIC = b"PERPLOG\n"
_FRAME = struct.Struct("<II")
MAX_RECORD = 64 * 1024 * 1024

_encode = msgspec.msgpack.Encoder().encode
_decode_record = msgspec.msgpack.Decoder(LogRecord).decode
_decode_header = msgspec.msgpack.Decoder(LogHeader).decode
_decode_raw = msgspec.msgpack.Decoder().decode


class LogFormatError(ValueError):
    pass


def record_decoder(header: LogHeader):
    """The decoder for this log's records: direct for the current format, else through the
    upcasters (proto.upcasters)."""
    version = header.format_version
    if version == LOG_FORMAT_VERSION:
        return _decode_record
    if not 1 <= version < LOG_FORMAT_VERSION:
        raise LogFormatError(f"log format {version} is not readable by this version "
                             f"(reads 1 to {LOG_FORMAT_VERSION})")
    return lambda payload: msgspec.convert(upcast(_decode_raw(payload), version,
                                                  LOG_FORMAT_VERSION), LogRecord)


def frame(payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def encode_record(record: LogRecord) -> bytes:
    return frame(_encode(record))


class LogWriter:
    def __init__(self, path: str | Path, catalogue_version: str, fsync: bool = True,
                 engine_config: dict | None = None) -> None:
        self.path = Path(path)
        self.fsync = fsync
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            reader = LogReader(self.path)
            reader.read_header()
            if reader.header is not None and reader.header.format_version != LOG_FORMAT_VERSION:
                raise LogFormatError(
                    f"{self.path} is log format {reader.header.format_version}; this version "
                    f"writes {LOG_FORMAT_VERSION}: convert it with `python -m replay upgrade`")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if not exists:
            header = LogHeader(format_version=LOG_FORMAT_VERSION,
                               catalogue_version=catalogue_version,
                               engine_config=engine_config or {})
            os.write(self._fd, MAGIC + frame(_encode(header)))
            self._sync()

    def append(self, records: list[LogRecord]) -> None:
        self.append_encoded(b"".join(frame(_encode(r)) for r in records))

    def append_encoded(self, blob: bytes) -> None:
        view = memoryview(blob)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._sync()

    def _sync(self) -> None:
        if self.fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class Problem:
    record_number: int  # 1-based index of the record that could not be read
    offset: int  # byte offset of its frame
    what: str


class LogReader:
    """Iterate a log's records; after iteration `problem` says where it stopped early, if it did,
    `good_end` is the byte offset just after the last good record, and `size` the file's."""

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
        header, pos, err = _read_frame(data, len(MAGIC))
        if err:
            self.problem = Problem(0, len(MAGIC), f"header: {err}")
            return 0
        try:
            self.header = _decode_header(header)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.problem = Problem(0, len(MAGIC), f"header: {exc}")
            return 0
        return pos

    def records(self) -> Iterator[tuple[int, LogRecord]]:
        """(byte offset, record) for each good record, in order."""
        data = self.path.read_bytes()
        self.size = len(data)
        pos = self.read_header(data)
        if not pos:
            return
        try:
            decode = record_decoder(self.header)
        except LogFormatError as exc:
            self.problem = Problem(0, len(MAGIC), str(exc))
            return
        self.good_end = pos
        n = 0
        size = len(data)
        while pos < size:
            n += 1
            payload, end, err = _read_frame(data, pos)
            if err:
                self.problem = Problem(n, pos, err)
                return
            try:
                record = decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError) as exc:
                self.problem = Problem(n, pos, f"undecodable record: {exc}")
                return
            self.count = n
            self.good_end = end
            yield pos, record
            pos = end


def _read_frame(data: bytes, pos: int) -> tuple[bytes, int, str]:
    if pos + _FRAME.size > len(data):
        return b"", pos, f"torn frame header: {len(data) - pos} of {_FRAME.size} bytes"
    length, crc = _FRAME.unpack_from(data, pos)
    start = pos + _FRAME.size
    if length > MAX_RECORD:
        return b"", pos, f"implausible record length {length}"
    end = start + length
    if end > len(data):
        return b"", pos, f"torn record: {len(data) - start} of {length} bytes"
    payload = data[start:end]
    actual = zlib.crc32(payload)
    if actual != crc:
        return b"", pos, f"CRC mismatch: expected {crc:08x}, computed {actual:08x}"
    return payload, end, ""


def truncate_to_good(path: str | Path) -> tuple[int, Problem | None]:
    """Cut a torn or corrupt tail off; returns (records kept, the problem found or None)."""
    reader = LogReader(path)
    for _ in reader.records():
        pass
    if reader.problem is not None and reader.problem.record_number > 0:
        with open(path, "r+b") as f:
            f.truncate(reader.good_end)
            f.flush()
            os.fsync(f.fileno())
    return reader.count, reader.problem


class LogTail:
    """Incremental reader for a log that is still being written: `poll()` returns the records
    completed since the last call; a partial frame at the end is left for the next poll."""

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
            if len(data) < len(MAGIC) + _FRAME.size:
                self._buf = data
                return out
            if not data.startswith(MAGIC):
                raise ValueError(f"{self.path}: not an event log")
            payload, end, err = _read_frame(data, len(MAGIC))
            if err:
                self._buf = data
                return out
            self.header = _decode_header(payload)
            pos = end
        while pos < len(data):
            payload, end, err = _read_frame(data, pos)
            if err:
                if err.startswith("torn"):
                    break  # still being written
                raise ValueError(f"{self.path}: record at byte {self.offset + pos}: {err}")
            out.append(_decode_record(payload))
            pos = end
        self.offset += pos
        self._buf = data[pos:]
        return out
