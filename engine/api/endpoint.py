"""What an endpoint is (method, path, security type, weight, handler) and what it is handed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from engine.api.params import Params

NONE, MARKET_DATA, USER_STREAM, SIGNED = "NONE", "MARKET_DATA", "USER_STREAM", "SIGNED"
# the product a path belongs to: USDⓈ-M (/fapi, and the other markets' start-up calls) or COIN-M
# (/dapi); a symbol of the other product is unknown to it (-1121), as on Binance's two hosts
USDM, COINM = "USDM", "COINM"


def product_of(path: str) -> str:
    return COINM if path.startswith("/dapi/") else USDM


class Request:
    """An endpoint's input: its parameters, the account of the key (signed and key-only
    endpoints), the venue's time (`now`, ms; simulated under --clock sim), headers to add to
    the response, and the product of its path with that product's symbols (name -> the
    engine's symbol state)."""
    __slots__ = ("params", "account", "now", "headers", "api_key", "product", "symbols")

    def __init__(self, params: Params, now: int, product: str = USDM,
                 symbols: dict | None = None) -> None:
        self.params = params
        self.account: int | None = None
        self.now = now
        self.headers: dict[str, str] = {}
        self.api_key = ""
        self.product = product
        self.symbols: dict = symbols if symbols is not None else {}


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
