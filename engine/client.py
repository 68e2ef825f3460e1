"""An asyncio client for the gateway, and a small CLI.

    client = Client("127.0.0.1", 7001)
    await client.connect()
    await client.login(api_key, secret)
    order = await client.request("newOrder", symbol="BTCUSDT", side="BUY", type="LIMIT",
                                 quantity="0.01", price="30000", timeInForce="GTC")
    await client.subscribe("user", "depth@BTCUSDT")
    msg = await client.streams.get()

Requests are pipelined: `submit()` returns a future at once, `request()` awaits it. A
rejected request raises ClientError with Binance's code.

CLI:  python -m engine.client [--host H --port P --key K --secret S | --keys FILE --account N]
          order SYMBOL SIDE QTY [PRICE] [--tif GTC]    cancel SYMBOL ORDER_ID
          query positionRisk|account|openOrders|depth [SYMBOL]
          watch STREAM... [--count N] [--timeout S]      (Ctrl-C ends it too)
          admin OP FIELD=VALUE ...  e.g. admin createAccount account=7 registeredAt=2024-01-01
                          (with an admin key; integer fields are sent as numbers, decimals
                          as strings, times as ms or ISO-8601 text)
          sign NONCE      the login line to type into `nc` for the hello's nonce
A server that cannot be reached is one line on stderr and exit status 1.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys

from proto import wire
from proto.wire import sign


class ClientError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


class Client:
    def __init__(self, host: str = "127.0.0.1", port: int = 7001, mode: str = wire.MSGPACK,
                 stream_queue: int = 0) -> None:
        self.host, self.port, self.mode = host, port, mode
        self.streams: asyncio.Queue = asyncio.Queue(stream_queue)
        self._ids = itertools.count(1)
        self._waiting: dict = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task | None = None
        self.nonce = ""
        self.closed = asyncio.Event()

    async def connect(self) -> dict:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port,
                                                                   limit=1 << 22)
        hello = wire.decode_body(await self._reader.readline(), wire.JSONL)
        self.nonce = hello["nonce"]
        self._writer.write(b"\x00" if self.mode == wire.MSGPACK else b"\n")  # the framing
        self._task = asyncio.create_task(self._read_loop())
        return hello

    async def _read_loop(self) -> None:
        r = self._reader
        try:
            while True:
                if self.mode == wire.MSGPACK:
                    head = await r.readexactly(4)
                    body = await r.readexactly(wire.LENGTH.unpack(head)[0])
                else:
                    body = await r.readline()
                    if not body:
                        break
                msg = wire.decode_body(body, self.mode)
                if "stream" in msg:
                    await self.streams.put(msg)
                else:
                    fut = self._waiting.pop(msg.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                    elif msg.get("id") is None and not msg.get("ok", True):
                        for f in self._waiting.values():  # the server is closing us
                            if not f.done():
                                f.set_exception(ClientError(msg["code"], msg["msg"]))
                        self._waiting.clear()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connection_lost()

    def _connection_lost(self) -> None:
        """Every request still waiting fails with ConnectionError."""
        self.closed.set()
        for f in self._waiting.values():
            if not f.done():
                f.set_exception(ConnectionError("connection closed"))
        self._waiting.clear()

    def submit(self, op: str, **fields) -> asyncio.Future:
        """Send a request now; the future resolves to the raw response."""
        req_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        if self.closed.is_set():
            fut.set_exception(ConnectionError("connection closed"))
            return fut
        self._waiting[req_id] = fut
        self._writer.write(wire.encode({"id": req_id, "op": op, **fields}, self.mode))
        return fut

    async def request(self, op: str, **fields):
        msg = await self.submit(op, **fields)
        if not msg.get("ok"):
            raise ClientError(msg.get("code", -1000), msg.get("msg", ""))
        return msg["result"]

    async def login(self, api_key: str, secret: str) -> dict:
        return await self.request("login", apiKey=api_key, signature=sign(secret, self.nonce))

    async def subscribe(self, *streams: str) -> dict:
        return await self.request("subscribe", streams=list(streams))

    async def query(self, name: str, **fields):
        return await self.request("query", query=name, **fields)

    async def drain(self) -> None:
        await self._writer.drain()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


# -- the CLI ----------------------------------------------------------------------------------
def _credentials(args) -> tuple[str, str] | None:
    if args.key and args.secret:
        return args.key, args.secret
    if args.keys:
        rows = json.loads(open(args.keys).read())
        for row in rows:
            if (args.account is None and row.get("admin")) or row.get("account") == args.account:
                return row["apiKey"], row["secret"]
        raise SystemExit(f"error: no key for account {args.account} in {args.keys}")
    return None


async def _cli(args) -> int:
    if args.cmd == "sign":  # no connection: a person pastes the line into `nc`
        creds = _credentials(args)
        if creds is None:
            print("error: sign needs --key/--secret or --keys", file=sys.stderr)
            return 2
        print(json.dumps({"id": 1, "op": "login", "apiKey": creds[0],
                          "signature": sign(creds[1], args.nonce)}, separators=(",", ":")))
        return 0
    client = Client(args.host, args.port, wire.JSONL)
    try:
        await client.connect()
    except OSError as exc:
        why = "connection refused" if isinstance(exc, ConnectionRefusedError) else \
            exc.strerror or str(exc)
        print(f"error: cannot connect to {args.host}:{args.port}: {why} (is the server "
              "running? `make run` starts one)", file=sys.stderr)
        return 1
    creds = _credentials(args)
    if creds:
        await client.login(*creds)
    try:
        if args.cmd == "order":
            fields = {"symbol": args.symbol, "side": args.side.upper(),
                      "type": "LIMIT" if args.price else "MARKET", "quantity": args.qty}
            if args.price:
                fields.update(price=args.price, timeInForce=args.tif)
            if args.reduce_only:
                fields["reduceOnly"] = True
            result = await client.request("newOrder", **fields)
            result.pop("events", None)
            print(json.dumps(result))
        elif args.cmd == "cancel":
            result = await client.request("cancelOrder", symbol=args.symbol, orderId=args.order_id)
            result.pop("events", None)
            print(json.dumps(result))
        elif args.cmd == "query":
            fields = {"symbol": args.symbol} if args.symbol else {}
            print(json.dumps(await client.query(args.name, **fields), indent=1))
        elif args.cmd == "admin":
            try:
                fields = admin_fields(args.fields)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            result = await client.request(args.op, **fields)
            print(json.dumps(result))
        elif args.cmd == "watch":
            first = await client.subscribe(*args.streams)
            print(json.dumps(first), flush=True)
            loop = asyncio.get_running_loop()
            deadline = None if args.timeout is None else loop.time() + args.timeout
            closed = asyncio.ensure_future(client.closed.wait())
            n = 0
            while args.count is None or n < args.count:
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    break
                get = asyncio.ensure_future(client.streams.get())
                done, _ = await asyncio.wait({get, closed}, timeout=left,
                                             return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    break
                print(json.dumps(get.result()), flush=True)
                n += 1
            closed.cancel()
    except ClientError as exc:
        print(f"error {exc.code}: {exc.msg}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    return 0


INT_FIELDS = frozenset({"account", "leverage", "orderId", "type", "limit", "registeredAt",
                        "onboardTime", "delistTime"})
BOOL_FIELDS = frozenset({"reduceOnly"})


def admin_fields(pairs: list[str]) -> dict:
    """FIELD=VALUE words -> a request's fields: integer fields as numbers (a time may also be
    ISO-8601 text, which the server reads), booleans as booleans, the rest as strings
    (decimals travel as strings)."""
    fields: dict = {}
    for kv in pairs:
        name, eq, value = kv.partition("=")
        if not eq or not name:
            raise ValueError(f"expected FIELD=VALUE, got {kv!r}")
        if name in INT_FIELDS and value.lstrip("-").isdigit():
            fields[name] = int(value)
        elif name in BOOL_FIELDS and value.lower() in ("true", "false"):
            fields[name] = value.lower() == "true"
        elif name in INT_FIELDS and not name.endswith(("At", "Time")):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        else:
            fields[name] = value
    return fields


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.client")
    p.add_argument("--host", default=os.environ.get("PERPENGINE_HOST", "127.0.0.1"),
                   help="default: $PERPENGINE_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("PERPENGINE_PORT", "7001")),
                   help="default: $PERPENGINE_PORT or 7001")
    p.add_argument("--key")
    p.add_argument("--secret")
    p.add_argument("--keys", help="a keys file (the server's var/keys.json)")
    p.add_argument("--account", type=int, help="with --keys: whose key (default: the admin's)")
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("order")
    o.add_argument("symbol")
    o.add_argument("side")
    o.add_argument("qty")
    o.add_argument("price", nargs="?")
    o.add_argument("--tif", default="GTC")
    o.add_argument("--reduce-only", action="store_true")
    c = sub.add_parser("cancel")
    c.add_argument("symbol")
    c.add_argument("order_id", type=int)
    q = sub.add_parser("query")
    q.add_argument("name")
    q.add_argument("symbol", nargs="?")
    a = sub.add_parser("admin", help="e.g. admin deposit account=1 amount=1000")
    a.add_argument("op")
    a.add_argument("fields", nargs="*")
    g = sub.add_parser("sign", help="print the login line for a nonce (for typing into nc)")
    g.add_argument("nonce")
    w = sub.add_parser("watch", help="print stream messages (Ctrl-C, --count or --timeout ends)")
    w.add_argument("streams", nargs="+")
    w.add_argument("--count", type=int, help="stop after this many messages")
    w.add_argument("--timeout", type=float, help="stop after this many seconds")
    args = p.parse_args(argv)
    try:
        return asyncio.run(_cli(args))
    except KeyboardInterrupt:  # Ctrl-C: the normal end of `watch`, a quiet stop otherwise
        return 0 if args.cmd == "watch" else 130


if __name__ == "__main__":
    sys.exit(main())
