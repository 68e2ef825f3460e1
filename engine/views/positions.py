"""Read-only answers in Binance's shapes (decimal strings): positionRisk and account, one row
per position (per leg in hedge mode, with its positionSide). Queries are not commands: they
change nothing and are not logged."""
from __future__ import annotations

from engine.core import risk
from engine.core.accounts import ISOLATED, Account, Position
from engine.core import Engine
from engine.core.fixed import fmt


def _lp(engine: Engine, acct: Account, pos: Position) -> int | None:
    sym = engine.symbols[pos.symbol]
    table = sym.table_at(engine.time)
    if pos.margin_type == ISOLATED:
        return risk.liquidation_price(table, pos.isolated_margin, 0, 0, pos.qty, pos.cost)
    wallet = acct.wallet
    other_mm = other_upnl = 0
    legs = []  # the cross positions of this symbol: both legs of a hedge account move with it
    for p in acct.positions.values():
        if p.margin_type == ISOLATED:
            wallet -= p.isolated_margin
        elif p.symbol == pos.symbol:
            legs.append((p.qty, p.cost))
        elif p.qty:
            s = engine.symbols[p.symbol]
            notional, upnl, _ = engine.ledger.position_figures(p, s)
            other_mm += s.table_at(engine.time).maint_margin(abs(notional))
            other_upnl += upnl
    return risk.liquidation_price_legs(table, wallet, other_mm, other_upnl, legs)


def position_risk(engine: Engine, account: int, symbol: str | None = None) -> list[dict]:
    acct = engine.accounts.get(account)
    if acct is None:
        raise KeyError(f"unknown account {account}")
    out = []
    cross = engine.ledger.cross_risk(acct)
    for key in sorted(acct.positions):
        pos = acct.positions[key]
        name = pos.symbol
        if symbol and name != symbol:
            continue
        sym = engine.symbols[name]
        notional, upnl, _ = engine.ledger.position_figures(pos, sym)
        figures = engine.ledger.isolated_risk(pos) if pos.margin_type == ISOLATED else cross
        mm = sym.table_at(engine.time).maint_margin(abs(notional)) if pos.qty else 0
        lp = _lp(engine, acct, pos) if pos.qty else None
        out.append({
            "symbol": name, "positionAmt": fmt(pos.qty), "entryPrice": fmt(pos.entry_price()),
            "markPrice": fmt(sym.ref_price()), "unRealizedProfit": fmt(upnl),
            "liquidationPrice": fmt(lp or 0), "leverage": str(pos.leverage),
            "marginType": "isolated" if pos.margin_type == ISOLATED else "cross",
            "isolatedMargin": fmt(pos.isolated_margin + (upnl if pos.margin_type == ISOLATED else 0)),
            "isolatedWallet": fmt(pos.isolated_margin), "notional": fmt(notional),
            "maintMargin": fmt(mm), "marginRatio": fmt(figures.ratio) if pos.qty else "0",
            "positionSide": pos.side,
        })
    return out


def account_info(engine: Engine, account: int) -> dict:
    acct = engine.accounts.get(account)
    if acct is None:
        raise KeyError(f"unknown account {account}")
    total_upnl = total_mm = total_im = 0
    positions = []
    for key in sorted(acct.positions):
        pos = acct.positions[key]
        name = pos.symbol
        sym = engine.symbols[name]
        notional, upnl, im = engine.ledger.position_figures(pos, sym)
        mm = sym.table_at(engine.time).maint_margin(abs(notional)) if pos.qty else 0
        total_upnl += upnl
        total_mm += mm
        total_im += im + pos.order_margin
        positions.append({
            "symbol": name, "initialMargin": fmt(im + pos.order_margin), "maintMargin": fmt(mm),
            "unrealizedProfit": fmt(upnl), "positionInitialMargin": fmt(im),
            "openOrderInitialMargin": fmt(pos.order_margin), "leverage": str(pos.leverage),
            "isolated": pos.margin_type == ISOLATED, "entryPrice": fmt(pos.entry_price()),
            "positionAmt": fmt(pos.qty), "notional": fmt(notional),
            "isolatedWallet": fmt(pos.isolated_margin), "positionSide": pos.side,
        })
    available = engine.ledger.available_balance(acct)
    return {
        "totalWalletBalance": fmt(acct.wallet), "totalUnrealizedProfit": fmt(total_upnl),
        "totalMarginBalance": fmt(acct.wallet + total_upnl), "totalMaintMargin": fmt(total_mm),
        "totalInitialMargin": fmt(total_im), "availableBalance": fmt(available),
        "maxWithdrawAmount": fmt(max(0, min(available, acct.wallet))), "positions": positions,
    }
