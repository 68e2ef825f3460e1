"""Account and position settings, balances, positions, income (USER_DATA, signed) and the
user data stream's listen keys (USER_STREAM: the API key only), for /fapi (USDⓈ-M) and /dapi
(COIN-M). Hedge mode (positionSide/dual: one setting for both products, as Binance has it
since its COIN-M migration) and Multi-Assets mode (multiAssetsMargin) are commands through the
core, which answers Binance's codes (-4059, -4067, -4068; -4167 ... -4172)."""
from __future__ import annotations

import msgspec

from engine.api import errors as E
from engine.api.endpoint import COINM, SIGNED, USER_STREAM, Endpoint
from engine.core.fixed import fmt
from engine.views import binance as B
from engine.views import markets as market_views
from engine.views import positions as position_views
from proto import commands as C
from proto import events as V

INCOME_TYPES = frozenset({
    "TRANSFER", "WELCOME_BONUS", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION", "INSURANCE_CLEAR",
    "REFERRAL_KICKBACK", "COMMISSION_REBATE", "API_REBATE", "CONTEST_REWARD",
    "CROSS_COLLATERAL_TRANSFER", "OPTIONS_PREMIUM_FEE", "OPTIONS_SETTLE_PROFIT",
    "INTERNAL_TRANSFER", "AUTO_EXCHANGE", "DELIVERED_SETTELMENT", "COIN_SWAP_DEPOSIT",
    "COIN_SWAP_WITHDRAW", "POSITION_LIMIT_INCREASE_FEE", "STRATEGY_UMFUTURES_TRANSFER",
    "FEE_RETURN", "BFUSD_REWARD"})


async def _command(api, cmd, snapshot=None):
    record, result = await api.submit(cmd, snapshot)
    for ev in record.events:
        if type(ev) in (V.OrderRejected, V.CommandRejected):
            raise E.error(ev.code, ev.msg)
    return result


async def leverage(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    lev = p.integer("leverage", required=True, high=1 << 31)
    if not 1 <= lev <= 125:
        raise E.error(-4028, f"Leverage {lev} is not valid")

    def snap(record):
        return market_views.leverage_result(api.engine, req.account, symbol)
    return await _command(api, C.SetLeverage(account=req.account, symbol=symbol, leverage=lev),
                          snap)


async def margin_type(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    mt = p.raw("marginType")
    if mt is None:
        raise E.mandatory("marginType")
    mt = mt.upper()
    if mt not in ("ISOLATED", "CROSSED"):
        raise E.invalid_value("marginType")
    await _command(api, C.SetMarginType(account=req.account, symbol=symbol, margin_type=mt))
    return {"code": 200, "msg": "success"}


async def position_margin(api, req):
    p = req.params
    symbol = p.symbol(req.symbols)
    amount = p.decimal("amount", required=True)
    kind = p.integer("type", required=True)
    if kind not in (1, 2):
        raise E.invalid_value("type")
    side = p.raw("positionSide") or "BOTH"
    if side not in ("BOTH", "LONG", "SHORT"):
        raise E.error(-4060, "Invalid position side.")
    if not amount:
        raise E.error(-4055, "Amount must be positive.")
    await _command(api, C.AdjustIsolatedMargin(account=req.account, symbol=symbol,
                                               amount=amount, type=kind, position_side=side))
    return {"amount": msgspec.Raw(fmt(amount).encode()), "code": 200,
            "msg": "Successfully modify position margin.", "type": kind}


async def leverage_bracket(api, req):
    """/fapi/v1 (symbol optional; an object for one symbol), /dapi/v2 (symbol optional; a
    list), /dapi/v1 (pair optional: Binance's older pair-keyed form)."""
    p = req.params
    symbol = p.symbol(req.symbols, required=False)

    def read():
        if req.product != COINM:
            rows = B.leverage_brackets(api.engine, symbol, req.symbols)
            return rows[0] if symbol is not None else rows
        return market_views.coinm_leverage_brackets(api.engine, symbol)
    return await api.read(read)


async def coinm_leverage_bracket_by_pair(api, req):
    pair = req.params.raw("pair")
    pairs = {api.engine.symbols[s].spec.pair: s for s in req.symbols}
    if pair is not None and pair not in pairs:
        raise E.error(-4144, "Invalid pair")

    def read():
        rows = market_views.coinm_leverage_brackets(api.engine)
        out = [{"pair": api.engine.symbols[r["symbol"]].spec.pair, "brackets": r["brackets"]}
               for r in rows]
        return [r for r in out if pair is None or r["pair"] == pair]
    return await api.read(read)


async def position_mode_get(api, req):
    return await _account_read(lambda api_, r: {
        "dualSidePosition": api.engine.accounts[r.account].dual_side})(api, req)


async def position_mode_set(api, req):
    if "dualSidePosition" not in req.params:
        raise E.mandatory("dualSidePosition")
    dual = req.params.boolean("dualSidePosition")
    await _command(api, C.SetPositionMode(account=req.account, dual_side_position=dual))
    return {"code": 200, "msg": "success"}


async def multi_assets_get(api, req):
    return await _account_read(lambda api_, r: position_views.multi_assets_margin(
        api.engine, r.account))(api, req)


async def multi_assets_set(api, req):
    if "multiAssetsMargin" not in req.params:
        raise E.mandatory("multiAssetsMargin")
    on = req.params.boolean("multiAssetsMargin")
    await _command(api, C.SetMultiAssetsMargin(account=req.account, multi_assets_margin=on))
    return {"code": 200, "msg": "success"}


def _account_read(fn):
    async def handler(api, req):
        def read():
            if req.account not in api.engine.accounts:
                raise E.rejected_key()
            return fn(api, req)
        return await api.read(read)
    return handler


def _symbol_or_none(api, req):
    return req.params.symbol(req.symbols, required=False)


def _account_v(version):
    return _account_read(lambda api, req: B.account(api.engine, req.account, version,
                                                    req.symbols))


def _balance(api, req):
    return B.balance(api.engine, req.account)


def _coinm_account(api, req):
    return position_views.coinm_account_info(api.engine, req.account)


def _coinm_balance(api, req):
    return position_views.coinm_balances(api.engine, req.account)


async def coinm_position_risk(api, req):
    """GET /dapi/v1/positionRisk: `marginAsset` or `pair` narrow it (Binance's parameters)."""
    p = req.params
    margin_asset = p.raw("marginAsset")
    pair = p.raw("pair")

    def read():
        if req.account not in api.engine.accounts:
            raise E.rejected_key()
        return position_views.coinm_position_risk(api.engine, req.account, None, pair,
                                                  margin_asset)
    return await api.read(read)


def _position_risk(version):
    async def handler(api, req):
        symbol = _symbol_or_none(api, req)

        def read():
            if req.account not in api.engine.accounts:
                raise E.rejected_key()
            return B.position_risk(api.engine, req.account, symbol, version, req.symbols)
        return await api.read(read)
    return handler


async def income(api, req):
    p = req.params
    symbol = p.symbol(req.symbols, required=False)
    kind = p.raw("incomeType")
    if kind is not None and kind not in INCOME_TYPES:
        raise E.invalid_value("incomeType")
    start, end = p.integer("startTime"), p.integer("endTime")
    if start is not None and end is not None and end < start:
        raise E.error(-1023, "Start time is greater than end time.")
    page = p.integer("page", low=1, high=1 << 31) or 1
    limit = min(p.integer("limit", low=1, high=1 << 31) or 100, 1000)
    if start is None and end is None:
        start = req.now - 7 * 86_400_000

    coins = {api.engine.symbols[s].spec.margin_asset for s in api.symbols[COINM]}

    def mine(row) -> bool:
        """A row of this product: its symbol's, or a transfer of an asset it uses (every
        asset for USDⓈ-M; the coins for COIN-M)."""
        if row[0]:
            return row[0] in req.symbols
        return req.product != COINM or row[6] in coins

    def read():
        rows = [r for r in api.history.income_rows(req.account)
                if mine(r) and (symbol is None or r[0] == symbol) and
                (kind is None or r[1] == kind) and (start is None or r[3] >= start) and
                (end is None or r[3] <= end)]
        rows = rows[(page - 1) * limit:page * limit]
        return [{"symbol": r[0], "incomeType": r[1], "income": fmt(r[2]), "asset": r[6],
                 "info": r[1], "time": r[3], "tranId": r[4], "tradeId": r[5]} for r in rows]
    return await api.read(read)


async def commission_rate(api, req):
    symbol = req.params.symbol(req.symbols)
    return B.commission_rate(api.engine, symbol)


async def adl_quantile(api, req):
    symbol = _symbol_or_none(api, req)
    return await _account_read(lambda api_, r: B.adl_quantile(api.engine, r.account, symbol,
                                                              r.symbols))(api, req)


async def account_config(api, req):
    def read(api_, r):
        acct = api.engine.accounts[r.account]
        return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                "dualSidePosition": acct.dual_side, "updateTime": 0,
                "multiAssetsMargin": acct.multi_assets, "tradeGroupId": -1}
    return await _account_read(read)(api, req)


async def symbol_config(api, req):
    symbol = _symbol_or_none(api, req)

    def read():
        acct = api.engine.accounts.get(req.account)
        if acct is None:
            raise E.rejected_key()
        out = []
        names = [symbol] if symbol else sorted({p.symbol for p in acct.positions.values()
                                                if p.symbol in req.symbols})
        for name in names:
            pos = api.engine.ledger.symbol_settings(acct, name)
            sym = api.engine.symbols[name]
            lev = pos.leverage
            out.append({"symbol": name, "marginType": "ISOLATED" if
                        pos.margin_type == "ISOLATED" else "CROSSED",
                        "isAutoAddMargin": "false", "leverage": lev,
                        "maxNotionalValue": fmt(sym.max_notional(sym.table_at(api.engine.time),
                                                                 lev))})
        return out
    return await api.read(read)


# -- listen keys ---------------------------------------------------------------------------------------
# a key per account and product: /fapi's carries the USDⓈ-M user data, /dapi's the COIN-M one
async def listen_key_new(api, req):
    return {"listenKey": api.listen_keys.create((req.account, req.product), api.now())}


async def listen_key_keepalive(api, req):
    key = api.listen_keys.keepalive((req.account, req.product), api.now(),
                                    req.params.raw("listenKey"))
    if key is None:
        raise E.invalid_listen_key()
    return {"listenKey": key}


async def listen_key_delete(api, req):
    api.listen_keys.delete((req.account, req.product))
    return {}


def _ep(method, path, weight, handler, security=SIGNED):
    return Endpoint(method, path, security, weight, handler)


def _routes(prefix: str) -> list[Endpoint]:
    """What /fapi and /dapi share (their shapes follow the request's product)."""
    v1 = prefix + "/v1/"
    return [
        _ep("POST", v1 + "leverage", 1, leverage),
        _ep("POST", v1 + "marginType", 1, margin_type),
        _ep("POST", v1 + "positionMargin", 1, position_margin),
        _ep("GET", v1 + "positionSide/dual", 30, position_mode_get),
        _ep("POST", v1 + "positionSide/dual", 1, position_mode_set),
        _ep("GET", v1 + "income", 30, income),
        _ep("GET", v1 + "commissionRate", 20, commission_rate),
        _ep("GET", v1 + "adlQuantile", 5, adl_quantile),
        _ep("POST", v1 + "listenKey", 1, listen_key_new, USER_STREAM),
        _ep("PUT", v1 + "listenKey", 1, listen_key_keepalive, USER_STREAM),
        _ep("DELETE", v1 + "listenKey", 1, listen_key_delete, USER_STREAM),
    ]


ROUTES = _routes("/fapi") + _routes("/dapi") + [
    _ep("GET", "/fapi/v1/leverageBracket", 1, leverage_bracket),
    _ep("GET", "/fapi/v1/multiAssetsMargin", 30, multi_assets_get),
    _ep("POST", "/fapi/v1/multiAssetsMargin", 1, multi_assets_set),
    _ep("GET", "/fapi/v2/account", 5, _account_v(2)),
    _ep("GET", "/fapi/v3/account", 5, _account_v(3)),
    _ep("GET", "/fapi/v2/balance", 5, _account_read(_balance)),
    _ep("GET", "/fapi/v3/balance", 5, _account_read(_balance)),
    _ep("GET", "/fapi/v2/positionRisk", 5, _position_risk(2)),
    _ep("GET", "/fapi/v3/positionRisk", 5, _position_risk(3)),
    _ep("GET", "/fapi/v1/accountConfig", 5, account_config),
    _ep("GET", "/fapi/v1/symbolConfig", 5, symbol_config),
    # COIN-M: amounts in the coin, quantities in contracts
    _ep("GET", "/dapi/v1/account", 5, _account_read(_coinm_account)),
    _ep("GET", "/dapi/v1/balance", 1, _account_read(_coinm_balance)),
    _ep("GET", "/dapi/v1/positionRisk", 1, coinm_position_risk),
    _ep("GET", "/dapi/v2/leverageBracket", 1, leverage_bracket),
    _ep("GET", "/dapi/v1/leverageBracket", 1, coinm_leverage_bracket_by_pair),
]
