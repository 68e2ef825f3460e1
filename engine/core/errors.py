"""Binance USDⓈ-M error codes used by the engine, with Binance's messages."""
INVALID_SYMBOL = -1121
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
MAX_OPEN_ORDERS = -2025
MARGIN_INSUFFICIENT = -2019
MAX_POSITION_AT_LEVERAGE = -2027
REDUCE_ONLY_REJECTED = -2022
UNKNOWN_ORDER = -2011
NO_SUCH_ORDER = -2013
FOK_UNFILLABLE = -5021
GTX_WOULD_TAKE = -5022
NO_NEED_TO_MODIFY = -5027
CLIENT_ID_DUPLICATED = -4116
INVALID_LEVERAGE = -4028
BALANCE_INSUFFICIENT = -5013
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
MARGIN_TYPE_OPEN_ORDERS = -4047
MARGIN_TYPE_POSITION_EXISTS = -4048
ISOLATED_BALANCE_INSUFFICIENT = -4051
ISOLATED_MARGIN_NO_POSITION = -4054
ISOLATED_LEVERAGE_REDUCTION = -4161
# leveraged tokens (Binance BLVT codes)
BLVT_FORBID_REDEEM = -13000  # Redemption of the token is forbidden now
BLVT_EXCEED_DAILY_LIMIT = -13001  # Exceeds individual 24h redemption limit of the token
BLVT_EXCEED_TOKEN_DAILY_LIMIT = -13002  # Exceeds total 24h redemption limit of the token
BLVT_FORBID_PURCHASE = -13003  # Subscription of the token is forbidden now
BLVT_EXCEED_DAILY_PURCHASE_LIMIT = -13004  # Exceeds individual 24h subscription limit
BLVT_EXCEED_TOKEN_DAILY_PURCHASE_LIMIT = -13005  # Exceeds total 24h subscription limit
BLVT_PURCHASE_LESS_MIN_AMOUNT = -13006  # Subscription amount is too small


class Rejected(Exception):
    """Internal control flow of validation in the core: becomes a rejection event, never
    escapes Engine.handle."""

    def __init__(self, code: int, msg: str) -> None:
        self.code = code
        self.msg = msg
