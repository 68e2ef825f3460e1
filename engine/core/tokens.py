"""Leveraged tokens (seed 003, SEED-NOTES §8): a part of the core (engine.core.engine). It
trades through the order part (engine.core.orders) and opens each token's spot book in the spot
part (engine.core.spot). Appliers (`_on_*`) are the only code that mutates state.

The issuer. Each token has a reserved engine account (tokens.json "issuer") created by
LaunchToken, with the token's issuer leverage on the underlying USDT perpetual. It holds the
basket: long for UP, short for DOWN, built only by ordinary orders through the core's own
path (`Orders.validate_new`: filters, leverage cap, margin; then `Orders.match` on the same
book), so it
trades with, pays fees to, and receives/pays funding like any account, and the risk
consumer watches it like any account.

NAV and leverage (engine.core.token_specs): equity = issuer wallet + unrealized PnL at the mark;
leverage = |notional| / equity; NAV = equity / tokens outstanding, rounded down to 1e-8 USDT.
That is the seed's ((1 / actual leverage) x basket x price) / issued tokens, and it makes
    NAV x outstanding <= issuer equity < (NAV + 1e-8) x outstanding
true by construction at every moment (the invariant the tests check).

Commands
    LaunchToken     AccountCreated (issuer), LeverageChanged, TokenLaunched, TokenNavUpdated.
    SubscribeToken  cost USDT -> amount = cost / real-time NAV (1e-8 token, rounded down);
                    the account pays amount x NAV (rounded up) + fee + hedge cost. Events: the
                    issuer's hedge order (LIMIT FOK at mark x (1 + slippage), or x (1 -) for a
                    DOWN basket) and its fills, then TokenSubscribed, TokenNavUpdated.
    RedeemToken     amount tokens -> value = amount x real-time NAV (rounded down); events: the
                    issuer's reduce-only FOK hedge and fills, TokenRedeemed, TokenNavUpdated.
  The hedge keeps the leverage: it trades basket x amount / outstanding (the nearest step); the
  first subscription (or an unhedged basket) trades to the target leverage instead. A hedge
  below the symbol's minimum quantity or notional is skipped: the cash waits for a rebalance.
  Hedge cost: the equity change the hedge's fills cause at the mark (their distance from the
  mark plus the taker fee) is charged to the subscriber/redeemer (`hedge_cost`), so flows do
  not move the NAV of the other holders (it can only rise, by rounding).
  Without liquidity: the hedge is checked first with the core's own order checks (FOK: the
  book must fill it within the slippage); if it would be refused, the subscription or
  redemption is rejected with the hedge's code (e.g. -5021) and a message naming the basket,
  and nothing changes. (The subscription's hedge is checked with its cash counted in: the cash
  lands in the same record, after the fills.)
  Daily limits (the seed's table, in tokens, per token and per account, subscription and
  redemption apart; the UTC day of the command's time, so they reset at 00:00 UTC): -13004 /
  -13005 (subscription: individual / total), -13001 / -13002 (redemption). Below the minimum
  subscription: -13006. No mark yet or the equity exhausted: -13003 / -13000.

After every command (Engine.handle -> `after_command`): for each token whose underlying's mark
moved in it, the real-time leverage is checked against the band; outside it (strictly: the
band's bounds are inside) the issuer rebalances: an IOC order to the target leverage at mark
+/- slippage (partial fills accepted; no order at all when the book has nothing within the
slippage: it is tried again at the next mark move), then TokenRebalanced and TokenNavUpdated.
Otherwise TokenNavUpdated when the NAV moved by more than nav_step (a fraction) of the last
published NAV. The target leverage appears in no event and no query.

Funding (`on_funding`, Pricing's settlement hook, after the symbol's FundingPaid): the
issuer's basket has just been paid/charged like every position. TokenFundingApplied records
token funding rate = sign(basket) x futures rate x actual leverage before the payment (rounded
toward zero), NAV before and after; NAV after = equity after / outstanding, which equals
NAV x (1 - token funding rate) up to the rounding of the payment and of the leverage: the NAV
change IS the issuer's funding payment divided by the tokens outstanding. Then TokenNavUpdated
(reason funding) and the band check.
"""
from __future__ import annotations

from engine.core import errors as E
from engine.core import token_specs as T
from engine.core.book import BUY, SELL, fillable
from engine.core.errors import Rejected
from engine.core.fixed import SCALE, div_trunc, fmt
from engine.core.ledger import DAY_MS, Applier, Ledger
from engine.core.markets import SymbolState
from engine.core.orders import Orders
from engine.core.spot import SpotDesk
from proto import commands as C
from proto import events as V
HEDGE_COST_SLACK = 100  # 1e-8 USDT: the per-fill fee rounding a subscription's check allows for


class TokenState:
    """A launched token: published NAV, supply, daily counters, spot fee tokens."""
    __slots__ = ("spec", "nav", "nav_time", "outstanding", "issued_total", "redeemed_total",
                 "day", "day_subscribed", "day_redeemed", "user_day", "funding_rate",
                 "launched_at")

    def __init__(self, spec: T.TokenSpec, nav: int, time: int) -> None:
        self.spec = spec
        self.nav = nav  # the latest published NAV (TokenNavUpdated)
        self.nav_time = time
        self.outstanding = 0
        self.issued_total = 0
        self.redeemed_total = 0
        self.day = -1  # the UTC day the counters below count (stale when another day)
        self.day_subscribed = 0
        self.day_redeemed = 0
        self.user_day: dict[int, list[int]] = {}  # account -> [subscribed, redeemed] that day
        self.funding_rate = 0  # the last token funding rate
        self.launched_at = time

    def used(self, day: int, account: int) -> tuple[int, int, int, int]:
        """(account subscribed, account redeemed, total subscribed, total redeemed) on `day`."""
        if self.day != day:
            return 0, 0, 0, 0
        u = self.user_day.get(account)
        sub, red = (u[0], u[1]) if u is not None else (0, 0)
        return sub, red, self.day_subscribed, self.day_redeemed

    def count(self, day: int, account: int, sub: int, red: int) -> None:
        if self.day != day:
            self.day = day
            self.day_subscribed = self.day_redeemed = 0
            self.user_day = {}
        u = self.user_day.get(account)
        if u is None:
            u = self.user_day[account] = [0, 0]
        u[0] += sub
        u[1] += red
        self.day_subscribed += sub
        self.day_redeemed += red


class TokenDesk:
    def __init__(self, ledger: Ledger, orders: Orders, spot: SpotDesk) -> None:
        self.ledger = ledger
        self.orders = orders
        self.spot = spot
        self.tokens: dict[str, TokenState] = {}  # launched tokens by name
        self.by_symbol: dict[str, list[TokenState]] = {}  # underlying -> its tokens, by name

    def handlers(self) -> dict[type, Applier]:
        return {C.LaunchToken: self._launch_token, C.SubscribeToken: self._subscribe_token,
                C.RedeemToken: self._redeem_token}

    def appliers(self) -> dict[type, Applier]:
        return {V.TokenLaunched: self._on_token_launched,
                V.TokenSubscribed: self._on_token_subscribed,
                V.TokenRedeemed: self._on_token_redeemed,
                V.TokenNavUpdated: self._on_token_nav,
                V.TokenFundingApplied: self._on_token_funding,
                V.TokenRebalanced: _ignore}

    # == figures ==================================================================================
    def figures(self, ts: TokenState) -> tuple[int, int, int]:
        """(issuer equity, signed basket notional at the mark, signed basket quantity)."""
        spec = ts.spec
        acct = self.ledger.accounts[spec.issuer]
        pos = acct.positions.get(spec.underlying)
        if pos is None or not pos.qty:
            return acct.wallet, 0, 0
        mark = self.ledger.symbols[spec.underlying].mark
        notional = pos.qty * mark // SCALE if mark else pos.cost
        return acct.wallet + notional - pos.cost, notional, pos.qty

    def token_nav(self, ts: TokenState) -> tuple[int, int]:
        """Real-time (NAV, actual leverage)."""
        equity, notional, _ = self.figures(ts)
        return T.nav_of(equity, ts.outstanding, ts.nav), T.leverage_of(notional, equity)

    def _launched(self, name: str) -> TokenState:
        ts = self.tokens.get(name)
        if ts is None:
            if name in self.ledger.catalogue.tokens:
                raise Rejected(E.INVALID_SYMBOL,
                               msg=f"Token {name} is not launched: send launchToken.")
            raise Rejected(E.INVALID_SYMBOL, msg=f"Unknown leveraged token {name!r}.")
        return ts

    @staticmethod
    def _hedge_price(sym: "SymbolState", side: str, slippage: int) -> int:
        """The issuer's limit: mark x (1 + slippage) for a buy (down to the tick), mark x
        (1 - slippage) for a sell (up to the tick)."""
        spec = sym.spec
        tick, low = spec.tick_size, spec.min_price
        if side == BUY:
            p = sym.mark * (SCALE + slippage) // SCALE
            return min(low + max(p - low, 0) // tick * tick, spec.max_price)
        p = -(-(sym.mark * (SCALE - slippage)) // SCALE)
        return max(low + -(-(p - low) // tick) * tick, low)

    def _flow_hedge(self, ts: TokenState, sym: "SymbolState", qty: int, amount: int,
                    equity_after: int, redeem: bool) -> tuple[C.NewOrder, int] | None:
        """The issuer's order for a subscription or redemption of `amount` tokens, and a bound
        on its cost; None when there is nothing (big enough) to trade."""
        spec, sspec = ts.spec, sym.spec
        n0 = ts.outstanding
        step = sspec.step_size
        if redeem:
            delta = -qty if amount == n0 else -T.round_step(qty * amount, n0, step)
        elif qty and n0:
            delta = T.round_step(qty * amount, n0, step)
        else:  # the first tokens, or an unhedged basket: to the target leverage
            delta = T.round_step(spec.side * spec.target_leverage * equity_after, sym.mark,
                                 step) - qty
        size = abs(delta)
        if size < sspec.min_qty:
            return None
        side = BUY if delta > 0 else SELL
        price = self._hedge_price(sym, side, spec.hedge_slippage)
        notional = size * price // SCALE
        if not redeem and notional < sspec.min_notional:
            return None
        bound = -(-(size * abs(price - sym.mark)) // SCALE) + \
            -(-(notional * sspec.taker_fee) // SCALE) + HEDGE_COST_SLACK
        return C.NewOrder(account=spec.issuer, symbol=spec.underlying, side=side, type="LIMIT",
                          quantity=size, price=price, time_in_force="FOK", reduce_only=redeem,
                          self_trade_prevention_mode="NONE"), bound

    def _issuer_trade(self, ts: TokenState, accepted: V.OrderAccepted,
                      before: int) -> int:
        """Send a validated issuer order through the book; returns its cost: the issuer's
        equity `before` minus after (fills vs the mark, fees)."""
        self.ledger.emit(accepted)
        if not accepted.rest:
            self.orders.match(self.ledger.pending[accepted.order_id])
        return before - self.figures(ts)[0]

    # == commands =================================================================================
    def _launch_token(self, cmd: C.LaunchToken) -> None:
        name = cmd.token_name
        spec = self.ledger.catalogue.tokens.get(name)
        reject = self.ledger.reject_command
        if spec is None:
            return reject(cmd, Rejected(E.INVALID_SYMBOL, msg=f"Unknown leveraged token {name!r}."))
        if name in self.tokens:
            return reject(cmd, Rejected(E.INVALID_VALUE, msg=f"Token {name} is already launched."))
        if spec.issuer in self.ledger.accounts:
            return reject(cmd, Rejected(E.INVALID_VALUE, msg=f"The issuer account {spec.issuer} "
                                                             f"of {name} is taken."))
        table = self.ledger.symbols[spec.underlying].table_at(self.ledger.time)
        if not 1 <= spec.issuer_leverage <= table.max_leverage:
            return reject(cmd, Rejected(E.INVALID_LEVERAGE,
                                        msg=f"issuerLeverage {spec.issuer_leverage} is not valid "
                                            f"for {spec.underlying}."))
        self.ledger.emit(V.AccountCreated(account=spec.issuer, registered_at=self.ledger.time))
        self.ledger.emit(V.LeverageChanged(account=spec.issuer, symbol=spec.underlying,
                                           leverage=spec.issuer_leverage))
        self.ledger.emit(V.TokenLaunched(token_name=name, account=spec.issuer,
                                         symbol=spec.underlying,
                                         side=spec.side_name, spot_symbol=spec.spot_symbol,
                                         nav=spec.initial_nav))
        self.ledger.emit(V.TokenNavUpdated(token_name=name, nav=spec.initial_nav, real_leverage=0,
                                           basket=0, issued=0, reason="launch"))

    def _subscribe_token(self, cmd: C.SubscribeToken) -> None:
        try:
            ts = self._launched(cmd.token_name)
            self.ledger.account(cmd.account)
            self.spot.check_not_issuer(cmd.account)
            spec = ts.spec
            sym = self.ledger.symbols[spec.underlying]
            if cmd.cost < spec.min_subscription:
                raise Rejected(E.BLVT_PURCHASE_LESS_MIN_AMOUNT,
                               msg=f"Subscription amount is too small: at least "
                               f"{fmt(spec.min_subscription)} USDT.")
            if not sym.mark:
                raise Rejected(E.BLVT_FORBID_PURCHASE,
                               msg=f"Subscription of the token is forbidden now: no mark price for "
                               f"{spec.underlying} yet.")
            equity, _, qty = self.figures(ts)
            n0 = ts.outstanding
            if n0:
                if equity <= 0:
                    raise Rejected(E.BLVT_FORBID_PURCHASE,
                                   msg="Subscription of the token is forbidden "
                                   "now: the basket's equity is exhausted.")
                amount = cmd.cost * n0 // equity
                paid = -(-(amount * equity) // n0)
                nav = equity * SCALE // n0
            else:
                nav = ts.nav
                if nav <= 0:
                    raise Rejected(E.BLVT_FORBID_PURCHASE,
                                   msg="Subscription of the token is forbidden "
                                   "now: its NAV is 0.")
                amount = cmd.cost * SCALE // nav
                paid = -(-(amount * nav) // SCALE)
            if amount <= 0:
                raise Rejected(E.BLVT_PURCHASE_LESS_MIN_AMOUNT,
                               msg="Subscription amount is too small.")
            fee = -(-(paid * spec.subscription_fee) // SCALE)
            user, _, total, _ = ts.used(self.ledger.time // DAY_MS, cmd.account)
            if user + amount > spec.user_daily_subscribe_limit:
                raise Rejected(E.BLVT_EXCEED_DAILY_PURCHASE_LIMIT, msg=_limit_msg(
                    "individual 24h subscription", ts, amount, user,
                    spec.user_daily_subscribe_limit))
            if total + amount > spec.daily_subscribe_limit:
                raise Rejected(E.BLVT_EXCEED_TOKEN_DAILY_PURCHASE_LIMIT, msg=_limit_msg(
                    "total 24h subscription", ts, amount, total, spec.daily_subscribe_limit))
            hedge = self._flow_hedge(ts, sym, qty, amount, equity + paid, redeem=False)
            bound = hedge[1] if hedge is not None else 0
            free = self.spot.wallet(cmd.account).free_usdt()
            if paid + fee + bound > free:
                raise Rejected(E.BALANCE_INSUFFICIENT,
                               msg=f"Insufficient spot USDT: {fmt(paid + fee + bound)} needed "
                                   f"(cost {fmt(paid)}, fee {fmt(fee)}, hedge cost at most "
                                   f"{fmt(bound)}), {fmt(free)} free.")
            accepted = None
            if hedge is not None:
                issuer = self.ledger.accounts[spec.issuer]
                # trial (restored below, as setLeverage tries a leverage): the hedge is checked
                # with the subscription's cash counted in; that cash lands in this same record
                issuer.wallet += paid
                try:
                    accepted = self.orders.validate_new(hedge[0])
                except Rejected as r:
                    raise Rejected(r.code, msg=f"Subscription rejected: the issuer's "
                                   f"{spec.underlying} basket order ({hedge[0].side} "
                                   f"{fmt(hedge[0].quantity)}) was refused: "
                                   f"{r.msg}") from None
                finally:
                    issuer.wallet -= paid
        except Rejected as r:
            return self.ledger.reject_command(cmd, r)
        cost = self._issuer_trade(ts, accepted, equity) if accepted is not None else 0
        cost = min(cost, free - paid - fee)  # beyond the bound (> 100 fills): the fund's
        self.ledger.emit(V.TokenSubscribed(token_name=ts.spec.token, account=cmd.account,
                                           counterparty=ts.spec.issuer, amount=amount, cost=paid,
                                           fee=fee,
                                           hedge_cost=cost, nav=nav))
        figures = self.figures(ts)
        self._token_publish(ts, "subscription", figures)
        self._token_check_band(ts, figures)

    def _redeem_token(self, cmd: C.RedeemToken) -> None:
        try:
            ts = self._launched(cmd.token_name)
            self.ledger.account(cmd.account)
            self.spot.check_not_issuer(cmd.account)
            spec = ts.spec
            sym = self.ledger.symbols[spec.underlying]
            amount = cmd.amount
            if amount <= 0:
                raise Rejected(E.INVALID_VALUE, msg="Redemption amount must be positive.")
            free = self.spot.wallet(cmd.account).free_token(spec.token)
            if amount > free:
                raise Rejected(E.BALANCE_INSUFFICIENT,
                               msg=f"Insufficient {spec.token}: {fmt(free)} free.")
            if not sym.mark:
                raise Rejected(E.BLVT_FORBID_REDEEM,
                               msg=f"Redemption of the token is forbidden now: "
                               f"no mark price for {spec.underlying} yet.")
            equity, _, qty = self.figures(ts)
            n0 = ts.outstanding
            if equity <= 0:
                raise Rejected(E.BLVT_FORBID_REDEEM,
                               msg="Redemption of the token is forbidden now: "
                               "the basket's equity is exhausted.")
            _, user, _, total = ts.used(self.ledger.time // DAY_MS, cmd.account)
            if user + amount > spec.user_daily_redeem_limit:
                raise Rejected(E.BLVT_EXCEED_DAILY_LIMIT, msg=_limit_msg(
                    "individual 24h redemption", ts, amount, user, spec.user_daily_redeem_limit))
            if total + amount > spec.daily_redeem_limit:
                raise Rejected(E.BLVT_EXCEED_TOKEN_DAILY_LIMIT, msg=_limit_msg(
                    "total 24h redemption", ts, amount, total, spec.daily_redeem_limit))
            value = amount * equity // n0
            fee = -(-(value * spec.redemption_fee) // SCALE)
            hedge = self._flow_hedge(ts, sym, qty, amount, equity - value, redeem=True) \
                if qty else None
            accepted = None
            if hedge is not None:
                try:
                    accepted = self.orders.validate_new(hedge[0])
                except Rejected as r:
                    raise Rejected(r.code,
                                   msg=f"Redemption rejected: the issuer's {spec.underlying} "
                                   f"basket order ({hedge[0].side} "
                                   f"{fmt(hedge[0].quantity)}) was refused: "
                                   f"{r.msg}") from None
        except Rejected as r:
            return self.ledger.reject_command(cmd, r)
        cost = self._issuer_trade(ts, accepted, equity) if accepted is not None else 0
        cost = min(cost, value - fee)  # the account never pays in to redeem
        self.ledger.emit(V.TokenRedeemed(token_name=spec.token, account=cmd.account,
                                         counterparty=spec.issuer, amount=amount, value=value,
                                         fee=fee,
                                         hedge_cost=cost, nav=equity * SCALE // n0))
        figures = self.figures(ts)
        self._token_publish(ts, "redemption", figures)
        self._token_check_band(ts, figures)

    # == NAV, band, rebalancing ===================================================================
    def _token_publish(self, ts: TokenState, reason: str,
                       figures: tuple[int, int, int] | None = None) -> None:
        equity, notional, qty = figures or self.figures(ts)
        self.ledger.emit(V.TokenNavUpdated(token_name=ts.spec.token,
                                           nav=T.nav_of(equity, ts.outstanding, ts.nav),
                                           real_leverage=T.leverage_of(notional, equity),
                                           basket=qty,
                                           issued=ts.outstanding, reason=reason))

    def after_command(self, out: list[V.Event]) -> None:
        """Called by Engine.handle after every command while tokens exist: tokens whose
        underlying's mark moved get the band check and, if no rebalance, the NAV step check."""
        symbols = self.by_symbol
        moved: list[str] = []
        for ev in out:
            if type(ev) is V.MarkPriceUpdated and ev.symbol in symbols and ev.symbol not in moved:
                moved.append(ev.symbol)
        for s in moved:
            for ts in symbols[s]:
                self._token_on_mark(ts)

    def _token_on_mark(self, ts: TokenState) -> None:
        figures = self.figures(ts)
        if self._token_check_band(ts, figures) or not ts.outstanding:
            return
        equity = figures[0]
        nav = T.nav_of(equity, ts.outstanding, ts.nav)
        published = ts.nav
        if abs(nav - published) * SCALE > ts.spec.nav_step * published:
            self._token_publish(ts, "mark", figures)

    def _token_check_band(self, ts: TokenState,
                          figures: tuple[int, int, int] | None = None) -> bool:
        """Rebalance if the actual leverage is outside the band (or a basket is left with no
        token outstanding); True if the issuer traded."""
        equity, notional, qty = figures or self.figures(ts)
        if ts.outstanding:
            lev = T.leverage_of(notional, equity)
            if ts.spec.band_low <= lev <= ts.spec.band_high:
                return False
        elif not qty:
            return False
        return self._token_rebalance(ts, equity, notional, qty)

    def _token_rebalance(self, ts: TokenState, equity: int, notional: int,
                         qty: int) -> bool:
        spec = ts.spec
        sym = self.ledger.symbols[spec.underlying]
        if not sym.mark:
            return False
        sspec = sym.spec
        if ts.outstanding and equity > 0:
            target = T.round_step(spec.side * spec.target_leverage * equity, sym.mark,
                                  sspec.step_size)
        else:
            target = 0
        delta = target - qty
        size = abs(delta)
        if size < sspec.min_qty:
            return False
        side = BUY if delta > 0 else SELL
        price = self._hedge_price(sym, side, spec.hedge_slippage)
        reduce_only = qty != 0 and abs(target) < abs(qty) and \
            (target == 0 or (target > 0) == (qty > 0))
        if not reduce_only and size * price // SCALE < sspec.min_notional:
            return False
        if not fillable(sym.book, side, price, size):
            return False  # nothing within the slippage: tried again at the next mark move
        order = C.NewOrder(account=spec.issuer, symbol=spec.underlying, side=side, type="LIMIT",
                           quantity=size, price=price, time_in_force="IOC",
                           reduce_only=reduce_only, self_trade_prevention_mode="NONE")
        try:
            accepted = self.orders.validate_new(order)
        except Rejected:
            return False
        self._issuer_trade(ts, accepted, equity)
        after = self.figures(ts)
        self.ledger.emit(V.TokenRebalanced(token_name=spec.token, symbol=spec.underlying,
                                           order_id=accepted.order_id,
                                           leverage_before=T.leverage_of(notional, equity),
                                           leverage_after=T.leverage_of(after[1], after[0]),
                                           basket_before=qty, basket_after=after[2]))
        self._token_publish(ts, "rebalance", after)
        return True

    # == funding (Pricing.on_settled, after a symbol's FundingPaid events) ========================
    def on_funding(self, symbol: str, due: int, rate: int,
                   payments: list[tuple[int, int, int]]) -> None:
        tokens = self.by_symbol.get(symbol)
        if not tokens:
            return
        paid = {aid: amount for aid, amount, _ in payments}
        for ts in tokens:
            if not ts.outstanding:
                continue
            amount = paid.get(ts.spec.issuer, 0)
            figures = self.figures(ts)
            equity, notional, qty = figures
            before = equity - amount
            lev = T.leverage_of(notional, before) if before > 0 else 0
            sign = (qty > 0) - (qty < 0)
            self.ledger.emit(V.TokenFundingApplied(
                token_name=ts.spec.token, symbol=symbol, funding_time=due, funding_rate=rate,
                token_funding_rate=div_trunc(sign * rate * lev, SCALE), real_leverage=lev,
                amount=amount, nav_before=T.nav_of(before, ts.outstanding, ts.nav),
                nav_after=T.nav_of(equity, ts.outstanding, ts.nav)))
            self._token_publish(ts, "funding", figures)
            self._token_check_band(ts, figures)

    # == appliers =================================================================================
    def _on_token_launched(self, ev: V.TokenLaunched) -> None:
        spec = self.ledger.catalogue.tokens[ev.token_name]
        ts = self.tokens[ev.token_name] = TokenState(spec, ev.nav, self.ledger.time)
        group = self.by_symbol.setdefault(ev.symbol, [])
        group.append(ts)
        group.sort(key=lambda t: t.spec.token)
        self.spot.open_market(spec, ev.nav)

    def _on_token_subscribed(self, ev: V.TokenSubscribed) -> None:
        ts = self.tokens[ev.token_name]
        w = self.spot.wallet_for_update(ev.account)
        w.usdt -= ev.cost + ev.fee + ev.hedge_cost
        w.tokens[ev.token_name] = w.tokens.get(ev.token_name, 0) + ev.amount
        self.ledger.accounts[ev.counterparty].wallet += ev.cost + ev.hedge_cost
        self.ledger.fees_collected += ev.fee
        ts.outstanding += ev.amount
        ts.issued_total += ev.amount
        ts.count(self.ledger.time // DAY_MS, ev.account, ev.amount, 0)

    def _on_token_redeemed(self, ev: V.TokenRedeemed) -> None:
        ts = self.tokens[ev.token_name]
        w = self.spot.wallets[ev.account]
        w.tokens[ev.token_name] -= ev.amount
        w.usdt += ev.value - ev.hedge_cost - ev.fee
        self.ledger.accounts[ev.counterparty].wallet -= ev.value - ev.hedge_cost
        self.ledger.fees_collected += ev.fee
        ts.outstanding -= ev.amount
        ts.redeemed_total += ev.amount
        ts.count(self.ledger.time // DAY_MS, ev.account, 0, ev.amount)

    def _on_token_nav(self, ev: V.TokenNavUpdated) -> None:
        ts = self.tokens[ev.token_name]
        ts.nav = ev.nav
        ts.nav_time = self.ledger.time
        self.spot.markets[ts.spec.spot_symbol].nav = ev.nav

    def _on_token_funding(self, ev: V.TokenFundingApplied) -> None:
        self.tokens[ev.token_name].funding_rate = ev.token_funding_rate

    # == state ====================================================================================
    def canonical(self) -> list | None:
        """None while no token is launched and no spot wallet exists, so the state hash of a
        log without them is what it was before tokens existed."""
        if not self.tokens and not self.spot.wallets:
            return None
        tokens = [[name, ts.nav, ts.nav_time, ts.outstanding, ts.issued_total, ts.redeemed_total,
                   ts.day, ts.day_subscribed, ts.day_redeemed,
                   [[aid, u[0], u[1]] for aid, u in sorted(ts.user_day.items())],
                   self.spot.markets[ts.spec.spot_symbol].fee_tokens, ts.funding_rate,
                   ts.launched_at]
                  for name, ts in sorted(self.tokens.items())]
        return [tokens, self.spot.canonical()]

    def restore(self, data: list) -> None:
        tokens, spot = data
        for (name, nav, nav_time, outstanding, issued, redeemed, day, day_sub, day_red, users,
             fee_tokens, funding_rate, launched_at) in tokens:
            spec = self.ledger.catalogue.tokens[name]
            self._on_token_launched(V.TokenLaunched(
                token_name=name, account=spec.issuer, symbol=spec.underlying,
                side=spec.side_name, spot_symbol=spec.spot_symbol, nav=nav))
            ts = self.tokens[name]
            ts.nav_time, ts.outstanding, ts.issued_total, ts.redeemed_total = \
                nav_time, outstanding, issued, redeemed
            ts.day, ts.day_subscribed, ts.day_redeemed = day, day_sub, day_red
            ts.user_day = {aid: [s, r] for aid, s, r in users}
            ts.funding_rate, ts.launched_at = funding_rate, launched_at
            self.spot.markets[spec.spot_symbol].fee_tokens = fee_tokens
        self.spot.restore(spot)


def _limit_msg(what: str, ts: TokenState, amount: int, used: int, limit: int) -> str:
    return (f"Exceeds {what} limit of the token: {fmt(amount)} {ts.spec.token} asked, "
            f"{fmt(used)} of {fmt(limit)} used today (UTC), {fmt(max(limit - used, 0))} left.")


def _ignore(_ev: V.Event) -> None:
    return None
