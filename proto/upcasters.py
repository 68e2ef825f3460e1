"""Upcasters: lift a record written in an older log format to the current one.

Each takes the raw record (plain dicts and lists, as msgpack decoded it) of version N and
returns it in version N + 1; the reader applies them in a chain from the log header's version.
Formats 1 and 2 hold one map-form record per frame; format 3 holds batches of positional
records per frame, so the reader hands each old frame's single record through the chain and
decodes the positional result.
"""
from __future__ import annotations

from typing import Any, Callable

from proto.commands import AnyCommand
from proto.events import AnyEvent
from proto.positional import positional

COMMAND_TYPES = {t.__struct_config__.tag: t for t in AnyCommand.__args__}
EVENT_TYPES = {t.__struct_config__.tag: t for t in AnyEvent.__args__}


def v1_to_v2(record: dict) -> dict:
    """Version 2 dropped marginCall's marginRatio: the core now computes and records the
    ratio itself (in the marginCall event), so the consumer's figure is not needed."""
    command = record.get("command")
    if isinstance(command, dict) and command.get("op") == "marginCall":
        command.pop("marginRatio", None)
    return record


def v2_to_v3(record: dict) -> list:
    """Version 3 holds records, commands and events positionally: [seq, time, [op, fields...],
    [[e, fields...], ...]] in their classes' field order (proto.positional)."""
    command = record["command"]
    return [record["seq"], record["time"],
            positional(command, COMMAND_TYPES[command["op"]]),
            [positional(ev, EVENT_TYPES[ev["e"]]) for ev in record["events"]]]


UPCASTERS: dict[int, Callable[[Any], Any]] = {1: v1_to_v2, 2: v2_to_v3}


def upcast(record: Any, from_version: int, to_version: int) -> Any:
    for version in range(from_version, to_version):
        record = UPCASTERS[version](record)
    return record
