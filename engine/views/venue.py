"""The venue's own risk events, for the web page: every change of each insurance fund (with
the balance after it) and every auto-deleveraging trade. A projection of the log like
engine.views.history (fed one record at a time, rebuilt from the log's start on restart, so
the running balance equals the core's), bounded: the newest `keep` rows of each kind.

Public rows name no account (as Binance's public data never does): an ADL trade is its symbol,
the liquidated side, price, quantity and time.
"""
from __future__ import annotations

from collections import OrderedDict, deque

from engine.core.fixed import fmt
from proto import events as V
from proto.records import LogRecord

SIDES_KEPT = 4096  # liquidation orders whose side an ADL trade may still need


class VenueEvents:
    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self.funds: dict[str, int] = {}  # asset -> balance (1e-8 units)
        self.updated: dict[str, int] = {}  # asset -> time of the last change
        # (time, asset, change, balance after, kind, symbol)
        self.insurance: deque = deque(maxlen=keep)
        # (time, trade id, symbol, liquidated side, price, quantity)
        self.adl: deque = deque(maxlen=keep)
        self._sides: OrderedDict[int, str] = OrderedDict()  # liquidation order id -> side

    def apply(self, record: LogRecord) -> None:
        t = record.time
        for ev in record.events:
            et = type(ev)
            if et is V.LiquidationFeeCharged:
                self._fund(t, ev.asset, ev.amount, "LIQUIDATION_FEE", ev.symbol)
            elif et is V.InsuranceCovered:
                self._fund(t, ev.asset, -ev.amount, "INSURANCE_CLEAR", ev.symbol)
            elif et is V.InsuranceFunded:
                self._fund(t, ev.asset, ev.amount, "FUNDED", "")
            elif et is V.OrderAccepted and ev.liquidation:
                self._sides[ev.order_id] = ev.side
                if len(self._sides) > SIDES_KEPT:
                    self._sides.popitem(last=False)
            elif et is V.AdlTrade:
                side = self._sides.get(ev.order_id, "")
                self.adl.append((t, ev.trade_id, ev.symbol, side, ev.price, ev.quantity))

    def _fund(self, t: int, asset: str, change: int, kind: str, symbol: str) -> None:
        balance = self.funds.get(asset, 0) + change
        self.funds[asset] = balance
        self.updated[asset] = t
        self.insurance.append((t, asset, change, balance, kind, symbol))

    # -- reads ------------------------------------------------------------------------------------
    def insurance_rows(self, limit: int) -> list[dict]:
        return [{"time": r[0], "asset": r[1], "change": fmt(r[2]), "balance": fmt(r[3]),
                 "type": r[4], "symbol": r[5]} for r in list(self.insurance)[-limit:]]

    def adl_rows(self, limit: int, symbol: str | None = None) -> list[dict]:
        rows = [r for r in self.adl if symbol is None or r[2] == symbol][-limit:]
        return [{"time": r[0], "tradeId": r[1], "symbol": r[2], "side": r[3],
                 "price": fmt(r[4]), "qty": fmt(r[5])} for r in rows]
