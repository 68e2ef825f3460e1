"""What an endpoint is (method, path, security type, weight, handler) and what it is handed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from engine.api.params import Params

NONE, MARKET_DATA, USER_STREAM, SIGNED = "NONE", "MARKET_DATA", "USER_STREAM", "SIGNED"


class Request:
    """An endpoint's input: its parameters, the account of the key (signed and key-only
    endpoints), the server's time, and headers to add to the response."""
    __slots__ = ("params", "account", "now", "headers", "api_key")

    def __init__(self, params: Params, now: int) -> None:
        self.params = params
        self.account: int | None = None
        self.now = now
        self.headers: dict[str, str] = {}
        self.api_key = ""


@dataclass
class Endpoint:
    method: str
    path: str
    security: str
    weight: int | Callable[[Params], int]
    handler: Callable[[Any, Request], Awaitable[Any]]  # (the ApiServer, the request)
    orders: int = 0  # new orders it places (the order rate limits count them)
    # a command endpoint's fast form: (the ApiServer, the request) -> (command, snapshot(record))
    command: Callable[[Any, Request], tuple[Any, Callable]] | None = None
