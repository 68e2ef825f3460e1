"""The log's bytes: the magic, the frame around every header and record, and their decoding.

    b"PERPLOG\\n"                                  8-byte magic
    frame(LogHeader)                               format and catalogue versions
    frame(LogRecord) ...                           one per sequenced command

    frame = u32 little-endian payload length | u32 CRC-32 of the payload | msgpack payload
"""
from __future__ import annotations

import struct
import zlib

import msgspec

from proto.records import LOG_FORMAT_VERSION, LogHeader, LogRecord
from proto.upcasters import upcast

MAGIC = b"PERPLOG\n"
FRAME = struct.Struct("<II")
MAX_RECORD = 64 * 1024 * 1024

# msgpack of records and headers (a record decoder for this format; older ones: record_decoder)

encode = msgspec.msgpack.Encoder().encode
decode_record = msgspec.msgpack.Decoder(LogRecord).decode
decode_header = msgspec.msgpack.Decoder(LogHeader).decode
decode_raw = msgspec.msgpack.Decoder().decode


class LogFormatError(ValueError):
    pass


def record_decoder(header: LogHeader):
    """The decoder for this log's records: direct for the current format, else through the
    upcasters (proto.upcasters)."""
    version = header.format_version
    if version == LOG_FORMAT_VERSION:
        return decode_record
    if not 1 <= version < LOG_FORMAT_VERSION:
        raise LogFormatError(f"log format {version} is not readable by this version "
                             f"(reads 1 to {LOG_FORMAT_VERSION})")
    return lambda payload: msgspec.convert(upcast(decode_raw(payload), version,
                                                  LOG_FORMAT_VERSION), LogRecord)


def frame(payload: bytes) -> bytes:
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def encode_record(record: LogRecord) -> bytes:
    return frame(encode(record))


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


