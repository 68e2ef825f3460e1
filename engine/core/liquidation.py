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
"""
from __future__ import annotations

from fractions import Fraction
from typing import Callable

from engine.core import errors as E
from engine.core import risk
from engine.core.accounts import CROSSED, ISOLATED, Account, Position, fill_result, position_key
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
                V.MarginCallIssued: _ignore, V.LiquidationStarted: _ignore,
                V.LiquidationDeclined: _ignore}

    def _fund_insurance(self, cmd: C.FundInsurance) -> None:
        ledger = self.ledger
        if cmd.amount <= 0:
            return ledger.reject_command(cmd, Rejected(E.INVALID_VALUE, "the amount must be "
                                                       "positive", arg="amount"))
        if ledger.total_deposits + cmd.amount > MAX_TOTAL:  # every sum stays recordable
            return ledger.reject_command(cmd, Rejected(E.INVALID_VALUE, "it would take the "
                                                       "venue past its total", arg="amount"))
        ledger.emit(V.InsuranceFunded(amount=cmd.amount,
                                      balance=ledger.insurance_fund + cmd.amount))

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
        figures = ledger.isolated_risk(pos) if pos is not None else ledger.cross_risk(acct)
        ledger.emit(V.MarginCallIssued(account=cmd.account, symbol=cmd.symbol,
                                       margin_ratio=figures.ratio,
                                       position_side=cmd.position_side))

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
        if pos is None:
            figures = risk.RiskFigures(0, 0) if isolated else ledger.cross_risk(acct)
        elif pos.margin_type != ISOLATED or pos.qty == 0:
            figures = risk.RiskFigures(0, 0)
        else:
            figures = ledger.isolated_risk(pos)
        if not figures.liquidatable:
            emit(V.LiquidationDeclined(account=cmd.account, symbol=cmd.symbol,
                                       maint_margin=figures.maint_margin,
                                       margin_balance=figures.margin_balance,
                                       position_side=side))
            return
        emit(V.LiquidationStarted(account=cmd.account, symbol=cmd.symbol,
                                  maint_margin=figures.maint_margin,
                                  margin_balance=figures.margin_balance, position_side=side))
        if isolated:
            keys = [position_key(cmd.symbol, side)]
        else:
            keys = sorted(k for k, p in acct.positions.items() if p.margin_type == CROSSED)
        for symbol in sorted({acct.positions[k].symbol for k in keys}):
            self.orders.cancel_account_orders(acct, ledger.symbols[symbol])
            if self.expire_conditional is not None:
                self.expire_conditional(acct, symbol, "liquidation")
        wallet_before = acct.wallet
        isolated_before = pos.isolated_margin if pos is not None else 0
        closed: list[tuple[Position, int]] = []  # (position, liquidated notional)
        for k in keys:
            leg = acct.positions[k]
            if leg.qty:
                closed.append((leg, self._close_by_liquidation(acct, leg)))
        if isolated:  # what the position had: its margin plus what its closing realized
            residual = isolated_before + acct.wallet - wallet_before
        else:
            residual = ledger.cross_risk(acct).margin_balance
        for leg, notional in closed:
            fee = -(-(notional * ledger.symbols[leg.symbol].spec.liquidation_fee) // SCALE)
            fee = min(fee, max(residual, 0))
            if fee:
                emit(V.LiquidationFeeCharged(account=acct.account_id, symbol=leg.symbol,
                                             amount=fee, position_side=leg.side))
                residual -= fee
        if residual < 0:
            emit(V.InsuranceCovered(account=acct.account_id, symbol=cmd.symbol, amount=-residual,
                                    position_side=side))

    def _close_by_liquidation(self, acct: Account, pos: Position) -> int:
        """Close one position; returns the notional liquidated (book fills and ADL)."""
        ledger = self.ledger
        sym = ledger.symbols[pos.symbol]
        spec = sym.spec
        notional, upnl, _ = ledger.position_figures(pos, sym)
        if pos.margin_type == ISOLATED:
            backing = pos.isolated_margin
        else:  # the cross balance without this position's own PnL
            backing = ledger.cross_risk(acct).margin_balance - upnl
        num, den = risk.bankruptcy_price(backing, pos.qty, pos.cost)
        if den < 0:
            num, den = -num, -den
        tick = spec.tick_size
        if pos.qty > 0:  # a long sells no lower than its bankruptcy price
            price = -(-num // den)
            price = max(-(-price // tick) * tick, spec.min_price)
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
        if order.remaining and ledger.insurance_fund > 0:
            worst = spec.min_price if side == SELL else spec.max_price
            budget = InsuranceBudget(price, side, ledger.insurance_fund, spec.step_size)
            self.orders.take(order, limit=worst, budget=budget)
        if order.remaining:
            self._auto_deleverage(order, pos, price)
        total = 0
        for ev in ledger.out[start:]:
            if type(ev) is V.Trade and ev.taker_order_id == order_id or \
                    type(ev) is V.AdlTrade and ev.order_id == order_id:
                total += ev.quantity * ev.price // SCALE
        return total

    def _adl_rank(self, acct: Account, pos: Position) -> Fraction:
        """Binance's ADL ranking: PnL% x effective leverage when in profit, PnL% / effective
        leverage when at a loss; PnL% = uPnL / |entry notional|, effective leverage =
        |notional| / margin balance. Exact fractions: ranking never touches a float."""
        ledger = self.ledger
        sym = ledger.symbols[pos.symbol]
        notional, upnl, _ = ledger.position_figures(pos, sym)
        if pos.margin_type == ISOLATED:
            balance = pos.isolated_margin + upnl
        else:
            balance = ledger.cross_risk(acct).margin_balance
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
            own = fill_result(liquidated.qty, liquidated.cost, sign * qty, price)[2]
            theirs = fill_result(p.qty, p.cost, -sign * qty, price)[2]
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
            p.apply_fill(dq, ev.price)
            a.wallet += pnl
            if p.open_orders:
                a.refresh_order_margin(p)
            ledger.filled(a, p)
        order.remaining -= ev.quantity
        if order.remaining == 0:
            del ledger.pending[order.order_id]
            acct.forget_client_id(order.order_id, order.client_id)
        ledger.next_trade_id = ev.trade_id + 1

    def _on_liquidation_fee(self, ev: V.LiquidationFeeCharged) -> None:
        self.ledger.accounts[ev.account].wallet -= ev.amount
        self.ledger.insurance_fund += ev.amount

    def _on_insurance_covered(self, ev: V.InsuranceCovered) -> None:
        self.ledger.accounts[ev.account].wallet += ev.amount
        self.ledger.insurance_fund -= ev.amount

    def _on_insurance_funded(self, ev: V.InsuranceFunded) -> None:
        self.ledger.insurance_fund += ev.amount
        self.ledger.total_deposits += ev.amount


def _ignore(_ev: V.Event) -> None:
    return None
