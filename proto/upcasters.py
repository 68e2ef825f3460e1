"""Upcasters: lift a record written in an older log format to the current one.

Each takes the raw record (plain dicts and lists, as msgpack decoded it) of version N and
returns it in version N + 1; the reader applies them in a chain from the log header's version.
"""
from __future__ import annotations

from typing import Callable


def v1_to_v2(record: dict) -> dict:
    """Version 2 dropped marginCall's marginRatio: the core now computes and records the
    ratio itself (in the marginCall event), so the consumer's figure is not needed."""
    command = record.get("command")
    if isinstance(command, dict) and command.get("op") == "marginCall":
        command.pop("marginRatio", None)
    return record


UPCASTERS: dict[int, Callable[[dict], dict]] = {1: v1_to_v2}


def upcast(record: dict, from_version: int, to_version: int) -> dict:
    for version in range(from_version, to_version):
        record = UPCASTERS[version](record)
    return record
