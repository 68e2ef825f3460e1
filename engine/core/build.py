"""Which core this process runs: compiled by mypyc (build_core.py) or pure Python. The choice is
made before the core is imported, by engine/__init__.py; this only reports it (start lines,
benchmark headers). Not compiled itself."""
from __future__ import annotations

import sys


def core_build() -> str:
    """"compiled" or "pure", as loaded."""
    from engine.core import engine as core_engine
    return "compiled" if (core_engine.__file__ or "").endswith(".so") else "pure"


def core_build_line() -> str:
    if core_build() == "compiled":
        return "core: compiled (mypyc)"
    why = getattr(sys.modules.get("engine"), "CORE_PURE_REASON", "")
    return f"core: pure Python ({why})" if why else "core: pure Python"
