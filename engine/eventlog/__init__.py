"""The append-only event log: a header, then length-prefixed, CRC-checked records.

    frames    the bytes: magic, frames, batch decoding (with the upcasters)
    writer    LogWriter: batches appended, fsynced
    reader    LogReader, truncate_to_good, LogTail

File layout:
    b"PERPLOG\\n"                                  8-byte magic
    frame(LogHeader)                               format and catalogue versions
    frame([LogRecord, ...]) ...                    format 3: one frame (one CRC) per batch
                                                   (formats 1 and 2: a frame per record)

    frame = u32 little-endian payload length | u32 CRC-32 of the payload | msgpack payload

Records are written in batches (one frame and one write call per batch); `fsync=True` makes a
batch durable before `append` returns. The reader stops at the first torn or corrupt frame and
says where (the number of the first record the frame would hold, and the frame's offset).
Only a torn tail (nothing valid after it: a crashed writer's last write) is ever cut; damage
followed by valid frames is reported and left alone unless repaired (moved aside, never
deleted). A server holds the log with an exclusive flock (lock_log).

The same batches can live in NATS JetStream instead (engine.eventlog.jetstream, `nats://...`:
a message per batch, fenced by expected last sequence); open_reader reads either.
"""
from engine.eventlog.frames import (MAGIC, LogFormatError, encode_batch, encode_record, frame,
                                    frame_decoder)
from engine.eventlog.reader import (Damage, LogDamaged, LogReader, LogTail, Problem, examine,
                                    repair, truncate_to_good)
from engine.eventlog.source import is_nats, log_exists, open_reader
from engine.eventlog.writer import LogLocked, LogWriter, lock_log

__all__ = ["MAGIC", "LogFormatError", "encode_batch", "encode_record", "frame", "frame_decoder",
           "LogReader", "LogTail", "Problem", "Damage", "LogDamaged", "examine", "repair",
           "truncate_to_good", "LogWriter", "LogLocked", "lock_log", "is_nats", "open_reader",
           "log_exists"]
