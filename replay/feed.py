"""`python -m replay feed FILE.jsonl|-`: commands as JSON lines in, events as JSON lines out.

Each input line is one command object: {"op": "newOrder", "account": 1, ...} with prices,
quantities and amounts as decimal strings, or a query, {"op": "query", "query": "positionRisk"
| "account", "account": 1, "symbol": "BTCUSDT"} (or balance, multiAssetsMargin, the COIN-M
coinmAccount, coinmBalance, coinmPositionRisk, premiumIndex, fundingRate, indexInfo,
assetIndex, coinmExchangeInfo, coinmLeverageBracket, tokenInfo, userLimit, spotAccount: see
answer_query), answered as one JSON line and never logged.

The risk consumer runs inline: after each record it looks at what changed, and the commands it
asks for (MarginCall, Liquidate) are sequenced right after, at the same time, so the same file
always gives the same log. An optional "time" (Unix ms or ISO-8601) stamps it;
without one the command takes the previous line's time (0 at the start), so a file always
replays identically. A line that is not a valid command prints an error line, reaches neither
the core nor the log, and the feed goes on with the next line.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from typing import IO, Iterable

from engine.views import funding as funding_queries
from engine.views import markets as market_queries
from engine.views import positions as queries
from engine.views import tokens as token_queries
from engine.core.catalogue import Catalogue
from engine.core import Engine, EngineConfig, snapshot
from engine.eventlog import LogReader, LogWriter, examine
from engine.recovery import restore
from engine.riskconsumer import RiskConsumer
from engine.sequencer import Pipeline
from engine.core.timeutil import iso, parse_iso_ms
from proto import json_edge
from replay.common import config_from_header


class FeedError(Exception):
    """The feed cannot start: an existing log without `append`, or one it cannot go on from."""


@dataclass
class FeedResult:
    commands: int = 0
    events: int = 0
    errors: list[tuple[int, int, str]] = field(default_factory=list)  # (line, code, msg)


def _line_time(obj: dict, previous: int) -> int:
    if "time" not in obj:
        return previous
    t = obj.pop("time")
    if isinstance(t, bool) or not isinstance(t, (int, str)):
        raise json_edge.BadInput("field 'time': Unix ms or an ISO-8601 string", -1102)
    if isinstance(t, str):
        try:
            return parse_iso_ms(t)
        except ValueError as exc:
            raise json_edge.BadInput(f"field 'time': {exc}", -1102) from None
    return t


ACCOUNT_QUERIES = {"positionRisk", "account", "userLimit", "spotAccount", "balance",
                   "multiAssetsMargin", "coinmAccount", "coinmBalance", "coinmPositionRisk"}
MARKET_QUERIES = {"premiumIndex", "fundingRate", "indexInfo", "tokenInfo", "assetIndex",
                  "coinmExchangeInfo", "coinmLeverageBracket"}


def answer_query(engine: Engine, obj: dict) -> dict:
    """{"op": "query", "query": NAME, ...}: positionRisk, account, userLimit (optional
    "tokenName") and spotAccount need "account"; premiumIndex, fundingRate (optional "limit"),
    indexInfo and tokenInfo (optional "tokenName", and "account" for its limits left) are
    market data."""
    name = obj.get("query")
    if name not in ACCOUNT_QUERIES | MARKET_QUERIES:
        raise json_edge.BadInput(f"unknown query {name!r}: one of "
                                 f"{sorted(ACCOUNT_QUERIES | MARKET_QUERIES)}", -1103)
    extra = set(obj) - {"op", "query", "account", "symbol", "limit", "tokenName"}
    if extra:
        raise json_edge.BadInput(f"unknown field `{sorted(extra)[0]}` in query", -1103)
    symbol = obj.get("symbol")
    account = obj.get("account")
    try:
        if name in ACCOUNT_QUERIES:
            if not isinstance(account, int) or isinstance(account, bool):
                raise json_edge.BadInput("query needs an integer 'account'", -1102)
            if name == "positionRisk":
                result = queries.position_risk(engine, account, symbol)
            elif name == "userLimit":
                result = token_queries.user_limit(engine, account, obj.get("tokenName"))
            elif name == "spotAccount":
                result = token_queries.spot_account(engine, account)
            elif name == "balance":
                result = queries.balances(engine, account)
            elif name == "multiAssetsMargin":
                result = queries.multi_assets_margin(engine, account)
            elif name == "coinmAccount":
                result = queries.coinm_account_info(engine, account)
            elif name == "coinmBalance":
                result = queries.coinm_balances(engine, account)
            elif name == "coinmPositionRisk":
                result = queries.coinm_position_risk(engine, account, symbol)
            else:
                result = queries.account_info(engine, account)
            return {"query": name, "account": account, "result": result}
        if name == "premiumIndex":
            result = funding_queries.premium_index(engine, symbol)
        elif name == "tokenInfo":
            if account is not None and (not isinstance(account, int) or isinstance(account, bool)):
                raise json_edge.BadInput("'account' must be an integer", -1102)
            result = token_queries.token_info(engine, obj.get("tokenName"), account)
        elif name == "fundingRate":
            result = funding_queries.funding_rate_history(engine, symbol, obj.get("limit", 100))
        elif name == "assetIndex":
            result = queries.asset_index(engine, symbol)
        elif name == "coinmExchangeInfo":
            result = market_queries.coinm_exchange_info(engine)
        elif name == "coinmLeverageBracket":
            result = market_queries.coinm_leverage_brackets(engine, symbol)
        else:
            result = funding_queries.composite_index(engine)
    except KeyError as exc:
        raise json_edge.BadInput(str(exc.args[0]), -1121 if name in MARKET_QUERIES else -2015) \
            from None
    return {"query": name, "result": result}


def _continued(log_path: str, catalogue: Catalogue) -> Engine:
    """The core rebuilt from a log the feed may go on from (else FeedError)."""
    damage = examine(log_path)
    if damage is not None:
        raise FeedError(f"{log_path} does not read to its end ({damage.describe()}): "
                        "`python -m replay verify` it first")
    reader = LogReader(log_path)
    reader.read_header()
    header = reader.header
    if header.catalogue_version != catalogue.version:
        raise FeedError(f"{log_path} was written with catalogue {header.catalogue_version}, "
                        f"not {catalogue.version}")
    engine, _ = restore(catalogue, log_path, None, config_from_header(header))
    return engine


def run_feed(lines: Iterable[str | bytes], out: IO[bytes], catalogue: Catalogue,
             config: EngineConfig | None = None, log_path: str | None = None,
             fsync: bool = False, batch: int = 1000, risk: bool = True,
             append: bool = False) -> FeedResult:
    existing = log_path is not None and os.path.exists(log_path) and \
        os.path.getsize(log_path) > 0
    if existing and not append:
        raise FeedError(f"{log_path} exists: give --append to go on from it, or another path")
    engine = _continued(log_path, catalogue) if existing else Engine(catalogue, config)
    engine_config = dataclasses.asdict(engine.config)
    writer = LogWriter(log_path, catalogue.version, fsync=fsync,
                       engine_config=engine_config) if log_path else None
    pipeline = Pipeline(engine, writer, risk=risk)
    if existing and risk:  # the consumer's own projection, from the same state
        pipeline.consumer = RiskConsumer(catalogue, engine.config,
                                         snapshot.restore(catalogue, snapshot.take(engine),
                                                          engine.config))
    result = FeedResult()
    now = start = engine.time
    unflushed = 0
    write = out.write
    try:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json_edge.parse_json(line)
                if not isinstance(obj, dict):
                    raise json_edge.BadInput("expected a JSON object", -1102)
                t = _line_time(obj, now)
                if t < start:
                    raise json_edge.BadInput(f"field 'time': {iso(t)} is before the log's last "
                                             f"record ({iso(start)})", -1102)
                now = t  # even if the rest of the line is refused
                if obj.get("op") == "query":
                    write(json_edge.dumps(answer_query(engine, obj)) + b"\n")
                    continue
                cmd = json_edge.decode_command(obj)
            except json_edge.BadInput as bad:
                result.errors.append((lineno, bad.code, bad.msg))
                write(json_edge.dumps({"error": {"line": lineno, "code": bad.code,
                                                 "msg": bad.msg}}) + b"\n")
                continue
            for record in pipeline.submit(cmd, t):
                result.commands += 1
                for ev in record.events:
                    write(json_edge.event_json(ev, seq=record.seq, time=record.time) + b"\n")
                result.events += len(record.events)
            unflushed += 1
            if unflushed >= batch:
                pipeline.flush()
                unflushed = 0
        pipeline.flush()
    finally:
        if writer is not None:
            writer.close()
    return result


def open_lines(path: str) -> Iterable[bytes]:
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")
