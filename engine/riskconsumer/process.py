"""The risk consumer as its own process (`python -m engine.riskconsumer`): it follows the log
file from its start with its own projection and sends liquidate/marginCall to the server over
TCP with a key of the `risk` role (the only role allowed to send them; its secret comes in the
environment, never on the command line). The server starts it with --risk-process.

On a JetStream log (`--log nats://...`) it is a durable consumer (`--durable`, "risk" when the
server starts it) and may run on another host: the stream keeps its acknowledged position. A
restarted process rebuilds its projection from the stream up to that position (answers to
those records were sent by its predecessor), then goes on from the durable, answering."""
from __future__ import annotations

import argparse
import asyncio
import os
import signal

from engine.client import Client
from engine.core import EngineConfig
from engine.core import catalogue as catalogue_mod
from engine.eventlog import LogReader, LogTail
from engine.riskconsumer.consumer import RiskConsumer
from proto import commands as C
from proto.json_edge import to_wire


IDLE_POLL_MAX_S = 0.02  # the longest pause between polls of a log that has gone quiet


async def _run_process(log_path: str, host: str, port: int, api_key: str, secret: str,
                       poll_ms: int) -> int:
    """Follow the log file from its start, and send what the consumer asks for to the server
    over TCP with a risk key. Ends on SIGTERM or when the server goes away."""
    reader = LogReader(log_path)
    reader.read_header()
    consumer = RiskConsumer(catalogue_mod.load(), EngineConfig.from_dict(reader.header.engine_config if reader.header else {}))
    client = Client(host, port)
    await client.connect()
    await client.login(api_key, secret)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def submit(cmd: C.Command) -> None:
        wire = to_wire(cmd)
        reply = client.submit(wire.pop("op"), **wire)  # the core re-checks; no need to wait
        reply.add_done_callback(lambda f: f.cancelled() or f.exception())

    caught_up = False
    tail = LogTail(log_path)
    idle_s = poll_ms / 1000
    while not stop.is_set() and not client.closed.is_set():
        records = tail.poll()
        for rec in records:
            for cmd in consumer.process(rec):
                await submit(cmd)
        if records:
            idle_s = poll_ms / 1000
        else:
            if not caught_up:  # after a restart: whoever the crash left under water
                caught_up = True
                for cmd in consumer.evaluate_all():
                    await submit(cmd)
            await asyncio.sleep(idle_s)
            idle_s = min(idle_s * 2, IDLE_POLL_MAX_S)  # a quiet log is polled less often
    await client.close()
    return 0


async def _run_nats(spec: str, durable: str, host: str, port: int, api_key: str,
                    secret: str) -> int:
    """Follow the stream through a durable consumer (engine.eventlog.jetstream.ResumingFeed)."""
    from engine.eventlog.jetstream import JetStreamLog, ResumingFeed
    log = JetStreamLog(spec, f"perpengine-risk-{durable}")
    await log.connect()
    feed = ResumingFeed(log, durable)
    header = await feed.wait_header()
    consumer = RiskConsumer(catalogue_mod.load(), EngineConfig.from_dict(header.engine_config))
    client = Client(host, port)
    await client.connect()
    await client.login(api_key, secret)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await feed.start()
    caught_up = False
    while not stop.is_set() and not client.closed.is_set():
        entries = await feed.next(0.05)
        for entry in entries:
            answering = not feed.replaying(entry)
            for rec in entry.records:
                for cmd in consumer.process(rec):
                    if answering:
                        wire = to_wire(cmd)
                        reply = client.submit(wire.pop("op"), **wire)
                        reply.add_done_callback(lambda f: f.cancelled() or f.exception())
        if entries:
            await feed.ack(entries[-1])
        elif not caught_up and not feed.replaying_now():
            caught_up = True  # after a restart: whoever the crash left under water
            for cmd in consumer.evaluate_all():
                wire = to_wire(cmd)
                client.submit(wire.pop("op"), **wire).add_done_callback(
                    lambda f: f.cancelled() or f.exception())
    await client.close()
    try:  # NATS may be gone too (the whole host): never hang on the way out
        await asyncio.wait_for(feed.close(), 2)
        await asyncio.wait_for(log.close(), 2)
    except asyncio.TimeoutError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.riskconsumer",
                                description="the risk consumer as its own process")
    p.add_argument("--log", required=True, help="a log file, or nats://HOST:PORT/STREAM")
    p.add_argument("--durable", default="risk",
                   help="on a JetStream log: the durable consumer's name (default risk)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True, help="an API key with the risk role")
    p.add_argument("--secret", default=os.environ.get("PERPENGINE_RISK_SECRET"),
                   help="default: $PERPENGINE_RISK_SECRET")
    p.add_argument("--poll-ms", type=int, default=2)
    a = p.parse_args(argv)
    if not a.secret:
        p.error("the risk key's secret: --secret or $PERPENGINE_RISK_SECRET")
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    if a.log.startswith("nats://"):
        return run(_run_nats(a.log, a.durable, a.host, a.port, a.key, a.secret))
    return run(_run_process(a.log, a.host, a.port, a.key, a.secret, a.poll_ms))


