"""Read-only answers in Binance's shapes (decimal strings): positionRisk, account and balance,
for USDⓈ-M (/fapi) and COIN-M (/dapi), one row per position (per leg in hedge mode, with its
positionSide) and one per asset. Queries are not commands: they change nothing and are not
logged.

    position_risk(engine, account, symbol=None, product=None)  GET /fapi/v2|v3/positionRisk rows;
                           COIN-M positions in /dapi/v1/positionRisk's row shape (signed
                           `notionalValue` in the coin, `maxQty`; no `notional`: ccxt tells an
                           inverse row by that). product "USDM" / "COINM" keeps one kind.
    coinm_position_risk(engine, account, symbol=None, pair=None, margin_asset=None)
    account_info(engine, account)        GET /fapi/v2|v3/account: USD-M positions, `assets[]`
                                         per asset, totals (USDT's in Single-Asset mode, USD in
                                         Multi-Assets mode), multiAssetsMargin
    balances(engine, account)            GET /fapi/v2|v3/balance rows per asset
    coinm_account_info(engine, account)  GET /dapi/v1/account (assets[] and positions in coin)
    coinm_balances(engine, account)      GET /dapi/v1/balance
    multi_assets_margin(engine, account) GET /fapi/v1/multiAssetsMargin
    asset_index(engine, symbol=None)     GET /fapi/v1/assetIndex

`updateTime` of an asset row is the engine's time when the asset has a balance, a position or
an order, 0 otherwise (ccxt skips rows with 0, so an empty asset does not show). In Multi-Assets
mode every asset row's availableBalance is the account's uniAvailable in USD, as Binance's
example shows; maxWithdrawAmount stays per asset. A Multi-Assets position's liquidation price is
the mark of its symbol at which the account reaches 100 % with every other price held (exact
fractions here, in the view; the core never divides this way).
"""
from __future__ import annotations

from fractions import Fraction

from engine.core import Engine
from engine.core import collateral, inverse, risk
from engine.core.accounts import ISOLATED, Account, Position
from engine.core.fixed import SCALE, fmt


def _pool_lp(engine: Engine, acct: Account, pos: Position) -> int | None:
    """Single-Asset mode: the liquidation price of a cross position within its margin asset's
    pool (Binance's formula, both legs of a hedged symbol), or of an isolated one."""
    sym = engine.symbols[pos.symbol]
    table = sym.table_at(engine.time)
    size = sym.contract_size
    if pos.margin_type == ISOLATED:
        if size:
            return inverse.liquidation_price_legs(table, pos.isolated_margin, 0, 0,
                                                  [(pos.qty, pos.cost)], size)
        return risk.liquidation_price(table, pos.isolated_margin, 0, 0, pos.qty, pos.cost)
    wallet = acct.balance(pos.asset)
    other_mm = other_upnl = 0
    legs = []  # the cross positions of this symbol: both legs of a hedge account move with it
    for p in acct.positions.values():
        if p.asset != pos.asset:
            continue
        if p.margin_type == ISOLATED:
            wallet -= p.isolated_margin
        elif p.symbol == pos.symbol:
            legs.append((p.qty, p.cost))
        elif p.qty:
            s = engine.symbols[p.symbol]
            notional, upnl, _ = engine.ledger.position_figures(p, s)
            other_mm += s.table_at(engine.time).maint_margin(abs(notional))
            other_upnl += upnl
    if size:
        return inverse.liquidation_price_legs(table, wallet, other_mm, other_upnl, legs, size)
    return risk.liquidation_price_legs(table, wallet, other_mm, other_upnl, legs)


def _multi_lp(engine: Engine, acct: Account, pos: Position) -> int | None:
    """Multi-Assets mode: the mark of the position's symbol at which the account's maintenance
    margin (USD) equals its equity (USD), every other price held; tiers re-selected; half up.
    With x the mark (USD-M) or 1 / mark (COIN-M) the asset's equity and the symbol's MM are
    linear in x, so each case (the asset's equity positive: bid rate; negative: ask rate) is
    one linear equation."""
    ledger = engine.ledger
    sym = engine.symbols[pos.symbol]
    table = sym.table_at(engine.time)
    size = sym.contract_size
    asset = pos.asset
    equity, _, maint = ledger.asset_equities(acct)
    legs = [p for p in acct.positions.values() if p.symbol == pos.symbol and p.qty]
    for p in legs:
        _, upnl, _ = ledger.position_figures(p, sym)
        equity[asset] -= upnl
        maint[asset] -= table.maint_margin(abs(ledger.position_figures(p, sym)[0]))
    coll = engine.catalogue.collateral.at(engine.time)
    rest = Fraction(0)
    rest_mm = Fraction(0)
    for a, amount in equity.items():
        if a != asset:
            bid, ask = collateral.rates(coll, a, ledger.index_price(a))
            rest += Fraction(amount * (bid if amount >= 0 else ask), collateral.RATE_SCALE)
    for a, amount in maint.items():
        rest_mm += Fraction(amount * collateral.rates(coll, a, ledger.index_price(a))[1],
                            collateral.RATE_SCALE)
    bid, ask = (Fraction(r, collateral.RATE_SCALE) for r in ledger.rates(asset))
    if ask == 0:
        return None
    base = Fraction(equity[asset])  # the asset's equity without this symbol's PnL
    tiers = [table.tiers[0] for _ in legs]
    price = None
    for _ in range(2 * len(table.tiers) + 2):
        # asset equity e(x) = base + sum (a_i x + b_i); maintenance m(x) = sum (c_i x - cum_i)
        a = b = c = cum = Fraction(0)
        for p, tier in zip(legs, tiers):
            mmr = Fraction(tier.mmr, SCALE)
            if size:  # x = 1 / P: value -q s x, notional |q| s x (1e-8 units cancel: q s / P)
                a -= Fraction(p.qty * size)
                c += Fraction(abs(p.qty) * size) * mmr
            else:  # x = P (1e-8): value q x / 1e8
                a += Fraction(p.qty, SCALE)
                c += Fraction(abs(p.qty), SCALE) * mmr
            b -= p.cost
            cum += tier.cum
        x = None
        for rate in (bid, ask):  # rest + e(x) rate = rest_mm + (m(x)) ask
            coef = a * rate - c * ask
            if coef == 0:
                continue
            cand = (rest_mm - cum * ask - rest - (base + b) * rate) / coef
            e = base + a * cand + b
            if cand > 0 and (e >= 0) == (rate is bid):
                x = cand
                break
        if x is None:
            return None
        price_f = 1 / x if size else x
        price = int(price_f + Fraction(1, 2))
        if price <= 0:
            return None
        nxt = [table.tier_for(inverse.coin_value(p.qty, size, price) if size else
                              abs(p.qty) * price // SCALE) or table.tiers[-1] for p in legs]
        if all(t1 is t2 for t1, t2 in zip(nxt, tiers)):
            break
        tiers = nxt
    return price


def _lp(engine: Engine, acct: Account, pos: Position) -> int | None:
    if acct.multi_assets and pos.margin_type != ISOLATED:
        return _multi_lp(engine, acct, pos)
    return _pool_lp(engine, acct, pos)


def _ratio(engine: Engine, acct: Account, pos: Position) -> int:
    ledger = engine.ledger
    if pos.margin_type == ISOLATED:
        return ledger.isolated_risk(pos).ratio
    return ledger.cross_risk(acct, pos.asset).ratio


def _account(engine: Engine, account: int) -> Account:
    acct = engine.accounts.get(account)
    if acct is None:
        raise KeyError(f"unknown account {account}")
    return acct


def _coin_row(engine: Engine, acct: Account, pos: Position) -> dict:
    """One /dapi/v1/positionRisk row."""
    sym = engine.symbols[pos.symbol]
    notional, upnl, _ = engine.ledger.position_figures(pos, sym)
    table = sym.table_at(engine.time)
    lp = _lp(engine, acct, pos) if pos.qty else None
    isolated = pos.margin_type == ISOLATED
    return {
        "symbol": pos.symbol, "positionAmt": fmt(pos.qty), "entryPrice": fmt(pos.entry_price()),
        "markPrice": fmt(sym.ref_price()), "unRealizedProfit": fmt(upnl),
        "liquidationPrice": fmt(lp or 0), "leverage": str(pos.leverage),
        "maxQty": fmt(sym.max_notional(table, pos.leverage)),
        "marginType": "isolated" if isolated else "cross",
        "isolatedMargin": fmt(pos.isolated_margin + (upnl if isolated else 0)),
        "isAutoAddMargin": "false", "positionSide": pos.side,
        "notionalValue": fmt(notional), "isolatedWallet": fmt(pos.isolated_margin),
        "maintMargin": fmt(table.maint_margin(abs(notional)) if pos.qty else 0),
        "marginRatio": fmt(_ratio(engine, acct, pos)) if pos.qty else "0",
        "marginAsset": pos.asset,
        "updateTime": engine.time if pos.qty else 0,
    }


def position_risk(engine: Engine, account: int, symbol: str | None = None,
                  product: str | None = None) -> list[dict]:
    acct = _account(engine, account)
    out = []
    for key in sorted(acct.positions):
        pos = acct.positions[key]
        name = pos.symbol
        if symbol and name != symbol:
            continue
        sym = engine.symbols[name]
        if product is not None and (product == "COINM") != bool(sym.contract_size):
            continue
        if sym.contract_size:
            out.append(_coin_row(engine, acct, pos))
            continue
        notional, upnl, _ = engine.ledger.position_figures(pos, sym)
        mm = sym.table_at(engine.time).maint_margin(abs(notional)) if pos.qty else 0
        lp = _lp(engine, acct, pos) if pos.qty else None
        out.append({
            "symbol": name, "positionAmt": fmt(pos.qty), "entryPrice": fmt(pos.entry_price()),
            "markPrice": fmt(sym.ref_price()), "unRealizedProfit": fmt(upnl),
            "liquidationPrice": fmt(lp or 0), "leverage": str(pos.leverage),
            "marginType": "isolated" if pos.margin_type == ISOLATED else "cross",
            "isolatedMargin": fmt(pos.isolated_margin +
                                  (upnl if pos.margin_type == ISOLATED else 0)),
            "isolatedWallet": fmt(pos.isolated_margin), "notional": fmt(notional),
            "maintMargin": fmt(mm),
            "marginRatio": fmt(_ratio(engine, acct, pos)) if pos.qty else "0",
            "positionSide": pos.side,
        })
    return out


def coinm_position_risk(engine: Engine, account: int, symbol: str | None = None,
                        pair: str | None = None, margin_asset: str | None = None) -> list[dict]:
    """GET /dapi/v1/positionRisk (marginAsset or pair narrow it, as Binance's parameters)."""
    rows = position_risk(engine, account, symbol, product="COINM")
    return [r for r in rows
            if (pair is None or engine.symbols[r["symbol"]].spec.pair == pair) and
            (margin_asset is None or r["marginAsset"] == margin_asset)]


class _AssetFigures:
    """One asset's figures over the account's positions margined in it."""
    __slots__ = ("wallet", "upnl", "cross_upnl", "mm", "position_im", "order_im", "isolated",
                 "active")

    def __init__(self, wallet: int) -> None:
        self.wallet = wallet
        self.upnl = self.cross_upnl = self.mm = self.position_im = self.order_im = 0
        self.isolated = 0
        self.active = wallet != 0


def _asset_figures(engine: Engine, acct: Account, coin: bool | None) -> dict[str, _AssetFigures]:
    """Per asset: wallet, PnL, margins of its positions (coin: only COIN-M positions, False:
    only USD-M ones, None: all)."""
    out = {a: _AssetFigures(acct.balance(a)) for a in acct.assets()}
    for pos in acct.positions.values():
        sym = engine.symbols[pos.symbol]
        if coin is not None and coin != bool(sym.contract_size):
            continue
        f = out.get(pos.asset)
        if f is None:
            f = out[pos.asset] = _AssetFigures(0)
        notional, upnl, im = engine.ledger.position_figures(pos, sym)
        f.upnl += upnl
        f.order_im += pos.order_margin
        if pos.qty or pos.open_orders:
            f.active = True
        if pos.margin_type == ISOLATED:
            f.isolated += pos.isolated_margin
            f.position_im += pos.isolated_margin if pos.qty else 0
        elif pos.qty:
            f.cross_upnl += upnl
            f.position_im += im
        if pos.qty:
            f.mm += sym.table_at(engine.time).maint_margin(abs(notional))
    return out


def _asset_row(engine: Engine, acct: Account, asset: str, f: _AssetFigures,
               uni: int | None) -> dict:
    ledger = engine.ledger
    available = uni if uni is not None else ledger.available_balance(acct, asset)
    table = engine.catalogue.collateral.at(engine.time)
    return {
        "asset": asset, "walletBalance": fmt(f.wallet), "unrealizedProfit": fmt(f.upnl),
        "marginBalance": fmt(f.wallet + f.upnl), "maintMargin": fmt(f.mm),
        "initialMargin": fmt(f.position_im + f.order_im),
        "positionInitialMargin": fmt(f.position_im), "openOrderInitialMargin": fmt(f.order_im),
        "crossWalletBalance": fmt(f.wallet - f.isolated), "crossUnPnl": fmt(f.cross_upnl),
        "availableBalance": fmt(available),
        "maxWithdrawAmount": fmt(max(0, ledger.withdrawable(acct, asset))),
        "marginAvailable": table is not None and asset in table.assets,
        "updateTime": engine.time if f.active else 0,
    }


def account_info(engine: Engine, account: int) -> dict:
    """GET /fapi/v2/account (a superset of v3's): USD-M positions; totals of the USDT asset in
    Single-Asset mode, in USD in Multi-Assets mode."""
    acct = _account(engine, account)
    ledger = engine.ledger
    positions = []
    for key in sorted(acct.positions):
        pos = acct.positions[key]
        name = pos.symbol
        sym = engine.symbols[name]
        if sym.contract_size:
            continue
        notional, upnl, im = ledger.position_figures(pos, sym)
        mm = sym.table_at(engine.time).maint_margin(abs(notional)) if pos.qty else 0
        positions.append({
            "symbol": name, "initialMargin": fmt(im + pos.order_margin), "maintMargin": fmt(mm),
            "unrealizedProfit": fmt(upnl), "positionInitialMargin": fmt(im),
            "openOrderInitialMargin": fmt(pos.order_margin), "leverage": str(pos.leverage),
            "isolated": pos.margin_type == ISOLATED, "entryPrice": fmt(pos.entry_price()),
            "positionAmt": fmt(pos.qty), "notional": fmt(notional),
            "isolatedWallet": fmt(pos.isolated_margin), "positionSide": pos.side,
        })
    figures = _asset_figures(engine, acct, False)
    uni = None
    if acct.multi_assets:
        uni, equity, mm_usd = ledger.multi_assets_figures(acct)
        _, initial, _ = ledger.asset_equities(acct)
        im_usd = equity - uni
        prices = ledger.prices_for(acct.assets())
        totals = {
            "totalWalletBalance": fmt(collateral.net_value(
                {a: f.wallet for a, f in figures.items() if a in prices}, prices)),
            "totalUnrealizedProfit": fmt(collateral.net_value(
                {a: f.upnl for a, f in figures.items() if a in prices}, prices)),
            "totalMarginBalance": fmt(equity), "totalMaintMargin": fmt(mm_usd),
            "totalInitialMargin": fmt(im_usd), "availableBalance": fmt(uni),
            "maxWithdrawAmount": fmt(max(uni, 0)),
        }
    else:
        usdt = figures["USDT"]
        available = ledger.available_balance(acct)
        totals = {
            "totalWalletBalance": fmt(usdt.wallet), "totalUnrealizedProfit": fmt(usdt.upnl),
            "totalMarginBalance": fmt(usdt.wallet + usdt.upnl), "totalMaintMargin": fmt(usdt.mm),
            "totalInitialMargin": fmt(usdt.position_im + usdt.order_im),
            "availableBalance": fmt(available),
            "maxWithdrawAmount": fmt(max(0, min(available, usdt.wallet))),
        }
    assets = [_asset_row(engine, acct, a, f, uni) for a, f in figures.items()]
    return {**totals, "multiAssetsMargin": acct.multi_assets, "assets": assets,
            "positions": positions}


def balances(engine: Engine, account: int) -> list[dict]:
    """GET /fapi/v2/balance: one row per asset of the USD-M wallet."""
    acct = _account(engine, account)
    info = account_info(engine, account)
    return [{"accountAlias": f"perpengine{acct.account_id}", "asset": r["asset"],
             "balance": r["walletBalance"], "crossWalletBalance": r["crossWalletBalance"],
             "crossUnPnl": r["crossUnPnl"], "availableBalance": r["availableBalance"],
             "maxWithdrawAmount": r["maxWithdrawAmount"],
             "marginAvailable": r["marginAvailable"], "updateTime": r["updateTime"]}
            for r in info["assets"]]


def _coin_assets(engine: Engine, acct: Account) -> dict[str, _AssetFigures]:
    """The COIN-M wallet's assets: the margin assets of the COIN-M symbols (and any coin the
    account holds a COIN-M position in)."""
    figures = _asset_figures(engine, acct, True)
    coins = {s.asset for s in engine.symbols.values() if s.contract_size}
    return {a: f for a, f in sorted(figures.items()) if a in coins}


def coinm_account_info(engine: Engine, account: int) -> dict:
    """GET /dapi/v1/account: assets[] and positions, every amount in the coin."""
    acct = _account(engine, account)
    assets = []
    for asset, f in _coin_assets(engine, acct).items():
        row = _asset_row(engine, acct, asset, f, None)
        row.pop("marginAvailable")
        assets.append(row)
    positions = []
    for key in sorted(acct.positions):
        pos = acct.positions[key]
        sym = engine.symbols[pos.symbol]
        if not sym.contract_size:
            continue
        notional, upnl, im = engine.ledger.position_figures(pos, sym)
        table = sym.table_at(engine.time)
        positions.append({
            "symbol": pos.symbol, "positionAmt": fmt(pos.qty),
            "initialMargin": fmt(im + pos.order_margin),
            "maintMargin": fmt(table.maint_margin(abs(notional)) if pos.qty else 0),
            "unrealizedProfit": fmt(upnl), "positionInitialMargin": fmt(im),
            "openOrderInitialMargin": fmt(pos.order_margin), "leverage": str(pos.leverage),
            "isolated": pos.margin_type == ISOLATED, "positionSide": pos.side,
            "entryPrice": fmt(pos.entry_price()),
            "maxQty": fmt(sym.max_notional(table, pos.leverage)),
            "notionalValue": fmt(notional), "updateTime": engine.time if pos.qty else 0,
        })
    return {"assets": assets, "positions": positions, "canDeposit": True, "canTrade": True,
            "canWithdraw": True, "feeTier": 0, "updateTime": engine.time}


def coinm_balances(engine: Engine, account: int) -> list[dict]:
    """GET /dapi/v1/balance."""
    acct = _account(engine, account)
    out = []
    for asset, f in _coin_assets(engine, acct).items():
        row = _asset_row(engine, acct, asset, f, None)
        out.append({"accountAlias": f"perpengine{acct.account_id}", "asset": asset,
                    "balance": row["walletBalance"], "withdrawAvailable": row["maxWithdrawAmount"],
                    "crossWalletBalance": row["crossWalletBalance"],
                    "crossUnPnl": row["crossUnPnl"], "availableBalance": row["availableBalance"],
                    "updateTime": row["updateTime"]})
    return out


def multi_assets_margin(engine: Engine, account: int) -> dict:
    """GET /fapi/v1/multiAssetsMargin."""
    return {"multiAssetsMargin": _account(engine, account).multi_assets}


def asset_index(engine: Engine, symbol: str | None = None) -> dict | list[dict]:
    """GET /fapi/v1/assetIndex: each collateral asset's index and its bid/ask rates (rounded
    down to 8 decimals, as Binance's example shows). Without `symbol`, every asset of the
    collateral table in force that has an index price."""
    ledger = engine.ledger
    table = engine.catalogue.collateral.at(engine.time)
    names = sorted(table.assets) if table is not None else []

    def row(asset: str) -> dict:
        index = ledger.index_price(asset)
        bid, ask = ledger.rates(asset)
        item = table.assets.get(asset) if table is not None else None
        bid_buffer = SCALE - item.ratio if item is not None else SCALE
        ask_buffer = item.ask_buffer if item is not None else 0
        return {"symbol": asset + "USD", "time": engine.time, "index": fmt(index),
                "bidBuffer": fmt(bid_buffer), "askBuffer": fmt(ask_buffer),
                "bidRate": fmt(bid // SCALE), "askRate": fmt(ask // SCALE)}
    if symbol is not None:
        if not symbol.endswith("USD") or symbol[:-3] not in names:
            raise KeyError(f"unknown asset index {symbol}")
        return row(symbol[:-3])
    return [row(a) for a in names if ledger.index_price(a)]


__all__ = ["position_risk", "coinm_position_risk", "account_info", "balances",
           "coinm_account_info", "coinm_balances", "multi_assets_margin", "asset_index"]
