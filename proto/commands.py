"""Commands: what a client or the sequencer asks the core to do. Tag field: "op".

Array-like structs, like the events (see proto.events): positional in msgpack and the log,
objects at the JSON edge (proto.json_edge); new fields go at the end, with a default."""
from __future__ import annotations

from typing import Literal, Union

import msgspec

Side = Literal["BUY", "SELL"]
OrderType = Literal["LIMIT", "MARKET"]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTX"]
StpMode = Literal["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
MarginType = Literal["CROSSED", "ISOLATED"]


class Command(msgspec.Struct, frozen=True, tag_field="op", rename="camel", forbid_unknown_fields=True,
              array_like=True):
    pass


class CreateAccount(Command, tag="createAccount"):
    account: int
    registered_at: int | None = None  # ms; defaults to the command's time


class Deposit(Command, tag="deposit"):
    account: int
    amount: int  # USDT, 1e-8


class Withdraw(Command, tag="withdraw"):
    account: int
    amount: int


class NewOrder(Command, tag="newOrder"):
    account: int
    symbol: str
    side: Side
    type: OrderType
    quantity: int
    price: int = 0  # required for LIMIT, absent for MARKET
    time_in_force: TimeInForce | None = None  # LIMIT default GTC
    reduce_only: bool = False
    new_client_order_id: str = ""
    self_trade_prevention_mode: StpMode | None = None  # None: the engine's default


class CancelOrder(Command, tag="cancelOrder"):
    account: int
    symbol: str
    order_id: int = 0
    orig_client_order_id: str = ""


class CancelAllOrders(Command, tag="cancelAllOrders"):
    account: int
    symbol: str


class ModifyOrder(Command, tag="modifyOrder"):
    """Binance's PUT /fapi/v1/order: new price and/or new original quantity of a LIMIT order."""
    account: int
    symbol: str
    order_id: int
    quantity: int
    price: int


class SetLeverage(Command, tag="setLeverage"):
    account: int
    symbol: str
    leverage: int


class SetMarkPrice(Command, tag="setMarkPrice"):
    """Price feed: the mark (and index) price of a symbol."""
    symbol: str
    mark_price: int
    index_price: int = 0


class SetMarginType(Command, tag="setMarginType"):
    account: int
    symbol: str
    margin_type: MarginType


class AdjustIsolatedMargin(Command, tag="adjustIsolatedMargin"):
    """Binance's POST /fapi/v1/positionMargin: type 1 adds, type 2 removes."""
    account: int
    symbol: str
    amount: int
    type: Literal[1, 2]


class Liquidate(Command, tag="liquidate"):
    """From the risk consumer: liquidate the account's cross positions (symbol "") or its
    isolated position in `symbol`. The core re-checks before acting."""
    account: int
    symbol: str = ""


class MarginCall(Command, tag="marginCall"):
    """From the risk consumer: the account (cross, or isolated `symbol`) crossed 80 %. The core
    records it with the margin ratio it computes itself."""
    account: int
    symbol: str = ""


class FundInsurance(Command, tag="fundInsurance"):
    """Admin: pay into the insurance fund (counted with deposits)."""
    amount: int


class SetIndexPrices(Command, tag="setIndexPrices"):
    """Price feed from spot markets: index prices keyed by contract symbol (e.g. "BTCUSDT"),
    not by base asset, since BTCUSDT and BTCBUSD have different indices. The composite's own
    index (ALLUSDT) is computed, never fed. Each symbol's premium index and mark price are
    recomputed from it; the mark replaces any fed through SetMarkPrice."""
    prices: dict[str, int]


class ListSymbol(Command, tag="listSymbol"):
    """Admin: a catalogue symbol is listed (starts trading) at `onboard_time` (ms). Symbols
    never listed by command count as listed since forever. Drives composite membership."""
    symbol: str
    onboard_time: int


class ScheduleDelisting(Command, tag="scheduleDelisting"):
    """Admin: the symbol is delisted at `delist_time` (ms); it leaves the composite index at the
    first rebalance at or after 40 hours before it."""
    symbol: str
    delist_time: int


class LaunchToken(Command, tag="launchToken"):
    """Admin: start a leveraged token of the catalogue (engine/tokens.json): its issuer account
    is created (with the token's issuer leverage on the underlying), NAV = initial NAV."""
    token_name: str


class FuturesTransfer(Command, tag="futuresTransfer"):
    """Binance's POST /sapi/v1/futures/transfer for USDT: type 1 spot -> USDⓈ-M futures wallet,
    type 2 futures -> spot wallet."""
    account: int
    amount: int
    type: Literal[1, 2]
    asset: Literal["USDT"] = "USDT"


class SubscribeToken(Command, tag="subscribeToken"):
    """Binance's POST /sapi/v1/blvt/subscribe: spend `cost` USDT of the spot wallet on tokens at
    the real-time NAV (the subscription fee is charged on top, from the spot wallet)."""
    account: int
    token_name: str
    cost: int


class RedeemToken(Command, tag="redeemToken"):
    """Binance's POST /sapi/v1/blvt/redeem: burn `amount` tokens of the spot wallet for USDT at
    the real-time NAV, less the redemption fee."""
    account: int
    token_name: str
    amount: int


class NewSpotOrder(Command, tag="newSpotOrder"):
    """An order on a token's spot book (e.g. "BTCUPUSDT"); spot balances only."""
    account: int
    symbol: str
    side: Side
    type: OrderType
    quantity: int
    price: int = 0
    time_in_force: TimeInForce | None = None
    new_client_order_id: str = ""
    self_trade_prevention_mode: StpMode | None = None


class CancelSpotOrder(Command, tag="cancelSpotOrder"):
    account: int
    symbol: str
    order_id: int


AnyCommand = Union[
    CreateAccount, Deposit, Withdraw, NewOrder, CancelOrder, CancelAllOrders, ModifyOrder,
    SetLeverage, SetMarkPrice, SetMarginType, AdjustIsolatedMargin, Liquidate, MarginCall,
    FundInsurance, SetIndexPrices, ListSymbol, ScheduleDelisting, LaunchToken, FuturesTransfer,
    SubscribeToken, RedeemToken, NewSpotOrder, CancelSpotOrder,
]

__all__ = [
    "Command", "AnyCommand", "CreateAccount", "Deposit", "Withdraw", "NewOrder", "CancelOrder",
    "CancelAllOrders", "ModifyOrder", "SetLeverage", "SetMarkPrice", "SetMarginType",
    "AdjustIsolatedMargin", "Liquidate", "MarginCall", "FundInsurance",
    "SetIndexPrices", "ListSymbol", "ScheduleDelisting", "LaunchToken", "FuturesTransfer",
    "SubscribeToken", "RedeemToken", "NewSpotOrder", "CancelSpotOrder",
    "Side", "OrderType", "TimeInForce", "StpMode", "MarginType",
]
