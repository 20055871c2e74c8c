"""The core's modules import each other without cycles, and none imports the package ``augkit`` itself.

The graph is read from the source with ``ast``: every absolute ``augkit.*`` import (and relative
one), at module level or inside a function, is an edge from the importing module to the module
it names (``from augkit.x import y`` names ``augkit.x.y`` when that is a module, else ``augkit.x``).
The parent packages an import runs on the way are not edges: every module would otherwise
depend on ``augkit/__init__.py``. Strings (docstrings, ``importlib.import_module`` names) are not
imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).parent.parent / "augkit"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package folder ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def import_graph(root: Path) -> tuple[dict[str, set[str]], list[str]]:
    """The import graph of the package at ``root`` (module -> modules it imports) and the imports of the
    package itself (``import pkg``, ``from pkg import name`` where name is not a sub-module), as messages."""
    package = root.name
    modules = module_names(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    itself: list[str] = []

    def known(name: str) -> str | None:
        """The longest prefix of ``name`` that is one of the package's modules."""
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        return ".".join(parts) or None

    for name, path in modules.items():
        where = lambda node: f"{path.relative_to(root.parent)}:{node.lineno}"  # noqa: E731
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == package:
                        itself.append(f"{where(node)}: import {package}")
                    elif alias.name.startswith(package + "."):
                        graph[name].add(known(alias.name))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package, up level - 1 more
                    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    here = here[: len(here) - (node.level - 1)]
                    base = ".".join(here + ([base] if base else []))
                if base != package and not base.startswith(package + "."):
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in modules:
                        graph[name].add(sub)
                    elif base == package:
                        itself.append(f"{where(node)}: from {package} import {alias.name}")
                    else:
                        graph[name].add(known(base))
    for name in graph:
        graph[name].discard(None)
    return graph, itself


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component that has one, shortest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)

    found = []
    for component in components:
        members, start = set(component), component[0]
        paths, seen = [[start]], {start}  # breadth first: the shortest way back to start inside the component
        while paths:
            path = paths.pop(0)
            following = sorted(graph[path[-1]] & members)
            if start in following:
                found.append(path + [start])
                break
            for w in following:
                if w not in seen:
                    seen.add(w)
                    paths.append(path + [w])
    return sorted(found, key=lambda c: (len(c), c))


def test_the_core_has_no_import_cycle():
    graph, _ = import_graph(CORE)
    assert len(graph) > 5 and "augkit.extension.roles" in graph
    found = cycles(graph)
    assert not found, "import cycles in augkit/:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_core_module_imports_the_augkit_package_itself():
    _, itself = import_graph(CORE)
    assert not itself, ("modules inside augkit/ import the package augkit itself (import what you need from its "
                        "sub-module instead):\n" + "\n".join(itself))


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_planted_cycle_and_package_imports_are_found(tmp_path):
    pkg = write(tmp_path / "pkg", {
        "__init__.py": "from pkg.a import f\n",
        "a.py": "def f():\n    import pkg.sub.b  # inside a function: still an edge\n",
        "sub/__init__.py": "",
        "sub/b.py": "from pkg.sub import c\n",
        "sub/c.py": "from .. import a\nfrom pkg.a import f\n",  # relative and absolute: back to a
        "d.py": '"""import pkg (a docstring is no import)"""\nimport pkg\nfrom pkg import f, a\nimport pkg.sub.c\n',
        "e.py": "from pkg.e import x\n",  # a module importing itself
    })
    graph, itself = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.d"] == {"pkg.a", "pkg.sub.c"} and graph["pkg"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.e", "pkg.e"], ["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]]
    assert itself == ["pkg/d.py:2: import pkg", "pkg/d.py:3: from pkg import f"]


def test_a_tree_without_cycles_passes(tmp_path):
    pkg = write(tmp_path / "pkg", {"__init__.py": "from pkg.a import f\n", "a.py": "import pkg.b\n",
                                   "b.py": "import os\n", "c.py": "from pkg import a, b\n"})
    graph, itself = import_graph(pkg)
    assert cycles(graph) == [] and itself == []
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": set(), "pkg.c": {"pkg.a", "pkg.b"}}
