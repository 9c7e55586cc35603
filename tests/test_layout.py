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


# ---------------------------------------------------------------- the whole repository
# What ships (the wheel, a hub's environment) < what maintainers run (tools/) < the
# tests (and their benchmarks, tests/bench/). A file imports only its own tree or a
# lower one: nothing shipped reaches tools/ or tests/, and tools/ never reaches tests/.
REPO = ROOT.parent
TREES = {"nopos": 0, "nopos_reference": 0, "tools": 1, "tests": 2}


def _top_names(tree):
    """What a file of `tree` could import it by: the tree itself, and, for a script that
    puts the folder on sys.path, its modules and packages by their own names."""
    folder = REPO / tree
    names = {tree}
    if tree in ("tools", "tests"):
        names |= {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir()
                                                         if (p / "__init__.py").exists()}
    return names


OWNER = {name: tree for tree in sorted(TREES, key=TREES.get) for name in _top_names(tree)}


def tree_violations(tree, source):
    """The trees above `tree` that `source` imports, at top level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        for name in names:
            owner = OWNER.get(name.split(".")[0])
            if owner and TREES[owner] > TREES[tree]:
                found.add(f"{name} ({owner}/)")
    return sorted(found)


def _files(tree):
    return sorted(p for p in (REPO / tree).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("tree", sorted(TREES))
def test_each_tree_imports_only_its_own_or_a_lower_one(tree):
    wrong = {str(p.relative_to(REPO)): v for p in _files(tree)
             if (v := tree_violations(tree, p.read_text(encoding="utf-8")))}
    assert not wrong, f"imports that go up ({' < '.join(TREES)}): {wrong}"


@pytest.mark.parametrize("tree,planted", [
    ("nopos", "from tests.hostile import cases"),
    ("nopos", "def f():\n    import tools.claims"),
    ("nopos_reference", "import conftest"),
    ("tools", "from wrong import ch01_dataset"),
    ("nopos", "from build_course import parse_master"),
])
def test_a_planted_upward_import_is_caught(tree, planted):
    assert tree_violations(tree, planted)
