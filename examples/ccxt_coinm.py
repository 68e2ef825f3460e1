"""A COIN-M bot through ccxt's binancecoinm: quantities in contracts, money in the coin."""
import json
import os
import sys

import ccxt

API = "http://127.0.0.1:8080"
API = os.environ.get("PERPENGINE_API", API)  # the README's tests point it at their server
key = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "coin.json"))

exchange = ccxt.binancecoinm({
    "apiKey": key["apiKey"], "secret": key["secret"],
    "urls": {"api": {name: API + path for name, path in {
        "dapiPublic": "/dapi/v1", "dapiPrivate": "/dapi/v1", "dapiPrivateV2": "/dapi/v2",
        "dapiData": "/futures/data", "sapi": "/sapi/v1", "public": "/api/v3",
        "private": "/api/v3"}.items()}},
})
markets = exchange.load_markets()
print("markets:", sorted(markets))
print("contract size:", markets["BTC/USD:BTC"]["contractSize"], "USD")
print("leverage:", exchange.set_leverage(20, "BTC/USD:BTC"))
order = exchange.create_order("BTC/USD:BTC", "limit", "buy", 10, 29000)  # 10 contracts
print("order:", order["id"], order["status"], order["side"], order["amount"], "@",
      order["price"])
print("BTC:", exchange.fetch_balance()["BTC"])
print("canceled:", exchange.cancel_order(order["id"], "BTC/USD:BTC")["status"])
