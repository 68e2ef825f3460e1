"""What the event log stores: one record per sequenced command, with the events it caused.

Keeping the command next to its events lets the log both rebuild the state (apply the events)
and re-drive the core (feed the commands again and compare the events byte for byte).
"""
from __future__ import annotations

import msgspec

from proto.commands import AnyCommand
from proto.events import AnyEvent

LOG_FORMAT_VERSION = 1


class LogHeader(msgspec.Struct, frozen=True, rename="camel"):
    format_version: int
    catalogue_version: str
    created_by: str = "perpengine"


class LogRecord(msgspec.Struct, frozen=True, rename="camel"):
    seq: int  # 1, 2, 3, ... without gaps
    time: int  # ms, stamped by the sequencer
    command: AnyCommand
    events: list[AnyEvent]


__all__ = ["LOG_FORMAT_VERSION", "LogHeader", "LogRecord"]
