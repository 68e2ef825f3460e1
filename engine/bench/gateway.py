"""Gateway benchmark (a report, not a test):  python -m engine.bench gateway [--n N]

The cost of one newOrder request from its bytes to the command the sequencing loop takes, in
both framings (a JSON line, a msgpack frame body), as the native gateway does it
(engine.server.native: proto.wire + proto.json_edge), and for comparison the generic path
(bytes -> dict -> decimal fields converted -> msgspec.convert to the command type)."""
from __future__ import annotations

import argparse
import gc
import time

import msgspec

from engine.bench.common import machine_line
from proto import json_edge, wire

REQUEST = {"id": 12345, "op": "newOrder", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
           "quantity": "0.015", "price": "30123.4", "timeInForce": "GTC"}


def _time(fn, bodies) -> float:
    gc.collect()
    gc.disable()
    t0 = time.perf_counter_ns()
    for body in bodies:
        fn(body)
    elapsed = time.perf_counter_ns() - t0
    gc.enable()
    return round(elapsed / len(bodies) / 1000, 2)


def generic(body: bytes, mode: str):
    message = wire.decode_body(body, mode)
    obj = {k: v for k, v in message.items() if k != "id"}
    obj.setdefault("account", 7)
    return json_edge.decode_command(obj)


def bench_parse(n: int) -> dict:
    js = [msgspec.json.encode({**REQUEST, "id": i}) for i in range(n)]
    mp = [msgspec.msgpack.encode({**REQUEST, "id": i}) for i in range(n)]
    out = {"requests": n,
           "generic_json_us": _time(lambda b: generic(b, wire.JSONL), js),
           "generic_msgpack_us": _time(lambda b: generic(b, wire.MSGPACK), mp)}
    typed = getattr(json_edge, "decode_request", None)
    if typed is not None:  # the gateway's path: bytes straight to the command
        ops = frozenset({"newOrder"})
        out["json_us"] = _time(lambda b: typed(b, wire.JSONL, ops).command(7), js)
        out["msgpack_us"] = _time(lambda b: typed(b, wire.MSGPACK, ops).command(7), mp)
    else:
        out["json_us"], out["msgpack_us"] = out["generic_json_us"], out["generic_msgpack_us"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.bench gateway")
    p.add_argument("--n", type=int, default=100_000)
    a = p.parse_args(argv)
    print(machine_line(), flush=True)
    print("gateway parse:", bench_parse(a.n))
    return 0
