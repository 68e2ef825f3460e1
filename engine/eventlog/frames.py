"""The log's bytes: the magic, the frame around the header and every batch, and decoding.

    b"PERPLOG\\n"                                  8-byte magic
    frame(LogHeader)                               format and catalogue versions (a map)
    frame([LogRecord, ...]) ...                    format 3: one frame per batch of records
                                                   (formats 1 and 2: one per record, a map)

    frame = u32 little-endian payload length | u32 CRC-32 of the payload | msgpack payload

A record is positional: [seq, time, [op, ...command fields], [[e, ...event fields], ...]].
"""
from __future__ import annotations

import struct
import zlib

import msgspec

from proto.records import LOG_FORMAT_VERSION, LogHeader, LogRecord
from proto.upcasters import upcast

MAGIC = b"PERPLOG\n"
FRAME = struct.Struct("<II")
MAX_RECORD = 256 * 1024 * 1024  # one frame's payload (a batch)
SPLIT_BATCH = 32 * 1024 * 1024  # a batch encoding to more is written as several frames

# msgpack of batches and headers (a batch decoder for this format; older ones: frame_decoder)

encode = msgspec.msgpack.Encoder().encode
decode_batch = msgspec.msgpack.Decoder(list[LogRecord]).decode
decode_record = msgspec.msgpack.Decoder(LogRecord).decode
decode_header = msgspec.msgpack.Decoder(LogHeader).decode
decode_raw = msgspec.msgpack.Decoder().decode


class LogFormatError(ValueError):
    pass


def frame_decoder(header: LogHeader):
    """The decoder of this log's frames, payload -> [LogRecord, ...]: a batch for the current
    format, else the one map-form record of an older frame through the upcasters
    (proto.upcasters)."""
    version = header.format_version
    if version == LOG_FORMAT_VERSION:
        return decode_batch
    if not 1 <= version < LOG_FORMAT_VERSION:
        raise LogFormatError(f"log format {version} is not readable by this version "
                             f"(reads 1 to {LOG_FORMAT_VERSION})")
    return lambda payload: [msgspec.convert(upcast(decode_raw(payload), version,
                                                   LOG_FORMAT_VERSION), LogRecord)]


def frame(payload: bytes) -> bytes:
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def encode_batch(records: list[LogRecord]) -> bytes:
    """One frame holding the batch (several, if it encodes to more than SPLIT_BATCH bytes)."""
    payload = encode(records)
    if len(payload) <= SPLIT_BATCH or len(records) == 1:
        return frame(payload)
    half = len(records) // 2
    return encode_batch(records[:half]) + encode_batch(records[half:])


def encode_record(record: LogRecord) -> bytes:
    """A frame holding one record (a batch of one)."""
    return encode_batch([record])


def read_frame(data: bytes, pos: int) -> tuple[bytes, int, str]:
    if pos + FRAME.size > len(data):
        return b"", pos, f"torn frame header: {len(data) - pos} of {FRAME.size} bytes"
    length, crc = FRAME.unpack_from(data, pos)
    start = pos + FRAME.size
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


