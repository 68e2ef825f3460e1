"""The native gateway's framing of a connection's input (proto.wire: JSON lines or
length-prefixed msgpack frames), read in chunks."""
from __future__ import annotations

import asyncio

from proto import wire


class FrameReader:
    """A connection's requests, read from its stream in chunks and cut into frames here: many
    requests per wake-up, and none waits while whole ones are already read. `take()` gives
    a request already in hand (or None); `read()` waits for the next (None at the end of the
    input). Lines (JSONL) and length-prefixed msgpack frames, with the limits and errors of
    proto.wire: a frame above `limit` bytes is a FrameError; a blank line is skipped; the
    input's end with a partial msgpack frame is an IncompleteReadError, with a partial line
    that line as the last request."""

    CHUNK = 64 * 1024

    def __init__(self, reader: asyncio.StreamReader, mode: str, limit: int) -> None:
        self.reader = reader
        self.msgpack = mode == wire.MSGPACK
        self.limit = limit
        self.buf = b""
        self.pos = 0
        self.eof = False

    def take(self) -> bytes | None:
        buf, pos = self.buf, self.pos
        if self.msgpack:
            if len(buf) - pos < 4:
                return None
            (length,) = wire.LENGTH.unpack_from(buf, pos)
            if length > self.limit:
                raise wire.FrameError(f"frame of {length} bytes exceeds the {self.limit}-byte "
                                      f"limit")
            end = pos + 4 + length
            if end > len(buf):
                return None
            self.pos = end
            return buf[pos + 4:end]
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if len(buf) - pos > 2 * self.limit:
                    raise wire.FrameError(f"line exceeds the {self.limit}-byte limit")
                self.pos = pos
                return None
            line = buf[pos:nl + 1]
            pos = nl + 1
            if len(line) > self.limit:
                self.pos = pos
                raise wire.FrameError(f"line of {len(line)} bytes exceeds the {self.limit}-byte "
                                      f"limit")
            if line.strip():
                self.pos = pos
                return line
            # a blank line: the next

    async def read(self) -> bytes | None:
        while True:
            body = self.take()
            if body is not None:
                return body
            if self.eof:
                return self._at_end()
            more = await self.reader.read(self.CHUNK)
            if not more:
                self.eof = True
                continue
            rest = self.buf[self.pos:]
            self.buf = rest + more if rest else more
            self.pos = 0

    def _at_end(self) -> bytes | None:
        rest = self.buf[self.pos:]
        self.buf, self.pos = b"", 0
        if self.msgpack:
            if len(rest) < 4:
                return None  # nothing, or a torn length: the input simply ended
            (length,) = wire.LENGTH.unpack_from(rest, 0)
            raise asyncio.IncompleteReadError(rest[4:], length)
        if not rest.strip():
            return None
        if len(rest) > self.limit:
            raise wire.FrameError(f"line of {len(rest)} bytes exceeds the {self.limit}-byte limit")
        return rest  # the last line, without its newline
