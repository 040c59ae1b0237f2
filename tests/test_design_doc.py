"""docs/DESIGN.md says only true things about the code: its paths, modules and signatures exist.

What is checked:

- every ``*.py`` path it names exists (``fairprune/...`` from the repository root; a shorter path
  such as ``nets/manifest.py`` or ``onnx_io.py`` under ``fairprune/`` or one of its
  sub-packages), and every dotted
  ``fairprune.x.y`` name is a module or an attribute of one;
- every module of ``fairprune/`` has its place in the module map: a top-level module is named in
  the first column, a sub-package's module in its package's row;
- every signature ``name(args) -> ret`` (in a code block or inline code; in a code block also
  ``def name(args)``) whose name is a public function, class or method defined in ``fairprune/``
  matches ``inspect.signature`` of one of the callables of that name. The rule: the parameters
  the doc shows before its ``*`` (or ``*args``) are exactly the real positional ones, in order
  (``self`` may be left out: ``LossSpec.make(min_weight, gamma)`` shows the call); those after it are real keyword-only ones
  (or the ``**kwargs``), in the real order, and may leave some out — a doc shows the common
  call, never a parameter that does not exist. ``...`` stands for "and more" and is skipped.
  A dotted name (``utils.stable_hash``, ``ResultsStore.write_cell``) narrows the candidates to
  that module or class; a name that is no public callable of fairprune (``fn(...)``) is prose.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
from functools import cache

import pytest

from tests.conftest import ROOT

DOC = ROOT / "docs" / "DESIGN.md"
PKG = ROOT / "fairprune"


def _text() -> str:
    return DOC.read_text()


def _module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _callables() -> dict[str, list[tuple[str, str]]]:
    """Public name -> [(module, qualname)] of every top-level def/class and class method."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(PKG.rglob("*.py")):
        mod = _module_name(path)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                out.setdefault(node.name, []).append((mod, node.name))
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                        out.setdefault(item.name, []).append((mod, f"{node.name}.{item.name}"))
    return out


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated parts of an argument list (brackets and strings respected)."""
    parts, depth, cur, quote = [], 0, "", None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _balanced(text: str, start: int) -> int | None:
    """Index just past the ``)`` closing the ``(`` at ``start``."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    return None


NAME = re.compile(r"(?<![\w.\[\]])((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)\(")


def _signatures_in(snippet: str, code: bool) -> list[tuple[str, str, int, bool]]:
    """(dotted name, argument text, offset, is a ``def``) of the ``name(args) -> ret`` forms."""
    found = []
    for m in NAME.finditer(snippet):
        end = _balanced(snippet, m.end() - 1)
        if end is None:
            continue
        is_def = code and snippet[max(0, m.start() - 4) : m.start()] == "def "
        if is_def or re.match(r"\s*->", snippet[end:]):
            found.append((m.group(1), snippet[m.end() : end - 1], m.start(), is_def))
    return found


def _documented_signatures() -> list[tuple[str, str, str | None]]:
    """(name, args, owner) of every signature; owner: the class of an indented ``def``."""
    text = _text()
    out = []
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        owners, cls, offset = [], None, 0  # owners: (line start offset, class then open)
        for line in block.splitlines(keepends=True):
            if m := re.match(r"(?:@\S+\s+)*class (\w+)", line):
                cls = m.group(1)
            elif line.strip() and not line[0].isspace():
                cls = None
            owners.append((offset, cls))
            offset += len(line)
        for name, args, start, is_def in _signatures_in(block, code=True):
            owner = [c for o, c in owners if o <= start][-1] if is_def else None
            out.append((name, args, owner))
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`]+)`", prose):
        out.extend((n, a, None) for n, a, _, _ in _signatures_in(span, code=False))
    return out


def _resolve(mod: str, qual: str):
    obj = importlib.import_module(mod)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


@cache
def _modules() -> dict[str, list[str]]:
    """Last dotted part -> fairprune module names (``utils`` -> ``fairprune.utils``)."""
    out: dict[str, list[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        mod = _module_name(path)
        out.setdefault(mod.rsplit(".", 1)[-1], []).append(mod)
    return out


def _candidates(name: str, owner: str | None) -> tuple[bool, list]:
    """(whether a class or module the name is qualified with exists, [(label, callable)])."""
    *prefix, short = name.split(".")
    head = owner or (prefix[-1] if prefix else None)
    if head is None:
        return False, [(f"{m}.{q}", _resolve(m, q)) for m, q in _callables().get(short, [])]
    containers = [_resolve(m, q) for m, q in _callables().get(head, []) if q == head]
    containers += [importlib.import_module(m) for m in _modules().get(head, [])]
    found = [
        (f"{head}.{short}", getattr(c, short))
        for c in containers
        if not short.startswith("_") and callable(getattr(c, short, None))
    ]
    return bool(containers), found


def _doc_params(args: str) -> tuple[list[str], list[str]]:
    positional, keyword, star = [], [], False
    for part in _split_args(args):
        name = re.split(r"[:=]", part, maxsplit=1)[0].strip()
        if name in ("...", "…"):
            continue
        if name == "*":
            star = True
        elif name.startswith("**"):
            keyword.append(name[2:])
        elif name.startswith("*"):
            positional.append(name)
            star = True
        else:
            (keyword if star else positional).append(name)
    return positional, keyword


def _matches(args: str, obj) -> bool:
    positional, keyword = _doc_params(args)
    params = list(inspect.signature(obj).parameters.values())
    real_pos = [
        ("*" + p.name) if p.kind is p.VAR_POSITIONAL else p.name
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    real_kw = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD)]
    if real_pos[:1] == ["self"] and positional[:1] != ["self"]:
        real_pos = real_pos[1:]  # Class.method(args) shows the call, without self
    if positional != real_pos:
        return False
    it = iter(real_kw)  # an ordered subset: each documented name found after the previous one
    return all(any(k == r for r in it) for k in keyword)


def _map_rows() -> list[str]:
    """The module map's rows, header left out."""
    table = [row for row in _text().split("## Module contracts")[0].splitlines() if row[:2] == "| "]
    return table[1:]  # [0] is the header; the |---| line does not start with "| "


def test_every_path_and_dotted_module_exists():
    text = _text()
    missing = []
    for path in sorted(set(re.findall(r"[\w./]+\.py\b", text)) - {"app.py"}):
        if not any((base / path).exists() for base in (ROOT, PKG, *PKG.glob("*/"))):
            missing.append(path)
    for dotted in sorted(set(re.findall(r"\bfairprune(?:\.[A-Za-z_]\w*)+", text))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                missing.append(dotted)
            break
    assert missing == [], "\n".join(missing)


def test_every_module_has_its_place_in_the_module_map():
    rows = {}
    for row in _map_rows():
        first, *rest = row.strip("|").split("|")
        for name in re.findall(r"`([^`]+)`", first):
            rows[name.strip("/")] = "|".join(rest)
    missing = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        if rel.name in ("__init__", "__main__"):
            continue
        if len(rel.parts) == 1:
            if rel.name not in rows:
                missing.append(str(rel))
        elif f"`{rel.name}`" not in rows.get(rel.parts[0], ""):
            missing.append(str(rel))
    assert missing == [], "\n".join(missing)


BASE = {"errors", "paths", "config", "utils"}


def test_the_module_map_allows_every_import_the_code_makes():
    """Row by row, what a module or package imports is what its "may import" column allows:
    backticked names, "base"/"the four base modules" and "all of the above" (the rows above)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    actual = import_graph.package_graph(import_graph.graph())
    above: set[str] = set()
    wrong = []
    for row in _map_rows():
        first, _, allowed = (cell.strip() for cell in row.strip().strip("|").split("|"))
        names = {n.strip("/") for n in re.findall(r"`([^`]+)`", first)}
        may = {n.strip("/") for n in re.findall(r"`([^`]+)`", allowed)}
        if "above" in allowed:
            may |= above
        if "base" in allowed:
            may |= BASE
        for name in sorted(names):
            deps = {d.removeprefix("fairprune.") for d in actual.get(f"fairprune.{name}", ())}
            if deps - may:
                wrong.append(f"{name} imports {sorted(deps - may)}")
        above |= names
    assert wrong == [], "\n".join(wrong)


def test_every_documented_signature_matches_the_code():
    checked, wrong = 0, []
    for name, args, owner in _documented_signatures():
        container, found = _candidates(name, owner)
        if not found:
            if container and not name.rsplit(".", 1)[-1].startswith("_"):
                wrong.append(f"{name}({args}): no such method of {owner or name}")
            continue  # prose: not a callable of fairprune
        checked += 1
        if not any(_matches(args, obj) for _, obj in found):
            real = "; ".join(f"{q}{inspect.signature(o)}" for q, o in found)
            wrong.append(f"{name}({args}) vs {real}")
    assert wrong == [], "\n".join(wrong)
    assert checked >= 40  # the doc's code blocks are read at all


@pytest.mark.parametrize(
    ("args", "ok"),
    [
        ("a, b, *, c=1", True),  # a subset of the keyword-only ones
        ("a, b", True),
        ("a, *, d, c", False),  # keyword-only out of order, and b missing
        ("a, b, *, e", False),  # no such parameter
        ("a, b, c", False),  # c is keyword-only
        ("a, b, *, c=1, ...", True),
    ],
)
def test_the_signature_rule(args, ok):
    def f(a, b=2, *, c=1, d=None): ...

    assert _matches(args, f) is ok
