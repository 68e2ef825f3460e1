"""A read-only replica (`python -m engine replica --log nats://HOST:PORT/STREAM --port P`): the
stream publishers and the queries in a process of their own, on any host that reaches NATS.

It is a durable consumer of the stream (`--durable`, default replica-<port>): its state is the
core rebuilt from the stream's records (engine.apply_record, the restart path), and it serves
the native protocol with the server's own gateway: logins (the keys file, re-read when an
unknown key logs in), every query (depth, positionRisk, account, openOrders, premiumIndex, ...,
`state` with the state hash) and every stream (user, trade@, depth@, markPrice@, forceOrder@),
built from each record as the server builds them. Commands are refused (-1000, naming the
replica): they go to the active server. A restarted replica rebuilds from the stream up to its
durable's position, then goes on from the durable.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import json
import signal
import sys
import time
from pathlib import Path

import structlog

from engine.core import Engine, EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.eventlog.jetstream import JetStreamLog, ResumingFeed
from engine.server import logsetup
from engine.server.auth import ApiKey, KeyStore
from engine.server.clock import WallClock
from engine.server.native import GatewayLimits, NativeGateway
from proto import events as V
from proto.records import LogRecord

log = structlog.get_logger("replica")

READ_ONLY = -1000


class ReplicaKeys(KeyStore):
    """The keys file, read (never written or locked: the active server owns it); re-read when
    an unknown key logs in; no keys are created here."""

    def __init__(self, path: str) -> None:
        super().__init__(None)
        self.file = Path(path)
        self.loaded_at = 0.0
        self.reload()

    def reload(self) -> None:
        self.loaded_at = time.monotonic()
        try:
            rows = json.loads(self.file.read_text() or "[]")
        except (OSError, ValueError):
            return  # missing, or being appended to: the next login tries again
        self.keys = {row["apiKey"]: ApiKey(**row) for row in rows}

    def verify(self, api_key: object, nonce: str, signature: object) -> ApiKey | None:
        if isinstance(api_key, str) and api_key not in self.keys and \
                time.monotonic() - self.loaded_at > 0.2:
            self.reload()
        return super().verify(api_key, nonce, signature)

    async def create_durable(self, account: int | None) -> ApiKey:
        raise OSError(errno.EROFS, "a read-only replica: create keys on the active server")


class ReplicaLoop:
    """What the gateway needs of a sequencing loop: reads run at once (between two applied
    batches: everything here runs on one thread), commands are refused."""

    def __init__(self, clock, stream: str) -> None:
        self.clock = clock
        self.stream = stream
        self.listeners: list = []
        self.commands = 0

    def submit(self, cmd, done=None) -> None:
        if done is not None:
            done(LogRecord(0, self.clock(), cmd, [V.CommandRejected(
                op="command", code=READ_ONLY,
                msg=f"This server is a read-only replica of {self.stream}; send commands to "
                    "the active server.")]))

    def read(self, fn, done) -> None:
        done(fn())

    def idle(self) -> bool:
        return True


class Replica:
    def __init__(self, spec: str, durable: str, keys_path: str, limits: GatewayLimits) -> None:
        self.log = JetStreamLog(spec, f"perpengine-replica-{durable}")
        self.durable = durable
        self.keys = ReplicaKeys(keys_path)
        self.limits = limits
        self.engine: Engine | None = None
        self.gateway: NativeGateway | None = None
        self.feed: ResumingFeed | None = None
        self.stats = {"trades": 0, "liquidations": 0, "rejected": 0, "slow_disconnects": 0}
        self.applied = 0
        self.position = 0  # the last stream sequence handled

    async def start(self, host: str, port: int) -> None:
        await self.log.connect()
        self.feed = ResumingFeed(self.log, self.durable)
        header = await self.feed.wait_header()
        catalogue = catalogue_mod.load()
        config = EngineConfig.from_dict(header.engine_config, checkpoint_every=0)
        self.engine = Engine(catalogue, config)
        self.loop = ReplicaLoop(WallClock(), self.log.spec.stream)
        self.gateway = NativeGateway(self.engine, self.loop, self.keys, self.limits, self.stats)
        await self.feed.start()
        last = await self.log.last_seq()
        while max(self.position, 1) < last:
            await self._step(1.0)  # catch up with what is stored before serving
        await self.gateway.start(host, port)

    async def _step(self, timeout: float) -> int:
        entries = await self.feed.next(timeout)
        engine, gateway = self.engine, self.gateway
        for entry in entries:
            if entry.kind != "batch":
                continue
            if entry.error:
                raise RuntimeError(f"stream seq {entry.stream_seq}: {entry.error}")
            fresh = []
            for record in entry.records:
                if record.seq <= engine.seq:
                    continue
                if record.seq != engine.seq + 1:
                    raise RuntimeError(f"the stream skips from seq {engine.seq} to {record.seq}")
                engine.apply_record(record.seq, record.time, record.events)
                gateway.after_command(record)
                fresh.append(record)
            if fresh:
                gateway.before_replies(fresh)
                gateway.after_flush(fresh)
                self.applied += len(fresh)
        if entries:
            self.position = entries[-1].stream_seq
            await self.feed.ack(entries[-1])
        return len(entries)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._step(0.05)

    async def close(self) -> None:
        if self.gateway is not None:
            self.gateway.close()
            await self.gateway.close_connections()
        try:  # NATS may be gone too: never hang on the way out
            if self.feed is not None:
                await asyncio.wait_for(self.feed.close(), 2)
            await asyncio.wait_for(self.log.close(), 2)
        except asyncio.TimeoutError:
            pass


async def _main(a) -> int:
    replica = Replica(a.log, a.durable or f"replica-{a.port}", a.keys,
                      GatewayLimits(max_connections=a.max_connections))
    try:
        await replica.start(a.host, a.port)
    except (ConnectionError, OSError) as exc:
        print(f"perpengine replica: not starting: {exc}", file=sys.stderr, flush=True)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host, port = replica.gateway.address
    print(f"perpengine replica: serving reads and streams on {host}:{port}; follows "
          f"{replica.log.spec} as durable consumer {replica.feed.durable.durable} (record seq "
          f"{replica.engine.seq}); keys {a.keys} (read only); commands go to the active server",
          flush=True)
    try:
        await replica.run(stop)
    finally:
        await replica.close()
    print(f"perpengine replica: stopped at record seq {replica.engine.seq}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine replica",
                                description="a read-only replica: queries and streams from a "
                                            "JetStream log, as a durable consumer")
    p.add_argument("--log", required=True, help="nats://HOST:PORT[,HOST:PORT]/STREAM")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7201, help="0 picks a free port")
    p.add_argument("--keys", default="var/keys.json", help="the active server's keys (read)")
    p.add_argument("--durable", help="the durable consumer's name (default replica-<port>)")
    p.add_argument("--max-connections", type=int, default=2_000)
    a = p.parse_args(argv)
    if not a.log.startswith("nats://"):
        p.error("a replica follows a JetStream log: --log nats://HOST:PORT/STREAM")
    logsetup.configure()
    try:
        import uvloop
        return uvloop.run(_main(a))
    except ImportError:
        return asyncio.run(_main(a))


if __name__ == "__main__":
    sys.exit(main())
