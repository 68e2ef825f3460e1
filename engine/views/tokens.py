"""Read-only answers for leveraged tokens and spot wallets, in Binance's shapes (decimal
strings). Queries change nothing and are not logged.

tokenInfo   GET /sapi/v1/blvt/tokenInfo: per token tokenName, description, underlying,
            tokenIssued, basket, currentBaskets, nav, realLeverage, fundingRate,
            dailyManagementFee, purchaseFeePct, dailyPurchaseLimit, redeemFeePct,
            dailyRedeemLimit, timestamp. `nav` and `realLeverage` are real-time (from the mark),
            `basket` and `currentBaskets` the issuer's whole position; `fundingRate` the last
            token funding rate. Extra fields: launched, spotSymbol, publishedNav (the latest
            NAV event, the one the spot price range uses), dailyPurchaseLimitLeft,
            dailyRedeemLimitLeft, and with an account userDailyTotalPurchaseLimit,
            userDailyPurchaseLimitLeft, userDailyTotalRedeemLimit, userDailyRedeemLimitLeft.
            The target leverage is not shown (seed 003 §6.2). Tokens of the catalogue not yet
            launched are listed with launched=false, no supply and their initial NAV.
userLimit   GET /sapi/v1/blvt/userLimit: the account's daily limits per token, with what is left.
spotAccount GET /api/v3/account's balances: [{asset, free, locked}] of the spot wallet.
Limits "left" are for the UTC day of the engine's latest command.
"""
from __future__ import annotations

from engine.core import Engine
from engine.core.fixed import fmt
from engine.core.token_specs import DOWN, nav_of, leverage_of
from engine.core.ledger import DAY_MS

_NAMES = {"BTC": "Bitcoin", "ETH": "Ethereum", "ADA": "Cardano", "LINK": "Chainlink",
          "BNB": "BNB", "XTZ": "Tezos", "EOS": "EOS", "TRX": "TRON", "DOT": "Polkadot",
          "XRP": "XRP"}


def _left(limit: int, used: int) -> str:
    return fmt(max(limit - used, 0))


def _one(engine: Engine, name: str, account: int | None) -> dict:
    spec = engine.catalogue.tokens[name]
    ts = engine.tokens.tokens.get(name)
    day = engine.time // DAY_MS
    if ts is not None:
        equity, notional, qty = engine.tokens.figures(ts)
        issued = ts.outstanding
        nav, lev = nav_of(equity, issued, ts.nav), leverage_of(notional, equity)
        used = ts.used(day, account if account is not None else 0)
        published, funding = ts.nav, ts.funding_rate
    else:
        notional = qty = issued = lev = funding = 0
        nav = published = spec.initial_nav
        used = (0, 0, 0, 0)
    low, high = fmt(spec.band_low), fmt(spec.band_high)
    out = {
        "tokenName": name,
        "description": f"{low}X-{high}X {'Short' if spec.side == DOWN else 'Long'} "
                       f"{_NAMES.get(spec.base_asset, spec.base_asset)} Token",
        "underlying": spec.base_asset,
        "tokenIssued": fmt(issued),
        "basket": f"{fmt(qty)} {spec.underlying} Futures",
        "currentBaskets": [{"symbol": spec.underlying, "amount": fmt(qty),
                            "notionalValue": fmt(notional)}],
        "nav": fmt(nav),
        "realLeverage": fmt(lev),
        "fundingRate": fmt(funding),
        "dailyManagementFee": "0",
        "purchaseFeePct": fmt(spec.subscription_fee),
        "dailyPurchaseLimit": fmt(spec.daily_subscribe_limit),
        "redeemFeePct": fmt(spec.redemption_fee),
        "dailyRedeemLimit": fmt(spec.daily_redeem_limit),
        "timestamp": engine.time,
        "launched": ts is not None,
        "spotSymbol": spec.spot_symbol,
        "publishedNav": fmt(published),
        "dailyPurchaseLimitLeft": _left(spec.daily_subscribe_limit, used[2]),
        "dailyRedeemLimitLeft": _left(spec.daily_redeem_limit, used[3]),
    }
    if account is not None:
        out.update(_user(spec, used))
    return out


def _user(spec, used) -> dict:
    return {"userDailyTotalPurchaseLimit": fmt(spec.user_daily_subscribe_limit),
            "userDailyPurchaseLimitLeft": _left(spec.user_daily_subscribe_limit, used[0]),
            "userDailyTotalRedeemLimit": fmt(spec.user_daily_redeem_limit),
            "userDailyRedeemLimitLeft": _left(spec.user_daily_redeem_limit, used[1])}


def token_info(engine: Engine, token: str | None = None, account: int | None = None) -> list[dict]:
    """A list, like Binance's (one element when `token` is given)."""
    if token is not None and token not in engine.catalogue.tokens:
        raise KeyError(f"unknown leveraged token {token}")
    if account is not None and account not in engine.accounts:
        raise KeyError(f"unknown account {account}")
    names = [token] if token is not None else list(engine.catalogue.tokens)
    return [_one(engine, n, account) for n in names]


def user_limit(engine: Engine, account: int, token: str | None = None) -> list[dict]:
    if account not in engine.accounts:
        raise KeyError(f"unknown account {account}")
    if token is not None and token not in engine.catalogue.tokens:
        raise KeyError(f"unknown leveraged token {token}")
    day = engine.time // DAY_MS
    out = []
    for name in ([token] if token is not None else engine.catalogue.tokens):
        spec = engine.catalogue.tokens[name]
        ts = engine.tokens.tokens.get(name)
        used = ts.used(day, account) if ts is not None else (0, 0, 0, 0)
        out.append({"tokenName": name, **_user(spec, used)})
    return out


def spot_account(engine: Engine, account: int) -> dict:
    if account not in engine.accounts:
        raise KeyError(f"unknown account {account}")
    w = engine.spot.wallet(account)
    balances = [{"asset": "USDT", "free": fmt(w.free_usdt()), "locked": fmt(w.usdt_locked)}]
    for token in sorted(w.tokens):
        locked = w.tokens_locked.get(token, 0)
        if w.tokens[token] or locked:
            balances.append({"asset": token, "free": fmt(w.tokens[token] - locked),
                             "locked": fmt(locked)})
    return {"accountType": "SPOT", "balances": balances}
