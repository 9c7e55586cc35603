"""Build every notebook of the course from its one source, `chapters/<id>.md`.

    python tools/build_course.py            # write the generated files
    python tools/build_course.py --check    # exit 1 if a committed file drifted

From each chapter master it writes:
  autograder/source/<id>/<id>.ipynb   nbgrader source notebook (solutions, hidden tests)
  course/<id>/<id>.ipynb              the release, made by nbgrader's own generate_assignment
  solutions/<id>.ipynb                the complete reference notebook, no nbgrader markers,
                                      no hidden tests

The master format is described in docs/authoring.md ("Chapters").
"""
import argparse
import filecmp
import importlib
import inspect
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
KERNELSPEC = {"name": "nopos", "display_name": "Python (nopos course)", "language": "python"}
FENCE = re.compile(r"^```python(.*)$")
TASK = re.compile(r"^```markdown(.*)$")  # a Markdown answer graded by hand (```markdown task ...)
# what the tests know about a prediction, kept beside its question and never shown:
# ```prediction key=ch1.x / giveaways: [phrases that answer it] / sample: [a scripted guess] / ```
FACTS = re.compile(r"^```prediction(.*)$")
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
# README.md's `**Repository:**` line: the one place that names where the course is hosted
README = ROOT / "README.md"
# ... and its `**Website:**` line: where the course's website (make site) is published
WEBSITE = re.compile(r"^\*\*Website:\*\* (https?://\S+)", re.M)
REPOSITORY = re.compile(r"^\*\*Repository:\*\* (https://github\.com/[\w.-]+/[\w.-]+), branch `([\w./-]+)`", re.M)
COLAB = "https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"
COLAB_TAG = "colab"  # the two cells below; slides leave them out
COLAB_NOTE = """\
**On the web:** [this chapter on the course website]({page}): read it and predict in a
browser, nothing to install.

**On Colab?** [Open this notebook in Colab]({url}), run the next cell first: there it
installs the course package (about a minute); anywhere else it does nothing. Checks,
predictions, plots and attention views all work on Colab. Grading does not: nbgrader
needs the notebook file, which a Colab kernel cannot read. To grade yourself, download
the notebook (*File → Download → Download .ipynb*) and, in a clone of the course, run
`make grade NB=path/to/{name}`."""
COLAB_INSTALL = """\
# On Colab: install the course package, keeping Colab's own torch and ipywidgets.
# Anywhere else this cell does nothing. (NOPOS_INSTALL_FROM: another source to install from.)
import sys

if "google.colab" in sys.modules:
    import importlib, os, subprocess
    from importlib.metadata import version

    source = os.environ.get("NOPOS_INSTALL_FROM", "{archive}")
    keep = [f"{{name}}=={{version(name)}}" for name in ("torch", "ipywidgets")]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source, *keep], check=True)
    importlib.invalidate_caches()"""


# ---------------------------------------------------------------- parsing
def parse_attrs(text):
    """`solution id=make_batch points=3 from=mod:fn` -> {'solution': True, 'id': ...}."""
    attrs = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        attrs[key] = value if eq else True
    return attrs


def parse_master(path):
    """A chapter master -> (front matter dict, list of cell dicts). The front matter's
    "predictions" holds each ```prediction block: {key: {"giveaways": [...], "sample": [...]}}."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    meta, i = {}, 0
    if lines and lines[0] == "---":
        end = lines.index("---", 1)
        for line in lines[1:end]:
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
        i = end + 1
    cells, buf, attrs = [], [], {}

    def flush_markdown():
        text = "\n".join(buf).strip("\n")
        if text.strip():
            cells.append({"type": "markdown", "source": text, "attrs": dict(attrs)})
        buf.clear()

    while i < len(lines):
        line = lines[i]
        fence, task, facts = FENCE.match(line), TASK.match(line), FACTS.match(line)
        if facts:
            key = parse_attrs(facts.group(1)).get("key")
            entry, i = {}, i + 1
            while lines[i] != "```":
                name, _, value = lines[i].partition(":")
                entry[name.strip()] = json.loads(value)
                i += 1
            meta.setdefault("predictions", {})[key] = entry
        elif task or fence:  # a fenced cell: code, or a written answer (```markdown task ...)
            flush_markdown()
            attrs = {}
            body, i = [], i + 1
            while lines[i] != "```":
                body.append(lines[i])
                i += 1
            text = "\n".join(body)
            cells.append({"type": "markdown" if task else "code",
                          "source": text.strip("\n") if task else text,
                          "attrs": parse_attrs((task or fence).group(1)), "line": i})
        elif line.startswith("+++"):
            flush_markdown()
            attrs = parse_attrs(line[3:])
        else:
            buf.append(line)
        i += 1
    flush_markdown()
    return meta, cells


def inline_function(spec):
    """Source of `module:function` with its body (after the docstring) as the solution."""
    module_name, _, name = spec.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, name)
    source = textwrap.dedent(inspect.getsource(obj)).rstrip("\n")
    lines = source.splitlines()
    # the body starts after the signature and the docstring
    body_start = _body_start(lines)
    indent = re.match(r"\s*", lines[body_start]).group(0)
    return "\n".join(lines[:body_start] + [indent + MARKERS[0]] + lines[body_start:]
                     + [indent + MARKERS[1]])


def _body_start(lines):
    import ast
    tree = ast.parse("\n".join(lines))
    fn = tree.body[0]
    first = fn.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
        and isinstance(first.value.value, str)
    stmt = fn.body[1] if docstring else first
    return stmt.lineno - 1 - (len(stmt.decorator_list) if hasattr(stmt, "decorator_list") else 0)


def cell_source(cell):
    attrs = cell["attrs"]
    if "from" in attrs:
        parts = [inline_function(spec) for spec in attrs["from"].split(",")]
        extra = cell["source"].strip("\n")
        return "\n\n\n".join(([extra] if extra else []) + parts)
    return cell["source"]


# ---------------------------------------------------------------- notebooks
def nbgrader_meta(grade_id, *, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _plain_check_calls(meta, cell, source):
    """Test cells are judged outside the kernel (nopos/grading/judge.py): only check calls."""
    from nopos.grading.judge import TestCellError, parse_test_cell

    try:
        parse_test_cell(source)
    except (SyntaxError, TestCellError) as error:
        raise SystemExit(f"{meta.get('id')}: test cell near line {cell['line']}: {error}") from None


REVEAL_FIRST_LINE = "# The answer: expand this cell's code only after you commit your prediction."


def reveal_meta(attrs):
    """A `reveal` cell holds a prediction's answer: JupyterLab shows its source
    collapsed, so the code cannot give the answer away before the learner commits."""
    return {"jupyter": {"source_hidden": True}, "tags": ["reveal"]} if attrs.get("reveal") else {}


def reveal_source(source, attrs):
    """A collapsed cell still shows its first line: make it say what the cell is."""
    return f"{REVEAL_FIRST_LINE}\n{source}" if attrs.get("reveal") else source


def source_notebook(meta, cells):
    """The nbgrader source notebook: solutions and hidden tests included."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"},
                   "nopos": {"chapter": meta.get("id"), "title": meta.get("title")}}
    seen = set()
    for cell in cells:
        attrs = cell["attrs"]
        if attrs.get("solutions-only"):
            continue
        if cell["type"] == "markdown":
            nb.cells.append(markdown_cell(meta, cell, seen))
            continue
        new = nbformat.v4.new_code_cell(reveal_source(cell_source(cell), attrs))
        new.metadata.update(reveal_meta(attrs))
        if attrs.get("solution") or attrs.get("tests"):
            grade_id = attrs.get("id")
            if not grade_id or grade_id in seen:
                raise SystemExit(f"{meta.get('id')}: graded cell near line {cell['line']} needs a "
                                 f"unique id=, got {grade_id!r}")
            seen.add(grade_id)
            if attrs.get("solution"):
                new.metadata = nbgrader_meta(grade_id, solution=True)
            else:
                _plain_check_calls(meta, cell, new.source)
                new.metadata = nbgrader_meta(grade_id, grade=True, locked=True,
                                             points=float(attrs.get("points", 1)))
        nb.cells.append(new)
    add_colab_cells(nb, f"course/{meta.get('id')}/{meta.get('id')}.ipynb")  # the release's address
    _normalise(nb)
    return nb


def markdown_cell(meta, cell, seen):
    """Prose; or, for a ```markdown task``` block, an answer nbgrader leaves to a person:
    a Markdown solution cell with points (graded by hand in formgrader). Its text is
    the instructor's example answer; the release shows nbgrader's answer stub instead."""
    new = nbformat.v4.new_markdown_cell(cell["source"])
    attrs = cell["attrs"]
    if attrs.get("task"):
        grade_id = attrs.get("id")
        if not grade_id or grade_id in seen or "points" not in attrs:
            raise SystemExit(f"{meta.get('id')}: task near line {cell['line']} needs a unique id= "
                             f"and points=, got {attrs}")
        seen.add(grade_id)
        new.metadata = nbgrader_meta(grade_id, solution=True, grade=True,
                                     points=float(attrs["points"]))
    return new


def solution_notebook(meta, cells):
    """The clean reference notebook: code complete, no markers, no hidden tests."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"},
                   "nopos": {"chapter": meta.get("id"), "title": meta.get("title")}}
    for cell in cells:
        if cell["type"] == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(cell["source"]))
        else:
            new = nbformat.v4.new_code_cell(reveal_source(strip_markers(cell_source(cell)),
                                                          cell["attrs"]))
            new.metadata.update(reveal_meta(cell["attrs"]))
            nb.cells.append(new)
    add_colab_cells(nb, f"solutions/{meta.get('id')}.ipynb")
    _normalise(nb)
    return nb


def strip_markers(source):
    """Drop solution markers and whole hidden-test blocks."""
    out, hidden = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == HIDDEN[0]:
            hidden = True
        elif stripped == HIDDEN[1]:
            hidden = False
        elif not hidden and stripped not in MARKERS:
            out.append(line)
    return "\n".join(out).rstrip("\n")


def repository(readme=README):
    """(owner/name, branch) of the course's GitHub repository, from README.md."""
    match = REPOSITORY.search(Path(readme).read_text(encoding="utf-8"))
    if not match:
        raise SystemExit("README.md needs a line `**Repository:** https://github.com/OWNER/NAME, "
                         "branch `main``: the Colab links are built from it")
    return match.group(1).removeprefix("https://github.com/"), match.group(2)


def website(readme=README):
    """The course website's address (ending in /), from README.md's `**Website:**` line."""
    match = WEBSITE.search(Path(readme).read_text(encoding="utf-8"))
    if not match:
        raise SystemExit("README.md needs a line `**Website:** https://...`: the notebooks' "
                         "links to the course website are built from it")
    return match.group(1).rstrip("/") + "/"


def colab_url(path):
    """Colab's address for the notebook at `path` (relative to the repository root)."""
    repo, branch = repository()
    return COLAB.format(repo=repo, branch=branch, path=path)


def add_colab_cells(nb, path):
    """After the header: how to open this notebook (at `path`) on Colab, and the cell
    that installs the course there."""
    repo, branch = repository()
    archive = f"https://github.com/{repo}/archive/refs/heads/{branch}.zip"
    page = f"{website()}{Path(path).stem}.html"  # tools/build_site.py: one page per chapter
    note = nbformat.v4.new_markdown_cell(COLAB_NOTE.format(url=colab_url(path), page=page,
                                                          name=Path(path).name))
    install = nbformat.v4.new_code_cell(COLAB_INSTALL.format(archive=archive))
    for cell in (note, install):
        cell.metadata["tags"] = [COLAB_TAG]
    nb.cells[1:1] = [note, install]


def _normalise(nb):
    """Stable cell ids so that regenerating gives byte-identical files."""
    for n, cell in enumerate(nb.cells):
        cell["id"] = f"c{n:03d}"


def write_notebook(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- nbgrader release
def release_with_nbgrader(chapter_ids, course_root, out_course):
    """Run nbgrader's own generate_assignment on every chapter in one process."""
    os.environ.setdefault("NOPOS_NONINTERACTIVE", "1")
    # nbgrader's gradebook runs `alembic` by name: this environment's first
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.db_url = f"sqlite:///{course_root}/gradebook.db"
    config.GenerateAssignment.create_assignment = True
    config.Exchange.root = str(course_root / "exchange")
    api = NbGraderAPI(config=config)
    for cid in chapter_ids:
        result = api.generate_assignment(cid, force=True)
        if not result["success"]:
            raise SystemExit(f"nbgrader generate_assignment {cid} failed:\n{result['log']}\n"
                             f"{result.get('error', '')}")
        release = course_root / "release" / cid / f"{cid}.ipynb"
        nb = nbformat.read(release, as_version=4)
        write_notebook(nb, out_course / cid / f"{cid}.ipynb")


def masters():
    return sorted(CHAPTERS.glob("[0-9][0-9]_*.md"))


def build(out):
    """Write every generated file under `out` (which mirrors the repository root)."""
    sys.path.insert(0, str(ROOT))
    scratch = Path(tempfile.mkdtemp(prefix="nopos-build-"))
    try:
        ids = []
        for master in masters():
            meta, cells = parse_master(master)
            cid = meta.get("id") or master.stem
            if cid != master.stem:
                raise SystemExit(f"{master.name}: front matter id {cid!r} must equal the file name")
            ids.append(cid)
            src = source_notebook(meta, cells)
            write_notebook(src, out / "autograder" / "source" / cid / f"{cid}.ipynb")
            write_notebook(src, scratch / "source" / cid / f"{cid}.ipynb")
            write_notebook(solution_notebook(meta, cells), out / "solutions" / f"{cid}.ipynb")
        release_with_nbgrader(ids, scratch, out / "course")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ids


GENERATED = ("autograder/source", "course", "solutions")

# ------------------------------------------ the chapter tables of the README and the path
# Each page keeps its prose; the table between these markers is made from every
# master's front matter (short, name, summary, outcome, session) and header (time, run,
# points).
TABLE_BEGIN = "<!-- chapter table: made by make generate from chapters/*.md; edit the masters -->"
TABLE_END = "<!-- end of chapter table -->"


def chapter_facts(master):
    """(front matter, minutes, what running it takes, points as the header states them)."""
    meta, _ = parse_master(master)
    text = Path(master).read_text(encoding="utf-8")
    minutes = re.search(r"\*\*Your time:\*\* about (\d+) minutes", text)
    runs = re.search(r"\*\*Running every cell:\*\* under (\d+) (seconds|minutes)", text)
    points = re.search(r"\*\*Points:\*\* (\d+)", text)
    by_hand = re.search(r"\*\*Points:\*\*[^·]*graded by hand", text)
    if not (minutes and runs and points):
        raise SystemExit(f"{master.name}: the header needs **Your time:** about N minutes, "
                         f"**Running every cell:** under N seconds|minutes, **Points:** N")
    unit = "s" if runs.group(2) == "seconds" else "min"
    return meta, int(minutes.group(1)), f"< {runs.group(1)} {unit}", points.group(1) + (
        " (one task graded by hand)" if by_hand else "")


def chapter_tables():
    """{page: its generated table} for README.md, docs/self-study.md and the facilitator
    kit's index."""
    readme = ["| chapter | what you do | your time | runs in | points |", "|---|---|---|---|---|"]
    path = ["| # | chapter | your time | what you leave with |", "|---|---|---|---|"]
    guides = ["| chapter | guide | session | predictions | exercises |", "|---|---|---|---|---|"]
    for master in masters():
        meta, minutes, runs, points = chapter_facts(master)
        cid = meta["id"]
        readme.append(f"| [{meta['short']}](course/{cid}/{cid}.ipynb) | {meta['summary']} | "
                      f"{minutes} min | {runs} | {points} |")
        path.append(f"| {int(cid[:2])} | `course/{cid}/` · {meta['name']} | about {minutes} min | "
                    f"{meta['outcome']} |")
        exercises = len(re.findall(r"^### Exercise ", Path(master).read_text(encoding="utf-8"), re.M))
        graded = points.split(" ", 1)
        guides.append(f"| {int(cid[:2])} · {meta['name']} | [{cid}.md]({cid}.md) | {meta['session']} | "
                      f"{len(meta['predictions'])} | {exercises} ({graded[0]} points"
                      f"{'; one task graded by hand' if len(graded) > 1 else ''}) |")
    return {"README.md": readme, "docs/self-study.md": path, "docs/facilitator/README.md": guides}


def with_table(text, table, page):
    if TABLE_BEGIN not in text or TABLE_END not in text:
        raise SystemExit(f"{page} needs the markers {TABLE_BEGIN!r} and {TABLE_END!r}")
    head, rest = text.split(TABLE_BEGIN, 1)
    return head + TABLE_BEGIN + "\n" + "\n".join(table) + "\n" + TABLE_END + rest.split(TABLE_END, 1)[1]


def table_drift(root=ROOT):
    return [f"differs from the masters (run make generate): {page}'s chapter table"
            for page, table in chapter_tables().items()
            if with_table((root / page).read_text(encoding="utf-8"), table, page)
            != (root / page).read_text(encoding="utf-8")]


def write_tables(root=ROOT):
    for page, table in chapter_tables().items():
        path = root / page
        path.write_text(with_table(path.read_text(encoding="utf-8"), table, page), encoding="utf-8")


def generated_files(root):
    files = set()
    for sub in GENERATED:
        base = Path(root) / sub
        if base.exists():
            files |= {p.relative_to(root) for p in base.rglob("*.ipynb")
                      if ".ipynb_checkpoints" not in p.parts}
    return files


def check():
    """Compare a fresh build with the committed files; list every difference."""
    with tempfile.TemporaryDirectory(prefix="nopos-check-") as tmp:
        build(Path(tmp))
        fresh, committed = generated_files(tmp), generated_files(ROOT)
        problems = [f"missing (run make generate): {p}" for p in sorted(fresh - committed)]
        problems += [f"stale, no master makes it: {p}" for p in sorted(committed - fresh)]
        problems += [f"differs from its master (edited by hand? run make generate): {p}"
                     for p in sorted(fresh & committed)
                     if not filecmp.cmp(Path(tmp) / p, ROOT / p, shallow=False)]
    return problems + table_drift()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated files drifted")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(p)
        print("generated files match their masters" if not problems else
              f"{len(problems)} generated file(s) drifted")
        return 1 if problems else 0
    for sub in GENERATED:  # a removed chapter must not leave its notebooks behind
        for stale in generated_files(ROOT):
            if str(stale).startswith(sub):
                (ROOT / stale).unlink()
    ids = build(ROOT)
    write_tables()
    print(f"built {len(ids)} chapter(s): {', '.join(ids)}; the chapter tables of "
          f"{', '.join(chapter_tables())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
