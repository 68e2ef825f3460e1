"""Issue 11, item 1: every integer of every command is range-checked at the edge, and whatever
passes the edge can be written to the log (the server once stopped on `OverflowError: can't
serialize ints` for a quantity of 2^64 units). Also Binance's -1102 for a LIMIT order without
price or timeInForce, and -1111 for more than eight decimals."""
import typing

import msgspec
import pytest

from engine.core import Engine, EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.eventlog import encode_record
from engine.sequencer import Sequencer
from proto import commands as C
from proto import json_edge, ranges
from proto.json_edge import BadInput, decode_command

CAT = catalogue_mod.load()
T0 = 1_700_000_000_000
MAX_DEC = "92233720368.54775807"  # 2^63 - 1 units of 1e-8


def _sample(op: str, field: msgspec.structs.FieldInfo):
    """A plausible wire value for a non-integer field."""
    name, t = field.encode_name, field.type
    origin = typing.get_origin(t)
    if origin is typing.Literal:
        return typing.get_args(t)[0]
    if typing.get_args(t) and origin is not typing.Literal:
        for arg in typing.get_args(t):
            if typing.get_origin(arg) is typing.Literal:
                return typing.get_args(arg)[0]
    if name == "symbol":
        return "BTCUPUSDT" if "Spot" in op or "spot" in op else "BTCUSDT"
    if name == "tokenName":
        return "BTCUP"
    if t is bool:
        return False
    if t is str:
        return "x1"
    raise AssertionError(f"no sample for {op}.{name}: {t}")


def _is_int_field(field) -> bool:
    t = field.type
    return t is int or int in typing.get_args(t) or \
        field.encode_name in json_edge.DECIMAL_MAP_FIELDS


def _extremes(name: str) -> tuple[list, list]:
    """(values the edge must accept, values it must refuse) for an integer field."""
    if name in json_edge.DECIMAL_FIELDS or name in json_edge.DECIMAL_MAP_FIELDS:
        good = [MAX_DEC, "-" + MAX_DEC, "0", "0.00000001"]
        bad = ["92233720368.54775808", "184467440737.09551616", "99999999999999999999999",
               "-92233720368.54775808", 10 ** 30]
    else:
        lo, hi = ranges.bounds(name)
        good, bad = [lo, hi], [lo - 1, hi + 1, 1 << 64, 10 ** 30]
    if name in json_edge.DECIMAL_MAP_FIELDS:
        return [{"BTCUSDT": v} for v in good], [{"BTCUSDT": v} for v in bad]
    return good, bad


def _base(op: str, command_type) -> dict:
    obj = {"op": op}
    for f in msgspec.structs.fields(command_type):
        if f.required or f.encode_name in ("price", "timeInForce"):
            if _is_int_field(f):
                obj[f.encode_name] = {"BTCUSDT": "1"} if f.encode_name == "prices" else 1
            else:
                obj[f.encode_name] = _sample(op, f)
    if obj.get("type") == "LIMIT":
        obj.setdefault("timeInForce", "GTC")
    return obj


def _cases():
    for op, command_type in json_edge.COMMAND_TYPES.items():
        for f in msgspec.structs.fields(command_type):
            if _is_int_field(f) and f.encode_name not in ("type",):
                yield op, command_type, f.encode_name


CASES = list(_cases())


def _engine():
    """A core with two funded accounts, marks, index prices and a token."""
    engine = Engine(CAT, EngineConfig(checkpoint_every=3))
    seq = Sequencer(engine)
    for cmd in (C.CreateAccount(account=1, registered_at=0),
                C.CreateAccount(account=2, registered_at=0),
                C.Deposit(account=1, amount=10 ** 15), C.Deposit(account=2, amount=10 ** 15),
                C.SetIndexPrices(prices={"BTCUSDT": 30_000 * 10 ** 8}),
                C.LaunchToken(token_name="BTCUP"),
                C.NewOrder(account=2, symbol="BTCUSDT", side="SELL", type="LIMIT",
                           quantity=10 ** 8, price=30_010 * 10 ** 8, time_in_force="GTC")):
        seq.submit(cmd, T0)
    return seq


def test_every_integer_field_of_every_command_is_covered():
    fields = {(op, name) for op, _, name in CASES}
    assert ("newOrder", "quantity") in fields and ("cancelOrder", "orderId") in fields
    assert ("setLeverage", "leverage") in fields and ("withdraw", "amount") in fields
    assert ("setIndexPrices", "prices") in fields and ("createAccount", "registeredAt") in fields
    assert len(fields) >= 40


@pytest.mark.parametrize("op,command_type,name", CASES, ids=[f"{o}.{n}" for o, _, n in CASES])
def test_extremes_pass_the_edge_and_are_recorded_beyond_them_is_1102(op, command_type, name):
    good, bad = _extremes(name)
    seq = _engine()
    for value in good:
        obj = {**_base(op, command_type), name: value}
        if op == "createAccount" and name != "account":
            obj["account"] = 9
        cmd = decode_command(obj)
        record = seq.submit(cmd, T0 + 1)  # the core runs it (most are refused by its checks)
        encode_record(record)  # and the record can always be written
    for value in bad:
        with pytest.raises(BadInput) as exc:
            decode_command({**_base(op, command_type), name: value})
        assert exc.value.code == -1102
        assert name in exc.value.msg


def test_the_issues_four_requests_are_refused_by_name():
    for obj, field in (
            ({"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
              "quantity": "184467440737.09551616", "price": "1", "timeInForce": "GTC"}, "quantity"),
            ({"op": "cancelOrder", "account": 1, "symbol": "BTCUSDT",
              "orderId": 18446744073709551616}, "orderId"),
            ({"op": "setLeverage", "account": 1, "symbol": "BTCUSDT", "leverage": 10 ** 30},
             "leverage"),
            ({"op": "withdraw", "account": 1, "amount": "99999999999999999999999"}, "amount")):
        with pytest.raises(BadInput) as exc:
            decode_command(obj)
        assert exc.value.code == -1102
        assert exc.value.msg == (f"Mandatory parameter '{field}' was not sent, was empty/null, "
                                 "or malformed.")


def test_a_limit_order_needs_price_and_time_in_force_as_on_binance():
    base = {"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
            "quantity": "0.01"}
    for missing, obj in (("price", {**base, "timeInForce": "GTC"}),
                         ("timeInForce", {**base, "price": "30000"}),
                         ("price", {**base, "price": None, "timeInForce": "GTC"})):
        with pytest.raises(BadInput) as exc:
            decode_command(obj)
        assert (exc.value.code, exc.value.msg) == (
            -1102, f"Mandatory parameter '{missing}' was not sent, was empty/null, or malformed.")
    # a missing required field is named the same way
    with pytest.raises(BadInput) as exc:
        decode_command({"op": "cancelAllOrders", "account": 1})
    assert exc.value.msg == ("Mandatory parameter 'symbol' was not sent, was empty/null, "
                             "or malformed.")
    # MARKET needs neither
    assert decode_command({**base, "type": "MARKET"}).price == 0


def test_more_than_eight_decimals_is_1111():
    with pytest.raises(BadInput) as exc:
        decode_command({"op": "deposit", "account": 1, "amount": "1.000000001"})
    assert exc.value.code == -1111
    assert exc.value.msg.startswith("Precision is over the maximum defined for this asset.")


def test_times_accept_iso_text_like_the_feeds_time():
    cmd = decode_command({"op": "createAccount", "account": 1,
                          "registeredAt": "2022-09-13T07:00:00Z"})
    assert cmd.registered_at == 1663052400000
    with pytest.raises(BadInput) as exc:
        decode_command({"op": "createAccount", "account": 1, "registeredAt": "yesterday"})
    assert exc.value.code == -1102 and "registeredAt" in exc.value.msg


def test_deposits_cannot_grow_the_venues_money_past_what_the_log_can_hold():
    """Balances and totals are sums: the core refuses a deposit that would take the venue's
    total past 2^63 - 1 units, so no later record can overflow."""
    seq = _engine()
    top = ranges.DECIMAL_MAX
    records = [seq.submit(C.Deposit(account=1, amount=top), T0 + 1) for _ in range(4)]
    records += [seq.submit(C.FundInsurance(amount=top), T0 + 1) for _ in range(2)]
    for r in records:
        encode_record(r)
    assert any(type(e).__name__ == "CommandRejected" for r in records for e in r.events)
    encode_record(seq.submit(C.Liquidate(account=1), T0 + 2))
    msgspec.msgpack.encode(seq.engine.canonical_state())
