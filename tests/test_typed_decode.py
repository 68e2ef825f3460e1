"""Typed decoding at the gateway (proto.json_edge.decode_request): a command request's bytes
straight to its command. Whatever it accepts, the generic path (bytes -> dict ->
decode_command) accepts too and turns into the very same command; whatever it declines goes
the generic way, which keeps every error code and message."""
import msgspec
import pytest

from proto import json_edge, wire
from proto.commands import AnyCommand

ACCOUNT_OPS = frozenset({"newOrder", "cancelOrder", "cancelAllOrders", "modifyOrder",
                         "setLeverage", "withdraw"})
BASE = [
    {"op": "newOrder", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.015",
     "price": "30123.4", "timeInForce": "GTC"},
    {"op": "newOrder", "symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quantity": "1",
     "reduceOnly": True, "newClientOrderId": "x-1", "selfTradePreventionMode": "EXPIRE_BOTH"},
    {"op": "cancelOrder", "symbol": "BTCUSDT", "orderId": 12},
    {"op": "cancelOrder", "symbol": "BTCUSDT", "origClientOrderId": "abc"},
    {"op": "cancelAllOrders", "symbol": "BTCUSDT"},
    {"op": "modifyOrder", "symbol": "BTCUSDT", "orderId": 3, "quantity": "0.5", "price": "29000"},
    {"op": "setLeverage", "symbol": "BTCUSDT", "leverage": 20},
    {"op": "deposit", "account": 9, "amount": "1000.5"},
    {"op": "withdraw", "amount": "0.00000001"},
    {"op": "liquidate", "account": 4},
    {"op": "setMarkPrice", "symbol": "BTCUSDT", "markPrice": "30000", "indexPrice": "29999.9"},
]
# each changes one field of a request
MUTATIONS = [
    ("quantity", 0.5), ("quantity", 5), ("quantity", "1e3"), ("quantity", "0.000000001"),
    ("quantity", None), ("quantity", " 1"), ("quantity", "-1"), ("quantity", "+2"),
    ("quantity", "1.100000000"), ("quantity", "１"), ("quantity", True), ("quantity", "."),
    ("quantity", "99999999999999999999"), ("price", None), ("price", "5."), ("price", ".5"),
    ("side", "UP"), ("side", None), ("symbol", 5), ("orderId", "12"), ("orderId", 2 ** 70),
    ("colour", "red"), ("account", None), ("account", 7), ("account", 8), ("account", True),
    ("id", True), ("id", None), ("id", 1.5), ("leverage", "20"), ("timeInForce", None),
    ("amount", -5), ("amount", "12.345"), ("markPrice", "NaN"), ("reduceOnly", "yes"),
    ("leverage", 2 ** 31), ("orderId", 2 ** 63), ("orderId", -1 - 2 ** 63),  # past Binance's INT/LONG
]


def generic(message: dict, account: int | None):
    obj = {k: v for k, v in message.items() if k != "id"}
    if obj.get("op") in ACCOUNT_OPS:
        obj.setdefault("account", account)
    try:
        return json_edge.decode_command(obj)
    except json_edge.BadInput as bad:
        return ("error", bad.code, bad.msg)


def requests():
    for i, base in enumerate(BASE):
        yield {"id": i, **base}
        for field, value in MUTATIONS:
            m = {"id": i, **base}
            if value is None and field in ("price", "quantity") and field not in m:
                m[field] = None
            else:
                m[field] = value
            yield m
        for drop in base:
            if drop != "op":
                yield {"id": i, **{k: v for k, v in base.items() if k != drop}}


@pytest.mark.parametrize("mode", [wire.JSONL, wire.MSGPACK])
def test_the_typed_path_accepts_only_what_the_generic_path_accepts_and_builds_the_same(mode):
    encode = msgspec.json.encode if mode == wire.JSONL else msgspec.msgpack.encode
    typed_count = 0
    for message in requests():
        try:
            body = encode(message)
        except (OverflowError, msgspec.EncodeError):
            continue  # msgpack cannot carry the integer at all
        typed = json_edge.decode_request(body, mode, ACCOUNT_OPS)
        if typed is None:
            continue
        typed_count += 1
        assert typed.id == message["id"] and typed.op == message["op"]
        account = typed.account if typed.account is not None else 7
        expected = generic(message, 7)
        assert not isinstance(expected, tuple), (message, expected)
        assert typed.command(account) == expected, message
    assert typed_count >= 50  # the plain requests do take the typed path


def test_every_command_but_a_map_of_decimals_has_a_typed_decoder():
    ops = {t.__struct_config__.tag for t in AnyCommand.__args__}
    body = msgspec.json.encode({"id": 1, "op": "cancelAllOrders", "symbol": "BTCUSDT"})
    assert json_edge.decode_request(body, wire.JSONL, ACCOUNT_OPS).command(3).account == 3
    assert ops - json_edge.TYPED_OPS == {"setIndexPrices"}


def test_not_a_command_request_takes_the_generic_path():
    for message in ({"id": 1, "op": "login", "apiKey": "k", "signature": "s"},
                    {"id": 2, "op": "query", "query": "depth", "symbol": "BTCUSDT"},
                    {"id": 3, "op": "setIndexPrices", "prices": {"BTCUSDT": "1"}}, [1, 2]):
        for mode, enc in ((wire.JSONL, msgspec.json.encode), (wire.MSGPACK, msgspec.msgpack.encode)):
            assert json_edge.decode_request(enc(message), mode, ACCOUNT_OPS) is None
    assert json_edge.decode_request(b"{not json", wire.JSONL, ACCOUNT_OPS) is None
    # an internal op with no account: the login cannot fill it in, so the generic path answers
    body = msgspec.json.encode({"id": 4, "op": "liquidate"})
    assert json_edge.decode_request(body, wire.JSONL, ACCOUNT_OPS) is None
