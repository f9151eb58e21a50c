"""The package's stages, read from its imports (module level and inside functions alike): the
formula engine imports nothing of the application around it, no module imports a stage above
its own, and no modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "excelnet"

# Lowest first. A module may import its own stage and those below it, never one above.
STAGES = [
    {"excelnet.errors"},
    {"excelnet.formula"},  # the engine: below everything but errors
    {"excelnet.progress", "excelnet.memory", "excelnet.data"},
    {"excelnet.xlsx"},  # the file: read into the engine's Book, patched back
    {"excelnet.writer"},  # building new workbooks
    {"excelnet.fitting"},  # read → compile → train → write back
    {"excelnet.predictions", "excelnet.live"},
    {"excelnet.cli", "excelnet.__main__", "excelnet"},  # the doors in
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules this file imports, anywhere in it (lazy imports count too)."""
    out = set()
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != me:
                out.add(name)
    return out


def stage(module: str) -> int:
    for i, members in enumerate(STAGES):
        if any(module == m or module.startswith(m + ".") for m in members if m != "excelnet"):
            return i
    assert module == "excelnet", f"{module} is in no stage: add it to STAGES"
    return len(STAGES) - 1


def graph() -> dict[str, set[str]]:
    found = modules()
    return {m: imports(p, set(found)) for m, p in found.items()}


def test_every_module_has_a_stage():
    for m in modules():
        stage(m)


def test_the_engine_imports_nothing_of_the_app():
    for m, deps in graph().items():
        if m.startswith("excelnet.formula"):
            outside = {d for d in deps if not d.startswith("excelnet.formula")} - {
                "excelnet.errors"
            }
            assert not outside, f"{m} imports {sorted(outside)}: the engine must stand alone"


def test_no_import_runs_back_up():
    for m, deps in graph().items():
        up = sorted(d for d in deps if stage(d) > stage(m))
        assert not up, f"{m} (stage {stage(m)}) imports {up}, a stage above it"


def test_no_circles():
    g = graph()
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not circles, f"modules importing each other in a circle: {circles}"


def test_the_checker_sees_a_violation(tmp_path):
    """The import reader finds lazy, relative and aliased imports (else the tests above could
    pass by seeing nothing)."""
    pkg = tmp_path / "excelnet"
    (pkg / "formula").mkdir(parents=True)
    (pkg / "fitting").mkdir()
    for p in (
        pkg / "__init__.py",
        pkg / "formula" / "__init__.py",
        pkg / "fitting" / "__init__.py",
    ):
        p.write_text("")
    (pkg / "fitting" / "train.py").write_text("")
    engine = pkg / "formula" / "x.py"
    engine.write_text(
        "def f():\n    from ..fitting import train as t\n    import excelnet.fitting.train\n"
    )
    known = {
        "excelnet",
        "excelnet.formula",
        "excelnet.fitting",
        "excelnet.fitting.train",
        "excelnet.formula.x",
    }
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert imports(engine, known) == {"excelnet.fitting.train"}
    finally:
        ROOT = saved


def test_no_module_shadows_the_api():
    """`excelnet.fit(...)` stays the function once excelnet.fitting's modules are imported: no
    subpackage or module of excelnet is named like a function of the API."""
    import excelnet
    import excelnet.fitting.pipeline  # noqa: F401

    clash = {m.rpartition(".")[2] for m in modules() if m.count(".") == 1} & set(excelnet._API)
    assert not clash, f"modules named like API functions: {sorted(clash)}"
    assert callable(excelnet.fit)
