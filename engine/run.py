"""`make run`: the engine on standard input (JSON-lines commands), logging to a file.

This is the feed in interactive form: type a command line, get its events back. The TCP
gateway (issue 4) will replace it as the server entry point.
"""
from __future__ import annotations

import os
import sys

import structlog

from engine.catalogue import Catalogue
from replay.feed import run_feed


def run_stdin(cat: Catalogue, log_path: str) -> int:
    log = structlog.get_logger()
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    print(f"perpengine: reading JSON-lines commands on stdin; log {log_path}; "
          f"{len(cat.symbols)} symbols (catalogue {cat.version}). Ctrl-D ends.", file=sys.stderr)
    result = run_feed(sys.stdin.buffer, sys.stdout.buffer, cat, log_path=log_path, fsync=True,
                      batch=1)
    log.info("session ended", commands=result.commands, events=result.events,
             bad_lines=len(result.errors), log=log_path)
    return 0
