"""Presenter mode: every chapter as reveal.js slides that work with no internet.

    python tools/build_slides.py                  # every chapter -> build/slides/<id>.slides.html
    python tools/build_slides.py --chapter 01     # one chapter
    python tools/build_slides.py --no-execute     # code only, no outputs (seconds, not minutes)
    python tools/build_slides.py --chapter 04 --room K7P2   # + a live room's revealed answers

The slides come from the same single source as the notebooks: the chapter
master (chapters/<id>.md), turned into the reference notebook exactly as
tools/build_course.py does, run from a fresh kernel with no person at the
keyboard, then cut into slides. Masters need nothing special; the cut is
computed from the content:
  * a `#`/`##` heading starts a slide, a `###` heading a sub-slide (down arrow),
    and a long run of prose is split into sub-slides;
  * each prediction point (`predict.ask(...)`) becomes its own slide: the
    question and its options, then, one click later, "pause and vote";
  * the cell that calls `predict.reveal(...)` comes on the next sub-slide
    ("Reveal"), its code and result one more click later;
  * check cells (`check_...(...)`) are skipped: they are for learners;
  * with `--room CODE`, each question the live room (nopos.room) revealed gets
    one more sub-slide after its result: how the room answered, its calibration.
Press S for the speaker view, Esc for the overview.

The HTML loads reveal.js, require.js and jQuery from `vendor/` (copied from the
repository's vendor/ next to the HTML), so build/slides/ can be zipped or put
on a USB stick and opened on a projector laptop with no network.
"""
import argparse
import ast
import copy
import html
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.build_course import masters, parse_master, solution_notebook  # noqa: E402

VENDOR = ROOT / "vendor"
TEMPLATES = Path(__file__).resolve().parent / "slides_template"
OUT = ROOT / "build" / "slides"
PROSE_PER_SLIDE = 1100          # characters of markdown before a new sub-slide
CHECK_LINE = re.compile(r"^\s*(from nopos\.checks\S* import .*|check_\w+\(.*\)\s*|#.*|)$")
NO_PREDICTION = re.compile(r"<b>Your prediction:</b>\s*no prediction\s*<br>")


# ---------------------------------------------------------------- questions
def _literal(node, source):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.get_source_segment(source, node)


def questions_in(source):
    """[(variable or None, {key, text, kind, options, unit, tolerance})] of predict.ask calls."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        call = node.value if isinstance(node, (ast.Assign, ast.Expr)) else None
        if not (isinstance(call, ast.Call) and _name(call.func) == "ask"):
            continue
        args = dict(zip(("key", "text", "kind", "options", "unit", "tolerance"), call.args))
        args.update({k.arg: k.value for k in call.keywords if k.arg})
        q = {name: _literal(value, source) for name, value in args.items()}
        target = node.targets[0].id if isinstance(node, ast.Assign) and isinstance(
            node.targets[0], ast.Name) else None
        found.append((target, q))
    return found


def reveals_in(source):
    """Variables passed as the question to predict.reveal(...) calls."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node.args[0].id if node.args and isinstance(node.args[0], ast.Name) else None
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and _name(node.func) == "reveal"]


def _name(func):
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def question_markdown(q):
    text = _inline_markdown(str(q.get("text", "")))
    parts = ["## Stop and predict", "",
             f"<div class='nopos-question'><p><b>{text}</b></p>"]
    options = q.get("options")
    if q.get("kind", "choice") == "choice" and isinstance(options, (list, tuple)):
        parts.append("<ul class='nopos-options'>" + "".join(
            f"<li><b>{chr(65 + i)}.</b> {_inline_markdown(str(o))}</li>"
            for i, o in enumerate(options)) + "</ul>")
    else:
        unit = html.escape(str(q.get("unit") or ""))
        tol = q.get("tolerance")
        tol = tol if isinstance(tol, (int, float)) else 0.1
        parts.append(f"<p>Your number: ______ {unit}<br><small>(a hit is within "
                     f"\N{PLUS-MINUS SIGN}{tol:.0%} of the result)</small></p>")
    parts.append(f"<p><small><code>{html.escape(str(q.get('key', '')))}</code></small></p></div>")
    return "\n".join(parts)


def _inline_markdown(text):
    """Escape, then keep the prose's `code`, **bold** and *italics*."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


PAUSE = ("<p class='nopos-pause'><b>Pause.</b> Everyone writes down a "
         "guess and says why. Facilitator: count the votes (in the notebook: "
         "<code>tally.group_tally(q)</code>), then go on to the reveal.</p>")


# ---------------------------------------------------------------- cutting into slides
def _md(source, slide_type):
    cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata["slideshow"] = {"slide_type": slide_type}
    return cell


def _is_check_cell(cell):
    lines = cell.source.splitlines()
    return any("check_" in line for line in lines) and all(CHECK_LINE.match(l) for l in lines)


def room_results(code):
    """{question key: aggregate} of every question a live room has revealed."""
    from nopos.room.store import Room

    room = Room(code)
    room.info  # noqa: B018 - a clear error for a wrong code
    return {p.stem: room.revealed(p.stem) for p in sorted(room.revealed_dir.glob("*.json"))}


def room_markdown(agg):
    from nopos.room.view import revealed_html

    return "### How the room answered\n\n" + revealed_html(agg)


def slide_cells(nb, room=None):
    """A copy of `nb` with slideshow metadata, question slides and reveal steps added;
    `room`: {question key: a live room's revealed aggregate}, shown after each reveal."""
    room = room or {}
    nb = copy.deepcopy(nb)
    cells, prose, asked = [], 0, {}
    for i, cell in enumerate(nb.cells):
        source = cell.source.lstrip()
        if "colab" in cell.metadata.get("tags", []):
            continue  # how to open and install on Colab: not for the projector
        if cell.cell_type == "markdown":
            if i == 0 or re.match(r"#{1,2} ", source):
                kind, prose = "slide", 0
            elif source.startswith("### ") or prose + len(source) > PROSE_PER_SLIDE:
                kind, prose = "subslide", 0
            else:
                kind = "-"
            prose += len(source)
            cell.metadata["slideshow"] = {"slide_type": kind}
            cells.append(cell)
            continue
        questions, reveals = questions_in(cell.source), reveals_in(cell.source)
        for var, q in questions:
            asked[var] = q
            cells.append(_md(question_markdown(q), "slide"))
            cells.append(_md(PAUSE, "fragment"))
        if reveals:
            titles = [_inline_markdown(str((asked.get(v) or {}).get("text", ""))) for v in reveals]
            cells.append(_md("### Reveal\n\n" + "<br>".join(t for t in titles if t), "subslide"))
            _drop_no_prediction(cell)
            cell.metadata["slideshow"] = {"slide_type": "fragment"}
            cells.append(cell)
            for var in reveals:
                key = (asked.get(var) or {}).get("key")
                if key in room:
                    cells.append(_md(room_markdown(room[key]), "subslide"))
            prose = PROSE_PER_SLIDE  # what follows a reveal starts afresh
        elif questions or _is_check_cell(cell) or "scoreboard.show(" in cell.source:
            cell.metadata["slideshow"] = {"slide_type": "skip"}
            cells.append(cell)
        else:
            cell.metadata["slideshow"] = {"slide_type": "-"}
            cells.append(cell)
            prose += 400  # code takes room too
    nb.cells = cells
    nb.metadata.pop("widgets", None)  # no widget renderer offline
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [_static(o) for o in cell.get("outputs", [])]
    return nb


def _drop_no_prediction(cell):
    """In a group nobody committed in the kernel: drop the 'no prediction' line."""
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if "text/html" in data:
            data["text/html"] = NO_PREDICTION.sub("", data["text/html"])


def _static(output):
    """Widget views cannot render offline: keep their plain-text form."""
    data = output.get("data", {})
    if "application/vnd.jupyter.widget-view+json" in data:
        data.pop("application/vnd.jupyter.widget-view+json")
        if not data:
            data["text/plain"] = ""
    return output


# ---------------------------------------------------------------- build
def chapter_notebook(master):
    meta, cells = parse_master(master)
    return meta.get("id") or Path(master).stem, solution_notebook(meta, cells)


def execute(nb, timeout=900, home=None):
    """Run `nb` with nobody at the keyboard; its prediction log goes to `home` (default: a
    scratch folder, removed)."""
    from nbclient import NotebookClient

    import contextlib
    import tempfile

    saved = {k: os.environ.get(k) for k in ("NOPOS_NONINTERACTIVE", "NOPOS_HOME")}
    with (contextlib.nullcontext(home) if home else tempfile.TemporaryDirectory()) as home:
        # the slides' run reveals every answer: its log goes to a scratch home,
        # never into the facilitator's own scoreboard
        os.environ.update(NOPOS_NONINTERACTIVE="1", NOPOS_HOME=home)
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="nopos", allow_errors=False,
                           resources={"metadata": {"path": str(ROOT / "solutions")}}).execute()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return nb


def exporter():
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    c = Config()
    c.SlidesExporter.reveal_url_prefix = "vendor/reveal.js"
    c.SlidesExporter.reveal_theme = "white"
    c.SlidesExporter.reveal_scroll = True
    c.SlidesExporter.reveal_number = "c/t"
    c.SlidesExporter.font_awesome_url = ""     # the lab-based template does not use it
    c.HTMLExporter.require_js_url = "vendor/requirejs/require.js"
    c.HTMLExporter.jquery_url = "vendor/jquery/jquery.min.js"
    c.HTMLExporter.mathjax_url = ""            # no maths in the prose; the template loads none
    c.HTMLExporter.mermaid_js_url = ""
    c.HTMLExporter.widget_renderer_url = ""
    c.HTMLExporter.jupyter_widgets_base_url = ""
    return SlidesExporter(config=c, template_name="nopos_slides",
                          extra_template_basedirs=[str(TEMPLATES)])


def build_chapter(master, out=OUT, run=True, timeout=900, room=None):
    cid, nb = chapter_notebook(master)
    if run:
        execute(nb, timeout)
    body, _ = exporter().from_notebook_node(slide_cells(nb, room), resources={
        "metadata": {"name": nb.metadata.get("nopos", {}).get("title") or cid}})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    copy_vendor(out)
    target = out / f"{cid}.slides.html"
    target.write_text(strip_css_comments(body), encoding="utf-8")
    problems = offline_problems(target)
    if problems:
        raise SystemExit(f"{target} is not offline:\n  " + "\n  ".join(problems))
    return target


STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)
CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def strip_css_comments(page):
    """nbconvert inlines its CSS with comments that cite web pages: drop them (and the bytes)."""
    return STYLE.sub(lambda m: m.group(1) + CSS_COMMENT.sub("", m.group(2)) + m.group(3), page)


def copy_vendor(out):
    target = Path(out) / "vendor"
    shutil.copytree(VENDOR, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("README.md", "axe-core"))  # axe-core: site tests only


# ---------------------------------------------------------------- offline check
REF = re.compile(r"""(?:\b(?:src|href|data-src|poster)\s*=\s*["']([^"']*)["'])"""
                 r"""|(?:url\(\s*["']?([^"')]*)["']?\s*\))"""
                 r"""|(?:@import\s+["']([^"']+)["'])"""
                 r"""|(?:\bimport\s+\w+\s+from\s+["']([^"']+)["'])""", re.IGNORECASE)
REQUIRED = re.compile(r"""require\(\s*\{[^}]*\}\s*,\s*\[([^\]]*)\]""", re.S)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)


SCRIPT_BODY = re.compile(r"(<script\b[^>]*>)(.*?)(</script>)", re.S | re.I)
SCRIPT_EXTERNAL = re.compile(r"""(?:\b(?:src|href)\s*=\s*|\bimport\s*\(?\s*|from\s+|url\(\s*)"""
                             r"""["']((?:https?:)?//[^"']+)["']""", re.I)


def references(text, css=False):
    """Every URL that `text` (HTML or CSS) makes a browser load or link to.

    In HTML the bodies of inline scripts are not read as HTML (a bundled
    library's code is full of `src=` and `href=` that are not attributes);
    from them come the module lists of `require({...}, [...])` calls and any
    absolute URL that code would set as a src/href or import.
    """
    found, scripts = [], []
    if not css:
        def keep_tag(match):
            scripts.append(match.group(2))
            return match.group(1) + match.group(3)
        text = SCRIPT_BODY.sub(keep_tag, text)
    for match in REF.finditer(text):
        url = next(g for g in match.groups() if g is not None)
        found.append(url.strip())
    for body in scripts:
        for block in REQUIRED.findall(body):
            found += re.findall(r"""["']([^"']+)["']""", block)
        found += SCRIPT_EXTERNAL.findall(body)
    return found


ANCHOR = re.compile(r"<a\b[^>]*>", re.I)


def offline_problems(page, links=True):
    """External URLs, and local files that do not exist, referenced by `page` or its CSS.
    links=False: a reader's links (<a href>: Colab, GitHub) count as nothing loaded."""
    page = Path(page)
    problems, seen, todo = [], set(), [(page, False)]
    while todo:
        path, css = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        text = path.read_text(encoding="utf-8", errors="replace")
        if not (links or css):
            text = ANCHOR.sub("<a>", text)
        for url in references(text, css=css):
            if not url or url.startswith(("#", "data:", "mailto:", "javascript:", "blob:")):
                continue
            if EXTERNAL.match(url) or url.lower().startswith(("http:", "https:")):
                problems.append(f"{path.name}: external URL {url[:120]}")
                continue
            local = (path.parent / url.split("?")[0].split("#")[0]).resolve()
            if not local.exists():
                problems.append(f"{path.name}: missing local file {url}")
            elif local.suffix == ".css":
                todo.append((local, True))
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build offline reveal.js slides per chapter.")
    parser.add_argument("--chapter", help="only chapters whose id starts with this, e.g. 01")
    parser.add_argument("--no-execute", action="store_true", help="slides without outputs")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--room", help="a live room's code: add its revealed answers")
    args = parser.parse_args(argv)
    room = room_results(args.room) if args.room else None
    chosen = [m for m in masters() if not args.chapter or m.stem.startswith(args.chapter)
              or m.stem.startswith(args.chapter.zfill(2))]
    if not chosen:
        raise SystemExit(f"no chapter matches {args.chapter!r}")
    for master in chosen:
        print(f"{master.stem}: building slides{'' if args.no_execute else ' (running it first)'}"
              " ...", flush=True)
        target = build_chapter(master, args.out, run=not args.no_execute, timeout=args.timeout,
                               room=room)
        print(f"  {target}")
    print(f"open in a browser (no network needed); copy the whole {args.out}/ folder to move it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
