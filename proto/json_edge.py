"""JSON at the edge: decimal strings outside, 1e-8 integer units inside.

A field listed in DECIMAL_FIELDS is a scaled number: it arrives as a decimal string ("0.001")
and leaves as one. Everything else passes through msgspec's strict validation, so a missing,
extra or mistyped field is an error naming the field. Every integer is then range-checked
(proto.ranges): what passes here can always be written to the log.

Binance's codes: -1102 "Mandatory parameter '...' was not sent, was empty/null, or malformed."
(missing, mistyped or out of range; a LIMIT order without price or timeInForce), -1111 a decimal
with more than eight places, -1103 an unknown field or message.
"""
from __future__ import annotations

from typing import Any

import msgspec

from proto import decimals, ranges
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


def mandatory(name: str) -> BadInput:
    """Binance's -1102 for a parameter missing, empty or malformed."""
    return BadInput(f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


PRECISION_MSG = "Precision is over the maximum defined for this asset."


def _validation_error(msg: str) -> BadInput:
    if "unknown field" in msg:
        return BadInput(msg, -1103)
    if msg.startswith("Object missing required field `"):
        return mandatory(msg.split("`")[1])
    return BadInput(msg, -1102)


def _decimal(value, where: str) -> int:
    """A decimal string (or an int) from the edge -> 1e-8 units; floats are refused."""
    if isinstance(value, float):
        raise BadInput(f"field '{where}': send decimals as strings, e.g. \"0.001\"")
    try:
        units = decimals.parse(value)
    except decimals.PrecisionError:
        raise BadInput(f"{PRECISION_MSG} ('{where}': at most {decimals.DECIMALS} decimals)",
                       -1111) from None
    except decimals.DecimalFormatError as exc:
        raise BadInput(f"field '{where}': {exc}") from None
    if not -ranges.DECIMAL_MAX <= units <= ranges.DECIMAL_MAX:
        raise mandatory(where)
    return units


def _time(value, where: str):
    """Times in ms may also arrive as ISO-8601 text (as the feed's "time" may)."""
    if isinstance(value, str):
        try:
            return ranges.iso_ms(value)
        except ValueError:
            raise mandatory(where) from None
    return value


_LIMIT_TYPES = ("newOrder", "newSpotOrder")
_encode = msgspec.msgpack.Encoder().encode


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
    if obj["op"] in _LIMIT_TYPES and obj.get("type") == "LIMIT":  # Binance: mandatory for LIMIT
        for key in ("price", "timeInForce"):
            if obj.get(key) in (None, ""):
                raise mandatory(key)
    for key in ranges.TIME_FIELDS.intersection(converted):
        converted[key] = _time(converted[key], key)
    for key in DECIMAL_FIELDS.intersection(converted):
        converted[key] = _decimal(converted[key], key)
    for key in DECIMAL_MAP_FIELDS.intersection(converted):
        value = converted[key]
        if not isinstance(value, dict):
            raise BadInput(f"field '{key}': expected an object of decimal strings")
        converted[key] = {name: _decimal(v, f"{key}.{name}") for name, v in value.items()}
    try:
        cmd = msgspec.convert(converted, command_type)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc)) from None
    bad = ranges.out_of_range(cmd)
    if bad is not None:
        raise mandatory(bad)
    try:  # belt and braces: what passed the edge can be written to the log
        _encode(cmd)
    except (OverflowError, TypeError, ValueError):
        raise BadInput("the command cannot be recorded: a value is out of range") from None
    return cmd


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
