"""perpengine: an event-sourced matching and risk engine for USDⓈ-margined perpetual futures.

The core (engine.core.Engine) is a pure state machine; see README.md for the whole design.

The core runs compiled (mypyc, built by `make` through build_core.py) or as pure Python. The
compiled modules are used only while engine/core/compiled.json says they were built from the
sources as they are now, and never when the environment sets PERPENGINE_PURE; otherwise a
finder placed first on sys.meta_path loads engine/core/*.py from source.
engine.core.build says which one runs.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.util import spec_from_file_location

CORE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core")


def compiled_core_usable(core_dir: str = CORE_DIR) -> tuple[bool, str]:
    """(usable, why not) for the compiled modules beside engine/core's sources."""
    if os.environ.get("PERPENGINE_PURE"):
        return False, "PERPENGINE_PURE is set"
    try:
        with open(os.path.join(core_dir, "compiled.json")) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False, "not built (make, or python build_core.py)"
    if manifest.get("python") != sys.implementation.cache_tag:
        return False, f"built for {manifest.get('python')}"
    names = sorted(n for n in os.listdir(core_dir) if n.endswith(".py"))
    if names != sorted(manifest.get("sources", {})):
        return False, "engine/core's files changed since the build"
    for name in names:
        with open(os.path.join(core_dir, name), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != manifest["sources"][name]:
                return False, f"engine/core/{name} changed since the build"
    return True, ""


class PureCoreFinder:
    """Loads engine.core's modules from their .py files, never from a compiled extension."""

    @staticmethod
    def find_spec(fullname: str, path=None, target=None):
        if not fullname.startswith("engine.core."):
            return None
        source = os.path.join(CORE_DIR, *fullname.split(".")[2:]) + ".py"
        return spec_from_file_location(fullname, source) if os.path.isfile(source) else None


CORE_COMPILED, CORE_PURE_REASON = compiled_core_usable()
if not CORE_COMPILED:
    sys.meta_path.insert(0, PureCoreFinder())

