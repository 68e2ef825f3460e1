"""The server's settings and its command line (`python -m engine serve --help`)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from engine.server.clock import make_clock


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7001
    log_path: str = "var/engine.log"
    keys_path: str = "var/keys.json"
    fsync: str = "batch"  # "batch" | "interval"
    fsync_interval_ms: int = 20
    max_frame: int = 64 * 1024  # bytes
    outbound_limit: int = 10_000  # messages queued for one connection before it is cut off
    outbound_bytes: int = 2 * 1024 * 1024  # bytes queued for one connection, likewise
    weight_per_min: int = 2_400  # Binance's REQUEST_WEIGHT per minute and connection (reads)
    max_connections: int = 2_000
    idle_timeout_s: float = 600.0  # a connection silent this long, following no stream
    repair: bool = False  # move a damaged part of the log aside instead of refusing to start
    sndbuf: int = 256 * 1024  # kernel send buffer per connection (bytes); 0: the OS default
    rate_per_s: int = 5_000  # requests per second per connection, sustained
    rate_burst: int = 10_000  # requests a connection may send at once
    batch_max: int = 4096
    summary_every_s: int = 5
    checkpoint_every: int = 10_000
    drain_s: int = 5  # on stop, how long to let queued requests and liquidations finish
    # the risk consumer as a child process reading the log (the default); False (--risk-inline):
    # a task in the server's own process, fed the records directly
    risk_process: bool = True
    snapshot_every: int = 100_000  # events between snapshots; 0: none
    snapshot_dir: str | None = None  # default: <log>.snapshots
    catalogue_path: str | None = None
    # the venue's clock (engine.server.clock): "wall", or "sim" from `start` at `speed` x wall
    clock: str = "wall"
    speed: str = "1"
    start: str | None = None  # ISO-8601; with clock "sim" (default: now)
    # the market simulator as a child process (engine.sim.market; `make run` turns it on)
    market: bool = False
    market_symbols: str | None = None  # comma-separated (default: the simulator's set)
    market_seed: int = 1
    market_prices: list[str] | None = None  # recorded price files or folders
    market_scenario: str | None = None  # a scenario file (TOML or JSON)
    api_host: str = "127.0.0.1"  # Binance's REST and WebSocket API (engine.api)
    api_port: int = 8080  # 0 picks a free port; -1: no API
    api_weight_limit: int = 2400  # request weight per IP per minute
    api_order_limit: int = 1200  # new orders per account per minute (a quarter per 10 s)
    api_listen_key_minutes: float = 60  # a listen key lives this long after its last keepalive
    # a JetStream log (--log nats://...): follow it and take over when the active goes quiet
    standby: bool = False
    takeover_ms: int = 750  # without the active's heartbeat (every 100 ms) before taking over
    risk_durable: str = "risk"  # the risk consumer process's durable consumer on the stream

    def snapshots(self) -> str:
        if self.snapshot_dir:
            return self.snapshot_dir
        if self.log_path.startswith("nats://"):  # local, beside the keys
            stream = self.log_path.split("?")[0].rstrip("/").rpartition("/")[2]
            return f"var/{stream}.snapshots"
        return self.log_path + ".snapshots"


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    p = argparse.ArgumentParser(prog="python -m engine serve")
    d = ServerConfig()
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument("--log", default=d.log_path)
    p.add_argument("--keys", default=d.keys_path)
    p.add_argument("--fsync", choices=["batch", "interval"], default=d.fsync)
    p.add_argument("--fsync-interval-ms", type=int, default=d.fsync_interval_ms)
    p.add_argument("--max-frame", type=int, default=d.max_frame)
    p.add_argument("--outbound-limit", type=int, default=d.outbound_limit,
                   help="messages queued for one connection")
    p.add_argument("--outbound-bytes", type=int, default=d.outbound_bytes,
                   help="bytes queued for one connection")
    p.add_argument("--weight-per-min", type=int, default=d.weight_per_min,
                   help="request weight of reads per minute and connection, as Binance's "
                        "REQUEST_WEIGHT (0: none)")
    p.add_argument("--max-connections", type=int, default=d.max_connections)
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s,
                   help="seconds a connection may send nothing while following no stream "
                        "(0: forever)")
    p.add_argument("--repair", action="store_true",
                   help="if the log is damaged before its end, move the damaged part aside "
                        "(never deleted) and start; without it the server refuses to start")
    p.add_argument("--sndbuf", type=int, default=d.sndbuf)
    p.add_argument("--rate", type=int, default=d.rate_per_s)
    p.add_argument("--burst", type=int, default=d.rate_burst)
    p.add_argument("--summary-every", type=int, default=d.summary_every_s)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="commands between checkpoint events carrying the state hash (0: none)")
    p.add_argument("--snapshot-every", type=int, default=d.snapshot_every,
                   help="events between snapshots (0: none)")
    p.add_argument("--snapshots", help="snapshot directory (default: <log>.snapshots)")
    p.add_argument("--risk-inline", action="store_true",
                   help="run the risk consumer in the server's process (default: a child "
                        "process following the log)")
    p.add_argument("--risk-process", action="store_true",
                   help="the risk consumer as a child process following the log (the default)")
    p.add_argument("--catalogue")
    api = p.add_argument_group("Binance's REST and WebSocket API (engine.api)")
    api.add_argument("--api-host", default=d.api_host, help="Binance API address")
    api.add_argument("--api-port", type=int, default=d.api_port,
                   help="Binance API port (0 picks a free port, -1 turns the API off)")
    api.add_argument("--api-weight-limit", type=int, default=d.api_weight_limit,
                   help="request weight per IP per minute (Binance: 2400)")
    api.add_argument("--api-order-limit", type=int, default=d.api_order_limit,
                   help="new orders per account per minute (Binance: 1200; a quarter per 10 s)")
    api.add_argument("--api-listen-key-minutes", type=float, default=d.api_listen_key_minutes,
                   help="listen key lifetime without a keepalive (Binance: 60)")
    c = p.add_argument_group("the venue's clock")
    c.add_argument("--clock", choices=["wall", "sim"], default=d.clock,
                   help="wall: real time; sim: simulated time from --start at --speed x real")
    c.add_argument("--speed", default=d.speed, help="with --clock sim: simulated seconds per "
                                                    "real second (e.g. 60)")
    c.add_argument("--start", help="with --clock sim: ISO-8601 start, e.g. 2022-09-12T00:00:00Z "
                                   "(default: now)")
    n = p.add_argument_group("a JetStream log (--log nats://HOST:PORT[,HOST:PORT]/STREAM"
                             "[?replicas=3])")
    n.add_argument("--standby", action="store_true",
                   help="follow the stream and take over (fence the active, then serve) when "
                        "the active's heartbeat stops")
    n.add_argument("--takeover-ms", type=int, default=d.takeover_ms,
                   help="how long without a heartbeat before a standby takes over")
    n.add_argument("--risk-durable", default=d.risk_durable,
                   help="the risk consumer's durable consumer name")
    m = p.add_argument_group("the market simulator (make run turns it on)")
    m.add_argument("--market", action=argparse.BooleanOptionalAction, default=d.market,
                   help="start the market simulator as a child process (--no-market: an "
                        "empty venue)")
    m.add_argument("--symbols", help="simulated symbols, comma-separated")
    m.add_argument("--seed", type=int, default=d.market_seed, help="the simulator's seed")
    m.add_argument("--prices", action="append",
                   help="drive index prices from a Binance kline or aggTrades CSV (a file per "
                        "symbol, or a folder); repeatable")
    m.add_argument("--scenario", help="a scenario file (TOML or JSON) of timed events")
    a = p.parse_args(argv)
    try:
        make_clock(a.clock, a.speed, a.start)
    except ValueError as exc:
        p.error(str(exc))
    if not a.market and (a.symbols or a.prices or a.scenario):
        p.error("--symbols, --prices and --scenario are the market simulator's: add --market")
    if a.log.startswith("nats://"):
        from engine.eventlog.jetstream import LogSpecError, parse_spec
        try:
            parse_spec(a.log)
        except LogSpecError as exc:
            p.error(str(exc))
        if a.repair:
            p.error("--repair is for a log file; JetStream keeps its own replicas")
    elif a.standby:
        p.error("--standby follows a JetStream log: give --log nats://HOST:PORT/STREAM")
    return ServerConfig(host=a.host, port=a.port, log_path=a.log, keys_path=a.keys,
                        fsync=a.fsync, fsync_interval_ms=a.fsync_interval_ms,
                        max_frame=a.max_frame, outbound_limit=a.outbound_limit,
                        sndbuf=a.sndbuf, rate_per_s=a.rate, rate_burst=a.burst,
                        summary_every_s=a.summary_every, checkpoint_every=a.checkpoint_every,
                        snapshot_every=a.snapshot_every, snapshot_dir=a.snapshots,
                        risk_process=not a.risk_inline, catalogue_path=a.catalogue,
                        clock=a.clock, speed=a.speed, start=a.start, market=a.market,
                        market_symbols=a.symbols, market_seed=a.seed, market_prices=a.prices,
                        market_scenario=a.scenario, outbound_bytes=a.outbound_bytes,
                        weight_per_min=a.weight_per_min, max_connections=a.max_connections,
                        idle_timeout_s=a.idle_timeout, repair=a.repair, standby=a.standby,
                        takeover_ms=a.takeover_ms, risk_durable=a.risk_durable,
                        api_host=a.api_host, api_port=a.api_port,
                        api_weight_limit=a.api_weight_limit, api_order_limit=a.api_order_limit,
                        api_listen_key_minutes=a.api_listen_key_minutes)
