"""Liquidation (Binance's public protocol, SEED-NOTES §2): a part of the core (engine.core.engine).

On a `Liquidate` command the core re-checks the account against its own state; a healthy
account gets `LiquidationDeclined` and nothing else. Otherwise, each step an event:
  1. LiquidationStarted
  2. cancel the account's open orders (every cross symbol, or the one isolated symbol)
  3. per position: an IOC reduce-only liquidation order at the bankruptcy price (rounded to
     the tick away from the account: up for a long's sell, down for a short's buy), matched
     against the book; it pays no taker fee
  4. what the book cannot absorb at that price the insurance fund takes into the book at worse
     prices, as far as the fund can pay the loss beyond the bankruptcy price; the rest is
     auto-deleveraged (AdlTrade) against the opposite side's positions, ranked as Binance
     ranks them, at the bankruptcy price
  5. the liquidation fee (notional x the symbol's rate, rounded up) goes to the insurance fund,
     at most what is left of the liquidated margin; if the margin is already negative, the
     insurance fund pays the difference (InsuranceCovered). The account never ends below zero;
     the insurance fund may.

Margin assets: a cross liquidation is of one margin asset's pool (Liquidate.asset; Single-Asset
mode): its positions, its wallet, its insurance fund. COIN-M positions do the same in the coin
(bankruptcy price, insurance budget and fee by engine.core.inverse). A Multi-Assets account is
liquidated as a whole (LiquidationStarted asset "USD", its figures in USD): every cross
position closes, each at the price where the account's net value at the index prices (no
haircut) would be zero; the liquidation fees are capped by what that net value leaves; then a
settlement asset left negative is covered from the other assets by auto-exchange at the index
prices (AssetExchanged, engine.core.collateral.exchange_plan), and what nothing covers is paid
by that asset's insurance fund.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Callable

from engine.core import collateral
from engine.core import errors as E
from engine.core import inverse
from engine.core import risk
from engine.core.accounts import CROSSED, ISOLATED, Account, Position, position_key, trade_fill
from engine.core.errors import Rejected
from engine.core.book import BUY, SELL, Order
from engine.core.fixed import MAX_TOTAL, SCALE
from engine.core.ledger import Applier, Ledger
from engine.core.orders import Orders
from proto import commands as C
from proto import events as V


class InsuranceBudget:
    """How much a liquidation order may fill beyond its bankruptcy price: each unit filled at
    price p costs |p - bankruptcy price|, paid by the insurance fund, which has `left`."""

    def __init__(self, bankruptcy: int, side: str, left: int, step: int) -> None:
        self.bankruptcy = bankruptcy
        self.side = side
        self.left = left
        self.step = step

    def _loss(self, price: int) -> int:
        return self.bankruptcy - price if self.side == SELL else price - self.bankruptcy

    def allow(self, price: int) -> int:
        loss = self._loss(price)
        if loss <= 0:
            return 1 << 62
        qty = self.left * SCALE // loss
        return qty - qty % self.step

    def spend(self, qty: int, price: int) -> None:
        loss = self._loss(price)
        if loss > 0:
            self.left -= -(-(qty * loss) // SCALE)


class CoinInsuranceBudget:
    """InsuranceBudget for a COIN-M liquidation order: the loss of a contract filled at p
    instead of the bankruptcy price b is size x |1/p - 1/b| in the coin."""

    def __init__(self, bankruptcy: int, side: str, left: int, step: int, size: int) -> None:
        self.bankruptcy = bankruptcy
        self.side = side
        self.left = left
        self.step = step
        self.size = size

    def _worse(self, price: int) -> bool:
        return price < self.bankruptcy if self.side == SELL else price > self.bankruptcy

    def allow(self, price: int) -> int:
        if not self._worse(price):
            return 1 << 62
        return inverse.insurance_allow(self.left, self.size, price, self.bankruptcy, self.step)

    def spend(self, qty: int, price: int) -> None:
        if self._worse(price):
            self.left -= inverse.insurance_loss(qty, self.size, price, self.bankruptcy)


class Liquidator:
    """Margin calls, liquidations, auto-deleveraging and the insurance fund. Sends its orders
    through `orders` (the same book and matching as everyone's)."""

    def __init__(self, ledger: Ledger, orders: Orders) -> None:
        self.ledger = ledger
        self.orders = orders
        # set by the engine: expires the account's conditional orders in a symbol
        self.expire_conditional: Callable[[Account, str, str], None] | None = None

    def handlers(self) -> dict[type, Applier]:
        return {C.Liquidate: self._liquidate, C.MarginCall: self._margin_call,
                C.FundInsurance: self._fund_insurance}

    def appliers(self) -> dict[type, Applier]:
        return {V.AdlTrade: self._on_adl_trade, V.LiquidationFeeCharged: self._on_liquidation_fee,
                V.InsuranceCovered: self._on_insurance_covered,
                V.InsuranceFunded: self._on_insurance_funded,
                V.AssetExchanged: self._on_asset_exchanged,
                V.MarginCallIssued: _ignore, V.LiquidationStarted: _ignore,
                V.LiquidationDeclined: _ignore}

    def _fund_insurance(self, cmd: C.FundInsurance) -> None:
        ledger = self.ledger
        try:
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "the amount must be positive", arg="amount")
            asset = ledger.asset(cmd.asset)
            if ledger.deposited(asset) + cmd.amount > MAX_TOTAL:  # every sum stays recordable
                raise Rejected(E.INVALID_VALUE, "it would take the venue past its total",
                               arg="amount")
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.InsuranceFunded(amount=cmd.amount,
                                      balance=ledger.insurance(asset) + cmd.amount, asset=asset))

    def _margin_call(self, cmd: C.MarginCall) -> None:
        ledger = self.ledger
        acct = ledger.accounts.get(cmd.account)
        if acct is None:
            return ledger.reject_command(cmd, Rejected(E.UNKNOWN_ACCOUNT,
                                                       f"unknown account {cmd.account}"))
        pos = acct.positions.get(position_key(cmd.symbol, cmd.position_side)) \
            if cmd.symbol else None
        if cmd.symbol and (pos is None or pos.margin_type != ISOLATED):
            return ledger.reject_command(cmd, Rejected(E.INVALID_VALUE, f"no isolated position "
                                                       f"in {cmd.symbol}", arg="symbol"))
        if pos is not None:
            figures, asset = ledger.isolated_risk(pos), pos.asset
        else:
            figures = ledger.cross_risk(acct, cmd.asset)
            asset = "USD" if acct.multi_assets else cmd.asset
        ledger.emit(V.MarginCallIssued(account=cmd.account, symbol=cmd.symbol,
                                       margin_ratio=figures.ratio,
                                       position_side=cmd.position_side, asset=asset))

    def _liquidate(self, cmd: C.Liquidate) -> None:
        ledger = self.ledger
        emit = ledger.emit
        acct = ledger.accounts.get(cmd.account)
        if acct is None:
            return ledger.reject_command(cmd, Rejected(E.UNKNOWN_ACCOUNT,
                                                       f"unknown account {cmd.account}"))
        isolated = bool(cmd.symbol)
        side = cmd.position_side
        pos = acct.positions.get(position_key(cmd.symbol, side)) if isolated else None
        multi = acct.multi_assets and not isolated
        asset = "USD" if multi else cmd.asset
        if pos is None:
            if isolated:
                figures = risk.RiskFigures(0, 0)
            elif multi or cmd.asset in ledger.asset_names:
                figures = ledger.cross_risk(acct, cmd.asset)
            else:
                return ledger.reject_command(cmd, Rejected(E.INVALID_VALUE, f"unknown asset "
                                                           f"{cmd.asset!r}", arg="asset"))
        elif pos.margin_type != ISOLATED or pos.qty == 0:
            figures = risk.RiskFigures(0, 0)
        else:
            figures = ledger.isolated_risk(pos)
            asset = pos.asset
        if not figures.liquidatable:
            emit(V.LiquidationDeclined(account=cmd.account, symbol=cmd.symbol,
                                       maint_margin=figures.maint_margin,
                                       margin_balance=figures.margin_balance,
                                       position_side=side, asset=asset))
            return
        emit(V.LiquidationStarted(account=cmd.account, symbol=cmd.symbol,
                                  maint_margin=figures.maint_margin,
                                  margin_balance=figures.margin_balance, position_side=side,
                                  asset=asset))
        if isolated:
            keys = [position_key(cmd.symbol, side)]
        else:
            keys = sorted(k for k, p in acct.positions.items() if p.margin_type == CROSSED and
                          (multi or p.asset == cmd.asset))
        for symbol in sorted({acct.positions[k].symbol for k in keys}):
            self.orders.cancel_account_orders(acct, ledger.symbols[symbol])
            if self.expire_conditional is not None:
                self.expire_conditional(acct, symbol, "liquidation")
        pool = pos.asset if pos is not None else cmd.asset
        wallet_before = acct.balance(pool)
        isolated_before = pos.isolated_margin if pos is not None else 0
        closed: list[tuple[Position, int]] = []  # (position, liquidated notional)
        for k in keys:
            leg = acct.positions[k]
            if leg.qty:
                closed.append((leg, self._close_by_liquidation(acct, leg)))
        if multi:
            return self._settle_multi_assets(acct, closed)
        if isolated:  # what the position had: its margin plus what its closing realized
            residual = isolated_before + acct.balance(pool) - wallet_before
        else:
            residual = ledger.cross_risk(acct, pool).margin_balance
        for leg, notional in closed:
            fee = -(-(notional * ledger.symbols[leg.symbol].spec.liquidation_fee) // SCALE)
            fee = min(fee, max(residual, 0))
            if fee:
                emit(V.LiquidationFeeCharged(account=acct.account_id, symbol=leg.symbol,
                                             amount=fee, position_side=leg.side,
                                             asset=leg.asset))
                residual -= fee
        if residual < 0:
            emit(V.InsuranceCovered(account=acct.account_id, symbol=cmd.symbol, amount=-residual,
                                    position_side=side, asset=pool))

    def _settle_multi_assets(self, acct: Account, closed: list[tuple[Position, int]]) -> None:
        """After a Multi-Assets liquidation closed every position: the fees (capped by the net
        value at the index prices), auto-exchange, and the insurance fund for the rest."""
        ledger = self.ledger
        emit = ledger.emit
        aid = acct.account_id
        prices = ledger.prices_for(acct.assets())
        residual = collateral.net_value({a: acct.balance(a) for a in acct.assets()}, prices)
        for leg, notional in closed:
            fee = -(-(notional * ledger.symbols[leg.symbol].spec.liquidation_fee) // SCALE)
            price = prices.get(leg.asset, 0)
            if price <= 0:
                continue  # the asset cannot be valued: no fee rather than an unbacked one
            fee = min(fee, max(residual, 0) * SCALE // price)
            if fee:
                emit(V.LiquidationFeeCharged(account=aid, symbol=leg.symbol, amount=fee,
                                             position_side=leg.side, asset=leg.asset))
                residual -= -(-fee * price // SCALE)
        for asset in acct.assets():
            if acct.balance(asset) >= 0:
                continue
            balances = {a: acct.balance(a) for a in acct.assets()}
            for source, given, credited in collateral.exchange_plan(balances, prices, asset):
                emit(V.AssetExchanged(account=aid, asset=asset, amount=credited,
                                      from_asset=source, from_amount=given,
                                      index_price=prices[asset],
                                      from_index_price=prices[source]))
        for asset in acct.assets():
            left = acct.balance(asset)
            if left < 0:
                emit(V.InsuranceCovered(account=aid, symbol="", amount=-left, asset=asset))

    def _close_by_liquidation(self, acct: Account, pos: Position) -> int:
        """Close one position; returns the notional liquidated (book fills and ADL)."""
        ledger = self.ledger
        sym = ledger.symbols[pos.symbol]
        spec = sym.spec
        size = sym.contract_size
        notional, upnl, _ = ledger.position_figures(pos, sym)
        if pos.margin_type == ISOLATED:
            backing = pos.isolated_margin
        elif acct.multi_assets:
            backing = self._multi_assets_backing(acct, pos, upnl)
        else:  # the cross balance without this position's own PnL
            backing = ledger.cross_risk(acct, pos.asset).margin_balance - upnl
        if size:
            num, den = inverse.bankruptcy_price(backing, pos.qty, pos.cost, size)
        else:
            num, den = risk.bankruptcy_price(backing, pos.qty, pos.cost)
        if den < 0:
            num, den = -num, -den
        tick = spec.tick_size
        if size and (den == 0 or num <= 0):  # no bankruptcy price: it is unbounded
            price = spec.max_price // tick * tick
            side = SELL if pos.qty > 0 else BUY
        elif pos.qty > 0:  # a long sells no lower than its bankruptcy price
            price = -(-num // den)
            price = max(-(-price // tick) * tick, spec.min_price)
            if size:
                price = min(price, spec.max_price // tick * tick)
            side = SELL
        else:  # a short buys no higher
            price = num // den
            price = min(max(price // tick * tick, spec.min_price), spec.max_price)
            side = BUY
        order_id = ledger.next_order_id
        start = len(ledger.out)
        ledger.emit(V.OrderAccepted(
            order_id=order_id, account=acct.account_id, symbol=pos.symbol, side=side,
            type="LIMIT", time_in_force="IOC", price=price, quantity=abs(pos.qty),
            reduce_only=True, client_order_id="", stp_mode="NONE", rest=False, liquidation=True,
            position_side=pos.side))
        order = ledger.pending[order_id]
        self.orders.take(order)
        fund = ledger.insurance(pos.asset)
        if order.remaining and fund > 0:
            worst = spec.min_price if side == SELL else spec.max_price
            budget: InsuranceBudget | CoinInsuranceBudget = \
                CoinInsuranceBudget(price, side, fund, spec.step_size, size) if size else \
                InsuranceBudget(price, side, fund, spec.step_size)
            self.orders.take(order, limit=worst, budget=budget)
        if order.remaining:
            self._auto_deleverage(order, pos, price)
        total = 0
        for ev in ledger.out[start:]:
            if type(ev) is V.Trade and ev.taker_order_id == order_id or \
                    type(ev) is V.AdlTrade and ev.order_id == order_id:
                total += sym.trade_value(ev.quantity, ev.price)
        return total

    def _multi_assets_backing(self, acct: Account, pos: Position, upnl: int) -> int:
        """A Multi-Assets account's backing of one position, in its margin asset: the account's
        net value at the index prices (wallets and the other positions' PnL, no haircut) over
        the asset's index, rounded down; its own wallet and PnL in the asset if it has no
        index price."""
        ledger = self.ledger
        equity, _, _ = ledger.asset_equities(acct)
        equity[pos.asset] = equity.get(pos.asset, 0) - upnl
        prices = ledger.prices_for(sorted(equity))
        price = prices.get(pos.asset, 0)
        if price <= 0:
            return equity[pos.asset]
        return collateral.net_value(equity, prices) * SCALE // price

    def _adl_rank(self, acct: Account, pos: Position) -> Fraction:
        """Binance's ADL ranking: PnL% x effective leverage when in profit, PnL% / effective
        leverage when at a loss; PnL% = uPnL / |entry notional|, effective leverage =
        |notional| / margin balance. Exact fractions: ranking never touches a float."""
        ledger = self.ledger
        sym = ledger.symbols[pos.symbol]
        notional, upnl, _ = ledger.position_figures(pos, sym)
        if pos.margin_type == ISOLATED:
            balance = pos.isolated_margin + upnl
        elif acct.multi_assets:  # the account's equity (USD) in the position's asset
            balance = collateral.in_asset(ledger.cross_risk(acct).margin_balance,
                                          ledger.rates(pos.asset)[1])
        else:
            balance = ledger.cross_risk(acct, pos.asset).margin_balance
        pnl_ratio = Fraction(upnl, max(abs(pos.cost), 1))
        leverage = Fraction(abs(notional), max(balance, 1))
        if upnl >= 0:
            return pnl_ratio * leverage
        return pnl_ratio / leverage if leverage else pnl_ratio

    def _auto_deleverage(self, order: Order, liquidated: Position, price: int) -> None:
        ledger = self.ledger
        symbol = order.symbol
        want_short = order.side == SELL  # liquidating a long: shorts take the other side
        candidates = []
        for aid, a in ledger.accounts.items():
            if aid == order.account:
                continue
            for p in a.legs(symbol):
                if p.qty and (p.qty < 0) == want_short:
                    candidates.append((-self._adl_rank(a, p), aid, p.side, p))
        candidates.sort(key=lambda c: (c[0], c[1], c[2]))
        sign = 1 if order.side == BUY else -1
        for _, aid, _, p in candidates:
            if not order.remaining:
                break
            qty = min(order.remaining, abs(p.qty))
            size = liquidated.contract_size
            own = trade_fill(size, liquidated.qty, liquidated.cost, sign * qty, price)[2]
            theirs = trade_fill(size, p.qty, p.cost, -sign * qty, price)[2]
            ledger.emit(V.AdlTrade(trade_id=ledger.next_trade_id, symbol=symbol, price=price,
                                   quantity=qty, order_id=order.order_id, account=order.account,
                                   counterparty=aid, realized_pnl=own,
                                   counterparty_realized_pnl=theirs,
                                   position_side=liquidated.side,
                                   counterparty_position_side=p.side))
        if order.remaining:  # no opposite position left (cannot happen while OI balances)
            ledger.emit(V.OrderExpired(order_id=order.order_id, account=order.account,
                                       symbol=symbol, quantity=order.remaining,
                                       status="EXPIRED", reason="noCounterparty"))

    # -- appliers -------------------------------------------------------------------------------
    def _on_adl_trade(self, ev: V.AdlTrade) -> None:
        ledger = self.ledger
        order = ledger.pending[ev.order_id]
        sign = 1 if order.side == BUY else -1
        acct = ledger.accounts[ev.account]
        other = ledger.accounts[ev.counterparty]
        for a, side, dq, pnl in (
                (acct, ev.position_side, sign * ev.quantity, ev.realized_pnl),
                (other, ev.counterparty_position_side, -sign * ev.quantity,
                 ev.counterparty_realized_pnl)):
            p = a.positions[position_key(ev.symbol, side)]
            a.fill(p, dq, ev.price)
            a.credit(p.asset, pnl)
            if p.open_orders:
                a.refresh_order_margin(p)
            ledger.filled(a, p)
        order.remaining -= ev.quantity
        if order.remaining == 0:
            del ledger.pending[order.order_id]
            acct.forget_client_id(order.order_id, order.client_id)
        ledger.next_trade_id = ev.trade_id + 1

    def _on_liquidation_fee(self, ev: V.LiquidationFeeCharged) -> None:
        self.ledger.accounts[ev.account].credit(ev.asset, -ev.amount)
        self.ledger.add_insurance(ev.asset, ev.amount)

    def _on_insurance_covered(self, ev: V.InsuranceCovered) -> None:
        self.ledger.accounts[ev.account].credit(ev.asset, ev.amount)
        self.ledger.add_insurance(ev.asset, -ev.amount)

    def _on_insurance_funded(self, ev: V.InsuranceFunded) -> None:
        self.ledger.add_insurance(ev.asset, ev.amount)
        self.ledger.add_deposit(ev.asset, ev.amount)

    def _on_asset_exchanged(self, ev: V.AssetExchanged) -> None:
        ledger = self.ledger
        acct = ledger.accounts[ev.account]
        acct.credit(ev.from_asset, -ev.from_amount)
        acct.credit(ev.asset, ev.amount)
        exchanged = ledger.exchanged
        exchanged[ev.from_asset] = exchanged.get(ev.from_asset, 0) + ev.from_amount
        exchanged[ev.asset] = exchanged.get(ev.asset, 0) - ev.amount


def _ignore(_ev: V.Event) -> None:
    return None
