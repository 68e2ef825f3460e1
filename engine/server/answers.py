"""What the native gateway answers: a command's reply once its record is in the log (the
order's state, or the events the asker may see) and the read queries (engine.views, run by the
sequencing loop between two commands). Lists are capped: LIST_CAP entries, EVENTS_CAP events."""
from __future__ import annotations

from typing import Any

import structlog

from engine.core import Engine
from engine.server import auth
from engine.server.streams import involved, own_events
from engine.views import funding as funding_views
from engine.views import markets as market_views
from engine.views import orders as order_views
from engine.views import positions as position_views
from engine.views import tokens as token_views
from proto import commands as C
from proto import events as V
from proto import json_edge
from proto.records import LogRecord

log = structlog.get_logger("gateway")

LIST_CAP = 1000  # entries in a list answer (openOrders)
EVENTS_CAP = 1000  # events listed in one command's reply
_ORDER_REJECTED = V.OrderRejected
_COMMAND_REJECTED = V.CommandRejected
_ORDER_EVENTS = frozenset({V.OrderAccepted, V.OrderModified, V.OrderCanceled})


def command_reply(req_id: Any, record: LogRecord, viewer: int | None) -> dict:
    """The reply to a command request once its record is logged: the order's state, or the
    events `viewer` may see (None: an admin or risk key, every event)."""
    events = record.events
    order = None  # the first order event: the order whose state answers
    for ev in events:
        t = type(ev)
        if t is _ORDER_REJECTED or t is _COMMAND_REJECTED:
            return {"id": req_id, "ok": False, "code": ev.code, "msg": ev.msg}
        if order is None and t in _ORDER_EVENTS:
            order = ev
    result: dict = {"seq": record.seq}
    cmd = record.command
    account = getattr(cmd, "account", None)
    if type(cmd) is C.CancelAllOrders:  # Binance's answer, and every order it cancelled
        ids = [e.order_id for e in events
               if type(e) is V.OrderCanceled and e.account == account]
        result.update(code=200, msg="The operation of cancel all open order is done.",
                      orders=[order_views.order_state(i, events, record.time)
                              for i in ids[:LIST_CAP]])
        return {"id": req_id, "ok": True, "result": result}
    # not a token issuer's hedge or rebalance order caused by someone else's command
    if order is not None and order.account == account:
        # the order's state says it all; its events go to the user stream
        result.update(order_views.order_state(order.order_id, events, record.time))
    else:
        shown = visible(events, viewer)
        result["events"] = shown[:EVENTS_CAP]
        if len(shown) > EVENTS_CAP:
            result["moreEvents"] = len(shown) - EVENTS_CAP
    return {"id": req_id, "ok": True, "result": result}


def visible(events: list, viewer: int | None) -> list[dict]:
    """Every event for an admin (viewer None); for an account, market data and its own
    events, a trade by its own side only."""
    if viewer is None:
        return [json_edge.to_wire(e) for e in events]
    out: list[dict] = []
    for ev in events:
        if involved(ev):
            out += own_events(ev, viewer)
        else:
            out.append(json_edge.to_wire(ev))
    return out


def query(engine: Engine, clock, depth_snapshot, req_id: Any, name: str, account: int | None,
          symbol: str | None, limit: Any) -> dict:
    """The answer to a read query, run by the sequencing loop between two commands;
    `depth_snapshot(symbol, limit)` is the gateway's cached depth answer."""
    try:
        if name == "depth":
            result: Any = depth_snapshot(symbol, limit)
        elif name == "time":  # the venue's clock (simulated under --clock sim)
            result = {"serverTime": clock(), "clock": getattr(clock, "describe", dict)()}
        elif name == "state":
            result = {"seq": engine.seq, "stateHash": engine.state_hash()}
        elif name == "premiumIndex":
            result = funding_views.premium_index(engine, symbol)
        elif name == "fundingRate":
            result = funding_views.funding_rate_history(engine, symbol, limit)
        elif name == "indexInfo":
            result = funding_views.composite_index(engine)
        elif name == "tokenInfo":
            result = token_views.token_info(engine, symbol, account)
        elif name == "userLimit":
            result = token_views.user_limit(engine, account, symbol)
        elif name == "spotAccount":
            result = token_views.spot_account(engine, account)
        elif name == "positionRisk":
            result = position_views.position_risk(engine, account, symbol)
        elif name == "account":
            result = position_views.account_info(engine, account)
        elif name == "balance":
            result = position_views.balances(engine, account)
        elif name == "multiAssetsMargin":
            result = position_views.multi_assets_margin(engine, account)
        elif name == "coinmAccount":
            result = position_views.coinm_account_info(engine, account)
        elif name == "coinmBalance":
            result = position_views.coinm_balances(engine, account)
        elif name == "coinmPositionRisk":
            result = position_views.coinm_position_risk(engine, account, symbol)
        elif name == "assetIndex":
            result = position_views.asset_index(engine, symbol)
        elif name == "coinmExchangeInfo":
            result = market_views.coinm_exchange_info(engine)
        elif name == "coinmLeverageBracket":
            result = market_views.coinm_leverage_brackets(engine, symbol)
        else:
            result = order_views.open_orders(engine, account, symbol, LIST_CAP)
    except KeyError as exc:
        return {"id": req_id, "ok": False, "code": auth.UNAUTHORISED,
                "msg": str(exc.args[0])}
    except Exception as exc:  # a read; the state is untouched
        log.exception("query failed", query=name)
        return {"id": req_id, "ok": False, "code": -1000,
                "msg": f"query failed: {type(exc).__name__}"}
    return {"id": req_id, "ok": True, "result": result}
