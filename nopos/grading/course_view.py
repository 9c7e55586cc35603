"""What a chapter's grading kernel may import of the course.

The kernel needs the course's two packages: `nopos` (what the notebooks import)
and `nopos_reference` (later chapters import earlier chapters' answers). It
gets copies, made for that chapter alone, and the sandbox mounts each copy,
read-only, wherever the real package lives, so no import, file read or
byte-compiled cache inside the kernel reaches what was left out:

- `nopos` without the checks (the verdict is reached outside the kernel,
  nopos/grading/judge.py);
- `nopos_reference` with only the answer modules (`nopos_reference.ANSWERS`) of
  chapters that come *before* this one in the course's order (the order of
  ANSWERS' keys), and the learners' helpers (`nopos_reference.HELPERS`) whose
  module-level imports need no other chapter. A chapter's own answers and every
  later chapter's stay out: a submission that prints `inspect.getsource` of a
  later chapter's answer would otherwise carry it into feedback that is
  released while that chapter's grades are still open.
- On a class server only chapters whose grades are closed are published; the hub
  passes those chapters to the batch in the environment variable CHAPTERS_VAR
  (nopos.hub.instructor; nopos.grading knows nothing of hubs), and the kernel sees
  only earlier chapters that are also among them. Without the variable (a
  reading group, a self-study grader) every earlier chapter counts as closed.

Rejected: hiding only the chapter's own answers. Any open chapter's answer is a
grade someone can still copy; the course's order already says which answers a
chapter may use.
"""
import ast
import importlib.util
import os
import shutil
from pathlib import Path

PACKAGES = ("nopos", "nopos_reference")
CHAPTERS_VAR = "NOPOS_CLOSED_CHAPTERS"  # comma-separated chapter names


def package_dir(name):
    """Where Python imports a package from (the checkout, or site-packages)."""
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).resolve().parent


def _module_imports(path):
    """nopos_reference modules that `path` imports at module level."""
    found = set()
    for node in ast.parse(Path(path).read_text()).body:
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        found |= {n.split(".")[1] for n in names if n.startswith("nopos_reference.")}
    return found


def chapters_needed(source, module, answers):
    """The chapters whose answers `module` is or imports (module level, transitively);
    `answers` maps each answer module to its chapter."""
    seen, todo, chapters = set(), [module], set()
    while todo:
        name = todo.pop()
        if name in seen or not (Path(source) / f"{name}.py").exists():
            continue
        seen.add(name)
        if name in answers:
            chapters.add(answers[name])
        todo.extend(_module_imports(Path(source) / f"{name}.py"))
    return chapters


def closed_chapters():
    """CHAPTERS_VAR's chapters, or None where it is unset: separated by commas, semicolons
    or spaces, as a shell may write them (the batch and the queue's tasks read this alone)."""
    import re

    value = os.environ.get(CHAPTERS_VAR)
    return None if value is None else [c for c in re.split(r"[\s,;]+", value) if c]


def visible_chapters(assignment, closed=None):
    """The chapters whose answers `assignment`'s kernel may import: the earlier ones
    (course order), and of those only the closed ones when `closed` is given
    (default: read from CHAPTERS_VAR, when set)."""
    from nopos_reference import ANSWERS

    if closed is None and os.environ.get(CHAPTERS_VAR) is not None:
        closed = closed_chapters()
    order = list(ANSWERS)
    # a notebook that is not one of the chapters sees none of the answers
    earlier = order[:order.index(assignment)] if assignment in ANSWERS else []
    return {c for c in earlier if closed is None or c in set(closed)}


def hidden_files(assignment, closed=None):
    """Relative paths, per package, that the chapter's kernel must not see."""
    from nopos_reference import ANSWERS, HELPERS

    visible = visible_chapters(assignment, closed)
    answers = {m: aid for aid, mods in ANSWERS.items() for m in mods}
    source = package_dir("nopos_reference")
    hidden = {m for m, aid in answers.items() if aid not in visible}
    hidden |= {h for h in HELPERS if not chapters_needed(source, h, answers) <= visible}
    return {
        "nopos": {"checks/" + p.name for p in (package_dir("nopos") / "checks").glob("ch*.py")},
        "nopos_reference": {f"{m}.py" for m in hidden},
    }


def kernel_packages(assignment, scratch, closed=None):
    """[(copy, mount point)]: the filtered copies to mount over the real packages."""
    hidden = hidden_files(assignment, closed)
    mounts = []
    for name in PACKAGES:
        source, copy = package_dir(name), Path(scratch) / name
        skip = hidden[name]

        def ignore(folder, names, source=source, skip=skip):
            rel = Path(folder).relative_to(source)
            return [n for n in names if n == "__pycache__" or n.endswith(".pyc")
                    or (rel / n).as_posix() in skip]

        shutil.copytree(source, copy, ignore=ignore, symlinks=False)
        mounts.append((str(copy), str(source)))
    return mounts
