"""What the event log stores: one record per sequenced command, with the events it caused.

Keeping the command next to its events lets the log both rebuild the state (apply the events)
and re-drive the core (feed the commands again and compare the events byte for byte).
"""
from __future__ import annotations

import msgspec

from proto.commands import AnyCommand
from proto.events import AnyEvent

# 1: the first format. 2: the marginCall command lost its marginRatio field (the core computes
# the ratio itself); proto.upcasters lifts version-1 records. 3: one frame per batch of records
# (a msgpack array of them), records, commands and events positional (array-like) instead of
# maps of field names. Bump on any change of meaning.
LOG_FORMAT_VERSION = 3


class LogHeader(msgspec.Struct, frozen=True, rename="camel"):
    format_version: int
    catalogue_version: str
    created_by: str = "perpengine"
    # the core's settings (EngineConfig fields), so a re-drive builds the same core
    engine_config: dict = {}


class LogRecord(msgspec.Struct, frozen=True, rename="camel", array_like=True):
    """[seq, time, command, [event, ...]] in the log (format 3); formats 1 and 2 held maps."""
    seq: int  # 1, 2, 3, ... without gaps
    time: int  # ms, stamped by the sequencer
    command: AnyCommand
    events: list[AnyEvent]


class EventsRecord(msgspec.Struct, frozen=True, array_like=True):
    """A format-3 record read for its events only (verify, rebuilds): the command is left as
    its msgpack bytes, not decoded."""
    seq: int
    time: int
    command: msgspec.Raw
    events: list[AnyEvent]


class CommandRecord(msgspec.Struct, frozen=True, array_like=True):
    """A format-3 record read for its command (re-drive): the events are left as their
    msgpack bytes, which is what a re-drive compares its own events' encoding with."""
    seq: int
    time: int
    command: AnyCommand
    events: msgspec.Raw


__all__ = ["LOG_FORMAT_VERSION", "LogHeader", "LogRecord", "EventsRecord", "CommandRecord"]
