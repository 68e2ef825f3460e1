"""Compile the pure core (engine/core/) with mypyc, in place, when a C compiler is present.

    python build_core.py            compile (or say why the core stays pure Python)
    python build_core.py --clean    remove the compiled modules: the pure core runs

`make` runs this as part of the install step. The compiled modules sit beside their sources
(engine/core/*.so) with a manifest, engine/core/compiled.json, holding the SHA-256 of every
engine/core/*.py they were built from. engine/__init__.py loads the compiled modules only while
every source still matches the manifest (an edited core runs as pure Python until the next
build) and never when PERPENGINE_PURE is set. engine.core.build says which one runs.

The rules that keep the core compilable are in the README (Benchmarks: "compiled core").
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
CORE = os.path.join(ROOT, "engine", "core")
MANIFEST = os.path.join(CORE, "compiled.json")
GROUP = "engine.core.native"  # the mypyc runtime shared by the modules: engine/core/native__mypyc*.so
# not compiled: the package itself, and snapshot (a msgspec Struct subclass, which mypyc cannot
# compile; it only runs at snapshot time)
EXCLUDED = {"__init__.py", "snapshot.py", "build.py"}
# mypy checks the core before mypyc compiles it; these two error codes are switched off because
# the running code is right where mypy cannot prove it (an Optional the code has just checked
# through another variable; a str where proto declares a Literal). See README.
MYPY_FLAGS = ["--ignore-missing-imports", "--follow-imports=silent",
              "--disable-error-code=union-attr", "--disable-error-code=arg-type"]


def sources() -> list[str]:
    return sorted(glob.glob(os.path.join(CORE, "*.py")))


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def compiler() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


def clean() -> None:
    for path in glob.glob(os.path.join(CORE, "*.so")) + [MANIFEST]:
        if os.path.exists(path):
            os.remove(path)


def build() -> int:
    if os.environ.get("PERPENGINE_PURE"):
        print("core: PERPENGINE_PURE is set: not compiling (the pure core runs)")
        return 0
    if compiler() is None:
        clean()
        print("core: no C compiler found; the core runs as pure Python")
        return 0
    try:
        from mypyc.build import mypycify
        from setuptools import setup
    except ImportError as exc:
        clean()
        print(f"core: mypyc not installed ({exc}); the core runs as pure Python")
        return 0
    modules = [os.path.relpath(p, ROOT) for p in sources() if os.path.basename(p) not in EXCLUDED]
    clean()
    started = time.perf_counter()
    print(f"core: compiling {len(modules)} modules of engine/core with mypyc "
          f"(about a minute on 2 cores) ...", flush=True)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            extensions = mypycify(MYPY_FLAGS + modules, opt_level="3", group_name=GROUP)
            setup(name="perpengine-core", ext_modules=extensions,
                  script_args=["-q", "build_ext", "--inplace", "--build-temp", tmp,
                               "--build-lib", tmp])
    except SystemExit as exc:  # mypy's type errors or the C compiler's
        clean()
        print(f"core: the mypyc build failed ({exc}); fix it (README, 'compiled core') or run "
              "`python build_core.py --clean` for the pure core", file=sys.stderr)
        return 1
    finally:
        os.chdir(cwd)
        shutil.rmtree(os.path.join(ROOT, "build"), ignore_errors=True)
    manifest = {"python": sys.implementation.cache_tag,
                "sources": {os.path.basename(p): digest(p) for p in sources()},
                "compiled": [os.path.basename(m)[:-3] for m in modules]}
    with open(MANIFEST, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    print(f"core: compiled in {time.perf_counter() - started:.0f} s "
          f"(PERPENGINE_PURE=1 runs the pure core)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--clean"]:
        clean()
        print("core: compiled modules removed; the core runs as pure Python")
        sys.exit(0)
    sys.exit(build())
