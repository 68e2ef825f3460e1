"""A bot's stop-loss and take-profit through ccxt, on Binance's Algo service as against Binance.

    python examples/ccxt_stop_loss.py open KEY.json MAKER.json   a long, its stop-loss and
                                                                 take-profit (MAKER quotes)
    python examples/ccxt_stop_loss.py status KEY.json            what became of them
"""
import json
import os
import sys

import ccxt

API = "http://127.0.0.1:8080"
API = os.environ.get("PERPENGINE_API", API)  # the README's tests point it at their server
S = "BTC/USDT:USDT"


def connect(path: str) -> ccxt.binanceusdm:
    key = json.load(open(path))
    exchange = ccxt.binanceusdm({
        "apiKey": key["apiKey"], "secret": key["secret"],
        "urls": {"api": {name: API + path for name, path in {
            "fapiPublic": "/fapi/v1", "fapiPrivate": "/fapi/v1", "fapiPublicV2": "/fapi/v2",
            "fapiPrivateV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3", "fapiPrivateV3": "/fapi/v3",
            "fapiData": "/futures/data", "sapi": "/sapi/v1", "public": "/api/v3",
            "private": "/api/v3"}.items()}},
    })
    exchange.load_markets()
    return exchange


def show(name: str, o: dict) -> None:
    print(f"{name}: {o['id']} {o['status']} {o['type']} {o['side']} {o['amount']} trigger "
          f"{o['triggerPrice']} ({o['info']['orderType']}, {o['info']['workingType']})")


if sys.argv[1] == "open":
    exchange, maker = connect(sys.argv[2]), connect(sys.argv[3])
    maker.create_order(S, "limit", "sell", 0.1, 30000)  # someone to buy from ...
    maker.create_order(S, "limit", "buy", 0.1, 28950)  # ... and to sell to, lower
    long = exchange.create_order(S, "market", "buy", 0.1)
    print(f"long: {long['filled']} {S} @ {long['average']}")
    # ccxt sends these to POST /fapi/v1/algoOrder (algoType CONDITIONAL)
    stop_loss = exchange.create_order(S, "market", "sell", 0.1, None, {
        "stopLossPrice": 29000, "reduceOnly": True, "workingType": "MARK_PRICE"})
    take_profit = exchange.create_order(S, "market", "sell", 0.1, None, {
        "takeProfitPrice": 33000, "reduceOnly": True})
    show("stop-loss", stop_loss)
    show("take-profit", take_profit)
    print("open conditional orders:", len(exchange.fetch_open_orders(S, params={"trigger": True})))
else:
    exchange = connect(sys.argv[2])
    stop_loss, take_profit = exchange.fetch_orders(S, params={"trigger": True})[-2:]
    placed = exchange.fetch_order(stop_loss["info"]["actualOrderId"], S)
    print(f"stop-loss: {stop_loss['status']} ({stop_loss['info']['algoStatus']}): order "
          f"{placed['id']} {placed['status']} {placed['side']} {placed['filled']} @ "
          f"{placed['average']}")
    print(f"take-profit: {take_profit['status']}")
    print("positions:", exchange.fetch_positions([S]))
    print("USDT:", exchange.fetch_balance()["USDT"]["total"])
