"""Pausing the cyclic garbage collector around bulk work."""
from __future__ import annotations

import functools
import gc


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
