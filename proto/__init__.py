"""Wire and log messages: commands (imperative) and events (past tense), frozen msgspec Structs.

Every price, quantity, amount and rate field is an int of 1e-8 units (see proto.decimals);
times are Unix milliseconds. Field names follow Binance's USDⓈ-M API (camelCase on the wire).
"""
from proto.commands import *  # noqa: F401,F403
from proto.events import *  # noqa: F401,F403
