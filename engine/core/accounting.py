"""Accounts, their money and their per-symbol settings: create, deposit, withdraw, leverage,
margin type and isolated margin (SEED-NOTES §5), with Binance's codes, and the appliers of
their events."""
from __future__ import annotations

from engine.core import errors as E
from engine.core.accounts import ISOLATED, Account
from engine.core.errors import Rejected
from engine.core.fixed import MAX_TOTAL, fmt
from engine.core.ledger import Applier, Ledger
from proto import commands as C
from proto import events as V


class Accounting:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def handlers(self) -> dict[type, Applier]:
        return {C.CreateAccount: self._create_account, C.Deposit: self._deposit,
                C.Withdraw: self._withdraw, C.SetLeverage: self._set_leverage,
                C.SetMarginType: self._set_margin_type,
                C.AdjustIsolatedMargin: self._adjust_isolated_margin}

    def appliers(self) -> dict[type, Applier]:
        return {V.AccountCreated: self._on_account_created, V.Deposited: self._on_deposited,
                V.Withdrawn: self._on_withdrawn, V.LeverageChanged: self._on_leverage,
                V.MarginTypeChanged: self._on_margin_type,
                V.IsolatedMarginChanged: self._on_isolated, V.CommandRejected: _ignore}

    # == commands =================================================================================
    def _create_account(self, cmd: C.CreateAccount) -> None:
        ledger = self.ledger
        if cmd.account <= 0:
            return ledger.reject_command(cmd, E.INVALID_VALUE, "account must be a positive integer.")
        if cmd.account in ledger.accounts:
            return ledger.reject_command(cmd, E.INVALID_VALUE, f"Account {cmd.account} exists.")
        registered = ledger.time if cmd.registered_at is None else cmd.registered_at
        ledger.emit(V.AccountCreated(account=cmd.account, registered_at=registered))

    def _deposit(self, cmd: C.Deposit) -> None:
        ledger = self.ledger
        try:
            acct = ledger.account(cmd.account)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "Deposit amount must be positive.")
            if ledger.total_deposits + cmd.amount > MAX_TOTAL:  # every sum stays recordable
                raise Rejected(E.INVALID_VALUE, "Deposit would take the venue past "
                                                f"{fmt(MAX_TOTAL)} USDT in total.")
        except Rejected as r:
            return ledger.reject_command(cmd, r.code, r.msg)
        ledger.emit(V.Deposited(account=cmd.account, amount=cmd.amount,
                                balance=acct.wallet + cmd.amount))

    def _withdraw(self, cmd: C.Withdraw) -> None:
        ledger = self.ledger
        try:
            acct = ledger.account(cmd.account)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "Withdrawal amount must be positive.")
            free = min(ledger.available_balance(acct), acct.wallet)
            if cmd.amount > free:
                raise Rejected(E.BALANCE_INSUFFICIENT,
                               f"Insufficient balance: {fmt(max(free, 0))} USDT available.")
        except Rejected as r:
            return ledger.reject_command(cmd, r.code, r.msg)
        ledger.emit(V.Withdrawn(account=cmd.account, amount=cmd.amount,
                                balance=acct.wallet - cmd.amount))

    def _set_leverage(self, cmd: C.SetLeverage) -> None:
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            table = sym.table_at(ledger.time)
            if not 1 <= cmd.leverage <= table.max_leverage:
                raise Rejected(E.INVALID_LEVERAGE, f"Leverage {cmd.leverage} is not valid: "
                                                   f"1 to {table.max_leverage} for {cmd.symbol}.")
            pos = ledger.position(acct, cmd.symbol)
            config = ledger.config
            young_cap = config.new_account_max_leverage
            if cmd.leverage > young_cap and cmd.leverage > pos.leverage and ledger.is_young(acct):
                raise Rejected(E.INVALID_LEVERAGE,
                               f"Leverage {cmd.leverage} is not valid: accounts registered less "
                               f"than {config.new_account_days} days ago may not go above "
                               f"{young_cap}x.")
            if pos.margin_type == ISOLATED and pos.qty and cmd.leverage < pos.leverage:
                raise Rejected(E.ISOLATED_LEVERAGE_REDUCTION,
                               "Leverage reduction is not supported in Isolated Margin Mode with "
                               "open positions.")
            cap = sym.max_notional(table, cmd.leverage)
            pos_notional = ledger.position_figures(pos, sym)[0]
            reach = max(pos_notional + pos.open_buy_notional, -pos_notional + pos.open_sell_notional)
            if reach > cap:
                raise Rejected(E.MAX_POSITION_AT_LEVERAGE,
                               f"Exceeded the maximum allowable position at current leverage: "
                               f"{fmt(reach)} > {fmt(cap)} USDT at {cmd.leverage}x.")
            if cmd.leverage < pos.leverage and not pos.is_idle():
                old = pos.leverage
                pos.leverage = cmd.leverage  # trial; restored below
                try:
                    trial_margin = pos.compute_order_margin(
                        pos.open_buy_qty, pos.open_buy_notional, pos.open_sell_qty,
                        pos.open_sell_notional)
                    short = ledger.available_balance(acct) + pos.order_margin - trial_margin < 0
                finally:
                    pos.leverage = old
                if short:
                    raise Rejected(E.MARGIN_INSUFFICIENT, "Margin is insufficient.")
        except Rejected as r:
            return ledger.reject_command(cmd, r.code, r.msg)
        ledger.emit(V.LeverageChanged(account=cmd.account, symbol=cmd.symbol,
                                      leverage=cmd.leverage))

    def _set_margin_type(self, cmd: C.SetMarginType) -> None:
        ledger = self.ledger
        try:
            ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            pos = ledger.position(acct, cmd.symbol)
            if pos.margin_type == cmd.margin_type:
                raise Rejected(E.NO_NEED_TO_CHANGE_MARGIN_TYPE, "No need to change margin type.")
            if pos.qty:
                raise Rejected(E.MARGIN_TYPE_POSITION_EXISTS,
                               "Margin type cannot be changed if there exists position.")
            if pos.open_orders:
                raise Rejected(E.MARGIN_TYPE_OPEN_ORDERS,
                               "Margin type cannot be changed if there exists open orders.")
        except Rejected as r:
            return ledger.reject_command(cmd, r.code, r.msg)
        ledger.emit(V.MarginTypeChanged(account=cmd.account, symbol=cmd.symbol,
                                        margin_type=cmd.margin_type))

    def _adjust_isolated_margin(self, cmd: C.AdjustIsolatedMargin) -> None:
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            pos = acct.positions.get(cmd.symbol)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "amount must be positive.")
            if pos is None or pos.margin_type != ISOLATED or pos.qty == 0:
                raise Rejected(E.ISOLATED_MARGIN_NO_POSITION,
                               "Cannot adjust margin: no isolated position in this symbol.")
            if cmd.type == 1:
                if cmd.amount > ledger.available_balance(acct):
                    raise Rejected(E.MARGIN_INSUFFICIENT, "Margin is insufficient.")
                delta = cmd.amount
            else:
                _, upnl, im = ledger.position_figures(pos, sym)
                if pos.isolated_margin - cmd.amount + min(upnl, 0) < im:
                    raise Rejected(E.ISOLATED_BALANCE_INSUFFICIENT,
                                   "Isolated balance insufficient: the position must keep its "
                                   f"initial margin {fmt(im)}.")
                delta = -cmd.amount
        except Rejected as r:
            return ledger.reject_command(cmd, r.code, r.msg)
        ledger.emit(V.IsolatedMarginChanged(account=cmd.account, symbol=cmd.symbol, amount=delta,
                                            isolated_margin=pos.isolated_margin + delta))

    # == appliers =================================================================================
    def _on_account_created(self, ev: V.AccountCreated) -> None:
        self.ledger.accounts[ev.account] = Account(ev.account, ev.registered_at)

    def _on_deposited(self, ev: V.Deposited) -> None:
        self.ledger.accounts[ev.account].wallet += ev.amount
        self.ledger.total_deposits += ev.amount

    def _on_withdrawn(self, ev: V.Withdrawn) -> None:
        self.ledger.accounts[ev.account].wallet -= ev.amount
        self.ledger.total_withdrawals += ev.amount

    def _on_leverage(self, ev: V.LeverageChanged) -> None:
        acct = self.ledger.accounts[ev.account]
        pos = self.ledger.position_for_update(acct, ev.symbol)
        pos.leverage = ev.leverage
        acct.refresh_order_margin(pos)

    def _on_margin_type(self, ev: V.MarginTypeChanged) -> None:
        acct = self.ledger.accounts[ev.account]
        self.ledger.position_for_update(acct, ev.symbol).margin_type = ev.margin_type

    def _on_isolated(self, ev: V.IsolatedMarginChanged) -> None:
        self.ledger.accounts[ev.account].positions[ev.symbol].isolated_margin = ev.isolated_margin


def _ignore(_ev: V.Event) -> None:
    return None
