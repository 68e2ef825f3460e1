"""Binance USDⓈ-M error codes used by the engine, with Binance's messages.

A rejection's `msg` is Binance's documented text for its code (the error-code page of the
USDⓈ-M API; %s filled where Binance's text has a placeholder). What the engine can add beyond
it (the tick size, the limit that was hit, the numbers compared) goes into a separate
`detail`, so a client matching on Binance's messages sees exactly Binance's messages.
"""
from __future__ import annotations

INVALID_SYMBOL = -1121
MANDATORY_PARAM = -1102
PARAM_NOT_REQUIRED = -1106
INVALID_VALUE = -1130
UNKNOWN_ACCOUNT = -2015
PRICE_LESS_THAN_ZERO = -4001
PRICE_GREATER_THAN_MAX = -4002
PRICE_LESS_THAN_MIN = -4013
PRICE_NOT_ON_TICK = -4014
QTY_LESS_THAN_ZERO = -4003
QTY_LESS_THAN_MIN = -4004
QTY_GREATER_THAN_MAX = -4005
QTY_NOT_ON_STEP = -4023
MIN_NOTIONAL = -4164
PRICE_HIGHER_THAN_BAND = -4016
PRICE_LOWER_THAN_BAND = -4024
MARKET_ORDER_OUTSIDE_BAND = -4131
MAX_OPEN_ORDERS = -2025
MAX_ALGO_ORDERS = -4045
MARGIN_INSUFFICIENT = -2019
WOULD_IMMEDIATELY_TRIGGER = -2021
MAX_POSITION_AT_LEVERAGE = -2027
REDUCE_ONLY_REJECTED = -2022
UNKNOWN_ORDER = -2011
NO_SUCH_ORDER = -2013
FOK_UNFILLABLE = -5021
GTX_WOULD_TAKE = -5022
NO_NEED_TO_MODIFY = -5027
GOOD_TILL_DATE = -5040
BBO_ORDER_REJECT = -5041
PRICE_MATCH_ORDER_TYPE = -5038
CLOSE_POSITION_EXISTS = -4130
CLOSE_POSITION_ORDER_TYPE = -4136
CLIENT_ID_DUPLICATED = -4116
STOP_ORDER_SWITCH_ALGO = -4120
INVALID_ACTIVATION_PRICE = -4135
QUANTITY_WITH_CLOSE_POSITION = -4137
REDUCE_ONLY_WITH_CLOSE_POSITION = -4138
CLOSE_POSITION_NO_POSITION = -4509
INVALID_LEVERAGE = -4028
YOUNG_ACCOUNT_LEVERAGE = -4205
BALANCE_INSUFFICIENT = -5013
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
MARGIN_TYPE_OPEN_ORDERS = -4047
MARGIN_TYPE_POSITION_EXISTS = -4048
ISOLATED_BALANCE_INSUFFICIENT = -4051
ISOLATED_MARGIN_NO_POSITION = -4054
NO_NEED_TO_CHANGE_POSITION_SIDE = -4059
POSITION_SIDE_NOT_MATCH = -4061
POSITION_SIDE_OPEN_ORDERS = -4067
POSITION_SIDE_POSITION_EXISTS = -4068
ISOLATED_LEVERAGE_REDUCTION = -4161
# Multi-Assets mode (the USD-M error-code page)
ISOLATED_REJECT_WITH_JOINT_MARGIN = -4167
JOINT_MARGIN_REJECT_WITH_ISOLATED = -4168
JOINT_MARGIN_REJECT_WITH_MB = -4169
JOINT_MARGIN_REJECT_WITH_OPEN_ORDER = -4170
NO_NEED_TO_CHANGE_JOINT_MARGIN = -4171
JOINT_MARGIN_REJECT_WITH_NEGATIVE_BALANCE = -4172
# leveraged tokens (Binance BLVT codes)
BLVT_FORBID_REDEEM = -13000  # Redemption of the token is forbidden now
BLVT_EXCEED_DAILY_LIMIT = -13001  # Exceeds individual 24h redemption limit of the token
BLVT_EXCEED_TOKEN_DAILY_LIMIT = -13002  # Exceeds total 24h redemption limit of the token
BLVT_FORBID_PURCHASE = -13003  # Subscription of the token is forbidden now
BLVT_EXCEED_DAILY_PURCHASE_LIMIT = -13004  # Exceeds individual 24h subscription limit
BLVT_EXCEED_TOKEN_DAILY_PURCHASE_LIMIT = -13005  # Exceeds total 24h subscription limit
BLVT_PURCHASE_LESS_MIN_AMOUNT = -13006  # Subscription amount is too small

# Binance's texts (USDⓈ-M error-code page); "%s" is filled by `message`
MESSAGES: dict[int, str] = {
    MANDATORY_PARAM: "Mandatory parameter '%s' was not sent, was empty/null, or malformed.",
    PARAM_NOT_REQUIRED: "Parameter '%s' sent when not required.",
    INVALID_SYMBOL: "Invalid symbol.",
    INVALID_VALUE: "Data sent for parameter '%s' is not valid.",
    UNKNOWN_ACCOUNT: "Invalid API-key, IP, or permissions for action.",
    PRICE_LESS_THAN_ZERO: "Price less than 0.",
    PRICE_GREATER_THAN_MAX: "Price greater than max price.",
    PRICE_LESS_THAN_MIN: "Price less than min price.",
    PRICE_NOT_ON_TICK: "Price not increased by tick size.",
    QTY_LESS_THAN_ZERO: "Quantity less than zero.",
    QTY_LESS_THAN_MIN: "Quantity less than min quantity.",
    QTY_GREATER_THAN_MAX: "Quantity greater than max quantity.",
    QTY_NOT_ON_STEP: "Qty not increased by step size.",
    MIN_NOTIONAL: "Order's notional must be no smaller than %s (unless you choose reduce only)",
    PRICE_HIGHER_THAN_BAND: "Price is higher than mark price multiplier cap.",
    PRICE_LOWER_THAN_BAND: "Price is lower than mark price multiplier floor.",
    MARKET_ORDER_OUTSIDE_BAND: "The counterparty's best price does not meet the PERCENT_PRICE "
                               "filter limit",
    MAX_OPEN_ORDERS: "Reach max open order limit.",
    MAX_ALGO_ORDERS: "Reach max stop order limit.",
    MARGIN_INSUFFICIENT: "Margin is insufficient.",
    WOULD_IMMEDIATELY_TRIGGER: "Order would immediately trigger.",
    MAX_POSITION_AT_LEVERAGE: "Exceeded the maximum allowable position at current leverage.",
    REDUCE_ONLY_REJECTED: "ReduceOnly Order is rejected.",
    UNKNOWN_ORDER: "Unknown order sent.",
    NO_SUCH_ORDER: "Order does not exist.",
    FOK_UNFILLABLE: "Due to the order could not be filled immediately, the FOK order has been "
                    "rejected.",
    GTX_WOULD_TAKE: "Due to the order could not be executed as maker, the Post Only order will "
                    "be rejected.",
    NO_NEED_TO_MODIFY: "No need to modify the order.",
    GOOD_TILL_DATE: "The goodTillDate timestamp must be greater than the current time plus 600 "
                    "seconds and smaller than 253402300799000 (UTC 9999-12-31 23:59:59)",
    BBO_ORDER_REJECT: "No depth matches this BBO order",
    PRICE_MATCH_ORDER_TYPE: "Price match only supports order type: LIMIT, STOP AND TAKE_PROFIT",
    CLOSE_POSITION_EXISTS: "An open stop or take profit order with GTE and closePosition in "
                           "the direction is existing.",
    CLOSE_POSITION_ORDER_TYPE: "Target strategy invalid for orderType %s,closePosition true",
    CLIENT_ID_DUPLICATED: "ClientOrderId is duplicated.",
    STOP_ORDER_SWITCH_ALGO: "Order type not supported for this endpoint. Please use the Algo "
                            "Order API endpoints instead.",
    INVALID_ACTIVATION_PRICE: "Invalid activation price",
    QUANTITY_WITH_CLOSE_POSITION: "Quantity must be zero with closePosition equals true",
    REDUCE_ONLY_WITH_CLOSE_POSITION: "Reduce only must be true with closePosition equals true",
    CLOSE_POSITION_NO_POSITION: "Time in Force (TIF) GTE can only be used with open positions. "
                                "Please ensure that positions are available.",
    INVALID_LEVERAGE: "Leverage %s is not valid",
    YOUNG_ACCOUNT_LEVERAGE: "More than 20x leverage is available %s days after Futures "
                            "account registration.",
    NO_NEED_TO_CHANGE_MARGIN_TYPE: "No need to change margin type.",
    MARGIN_TYPE_OPEN_ORDERS: "Margin type cannot be changed if there exists open orders.",
    MARGIN_TYPE_POSITION_EXISTS: "Margin type cannot be changed if there exists position.",
    ISOLATED_BALANCE_INSUFFICIENT: "Isolated balance insufficient.",
    ISOLATED_MARGIN_NO_POSITION: "Cannot add position margin: position is 0.",
    NO_NEED_TO_CHANGE_POSITION_SIDE: "No need to change position side.",
    POSITION_SIDE_NOT_MATCH: "Order's position side does not match user's setting.",
    POSITION_SIDE_OPEN_ORDERS: "Position side cannot be changed if there exists open orders.",
    POSITION_SIDE_POSITION_EXISTS: "Position side cannot be changed if there exists position.",
    ISOLATED_LEVERAGE_REDUCTION: "Leverage reduction is not supported in Isolated Margin Mode "
                                 "with open positions.",
    ISOLATED_REJECT_WITH_JOINT_MARGIN: "Unable to adjust to Multi-Assets mode with symbols of "
                                       "USDⓈ-M Futures under isolated-margin mode.",
    JOINT_MARGIN_REJECT_WITH_ISOLATED: "Unable to adjust to isolated-margin mode under the "
                                       "Multi-Assets mode.",
    JOINT_MARGIN_REJECT_WITH_MB: "Unable to adjust Multi-Assets Mode with insufficient margin "
                                 "balance in USDⓈ-M Futures.",
    JOINT_MARGIN_REJECT_WITH_OPEN_ORDER: "Unable to adjust Multi-Assets Mode with open orders "
                                         "in USDⓈ-M Futures.",
    NO_NEED_TO_CHANGE_JOINT_MARGIN: "Adjusted asset mode is currently set and does not need to "
                                    "be adjusted repeatedly.",
    JOINT_MARGIN_REJECT_WITH_NEGATIVE_BALANCE: "Unable to adjust Multi-Assets Mode with a "
                                               "negative wallet balance of margin available "
                                               "asset in USDⓈ-M Futures account.",
}


def message(code: int, arg: object = "") -> str:
    """Binance's text for `code`, with its %s filled by `arg`."""
    text = MESSAGES.get(code)
    if text is None:
        return ""
    return text.replace("%s", str(arg)) if "%s" in text else text


class Rejected(Exception):
    """Internal control flow of validation in the core: becomes a rejection event, never
    escapes Engine.handle. `msg` defaults to Binance's text for the code (with `arg` in its
    %s); `detail` is what the engine adds (the limit hit, the numbers compared)."""

    def __init__(self, code: int, detail: str = "", msg: str | None = None,
                 arg: object = "") -> None:
        self.code = code
        self.msg = msg if msg is not None else message(code, arg)
        self.detail = detail
