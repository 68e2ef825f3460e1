"""A python-binance bot against the engine: a Client whose futures URLs point here."""
import json
import os
import sys

from binance.client import Client

API = "http://127.0.0.1:8080"
API = os.environ.get("PERPENGINE_API", API)  # the README's tests point it at their server
key = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "key.json"))


class LocalClient(Client):
    API_URL = API + "/api"
    FUTURES_URL = API + "/fapi"
    FUTURES_DATA_URL = API + "/futures/data"


client = LocalClient(key["apiKey"], key["secret"])  # it pings the server at once
print("symbols:", len(client.futures_exchange_info()["symbols"]))
print(client.futures_change_leverage(symbol="ETHUSDT", leverage=5))
order = client.futures_create_order(symbol="ETHUSDT", side="SELL", type="LIMIT",
                                    quantity="0.1", price="2500", timeInForce="GTC")
print("order:", order["orderId"], order["status"], order["side"], order["origQty"], "@",
      order["price"])
print("canceled:", client.futures_cancel_order(symbol="ETHUSDT",
                                                orderId=order["orderId"])["status"])
print("balance:", client.futures_account_balance()[0]["balance"])
