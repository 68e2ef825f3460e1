"""Events: what happened, in order. Tag field: "e" (as in Binance's streams).

The core mutates its state only by applying these events, so the events alone rebuild it.

Events (and commands) are array-like msgspec structs: msgpack and the log (format 3) hold them
positionally, [tag, field1, field2, ...], not as maps of field names. The JSON edge
(proto.json_edge.to_wire) still shows them as objects keyed by the camelCase names. So a field
is added at the END of its event with a default (older logs then still decode); any other
change of fields is a new log format with an upcaster (proto.upcasters).
"""
from __future__ import annotations

from typing import Literal, Union

import msgspec

from proto.commands import Side


class Event(msgspec.Struct, frozen=True, tag_field="e", rename="camel", array_like=True):
    pass


class AccountCreated(Event, tag="accountCreated"):
    account: int
    registered_at: int


class Deposited(Event, tag="deposited"):
    account: int
    amount: int
    balance: int  # wallet balance after (in `asset`)
    asset: str = "USDT"


class Withdrawn(Event, tag="withdrawn"):
    account: int
    amount: int
    balance: int
    asset: str = "USDT"


class OrderAccepted(Event, tag="orderAccepted"):
    """Order status NEW. rest=True: it crossed nothing and now rests on the book in full."""
    order_id: int
    account: int
    symbol: str
    side: Side
    type: str
    time_in_force: str
    price: int
    quantity: int
    reduce_only: bool
    client_order_id: str
    stp_mode: str
    rest: bool
    liquidation: bool = False  # a liquidation order (IOC at the bankruptcy price)
    position_side: str = "BOTH"
    # for the open-order margin (engine.core.accounts): the assumed price and the open loss
    # per unit (1e-8 USDT per unit of quantity); 0 under rules 1
    cost_price: int = 0
    loss_unit: int = 0
    good_till_date: int = 0  # ms; with timeInForce GTD the order expires then


class OrderRested(Event, tag="orderRested"):
    """After its fills, the remaining `quantity` of a taker order joins the book."""
    order_id: int
    quantity: int


class Trade(Event, tag="trade"):
    trade_id: int
    symbol: str
    price: int
    quantity: int
    taker_side: Side
    maker_order_id: int
    taker_order_id: int
    maker_account: int
    taker_account: int
    maker_fee: int  # paid, >= 0
    taker_fee: int
    maker_realized_pnl: int
    taker_realized_pnl: int


class OrderCanceled(Event, tag="orderCanceled"):
    order_id: int
    account: int
    symbol: str
    quantity: int  # the remaining quantity that was canceled


class OrderExpired(Event, tag="orderExpired"):
    """Status EXPIRED (IOC/MARKET remainder, reduce-only excess) or EXPIRED_IN_MATCH (STP)."""
    order_id: int
    account: int
    symbol: str
    quantity: int
    status: Literal["EXPIRED", "EXPIRED_IN_MATCH"]
    reason: str


class OrderModified(Event, tag="orderModified"):
    """New price and original quantity. kept_priority=False: it left the book and re-enters."""
    order_id: int
    account: int
    symbol: str
    price: int
    quantity: int
    kept_priority: bool
    cost_price: int = 0  # the new price's assumed price and open loss per unit (rules 2)
    loss_unit: int = 0


class OrderRejected(Event, tag="orderRejected"):
    """`msg` is Binance's text for `code`; `detail` what the engine adds (the limit hit)."""
    account: int
    symbol: str
    code: int
    msg: str
    client_order_id: str = ""
    order_id: int = 0
    detail: str = ""


class CommandRejected(Event, tag="commandRejected"):
    """A non-order command refused (cancel, leverage, withdraw, ...)."""
    op: str
    code: int
    msg: str
    account: int = 0
    detail: str = ""


class LeverageChanged(Event, tag="leverageChanged"):
    account: int
    symbol: str
    leverage: int


class MarkPriceUpdated(Event, tag="markPriceUpdated"):
    symbol: str
    mark_price: int
    index_price: int


class Checkpoint(Event, tag="checkpoint"):
    """State hash after the command with sequence `seq` (blake2b-128 of the canonical state)."""
    seq: int
    state_hash: str


class MarginTypeChanged(Event, tag="marginTypeChanged"):
    account: int
    symbol: str
    margin_type: str


class IsolatedMarginChanged(Event, tag="isolatedMarginChanged"):
    account: int
    symbol: str
    amount: int  # signed: added (+) or removed (-)
    isolated_margin: int  # after
    position_side: str = "BOTH"


class MultiAssetsMarginChanged(Event, tag="multiAssetsMarginChanged"):
    """Multi-Assets mode (true) or Single-Asset mode for the account's USD-M margin."""
    account: int
    multi_assets_margin: bool


class PositionModeChanged(Event, tag="positionModeChanged"):
    """Hedge mode (dual_side_position) or one-way, for every symbol of the account."""
    account: int
    dual_side_position: bool


class BracketTableSwitched(Event, tag="bracketTableSwitched"):
    """An effective-dated table took effect; existing positions are re-tiered from now on."""
    symbol: str
    table: str
    effective_time: int


class MarginCallIssued(Event, tag="marginCall"):
    account: int
    symbol: str  # "" for cross
    margin_ratio: int
    position_side: str = "BOTH"  # the isolated leg in hedge mode
    asset: str = "USDT"  # the cross margin asset; "USD": a Multi-Assets account as a whole


class LiquidationStarted(Event, tag="liquidationStarted"):
    """`maint_margin` and `margin_balance` in `asset` (in USD for a Multi-Assets account)."""
    account: int
    symbol: str  # "" for cross
    maint_margin: int
    margin_balance: int
    position_side: str = "BOTH"  # the isolated leg in hedge mode
    asset: str = "USDT"  # the cross margin asset; "USD": a Multi-Assets account as a whole


class LiquidationDeclined(Event, tag="liquidationDeclined"):
    """The core's re-check found the account healthy: nothing was done."""
    account: int
    symbol: str
    maint_margin: int
    margin_balance: int
    position_side: str = "BOTH"
    asset: str = "USDT"


class AdlTrade(Event, tag="adlTrade"):
    """Auto-deleveraging: the liquidation order's remainder closes against `counterparty` at
    the bankruptcy price."""
    trade_id: int
    symbol: str
    price: int
    quantity: int
    order_id: int  # the liquidation order
    account: int  # the liquidated account
    counterparty: int
    realized_pnl: int
    counterparty_realized_pnl: int
    position_side: str = "BOTH"  # the liquidated leg
    counterparty_position_side: str = "BOTH"  # the counterparty's leg


class LiquidationFeeCharged(Event, tag="liquidationFee"):
    account: int
    symbol: str
    amount: int  # to the insurance fund of `asset`
    position_side: str = "BOTH"
    asset: str = "USDT"


class InsuranceCovered(Event, tag="insuranceCovered"):
    """The insurance fund of `asset` paid a liquidated account's loss beyond its margin."""
    account: int
    symbol: str
    amount: int
    position_side: str = "BOTH"
    asset: str = "USDT"


class InsuranceFunded(Event, tag="insuranceFunded"):
    amount: int
    balance: int  # the fund of `asset` after
    asset: str = "USDT"


class AssetExchanged(Event, tag="assetExchanged"):
    """Binance's auto-exchange (Multi-Assets mode, after a liquidation left `asset` negative):
    `from_amount` of `from_asset` left the account's wallet and `amount` of `asset` came in,
    both at their index prices (USD, recorded here): amount x index_price <= from_amount x
    from_index_price, by less than one unit of `from_asset` (the sold amount rounds up). The
    venue is the counterparty."""
    account: int
    asset: str
    amount: int
    from_asset: str
    from_amount: int
    index_price: int
    from_index_price: int


class AssetIndexUpdated(Event, tag="assetIndexUpdated"):
    """An asset's USD index (setIndexPrices' "BTCUSD", "USDTUSD"): its Multi-Assets valuation,
    and the index of the COIN-M contracts of that pair (their IndexPriceUpdated follows)."""
    asset: str
    pair: str
    index_price: int


class CollateralRatiosSwitched(Event, tag="collateralRatiosSwitched"):
    """An effective-dated table of Multi-Assets collateral ratios took effect."""
    effective_time: int


class IndexPriceUpdated(Event, tag="indexPriceUpdated"):
    """A symbol's index price (fed, or the composite's value), with the premium index sampled
    from its book at that moment: impact bid and ask at the impact margin notional (0: that
    side is too thin) and the mid (0: a side is empty). Followed by its MarkPriceUpdated."""
    symbol: str
    index_price: int
    impact_bid_price: int
    impact_ask_price: int
    mid_price: int
    premium_index: int


class CompositeConstituent(msgspec.Struct, frozen=True, rename="camel", array_like=True):
    symbol: str
    price: int  # its index price at the rebalance: the exact weight round(1e36 / price) follows
    weight_in_quantity: int  # display: index points per unit of its price (1e-8)


class CompositeRebalanced(Event, tag="compositeRebalanced"):
    """The composite's members and weights from `time` (08:00 UTC; the first composition: its
    command's time). Equal value at the rebalance prices; the value is unchanged across it:
    value = index_price x sum(q x p) / sum(q x p at the rebalance) (the divisor, exact)."""
    symbol: str
    time: int
    index_price: int
    constituents: list[CompositeConstituent]
    added: list[str]
    removed: list[str]


class FundingRateSet(Event, tag="fundingRateSet"):
    """A symbol's funding rate for the interval ending at `funding_time` (capped)."""
    symbol: str
    funding_time: int
    funding_rate: int
    average_premium_index: int
    interest_rate: int
    funding_cap: int
    mark_price: int
    index_price: int


class FundingPaid(Event, tag="fundingPaid"):
    """One position's funding: `amount` is the wallet change in `asset` (negative: paid). An
    isolated position's margin changes with it."""
    account: int
    symbol: str
    amount: int
    position_amt: int
    funding_rate: int
    mark_price: int
    funding_time: int
    position_side: str = "BOTH"
    asset: str = "USDT"


# -- conditional orders (Binance's Algo service; engine.core.conditional) --------------------
class AlgoOrderAccepted(Event, tag="algoOrderAccepted"):
    """A conditional order waits for its trigger (algo status NEW). Prices in 1e-8 units;
    `callback_rate` in percent (1 = 1 %); `quantity` 0 with close_position."""
    algo_id: int
    account: int
    symbol: str
    side: Side
    position_side: str
    order_type: str
    quantity: int
    price: int
    trigger_price: int
    working_type: str
    price_protect: bool
    close_position: bool
    reduce_only: bool
    activate_price: int
    callback_rate: int
    time_in_force: str
    client_algo_id: str
    stp_mode: str
    price_match: str
    good_till_date: int


class AlgoOrderCanceled(Event, tag="algoOrderCanceled"):
    """Canceled by its owner (status CANCELED)."""
    algo_id: int
    account: int
    symbol: str


class AlgoOrderExpired(Event, tag="algoOrderExpired"):
    """Canceled by the system (status EXPIRED): its position closed (closePosition and
    reduce-only orders), or a liquidation took the account's orders."""
    algo_id: int
    account: int
    symbol: str
    reason: str


class AlgoOrderTriggered(Event, tag="algoOrderTriggered"):
    """Its trigger was reached at `price` (the working price): it becomes the ordinary order
    `order_id`, whose OrderAccepted follows (status TRIGGERED)."""
    algo_id: int
    account: int
    symbol: str
    price: int
    order_id: int


class AlgoOrderRejected(Event, tag="algoOrderRejected"):
    """Its trigger was reached, but the ordinary order failed a check (status REJECTED)."""
    algo_id: int
    account: int
    symbol: str
    price: int
    code: int
    msg: str
    detail: str = ""


class SymbolListed(Event, tag="symbolListed"):
    symbol: str
    onboard_time: int


class DelistingScheduled(Event, tag="delistingScheduled"):
    symbol: str
    delist_time: int


# -- leveraged tokens and the spot wallet (engine.core.tokens, engine.core.spot) ---------------
class TokenLaunched(Event, tag="tokenLaunched"):
    """`account` is the token's issuer (created just before, by AccountCreated)."""
    token_name: str
    account: int
    symbol: str  # the basket's perpetual
    side: str  # UP (long basket) or DOWN (short)
    spot_symbol: str
    nav: int  # the initial NAV


class TokenSubscribed(Event, tag="tokenSubscribed"):
    """`account` paid `cost` + `fee` + `hedge_cost` USDT from its spot wallet and received
    `amount` tokens; `cost` + `hedge_cost` went to the issuer's (`counterparty`) futures wallet,
    `fee` to the venue. `nav`: the real-time NAV it was priced at (cost = amount x exact NAV,
    rounded up). The basket hedge's order and fills precede this event in the record."""
    token_name: str
    account: int
    counterparty: int
    amount: int
    cost: int
    fee: int
    hedge_cost: int  # the basket trade's cost (fills vs mark, taker fee), paid by the account
    nav: int


class TokenRedeemed(Event, tag="tokenRedeemed"):
    """`account` burned `amount` tokens, worth `value` (amount x exact NAV before the
    redemption's basket trade, rounded down); the issuer (`counterparty`) paid `value` -
    `hedge_cost` from its futures wallet: `value` - `hedge_cost` - `fee` to the account's spot
    wallet, `fee` to the venue."""
    token_name: str
    account: int
    counterparty: int
    amount: int
    value: int
    fee: int
    hedge_cost: int  # the basket trade's cost (fills vs mark, taker fee), borne by the account
    nav: int


class TokenNavUpdated(Event, tag="tokenNavUpdated"):
    """The published NAV. reason: launch | mark (moved by more than the step) | subscription
    | redemption | funding | rebalance."""
    token_name: str
    nav: int
    real_leverage: int
    basket: int  # the issuer's signed position in the underlying
    issued: int  # tokens outstanding
    reason: str


class TokenFundingApplied(Event, tag="tokenFundingApplied"):
    """At a settlement of the underlying: token funding rate = the rate the basket pays
    (futures rate, negated for a short basket) x the actual leverage before the payment;
    NAV after = NAV before x (1 - token funding rate), up to rounding. `amount`: the issuer's
    FundingPaid (its wallet change), the whole of the NAV change."""
    token_name: str
    symbol: str
    funding_time: int
    funding_rate: int
    token_funding_rate: int
    real_leverage: int
    amount: int
    nav_before: int
    nav_after: int


class TokenRebalanced(Event, tag="tokenRebalanced"):
    """The issuer traded its basket back toward the target leverage (the order and its trades
    precede this event)."""
    token_name: str
    symbol: str
    order_id: int
    leverage_before: int
    leverage_after: int
    basket_before: int
    basket_after: int


class FuturesTransferred(Event, tag="futuresTransferred"):
    """USDT between the spot and futures wallets: type 1 spot -> futures, 2 futures -> spot.
    `balance`: the futures wallet after; `spot_balance`: the spot USDT after."""
    account: int
    amount: int
    type: int
    balance: int
    spot_balance: int


class SpotOrderAccepted(Event, tag="spotOrderAccepted"):
    order_id: int
    account: int
    symbol: str
    side: Side
    type: str
    time_in_force: str
    price: int
    quantity: int
    client_order_id: str
    stp_mode: str
    rest: bool


class SpotOrderRested(Event, tag="spotOrderRested"):
    order_id: int
    quantity: int


class SpotTrade(Event, tag="spotTrade"):
    """Buyer pays price x quantity USDT and receives quantity - buyer_fee tokens (its fee is
    taken in the token it receives); seller receives price x quantity - seller_fee USDT."""
    trade_id: int
    symbol: str
    price: int
    quantity: int
    taker_side: Side
    maker_order_id: int
    taker_order_id: int
    maker_account: int
    taker_account: int
    buyer_fee: int
    seller_fee: int


class SpotOrderCanceled(Event, tag="spotOrderCanceled"):
    order_id: int
    account: int
    symbol: str
    quantity: int


class SpotOrderExpired(Event, tag="spotOrderExpired"):
    order_id: int
    account: int
    symbol: str
    quantity: int
    status: Literal["EXPIRED", "EXPIRED_IN_MATCH"]
    reason: str


AnyEvent = Union[
    AccountCreated, Deposited, Withdrawn, OrderAccepted, OrderRested, Trade, OrderCanceled,
    OrderExpired, OrderModified, OrderRejected, CommandRejected, LeverageChanged,
    MarkPriceUpdated, Checkpoint, MarginTypeChanged, IsolatedMarginChanged,
    BracketTableSwitched, MarginCallIssued, LiquidationStarted, LiquidationDeclined, AdlTrade,
    LiquidationFeeCharged, InsuranceCovered, InsuranceFunded, IndexPriceUpdated,
    CompositeRebalanced, FundingRateSet, FundingPaid, SymbolListed, DelistingScheduled,
    TokenLaunched, TokenSubscribed, TokenRedeemed, TokenNavUpdated, TokenFundingApplied,
    TokenRebalanced, FuturesTransferred, SpotOrderAccepted, SpotOrderRested, SpotTrade,
    SpotOrderCanceled, SpotOrderExpired, PositionModeChanged, AlgoOrderAccepted,
    AlgoOrderCanceled, AlgoOrderExpired, AlgoOrderTriggered, AlgoOrderRejected,
    MultiAssetsMarginChanged, AssetExchanged, AssetIndexUpdated, CollateralRatiosSwitched,
]

__all__ = [
    "Event", "AnyEvent", "AccountCreated", "Deposited", "Withdrawn", "OrderAccepted",
    "OrderRested", "Trade", "OrderCanceled", "OrderExpired", "OrderModified", "OrderRejected",
    "CommandRejected", "LeverageChanged", "MarkPriceUpdated", "Checkpoint", "MarginTypeChanged",
    "IsolatedMarginChanged", "BracketTableSwitched", "MarginCallIssued", "LiquidationStarted",
    "LiquidationDeclined", "AdlTrade", "LiquidationFeeCharged", "InsuranceCovered",
    "InsuranceFunded", "IndexPriceUpdated", "CompositeConstituent", "CompositeRebalanced",
    "FundingRateSet", "FundingPaid", "SymbolListed", "DelistingScheduled", "TokenLaunched",
    "TokenSubscribed", "TokenRedeemed", "TokenNavUpdated", "TokenFundingApplied",
    "TokenRebalanced", "FuturesTransferred", "SpotOrderAccepted", "SpotOrderRested", "SpotTrade",
    "SpotOrderCanceled", "SpotOrderExpired", "PositionModeChanged", "AlgoOrderAccepted",
    "AlgoOrderCanceled", "AlgoOrderExpired", "AlgoOrderTriggered", "AlgoOrderRejected",
    "MultiAssetsMarginChanged", "AssetExchanged", "AssetIndexUpdated",
    "CollateralRatiosSwitched",
]
