"""The core's shared state and its one way to change it.

Every part of the core (engine.core.orders, .accounting, .liquidation, .pricing, .tokens,
.spot) holds the same Ledger. A part reads the state freely, and changes it only by emitting
events: `emit` appends the event to the current command's output and applies it at once with
the applier its owning part registered. So rebuilding from a log is applying its events, with
exactly the code that ran live.

The margin figures every part needs (a position's notional and unrealized PnL at the mark,
the available balance, the cross and isolated risk figures) are here too, next to the state
they are computed from. Amounts are ints of 1e-8 units of their asset; times are ms.

Margin assets (rules 2): a symbol's positions draw on its margin asset's wallet
(`SymbolState.asset`), and in Single-Asset mode cross margin, available balance and margin
ratio are per margin asset: the figures below take the asset (USDT by default). In
Multi-Assets mode (`Account.multi_assets`) the account's cross margin is one pool in USD
across all its assets (engine.core.collateral): `cross_risk` answers in USD whatever the
asset, and `available_balance` is that pool's available USD expressed in the asset. Under
rules 1 every symbol is on USDT and COIN-M symbols do not exist. Totals per asset (fees,
insurance fund, deposits, withdrawals): USDT's in the original fields, the others' in dicts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Final

from engine.core import collateral
from engine.core import errors as E
from engine.core import inverse
from engine.core import risk
from engine.core.accounts import BOTH, ISOLATED, Account, Position, position_key
from engine.core.book import Order
from engine.core.catalogue import Catalogue
from engine.core.errors import Rejected
from engine.core.fixed import SCALE, mul_down
from engine.core.markets import SymbolState
from proto import commands as C
from proto import events as V

DAY_MS: Final = 86_400_000

Applier = Callable[[Any], None]
PriceListener = Callable[[str, int, int], None]  # (symbol, source, price)
# the prices a conditional order can work on: mark, last trade ("contract")
MARK: Final = 0
LAST: Final = 1


@dataclass(frozen=True)
class EngineConfig:
    default_leverage: int = 20
    new_account_days: int = 60  # younger accounts may not go above new_account_max_leverage
    new_account_max_leverage: int = 20
    default_stp: str = "EXPIRE_MAKER"  # Binance's current default; older pages say NONE
    checkpoint_every: int = 10_000  # commands between Checkpoint events; 0 = never
    # which of the venue's rules the core follows: 1 = the first release (open-order margin
    # with the taker fee, a time-weighted premium), 2 = Binance's cost to open and its
    # sample-weighted premium. A log records it, so it re-drives under its own rules.
    rules: int = 2

    @classmethod
    def from_dict(cls, recorded: dict, **overrides: Any) -> "EngineConfig":
        """The configuration a log header recorded (unknown keys ignored, defaults where it
        says nothing; a header from before `rules` existed is rules 1), with `overrides`
        on top."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in recorded.items() if k in known}
        if recorded and "rules" not in recorded:
            values["rules"] = 1
        return cls(**{**values, **overrides})


class Ledger:
    def __init__(self, catalogue: Catalogue, config: EngineConfig) -> None:
        self.catalogue = catalogue
        self.config = config
        # rules 1: the first release's venue: USD-M symbols only, all margined from USDT
        multi_asset = config.rules >= 2
        self.symbols: dict[str, SymbolState] = {
            s: SymbolState(spec, spec.margin_asset if multi_asset else "USDT")
            for s, spec in catalogue.symbols.items() if multi_asset or not spec.inverse}
        # the assets a wallet may hold: USDT, every symbol's margin asset, the collateral
        self.asset_names: frozenset[str] = frozenset(
            {"USDT"} | {s.asset for s in self.symbols.values()} |
            ({a for t in catalogue.collateral.schedule for a in t.assets} |
             set(catalogue.collateral.stablecoins) if multi_asset else set()))
        self.accounts: dict[int, Account] = {}
        self.pending: dict[int, Order] = {}  # accepted orders still matching (not resting)
        self.next_order_id = 1
        self.next_trade_id = 1
        self.fees_collected = 0
        self.insurance_fund = 0
        self.total_deposits = 0
        self.total_withdrawals = 0
        # the same totals of every asset other than USDT, and the venue's net position from
        # auto-exchanges (what it received less what it gave, every asset)
        self.other_fees: dict[str, int] = {}
        self.other_insurance: dict[str, int] = {}
        self.other_deposits: dict[str, int] = {}
        self.other_withdrawals: dict[str, int] = {}
        self.exchanged: dict[str, int] = {}
        self.asset_index: dict[str, int] = {}  # asset -> USD index price (setIndexPrices)
        self.seq = 0
        self.time = 0
        self.out: list[V.Event] = []  # the current command's events
        self.appliers: dict[type, Applier] = {}
        self.price_listeners: list[PriceListener] = []
        # positions a fill took to zero during the current command: (account, position key)
        self.closed: set[tuple[int, str]] = set()

    # -- events ------------------------------------------------------------------------------------
    def register(self, appliers: dict[type, Applier]) -> None:
        for t in appliers:
            if t in self.appliers:
                raise ValueError(f"two appliers for {t.__name__}")
        self.appliers.update(appliers)

    def emit(self, ev: V.Event) -> None:
        self.out.append(ev)
        self.appliers[type(ev)](ev)

    def reject_command(self, cmd: C.Command, r: Rejected) -> None:
        self.emit(V.CommandRejected(op=type(cmd).__struct_config__.tag, code=r.code, msg=r.msg,
                                    account=getattr(cmd, "account", 0), detail=r.detail))

    def price_moved(self, symbol: str, source: int, price: int) -> None:
        """Appliers of MarkPriceUpdated (MARK) and Trade (LAST) report the new price."""
        for listener in self.price_listeners:
            listener(symbol, source, price)

    def filled(self, acct: Account, pos: Position) -> None:
        """Appliers of fills report the position they changed."""
        if pos.qty == 0:
            self.closed.add((acct.account_id, pos.key))

    # -- totals per asset -------------------------------------------------------------------------
    def add_fee(self, asset: str, amount: int) -> None:
        if asset == "USDT":
            self.fees_collected += amount
        else:
            self.other_fees[asset] = self.other_fees.get(asset, 0) + amount

    def insurance(self, asset: str) -> int:
        """The insurance fund of `asset`."""
        return self.insurance_fund if asset == "USDT" else self.other_insurance.get(asset, 0)

    def add_insurance(self, asset: str, amount: int) -> None:
        if asset == "USDT":
            self.insurance_fund += amount
        else:
            self.other_insurance[asset] = self.other_insurance.get(asset, 0) + amount

    def deposited(self, asset: str) -> int:
        """Everything paid into the venue in `asset` (deposits and insurance funding): the
        edge keeps it at most fixed.MAX_TOTAL, so every sum of it stays recordable."""
        return self.total_deposits if asset == "USDT" else self.other_deposits.get(asset, 0)

    def add_deposit(self, asset: str, amount: int) -> None:
        if asset == "USDT":
            self.total_deposits += amount
        else:
            self.other_deposits[asset] = self.other_deposits.get(asset, 0) + amount

    def add_withdrawal(self, asset: str, amount: int) -> None:
        if asset == "USDT":
            self.total_withdrawals += amount
        else:
            self.other_withdrawals[asset] = self.other_withdrawals.get(asset, 0) + amount

    def index_price(self, asset: str) -> int:
        """An asset's USD index for Multi-Assets valuation and auto-exchange: the fed one; a
        stablecoin of the catalogue's collateral section without one counts 1 USD, any other
        asset 0."""
        price = self.asset_index.get(asset)
        if price is not None:
            return price
        return SCALE if asset in self.catalogue.collateral.stablecoins else 0

    # -- lookups that validation uses --------------------------------------------------------------
    def account(self, account: int) -> Account:
        acct = self.accounts.get(account)
        if acct is None:
            raise Rejected(E.UNKNOWN_ACCOUNT, f"unknown account {account}: send createAccount "
                                              f"first")
        return acct

    def symbol(self, name: str) -> SymbolState:
        sym = self.symbols.get(name)
        if sym is None:
            raise Rejected(E.INVALID_SYMBOL, f"unknown symbol {name!r}")
        return sym

    def asset(self, name: str) -> str:
        """A wallet asset named by a command, checked."""
        if name not in self.asset_names:
            raise Rejected(E.INVALID_VALUE, f"unknown asset {name!r}", arg="asset")
        return name

    def position(self, acct: Account, symbol: str, side: str = BOTH) -> Position:
        """The account's position (or hedge leg) in `symbol`; a fresh one (not stored) with the
        symbol's settings if it has none."""
        pos = acct.positions.get(position_key(symbol, side))
        if pos is None:
            pos = self._new_position(acct, symbol, side)
        return pos

    def position_for_update(self, acct: Account, symbol: str, side: str = BOTH) -> Position:
        """For appliers: the position, stored if it was new."""
        key = position_key(symbol, side)
        pos = acct.positions.get(key)
        if pos is None:
            pos = acct.positions[key] = self._new_position(acct, symbol, side)
        return pos

    def _new_position(self, acct: Account, symbol: str, side: str) -> Position:
        """A new position inherits the symbol's leverage and margin type from its other leg
        (they are per symbol, shared by a hedge account's LONG and SHORT)."""
        sym = self.symbols[symbol]
        pos = Position(symbol, self.config.default_leverage, sym.spec.taker_fee,
                       self.config.rules, side, sym.asset, sym.contract_size)
        for other in (symbol, symbol + ":LONG", symbol + ":SHORT"):
            o = acct.positions.get(other)
            if o is not None:
                pos.leverage, pos.margin_type = o.leverage, o.margin_type
                break
        return pos

    def symbol_settings(self, acct: Account, symbol: str) -> Position:
        """Any stored position of the symbol (they all carry its leverage and margin type), or
        a fresh one."""
        for key in (symbol, symbol + ":LONG", symbol + ":SHORT"):
            pos = acct.positions.get(key)
            if pos is not None:
                return pos
        return self._new_position(acct, symbol, BOTH)

    def is_young(self, acct: Account) -> bool:
        """Registered less than `new_account_days` before the command's time."""
        return self.time - acct.registered_at < self.config.new_account_days * DAY_MS

    # -- margin figures ----------------------------------------------------------------------------
    def position_figures(self, pos: Position, sym: SymbolState) -> tuple[int, int, int]:
        """(signed notional at the mark, unrealized PnL, initial margin), in the position's
        margin asset (the coin for COIN-M: engine.core.inverse). Before any mark or trade price
        exists a position is valued at its entry."""
        if pos.qty == 0:
            return 0, 0, 0
        ref = sym.mark
        size = pos.contract_size
        if size:
            notional = inverse.notional_at(pos.qty, pos.cost, size, ref)
            upnl = inverse.value_at(pos.qty, pos.cost, size, ref) - pos.cost
        else:
            notional = mul_down(pos.qty, ref) if ref else pos.cost
            upnl = notional - pos.cost
        im = -(-abs(notional) // pos.leverage)
        return notional, upnl, im

    def available_balance(self, acct: Account, asset: str = "USDT") -> int:
        """What the account can still commit in `asset`: Single-Asset mode, the asset's cross
        wallet (wallet less isolated margins) + its cross unrealized PnL - cross position
        initial margin - open-order margin; Multi-Assets mode, the account's uniAvailable
        (USD) in units of the asset (engine.core.collateral)."""
        if acct.multi_assets:
            uni, _, _ = self.multi_assets_figures(acct)
            return collateral.in_asset(uni, self.rates(asset)[1])
        # kept by the appliers (Account.held, open_cross): no pass over every position
        avail = acct.wallet if asset == "USDT" else acct.balances.get(asset, 0)
        avail -= acct.holding(asset)
        symbols = self.symbols
        for pos in acct.open_cross:
            if pos.asset == asset:
                _, upnl, im = self.position_figures(pos, symbols[pos.symbol])
                avail += upnl - im
        return avail

    def withdrawable(self, acct: Account, asset: str) -> int:
        """The most a withdrawal of `asset` may take: min(available, wallet); in Multi-Assets
        mode an asset that counts nothing there (no collateral ratio or no price) only needs
        the account not to be short already."""
        balance = acct.balance(asset)
        if acct.multi_assets and self.rates(asset)[0] == 0:
            uni, _, _ = self.multi_assets_figures(acct)
            return balance if uni >= 0 else 0
        return min(self.available_balance(acct, asset), balance)

    def cross_risk(self, acct: Account, asset: str = "USDT") -> risk.RiskFigures:
        """Maintenance margin of the cross positions against the cross margin balance: of the
        margin asset `asset` (Single-Asset mode), or of the whole account in USD (Multi-Assets
        mode, whatever `asset`)."""
        if acct.multi_assets:
            _, equity, mm = self.multi_assets_figures(acct)
            return risk.RiskFigures(mm, equity)
        balance = acct.wallet if asset == "USDT" else acct.balances.get(asset, 0)
        mm = 0
        for pos in acct.positions.values():
            if pos.asset != asset:
                continue
            if pos.margin_type == ISOLATED:
                balance -= pos.isolated_margin
            elif pos.qty:
                sym = self.symbols[pos.symbol]
                notional, upnl, _ = self.position_figures(pos, sym)
                balance += upnl
                mm += sym.table_at(self.time).maint_margin(abs(notional))
        return risk.RiskFigures(mm, balance)

    def isolated_risk(self, pos: Position) -> risk.RiskFigures:
        sym = self.symbols[pos.symbol]
        notional, upnl, _ = self.position_figures(pos, sym)
        mm = sym.table_at(self.time).maint_margin(abs(notional)) if pos.qty else 0
        return risk.RiskFigures(mm, pos.isolated_margin + upnl)

    def cross_assets(self, acct: Account) -> list[str]:
        """The margin assets whose cross scope can need the risk engine: those of the account's
        cross positions, USDT, and any asset with a negative wallet."""
        assets = {"USDT"}
        for pos in acct.positions.values():
            if pos.qty and pos.margin_type != ISOLATED:
                assets.add(pos.asset)
        for asset, b in acct.balances.items():
            if b < 0:
                assets.add(asset)
        return sorted(assets)

    # -- Multi-Assets mode -------------------------------------------------------------------------
    def rates(self, asset: str) -> tuple[int, int]:
        """(bid rate, ask rate) of `asset` now, 1e-16 USD per unit (engine.core.collateral)."""
        return collateral.rates(self.catalogue.collateral.at(self.time), asset,
                                self.index_price(asset))

    def asset_equities(self, acct: Account) -> tuple[dict[str, int], dict[str, int],
                                                     dict[str, int]]:
        """Per asset: (wallet + unrealized PnL, initial margin of positions and open orders,
        maintenance margin), in the asset's units; isolated positions count their margin as
        part of the wallet (they cannot exist in Multi-Assets mode, but a view may ask)."""
        equity = {"USDT": acct.wallet, **acct.balances}
        initial: dict[str, int] = {}
        maint: dict[str, int] = {}
        symbols = self.symbols
        for pos in acct.positions.values():
            asset = pos.asset
            if pos.order_margin:
                initial[asset] = initial.get(asset, 0) + pos.order_margin
            if not pos.qty:
                continue
            sym = symbols[pos.symbol]
            notional, upnl, im = self.position_figures(pos, sym)
            equity[asset] = equity.get(asset, 0) + upnl
            initial[asset] = initial.get(asset, 0) + im
            maint[asset] = maint.get(asset, 0) + \
                sym.table_at(self.time).maint_margin(abs(notional))
        return equity, initial, maint

    def prices_for(self, assets: list[str]) -> dict[str, int]:
        return {a: self.index_price(a) for a in assets}

    def multi_assets_figures(self, acct: Account) -> tuple[int, int, int]:
        """The account in USD: (uniAvailable, account equity, maintenance margin)."""
        equity, initial, maint = self.asset_equities(acct)
        prices = self.prices_for(sorted(set(equity) | set(initial) | set(maint)))
        total, im, mm = collateral.account_figures(self.catalogue.collateral.at(self.time),
                                                   prices, equity, initial, maint)
        return total - im, total, mm
