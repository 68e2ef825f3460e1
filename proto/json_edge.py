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
from proto.positional import from_map

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
        cmd = from_map(converted, command_type)  # commands are array-like: via their map form
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
    """Struct (or builtins) -> builtins with decimal strings for scaled fields: a command or
    event as a JSON object keyed by its camelCase names, tag first (structs are positional in
    msgpack and the log; see proto.events)."""
    if isinstance(value, msgspec.Struct):
        plan = _WIRE_PLANS.get(type(value))
        if plan is None:
            plan = _wire_plan(type(value))
        tag_field, tag, names, kinds = plan
        out: dict = {tag_field: tag} if tag_field is not None else {}
        for name, kind, v in zip(names, kinds, msgspec.structs.astuple(value)):
            if kind == 1 and type(v) is int:
                v = decimals.fmt(v)
            elif kind == 2 and isinstance(v, dict):
                v = {n: decimals.fmt(x) if type(x) is int else x for n, x in v.items()}
            elif isinstance(v, (msgspec.Struct, list, tuple, dict)):
                v = to_wire(v)
            out[name] = v
        return out
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return _decimalize(value)
    return value


_WIRE_PLANS: dict[type, tuple] = {}


def _wire_plan(cls: type) -> tuple:
    config = cls.__struct_config__
    names = cls.__struct_encode_fields__
    kinds = tuple(1 if n in DECIMAL_FIELDS else 2 if n in DECIMAL_MAP_FIELDS else 0
                  for n in names)
    plan = _WIRE_PLANS[cls] = (config.tag_field, config.tag, names, kinds)
    return plan


def _decimalize(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return to_wire(value)
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


# -- typed decoding at the gateway: a request's bytes straight to its command -------------------
#
# One request type per command op: the command's fields plus the request "id", decimal fields
# as strings, "account" optional (the login fills it in). A msgspec decoder of their tagged
# union turns a well-formed request's bytes (JSON or msgpack) directly into one of them; the
# command is then built from its fields, decimals parsed. Anything else (another op, a field
# missing, extra or mistyped, a decimal sent as a number, a malformed decimal) returns None and
# takes the generic path (parse_json / wire bytes -> dict -> decode_command), which produces
# exactly the errors it always did: the fast path only accepts what the generic path accepts,
# and builds the same command.

class TypedRequest:
    """A command request decoded from bytes: its id, op, the account it names (None: the
    login's), and its command once the gateway has decided the account."""
    __slots__ = ("id", "op", "account", "values", "command_type", "account_index")

    def __init__(self, req_id: int | str, op: str, account: int | None, values: list,
                 command_type: type, account_index: int) -> None:
        self.id, self.op, self.account, self.values = req_id, op, account, values
        self.command_type, self.account_index = command_type, account_index

    def command(self, account: int | None) -> AnyCommand:
        values = self.values
        if self.account_index >= 0:
            values[self.account_index] = account
        return self.command_type(*values)


def _request_types() -> tuple[dict, dict]:
    import typing
    plans = {}
    types = []
    for tag, cls in COMMAND_TYPES.items():
        names = cls.__struct_encode_fields__
        if any(n in DECIMAL_MAP_FIELDS for n in names):
            continue  # setIndexPrices: the generic path
        hints = typing.get_type_hints(cls)
        n_required = len(names) - len(cls.__struct_defaults__)
        defaults = (None,) * n_required + tuple(cls.__struct_defaults__)
        fields: list = [("id", typing.Union[int, str])]
        decimal_at = []
        for i, (attr, name) in enumerate(zip(cls.__struct_fields__, names)):
            t = hints[attr]
            if name in DECIMAL_FIELDS:
                decimal_at.append(i)
                t = str
            # absent -> UNSET (an explicit null is not absent: the generic path judges it)
            if attr == "account":
                fields.append((attr, typing.Union[int, msgspec.UnsetType], msgspec.UNSET))
            elif i >= n_required:
                fields.append((attr, t, defaults[i]) if name not in DECIMAL_FIELDS else
                              (attr, typing.Union[str, msgspec.UnsetType], msgspec.UNSET))
            else:
                fields.append((attr, t))
        request = msgspec.defstruct(f"{cls.__name__}Request", fields, tag_field="op", tag=tag,
                                    rename="camel", forbid_unknown_fields=True, kw_only=True)
        assert request.__struct_fields__ == ("id",) + cls.__struct_fields__
        account_index = cls.__struct_fields__.index("account") \
            if "account" in cls.__struct_fields__ else -1
        plans[request] = (tag, cls, tuple(decimal_at), defaults, account_index,
                          account_index >= 0 and account_index < n_required)
        types.append(request)
    union = typing.Union[tuple(types)]  # type: ignore[valid-type]
    return plans, {"json": msgspec.json.Decoder(union).decode,
                   "msgpack": msgspec.msgpack.Decoder(union).decode}


_REQUEST_PLANS, _REQUEST_DECODERS = _request_types()
# per op: the (position, wire name) of every field, for the edge's range checks (proto.ranges);
# and for LIMIT orders the positions of type, price and timeInForce


def _only_text(t: Any) -> bool:
    """A field type that cannot hold an integer or a nested value (str, bool, None, literals
    of those): nothing to range-check."""
    import types
    import typing
    if t in (str, bool, type(None)):
        return True
    origin = typing.get_origin(t)
    if origin is typing.Literal:
        return all(isinstance(a, (str, bool)) or a is None for a in typing.get_args(t))
    if origin is typing.Union or origin is types.UnionType:
        return all(_only_text(a) for a in typing.get_args(t))
    return False


def _ranged_fields(cls: type, decimal_at: tuple) -> tuple:
    """(position, wire name, lowest, highest) of the fields that may hold an integer (decimal
    fields hold one once parsed) or a nested value: the only ones the range check looks at."""
    import typing
    hints = typing.get_type_hints(cls)
    return tuple((i, name, *ranges.bounds(name)) for i, (attr, name) in enumerate(
        zip(cls.__struct_fields__, cls.__struct_encode_fields__))
        if i in decimal_at or not _only_text(hints[attr]))


_RANGED = {plan[0]: _ranged_fields(plan[1], plan[2]) for plan in _REQUEST_PLANS.values()}
_LIMIT_FIELDS = {plan[0]: tuple(plan[1].__struct_encode_fields__.index(n)
                                for n in ("type", "price", "timeInForce"))
                 for plan in _REQUEST_PLANS.values() if plan[0] in _LIMIT_TYPES}
TYPED_OPS = frozenset(plan[0] for plan in _REQUEST_PLANS.values())  # ops with a typed decoder
_INT64 = 2 ** 63
_FRAC = [10 ** (decimals.DECIMALS - k) for k in range(decimals.DECIMALS + 1)]


def _units(text: str) -> int:
    """decimals.parse, with a short way for the plain case (digits, at most 8 decimals)."""
    whole, dot, frac = text.partition(".")
    if whole.isdigit() and whole.isascii():
        if not dot:
            return int(whole) * decimals.SCALE
        if frac.isdigit() and frac.isascii() and len(frac) <= decimals.DECIMALS:
            return int(whole) * decimals.SCALE + int(frac) * _FRAC[len(frac)]
    return decimals.parse(text)


def decode_request(body: bytes, mode: str, fill_account_ops: frozenset = frozenset()
                   ) -> TypedRequest | None:
    """A command request's bytes (mode "json" or "msgpack") -> TypedRequest, or None for the
    generic path. `fill_account_ops`: the ops whose missing "account" the login fills in."""
    try:
        req = _REQUEST_DECODERS[mode](body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    tag, cls, decimal_at, defaults, account_index, account_required = _REQUEST_PLANS[type(req)]
    values = list(msgspec.structs.astuple(req))
    req_id = values[0]
    del values[0]
    limit = _LIMIT_FIELDS.get(tag)
    if limit is not None and values[limit[0]] == "LIMIT" and (
            values[limit[1]] is msgspec.UNSET or values[limit[2]] in (None, "")):
        return None  # price or timeInForce missing on a LIMIT order: the generic path's -1102
    for i in decimal_at:
        text = values[i]
        if text is msgspec.UNSET:
            values[i] = defaults[i]
            continue
        try:
            units = _units(text)
        except decimals.DecimalFormatError:
            return None
        if not -_INT64 <= units < _INT64:
            return None
        values[i] = units
    for i, name, lo, hi in _RANGED[tag]:  # an integer out of range: the generic path names it
        value = values[i]
        if type(value) is int:
            if not lo <= value <= hi:
                return None
        elif value is not None and ranges.out_of_range(value, name) is not None:
            return None
    account = values[account_index] if account_index >= 0 else None
    if account is msgspec.UNSET:
        account = None if account_required else defaults[account_index]
    if account is None and account_required and tag not in fill_account_ops:
        return None
    return TypedRequest(req_id, tag, account, values, cls, account_index)
