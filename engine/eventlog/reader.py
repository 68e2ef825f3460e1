"""Reading the log: whole (LogReader, which stops at the first torn or corrupt frame and says
where), cutting a torn tail, and following a log that is still being written (LogTail).

A frame holds a batch of records (format 3; one record in formats 1 and 2). Records are
yielded one by one with the byte offset of their frame; a frame that cannot be read is a
Problem at the number of the first record it would hold and at the frame's offset, and
everything before it is good (good_end: the end of the last good frame)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import msgspec

from engine.eventlog.frames import (FRAME, MAGIC, LogFormatError, decode_header, frame_decoder,
                                    read_frame)
from proto.records import LogHeader, LogRecord


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

    def records(self) -> Iterator[tuple[int, LogRecord]]:
        """(byte offset, record) for each good record, in order."""
        data = self.path.read_bytes()
        self.size = len(data)
        pos = self.read_header(data)
        if not pos:
            return
        try:
            decode = frame_decoder(self.header)
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
            for record in batch:
                n += 1
                self.count = n
                yield pos, record
            pos = end


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
