"""Commands: what a client or the sequencer asks the core to do. Tag field: "op".

Array-like structs, like the events (see proto.events): positional in msgpack and the log,
objects at the JSON edge (proto.json_edge); new fields go at the end, with a default."""
from __future__ import annotations

from typing import Literal, Union

import msgspec

Side = Literal["BUY", "SELL"]
# the conditional types are listed so that an ordinary order of one gets Binance's -4120 from
# the core (they are placed with NewAlgoOrder)
OrderType = Literal["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                    "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]
ConditionalType = Literal["STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                          "TRAILING_STOP_MARKET"]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTX", "GTD"]
StpMode = Literal["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
MarginType = Literal["CROSSED", "ISOLATED"]
PositionSide = Literal["BOTH", "LONG", "SHORT"]
PriceMatch = Literal["NONE", "OPPONENT", "OPPONENT_5", "OPPONENT_10", "OPPONENT_20", "QUEUE",
                     "QUEUE_5", "QUEUE_10", "QUEUE_20"]
WorkingType = Literal["MARK_PRICE", "CONTRACT_PRICE"]


class Command(msgspec.Struct, frozen=True, tag_field="op", rename="camel", forbid_unknown_fields=True,
              array_like=True):
    pass


class CreateAccount(Command, tag="createAccount"):
    account: int
    registered_at: int | None = None  # ms; defaults to the command's time


class Deposit(Command, tag="deposit"):
    """Admin: credit the account's futures wallet in `asset` (1e-8 units)."""
    account: int
    amount: int
    asset: str = "USDT"


class Withdraw(Command, tag="withdraw"):
    account: int
    amount: int
    asset: str = "USDT"


class NewOrder(Command, tag="newOrder"):
    account: int
    symbol: str
    side: Side
    type: OrderType
    quantity: int
    price: int = 0  # required for LIMIT (unless priceMatch), absent for MARKET
    time_in_force: TimeInForce | None = None  # LIMIT default GTC
    reduce_only: bool | None = None  # None: not sent (hedge mode refuses it even false)
    new_client_order_id: str = ""
    self_trade_prevention_mode: StpMode | None = None  # None: the engine's default
    position_side: PositionSide | None = None  # None: not sent (BOTH in one-way mode)
    price_match: PriceMatch | None = None  # the price from the book instead of `price`
    good_till_date: int = 0  # ms, with timeInForce GTD


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
    position_side: PositionSide = "BOTH"


class SetMultiAssetsMargin(Command, tag="setMultiAssetsMargin"):
    """Binance's POST /fapi/v1/multiAssetsMargin: Multi-Assets mode (true) or Single-Asset
    mode (false) for the whole account."""
    account: int
    multi_assets_margin: bool


class SetPositionMode(Command, tag="setPositionMode"):
    """Binance's POST /fapi/v1/positionSide/dual: hedge mode (true) or one-way (false)."""
    account: int
    dual_side_position: bool


class NewAlgoOrder(Command, tag="newAlgoOrder"):
    """Binance's POST /fapi/v1/algoOrder (algoType CONDITIONAL): an order that waits in the
    core until its trigger, then is placed as an ordinary order. Prices and `callback_rate`
    (percent: 1 = 1 %) in 1e-8 units."""
    account: int
    symbol: str
    side: Side
    type: ConditionalType
    quantity: int = 0
    price: int = 0  # the limit price of STOP / TAKE_PROFIT
    trigger_price: int = 0
    working_type: WorkingType = "CONTRACT_PRICE"
    price_protect: bool = False
    close_position: bool = False
    reduce_only: bool | None = None
    activate_price: int = 0  # TRAILING_STOP_MARKET; 0: the latest price
    callback_rate: int = 0  # TRAILING_STOP_MARKET, percent, 0.1 to 10
    time_in_force: TimeInForce | None = None
    client_algo_id: str = ""
    self_trade_prevention_mode: StpMode | None = None
    position_side: PositionSide | None = None
    price_match: PriceMatch | None = None
    good_till_date: int = 0


class CancelAlgoOrder(Command, tag="cancelAlgoOrder"):
    """Binance's DELETE /fapi/v1/algoOrder: by algoId or clientAlgoId."""
    account: int
    algo_id: int = 0
    client_algo_id: str = ""


class CancelAllAlgoOrders(Command, tag="cancelAllAlgoOrders"):
    """Binance's DELETE /fapi/v1/algoOpenOrders."""
    account: int
    symbol: str


class Liquidate(Command, tag="liquidate"):
    """From the risk consumer: liquidate the account's cross positions of margin asset
    `asset` (symbol ""; in Multi-Assets mode the whole account, whatever the asset) or its
    isolated position in `symbol` (its `position_side` leg in hedge mode). The core re-checks
    before acting."""
    account: int
    symbol: str = ""
    position_side: PositionSide = "BOTH"
    asset: str = "USDT"


class MarginCall(Command, tag="marginCall"):
    """From the risk consumer: the account (cross in `asset`, or isolated `symbol` / leg)
    crossed 80 %. The core records it with the margin ratio it computes itself."""
    account: int
    symbol: str = ""
    position_side: PositionSide = "BOTH"
    asset: str = "USDT"


class FundInsurance(Command, tag="fundInsurance"):
    """Admin: pay into the insurance fund of `asset` (counted with deposits)."""
    amount: int
    asset: str = "USDT"


class SetIndexPrices(Command, tag="setIndexPrices"):
    """Price feed from spot markets: index prices keyed by contract symbol (e.g. "BTCUSDT"),
    not by base asset, since BTCUSDT and BTCBUSD have different indices. The composite's own
    index (ALLUSDT) is computed, never fed. Each symbol's premium index and mark price are
    recomputed from it; the mark replaces any fed through SetMarkPrice. Rules 2 also takes
    USD pairs ("BTCUSD", "USDTUSD"): an asset's index for Multi-Assets valuation, and the
    index of the COIN-M contracts of that pair (BTCUSD_PERP)."""
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
    type: Literal["LIMIT", "MARKET"]
    quantity: int
    price: int = 0
    time_in_force: Literal["GTC", "IOC", "FOK", "GTX"] | None = None
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
    SubscribeToken, RedeemToken, NewSpotOrder, CancelSpotOrder, SetPositionMode, NewAlgoOrder,
    CancelAlgoOrder, CancelAllAlgoOrders, SetMultiAssetsMargin,
]

__all__ = [
    "Command", "AnyCommand", "CreateAccount", "Deposit", "Withdraw", "NewOrder", "CancelOrder",
    "CancelAllOrders", "ModifyOrder", "SetLeverage", "SetMarkPrice", "SetMarginType",
    "AdjustIsolatedMargin", "Liquidate", "MarginCall", "FundInsurance",
    "SetIndexPrices", "ListSymbol", "ScheduleDelisting", "LaunchToken", "FuturesTransfer",
    "SubscribeToken", "RedeemToken", "NewSpotOrder", "CancelSpotOrder", "SetPositionMode",
    "NewAlgoOrder", "CancelAlgoOrder", "CancelAllAlgoOrders", "SetMultiAssetsMargin",
    "Side", "OrderType", "ConditionalType", "TimeInForce", "StpMode", "MarginType",
    "PositionSide", "PriceMatch", "WorkingType",
]
