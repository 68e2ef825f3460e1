"""The core's shared state and its one way to change it.

Every part of the core (engine.core.orders, .accounting, .liquidation, .pricing, .tokens,
.spot) holds the same Ledger. A part reads the state freely, and changes it only by emitting
events: `emit` appends the event to the current command's output and applies it at once with
the applier its owning part registered. So rebuilding from a log is applying its events, with
exactly the code that ran live.

The margin figures every part needs (a position's notional and unrealized PnL at the mark,
the available balance, the cross and isolated risk figures) are here too, next to the state
they are computed from. Amounts are ints of 1e-8 USDT; times are ms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from engine.core import errors as E
from engine.core import risk
from engine.core.accounts import BOTH, ISOLATED, Account, Position, position_key
from engine.core.book import Order
from engine.core.catalogue import Catalogue
from engine.core.errors import Rejected
from engine.core.fixed import SCALE
from engine.core.markets import SymbolState
from proto import commands as C
from proto import events as V

DAY_MS = 86_400_000

Applier = Callable[[Any], None]
PriceListener = Callable[[str, int, int], None]  # (symbol, source, price)
MARK, LAST = 0, 1  # the prices a conditional order can work on: mark, last trade ("contract")


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
        self.symbols: dict[str, SymbolState] = {s: SymbolState(spec)
                                                for s, spec in catalogue.symbols.items()}
        self.accounts: dict[int, Account] = {}
        self.pending: dict[int, Order] = {}  # accepted orders still matching (not resting)
        self.next_order_id = 1
        self.next_trade_id = 1
        self.fees_collected = 0
        self.insurance_fund = 0
        self.total_deposits = 0
        self.total_withdrawals = 0
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
        pos = Position(symbol, self.config.default_leverage,
                       self.symbols[symbol].spec.taker_fee, self.config.rules, side)
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
        """(signed notional at the mark, unrealized PnL, initial margin). Before any mark or
        trade price exists a position is valued at its entry."""
        if pos.qty == 0:
            return 0, 0, 0
        ref = sym.mark
        notional = pos.qty * ref // SCALE if ref else pos.cost
        upnl = notional - pos.cost
        im = -(-abs(notional) // pos.leverage)
        return notional, upnl, im

    def available_balance(self, acct: Account) -> int:
        """Cross wallet (wallet less isolated margins) + cross unrealized PnL - cross position
        initial margin - open-order margin."""
        avail = acct.wallet - acct.order_margin
        symbols = self.symbols
        for pos in acct.positions.values():
            if pos.margin_type == ISOLATED:
                avail -= pos.isolated_margin
            elif pos.qty:
                _, upnl, im = self.position_figures(pos, symbols[pos.symbol])
                avail += upnl - im
        return avail

    def cross_risk(self, acct: Account) -> risk.RiskFigures:
        """Maintenance margin of all cross positions against the cross margin balance."""
        balance = acct.wallet
        mm = 0
        for pos in acct.positions.values():
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
