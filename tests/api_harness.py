"""A real server process on 127.0.0.1 with the Binance API on a free port, keys made by
`python -m engine newkey` (as a user makes them), and the admin's price feed over the native
protocol. Used by the API's end-to-end tests."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

from engine.client import Client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ApiServerProcess:
    def __init__(self, tmp_path, *extra: str) -> None:
        self.dir = tmp_path
        self.log = tmp_path / "engine.log"
        self.keys_path = tmp_path / "keys.json"
        self.stderr_path = tmp_path / "server.err"  # the server's log, for a failing test
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--port", "0", "--api-port", "0",
             "--log", str(self.log), "--keys", str(self.keys_path), "--summary-every", "60",
             *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        line = self.first_line = self.proc.stdout.readline()
        assert "serving on" in line and "Binance API on" in line, line
        self.port = int(line.split("serving on ")[1].split()[0].rsplit(":", 1)[1])
        self.api_port = int(line.rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.ws_url = f"ws://127.0.0.1:{self.api_port}"
        self.admin = json.loads(self.keys_path.read_text())[0]

    def newkey(self, deposit: str = "10000", *extra: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "engine", "newkey", "--deposit", deposit, "--port",
             str(self.port), "--keys", str(self.keys_path), *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
        return json.loads(out.stdout)

    async def admin_request(self, op: str, **fields):
        c = Client("127.0.0.1", self.port)
        await c.connect()
        try:
            await c.login(self.admin["apiKey"], self.admin["secret"])
            return await c.request(op, **fields)
        finally:
            await c.close()

    def admin_sync(self, op: str, **fields):
        return asyncio.run(self.admin_request(op, **fields))

    def set_mark(self, symbol: str, price: str) -> None:
        self.admin_sync("setMarkPrice", symbol=symbol, markPrice=price)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.proc.stdout.close()
            self._stderr.close()


def ccxt_urls(url: str) -> dict:
    """The only thing a ccxt user changes: where the USDⓈ-M API is."""
    return {"api": {
        "fapiPublic": url + "/fapi/v1", "fapiPrivate": url + "/fapi/v1",
        "fapiPublicV2": url + "/fapi/v2", "fapiPrivateV2": url + "/fapi/v2",
        "fapiPublicV3": url + "/fapi/v3", "fapiPrivateV3": url + "/fapi/v3",
        "fapiData": url + "/futures/data", "sapi": url + "/sapi/v1",
        "public": url + "/api/v3", "private": url + "/api/v3"}}
