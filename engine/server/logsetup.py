"""structlog for the server and tools: one line per unit of work (a connection, a snapshot,
a run) on stderr; readable on a terminal, JSON lines otherwise (for log collectors)."""
from __future__ import annotations

import sys

import structlog


def configure() -> None:
    stream = sys.stderr
    renderer = (structlog.dev.ConsoleRenderer() if stream.isatty()
                else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info, renderer],
        logger_factory=structlog.PrintLoggerFactory(stream))
