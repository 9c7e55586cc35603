"""Which reference answers the learners' environment holds: those of chapters whose
grades are closed, nothing else.

The hub has one Python environment (settings.ENV) that every learner's server and
kernel runs; everything in it is readable by every learner (import, `inspect`,
`cat`, `pip show -f`, the byte-compiled caches). So what a learner must not read
cannot be in it at all. The course package is therefore split at set-up:

- `nopos` (what the notebooks import: model, plots, checks ...) is installed into
  the environment as a package of its own;
- the whole `nopos_reference` goes to settings.ANSWERS_DIR, a root-only folder
  (mode 700). A `.pth` line in the environment puts that folder first on sys.path
  for whoever may read it: root (the batch grader, its judge) and the sandboxed
  grading kernel, in whose private root nopos.grading.course_view mounts the
  chapter's filtered copy at that very place. For a learner the folder cannot be
  opened, so the line does nothing;
- the environment's own `nopos_reference` holds only what is *published*: the
  answer modules (nopos_reference.ANSWERS) of chapters whose feedback the
  instructor released (`make hub-grade STEP=feedback` publishes; `STEP=publish`
  alone too), and the learners' helper modules (nopos_reference.HELPERS, e.g. the training loop
  chapter 3 uses) once every chapter whose answer they import or contain is
  published (module-level imports). Maintainers' code (benchmarks, the claims
  registry, recorders) lives in tools/ and tests/, never in the package.

Later chapters import earlier chapters' answers (chapter 3 uses chapter 1's
make_batch); on the hub they get them from the moment chapter 1's grades close,
which is also when the course's order asks for chapter 3. The published set is
kept in settings.PUBLISHED (root only) and re-applied at every `make hub`.

Rejected: one environment with everything and file modes inside it (a group that
may read answers, per-module ACLs). Imports, `inspect`, `pip show -f` and the
`__pycache__` files each leak through their own door, and every new module would
need its mode set right; a file that is not there leaks through none. Also
rejected: giving later chapters re-written, "non-answer" helpers: a second copy of
every answer that must behave exactly like the first, and that a learner could
still paste into the earlier chapter's notebook.
"""
import ast
import compileall
import json
import os
import shutil
from pathlib import Path

from nopos.grading import course_view
from nopos.hub import settings as s

PTH = "nopos_answers.pth"


def _declared(source, name):
    """A literal the package declares in its __init__ (ANSWERS, HELPERS), read without
    importing it (the hub's own Python may not have the package's dependencies)."""
    tree = ast.parse((Path(source) / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise ValueError(f"{source}/__init__.py defines no {name}")


def answer_modules(source):
    """{module: chapter} of the answer modules, read from the package's ANSWERS."""
    return {m: aid for aid, mods in _declared(source, "ANSWERS").items() for m in mods}


def helper_modules(source):
    """The modules a learner's notebook imports that are no answer (the package's HELPERS)."""
    return tuple(_declared(source, "HELPERS"))


def chapters_needed(source, module):
    """The chapters whose answers `module` (an answer or a helper) is or imports,
    transitively, at module level. An import inside a function is the answer a call
    needs, not the import: train's make_scheduler imports chapter 2's schedule only for
    the fixed schedule, and fails (as in chapter 2's grading kernel) while that chapter
    is open. The grading kernel's view uses the same rule (nopos.grading.course_view)."""
    return course_view.chapters_needed(source, module, answer_modules(source))


def published_modules(source, released):
    """The modules of nopos_reference the learners' environment may hold, given the
    chapters whose grades are closed."""
    candidates = [*answer_modules(source), *helper_modules(source)]
    return sorted(m for m in candidates if chapters_needed(source, m) <= set(released))


def released_chapters(record=s.PUBLISHED):
    path = Path(record)
    return json.loads(path.read_text()) if path.exists() else []


def site_packages(env=s.ENV):
    found = sorted(Path(env).glob("lib/python3*/site-packages"))
    if not found:
        raise FileNotFoundError(f"no site-packages under {env}")
    return found[0]


def install_private(repo, answers_dir=s.ANSWERS_DIR, env=s.ENV):
    """The whole nopos_reference into the root-only folder, and the .pth line that
    finds it for whoever may open it."""
    answers_dir = Path(answers_dir)
    answers_dir.mkdir(parents=True, exist_ok=True)
    os.chown(answers_dir, 0, 0)
    os.chmod(answers_dir, 0o700)
    target = answers_dir / "nopos_reference"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(Path(repo) / "nopos_reference", target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(str(target), quiet=1)
    # os.access: a learner's python cannot open the folder, so nothing is added
    line = (f"import os, sys; p = {str(answers_dir)!r}; "
            f"os.access(p, os.R_OK | os.X_OK) and sys.path.insert(0, p)\n")
    (site_packages(env) / PTH).write_text(line)
    os.chmod(site_packages(env) / PTH, 0o644)
    return target


def publish(released=None, answers_dir=s.ANSWERS_DIR, env=s.ENV, record=s.PUBLISHED, into=None):
    """Lay out the learners' nopos_reference as `released` (default: as recorded in
    `record`) allows; returns the modules it now holds. It goes into the environment's
    site-packages, or into the folder `into` (on a cluster: the volume every learner's
    pod mounts, hub/kubernetes/). Built beside and swapped in, so a learner importing
    at that moment sees the old set or the new one, never half of one."""
    released = released_chapters(record) if released is None else sorted(set(released))
    source = Path(answers_dir) / "nopos_reference"
    modules = published_modules(source, released)
    target = Path(into or site_packages(env)) / "nopos_reference"
    fresh, old = target.with_name(".nopos_reference.new"), target.with_name(".nopos_reference.old")
    for stale in (fresh, old):
        shutil.rmtree(stale, ignore_errors=True)
    fresh.mkdir()
    for name in ["__init__", *modules]:
        shutil.copy(source / f"{name}.py", fresh / f"{name}.py")
    compileall.compile_dir(str(fresh), quiet=1)  # learners cannot write __pycache__ here
    for folder, dirs, files in os.walk(fresh):
        for name in dirs + files:
            os.chmod(os.path.join(folder, name), 0o755 if name in dirs else 0o644)
    os.chmod(fresh, 0o755)
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    Path(record).parent.mkdir(parents=True, exist_ok=True)
    Path(record).write_text(json.dumps(released))
    return modules


def release(aid):
    """Close chapter `aid`'s grades: its answers (and the helpers they unlock) go public."""
    return publish(sorted({*released_chapters(), aid}))


def main(argv=None):
    """On a cluster, in the grader's pod (grading image; docs/hub.md, Kubernetes):

        python -m nopos.hub.answers --into /srv/nopos/published 01_dataset

    adds chapter 01_dataset to the chapters whose answers learners' pods may import
    (recorded in the folder itself) and lays the folder out again. Grading there sees
    the same chapters as closed (as `make hub-grade` does on one server):

        export NOPOS_CLOSED_CHAPTERS=$(python -m nopos.hub.answers --into /srv/nopos/published --closed)
    """
    import argparse

    from nopos.grading.course import REPO

    parser = argparse.ArgumentParser(prog="python -m nopos.hub.answers", description=main.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapters whose grades are now closed")
    parser.add_argument("--into", required=True, help=f"the published folder (cluster: {s.PUBLISHED_VOLUME})")
    parser.add_argument("--closed", action="store_true",
                        help=f"print the published chapters for {course_view.CHAPTERS_VAR} "
                             f"(the grading kernels' view) and change nothing")
    args = parser.parse_args(argv)
    if args.closed:
        print(",".join(released_chapters(Path(args.into) / "published.json")))
        return
    source = REPO / "nopos_reference"
    known = sorted(set(answer_modules(source).values()))
    unknown = sorted(set(args.chapters) - set(known))
    if unknown:
        raise SystemExit(f"no chapter {', '.join(unknown)}; the course has {', '.join(known)}")
    into = Path(args.into)
    if not into.is_dir():
        raise SystemExit(f"{into} is not a folder: mount the published volume there first")
    record = into / "published.json"
    released = sorted({*released_chapters(record), *args.chapters})
    modules = publish(released, answers_dir=REPO, record=record, into=into)
    print(f"published for learners: chapters {', '.join(released) or 'none'}; "
          f"modules {', '.join(modules) or 'none'}")


if __name__ == "__main__":
    main()
