"""Import direction between svg_core's subpackages, checked on the source (AST, no import run).

Every ``import`` / ``from ... import`` in every ``.py`` under ``svg_core/`` counts, at module level
and inside functions alike (a lazy import is still a dependency). The layers, lowest first:
``audio`` -> ``data`` -> ``models`` -> ``engine`` / ``asr`` / ``synth`` / ``reporting`` -> ``search``
(spoken search across videos, which loads checkpoints and the grounders); and
svg_core as a whole never imports the Gradio app (``app``) or ``gradio``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "svg_core"

#: For each importing scope (a package prefix), the module prefixes it must never import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "svg_core": ("app", "gradio"),
    "svg_core.models": ("svg_core.engine", "svg_core.reporting", "svg_core.synth", "svg_core.asr",
                        "svg_core.search"),
    "svg_core.data": ("svg_core.models", "svg_core.engine", "svg_core.reporting", "svg_core.synth",
                      "svg_core.search"),
    "svg_core.audio": ("svg_core.models", "svg_core.engine", "svg_core.reporting", "svg_core.synth",
                       "svg_core.data", "svg_core.search"),
    "svg_core.engine": ("svg_core.search",),
    "svg_core.asr": ("svg_core.search",),
    "svg_core.reporting": ("svg_core.search",),
    "svg_core.search": ("svg_core.synth",),
}

#: Known violations, as (importing module, imported module). Each entry is a debt to remove, not
#: a licence: the test fails once the import is gone and the entry is left behind.
ALLOWED: set[tuple[str, str]] = set()  # empty: models/base.py's checkpoint read moved to engine.checkpoint


def module_name(path: Path, root: Path = ROOT) -> str:
    """Dotted module name of ``path`` relative to ``root`` (``pkg/__init__.py`` -> ``pkg``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every module ``source`` imports, anywhere in the file, as ``(line, dotted name)``.

    Relative imports are resolved against ``module``; ``from pkg import name`` records
    ``pkg.name`` (``name`` may be a submodule or an attribute; either way the name starts with
    ``pkg``, which is what a layer's prefix matches), ``from pkg import *`` records ``pkg``.
    """
    found: list[tuple[int, str]] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.extend((node.lineno, base if alias.name == "*" else f"{base}.{alias.name}")
                         for alias in node.names)
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _allowed(module: str, name: str, allowed) -> bool:
    return any(m == module and _matches(name, target) for m, target in allowed)


def violations(source: str, module: str, is_package: bool = False,
               allowed: set[tuple[str, str]] | frozenset = frozenset()) -> list[str]:
    """Layering violations in one module's source, as readable ``module:line imports x`` lines."""
    out = []
    for line, name in imported_modules(source, module, is_package):
        for scope, banned in FORBIDDEN.items():
            if _matches(module, scope) and not _allowed(module, name, allowed):
                out += [f"{module}:{line} imports {name} (forbidden for {scope})"
                        for prefix in banned if _matches(name, prefix)]
    return sorted(set(out))


def scan(package_dir: Path = PACKAGE, root: Path = ROOT) -> dict[str, list[tuple[int, str]]]:
    """Imports of every module under ``package_dir``, keyed by dotted module name."""
    return {module_name(p, root): imported_modules(p.read_text(), module_name(p, root),
                                                   p.name == "__init__.py")
            for p in sorted(package_dir.rglob("*.py"))}


def subpackage(name: str) -> str | None:
    """``svg_core.models.base`` -> ``svg_core.models``; ``None`` outside svg_core's subpackages
    (the flat entry modules such as ``svg_core.train`` are not a layer)."""
    parts = name.split(".")
    if parts[0] != "svg_core" or len(parts) < 2 or not (PACKAGE / parts[1]).is_dir():
        return None
    return ".".join(parts[:2])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a node list (first node repeated at the end), or ``None``."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def package_graph(imports: dict[str, list[tuple[int, str]]],
                  allowed: set[tuple[str, str]] = ALLOWED) -> dict[str, set[str]]:
    """Subpackage -> subpackages it imports (self-edges and allow-listed imports left out)."""
    graph: dict[str, set[str]] = {}
    for module, names in imports.items():
        src = subpackage(module)
        if src is None:
            continue
        graph.setdefault(src, set())
        for _, name in names:
            dst = subpackage(name)
            if dst and dst != src and not _allowed(module, name, allowed):
                graph[src].add(dst)
    return graph


def test_svg_core_imports_follow_the_layers():
    imports = scan()
    assert len(imports) > 30, "the scan found too few modules; is PACKAGE right?"
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += violations(path.read_text(), module_name(path), path.name == "__init__.py", ALLOWED)
    assert not found, "layering violations:\n" + "\n".join(found)


def test_allow_list_entries_are_still_needed():
    imports = scan()
    for module, target in ALLOWED:
        assert any(_matches(name, target) for _, name in imports.get(module, ())), (
            f"{module} no longer imports {target}: delete its ALLOWED entry")


@pytest.mark.parametrize("source", [
    "from svg_core.engine import checkpoint\n",
    "def load():\n    from svg_core.engine.checkpoint import load_checkpoint\n    return load_checkpoint\n",
    "import svg_core.engine.checkpoint as ck\n",
    "from ..engine import checkpoint\n",
])
def test_checker_catches_a_forbidden_import_in_models(tmp_path, source):
    fake = tmp_path / "svg_core" / "models" / "fake_layer.py"
    fake.parent.mkdir(parents=True)
    (tmp_path / "svg_core" / "__init__.py").write_text("")
    (fake.parent / "__init__.py").write_text("")
    fake.write_text(source)
    module = module_name(fake, tmp_path)
    assert module == "svg_core.models.fake_layer"
    found = violations(fake.read_text(), module)
    assert found and all("svg_core.engine" in line for line in found), found
    # the allow-list only covers its exact module, not a sibling importing the same thing
    assert violations(fake.read_text(), module, allowed=ALLOWED) == found


def test_checker_catches_gradio_and_app_anywhere_in_svg_core():
    src = "import os\n\ndef ui():\n    import gradio as gr\n    from app.handlers import run\n"
    found = violations(src, "svg_core.engine.inference")
    assert found == ["svg_core.engine.inference:4 imports gradio (forbidden for svg_core)",
                     "svg_core.engine.inference:5 imports app.handlers.run (forbidden for svg_core)"]
    assert violations("import numpy\nfrom svg_core.data import dataset\n", "svg_core.models.x") == []


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_between_subpackages():
    graph = package_graph(scan())
    assert {"svg_core.models", "svg_core.engine", "svg_core.data", "svg_core.audio"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between subpackages: " + " -> ".join(cycle)


def test_search_sits_above_engine():
    assert violations("from svg_core.search import WindowIndex\n", "svg_core.engine.training")
    assert violations("from svg_core.engine.checkpoint import load_checkpoint\n", "svg_core.search.encode") == []
