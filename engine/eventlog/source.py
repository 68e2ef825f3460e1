"""Which backend a log names: a file path (the default) or `nats://HOST:PORT/STREAM`
(engine.eventlog.jetstream), and a reader for either with LogReader's interface. nats-py is
imported only when a nats:// log is opened."""
from __future__ import annotations

from pathlib import Path

from engine.eventlog.reader import LogReader


def is_nats(spec: object) -> bool:
    """True for a JetStream log (`nats://...`)."""
    return isinstance(spec, str) and spec.startswith("nats://")


def open_reader(spec: str | Path, after: int = 0):
    """A reader of either backend: `.header`, `.records()` -> (position, record), `.problem`,
    `.count`, `.size`. Positions are byte offsets in a file, stream sequences in JetStream.
    `after`: a JetStream reader starts at the batch holding the record after this sequence
    number (a file reader starts at the top; callers skip what they have)."""
    if is_nats(spec):
        from engine.eventlog.jetstream import JetStreamReader
        return JetStreamReader(str(spec), after)
    return LogReader(spec)


def log_exists(spec: str | Path) -> bool:
    """A file that exists, or any JetStream spec (its reader says if the stream is missing)."""
    return is_nats(spec) or Path(spec).is_file()
