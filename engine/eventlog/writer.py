"""Appending to the log: records are written in batches (one frame, one CRC and one write call
per batch); with `fsync=True` a batch is durable before `append` returns."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from engine.eventlog.frames import MAGIC, LogFormatError, encode, encode_batch, frame
from engine.eventlog.reader import LogReader
from proto.records import LOG_FORMAT_VERSION, LogHeader, LogRecord


class LogLocked(RuntimeError):
    """Another process holds the log."""


def lock_log(path: str | Path) -> int:
    """Hold the log (created empty if missing) with an exclusive flock; returns the fd, which
    keeps the lock until it is closed. LogLocked if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogLocked(f"another server is writing {path} (it is locked); stop it, or give "
                        "this one its own --log") from None
    return fd


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
            os.write(self._fd, MAGIC + frame(encode(header)))
            self._sync()

    def append(self, records: list[LogRecord]) -> None:
        """The records as one batch (one frame)."""
        if records:
            self.append_encoded(encode_batch(records))

    def append_encoded(self, blob: bytes) -> None:
        view = memoryview(blob)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._sync()

    def _sync(self) -> None:
        if self.fsync:
            os.fsync(self._fd)

    def sync(self) -> None:
        """Make everything written so far durable (the fsync=False writer's periodic flush)."""
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
