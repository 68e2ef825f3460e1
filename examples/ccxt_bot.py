"""A ccxt bot against the engine: the only change from Binance is where the API is."""
import json
import os
import sys

import ccxt

API = "http://127.0.0.1:8080"
API = os.environ.get("PERPENGINE_API", API)  # the README's tests point it at their server
key = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "key.json"))

exchange = ccxt.binanceusdm({
    "apiKey": key["apiKey"], "secret": key["secret"],
    "urls": {"api": {name: API + path for name, path in {
        "fapiPublic": "/fapi/v1", "fapiPrivate": "/fapi/v1", "fapiPublicV2": "/fapi/v2",
        "fapiPrivateV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3", "fapiPrivateV3": "/fapi/v3",
        "fapiData": "/futures/data", "sapi": "/sapi/v1", "public": "/api/v3",
        "private": "/api/v3"}.items()}},
    # ccxt's own exception classes for Binance's USDⓈ-M codes (it applies them only to URLs
    # on fapi.binance.com): -2019 InsufficientFunds, -2022 and -4164 InvalidOrder, ...
    "exceptions": {"exact": ccxt.binanceusdm().exceptions["linear"]["exact"]},
})
exchange.load_markets()
print("markets:", len(exchange.markets))
print("leverage:", exchange.set_leverage(10, "BTC/USDT:USDT")["leverage"])
order = exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 25000)
print("order:", order["id"], order["status"], order["side"], order["amount"], "@", order["price"])
print("open orders:", len(exchange.fetch_open_orders("BTC/USDT:USDT")))
print("canceled:", exchange.cancel_order(order["id"], "BTC/USDT:USDT")["status"])
try:
    exchange.create_order("BTC/USDT:USDT", "limit", "buy", 100, 25000)  # 2.5 M at 10x
except ccxt.InsufficientFunds as e:
    print("too large:", type(e).__name__)
print("USDT:", exchange.fetch_balance()["USDT"])
