"""The load generator's connections: a client tuned for load, and the server it starts.

LoadClient gathers writes per loop iteration and parses msgpack frames in bulk; start_server
runs `python -m engine serve` in its own session with a fresh directory, stop_server stops it
with SIGTERM (by PID) and reports how it exited.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import signal
import sys
import tempfile
from pathlib import Path
from time import perf_counter, perf_counter_ns

import msgspec

from engine.client import Client, ClientError
from proto import wire

ROOT = Path(__file__).resolve().parent.parent.parent
_mp_decode = msgspec.msgpack.Decoder().decode


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class LoadClient(Client):
    """engine.client.Client with writes gathered per loop iteration (one syscall for a burst of
    pipelined requests) and msgpack frames parsed in bulk. Each response dict gets "_rx", the
    perf_counter_ns at which its bytes were read from the socket."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self._out: list[bytes] = []
        self._flush_pending = False

    def submit(self, op: str, **fields) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.closed.is_set() or self._writer is None:
            fut.set_exception(ConnectionError("connection closed"))
            return fut
        req_id = next(self._ids)
        self._waiting[req_id] = fut
        self._out.append(wire.encode({"id": req_id, "op": op, **fields}, self.mode))
        if len(self._out) >= 32:
            self._flush()
        elif not self._flush_pending:
            self._flush_pending = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._flush_pending = False
        if self._out and not self.closed.is_set():
            try:
                self._writer.write(b"".join(self._out))
            except (ConnectionError, RuntimeError):
                pass
        self._out.clear()

    async def _read_loop(self) -> None:
        if self.mode != wire.MSGPACK:
            return await super()._read_loop()
        r = self._reader
        buf = bytearray()
        unpack = wire.LENGTH.unpack_from
        try:
            while True:
                chunk = await r.read(1 << 18)
                if not chunk:
                    break
                rx = perf_counter_ns()
                buf += chunk
                pos, n = 0, len(buf)
                with memoryview(buf) as view:
                    while n - pos >= 4:
                        (length,) = unpack(view, pos)
                        if n - pos - 4 < length:
                            break
                        msg = _mp_decode(view[pos + 4:pos + 4 + length])
                        pos += 4 + length
                        self._dispatch(msg, rx)
                del buf[:pos]
        except (ConnectionError, asyncio.IncompleteReadError, msgspec.DecodeError):
            pass
        finally:
            self._connection_lost()

    def _dispatch(self, msg, rx: int) -> None:
        if "stream" in msg:
            self.streams.put_nowait(msg)
            return
        msg["_rx"] = rx
        fut = self._waiting.pop(msg.get("id"), None)
        if fut is not None:
            if not fut.done():
                fut.set_result(msg)
        elif msg.get("id") is None and not msg.get("ok", True):
            for f in self._waiting.values():  # the server is closing us
                if not f.done():
                    f.set_exception(ClientError(msg.get("code", -1000), msg.get("msg", "")))
            self._waiting.clear()


class ServerInfo:
    def __init__(self) -> None:
        self.proc = None
        self.tmpdir: Path | None = None
        self.log_path: Path | None = None
        self.keys_path: Path | None = None
        self.stderr_path: Path | None = None
        self.address = ""
        self.lines: list[str] = []
        self.exit_code = None
        self.stop_s = None
        self.log_bytes = None
        self.reader: asyncio.Task | None = None


def raise_nofile(need: int) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    info = {"soft_before": soft, "hard": hard, "needed": need}
    if soft != resource.RLIM_INFINITY and soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError) as exc:
            log(f"load: could not raise the open-files limit to {new}: {exc}")
    info["soft"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if info["soft"] != resource.RLIM_INFINITY and info["soft"] < need:
        log(f"load: open-files limit {info['soft']} < {need} needed; expect connect failures")
    return info


def server_preexec(nofile: int) -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):  # its own session: a terminal's Ctrl-C stops only us,
        os.setsid()                      # and we stop the server with SIGTERM after the drain
    with contextlib.suppress(Exception):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < nofile:
            new = nofile if hard == resource.RLIM_INFINITY else min(hard, nofile)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    with contextlib.suppress(Exception):  # Linux: the server dies with us if we are killed
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def start_server(a, srv: "ServerInfo", nofile: int) -> tuple[str, int, Path]:
    """Start `python -m engine serve` with the run's settings `a`; its address and keys file."""
    tmp = Path(tempfile.mkdtemp(prefix="perpload-", dir=a.tmpdir))
    srv.tmpdir = tmp
    srv.log_path, srv.keys_path = tmp / "load.log", tmp / "keys.json"
    srv.stderr_path = tmp / "server.stderr"
    cmd = [sys.executable, "-m", "engine", "serve", "--host", "127.0.0.1", "--port", "0",
           "--log", str(srv.log_path), "--keys", str(srv.keys_path), "--fsync", a.fsync,
           "--fsync-interval-ms", str(a.fsync_interval_ms),
           "--rate", str(a.limit_rate), "--burst", str(a.limit_burst),
           "--summary-every", str(a.summary_every)]
    if a.outbound_limit is not None:
        cmd += ["--outbound-limit", str(a.outbound_limit)]
    for extra in a.server_arg:
        cmd += extra.split()
    with open(srv.stderr_path, "wb") as err:
        srv.proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE, stderr=err,
            stdin=asyncio.subprocess.DEVNULL, preexec_fn=functools.partial(server_preexec, nofile))
    try:
        first = await asyncio.wait_for(srv.proc.stdout.readline(), a.server_start_timeout)
    except asyncio.TimeoutError:
        first = b""
    line = first.decode(errors="replace").strip()
    if "serving on " not in line:
        raise RuntimeError(f"the server did not start (first line {line!r}); see {srv.stderr_path}")
    srv.lines.append(line)
    host, _, port = line.split("serving on ", 1)[1].split()[0].rpartition(":")
    srv.address = f"{host}:{port}"
    log(f"load: server pid {srv.proc.pid} on {srv.address}, fsync per {a.fsync}; dir {tmp}")
    srv.reader = asyncio.create_task(_server_output(srv, a.quiet))
    return host, int(port), srv.keys_path


async def _server_output(srv: "ServerInfo", quiet: bool) -> None:
    while True:
        raw = await srv.proc.stdout.readline()
        if not raw:
            return
        line = raw.decode(errors="replace").rstrip()
        srv.lines.append(line)
        del srv.lines[:-20]
        if not quiet:
            log(f"  server| {line}")


async def stop_server(a, srv: "ServerInfo") -> None:
    if srv.proc is None:
        return
    t0 = perf_counter()
    if srv.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            srv.proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(srv.proc.wait(), a.server_stop_timeout)
    except asyncio.TimeoutError:
        log(f"load: the server (pid {srv.proc.pid}) did not stop within "
            f"{a.server_stop_timeout} s of SIGTERM; killing it")
        with contextlib.suppress(ProcessLookupError):
            srv.proc.kill()
        await srv.proc.wait()
    srv.exit_code = srv.proc.returncode
    srv.stop_s = round(perf_counter() - t0, 3)
    if srv.reader is not None:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(srv.reader, 5)
    if srv.log_path is not None and srv.log_path.exists():
        srv.log_bytes = srv.log_path.stat().st_size
        if not a.keep_log:
            srv.log_path.unlink()
