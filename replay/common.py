"""Shared by the replay commands: the core a log was written with, and progress on stderr."""
from __future__ import annotations

import dataclasses
import sys
import time

from engine.core import EngineConfig
from proto.records import LogHeader


def config_from_header(header: LogHeader | None, **overrides) -> EngineConfig:
    """The EngineConfig recorded in the log header (defaults where it says nothing)."""
    return EngineConfig.from_dict(header.engine_config if header else {}, **overrides)


def config_dict(config: EngineConfig) -> dict:
    return dataclasses.asdict(config)


class Progress:
    """One line on stderr, rewritten at most once a second: records/s and how far in."""

    def __init__(self, total_bytes: int, enabled: bool = True, label: str = "replay") -> None:
        self.total = max(total_bytes, 1)
        self.enabled = enabled and sys.stderr.isatty()
        self.label = label
        self.start = self.last = time.perf_counter()
        self.count = 0

    def tick(self, offset: int, records: int = 1) -> None:
        before = self.count
        self.count += records
        if not self.enabled or (self.count >> 10) == (before >> 10):  # every 1,024 records
            return
        now = time.perf_counter()
        if now - self.last >= 1.0:
            self.last = now
            rate = self.count / (now - self.start)
            print(f"\r{self.label}: {self.count:,} records, {rate:,.0f}/s, "
                  f"{100 * offset / self.total:.0f}%", end="", file=sys.stderr, flush=True)

    def done(self) -> float:
        if self.enabled and self.count >= 1024:
            print(file=sys.stderr)
        return time.perf_counter() - self.start

