"""The package layout: no import cycles, pages import only ``fairprune.app``, the public API."""

import ast
import subprocess
import sys

import fairprune
from tests.conftest import ROOT


def test_no_import_cycles_between_modules_or_packages():
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout
    assert run.stdout == ""


def test_pages_import_only_the_app_package():
    offenders = []
    for page in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(page.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fairprune"):
                if not node.module.startswith("fairprune.app"):
                    offenders.append(f"{page.name}: {node.module}")
    assert offenders == []


def test_public_api_resolves_every_name():
    assert len(fairprune.__all__) == 42
    for name in fairprune.__all__:
        assert getattr(fairprune, name) is not None


def test_import_graph_sees_a_planted_cycle():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert import_graph.find_cycle(g) == ["a", "b", "c", "a"]
    assert import_graph.find_cycle({"a": {"b"}, "b": set()}) is None
