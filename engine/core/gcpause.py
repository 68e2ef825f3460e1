"""Pausing the cyclic garbage collector around bulk work."""
from __future__ import annotations

import functools
import gc


# the cyclic collector's thresholds for a server (serving_gc): a young collection every 50,000
# net allocations instead of 700, an older one every 20 of those
SERVING_THRESHOLDS = (50_000, 20, 10)


def serving_gc() -> None:
    """For a long-running server, once its state is built: freeze what exists (the rebuilt
    state, the catalogue, the modules: long-lived, and never cyclic garbage) so no later
    collection scans it, and collect far less often. The core allocates no cycles (its links
    are unset when an order leaves the book), so what is left to find is the edges' rare
    cycles; a full pass over a heap of engine state and read models cost ~100 ms each time
    the heap had grown by a quarter."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)


def without_gc(fn):
    """Pause the cyclic garbage collector while `fn` runs: a replay or restore builds up large
    live state, which every collection pass would scan again for nothing."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return wrapper
