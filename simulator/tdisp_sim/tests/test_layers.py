"""The simulator's layers, checked from its imports (ast, nothing is imported).

* the kernel model (``tdisp_sim.kernel``) imports only itself and the standard library: no view,
  fault, netlink or FUSE code;
* the views (``tdisp_sim.views``: sysfs tree, FUSE, netlink) import the model, not the fault layer;
* the fault layer (``tdisp_sim.faults``) is the only layer that knows both;
* the evidence content (``tdisp_sim.evidence``) reads the model and nothing else of the simulator;
* nothing in ``simulator/`` imports the collection (``ansible_collections``, ``plugins``);
* no import cycle at module level, and a function-level import only where listed below.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]  # simulator/tdisp_sim
SIMULATOR = PACKAGE.parent

# Which of the simulator's layers each layer may import (besides itself; "app" is the scenario
# loader, control socket, daemon and CLI, which put the layers together).
ALLOWED = {
    "kernel": set(),
    "evidence": {"kernel"},
    "views": {"kernel"},
    "faults": {"kernel", "views"},
}
# Function-level imports that are allowed, and why (none of them hides a cycle).
LAZY = {
    ("tdisp_sim.daemon", "tdisp_sim.views.fuse"): "mfusepy loads libfuse: the CLI's other commands work without it",
    ("tdisp_sim.daemon", "tdisp_sim.evidence.provider"): "cryptography is loaded only when a daemon serves evidence",
    ("tdisp_sim.evidence.provider", "cryptography.hazmat.primitives"): "cryptography, as above",
    ("tdisp_sim.views.netlink.server", "resource"): "Unix only; the server raises RLIMIT_NOFILE when it starts",
    ("tdisp_sim.cli", "yaml"): "PyYAML only for 'tdisp-sim inventory --yaml'",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SIMULATOR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".")
    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path):
    """(imported module, at module level) for every import of ``path``; ``from X import name``
    counts as importing X.name when that is a module of the simulator."""
    mod = module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text())
    skip = {id(n) for t in ast.walk(tree) if _type_checking(t) for n in ast.walk(t)}
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(mod, is_pkg, node)
            for alias in node.names:
                sub = "%s.%s" % (target, alias.name)
                yield (sub if sub in MODULES else target), id(node) in top


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p): p for p in SOURCES}


def layer(mod: str) -> str:
    parts = mod.split(".")
    if parts[0] != "tdisp_sim":
        return "external"
    if len(parts) > 1 and parts[1] in ("kernel", "views", "faults", "evidence", "tests"):
        return parts[1]
    return "app"


@pytest.mark.parametrize("mod", sorted(m for m in MODULES if layer(m) in ALLOWED))
def test_layer_imports_only_what_it_may(mod):
    own = layer(mod)
    bad = sorted({t for t, _ in imports(MODULES[mod]) if layer(t) not in ("external", own) and layer(t) not in ALLOWED[own]})
    assert not bad, "%s (layer %s) imports %s" % (mod, own, ", ".join(bad))


@pytest.mark.parametrize("mod", sorted(m for m in MODULES if layer(m) == "kernel"))
def test_model_uses_the_standard_library_only(mod):
    bad = sorted({t for t, _ in imports(MODULES[mod])
                  if layer(t) == "external" and t.split(".")[0] not in sys.stdlib_module_names})
    assert not bad, "%s imports %s" % (mod, ", ".join(bad))


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_nothing_imports_the_collection(mod):
    bad = sorted({t for t, _ in imports(MODULES[mod]) if t.split(".")[0] in ("ansible_collections", "plugins", "ansible")})
    assert not bad, "%s imports %s" % (mod, ", ".join(bad))


def test_function_level_imports_are_listed():
    found = {(mod, t)
             for mod, path in MODULES.items() if layer(mod) != "tests"
             for t, at_top in imports(path) if not at_top}
    assert found == set(LAZY)


def test_no_import_cycle():
    graph = {mod: {t for t, at_top in imports(path) if at_top and t in MODULES and t != mod}
             for mod, path in MODULES.items() if layer(mod) != "tests"}
    done: set = set()

    def visit(mod: str, stack: list) -> None:
        if mod in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(mod):] + [mod]))
        if mod in done:
            return
        for t in sorted(graph.get(mod, ())):
            visit(t, stack + [mod])
        done.add(mod)

    for mod in sorted(graph):
        visit(mod, [])
