"""The web page's files as the API serves them (no server needed), and the venue projection
behind its insurance-fund and ADL view. The page itself runs in a real browser in
tests/test_web.py (slow)."""
import io
import json
import re
from pathlib import Path

from engine.api import web
from engine.core import catalogue as catalogue_mod
from engine.core import Engine, EngineConfig
from engine.core.fixed import fmt
from engine.eventlog import LogReader
from engine.views.venue import VenueEvents
from proto import events as V
from replay.feed import run_feed

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "replay" / "examples"


def test_the_page_and_every_file_it_loads_are_served_from_this_origin():
    status, body, headers = web.serve("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self';" in csp
    html = body.decode()
    assert "http://" not in html and "https://" not in html  # no CDN, nothing from elsewhere
    loaded = re.findall(r'(?:src|href)="(/web/[^"]+)"', html)
    assert "/web/app.js" in loaded and \
        "/web/vendor/lightweight-charts.standalone.production.js" in loaded
    modules = set()
    for path in loaded:
        status, data, h = web.serve(path)
        assert status == 200, path
        assert h["Content-Type"].startswith(web.TYPES[Path(path).suffix]), path
        if path.endswith(".js") and "/vendor/" not in path:
            modules.add(path)
    seen = set()
    while modules:  # every module an ES import reaches is there, by a relative path
        path = modules.pop()
        seen.add(path)
        text = web.serve(path)[1].decode()
        for spec in re.findall(r'from "([^"]+)"', text):
            assert spec.startswith("./"), (path, spec)
            target = "/web/" + spec[2:]
            assert web.serve(target)[0] == 200, (path, target)
            if target not in seen:
                modules.add(target)
        assert "fetch(\"http" not in text and not re.search(r"console\.\w+\(", text)
    assert {"/web/app.js", "/web/api.js", "/web/dec.js", "/web/markets.js", "/web/symbol.js",
            "/web/account.js", "/web/risk.js", "/web/util.js"} <= seen
    licence = web.serve("/web/vendor/lightweight-charts-LICENSE.txt")
    assert licence[0] == 200 and b"Apache License" in licence[1]
    missing = web.serve("/web/../engine/api/app.py")
    assert missing[0] == 404 and json.loads(missing[1])["code"] == -1000
    assert web.is_page("GET", "/") and web.is_page("GET", "/web/x.js")
    assert not web.is_page("POST", "/") and not web.is_page("GET", "/fapi/v1/time")


def test_the_venue_projection_follows_the_insurance_funds_and_adl_trades(tmp_path):
    """The what-if example's liquidation (an ETHUSDT long auto-deleveraged against the short),
    with the insurance fund paid into first: the projection's balance is the core's, every ADL
    trade is listed with the liquidated side, and no account is named."""
    cat = catalogue_mod.load(overrides=json.loads(
        (EXAMPLES / "eth-table-at-start.json").read_text()))
    lines = (EXAMPLES / "eth-2022-09-12-session.jsonl").read_text().splitlines()
    lines.insert(6, json.dumps({"op": "fundInsurance", "amount": "250.5"}))
    log = tmp_path / "eth.log"
    result = run_feed(lines, io.BytesIO(), cat, EngineConfig(), log_path=str(log))
    assert not result.errors
    venue = VenueEvents()
    engine = Engine(cat, EngineConfig())
    adl_events = []
    for _, record in LogReader(log).records():
        engine.apply_record(record.seq, record.time, record.events)
        venue.apply(record)
        adl_events += [e for e in record.events if isinstance(e, V.AdlTrade)]
        assert venue.funds.get("USDT", 0) == engine.ledger.insurance("USDT")
    assert len(adl_events) == 1
    rows = venue.adl_rows(10)
    assert rows == [{"time": rows[0]["time"], "tradeId": adl_events[0].trade_id,
                     "symbol": "ETHUSDT", "side": "SELL", "price": fmt(adl_events[0].price),
                     "qty": "100"}]
    history = venue.insurance_rows(10)
    assert history[0]["type"] == "FUNDED" and history[0]["balance"] == "250.5"
    assert history[-1]["balance"] == fmt(engine.ledger.insurance("USDT"))
    assert all("account" not in r for r in rows + history)
