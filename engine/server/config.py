"""The server's settings and its command line (`python -m engine serve --help`)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass


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
    sndbuf: int = 256 * 1024  # kernel send buffer per connection (bytes); 0: the OS default
    rate_per_s: int = 5_000  # requests per second per connection, sustained
    rate_burst: int = 10_000  # requests a connection may send at once
    batch_max: int = 4096
    summary_every_s: int = 5
    checkpoint_every: int = 10_000
    drain_s: int = 5  # on stop, how long to let queued requests and liquidations finish
    risk_process: bool = False  # run the risk consumer as a child process reading the log
    snapshot_every: int = 100_000  # events between snapshots; 0: none
    snapshot_dir: str | None = None  # default: <log>.snapshots
    catalogue_path: str | None = None
    api_host: str = "127.0.0.1"  # Binance's REST and WebSocket API (engine.api)
    api_port: int = 8080  # 0 picks a free port; -1: no API
    api_weight_limit: int = 2400  # request weight per IP per minute
    api_order_limit: int = 1200  # new orders per account per minute (a quarter per 10 s)
    api_listen_key_minutes: float = 60  # a listen key lives this long after its last keepalive

    def snapshots(self) -> str:
        return self.snapshot_dir or self.log_path + ".snapshots"


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
    p.add_argument("--outbound-limit", type=int, default=d.outbound_limit)
    p.add_argument("--sndbuf", type=int, default=d.sndbuf)
    p.add_argument("--rate", type=int, default=d.rate_per_s)
    p.add_argument("--burst", type=int, default=d.rate_burst)
    p.add_argument("--summary-every", type=int, default=d.summary_every_s)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help="commands between checkpoint events carrying the state hash (0: none)")
    p.add_argument("--snapshot-every", type=int, default=d.snapshot_every,
                   help="events between snapshots (0: none)")
    p.add_argument("--snapshots", help="snapshot directory (default: <log>.snapshots)")
    p.add_argument("--risk-process", action="store_true",
                   help="run the risk consumer as a child process reading the log")
    p.add_argument("--catalogue")
    p.add_argument("--api-host", default=d.api_host, help="Binance API address")
    p.add_argument("--api-port", type=int, default=d.api_port,
                   help="Binance API port (0 picks a free port, -1 turns the API off)")
    p.add_argument("--api-weight-limit", type=int, default=d.api_weight_limit,
                   help="request weight per IP per minute (Binance: 2400)")
    p.add_argument("--api-order-limit", type=int, default=d.api_order_limit,
                   help="new orders per account per minute (Binance: 1200; a quarter per 10 s)")
    p.add_argument("--api-listen-key-minutes", type=float, default=d.api_listen_key_minutes,
                   help="listen key lifetime without a keepalive (Binance: 60)")
    a = p.parse_args(argv)
    return ServerConfig(host=a.host, port=a.port, log_path=a.log, keys_path=a.keys,
                        fsync=a.fsync, fsync_interval_ms=a.fsync_interval_ms,
                        max_frame=a.max_frame, outbound_limit=a.outbound_limit,
                        sndbuf=a.sndbuf, rate_per_s=a.rate, rate_burst=a.burst,
                        summary_every_s=a.summary_every, checkpoint_every=a.checkpoint_every,
                        snapshot_every=a.snapshot_every, snapshot_dir=a.snapshots,
                        risk_process=a.risk_process, catalogue_path=a.catalogue,
                        api_host=a.api_host, api_port=a.api_port,
                        api_weight_limit=a.api_weight_limit, api_order_limit=a.api_order_limit,
                        api_listen_key_minutes=a.api_listen_key_minutes)
