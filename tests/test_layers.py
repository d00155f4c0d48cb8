"""The package's layers hold: a module imports only from its own layer or the ones below, and no two modules
import each other, directly or around a loop (function-level imports included: they are imports too).

Layer order, lowest first (docs/ARCHITECTURE.md says what each holds):

    errors, vocabulary            leaves: import nothing of energylens
    io, extras                    files written atomically, tables read; which extra brings what
    catalog, traffic              hardware and model figures; the traffic simulator
    data                          the profiling schema, importers, power logs
    features                      FLOPs, bytes and times of a configuration
    model                         the closed form: terms, structures, fitting, estimator, model files
    baselines, discovery, export  black boxes and rules; symbolic regression; LaTeX and Markdown
    recommendation                enumerate, predict, rank deployments; the request declarations
    profile, evaluation           measure (sweeps, endpoints, plans); compare against baselines
    report                        the evaluation report and its figures
    web                           the explorer and its JSON API
    cli, __main__                 the commands

The package root (`energylens/__init__.py`) is the public facade: it imports upward lazily, and any module may
import it for `__version__`.
"""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "energylens"

LAYERS = [
    {"errors", "vocabulary"},
    {"io", "extras"},
    {"catalog", "traffic"},
    {"data"},
    {"features"},
    {"model"},
    {"baselines", "discovery", "export"},
    {"recommendation"},
    {"profile", "evaluation"},
    {"report"},
    {"web"},
    {"cli", "__main__"},
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}

# Cycles known today, each with who removes it; the test fails on any other, and when one listed is gone.
KNOWN_CYCLES: dict = {}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = ["energylens", *path.relative_to(SRC).with_suffix("").parts]
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (path, package)
    return out


MODULES = _modules()


def _target(name: str) -> str | None:
    """The module of ours an import of `name` loads last (a.b.c, else a.b, ...), or None if not ours."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    """The modules of ours `module` imports anywhere in its text (TYPE_CHECKING blocks excepted)."""
    path, package = MODULES[module]
    here = module.split(".") if package else module.split(".")[:-1]
    found = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and getattr(child.test, "id", "") == "TYPE_CHECKING":
                continue
            if isinstance(child, ast.Import):
                found.update(filter(None, (_target(a.name) for a in child.names)))
            elif isinstance(child, ast.ImportFrom):
                base = ".".join(here[:len(here) - child.level + 1]) if child.level else ""
                name = ".".join(filter(None, [base, child.module]))
                for alias in child.names:  # `from . import x` loads the submodule x
                    sub = _target(f"{name}.{alias.name}")
                    found.add(sub if sub and sub != _target(name) else _target(name))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(None)
    # A package's own parents load first whatever it imports: not an edge of the graph.
    return {m for m in found if m != module and not module.startswith(m + ".") and m != "energylens"}


GRAPH = {m: _imports(m) for m in MODULES}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_has_a_layer():
    assert {_part(m) for m in MODULES} - {None} <= set(RANK), {_part(m) for m in MODULES} - set(RANK) - {None}


def test_no_module_imports_a_higher_layer():
    upward = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() if _part(m)
                    for t in targets if RANK[_part(t)] > RANK[_part(m)])
    assert not upward, "\n".join(upward)


def test_the_leaves_import_nothing_of_energylens():
    for leaf in LAYERS[0]:
        assert not GRAPH[f"energylens.{leaf}"], leaf


def _cycles(graph: dict[str, set[str]]) -> list[frozenset]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        m = stack.pop()
                        on.discard(m)
                        component.add(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        out.append(frozenset(component))
    return out


def test_no_import_cycles():
    cycles = set(_cycles(GRAPH))
    new = [sorted(c) for c in cycles - set(KNOWN_CYCLES)]
    gone = [sorted(c) for c in set(KNOWN_CYCLES) - cycles]
    assert not new, f"import cycles: {new}"
    assert not gone, f"no longer cycles, remove them from KNOWN_CYCLES: {gone}"


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The graph is read right: known edges are found (so the tests above could fail)."""
    assert "energylens.data.schema" in GRAPH["energylens.model.predictor"]
    assert "energylens.errors" in GRAPH["energylens.catalog.models"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [frozenset({"a", "b", "c"})]
