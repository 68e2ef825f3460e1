"""The compiled core (build_core.py, mypyc) and the pure one: which one loads, and when."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parent.parent
WHICH = "from engine.core.build import core_build; print(core_build())"


def run(env_extra: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PERPENGINE_PURE"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", WHICH], capture_output=True, text=True,
                          cwd=ROOT, env=env, check=True).stdout.strip()


def test_perpengine_pure_loads_the_core_from_source():
    assert run({"PERPENGINE_PURE": "1"}) == "pure"


def test_the_compiled_core_loads_when_built_and_current():
    usable, why = engine.compiled_core_usable()
    if os.environ.get("PERPENGINE_PURE"):  # this run is the pure one: ask without the variable
        env = {k: v for k, v in os.environ.items() if k != "PERPENGINE_PURE"}
        usable = subprocess.run([sys.executable, "-c", "import engine; print(engine.CORE_COMPILED)"],
                                capture_output=True, text=True, cwd=ROOT, env=env,
                                check=True).stdout.strip() == "True"
    has_cc = shutil.which("cc") or shutil.which("gcc")
    if has_cc and (ROOT / "engine" / "core" / "compiled.json").exists():
        assert usable, why  # built by make: it must be current
    assert run({}) == ("compiled" if usable else "pure")


def test_an_edited_core_source_makes_the_compiled_modules_stale(tmp_path):
    core = tmp_path / "core"
    core.mkdir()
    (core / "a.py").write_text("x = 1\n")
    (core / "b.py").write_text("y = 2\n")
    import hashlib
    manifest = {"python": sys.implementation.cache_tag,
                "sources": {n: hashlib.sha256((core / n).read_bytes()).hexdigest()
                            for n in ("a.py", "b.py")}}
    (core / "compiled.json").write_text(json.dumps(manifest))
    env_pure = os.environ.pop("PERPENGINE_PURE", None)
    try:
        assert engine.compiled_core_usable(str(core)) == (True, "")
        (core / "b.py").write_text("y = 3\n")
        assert engine.compiled_core_usable(str(core)) == (False, "engine/core/b.py changed since the build")
        (core / "b.py").write_text("y = 2\n")
        (core / "c.py").write_text("z = 0\n")
        assert engine.compiled_core_usable(str(core))[1] == "engine/core's files changed since the build"
    finally:
        if env_pure is not None:
            os.environ["PERPENGINE_PURE"] = env_pure
