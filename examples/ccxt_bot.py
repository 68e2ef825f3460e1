"""A ccxt bot against the engine: the only change from Binance is where the API is."""
import json
import os
import sys

import ccxt

URL = os.environ.get("PERPENGINE_API", "http://127.0.0.1:8080")
key = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "key.json"))

exchange = ccxt.binanceusdm({
    "apiKey": key["apiKey"], "secret": key["secret"],
    "urls": {"api": {name: URL + path for name, path in {
        "fapiPublic": "/fapi/v1", "fapiPrivate": "/fapi/v1", "fapiPublicV2": "/fapi/v2",
        "fapiPrivateV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3", "fapiPrivateV3": "/fapi/v3",
        "fapiData": "/futures/data", "sapi": "/sapi/v1", "public": "/api/v3",
        "private": "/api/v3"}.items()}},
})
exchange.load_markets()
print("markets:", len(exchange.markets))
print("leverage:", exchange.set_leverage(10, "BTC/USDT:USDT")["leverage"])
order = exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 25000)
print("order:", order["id"], order["status"], order["side"], order["amount"], "@", order["price"])
print("open orders:", len(exchange.fetch_open_orders("BTC/USDT:USDT")))
print("canceled:", exchange.cancel_order(order["id"], "BTC/USDT:USDT")["status"])
print("USDT:", exchange.fetch_balance()["USDT"])
