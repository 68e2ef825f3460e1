"""Real nats-server processes on 127.0.0.1 for the JetStream benchmarks and tests: a single node
or an R3 cluster, in a temporary directory, on free ports, stopped by PID.

    with NatsServers(3) as cluster:          # 3 nodes, JetStream on, routes between them
        spec = cluster.spec("PERP", replicas=3)   # nats://127.0.0.1:p1,...:p3/PERP?replicas=3
        cluster.kill(cluster.leader("PERP"))      # SIGKILL the stream's leader

nats-server comes from Debian (`apt-get install -y nats-server`; .ci/run does it). Without it
this raises NatsServerMissing with that sentence: the tests fail, they do not skip.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path


class NatsServerMissing(RuntimeError):
    pass


def _sync(coro):
    """Run `coro` to its end on a loop of its own, in a thread (callers may be inside one)."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as exc:  # handed to the caller
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


def nats_server_binary() -> str:
    path = shutil.which("nats-server") or ("/usr/sbin/nats-server"
                                           if os.path.exists("/usr/sbin/nats-server") else None)
    if path is None:
        raise NatsServerMissing("nats-server is not installed: `apt-get install -y nats-server` "
                                "(Debian's package; .ci/run installs it)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServers:
    def __init__(self, nodes: int = 1, directory: str | None = None) -> None:
        self.binary = nats_server_binary()
        self.nodes = nodes
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="perp-nats-")
        self.dir = Path(directory or self._tmp.name)
        self.ports = [free_port() for _ in range(nodes)]
        self.cluster_ports = [free_port() for _ in range(nodes)] if nodes > 1 else []
        self.procs: list[subprocess.Popen | None] = [None] * nodes

    def __enter__(self) -> "NatsServers":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _config(self, i: int) -> Path:
        store = self.dir / f"n{i}"
        store.mkdir(parents=True, exist_ok=True)
        lines = [f"server_name: n{i}", "host: 127.0.0.1", f"port: {self.ports[i]}",
                 "max_payload: 8MB",
                 f'jetstream {{ store_dir: "{store}" }}']
        if self.nodes > 1:
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in
                               enumerate(self.cluster_ports) if j != i)
            lines.append(f"cluster {{ name: perp, host: 127.0.0.1, port: {self.cluster_ports[i]}, "
                         f"routes: [{routes}] }}")
        path = self.dir / f"n{i}.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_node(self, i: int) -> None:
        log = open(self.dir / f"n{i}.log", "ab")
        self.procs[i] = subprocess.Popen([self.binary, "-c", str(self._config(i))],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        log.close()

    def start(self, timeout: float = 20.0) -> None:
        for i in range(self.nodes):
            self.start_node(i)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Every running node listens, and JetStream answers (a cluster: its meta leader)."""
        deadline = time.monotonic() + timeout
        for i, port in enumerate(self.ports):
            if self.procs[i] is None:
                continue
            while True:
                if self.procs[i].poll() is not None:
                    raise RuntimeError(f"nats-server n{i} exited: "
                                       f"{(self.dir / f'n{i}.log').read_text()[-800:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"nats-server n{i} not listening on {port}")
                    time.sleep(0.05)
        _sync(self._jetstream_ready(deadline))

    async def _jetstream_ready(self, deadline: float) -> None:
        import nats
        nc = await nats.connect(self.urls(), connect_timeout=2)
        try:
            jsm = nc.jsm(timeout=1.0)
            while True:
                try:
                    await jsm.account_info()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise TimeoutError("JetStream did not become ready")
                    await asyncio.sleep(0.1)
        finally:
            await nc.close()

    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for i, p in enumerate(self.ports)]

    def spec(self, stream: str, replicas: int | None = None) -> str:
        replicas = replicas or (3 if self.nodes >= 3 else 1)
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"nats://{hosts}/{stream}" + (f"?replicas={replicas}" if replicas != 1 else "")

    def leader(self, stream: str, timeout: float = 10.0) -> int:
        """The index of the node leading `stream` (R3)."""
        return _sync(self._leader(stream, timeout))

    async def _leader(self, stream: str, timeout: float) -> int:
        import nats
        alive = [u for i, u in enumerate(self.urls()) if self.procs[i] is not None]
        nc = await nats.connect(alive, connect_timeout=2)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    info = await nc.jsm(timeout=1.0).stream_info(stream)
                    name = info.cluster.leader if info.cluster else "n0"
                    if name:
                        return int(name[1:])
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no leader for {stream}")
                await asyncio.sleep(0.1)
        finally:
            await nc.close()

    def kill(self, i: int) -> None:
        """SIGKILL node i (by its PID)."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        self.procs[i] = None

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for i, proc in enumerate(self.procs):
            if proc is None:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
            self.procs[i] = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
