"""Leveraged tokens (seed 003, SEED-NOTES §8) as catalogue data, and their pure arithmetic.

tokens.json lists BTCUP … XRPDOWN with the seed's daily limits; everything the seed does not
state (initial NAV, target leverage, NAV publication step, fees, hedge slippage, spot filters)
is a default marked "assumed". `load`/`from_doc` give {token name: TokenSpec}; the contract
catalogue (engine.catalogue) carries them as `Catalogue.tokens`, so every engine built from
one catalogue (core, risk-consumer projection, replays, snapshots) sees the same tokens.

Units: every amount, price, quantity and rate is an int of 1e-8 (engine.core.fixed). A token
quantity is 1e-8 tokens; a NAV is 1e-8 USDT per token.

The arithmetic (used by engine.core.tokens; no float anywhere):
    equity    = issuer's futures wallet + unrealized PnL of its basket at the mark
    leverage  = |basket notional at the mark| / equity          (1e-8, rounded down)
    NAV       = equity / tokens outstanding                     (1e-8 USDT, rounded down)
which is the seed's NAV = ((1 / actual leverage) x basket position x price) / issued tokens.
Because NAV is rounded down to 1e-8 USDT per token,
    NAV x outstanding <= equity < (NAV + 1e-8) x outstanding
i.e. the issuer's equity exceeds NAV x outstanding by less than 1e-8 USDT per token.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from engine.core import fixed
from engine.core.fixed import SCALE

DEFAULT_PATH = "tokens.json"
UP, DOWN = 1, -1

_DEFAULTS = {
    "initialNav": "10", "targetLeverage": "2", "leverageBand": ["1.5", "3"], "navStep": "0.001",
    "subscriptionFee": "0.001", "redemptionFee": "0.001", "minSubscription": "10",
    "hedgeSlippage": "0.01", "issuerLeverage": 4, "priceBand": "0.9", "tickSize": "0.0001",
    "stepSize": "0.01", "minQty": "0.01", "maxQty": "90000000", "minNotional": "5",
    "makerFee": "0.001", "takerFee": "0.001", "maxNumOrders": 200,
}


class TokenCatalogueError(ValueError):
    pass


@dataclass(frozen=True)
class TokenSpec:
    token: str  # "BTCUP"
    base_asset: str  # "BTC"
    underlying: str  # the basket's perpetual, "BTCUSDT"
    side: int  # UP (+1, long basket) or DOWN (-1, short basket)
    issuer: int  # the engine account holding the basket
    spot_symbol: str  # "BTCUPUSDT"
    daily_subscribe_limit: int  # tokens, platform-wide per UTC day
    user_daily_subscribe_limit: int
    daily_redeem_limit: int
    user_daily_redeem_limit: int
    initial_nav: int  # USDT per token before the first subscription
    target_leverage: int  # rebalances bring the actual leverage back to this (not disclosed)
    band_low: int  # rebalance when the actual leverage is < band_low or > band_high
    band_high: int
    nav_step: int  # publish NAV on a mark move when it moved by more than this fraction
    subscription_fee: int  # fraction of the subscription cost, paid on top of it
    redemption_fee: int  # fraction of the redemption value, deducted from it
    min_subscription: int  # USDT (Binance -13006 below it)
    hedge_slippage: int  # the issuer's orders are limit orders at mark x (1 +/- this)
    issuer_leverage: int  # the issuer's leverage setting on the underlying
    price_band: int  # spot limit orders within NAV x (1 -/+ this): 0.9 -> NAV 10 gives 1..19
    tick_size: int  # spot TOKEN/USDT filters
    step_size: int
    min_qty: int
    max_qty: int
    min_notional: int
    maker_fee: int
    taker_fee: int
    max_num_orders: int
    assumed: tuple[str, ...] = ()

    @property
    def side_name(self) -> str:
        return "UP" if self.side == UP else "DOWN"


def _decimals(units: int) -> int:
    d = 0
    while units % SCALE:
        units *= 10
        d += 1
    return d


def load(path: str | Path | None = None, symbols=None,
         overrides: dict | None = None) -> dict[str, TokenSpec]:
    if path is None:
        text = resources.files("engine.core").joinpath(DEFAULT_PATH).read_text()
    else:
        text = Path(path).read_text()
    return from_doc(json.loads(text), symbols, overrides)


def from_doc(doc: dict, symbols=None, overrides: dict | None = None) -> dict[str, TokenSpec]:
    """`symbols`: the contract symbols (a token whose underlying is not among them is left
    out). `overrides`: {"tokenDefaults": {...}, "tokens": [{"token": ..., ...}]} merged over."""
    defaults = {**_DEFAULTS, **doc.get("defaults", {})}
    rows = {t["token"]: t for t in doc.get("tokens", [])}
    if overrides:
        defaults.update(overrides.get("tokenDefaults", {}))
        for t in overrides.get("tokens", []):
            rows[t["token"]] = {**rows.get(t["token"], {}), **t}
    assumed_defaults = defaults.get("assumed", ())
    out: dict[str, TokenSpec] = {}
    issuers: set[int] = set()
    for name, t in rows.items():
        def val(key: str, _t=t):
            return _t.get(key, defaults.get(key))
        base = t["baseAsset"]
        underlying = t.get("underlying", base + "USDT")
        if symbols is not None and underlying not in symbols:
            continue
        side = {"UP": UP, "DOWN": DOWN}.get(t["side"])
        if side is None:
            raise TokenCatalogueError(f"{name}: side must be UP or DOWN")
        issuer = int(t["issuer"])
        if issuer in issuers:
            raise TokenCatalogueError(f"{name}: issuer account {issuer} used twice")
        issuers.add(issuer)
        low, high = (fixed.parse(x) for x in val("leverageBand"))
        target = fixed.parse(val("targetLeverage"))
        if not 0 < low <= target <= high:
            raise TokenCatalogueError(f"{name}: need 0 < band low <= target <= band high")
        issuer_leverage = int(val("issuerLeverage"))
        if issuer_leverage * SCALE <= high:
            raise TokenCatalogueError(f"{name}: issuerLeverage must exceed the band's top")
        tick, step = fixed.parse(val("tickSize")), fixed.parse(val("stepSize"))
        if _decimals(tick) + _decimals(step) > fixed.DECIMALS:
            raise TokenCatalogueError(f"{name}: tick and step decimals exceed {fixed.DECIMALS}")
        band = fixed.parse(val("priceBand"))
        if not 0 < band < SCALE:
            raise TokenCatalogueError(f"{name}: priceBand must be in (0, 1)")
        out[name] = TokenSpec(
            token=name, base_asset=base, underlying=underlying, side=side, issuer=issuer,
            spot_symbol=t.get("spotSymbol", name + "USDT"),
            daily_subscribe_limit=fixed.parse(t["dailySubscribeLimit"]),
            user_daily_subscribe_limit=fixed.parse(t["userDailySubscribeLimit"]),
            daily_redeem_limit=fixed.parse(t["dailyRedeemLimit"]),
            user_daily_redeem_limit=fixed.parse(t["userDailyRedeemLimit"]),
            initial_nav=fixed.parse(val("initialNav")), target_leverage=target,
            band_low=low, band_high=high, nav_step=fixed.parse(val("navStep")),
            subscription_fee=fixed.parse(val("subscriptionFee")),
            redemption_fee=fixed.parse(val("redemptionFee")),
            min_subscription=fixed.parse(val("minSubscription")),
            hedge_slippage=fixed.parse(val("hedgeSlippage")), issuer_leverage=issuer_leverage,
            price_band=band, tick_size=tick, step_size=step,
            min_qty=fixed.parse(val("minQty")), max_qty=fixed.parse(val("maxQty")),
            min_notional=fixed.parse(val("minNotional")),
            maker_fee=fixed.parse(val("makerFee")), taker_fee=fixed.parse(val("takerFee")),
            max_num_orders=int(val("maxNumOrders")),
            assumed=tuple(dict.fromkeys(list(t.get("assumed", ())) +
                                        [k for k in assumed_defaults if k not in t])),
        )
    return out


# == arithmetic ====================================================================================
def nav_of(equity: int, outstanding: int, fallback: int) -> int:
    """NAV in 1e-8 USDT per token, rounded down; `fallback` (the last published NAV) when no
    token is outstanding; 0 when the equity is gone."""
    if outstanding <= 0:
        return fallback
    if equity <= 0:
        return 0
    return equity * SCALE // outstanding


def leverage_of(notional: int, equity: int) -> int:
    """|notional| / equity in 1e-8, rounded down; 0 without a basket; 'infinite' (1 << 62)
    when the equity is gone."""
    if notional == 0:
        return 0
    if equity <= 0:
        return 1 << 62
    return abs(notional) * SCALE // equity


def round_step(qty_num: int, qty_den: int, step: int) -> int:
    """The quantity qty_num / qty_den (1e-8 units, any sign) rounded to the nearest multiple
    of `step`, half away from zero."""
    sign = -1 if (qty_num < 0) != (qty_den < 0) else 1
    num, den = abs(qty_num), abs(qty_den)
    steps, rem = divmod(num, den * step)
    if 2 * rem >= den * step:
        steps += 1
    return sign * steps * step


def within_band(price: int, nav: int, band: int) -> bool:
    """NAV x (1 - band) <= price <= NAV x (1 + band), exactly (the seed's 'exceed' excludes
    the bounds themselves: NAV 10 -> 1 and 19 are accepted)."""
    p = price * SCALE
    return nav * (SCALE - band) <= p <= nav * (SCALE + band)


def band_bounds(nav: int, band: int) -> tuple[int, int]:
    """The band's bounds rounded inward to 1e-8 (for messages and market-order limits)."""
    return -(-(nav * (SCALE - band)) // SCALE), nav * (SCALE + band) // SCALE
