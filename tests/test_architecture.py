"""The layout's rules, checked on the source: no import cycle anywhere, the facade and the CLI
never reach into sensors or assets, policy code imports no Dagster, no module grows past the
size budget. Static (AST), so a rule broken in a branch that tests never run is still caught."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "grace_pipelines"
POLICY = [
    "grace_pipelines.htm.sizing",
    "grace_pipelines.htm.routing",
    "grace_pipelines.htm.sla",
    "grace_pipelines.text.chunking",
    "grace_pipelines.text.keywords",
    "grace_pipelines.text.extract",
    "grace_pipelines.crypto.envelope",
    "grace_pipelines.crypto.keyring",
    "grace_pipelines.crypto.rotation",
    "grace_pipelines.governance.consent",
    "grace_pipelines.search.fusion",
    "grace_pipelines.search.citations",
    "grace_pipelines.intents.deadlines",
    "grace_pipelines.intents.progress",
    "grace_pipelines.playbooks.model",
    "grace_pipelines.playbooks.loading",
    "grace_pipelines.playbooks.engine",
]
MAX_LINES = 450  # "about 400" as ruff format lays code out; past this a module has more than one reason to change


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every grace_pipelines module `path` imports, at module level or inside functions (a lazy
    import is still a dependency), except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node)
        for child in node.body
        for n in ast.walk(child)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("grace_pipelines") and name != "grace_pipelines":
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_of(module: str) -> str:
    """The parent package of `module` (for a package's `__init__`, the package itself)."""
    return module if (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists() else module.rpartition(".")[0]


def test_no_import_cycle() -> None:
    # a package's __init__ re-exporting its own modules is not a cycle between rooms
    graph = {
        m: {d for d in deps if not (m == _package_of(d) and d.startswith(m + "."))} for m, deps in _graph().items()
    }
    assert _cycles(graph) == []


def test_facade_and_cli_never_import_sensors_or_assets() -> None:
    graph = _graph()
    for module in ("grace_pipelines.api", "grace_pipelines.cli"):
        reached = {d for d in graph[module] if d.startswith(("grace_pipelines.sensors", "grace_pipelines.assets"))}
        assert reached == set(), f"{module} imports {sorted(reached)}"


def test_domains_never_import_the_dagster_adapters() -> None:
    graph = _graph()
    domains = ("ingest", "search", "governance", "db", "htm", "text", "crypto", "audio", "engines", "stores", "runtime")
    adapters = (
        "grace_pipelines.sensors",
        "grace_pipelines.assets",
        "grace_pipelines.schedules",
        "grace_pipelines.definitions",
        "grace_pipelines.api",
        "grace_pipelines.cli",
    )
    wrong = {
        m: sorted(d for d in deps if d.startswith(adapters))
        for m, deps in graph.items()
        if m.count(".") and m.split(".")[1] in domains
    }
    wrong = {m: d for m, d in wrong.items() if d and m != "grace_pipelines.search.evaluation"}
    # search.evaluation drives a whole Grace (ingest the eval corpus, search it): it is the one
    # domain module that is a client of the facade
    assert wrong == {}


def test_policy_modules_import_no_dagster() -> None:
    code = (
        f"import sys; import {', '.join(POLICY)}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"policy modules pulled in Dagster: {out[:300]}"


def test_no_module_over_the_size_budget() -> None:
    big = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert big == {}
