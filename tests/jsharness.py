"""Servers on a JetStream log for the tests: `python -m engine serve --log nats://...` (active
or standby) and `python -m engine replica`, real processes on 127.0.0.1 stopped by PID."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from engine.client import Client
from proto import wire

ROOT = Path(__file__).resolve().parent.parent


class Proc:
    """A child process whose stdout lines are collected by a thread (so a test can wait for a
    line without blocking on a pipe)."""

    def __init__(self, args: list[str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        with open(stderr_path, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT,
                                         stdout=subprocess.PIPE, stderr=err, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_line(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no line with {text!r} within {timeout} s; stdout: "
                             f"{''.join(self.lines)[-2000:]}; stderr: "
                             f"{self.stderr_path.read_text()[-3000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 20.0) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.proc.wait(10)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(10)


def port_of(line: str, marker: str = "serving on ") -> int:
    return int(line.split(marker)[1].split()[0].rstrip(";").rsplit(":", 1)[1])


class NatsServer(Proc):
    """`python -m engine serve --log nats://...`; `standby=True` waits for the takeover line."""

    def __init__(self, tmp: Path, spec: str, name: str, keys: Path, *extra: str,
                 standby: bool = False) -> None:
        self.keys_path = keys
        args = ["serve", "--port", "0", "--log", spec, "--keys", str(keys), "--summary-every",
                "60", "--snapshots", str(tmp / f"{name}.snapshots"), *extra]
        if standby:
            args.append("--standby")
        super().__init__(args, tmp / f"{name}.stderr")
        self.port = 0
        if not standby:
            self.serving()

    def serving(self, timeout: float = 30.0) -> int:
        self.port = port_of(self.wait_line("serving on", timeout))
        return self.port

    @property
    def admin(self) -> dict:
        return next(k for k in json.loads(self.keys_path.read_text()) if k["admin"])

    async def client(self) -> Client:
        c = Client("127.0.0.1", self.port, wire.MSGPACK)
        await c.connect()
        return c

    async def admin_client(self) -> Client:
        c = await self.client()
        await c.login(self.admin["apiKey"], self.admin["secret"])
        return c


def reap(*procs) -> None:
    for p in procs:
        if p is not None and p.proc.poll() is None:
            p.kill()
