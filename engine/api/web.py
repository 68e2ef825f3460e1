"""The venue's web page: static files (engine/api/static/, served at `/` and under `/web/`)
and the public reads it needs beyond Binance's market data.

* `GET /` is the page (index.html); `GET /web/<file>` its scripts, styles and the vendored
  chart library. No build step and nothing fetched from elsewhere at run time: the files are
  read once, kept in memory (a fixed, small set) and served with a Content-Security-Policy
  that allows only this origin. Static files cost no request weight.
* `GET /fapi/v1/insuranceBalance` (Binance's, weight 1): the insurance fund per margin asset
  with the USDⓈ-M symbols it covers; with `symbol`, the group holding it.
* `GET /venue/v1/insurance` and `GET /venue/v1/adlTrades` (this venue's own, weight 1; not
  Binance endpoints): every insurance fund's balance and its recent changes, and recent
  auto-deleveraging trades, from the log's projection (engine.views.venue). They name no
  account.
"""
from __future__ import annotations

import json
from pathlib import Path

from engine.api.endpoint import NONE, Endpoint
from engine.core.fixed import fmt

STATIC = Path(__file__).parent / "static"
PREFIX = "/web/"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png"}
# only this origin: no CDN, no inline script; connect-src 'self' covers the WebSocket (ws://
# on the same host and port). Inline styles are allowed: the chart library sets some.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

_files: dict[str, tuple[bytes, str]] | None = None


def _load() -> dict[str, tuple[bytes, str]]:
    """Every file under static/ by its URL path, read once."""
    global _files
    if _files is None:
        files = {}
        for path in sorted(STATIC.rglob("*")):
            ctype = TYPES.get(path.suffix)
            if path.is_file() and ctype is not None:
                files[PREFIX + path.relative_to(STATIC).as_posix()] = (path.read_bytes(), ctype)
        files["/"] = files[PREFIX + "index.html"]
        _files = files
    return _files


def is_page(method: str, path: str) -> bool:
    return method == "GET" and (path == "/" or path.startswith(PREFIX))


def serve(path: str) -> tuple[int, bytes, dict[str, str]]:
    """(status, body, headers) of a static file; an unknown one is Binance's 404 shape."""
    found = _load().get(path)
    if found is None:
        return 404, json.dumps({"code": -1000, "msg": f"Path {path}, Method GET is invalid"}
                               ).encode(), {}
    body, ctype = found
    headers = {"Content-Type": ctype, "Cache-Control": "no-cache",
               "X-Content-Type-Options": "nosniff"}
    if ctype.startswith("text/html"):
        headers["Content-Security-Policy"] = CSP
    return 200, body, headers


# -- public reads -----------------------------------------------------------------------------------
def _limit(req, default: int, high: int) -> int:
    n = req.params.integer("limit", low=1, high=1 << 31)
    return default if n is None else min(n, high)


def _fund_groups(api, now: int) -> list[dict]:
    engine = api.engine
    by_asset: dict[str, list[str]] = {}
    for name, sym in sorted(engine.symbols.items()):
        if not sym.spec.inverse:
            by_asset.setdefault(sym.spec.margin_asset, []).append(name)
    return [{"symbols": names, "assets": [{
        "asset": asset, "marginBalance": fmt(engine.ledger.insurance(asset)),
        "updateTime": api.venue.updated.get(asset, 0)}]} for asset, names in by_asset.items()]


async def insurance_balance(api, req):
    symbol = req.params.symbol(api.engine.symbols, required=False)

    def read():
        groups = _fund_groups(api, req.now)
        if symbol is None:
            return groups
        for g in groups:
            if symbol in g["symbols"]:
                return g
        return {"symbols": [symbol], "assets": []}  # a COIN-M symbol: its fund is /dapi's
    return await api.read(read)


async def venue_insurance(api, req):
    limit = _limit(req, 500, 1000)

    def read():
        engine = api.engine
        assets = sorted({"USDT", *engine.ledger.other_insurance, *api.venue.funds})
        return {"funds": [{"asset": a, "balance": fmt(engine.ledger.insurance(a)),
                           "updateTime": api.venue.updated.get(a, 0)} for a in assets],
                "history": api.venue.insurance_rows(limit)}
    return await api.read(read)


async def venue_adl(api, req):
    symbol = req.params.symbol(api.engine.symbols, required=False)
    limit = _limit(req, 100, 1000)
    return await api.read(lambda: api.venue.adl_rows(limit, symbol))


ROUTES = [
    Endpoint("GET", "/fapi/v1/insuranceBalance", NONE, 1, insurance_balance),
    Endpoint("GET", "/venue/v1/insurance", NONE, 1, venue_insurance),
    Endpoint("GET", "/venue/v1/adlTrades", NONE, 1, venue_adl),
]
