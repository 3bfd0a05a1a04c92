"""The architecture holds module by module: no import cycle anywhere.

``lint-imports`` (run by ``make test``) checks the layer and boundary contracts and cycles
between sibling packages; it does not see a cycle between a package's ``__init__`` and one of
its own modules, so this test checks every module-level cycle, counting imports inside
functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import grimp
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

ROOTS = (
    "coachbridge",
    "coachbridge_csv",
    "coachbridge_bamboohr",
    "coachbridge_workday",
    "coachbridge_webhooks",
)


def module_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others."""
    modules = sorted(graph.modules)
    index = {name: i for i, name in enumerate(modules)}
    rows, cols = [], []
    for name in modules:
        for imported in graph.find_modules_directly_imported_by(name):
            rows.append(index[name])
            cols.append(index[imported])
    matrix = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(modules),) * 2)
    _count, labels = connected_components(matrix, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for name, label in zip(modules, labels, strict=True):
        groups.setdefault(int(label), []).append(name)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*ROOTS, include_external_packages=False)
    assert module_cycles(graph) == []


def test_the_check_sees_a_cycle_through_a_package_init():
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "other"):
        graph.add_module(name)
    graph.add_import(importer="pkg", imported="pkg.a")  # __init__ re-exports a
    graph.add_import(importer="pkg.a", imported="pkg")  # a reads something from __init__
    graph.add_import(importer="other", imported="pkg.b")
    assert module_cycles(graph) == [["pkg", "pkg.a"]]


#: The modules a plugin author may import; docs/architecture.md lists the same.
PUBLIC_MODULES = (
    "coachbridge",
    "coachbridge.connectors",
    "coachbridge.csvcells",
    "coachbridge.domain",
    "coachbridge.errors",
    "coachbridge.hookspecs",
    "coachbridge.http",
    "coachbridge.links",
    "coachbridge.mapping",
    "coachbridge.markers",
    "coachbridge.matching.criteria",
    "coachbridge.metrics",
    "coachbridge.notify.base",
    "coachbridge.schedules",
    "coachbridge.testing",
)


def test_the_public_api_is_declared_and_documented():
    import importlib
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        declared = getattr(module, "__all__", None)
        assert declared, f"{name} declares no __all__"
        missing = [item for item in declared if not hasattr(module, item)]
        assert not missing, f"{name}.__all__ names what it does not define: {missing}"
        assert f"`{name}`" in page, f"docs/architecture.md does not list {name}"


def test_every_hook_specification_is_part_of_the_declared_api():
    from coachbridge import hookspecs

    specs = {name for name in dir(hookspecs) if name.startswith("coachbridge_")}
    assert specs and specs <= set(hookspecs.__all__)
