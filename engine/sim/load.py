"""`make load`: synthetic traders against the gateway, a report of throughput and ack latency.

    python -m engine.sim.load [--duration S] [--orders N] [--rate ORDERS_PER_S] [--accounts N]
                          [--connections N] [--inflight N] [--seed N] [--fsync batch|interval]
                          [--flow traders|honest] [--sweep]
                          [--connect HOST:PORT --keys FILE] [--report PATH] ...

--flow honest sends the benchmarks' flow (engine.sim.flowload); --sweep is the end-to-end
benchmark: that flow at offered 2,000, 5,000 and 10,000 orders/s with fsync batch and
interval, one table at the end. The report gives the server's own CPU time per acknowledged
order (/proc/<pid>/stat), its risk-consumer process's and the load generator's.

By default it starts its own server (`python -m engine serve --port 0` with a log and keys file
in a fresh temporary directory, and a per-connection rate limit high enough not to throttle the
load), sets up accounts through the admin key, runs the traders, stops the server with SIGTERM
and reports its exit code. `--connect HOST:PORT --keys FILE` uses a running server instead.

The traders (engine.sim.traders: makers, takers, cancelers, over-leveraged gamblers, watchers),
each on its own connection (one per account unless --connections is larger), and the admin's
price feed (engine.sim.pricefeed: every mark as a seeded random walk with jumps).
Every trader pipelines (at most --inflight requests outstanding per connection) and times each
order request from send to acknowledgement with time.perf_counter_ns. An observer connection
counts liquidations on !forceOrder and trades on trade@SYMBOL.

This is an edge tool: it uses floats for its random walk and its statistics, but every price and
quantity it sends is a decimal string made from integer ticks and steps of the instrument.
Progress goes to stderr once a second; the report to stdout, as JSON to --report, and as a
picture next to it (FILE.png: latency percentiles over time and a histogram, orders/s and CPU
over time).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from time import perf_counter, perf_counter_ns

from engine.client import ClientError
from engine.core import catalogue as catalogue_mod
from engine.core import fixed
from engine.sim.connections import (LoadClient, ServerInfo, log, raise_nofile, start_server,
                                    stop_server)
from engine.sim.pricefeed import feed
from engine.sim import flowload
from engine.sim.report import (ORDER_OPS, CpuMeter, ProcessCpu, Stats, build_report,
                               print_report, print_sweep, write_picture)
from engine.sim.traders import (CONN_ROLES, ROLES, Canceler, Gambler, Maker, Market, Taker,
                                Trader, Watcher, plan_roles)
from proto import wire

DEFAULT_MARKS = {"BTCUSDT": "30000", "ETHUSDT": "2000", "ALLUSDT": "1.5"}


# -- the run -------------------------------------------------------------------------------------
class Run:
    def __init__(self, args) -> None:
        self.args = args
        self.stats = Stats()
        self.stopping = False
        self.stop_reason = ""
        self.traders: list[Trader] = []
        self.markets: dict[str, Market] = {}
        self.topups: asyncio.Queue = asyncio.Queue()
        self.t_start = 0.0
        self.t_stop = 0.0
        self.order_limit = args.orders or 0
        self.orders_taken = 0
        self.admin: LoadClient | None = None
        self.observer: LoadClient | None = None
        self.observer_lost = False
        self.peak_connections = 0
        self.server = ServerInfo()
        self.timeline: list[dict] = []
        self.lags: list[float] = []
        self.setup_s = None
        self.flow_items: list = []
        self.cpu_start: dict | None = None  # CPU seconds of the server, its risk child and
        self.cpu_end: dict | None = None  # this process, at the start and end of the load

    def take_order(self) -> bool:
        if self.stopping:
            return False
        if self.order_limit:
            if self.orders_taken >= self.order_limit:
                self.stop("--orders reached")
                return False
            self.orders_taken += 1
        return True

    def stop(self, reason: str) -> None:
        if not self.stopping:
            self.stopping = True
            self.stop_reason = reason
            self.t_stop = perf_counter()
            for t in self.traders:
                t.wake.set()

    def on_conn_lost(self, trader: Trader) -> None:
        self.stats.conn_lost += 1
        log(f"load: connection {trader.index} (account {trader.account}, {trader.role}) lost")

    def held(self) -> int:
        return sum(1 for t in self.traders if t.client is not None and not t.client.closed.is_set())


async def setup(run: Run, host: str, port: int, keys_path: Path) -> None:
    a = run.args
    rows = json.loads(Path(keys_path).read_text())
    admin_row = next((r for r in rows if r.get("admin")), None)
    if admin_row is None:
        raise RuntimeError(f"no admin key in {keys_path}")
    base = a.account_base
    if base is None:
        base = 1 + max([r["account"] for r in rows if isinstance(r.get("account"), int)] or [0])
    t_setup = perf_counter()
    admin = LoadClient(host, port, wire.MSGPACK)
    await asyncio.wait_for(admin.connect(), 10)
    await admin.login(admin_row["apiKey"], admin_row["secret"])
    run.admin = admin

    cat = catalogue_mod.load()
    now_ms = time.time_ns() // 1_000_000
    symbols = [s.strip() for s in a.symbols.split(",") if s.strip()]
    marks = dict(DEFAULT_MARKS)
    if a.flow == "honest":  # the flow's own mids (and no moving price feed)
        marks.update(flowload.marks(symbols))
    for kv in a.mark:
        k, _, v = kv.partition("=")
        marks[k] = v
    for s in symbols:
        if s not in marks:
            raise RuntimeError(f"no starting mark for {s}: pass --mark {s}=PRICE")
        spec = cat.spec(s)
        run.markets[s] = Market(spec, fixed.parse(marks[s]), now_ms)
    gsym = "BTCUSDT" if "BTCUSDT" in run.markets else symbols[0]

    roles = ["flow"] * a.accounts if a.flow == "honest" else plan_roles(a)
    accounts = [base + i for i in range(a.accounts)]
    futs = [admin.submit("setMarkPrice", symbol=m.symbol, markPrice=m.px(m.mark))
            for m in run.markets.values()]
    futs.append(admin.submit("fundInsurance", amount=a.insurance))
    rng = random.Random(a.seed)
    leverage = {}
    for acct, role in zip(accounts, roles):
        futs.append(admin.submit("createAccount", account=acct, registeredAt=0))
        amount = a.gambler_deposit if role == "gambler" else a.deposit
        futs.append(admin.submit("deposit", account=acct, amount=amount))
        if role == "gambler":
            m = run.markets[gsym]
            choices = [x for x in (50, 75, 100) if x <= m.max_leverage] or [m.max_leverage]
            leverage[acct] = rng.choice(choices)
            futs.append(admin.submit("setLeverage", account=acct, symbol=gsym,
                                     leverage=leverage[acct]))
    for msg in await asyncio.gather(*futs):
        if not msg.get("ok"):
            raise RuntimeError(f"setup rejected: {msg.get('code')} {msg.get('msg')} "
                               f"(accounts {base}..{base + a.accounts - 1}; try --account-base)")
    keys = await asyncio.gather(*[admin.request("createApiKey", account=acct)
                                  for acct in accounts])
    creds = {acct: (k["apiKey"], k["secret"]) for acct, k in zip(accounts, keys)}
    run.setup_s = round(perf_counter() - t_setup, 3)

    # connections: one per account, then round-robin over the accounts
    nconn = max(a.connections or a.accounts, 1)
    per_account = Counter(accounts[i % len(accounts)] for i in range(nconn))
    sym_cycle = {r: itertools.cycle(symbols) for r in ROLES + ("flow",)}
    acct_symbol = {}
    for acct, role in zip(accounts, roles):
        acct_symbol[acct] = gsym if role == "gambler" else next(sym_cycle[role])
    role_of = dict(zip(accounts, roles))
    gwallet = fixed.parse(a.gambler_deposit)
    for i in range(nconn):
        acct = accounts[i % len(accounts)]
        role = role_of[acct]
        m = run.markets[acct_symbol[acct]]
        slots = min(a.inflight, max(2, 180 // per_account[acct]))  # MAX_NUM_ORDERS is 200
        cls = {"maker": Maker, "taker": Taker, "canceler": Canceler,
               "flow": flowload.FlowTrader}.get(role)
        if cls is None and i >= len(accounts):
            t = Watcher(run, i, acct, m, slots)
        elif cls is None:
            t = Gambler(run, i, acct, m, slots, leverage=leverage[acct], wallet_units=gwallet)
        else:
            t = cls(run, i, acct, m, slots)
        run.traders.append(t)

    sem = asyncio.Semaphore(a.connect_concurrency)

    async def open_one(t: Trader) -> None:
        async with sem:
            c = LoadClient(host, port, wire.MSGPACK if a.wire == "msgpack" else wire.JSONL)
            try:
                await asyncio.wait_for(c.connect(), a.timeout)
                await asyncio.wait_for(c.login(*creds[t.account]), a.timeout)
                t.client = c
            except (OSError, ConnectionError, ClientError, asyncio.TimeoutError) as exc:
                run.stats.connect_failures += 1
                log(f"load: connection {t.index} failed: {type(exc).__name__} {exc}")
                with contextlib.suppress(Exception):
                    await c.close()

    t0 = perf_counter()
    await asyncio.gather(*[open_one(t) for t in run.traders])
    run.traders = [t for t in run.traders if t.client is not None]
    run.peak_connections = len(run.traders)
    paced = [t for t in run.traders if t.paced]
    if a.rate and paced:
        for t in paced:
            t.rate = a.rate / len(paced)
    counts = Counter(t.role for t in run.traders)
    log(f"load: {len(accounts)} accounts (set up in {run.setup_s:.1f} s); connections: "
        f"{', '.join(f'{counts[r]} {r}' for r in CONN_ROLES + ('flow',) if counts[r])}"
        f" on {', '.join(symbols)}; {len(run.traders)}/{nconn} open "
        f"in {perf_counter() - t0:.1f} s")

    if a.flow == "honest":  # made before the clock starts: rate x duration commands
        run.flow_items = flowload.requests(cat, int((a.rate or 10_000) * a.duration) + 1,
                                           accounts, symbols, a.seed)
    obs = LoadClient(host, port, wire.MSGPACK)
    await asyncio.wait_for(obs.connect(), a.timeout)
    await obs.subscribe("!forceOrder", *[f"trade@{s}" for s in symbols])
    run.observer = obs


# -- the running tasks ---------------------------------------------------------------------------
async def observe(run: Run) -> None:
    obs, st = run.observer, run.stats
    queue = obs.streams

    async def sentinel() -> None:
        await obs.closed.wait()
        queue.put_nowait(None)

    watcher = asyncio.create_task(sentinel())
    try:
        while True:
            msg = await queue.get()
            if msg is None:
                if not run.stopping:
                    run.observer_lost = True
                    log("load: the observer connection was closed by the server")
                return
            stream = msg["stream"]
            if stream == "!forceOrder":
                st.liquidations += 1
            elif stream.startswith("trade@"):
                st.trades_stream += 1
    finally:
        watcher.cancel()


async def watchdog(run: Run) -> None:
    """Requests unanswered after --timeout seconds fail with TimeoutError (counted)."""
    limit = int(run.args.timeout * 1e9)
    while True:
        await asyncio.sleep(0.5)
        now = perf_counter_ns()
        for t in run.traders:
            for fut, t0 in list(t.pending.items()):
                if now - t0 > limit and not fut.done():
                    fut.set_exception(asyncio.TimeoutError())


async def loop_lag(run: Run) -> None:
    """How late a 10 ms timer fires in this process: if the load generator itself is saturated,
    its latencies include its own queueing, and the report says so."""
    lags = run.lags
    while True:
        t = perf_counter()
        await asyncio.sleep(0.01)
        lags.append(perf_counter() - t - 0.01)


async def progress(run: Run) -> None:
    st = run.stats
    last_acked, last_t, last_unpaced = 0, perf_counter(), 0
    paced = [t for t in run.traders if t.paced]
    cpu = CpuMeter(run.server.proc.pid if run.server.proc else None)
    while True:
        await asyncio.sleep(1.0)
        if run.stopping:
            return
        now = perf_counter()
        sent, acked = sum(st.sent[o] for o in ORDER_OPS), len(st.lat)
        rate = (acked - last_acked) / (now - last_t)
        if run.args.rate and paced:  # the gamblers' own orders count toward --rate
            unpaced = (st.unpaced_orders - last_unpaced) / (now - last_t)
            share = max(run.args.rate - unpaced, run.args.rate * 0.1) / len(paced)
            for t in paced:
                t.rate = share
        last_acked, last_t, last_unpaced = acked, now, st.unpaced_orders
        p99 = st.hist_quantile(0.99)
        held = run.held()
        run.peak_connections = max(run.peak_connections, held)
        row = {"t": round(now - run.t_start, 1), "sent": sent, "acked": acked,
               "acked_per_s": round(rate), "p99_ms": p99, "liquidations": st.liquidations,
               "connections": held}
        row.update(cpu.sample() or {})
        run.timeline.append(row)
        errors = st.timeouts + st.lost + st.conn_lost
        cpu_text = f", cpu server {row['server_cpu']}% load {row['loadgen_cpu']}% " \
            f"other {row['other_cpu']}%" if "server_cpu" in row else ""
        log(f"load {row['t']:5.1f}s: sent {sent:,} acked {acked:,} ({rate:,.0f}/s) "
            f"p99 {p99:.2f} ms, {st.liquidations} liquidations, "
            f"{sum(st.rejected.values()):,} rejected, {errors} errors, {held} connections"
            f"{cpu_text}")


async def run_load(run: Run) -> None:
    a = run.args
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, run.stop, f"signal {sig.name}")
    run.t_start = perf_counter()
    run.stats.first_send = run.t_start
    run.cpu_start = ProcessCpu.sample_all(run.server.proc.pid if run.server.proc else None)
    helpers = [asyncio.create_task(observe(run)), asyncio.create_task(watchdog(run)),
               asyncio.create_task(progress(run)), asyncio.create_task(loop_lag(run)),
               asyncio.create_task(flowload.drive(run, run.flow_items) if a.flow == "honest"
                                   else feed(run))]
    traders = [asyncio.create_task(t.loop()) for t in run.traders]
    try:
        all_done = asyncio.gather(*traders)
        try:
            await asyncio.wait_for(asyncio.shield(all_done), a.duration)
            run.stop(run.stop_reason or "all traders finished")
        except asyncio.TimeoutError:
            run.stop("--duration reached")
        await all_done
        if run.t_stop == 0.0:
            run.t_stop = perf_counter()
        run.held_at_end = run.held()
        # drain: wait for the acknowledgements still in flight
        deadline = perf_counter() + a.drain
        while perf_counter() < deadline and any(t.pending for t in run.traders):
            await asyncio.sleep(0.02)
        run.cpu_end = ProcessCpu.sample_all(run.server.proc.pid if run.server.proc else None)
        unanswered = sum(len(t.pending) for t in run.traders)
        run.stats.unanswered = unanswered
        for t in run.traders:
            for fut in list(t.pending):
                if not fut.done():
                    fut.cancel()
        # the observer: a reply on its connection comes after every stream message queued before
        # it, so once it is in, the liquidations and trades so far have been delivered
        obs = run.observer
        if obs is not None and not obs.closed.is_set():
            with contextlib.suppress(ClientError, ConnectionError, asyncio.TimeoutError):
                await asyncio.wait_for(obs.query("depth", symbol=next(iter(run.markets)),
                                                 limit=1), a.drain + 1)
            deadline = perf_counter() + 2
            while obs.streams.qsize() and perf_counter() < deadline:
                await asyncio.sleep(0.01)
    finally:
        for task in traders + helpers:
            task.cancel()
        await asyncio.gather(*traders, *helpers, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


async def close_all(run: Run) -> None:
    clients = [t.client for t in run.traders if t.client is not None]
    clients += [c for c in (run.observer, run.admin) if c is not None]
    sem = asyncio.Semaphore(200)

    async def close(c: LoadClient) -> None:
        async with sem:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 5)

    await asyncio.gather(*[close(c) for c in clients])


# -- main ----------------------------------------------------------------------------------------
async def amain(args) -> int:
    run = Run(args)
    nofile = raise_nofile(args.connections + args.accounts + 256 if args.connections
                          else args.accounts + 256)
    failure = None
    try:
        if args.connect:
            host, _, port = args.connect.rpartition(":")
            if not args.keys:
                raise RuntimeError("--connect needs --keys FILE (the server's keys file)")
            keys_path = Path(args.keys)
            host, port = host or "127.0.0.1", int(port)
        else:
            host, port, keys_path = await start_server(args, run.server, nofile["soft"] or 0)
        await setup(run, host, port, keys_path)
        await run_load(run)
    except (RuntimeError, OSError, ClientError, asyncio.TimeoutError, ValueError,
            catalogue_mod.CatalogueError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
        log(f"load: error: {failure}")
    finally:
        await close_all(run)
        await stop_server(args, run.server)
    if failure is not None and not run.t_start:
        if run.server.exit_code is not None:
            log(f"load: server exit code {run.server.exit_code}")
        _clean_up(run.server, args.keep_log, failed=True)
        return 1
    rep = build_report(run, nofile)
    if failure is not None:
        rep["ok"] = False
        rep["failure"] = failure
    _clean_up(run.server, args.keep_log, failed=failure is not None)
    kept = run.server.tmpdir if run.server.tmpdir and run.server.tmpdir.exists() else None
    path = Path(args.report) if args.report else (kept or Path.cwd()) / "load-report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    png = path.with_suffix(".png")
    rep["report"] = str(path)
    rep["picture"] = str(write_picture(rep, run.stats.lat, png))
    path.write_text(json.dumps(rep, indent=1))
    args.result = rep
    print_report(rep)
    print(f"  report     {path} (picture {png})", flush=True)
    return 0 if failure is None else 1  # 1: the run broke off (the report says why)


def _clean_up(srv, keep: bool, failed: bool) -> None:
    """The server's directory holds key secrets: removed after the run unless --keep-log; a
    failed run keeps the server's stderr (and only that) to look at."""
    tmp = srv.tmpdir
    if tmp is None or keep or not tmp.exists():
        return
    if failed and srv.stderr_path is not None and srv.stderr_path.exists():
        for path in tmp.iterdir():
            if path != srv.stderr_path:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        log(f"load: the server's stderr is kept in {srv.stderr_path}")
        return
    shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m engine.sim.load",
                                description="Synthetic traders against the gateway.")
    g = p.add_argument_group("the run")
    g.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    g.add_argument("--orders", type=int, default=0, help="stop after this many order requests")
    g.add_argument("--rate", type=float, default=0.0,
                   help="offered order requests per second, all traders together (0: as fast "
                        "as possible)")
    g.add_argument("--accounts", type=int, default=40)
    g.add_argument("--connections", type=int, default=0,
                   help="connections (default: one per account; more: several per account)")
    g.add_argument("--inflight", type=int, default=32, help="requests in flight per connection")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--symbols", default="BTCUSDT,ETHUSDT,ALLUSDT")
    g.add_argument("--mark", action="append", default=[], metavar="SYMBOL=PRICE",
                   help="starting mark (defaults: " +
                        ", ".join(f"{k} {v}" for k, v in DEFAULT_MARKS.items()) + ")")
    g.add_argument("--mix", help="role proportions, e.g. maker=0.3,taker=0.3,canceler=0.25,"
                                 "gambler=0.15 (the default)")
    g.add_argument("--wire", choices=["msgpack", "json"], default="msgpack")
    g.add_argument("--flow", choices=["traders", "honest"], default="traders",
                   help="traders: makers, takers, cancelers, gamblers and a moving price feed "
                        "(the default); honest: the benchmarks' flow (engine.sim.synthetic), "
                        "sent in order at --rate (default 10,000/s), marks fixed")
    g.add_argument("--sweep", action="store_true",
                   help="the end-to-end benchmark: the honest flow at offered 2,000, 5,000 and "
                        "10,000 orders/s, each with --fsync batch and interval (a fresh server "
                        "per run), then one table")
    g.add_argument("--timeout", type=float, default=10.0,
                   help="seconds before an unanswered request counts as a timeout")
    g.add_argument("--drain", type=float, default=5.0,
                   help="seconds to wait for outstanding acks after the end")
    g.add_argument("--connect-concurrency", type=int, default=64)
    f = p.add_argument_group("accounts and the price feed")
    f.add_argument("--account-base", type=int,
                   help="first account id (default: 1 + the largest in the keys file)")
    f.add_argument("--deposit", default="10000000", help="USDT per maker/taker/canceler")
    f.add_argument("--gambler-deposit", default="300", help="USDT per gambler (and top-up)")
    f.add_argument("--insurance", default="1000000", help="USDT paid into the insurance fund")
    f.add_argument("--feed-interval-ms", type=float, default=100.0)
    f.add_argument("--volatility", type=float, default=0.0005,
                   help="stdev of one feed step's log return")
    f.add_argument("--mean-reversion", type=float, default=0.003,
                   help="pull of each feed step back toward the starting mark")
    f.add_argument("--jump-prob", type=float, default=0.05, help="per symbol per feed step")
    f.add_argument("--jump-size", type=float, default=0.04, help="largest jump (fraction)")
    s = p.add_argument_group("the server")
    s.add_argument("--connect", metavar="HOST:PORT", help="use a running server")
    s.add_argument("--keys", help="with --connect: its keys file (for the admin key)")
    s.add_argument("--fsync", choices=["batch", "interval"], default="batch")
    s.add_argument("--fsync-interval-ms", type=int, default=20)
    s.add_argument("--limit-rate", type=int, default=1_000_000_000,
                   help="the server's per-connection --rate (default: no throttling)")
    s.add_argument("--limit-burst", type=int, default=1_000_000_000)
    s.add_argument("--outbound-limit", type=int)
    s.add_argument("--summary-every", type=int, default=5, help="the server's summary lines (s)")
    s.add_argument("--server-arg", action="append", default=[],
                   help="extra arguments for `engine serve`, e.g. --server-arg=--sndbuf=0 "
                        "(repeatable)")
    s.add_argument("--server-start-timeout", type=float, default=30.0)
    s.add_argument("--server-stop-timeout", type=float, default=60.0)
    s.add_argument("--tmpdir", help="where the server's directory is made (default: system tmp)")
    s.add_argument("--keep-log", action="store_true",
                   help="keep the server's directory (event log, keys, stderr); by default it "
                        "is removed after the run, secrets included")
    o = p.add_argument_group("output")
    o.add_argument("--report",
                   help="JSON report path (default: ./load-report.json, or in the server's "
                        "directory with --keep-log)")
    o.add_argument("--quiet", action="store_true", help="do not echo the server's summary lines")
    args = p.parse_args(argv)
    if args.accounts < 1 or args.inflight < 1 or args.duration <= 0:
        p.error("--accounts, --inflight and --duration must be positive")
    if args.rate < 0:
        p.error("--rate must be >= 0")
    for name in ("deposit", "gambler_deposit", "insurance"):
        try:
            fixed.parse(getattr(args, name))
        except fixed.DecimalFormatError as exc:
            p.error(f"--{name.replace('_', '-')}: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    if not args.sweep:
        return run(amain(args))
    rows, code = [], 0
    for fsync in ("batch", "interval"):
        for rate in (2_000, 5_000, 10_000):
            report = Path(args.report).with_name(f"{Path(args.report).stem}-{fsync}-{rate}.json") \
                if args.report else Path.cwd() / f"load-report-{fsync}-{rate}.json"
            one = argparse.Namespace(**{**vars(args), "flow": "honest", "rate": float(rate),
                                        "fsync": fsync, "sweep": False, "report": str(report)})
            log(f"load: sweep: fsync {fsync}, offered {rate:,} orders/s")
            code = run(amain(one)) or code
            rows.append(one.result)
    print_sweep(rows)
    return code


if __name__ == "__main__":
    sys.exit(main())
