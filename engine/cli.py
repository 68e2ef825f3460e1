"""`python -m engine brackets|symbols|run`: the catalogue in Binance's shapes, and the engine."""
from __future__ import annotations

import argparse
import sys

import msgspec

from engine.core import catalogue as catalogue_mod
from engine.core import fixed
from engine.core.catalogue import BracketTable, Catalogue, SymbolSpec
from engine.core.timeutil import parse_iso_ms


class UsageError(Exception):
    pass


def _num(units: int) -> msgspec.Raw:
    """A scaled int as an exact JSON number (no float on the way)."""
    return msgspec.Raw(fixed.fmt(units).encode())


def brackets_json(spec: SymbolSpec, table: BracketTable) -> list[dict]:
    """Binance's GET /fapi/v1/leverageBracket response for one symbol."""
    return [{
        "symbol": spec.symbol,
        "brackets": [{
            "bracket": t.bracket,
            "initialLeverage": t.max_leverage,
            "notionalCap": _num(t.cap),
            "notionalFloor": _num(t.floor),
            "maintMarginRatio": _num(t.mmr),
            "cum": _num(t.cum),
        } for t in table.tiers],
    }]


def symbol_json(spec: SymbolSpec, table: BracketTable) -> dict:
    """One symbol with its filters, in the shape of Binance's exchangeInfo entries."""
    f = fixed.fmt
    return {
        "symbol": spec.symbol, "contractType": spec.contract_type,
        "underlyingType": spec.underlying_type, "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset, "marginAsset": spec.margin_asset,
        "maxLeverage": table.max_leverage, "bracketTable": table.name,
        "makerFee": f(spec.maker_fee), "takerFee": f(spec.taker_fee),
        "liquidationFee": f(spec.liquidation_fee),
        "fundingCap": f(spec.funding_cap) if spec.funding_cap is not None else "0.75 x tier-1 MMR",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": f(spec.min_price),
             "maxPrice": f(spec.max_price), "tickSize": f(spec.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": f(spec.min_qty), "maxQty": f(spec.max_qty),
             "stepSize": f(spec.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": f(spec.min_qty),
             "maxQty": f(spec.market_max_qty), "stepSize": f(spec.step_size)},
            {"filterType": "MIN_NOTIONAL", "notional": f(spec.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": f(spec.multiplier_up),
             "multiplierDown": f(spec.multiplier_down)},
            {"filterType": "MAX_NUM_ORDERS", "limit": spec.max_num_orders},
        ],
        "assumed": list(spec.assumed) + (["brackets"] if table.assumed else []),
    }


def symbols_table(cat: Catalogue, at: int) -> str:
    f = fixed.fmt
    head = ("symbol", "type", "tick", "step", "minQty", "maxQty", "minNotional", "band",
            "maxLev", "brackets", "fundingCap", "assumed")
    rows = [head]
    for sp in cat.symbols.values():
        t = sp.table_at(at)
        rows.append((sp.symbol, sp.contract_type, f(sp.tick_size), f(sp.step_size), f(sp.min_qty),
                     f(sp.max_qty), f(sp.min_notional),
                     f"{f(sp.multiplier_down)}-{f(sp.multiplier_up)}", f"{t.max_leverage}x",
                     t.name, f(sp.funding_cap) if sp.funding_cap is not None else "0.75xMMR1",
                     str(len(sp.assumed) + t.assumed)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + f"\n{len(rows) - 1} symbols, catalogue {cat.version}; " \
        "'assumed' counts values not stated by the seeds (see --json)"


def _at(text: str | None) -> int:
    if text is None:
        return 1 << 62  # far future: the table in force now
    try:
        return parse_iso_ms(text)
    except ValueError as exc:
        raise UsageError(f"bad --at: {exc}") from None


def _spec(cat: Catalogue, symbol: str) -> SymbolSpec:
    try:
        return cat.spec(symbol)
    except catalogue_mod.CatalogueError as exc:
        raise UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("brackets", help="leverage brackets in Binance's leverageBracket shape")
    b.add_argument("symbol")
    b.add_argument("--at", help="ISO-8601 time (default: now)")
    s = sub.add_parser("symbols", help="the catalogue with each symbol's filters")
    s.add_argument("--at", help="ISO-8601 time (default: now)")
    s.add_argument("--json", action="store_true", help="full JSON (exchangeInfo-like shape)")
    sub.add_parser("serve", help="the TCP server (see python -m engine serve --help)",
                   add_help=False)
    sub.add_parser("replica", help="a read-only replica of a JetStream log (queries, streams)",
                   add_help=False)
    if argv is None:
        argv = sys.argv[1:]
    sub.add_parser("newkey", help="an account, a deposit and an API key on a running server "
                   "(python -m engine newkey --help)", add_help=False)
    if argv[:1] == ["newkey"]:
        from engine.api.newkey import main as newkey_main
        return newkey_main(argv[1:])
    if argv[:1] == ["serve"]:
        from engine.server.app import main as serve_main
        return serve_main(argv[1:])
    if argv[:1] == ["replica"]:  # a read-only replica of a JetStream log
        from engine.server.replica import main as replica_main
        return replica_main(argv[1:])
    args = parser.parse_args(argv)
    cat = catalogue_mod.load()
    enc = msgspec.json.Encoder()
    try:
        if args.cmd == "brackets":
            spec = _spec(cat, args.symbol)
            sys.stdout.buffer.write(enc.encode(brackets_json(spec, spec.table_at(_at(args.at)))) + b"\n")
        elif args.cmd == "symbols":
            at = _at(args.at)
            if args.json:
                doc = {"catalogueVersion": cat.version,
                       "symbols": [symbol_json(sp, sp.table_at(at)) for sp in cat.symbols.values()]}
                sys.stdout.buffer.write(msgspec.json.format(enc.encode(doc), indent=1) + b"\n")
            else:
                print(symbols_table(cat, at))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
