"""The layer rules of the target side, enforced from the imports and literals of the source (``ast``).

* ``plugins/modules`` and ``plugins/module_utils`` (they run on the managed host) import only the
  standard library, ``ansible.module_utils`` and the collection's own ``module_utils``.
* ``_abi`` (what the kernel defines) imports nothing from the domain package ``_tdisp``.
* The modules are glue: no sysfs path literal (``/sys``, ``bus/pci``, ``tsm/``) outside their
  documentation strings.
* Nothing in ``plugins/`` imports the simulator (``tdisp_sim``).

The simulator's own layer rules live with the simulator's tests.
"""

from __future__ import annotations

import ast
import os
import sys
import typing as t

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, 'plugins')
COLLECTION = 'ansible_collections.coco.tdisp.'
MODULE_UTILS = COLLECTION + 'plugins.module_utils'
DOC_NAMES = {'DOCUMENTATION', 'EXAMPLES', 'RETURN'}
PATH_LITERALS = ('/sys', 'bus/pci', 'tsm/')


def files(*parts: str) -> t.List[str]:
    top = os.path.join(PLUGINS, *parts)
    out = []
    for base, _dirs, names in os.walk(top):
        out.extend(os.path.join(base, n) for n in names if n.endswith('.py'))
    return sorted(out)


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def parse(path: str) -> ast.Module:
    with open(path, encoding='utf-8') as f:
        return ast.parse(f.read(), path)


def imports(path: str) -> t.List[t.Tuple[int, str]]:
    """(line, dotted module name) of every import, those inside functions included; '.x' for a relative one."""
    out = []
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((node.lineno, '.' * node.level + (node.module or '')))
    return out


def is_stdlib(name: str) -> bool:
    top = name.split('.', 1)[0]
    return top in sys.stdlib_module_names or top == '__future__'


TARGET = files('modules') + files('module_utils')


def test_the_target_side_exists():
    assert any(p.endswith('_abi/sysfs.py') for p in TARGET) and any(p.endswith('_tdisp/engine.py') for p in TARGET)


@pytest.mark.parametrize('path', TARGET, ids=rel)
def test_target_side_imports_stdlib_ansible_module_utils_and_own_module_utils(path):
    bad = ['%s:%d imports %s' % (rel(path), line, name) for line, name in imports(path)
           if not (is_stdlib(name) or name == 'ansible.module_utils' or name.startswith('ansible.module_utils.')
                   or name == MODULE_UTILS or name.startswith(MODULE_UTILS + '.'))]
    assert not bad, bad


@pytest.mark.parametrize('path', files('module_utils', '_abi'), ids=rel)
def test_abi_imports_nothing_of_the_domain(path):
    bad = ['%s:%d imports %s' % (rel(path), line, name) for line, name in imports(path)
           if name.startswith(MODULE_UTILS + '._tdisp')]
    assert not bad, bad


def _code_strings(tree: ast.Module) -> t.Iterator[ast.Constant]:
    """String constants outside docstrings and the DOCUMENTATION/EXAMPLES/RETURN assignments."""
    skip: t.Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.Assign) and any(isinstance(tg, ast.Name) and tg.id in DOC_NAMES for tg in node.targets):
            skip.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node


@pytest.mark.parametrize('path', files('modules'), ids=rel)
def test_modules_name_no_sysfs_path(path):
    bad = ['%s:%d %r' % (rel(path), node.lineno, node.value) for node in _code_strings(parse(path))
           if any(lit in node.value for lit in PATH_LITERALS)]
    assert not bad, 'sysfs paths belong in _abi: %s' % bad


@pytest.mark.parametrize('path', files(), ids=rel)
def test_plugins_do_not_import_the_simulator(path):
    bad = ['%s:%d imports %s' % (rel(path), line, name) for line, name in imports(path)
           if name.split('.', 1)[0] == 'tdisp_sim' or name.startswith(COLLECTION + 'simulator')]
    assert not bad, bad


def test_the_rules_see_a_violation(tmp_path):
    """The checks are not vacuous: a planted module breaks each of them."""
    p = tmp_path / 'planted.py'
    p.write_text('"""doc /sys"""\nimport yaml\nimport tdisp_sim.kernel\n'
                 'from ansible_collections.coco.tdisp.plugins.module_utils._tdisp import engine\n'
                 "DOCUMENTATION = '/sys'\nROOT = '/sys/bus/pci'\n")
    names = [n for _line, n in imports(str(p))]
    assert [n for n in names if not is_stdlib(n)] == ['yaml', 'tdisp_sim.kernel', MODULE_UTILS + '._tdisp']
    assert [c.value for c in _code_strings(parse(str(p)))] == ['/sys/bus/pci']
