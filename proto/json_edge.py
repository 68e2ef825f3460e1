"""JSON at the edge: decimal strings outside, 1e-8 integer units inside.

A field listed in DECIMAL_FIELDS is a scaled number: it arrives as a decimal string ("0.001")
and leaves as one. Everything else passes through msgspec's strict validation, so a missing,
extra or mistyped field is an error naming the field.
"""
from __future__ import annotations

from typing import Any

import msgspec

from proto import decimals
from proto.commands import AnyCommand
from proto.events import Event

DECIMAL_FIELDS = frozenset({
    "amount", "balance", "price", "quantity", "markPrice", "indexPrice",
    "makerFee", "takerFee", "makerRealizedPnl", "takerRealizedPnl", "isolatedMargin",
    "marginRatio", "maintMargin", "marginBalance", "realizedPnl", "counterpartyRealizedPnl",
    "impactBidPrice", "impactAskPrice", "midPrice", "premiumIndex", "fundingRate",
    "averagePremiumIndex", "interestRate", "fundingCap", "positionAmt", "weightInQuantity",
    # leveraged tokens and spot (proto.events Token*, Spot*, FuturesTransferred)
    "cost", "fee", "value", "nav", "realLeverage", "basket", "issued", "tokenFundingRate",
    "navBefore", "navAfter", "leverageBefore", "leverageAfter", "basketBefore", "basketAfter",
    "spotBalance", "buyerFee", "sellerFee", "hedgeCost",
    # conditional orders and the cost to open
    "triggerPrice", "activatePrice", "callbackRate", "costPrice", "lossUnit",
    # margin assets: auto-exchange
    "fromAmount", "fromIndexPrice",
})
# fields holding a map of name -> scaled decimal (setIndexPrices' "prices")
DECIMAL_MAP_FIELDS = frozenset({"prices"})

_json_decoder = msgspec.json.Decoder()
_json_encoder = msgspec.json.Encoder()


class BadInput(ValueError):
    """A request that cannot become a command: a Binance code and a message naming the fault.
    -1100 malformed JSON, -1102 a field missing or malformed, -1103 an unknown field or message."""

    def __init__(self, msg: str, code: int = -1102) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _validation_code(msg: str) -> int:
    return -1103 if "unknown field" in msg else -1102


def _decimal(value, where: str) -> int:
    """A decimal string (or an int) from the edge -> 1e-8 units; floats are refused."""
    if isinstance(value, float):
        raise BadInput(f"field '{where}': send decimals as strings, e.g. \"0.001\"")
    try:
        return decimals.parse(value)
    except decimals.DecimalFormatError as exc:
        raise BadInput(f"field '{where}': {exc}") from None


# op tag -> command type: converting to the one type is ~70x faster than to the union
COMMAND_TYPES = {t.__struct_config__.tag: t for t in AnyCommand.__args__}


def decode_command(obj: dict[str, Any]) -> AnyCommand:
    """A dict with decimal strings -> a validated command. Raises BadInput."""
    if not isinstance(obj, dict):
        raise BadInput("expected a JSON object")
    if "op" not in obj:
        raise BadInput("Object missing required field `op`")
    command_type = COMMAND_TYPES.get(obj["op"]) if isinstance(obj["op"], str) else None
    if command_type is None:
        raise BadInput(f"unknown message op={obj['op']!r}", -1103)
    converted = dict(obj)
    for key in DECIMAL_FIELDS.intersection(converted):
        converted[key] = _decimal(converted[key], key)
    for key in DECIMAL_MAP_FIELDS.intersection(converted):
        value = converted[key]
        if not isinstance(value, dict):
            raise BadInput(f"field '{key}': expected an object of decimal strings")
        converted[key] = {name: _decimal(v, f"{key}.{name}") for name, v in value.items()}
    try:
        return msgspec.convert(converted, command_type)
    except msgspec.ValidationError as exc:
        raise BadInput(str(exc), _validation_code(str(exc))) from None


def parse_json(line: bytes | str) -> Any:
    try:
        return _json_decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise BadInput(f"malformed JSON: {exc}", -1100) from None


def to_wire(value: Any) -> Any:
    """Struct (or builtins) -> builtins with decimal strings for scaled fields."""
    return _decimalize(msgspec.to_builtins(value))


def _decimalize(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (decimals.fmt(v) if k in DECIMAL_FIELDS and type(v) is int else
                    {n: decimals.fmt(x) if type(x) is int else x for n, x in v.items()}
                    if k in DECIMAL_MAP_FIELDS and isinstance(v, dict) else _decimalize(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_decimalize(v) for v in value]
    return value


def event_json(event: Event, **extra: Any) -> bytes:
    wire = to_wire(event)
    wire.update(extra)
    return _json_encoder.encode(wire)


def dumps(value: Any) -> bytes:
    return _json_encoder.encode(value)
