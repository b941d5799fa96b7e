"""The package's floors: every module sits in one stage of ``helpers.STAGES`` and imports only its own stage and the
stages below it, and no modules import each other in a circle (imports inside functions count)."""
from __future__ import annotations

import ast
from pathlib import Path

import helpers

PACKAGE = Path(helpers.__file__).resolve().parent
TOP = {"helpers", "helpers.__main__"}  # the public API and the command line stand above every stage


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules that ``path`` imports, anywhere in its code (``from . import x`` names module x)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                if f"{target}.{a.name}" in known:
                    out.add(f"{target}.{a.name}")
                elif target in known:
                    out.add(target)
    return out - {name}


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(name, path, set(mods)) for name, path in mods.items()}


def stage(name: str) -> int | None:
    if name in TOP:
        return None
    return helpers.STAGES.index(name.split(".")[1])


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_is_in_a_stage():
    assert all(stage(n) is not None for n in modules() if n not in TOP)
    assert {n.split(".")[1] for n in modules() if n not in TOP} == set(helpers.STAGES)


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_no_stage_imports_a_higher_one():
    upward = [f"{a} -> {b}" for a, deps in graph().items() for b in deps
              if stage(a) is not None and stage(b) is not None and stage(b) > stage(a)]
    assert upward == []


def test_the_graph_reader_sees_cycles_and_upward_imports():
    """The checks above can fail: a planted cycle and a planted upward import are found."""
    g = graph()
    g["helpers.data.settings"] = g["helpers.data.settings"] | {"helpers.book.runner"}
    assert any("helpers.data.settings" in c for c in cycles(g))
    assert stage("helpers.book.runner") > stage("helpers.data.settings")
    assert "helpers.zoo.store" in g["helpers.book.chapter"]  # an import the reader must see
    assert "helpers.attribution.surrogate" in g["helpers.attribution"]  # `from . import x` inside the package


def test_lazy_imports_inside_functions_count():
    assert "helpers.attribution.marginal" in graph()["helpers.attribution.mapcache"]  # imported inside a function


def test_no_module_over_600_lines():
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: k for n, k in long.items() if k > 600} == {}


def test_public_api():
    from helpers import METHODS, Marginalized, Recipe, ZooSpec, attribute, ensure_zoo, load_dataset  # noqa: F401

    assert {"lime", "kernel_shap", "rise", "gradcam_pp", "lrp_zplus"} <= set(METHODS)  # plug-ins registered


def test_methods_keep_their_registration_order():
    from helpers import CORE_METHODS, METHODS

    assert tuple(METHODS)[:len(CORE_METHODS)] == CORE_METHODS
    assert list(METHODS)[len(CORE_METHODS):] == ["rise", "gradcam_pp", "gradcam_pp_signed", "fullgrad",
                                                 "fullgrad_signed", "lrp_epsilon", "lrp_zplus", "rectgrad",
                                                 "noisegrad", "fusiongrad"]
