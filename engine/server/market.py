"""The market simulator as the server's child process (`--market`, on under `make run`).

The simulator (`python -m engine.sim.market`) is a client like any other: it connects to the
native port, logs in with an admin key passed in its environment (like the out-of-process risk
consumer's key, never on its command line) and trades through the same gateway and sequencing
loop as everyone else. Its accounts are in a reserved range (SIM_ACCOUNT_BASE onward) so users
recognise them and can exclude them. It runs in its own session (a terminal's Ctrl-C reaches
only the server, which stops it first, by PID, then drains) and dies with the server if the
server is killed (Linux PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

SIM_ACCOUNT_BASE = 800_000_000  # the simulator's accounts: 800000001 onward
SIM_ACCOUNT_LAST = 800_999_999


def _preexec() -> None:  # in the child, between fork and exec
    with contextlib.suppress(Exception):
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: die with the server


class MarketChild:
    def __init__(self, config, host: str, port: int, api_key: str, secret: str) -> None:
        self.argv = [sys.executable, "-m", "engine.sim.market", "--host", host,
                     "--port", str(port), "--seed", str(config.market_seed),
                     "--account-base", str(SIM_ACCOUNT_BASE)]
        if config.market_symbols:
            self.argv += ["--symbols", config.market_symbols]
        for path in config.market_prices or ():
            self.argv += ["--prices", path]
        if config.market_scenario:
            self.argv += ["--scenario", config.market_scenario]
        self.env = {**os.environ, "PERPENGINE_SIM_KEY": api_key,
                    "PERPENGINE_SIM_SECRET": secret}
        self.proc: asyncio.subprocess.Process | None = None
        self.stopping = False
        self._watch: asyncio.Task | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, env=self.env,
            start_new_session=True, preexec_fn=_preexec)
        self._watch = asyncio.create_task(self._watcher(), name="market")

    async def _watcher(self) -> None:
        code = await self.proc.wait()
        if not self.stopping:
            print(f"perpengine: the market simulator (pid {self.proc.pid}) exited with status "
                  f"{code}; the venue goes on without it", flush=True)

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID, wait for it to close its connection (SIGKILL after `timeout`)."""
        self.stopping = True
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)


__all__ = ["MarketChild", "SIM_ACCOUNT_BASE", "SIM_ACCOUNT_LAST"]
