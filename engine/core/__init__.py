"""The pure core: a synchronous, deterministic state machine. No asyncio, no sockets, no files,
no clock: commands in (with their time), events out. See engine.core.engine for its parts."""
from engine.core.engine import Engine
from engine.core.ledger import EngineConfig

__all__ = ["Engine", "EngineConfig"]
