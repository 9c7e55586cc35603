"""The package's folders say who each part is for, and imports run one way.

`nopos` (what the notebooks import) < `nopos.learner` (the learner's tools) and
`nopos.grading` (the instructor's grading) < `nopos.hub` (the instructor's
server). A module may import its own layer and the layers below it, never
above, and no two modules import each other, even lazily.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "nopos"
# rank of each layer: a module imports only layers of lower or equal rank
LAYERS = {"nopos": 0, "nopos.learner": 1, "nopos.grading": 1, "nopos.hub": 2}
# the learner's self-grading runs the instructor's grader on one notebook
ALLOWED_ACROSS = {("nopos.learner", "nopos.grading")}


def module_name(path):
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module):
    for name in sorted(LAYERS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    return "nopos"


MODULES = {module_name(p): p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts}


def imports(path):
    """Every nopos module a file imports, at top level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "nopos"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "nopos":
            for alias in node.names:  # `from nopos.x import y`: y may be a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


GRAPH = {name: {m for m in imports(path) if m in MODULES and m != name}
         for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_own_layer_or_lower(module):
    mine = layer(module)
    wrong = []
    for target in GRAPH[module]:
        theirs = layer(target)
        if theirs == mine or (mine, theirs) in ALLOWED_ACROSS:
            continue
        if LAYERS[theirs] >= LAYERS[mine] or target.startswith(mine + "."):
            wrong.append(target)
        # a package's own __init__ is imported by every submodule: never a violation
    wrong = [w for w in wrong if w not in ("nopos",) and not (mine + ".").startswith(w + ".")]
    assert not wrong, f"{module} ({mine}) imports {wrong}, which are for a layer above it"


def test_no_import_cycles():
    """Depth-first search for a cycle among nopos modules (package __init__s aside:
    Python imports a package before its submodules, which is no cycle)."""
    graph = {m: {t for t in ts if MODULES[t].name != "__init__.py"} for m, ts in GRAPH.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_notebooks_library_does_not_import_the_tools_or_the_grader():
    core = [m for m in MODULES if layer(m) == "nopos"]
    up = {m: sorted(t for t in GRAPH[m] if layer(t) != "nopos") for m in core}
    assert not any(up.values()), {m: t for m, t in up.items() if t}
