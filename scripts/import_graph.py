"""Print fairprune's internal import graph and fail on cycles (module and sub-package level).

Every ``import``/``from … import`` inside ``fairprune/`` counts, including those inside functions:
a lazy import is still a dependency. Run: ``python scripts/import_graph.py [--packages]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "fairprune"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fairprune"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("fairprune"))
    return out


def graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    modules = {module_name(f) for f in files}
    g = {module_name(f): imports(f, modules) - {module_name(f)} for f in files}
    # importing a package's submodule runs the package __init__ first, which is not a real edge
    for mod, deps in g.items():
        g[mod] = {d for d in deps if not mod.startswith(d + ".")}
    return g


def area(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2])


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if state.get(m) is None and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if state.get(n) is None and (c := visit(n)):
            return c
    return None


def package_graph(g: dict[str, set[str]]) -> dict[str, set[str]]:
    pg: dict[str, set[str]] = {}
    for mod, deps in g.items():
        pg.setdefault(area(mod), set()).update(area(d) for d in deps if area(d) != area(mod))
    pg.pop("fairprune", None)
    for deps in pg.values():
        deps.discard("fairprune")
    return pg


def main() -> int:
    g = graph()
    pg = package_graph(g)
    if "--packages" in sys.argv:
        for name in sorted(pg):
            print(f"{name:28s} -> {', '.join(sorted(pg[name])) or '-'}")
    bad = 0
    for label, gg in (("module", g), ("package", pg)):
        cycle = find_cycle(gg)
        if cycle:
            print(f"{label} import cycle: {' -> '.join(cycle)}")
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
