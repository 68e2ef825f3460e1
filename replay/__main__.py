"""python -m replay feed FILE.jsonl|- [--log PATH] [--checkpoint-every N] [--fsync]"""
from __future__ import annotations

import argparse
import sys

from engine import catalogue as catalogue_mod
from engine.core import EngineConfig
from replay.feed import open_lines, run_feed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m replay")
    sub = parser.add_subparsers(dest="cmd", required=True)
    feed = sub.add_parser("feed", help="run JSON-lines commands through the core")
    feed.add_argument("file", help="a .jsonl file of commands, or - for stdin")
    feed.add_argument("--log", help="write the event log to this path")
    feed.add_argument("--fsync", action="store_true", help="fsync every batch")
    feed.add_argument("--checkpoint-every", type=int, default=EngineConfig.checkpoint_every)
    feed.add_argument("--catalogue", help="a catalogue JSON file (default: the packaged one)")
    args = parser.parse_args(argv)
    try:
        cat = catalogue_mod.load(args.catalogue)
        lines = open_lines(args.file)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = EngineConfig(checkpoint_every=args.checkpoint_every)
    result = run_feed(lines, sys.stdout.buffer, cat, config, log_path=args.log, fsync=args.fsync)
    sys.stdout.flush()
    print(f"feed: {result.commands} commands, {result.events} events, "
          f"{len(result.errors)} bad lines", file=sys.stderr)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
