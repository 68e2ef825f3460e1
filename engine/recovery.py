"""Recovery: snapshot files (the whole state at a sequence number, CRC-checked, written
atomically) and the state from the newest good one plus the log's tail.

    <dir>/snapshot-<seq, 12 digits>.bin  =  b"PERPSNAP" | u32 length | u32 CRC-32 | payload
    payload = engine.core.snapshot.take(engine)  (msgpack of the canonical state, seq and time)

Restoring takes the newest snapshot whose CRC is good and whose sequence number the log
reaches, and applies the log's records after it: restored state == live state, hash for hash.
A damaged snapshot is skipped (reported), never trusted; a snapshot beyond the log's last
record (the log lost its tail, or was repaired) is never used, since going on from it would
leave a gap in the log: the server moves such snapshots aside (set_aside). The log is a file or a JetStream stream
(`nats://...`; its tail is read from the batch after the snapshot's record).
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from engine.core import Engine, EngineConfig, snapshot
from engine.core.catalogue import Catalogue
from engine.eventlog import is_nats, open_reader

MAGIC = b"PERPSNAP"
_HEAD = struct.Struct("<II")


def file_name(seq: int) -> str:
    return f"snapshot-{seq:012d}.bin"


def encode_file(blob: bytes) -> bytes:
    return MAGIC + _HEAD.pack(len(blob), zlib.crc32(blob)) + blob


def write(directory: str | Path, seq: int, blob: bytes, keep: int = 3) -> Path:
    """Write atomically (temp file, fsync, rename); keep the newest `keep` snapshots."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / file_name(seq)
    tmp = final.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(encode_file(blob))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(final)
    for old in sorted(directory.glob("snapshot-*.bin"))[:-keep]:
        old.unlink(missing_ok=True)
    return final


def read(path: Path) -> bytes | None:
    data = path.read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _HEAD.size:
        return None
    length, crc = _HEAD.unpack_from(data, len(MAGIC))
    blob = data[len(MAGIC) + _HEAD.size:]
    if len(blob) != length or zlib.crc32(blob) != crc:
        return None
    return blob


def seq_of(path: Path) -> int:
    return int(path.stem.split("-")[1])


def latest_good(directory: str | Path, max_seq: int | None = None) \
        -> tuple[Path | None, bytes | None, list[str]]:
    """(path, payload, damaged files skipped) of the newest readable snapshot at or below
    `max_seq` (the log's last record)."""
    skipped = []
    directory = Path(directory)
    if not directory.exists():
        return None, None, skipped
    for path in sorted(directory.glob("snapshot-*.bin"), reverse=True):
        if max_seq is not None and seq_of(path) > max_seq:
            continue
        blob = read(path)
        if blob is not None:
            return path, blob, skipped
        skipped.append(path.name)
    return None, None, skipped


def beyond(directory: str | Path, last_seq: int) -> list[Path]:
    """Snapshots of states the log does not reach."""
    directory = Path(directory)
    if not directory.exists():
        return []
    return [p for p in sorted(directory.glob("snapshot-*.bin")) if seq_of(p) > last_seq]


def set_aside(paths: list[Path]) -> list[Path]:
    """Move snapshots into `<dir>/set-aside/` (never deleted; never used again)."""
    moved = []
    for path in paths:
        target_dir = path.parent / "set-aside"
        target_dir.mkdir(exist_ok=True)
        target = target_dir / path.name
        n = 1
        while target.exists():
            target = target_dir / f"{path.stem}.{n}{path.suffix}"
            n += 1
        path.replace(target)
        moved.append(target)
    return moved


def last_seq(log_path: str | Path) -> int:
    """The seq of the log's last readable record (0: none)."""
    seq = 0
    if is_nats(log_path) or Path(log_path).exists():
        for _, record in open_reader(log_path).records():
            seq = record.seq
    return seq


def restore(catalogue: Catalogue, log_path: str | Path, directory: str | Path | None,
            config: EngineConfig | None = None, max_seq: int | None = None) \
        -> tuple[Engine, dict]:
    """The state from the newest good snapshot the log reaches plus the log's tail (or the
    whole log). `max_seq`: the log's last seq, if the caller knows it."""
    if directory and max_seq is None:
        max_seq = last_seq(log_path)
    path, blob, skipped = latest_good(directory, max_seq) if directory else (None, None, [])
    engine = snapshot.restore(catalogue, blob, config) if blob else Engine(catalogue, config)
    start = engine.seq
    applied = 0
    reader = open_reader(log_path, after=start)  # a file, or JetStream from the batch after it
    if is_nats(log_path) or Path(log_path).exists():
        for _, record in reader.records():
            if record.seq <= start:
                continue
            if record.seq != engine.seq + 1:
                raise ValueError(f"log does not continue snapshot seq {engine.seq}: "
                                 f"next record is seq {record.seq}")
            engine.apply_record(record.seq, record.time, record.events)
            applied += 1
    return engine, {"snapshot": path.name if path else None, "snapshot_seq": start,
                    "tail_records": applied, "skipped_snapshots": skipped,
                    "log_problem": reader.problem.what if reader.problem else None}
