"""python -m replay feed|verify|redrive|whatif|timeline|restore|upgrade ...

A log is a file or a JetStream stream (nats://HOST:PORT/STREAM) for verify, redrive, whatif and
restore.

Exit status: 0 intact (or done), 1 a problem was found, 2 bad usage or an unreadable file.
Every command takes --json for a machine-readable report on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.core import catalogue as catalogue_mod
from engine.core import EngineConfig
from engine.core.fixed import fmt


def _print(report: dict, as_json: bool, lines: list[str]) -> None:
    if as_json:
        print(json.dumps(report, indent=1, default=str))
    else:
        print("\n".join(lines))


def _rate(n: int, seconds: float, what: str) -> str:
    if seconds < 0.05:
        return f"{seconds:.3f} s"
    return f"{seconds:.2f} s, {n / seconds:,.0f} {what}/s"


def _problem_line(p: dict) -> str:
    return f"record {p['record_number']} at byte {p['offset']}: {p['what']}"


def cmd_verify(args, cat) -> int:
    from replay.verify import verify
    r = verify(args.log, cat, progress=not args.json)
    d = r.as_dict()
    if r.intact:
        lines = [f"intact: {r.records:,} records (seq 1-{r.last_seq}), {r.events:,} events, "
                 f"{r.checkpoints} checkpoint hashes matched; {_rate(r.events, r.seconds, 'events')}",
                 f"state {r.state_hash}: {r.accounts} accounts, {r.resting_orders} resting "
                 f"orders, insurance fund {fmt(r.insurance_fund)}"]
    else:
        lines = [f"PROBLEM at {_problem_line(r.problem)}",
                 f"good before it: {r.records:,} records (seq 1-{r.last_seq}), "
                 f"{r.checkpoints} checkpoints matched"]
    lines += [f"warning: {w}" for w in r.warnings]
    if r.stream:  # a JetStream log: who wrote it, and where writers took over
        lines.append(r.stream)
    _print(d, args.json, lines)
    if r.unreadable:
        return 2
    return 0 if r.intact else 1


def cmd_redrive(args, cat) -> int:
    from replay.redrive import redrive
    r = redrive(args.log, cat, progress=not args.json)
    if r.identical:
        lines = [f"identical: {r.records:,} commands re-driven, {r.events:,} events equal byte "
                 f"for byte; {_rate(r.records, r.seconds, 'commands')}; state {r.state_hash}"]
        if r.note:
            lines.append(f"note: {r.note}")
    elif r.divergence:
        dv = r.divergence
        lines = [f"DIVERGENCE at record {dv['record_number']} (seq {dv['seq']}, byte "
                 f"{dv['offset']}), event {dv['event_index']} of {dv['recorded_count']} "
                 f"recorded / {dv['produced_count']} produced",
                 f"  command : {json.dumps(dv['command'])}",
                 f"  recorded: {json.dumps(dv['recorded'])}",
                 f"  produced: {json.dumps(dv['produced'])}"]
    else:
        lines = ["PROBLEM reading the log: " + _problem_line(r.problem) if r.problem
                 else "PROBLEM: no records"]
    _print(r.as_dict(), args.json, lines)
    if r.problem and r.problem["record_number"] == 0:
        return 2
    return 0 if r.identical else 1


def cmd_whatif(args, cat) -> int:
    from replay.whatif import load_overrides, summary_lines, whatif
    try:
        overrides = load_overrides(args.rules)
    except (OSError, ValueError) as exc:
        print(f"error: {args.rules}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.html:
            from replay.whatif import write_html
            r = write_html(args.log, overrides, args.html, cat)
            report = r.report
        else:
            report = whatif(args.log, overrides, cat)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    lines = summary_lines(report)
    if args.html:
        shown = sorted(r.traces[0])
        lines.append(f"wrote {args.html}: " + (
            f"account{'s' if len(shown) > 1 else ''} {', '.join(map(str, shown))}, original and "
            f"what-if side by side" if shown else "no account treated differently"))
    _print(report, args.json, lines)
    return 0


def cmd_timeline(args, cat) -> int:
    from replay.timeline import trace_log, write_timeline
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm", ".png"):
        print(f"error: --out {out}: a .html or .png file", file=sys.stderr)
        return 2
    other = None
    try:
        if args.whatif:
            from replay.whatif import load_overrides, run
            try:
                overrides = load_overrides(args.whatif)
            except (OSError, ValueError) as exc:
                print(f"error: {args.whatif}: {exc}", file=sys.stderr)
                return 2
            r = run(args.log, overrides, cat, trace=(args.account,))
            line, other = r.traces[0][args.account], r.traces[1][args.account]
        else:
            line = trace_log(args.log, [args.account], cat)[args.account]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not line.times:
        print(f"error: account {args.account} does not appear in {args.log}", file=sys.stderr)
        return 1
    text = write_timeline(line, out, args.log, other)
    if args.json:
        data = {"out": str(out), **line.as_dict()}
        if other is not None:
            data["whatIf"] = other.as_dict()
        print(json.dumps(data, indent=1))
    else:
        print(f"wrote {out}: {text}")
    return 0


def cmd_restore(args, cat) -> int:
    from replay.common import config_from_header
    from engine.recovery import restore
    from engine.eventlog import open_reader
    reader = open_reader(args.log)
    reader.read_header()
    engine, facts = restore(cat, args.log, args.snapshots, config_from_header(reader.header))
    facts.update(seq=engine.seq, state_hash=engine.state_hash())
    _print(facts, args.json, [
        f"restored seq {engine.seq}: snapshot {facts['snapshot'] or '(none)'} at seq "
        f"{facts['snapshot_seq']} + {facts['tail_records']} log records; state "
        f"{facts['state_hash']}"] + [f"skipped damaged snapshot {s}" for s in
                                     facts["skipped_snapshots"]])
    return 0


def cmd_upgrade(args, cat) -> int:
    from engine.eventlog import LogReader, LogWriter
    reader = LogReader(args.log)
    out = Path(args.out)
    if out.exists():
        print(f"error: {out} exists", file=sys.stderr)
        return 2
    records = [r for _, r in reader.records()]
    if reader.problem is not None:
        print(f"error: {_problem_line(reader.problem.__dict__)}", file=sys.stderr)
        return 2 if reader.problem.record_number == 0 else 1
    writer = LogWriter(out, reader.header.catalogue_version,
                       engine_config=reader.header.engine_config)
    writer.append(records)
    writer.close()
    print(f"upgraded {len(records):,} records from format {reader.header.format_version} to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m replay")
    p.add_argument("--catalogue", help="a catalogue JSON file (default: the packaged one)")
    sub = p.add_subparsers(dest="cmd", required=True)
    feed = sub.add_parser("feed", help="run JSON-lines commands through the core")
    feed.add_argument("file", help="a .jsonl file of commands, or - for stdin")
    feed.add_argument("--log", help="write the event log to this path (a new file)")
    feed.add_argument("--append", action="store_true",
                      help="go on from an existing --log (its state, sequence and time)")
    feed.add_argument("--fsync", action="store_true", help="fsync every batch")
    feed.add_argument("--checkpoint-every", type=int, default=EngineConfig().checkpoint_every)
    feed.add_argument("--no-risk", action="store_true", help="without the risk consumer")
    for name, aliases, helptext in (
            ("verify", [], "check CRCs, sequence and checkpoint hashes"),
            ("redrive", ["re-drive"], "re-run the commands and compare events byte for byte")):
        s = sub.add_parser(name, aliases=aliases, help=helptext)
        s.add_argument("log")
        s.add_argument("--json", action="store_true")
    w = sub.add_parser("whatif", help="replay the commands under changed risk rules")
    w.add_argument("log")
    w.add_argument("rules", help="JSON: 'tables', 'symbols' (catalogue format), 'engineConfig'")
    w.add_argument("--json", action="store_true")
    w.add_argument("--html", metavar="FILE",
                   help="also write a page: each affected account's timeline in both runs")
    tl = sub.add_parser("timeline", help="an account's mark, liquidation price and margin "
                        "ratio over time, with its fills, margin calls, liquidations and ADL")
    tl.add_argument("log")
    tl.add_argument("--account", type=int, required=True)
    tl.add_argument("--out", required=True, help="FILE.html (with the data) or FILE.png")
    tl.add_argument("--whatif", metavar="RULES.json",
                    help="the account in the log and under these rules, side by side")
    tl.add_argument("--json", action="store_true", help="print the data as JSON")
    r = sub.add_parser("restore", help="state from the newest good snapshot plus the log tail")
    r.add_argument("log")
    r.add_argument("--snapshots", help="the snapshot directory")
    r.add_argument("--json", action="store_true")
    u = sub.add_parser("upgrade", help="rewrite an older-format log in the current format")
    u.add_argument("log")
    u.add_argument("out")
    args = p.parse_args(argv)
    try:
        cat = catalogue_mod.load(args.catalogue)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "feed":
        return cmd_feed(args, cat)
    from engine.eventlog import log_exists
    log = getattr(args, "log", None)
    if log is not None and not log_exists(log):
        print(f"error: {log}: no such file", file=sys.stderr)
        return 2
    handler = {"verify": cmd_verify, "redrive": cmd_redrive, "re-drive": cmd_redrive,
               "whatif": cmd_whatif, "restore": cmd_restore, "upgrade": cmd_upgrade,
               "timeline": cmd_timeline}[args.cmd]
    return handler(args, cat)


def cmd_feed(args, cat) -> int:
    from replay.feed import FeedError, open_lines, run_feed
    try:
        lines = open_lines(args.file)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = EngineConfig(checkpoint_every=args.checkpoint_every)
    try:
        result = run_feed(lines, sys.stdout.buffer, cat, config, log_path=args.log,
                          fsync=args.fsync, risk=not args.no_risk, append=args.append)
    except FeedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    print(f"feed: {result.commands} commands, {result.events} events, "
          f"{len(result.errors)} bad lines", file=sys.stderr)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
