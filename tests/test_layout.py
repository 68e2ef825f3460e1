"""The layout's rules (README, Design): which package may import which, no import circles, no
private name used across files, the pure core free of I/O modules, and old logs still read."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "proto", "replay")

# what each layer may import from this project (a prefix match on module names); the layers
# are listed from the bottom up, and each may import only what is below it
ALLOWED = {
    "proto": ("proto",),
    "engine.core": ("engine.core", "proto"),
    "engine.eventlog": ("engine.eventlog", "proto"),
    "engine.views": ("engine.views", "engine.core", "proto"),
    "engine.riskconsumer": ("engine.riskconsumer", "engine.core", "engine.eventlog",
                            "engine.client", "proto"),
    "engine.sequencer": ("engine.sequencer", "engine.core", "engine.eventlog",
                         "engine.riskconsumer", "proto"),
    "engine.recovery": ("engine.recovery", "engine.core", "engine.eventlog", "proto"),
    "engine.client": ("engine.client", "proto"),
    # pictures (matplotlib): figures, labels that never overlap, HTML pages; nothing of ours
    "engine.plots": ("engine.plots",),
    # Binance's HTTP and WebSocket API: given the sequencing loop and the key store by the
    # server, it imports neither; the log only to rebuild its projection
    "engine.api": ("engine.api", "engine.core", "engine.views", "engine.eventlog",
                   "engine.client", "proto"),
    "engine.server": ("engine.server", "engine.api", "engine.core", "engine.eventlog",
                      "engine.views", "engine.riskconsumer", "engine.sequencer",
                      "engine.recovery", "proto"),
    "replay": ("replay", "engine.core", "engine.eventlog", "engine.views",
               "engine.riskconsumer", "engine.sequencer", "engine.recovery", "engine.plots",
               "proto"),
    "engine.sim": ("engine.sim", "engine.client", "engine.core", "engine.plots", "proto"),
    "engine.bench": ("engine.bench", "engine.core", "engine.eventlog", "engine.sequencer",
                     "engine.riskconsumer", "engine.recovery", "engine.sim", "engine.client",
                     "engine.plots", "replay", "proto"),  # (the failover benchmark is a native client)
    "engine.cli": ("engine.cli", "engine.core", "engine.server", "engine.api", "proto"),
    "engine": ("engine",),  # engine/__init__ and __main__
}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(path: Path, module: str) -> set[str]:
    """Every project module `path` imports, at any depth of the file (function bodies too)."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _layer(module: str) -> str:
    best = ""
    for layer in ALLOWED:
        if (module == layer or module.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    return best


def test_each_layer_imports_only_what_is_below_it():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        allowed = ALLOWED[_layer(module)]
        for imported in _imports(path, module):
            if imported not in modules and imported.rpartition(".")[0] in modules:
                imported = imported.rpartition(".")[0]  # `from pkg import name`
            if not any(imported == a or imported.startswith(a + ".") for a in allowed):
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_no_import_circles():
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        deps = set()
        for imported in _imports(path, module):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != module:
                deps.add(imported)
        graph[module] = deps
    # a package's __init__ re-exporting its own modules is not a circle: leave out the edges
    # from a package to what it contains
    for module in graph:
        graph[module] = {d for d in graph[module] if not d.startswith(module + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_private_name_is_used_across_files():
    allowed = {("os", "_exit")}
    found = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found += [f"{module}: from {node.module} import {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                    and not node.attr.startswith("__") and isinstance(node.value, ast.Name) \
                    and node.value.id not in ("self", "cls") \
                    and (node.value.id, node.attr) not in allowed:
                found.append(f"{module}:{node.lineno}: {node.value.id}.{node.attr}")
    assert found == []


def test_the_core_loads_no_io_or_asyncio_module():
    code = ("import sys, engine.core, engine.core.snapshot; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'asyncio', 'socket', 'selectors', 'ssl', 'uvloop', 'structlog', 'logging', "
            "'subprocess', 'engine.server'} or m.startswith(('engine.server', 'engine.sim', "
            "'engine.bench', 'engine.eventlog', 'engine.riskconsumer'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_a_log_written_before_the_layout_change_still_verifies_and_redrives():
    """tests/fixtures/before-layout.log was written by the flat layout (commit 3707259) from
    before-layout.jsonl: orders, a liquidation, funding, a token and a spot order."""
    log = ROOT / "tests" / "fixtures" / "before-layout.log"
    for cmd in ("verify", "redrive"):
        out = subprocess.run([sys.executable, "-m", "replay", cmd, str(log)],
                             capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "state ba9836c108873e384a9cb56ef54b0b34" in out.stdout
