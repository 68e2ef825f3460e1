"""Accounts, their money and their settings: create, deposit, withdraw (per asset), leverage,
margin type, isolated margin (SEED-NOTES §5), the position mode (one-way or hedge) and the asset
mode (Single-Asset or Multi-Assets, Binance's multiAssetsMargin), with Binance's codes, and the
appliers of their events. Leverage and margin type are per symbol: in hedge mode both legs of a
symbol carry the same.

The asset mode switch (rules 2; SEED-NOTES §11, Binance's error-code page):
    -4171  already in that mode
    -4167  switching on with a symbol in isolated-margin mode (a setting, with or without a
           position: Multi-Assets mode is cross only)
    -4170  an open order (ordinary or conditional)
    -4172  a negative wallet balance in any asset
    -4169  the switch would leave a margin pool short: on, the account's uniAvailable < 0;
           off, the available balance of any margin asset < 0 (positions margined by another
           asset's collateral)
Open positions do not block it: Binance's API has no code for them (its 2021 FAQ said they
did); a switch with positions is checked with -4169 instead. In Multi-Assets mode a symbol
cannot be set to isolated (-4168)."""
from __future__ import annotations

from typing import Callable

from engine.core import errors as E
from engine.core.accounts import ISOLATED, Account, Position, position_key
from engine.core.errors import Rejected
from engine.core.fixed import MAX_TOTAL, fmt
from engine.core.ledger import Applier, Ledger
from proto import commands as C
from proto import events as V


class Accounting:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # set by the engine: the number of an account's open conditional orders (a position
        # mode change is refused while any order is open)
        self.open_conditional: Callable[[int], int] = _none_open

    def handlers(self) -> dict[type, Applier]:
        return {C.CreateAccount: self._create_account, C.Deposit: self._deposit,
                C.Withdraw: self._withdraw, C.SetLeverage: self._set_leverage,
                C.SetMarginType: self._set_margin_type,
                C.AdjustIsolatedMargin: self._adjust_isolated_margin,
                C.SetPositionMode: self._set_position_mode,
                C.SetMultiAssetsMargin: self._set_multi_assets}

    def appliers(self) -> dict[type, Applier]:
        return {V.AccountCreated: self._on_account_created, V.Deposited: self._on_deposited,
                V.Withdrawn: self._on_withdrawn, V.LeverageChanged: self._on_leverage,
                V.MarginTypeChanged: self._on_margin_type,
                V.IsolatedMarginChanged: self._on_isolated,
                V.PositionModeChanged: self._on_position_mode,
                V.MultiAssetsMarginChanged: self._on_multi_assets, V.CommandRejected: _ignore}

    # == commands =================================================================================
    def _create_account(self, cmd: C.CreateAccount) -> None:
        ledger = self.ledger
        if cmd.account <= 0:
            return ledger.reject_command(cmd, Rejected(E.INVALID_VALUE, "account must be a "
                                                       "positive integer", arg="account"))
        if cmd.account in ledger.accounts:
            return ledger.reject_command(cmd, Rejected(E.INVALID_VALUE, f"account {cmd.account} "
                                                       f"exists", arg="account"))
        registered = ledger.time if cmd.registered_at is None else cmd.registered_at
        ledger.emit(V.AccountCreated(account=cmd.account, registered_at=registered))

    def _deposit(self, cmd: C.Deposit) -> None:
        ledger = self.ledger
        try:
            acct = ledger.account(cmd.account)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "the amount must be positive", arg="amount")
            asset = ledger.asset(cmd.asset)
            if ledger.deposited(asset) + cmd.amount > MAX_TOTAL:  # every sum stays recordable
                raise Rejected(E.INVALID_VALUE, f"it would take the venue past {fmt(MAX_TOTAL)} "
                                                f"{asset} in total", arg="amount")
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.Deposited(account=cmd.account, amount=cmd.amount,
                                balance=acct.balance(asset) + cmd.amount, asset=asset))

    def _withdraw(self, cmd: C.Withdraw) -> None:
        ledger = self.ledger
        try:
            acct = ledger.account(cmd.account)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "the amount must be positive", arg="amount")
            asset = ledger.asset(cmd.asset)
            free = ledger.withdrawable(acct, asset)
            if cmd.amount > free:
                raise Rejected(E.BALANCE_INSUFFICIENT, f"{fmt(max(free, 0))} {asset} available",
                               msg="Insufficient balance.")
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.Withdrawn(account=cmd.account, amount=cmd.amount,
                                balance=acct.balance(asset) - cmd.amount, asset=asset))

    def _set_leverage(self, cmd: C.SetLeverage) -> None:
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            table = sym.table_at(ledger.time)
            if not 1 <= cmd.leverage <= table.max_leverage:
                raise Rejected(E.INVALID_LEVERAGE, f"1 to {table.max_leverage} for {cmd.symbol}",
                               arg=cmd.leverage)
            settings = ledger.symbol_settings(acct, cmd.symbol)
            legs = acct.legs(cmd.symbol) or [settings]
            config = ledger.config
            young_cap = config.new_account_max_leverage
            if cmd.leverage > young_cap and cmd.leverage > settings.leverage and \
                    ledger.is_young(acct):
                if config.rules < 2:
                    raise Rejected(E.INVALID_LEVERAGE, "young account", arg=cmd.leverage)
                raise Rejected(E.YOUNG_ACCOUNT_LEVERAGE, arg=config.new_account_days)
            if settings.margin_type == ISOLATED and cmd.leverage < settings.leverage and \
                    any(leg.qty for leg in legs):
                raise Rejected(E.ISOLATED_LEVERAGE_REDUCTION)
            cap = sym.max_notional(table, cmd.leverage)
            if acct.dual_side:
                reach = sum(abs(ledger.position_figures(leg, sym)[0]) +
                            (leg.buys.notional if leg.qty >= 0 and leg.side == "LONG"
                             else leg.sells.notional) for leg in legs)
            else:
                pos_notional = ledger.position_figures(settings, sym)[0]
                reach = max(pos_notional + settings.buys.notional,
                            -pos_notional + settings.sells.notional)
            if reach > cap:
                unit = sym.spec.base_asset if sym.contract_size else sym.spec.quote_asset
                raise Rejected(E.MAX_POSITION_AT_LEVERAGE,
                               f"{fmt(reach)} > {fmt(cap)} {unit} at {cmd.leverage}x")
            if cmd.leverage < settings.leverage and not all(leg.is_idle() for leg in legs):
                extra = 0
                for leg in legs:
                    old = leg.leverage
                    leg.leverage = cmd.leverage  # trial; restored below
                    try:
                        extra += leg.margin_for(leg.buys, leg.sells) - leg.order_margin
                    finally:
                        leg.leverage = old
                if extra > ledger.available_balance(acct, sym.asset):
                    raise Rejected(E.MARGIN_INSUFFICIENT)
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.LeverageChanged(account=cmd.account, symbol=cmd.symbol,
                                      leverage=cmd.leverage))

    def _set_margin_type(self, cmd: C.SetMarginType) -> None:
        ledger = self.ledger
        try:
            ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            settings = ledger.symbol_settings(acct, cmd.symbol)
            legs = acct.legs(cmd.symbol)
            if settings.margin_type == cmd.margin_type:
                raise Rejected(E.NO_NEED_TO_CHANGE_MARGIN_TYPE)
            if acct.multi_assets and cmd.margin_type == ISOLATED:
                raise Rejected(E.JOINT_MARGIN_REJECT_WITH_ISOLATED)
            if any(leg.qty for leg in legs):
                raise Rejected(E.MARGIN_TYPE_POSITION_EXISTS)
            if any(leg.open_orders for leg in legs):
                raise Rejected(E.MARGIN_TYPE_OPEN_ORDERS)
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.MarginTypeChanged(account=cmd.account, symbol=cmd.symbol,
                                        margin_type=cmd.margin_type))

    def _adjust_isolated_margin(self, cmd: C.AdjustIsolatedMargin) -> None:
        ledger = self.ledger
        try:
            sym = ledger.symbol(cmd.symbol)
            acct = ledger.account(cmd.account)
            if cmd.amount <= 0:
                raise Rejected(E.INVALID_VALUE, "the amount must be positive", arg="amount")
            if acct.dual_side != (cmd.position_side != "BOTH"):
                raise Rejected(E.POSITION_SIDE_NOT_MATCH)
            pos = acct.positions.get(position_key(cmd.symbol, cmd.position_side))
            if pos is None or pos.margin_type != ISOLATED or pos.qty == 0:
                raise Rejected(E.ISOLATED_MARGIN_NO_POSITION)
            if cmd.type == 1:
                if cmd.amount > ledger.available_balance(acct, pos.asset):
                    raise Rejected(E.MARGIN_INSUFFICIENT)
                delta = cmd.amount
            else:
                _, upnl, im = ledger.position_figures(pos, sym)
                if pos.isolated_margin - cmd.amount + min(upnl, 0) < im:
                    raise Rejected(E.ISOLATED_BALANCE_INSUFFICIENT,
                                   f"the position must keep its initial margin {fmt(im)}")
                delta = -cmd.amount
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.IsolatedMarginChanged(account=cmd.account, symbol=cmd.symbol, amount=delta,
                                            isolated_margin=pos.isolated_margin + delta,
                                            position_side=cmd.position_side))

    def _set_position_mode(self, cmd: C.SetPositionMode) -> None:
        ledger = self.ledger
        try:
            acct = ledger.account(cmd.account)
            if acct.dual_side == cmd.dual_side_position:
                raise Rejected(E.NO_NEED_TO_CHANGE_POSITION_SIDE)
            if any(p.qty for p in acct.positions.values()):
                raise Rejected(E.POSITION_SIDE_POSITION_EXISTS)
            if any(p.open_orders for p in acct.positions.values()) or \
                    self.open_conditional(cmd.account):
                raise Rejected(E.POSITION_SIDE_OPEN_ORDERS)
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.PositionModeChanged(account=cmd.account,
                                          dual_side_position=cmd.dual_side_position))

    def _set_multi_assets(self, cmd: C.SetMultiAssetsMargin) -> None:
        ledger = self.ledger
        on = cmd.multi_assets_margin
        try:
            acct = ledger.account(cmd.account)
            if ledger.config.rules < 2:
                raise Rejected(E.INVALID_VALUE, "Multi-Assets mode needs rules 2",
                               arg="multiAssetsMargin")
            if acct.multi_assets == on:
                raise Rejected(E.NO_NEED_TO_CHANGE_JOINT_MARGIN)
            if on:
                isolated = sorted({p.symbol for p in acct.positions.values()
                                   if p.margin_type == ISOLATED})
                if isolated:
                    raise Rejected(E.ISOLATED_REJECT_WITH_JOINT_MARGIN, ", ".join(isolated))
            if any(p.open_orders for p in acct.positions.values()) or \
                    self.open_conditional(cmd.account):
                raise Rejected(E.JOINT_MARGIN_REJECT_WITH_OPEN_ORDER)
            negative = sorted(a for a in acct.assets() if acct.balance(a) < 0)
            if negative:
                raise Rejected(E.JOINT_MARGIN_REJECT_WITH_NEGATIVE_BALANCE, ", ".join(negative))
            short = self._short_after_switch(acct, on)
            if short:
                raise Rejected(E.JOINT_MARGIN_REJECT_WITH_MB, short)
        except Rejected as r:
            return ledger.reject_command(cmd, r)
        ledger.emit(V.MultiAssetsMarginChanged(account=cmd.account, multi_assets_margin=on))

    def _short_after_switch(self, acct: Account, on: bool) -> str:
        """What the other mode would leave short (the detail of -4169), or ""."""
        if not any(p.qty for p in acct.positions.values()):
            return ""
        ledger = self.ledger
        if on:
            acct.multi_assets = True  # trial, restored below; nothing else reads it meanwhile
            try:
                uni, _, _ = ledger.multi_assets_figures(acct)
            finally:
                acct.multi_assets = False
            return f"uniAvailable {fmt(uni)} USD" if uni < 0 else ""
        acct.multi_assets = False  # trial, restored below
        try:
            short = [f"{a} {fmt(ledger.available_balance(acct, a))}"
                     for a in ledger.cross_assets(acct) if ledger.available_balance(acct, a) < 0]
        finally:
            acct.multi_assets = True
        return ", ".join(short)

    # == appliers =================================================================================
    def _on_account_created(self, ev: V.AccountCreated) -> None:
        self.ledger.accounts[ev.account] = Account(ev.account, ev.registered_at)

    def _on_deposited(self, ev: V.Deposited) -> None:
        self.ledger.accounts[ev.account].credit(ev.asset, ev.amount)
        self.ledger.add_deposit(ev.asset, ev.amount)

    def _on_withdrawn(self, ev: V.Withdrawn) -> None:
        self.ledger.accounts[ev.account].credit(ev.asset, -ev.amount)
        self.ledger.add_withdrawal(ev.asset, ev.amount)

    def _on_multi_assets(self, ev: V.MultiAssetsMarginChanged) -> None:
        self.ledger.accounts[ev.account].multi_assets = ev.multi_assets_margin

    def _legs_for_update(self, acct: Account, symbol: str) -> list[Position]:
        """Every stored position of the symbol; one (stored) if there was none."""
        legs = acct.legs(symbol)
        if len(legs) < (2 if acct.dual_side else 1):
            sides = ("LONG", "SHORT") if acct.dual_side else ("BOTH",)
            legs = [self.ledger.position_for_update(acct, symbol, side) for side in sides]
        return legs

    def _on_leverage(self, ev: V.LeverageChanged) -> None:
        acct = self.ledger.accounts[ev.account]
        for pos in self._legs_for_update(acct, ev.symbol):
            pos.leverage = ev.leverage
            acct.refresh_order_margin(pos)

    def _on_margin_type(self, ev: V.MarginTypeChanged) -> None:
        acct = self.ledger.accounts[ev.account]
        for pos in self._legs_for_update(acct, ev.symbol):
            pos.margin_type = ev.margin_type
        acct.rederive()  # what counts as held and as cross moved

    def _on_isolated(self, ev: V.IsolatedMarginChanged) -> None:
        acct = self.ledger.accounts[ev.account]
        acct.set_isolated(acct.positions[position_key(ev.symbol, ev.position_side)],
                          ev.isolated_margin)

    def _on_position_mode(self, ev: V.PositionModeChanged) -> None:
        """The switch: the account holds no position and no order, so its positions are only
        settings (leverage, margin type) and move to the new mode's keys."""
        acct = self.ledger.accounts[ev.account]
        settings = {p.symbol: p for p in acct.positions.values()}
        acct.positions.clear()
        acct.dual_side = ev.dual_side_position
        sides = ("LONG", "SHORT") if acct.dual_side else ("BOTH",)
        for symbol, old in sorted(settings.items()):
            for side in sides:
                pos = self.ledger.position_for_update(acct, symbol, side)
                pos.leverage, pos.margin_type = old.leverage, old.margin_type
        acct.rederive()


def _ignore(_ev: V.Event) -> None:
    return None


def _none_open(_account: int) -> int:
    return 0
