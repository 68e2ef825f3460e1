"""Binance's USDⓈ-M REST and WebSocket API (aiohttp) over the shared sequencing loop.

    app          ApiServer: HTTP dispatch, signing, weights, the loop's listener
    endpoint     what an endpoint is and what it gets
    rest_market  public market data; the start-up calls about other markets
    rest_trade   orders, fills, liquidation orders; the Algo endpoints
    rest_account settings, balances, positions, income; listen keys
    ws           WebSocket routes and the live subscription protocol
    ws_market    market stream payloads; ws_user: user data payloads
    params, signing, errors, weights, listenkeys   the edge's rules
    newkey       `python -m engine newkey`: an account, a deposit and an API key
"""
from engine.api.app import ApiConfig, ApiServer

__all__ = ["ApiConfig", "ApiServer"]
