"""The course as a website: build/site/, from the same chapter masters as the notebooks.

    python tools/build_site.py                    # every chapter run once (cached), then Sphinx
    python tools/build_site.py --no-execute       # no outputs: seconds, answers say "run it"
    python tools/build_site.py --execute 01,04    # run only the chapters whose id starts so

Each chapter master (chapters/<id>.md) is read by tools/build_course.py's own
parser and turned into one page: its prose and hints as written, each exercise
as the learner's stub (nbgrader's "YOUR CODE HERE", hidden tests dropped, never
the solution), the visible checks, and the outputs of a run of the reference
notebook (tools/build_slides.py's `execute`: plots, each with its own alt text
from nopos.vis.describe; circuitsvis views, their one bundle in _static/).
Each prediction (`predict.ask`) becomes a small form. What follows it, up to
the next prediction or the chapter's end (the reveal cell's result, the prose
that discusses it, later headings and outputs), is not in the page: it is in
_static/answers/<chapter>/<key>.js, which the page adds as a <script> only once
the reader commits (view-source, the table of contents and the search index show
none of it), so a chapter unfolds one commitment at a time. Commits are
kept in the browser (localStorage) and downloadable as the JSON-lines log that
`make scoreboard` reads (nopos/learner/scoreboard.py). Running a chapter is
the slow part (seconds to a minute each): its outputs and answers are cached
in build/site-cache/, keyed by the master and the course package's sources.

The pages are Markdown (MyST) rendered by Sphinx with sphinx-book-theme, all
from PyPI (requirements-site.txt) and built with no network; every script,
style sheet and font is copied into the site, so build/site/ works from
file:// and from any static host. Rejected: Jupyter Book 2 / mystmd (fetches
its theme at build time) and quarto (its PyPI package downloads a binary).

Settings, in README.md next to `**Repository:**` (the Colab links' setting):
`**Website:**` (where the site is published: the README and every notebook
header link there) and `**JupyterHub:**` (your class hub's address, or `none`:
adds "open on your course's JupyterHub", an nbgitpuller link, to every chapter).
"""
import argparse
import hashlib
import html
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.build_course import (MARKERS, README, cell_source, colab_url, masters,  # noqa: E402
                                parse_master, repository, solution_notebook, strip_markers)
from tools.build_slides import (NO_PREDICTION, execute, offline_problems,  # noqa: E402
                                questions_in, reveals_in)

OUT = ROOT / "build" / "site"
CACHE = ROOT / "build" / "site-cache"
STATIC = Path(__file__).resolve().parent / "site_static"        # our script and style sheet
TEMPLATES = Path(__file__).resolve().parent / "site_templates"  # the theme's parts we override
HUB = re.compile(r"^\*\*JupyterHub:\*\* (\S+)", re.M)
BINDER = "https://mybinder.org/v2/gh/{repo}/{branch}?urlpath={path}"
# What follows a prediction, up to the next one (or the chapter's end), is not in the page:
# it is one answers file per prediction, added as a <script> once the reader commits it
ANSWERS = "_static/answers/{name}/{slug}.js"
SEGMENT, SEGMENT_TITLE = "--after--", "nopos-segment"  # the segment documents' names, their title
VIEW = re.compile(r'<div id="(circuits-vis-[\w-]+)" (style="[^"]*")\s*/?>\s*'
                  r'<script crossorigin type="module">\s*(.*?)//# sourceMappingURL=\S+\s*'
                  r'(CircuitsVis\.render\((.*?)\)\s*)</script>', re.S)
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # what nbgrader's release shows
DOCS = ("docs/learn.md", "docs/self-study.md", "docs/teach.md", "docs/hub.md", "docs/grading.md",
        "docs/grading-at-scale.md", "docs/mutants.md",
        "docs/authoring.md")
FACILITATOR = "docs/facilitator/README.md"


# ---------------------------------------------------------------- settings
def hub_address(readme=None):
    """The class JupyterHub's address from README.md's `**JupyterHub:**` line (None: none):
    scheme and host (and port) only, since the links add the hub's own paths to it."""
    match = HUB.search(Path(readme or README).read_text(encoding="utf-8"))
    address = match.group(1).rstrip("/") if match else "none"
    if address.lower() == "none":
        return None
    whole = re.fullmatch(r"(https?)://([^/?#\s:]+)(?::(\d*))?(/[^?#]*)?([?#].*)?", address)
    host = whole and whole.group(2)
    label = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
    if not whole or not re.fullmatch(rf"{label}(\.{label})*", host):
        # without a scheme the button's link would be relative: a page of this site, not the hub
        raise SystemExit(f"README.md's **JupyterHub:** {address!r} is not a hub address: write it "
                         f"whole, e.g. https://hub.example.edu (or `none`)")
    port = whole.group(3)
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise SystemExit(f"README.md's **JupyterHub:** {address!r}: the port must be a number "
                         f"from 1 to 65535, e.g. https://hub.example.edu:8443")
    base = f"{whole.group(1)}://{host}" + (f":{port}" if port else "")
    if whole.group(4) or whole.group(5):
        # what the browser shows once logged in (/hub/login, /user/<name>/lab): the links
        # add /hub/user-redirect/... themselves, so a path would make every one a 404
        raise SystemExit(f"README.md's **JupyterHub:** {address!r} has a path: write only the "
                         f"hub's scheme and host, {base} (the links add /hub/... themselves)")
    return base


def launch_links(cid):
    """[(label, url, note)] of the places a chapter's notebook opens."""
    repo, branch = repository()
    path = f"course/{cid}/{cid}.ipynb"
    links = [("Open in Colab", colab_url(path), "Google's free notebooks; the first cell installs the course"),
             ("Open in Binder", BINDER.format(repo=repo, branch=branch,
                                              path=f"lab/tree/{path}"),
              "a temporary JupyterLab with the course installed; slow to start")]
    hub = hub_address()
    if hub:
        name = repo.split("/")[1]
        query = urlencode({"repo": f"https://github.com/{repo}", "branch": branch,
                           "urlpath": f"lab/tree/{name}/{path}"})
        links.append(("Open on your course's JupyterHub", f"{hub}/hub/user-redirect/git-pull?{query}",
                      "your class server; nbgitpuller copies the course into your home"))
    return links


# ---------------------------------------------------------------- running a chapter
def _sources_digest(master):
    digest = hashlib.sha256(Path(master).read_bytes())
    for package in ("nopos", "nopos_reference"):
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes() if path.suffix == ".py" else
                              str(path.stat().st_size).encode())
    return digest.hexdigest()[:16]


def run_chapter(master, nb, cache=CACHE, timeout=900):
    """The reference notebook run once (cached): (executed notebook, {key: reveal record})."""
    import nbformat

    cid = Path(master).stem
    cache = Path(cache)
    cached = cache / f"{cid}-{_sources_digest(master)}.json"
    if cached.exists():
        saved = json.loads(cached.read_text(encoding="utf-8"))
        return nbformat.from_dict(saved["nb"]), saved["answers"]
    print(f"{cid}: running the reference notebook (once; kept in {cache}) ...", flush=True)
    import nbformat.v4

    # first, in the same kernel: each figure's output keeps its description (its alt text)
    nb.cells.insert(0, nbformat.v4.new_code_cell("from nopos.vis import describe_figures\n"
                                                 "describe_figures()"))
    with tempfile.TemporaryDirectory(prefix="nopos-site-") as home:
        try:
            execute(nb, timeout, home=home)
        finally:
            nb.cells.pop(0)
        log = Path(home) / "predictions.jsonl"
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    answers = {r["key"]: r for r in records if r.get("event") == "reveal"}
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"{cid}-*.json"):
        old.unlink()
    cached.write_text(json.dumps({"nb": nb, "answers": answers}), encoding="utf-8")
    return nb, answers


# ---------------------------------------------------------------- a chapter as a page
def stub(source):
    """An answer cell as the release shows it: each solution region replaced by nbgrader's
    stub, hidden tests dropped."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == MARKERS[0]:
            inside = True
            indent = line[:len(line) - len(line.lstrip())]
            out += [indent + STUB[0], indent + STUB[1]]
        elif stripped == MARKERS[1]:
            inside = False
        elif not inside:
            out.append(line)
    return strip_markers("\n".join(out))


def fence(code, lang="python"):
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", code)), default=0) + 1)
    return f"{ticks}{lang}\n{code.rstrip()}\n{ticks}\n"


class Page:
    """One Markdown page and the raw HTML snippets it includes (files next to it)."""

    def __init__(self, name, folder, front=""):
        self.name, self.folder, self.parts, self.snippets = name, folder, [], 0
        self.front = front
        self.segments = []  # [(key, Page)]: what follows each prediction, revealed by its commit
        self.actual = {}    # key -> the reveal's result

    def md(self, text):
        self.parts.append(text.strip("\n") + "\n")

    def raw(self, markup):
        """HTML the Markdown parser must not touch (inline scripts, forms), from a file."""
        self.snippets += 1
        rel = f"_raw/{self.name}-{self.snippets:03d}.html"
        (self.folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.folder / rel).write_text(markup, encoding="utf-8")
        self.parts.append(f"```{{raw}} html\n:file: {rel}\n```\n")

    def write(self):
        (self.folder / f"{self.name}.md").write_text(self.front + "\n".join(self.parts), encoding="utf-8")


def segment_doc(page, key):
    """A new Sphinx document for what follows prediction `key` on `page`: rendered like the
    page (same Markdown, same directives) but never linked, indexed or shown; after the
    build its body goes to the prediction's answers file (reveal_segments)."""
    slug = re.sub(r"\W+", "-", key)
    segment = Page(f"{page.name}{SEGMENT}{slug}", page.folder,
                   front=f"---\norphan: true\n---\n# {SEGMENT_TITLE}\n\n")
    page.segments.append((key, segment))
    return segment


def circuitsvis_views(markup, folder):
    """circuitsvis inlines its 1.3 MB bundle into every view: here each view keeps only
    its render call, and the bundle is written once to _static/ (named by its digest).
    Returns (markup, the bundles it needs, a description of each view)."""
    bundles, described = [], []

    def one(match):
        bundle = match.group(3).strip().encode()
        rel = f"_static/circuitsvis-{hashlib.sha256(bundle).hexdigest()[:12]}.js"
        if not (folder / rel).exists():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(bundle)
        bundles.append(rel)
        described.append(view_description(match.group(5)))
        return (f'<div id="{match.group(1)}" {match.group(2)}></div>\n'
                f"<script>{match.group(4).strip()}</script>")

    return VIEW.sub(one, markup), bundles, described


def view_description(args):
    """A circuitsvis view in words, from its render call's arguments: the view, its
    patterns' names and its tokens."""
    kind = re.match(r'\s*"[^"]*",\s*CircuitsVis\.(\w+)', args)
    kind = re.sub(r"(?<!^)([A-Z])", r" \1", kind.group(1)).lower() if kind else "attention"
    try:
        props = json.loads(args[args.index("{"):args.rindex("}") + 1])
    except ValueError:
        props = {}
    names, tokens = props.get("attentionHeadNames") or [], props.get("tokens") or []
    text = f"Interactive {kind} view (circuitsvis)"
    if names:
        text += f" of {len(names)} attention pattern{'s' * (len(names) > 1)}: " + "; ".join(map(str, names))
    if tokens:
        text += f"; {len(tokens)} tokens, {tokens[0]} to {tokens[-1]}"
    text += ". Each row is a query position, each column the key it attends to."
    return text + where_attention_goes(props.get("attention"), names)


def where_attention_goes(attention, names):
    """What a view shows, in numbers: per pattern, the average weight (over query positions
    after the first) on the first token, on the query's own token and on the one before."""
    try:
        said = []
        for n, pattern in enumerate(attention or []):
            rows = [(q, row) for q, row in enumerate(pattern) if q > 0]
            first = sum(row[0] for _, row in rows) / len(rows)
            own = sum(row[q] for q, row in rows) / len(rows)
            previous = sum(row[q - 1] for q, row in rows if q > 1) / max(len(rows) - 1, 1)
            name = str(names[n]) if n < len(names) else f"pattern {n + 1}"
            said.append(f"{name}: {first:.0%} on the first token, {own:.0%} on its own, "
                        f"{previous:.0%} on the one before")
    except (TypeError, IndexError, ZeroDivisionError):
        return ""
    return (" Average attention per query: " + "; ".join(said) + ".") if said else ""


def outputs_html(outputs, alt, folder):
    """A code cell's outputs as static HTML, and the circuitsvis bundles it needs. An image's
    alt text is the figure's own description (nopos.vis.describe, kept in the output's
    metadata by the site's run), `alt` where there is none; widgets give their text form."""
    parts, bundles = [], []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(f"<pre class='nopos-output'>{html.escape(out.get('text', ''))}</pre>")
            continue
        data = out.get("data", {})
        if "image/png" in data:
            meta = out.get("metadata", {})
            said = meta.get("alt") or (meta.get("image/png") or {}).get("alt") or alt
            parts.append(f"<img class='nopos-figure' alt='{html.escape(said, quote=True)}' "
                         f"src='data:image/png;base64,{data['image/png'].strip()}'>")
        elif "text/html" in data:
            markup = NO_PREDICTION.sub("", data["text/html"])
            markup, needed, described = circuitsvis_views(markup, folder)
            bundles += needed
            # an attention view is a figure too: site.js names it (and hides its canvases)
            view = (f" data-alt='{html.escape(' '.join(described), quote=True)}'"
                    if "nopos-circuitsvis" in markup else "")
            parts.append(f"<div class='nopos-html-output'{view}>{markup}</div>")
        elif "text/plain" in data and "application/vnd.jupyter.widget-view+json" not in data:
            parts.append(f"<pre class='nopos-output'>{html.escape(data['text/plain'])}</pre>")
    return "\n".join(parts), sorted(set(bundles))


def question_form(q):
    """A prediction as a keyboard-only form. Its answer is not in the page: site.js loads
    the chapter's answers file once the reader commits."""
    from nopos.predict import confidence_levels  # the notebooks' levels, the same here

    key = str(q.get("key"))
    slug = re.sub(r"\W+", "-", key)
    kind = q.get("kind", "choice")
    tolerance = q.get("tolerance") if isinstance(q.get("tolerance"), (int, float)) else (
        0.1 if kind == "number" else None)
    unit = str(q.get("unit") or "")
    options = [str(o) for o in q.get("options") or []] if kind == "choice" else []
    data = {"key": key, "text": str(q.get("text", "")), "kind": kind, "tolerance": tolerance,
            "unit": unit, "options": options}
    e = html.escape
    parts = [f"<form class='nopos-predict' id='predict-{slug}' aria-labelledby='q-{slug}' "
             f"data-question='{e(json.dumps(data), quote=True)}' novalidate>",
             f"<p class='nopos-q' id='q-{slug}'><b>Predict:</b> {e(data['text'])}</p>"]
    if kind == "choice":
        parts.append("<fieldset><legend>Your answer</legend>")
        parts += [f"<label class='nopos-option'><input type='radio' name='{slug}-choice' "
                  f"value='{e(o, quote=True)}'> {e(o)}</label>" for o in options]
        parts.append("</fieldset><fieldset class='nopos-sure'><legend>How sure? The chance "
                     "your pick is right</legend>")
        levels = confidence_levels(len(options))
        default = 0.5 if 0.5 in levels else levels[0]
        parts += [f"<label><input type='radio' name='{slug}-sure' value='{p}'"
                  f"{' checked' if p == default else ''}> {p:.0%}</label>" for p in levels]
        parts.append("</fieldset>")
    else:
        unit_text = f" ({e(unit)})" if unit else ""
        # text, not type=number: Chromium's number box reads "6,5" as 65; site.js parses it
        box = "type='text' inputmode='decimal' autocomplete='off' spellcheck='false'"
        parts += [f"<p><label>Best guess{unit_text} <input {box} name='guess'></label></p>",
                  f"<p class='nopos-range'><label>80% sure it is between <input {box} name='low'>"
                  f"</label> <label>and <input {box} name='high'></label>{e(unit)}</p>",
                  f"<p class='nopos-small'>A hit is within &plusmn;{tolerance:.0%} of the result. "
                  f"The range follows your guess until you change it. A decimal comma is "
                  f"fine (6,5 is 6.5); no thousands separators.</p>"]
    parts += ["<p><button type='submit'>Commit prediction</button></p>",
              "<p class='nopos-status' role='status' aria-live='polite'></p>", "</form>"]
    return "\n".join(parts)


def answer_block(page, q, code, outputs, answer):
    """A prediction's answer (its result, figures and code), where the reveal cell is: in the
    prediction's segment, so in its answers file, never in the page."""
    key = str(q.get("key"))
    slug = re.sub(r"\W+", "-", key)
    if answer is not None or outputs:
        body, bundles = outputs_html(outputs, f"Figure revealed with the answer to: {q.get('text', '')}",
                                     page.folder)
    else:
        body, bundles = ("<p>This copy of the site was built without running the chapter: run the "
                         "notebook to see the result (the launch buttons above open it).</p>"), []
    page.actual[key] = None if answer is None else answer.get("actual")
    label = html.escape(f"The answer to: {q.get('text', '')}", quote=True)
    return (f"<section class='nopos-answer' id='answer-{slug}' data-key='{html.escape(key, quote=True)}' "
            f"aria-label='{label}'>\n"
            f"<p class='nopos-answer-title' tabindex='-1'><b>The answer</b></p>\n"
            f"<p class='nopos-verdict'></p>\n"
            + "".join(f"<script src='{b}'></script>" for b in bundles) +
            f"{body}\n<details><summary>The code that computes it</summary>"
            f"<pre><code>{html.escape(code)}</code></pre></details>\n</section>")


def segment_slot(page, key):
    """Where a prediction's segment goes once it is committed: empty in the page."""
    slug = re.sub(r"\W+", "-", key)
    e = html.escape
    return (f"<div class='nopos-segment' id='after-{slug}' data-key='{e(key, quote=True)}' "
            f"data-answers='{ANSWERS.format(name=page.name, slug=slug)}'></div>\n"
            f"<noscript><p class='nopos-noscript'><b>The rest of this chapter appears once you "
            f"commit this prediction</b>, which needs JavaScript (it stays in your browser). "
            f"Without it, read on in the notebook: the launch buttons at the top open it.</p></noscript>")


def chapter_page(master, folder, run, cache=CACHE):
    """A chapter as a page and, after each prediction, a segment document (progressive
    disclosure): what follows a prediction's form, up to the next form or the chapter's end
    (the answer, the prose that discusses it, later outputs and headings), is revealed only
    by committing that prediction. The next form sits inside the segment, so a chapter
    unfolds one commitment at a time. Rejected: hiding only the reveal cell; the prose after
    it states the answer (in the page, its table of contents and the search index)."""
    meta, cells = parse_master(master)
    cid = meta.get("id") or Path(master).stem
    nb = solution_notebook(meta, cells)
    answers = {}
    if run:
        nb, answers = run_chapter(master, nb, cache)
    # solution_notebook keeps every master cell in order, with the two Colab cells after the first
    executed = [nb.cells[0]] + nb.cells[3:]
    assert len(executed) == len(cells), f"{cid}: cells do not line up"
    page = Page(cid, folder)
    out = page  # where the cells go: the page, then each prediction's segment
    asked, heading = {}, meta.get("title", cid)
    for n, (cell, done) in enumerate(zip(cells, executed)):
        attrs = cell["attrs"]
        if attrs.get("solutions-only"):
            continue
        if cell["type"] == "markdown":
            if attrs.get("task"):
                out.md(":::{admonition} Your written answer\nWrite it in the notebook's answer "
                       "cell; a person grades it (in formgrader).\n:::")
                continue
            out.md(cell["source"])
            headings = re.findall(r"^#{1,3} (.+)$", cell["source"], re.M)
            heading = headings[-1] if headings else heading
            if n == 0:
                out.raw(launch_bar(cid))
            continue
        source = cell_source(cell)
        outputs = done.get("outputs", []) if run else []
        questions, reveals = questions_in(source), reveals_in(source)
        for var, q in questions:  # the asking code is the notebook's business: the form instead
            asked[var] = q
            out.raw(question_form(q) + "\n" + segment_slot(page, str(q.get("key"))))
            out = segment_doc(page, str(q.get("key")))
        for var in reveals:
            q = asked.get(var) or {}
            out.raw(answer_block(page, q, source, outputs, answers.get(q.get("key")) if run else None))
        if questions or reveals:
            continue
        if attrs.get("solution"):
            out.md(f"**Exercise `{attrs.get('id')}`:** write it in the notebook.\n\n" + fence(stub(source)))
            continue
        if attrs.get("tests"):
            out.md(fence(strip_markers(source)))
            continue
        out.md(fence(source))
        if "scoreboard." in source:
            # the reference run's scoreboard lists every answer: a reader's own is on the
            # predictions page, drawn from what they committed
            out.md("*Your scoreboard: run this cell in the notebook, or see "
                   "[your predictions](predictions.md) for what you committed on this site.*")
            continue
        rendered, bundles = outputs_html(outputs, f"Figure: output of the code above ({heading})",
                                         page.folder)
        if rendered:
            out.raw("".join(f"<script src='{b}'></script>" for b in bundles) + rendered)
    page.write()
    for _, segment in page.segments:
        segment.write()
    return cid, meta.get("title", cid), [q.get("key") for q in asked.values()], page


def reveal_segments(out, chapters):
    """After Sphinx: each segment document's body becomes its prediction's answers file
    (nopos.answers(src, {key, actual, body})); its page and its place in the search index go."""
    dropped = []
    for cid, _, _, page in chapters:
        for key, segment in page.segments:
            rendered = Path(out) / f"{segment.name}.html"
            body = re.search(r'<article class="bd-article"[^>]*>(.*)</article>',
                             rendered.read_text(encoding="utf-8"), re.S).group(1)
            # the segment's stand-in title (and the section it opens) are not the chapter's
            body = re.sub(rf'<section id="{SEGMENT_TITLE}"[^>]*>\s*<h1>{SEGMENT_TITLE}.*?</h1>', "",
                          body, count=1, flags=re.S)
            body = body.strip()
            body = body[:-len("</section>")] if body.endswith("</section>") else body
            body = heading_levels(body, segment.front + "\n".join(segment.parts))
            src = ANSWERS.format(name=cid, slug=re.sub(r"\W+", "-", key))
            found = {"key": key, "actual": page.actual.get(key), "body": body.strip()}
            target = Path(out) / src
            target.parent.mkdir(parents=True, exist_ok=True)
            # a script, not JSON: fetch() of a local file is refused from file://
            target.write_text(f"nopos.answers({json.dumps(src)}, {json.dumps(found)});\n", encoding="utf-8")
            rendered.unlink()
            dropped.append(segment.name)
    drop_from_search(out, dropped)


def heading_levels(body, markdown):
    """A segment's headings at the master's levels: rendered alone, its first heading is
    its document's second level whatever the master says (### would become <h2>)."""
    prose = re.sub(r"^(`{3,}|~{3,}).*?^\1\s*$", "", markdown, flags=re.S | re.M)  # not in code
    levels = [len(m) for m in re.findall(r"^(#{1,6}) ", prose, re.M)][1:]  # the stand-in title
    found = re.findall(r"<h[1-6]>", body)
    if len(found) != len(levels):
        return body
    it, level = iter(levels), [0]

    def one(match):
        if not match.group(1):
            level[0] = next(it)
        return f"<{match.group(1)}h{level[0]}>"

    return re.sub(r"<(/?)h[1-6]>", one, body)


def drop_from_search(out, docnames):
    """Sphinx's search index without `docnames` (their words, titles and headings)."""
    path = Path(out) / "searchindex.js"
    text = path.read_text(encoding="utf-8")
    prefix, suffix = "Search.setIndex(", ")"
    index = json.loads(text.strip()[len(prefix):-len(suffix)])
    gone = {n for n, name in enumerate(index["docnames"]) if name in set(docnames)}
    keep = [n for n in range(len(index["docnames"])) if n not in gone]
    new = {old: i for i, old in enumerate(keep)}
    for field in ("docnames", "filenames", "titles"):
        index[field] = [index[field][n] for n in keep]

    def remap(value):  # a doc number, or a list of them (terms), or [doc, anchor] pairs
        if isinstance(value, int):
            return new.get(value)
        out_ = []
        for item in value:
            if isinstance(item, list):
                if item and item[0] in new:
                    out_.append([new[item[0]], *item[1:]])
            elif item in new:
                out_.append(new[item])
        return out_

    for field in ("terms", "titleterms"):
        kept = {}
        for word, docs in index[field].items():
            docs = remap(docs)
            if docs not in (None, []):
                kept[word] = docs
        index[field] = kept
    for field in ("alltitles", "indexentries"):
        index[field] = {name: pairs for name, pairs in
                        ((name, remap(pairs)) for name, pairs in index.get(field, {}).items()) if pairs}
    assert not index.get("objects"), "the site documents no code objects"
    path.write_text(prefix + json.dumps(index, separators=(",", ":")) + suffix, encoding="utf-8")


def launch_bar(cid):
    links = "".join(f"<li><a class='nopos-launch' href='{html.escape(url, quote=True)}'>{html.escape(label)}</a>"
                    f" <span class='nopos-small'>{html.escape(note)}</span></li>"
                    for label, url, note in launch_links(cid))
    if not hub_address():
        links += ("<li><span class='nopos-small'>On a class JupyterHub? Your instructor sets its "
                  "address once (README.md, <code>**JupyterHub:**</code>) and this page gets a "
                  "button for it.</span></li>")
    return (f"<nav class='nopos-launch-bar' aria-label='Open this chapter as a notebook'>"
            f"<p><b>Run this chapter:</b></p><ul>{links}</ul>"
            f"<p class='nopos-small'>Your predictions on this page stay in this browser: "
            f"<button type='button' class='nopos-download'>Download my predictions "
            f"(predictions.jsonl)</button> for <code>make scoreboard</code>.</p></nav>")


# ---------------------------------------------------------------- the other pages
DOORS = [
    ("Learn alone", "docs/learn", "Six chapters, about six hours. Read here, predict "
     "before each reveal, then run the notebooks on your laptop, Colab or Binder."),
    ("Run a reading group", "docs/facilitator/README", "A facilitator's guide per chapter: "
     "timings, where to pause and predict together, slides that work offline."),
    ("Teach a class", "docs/teach", "nbgrader with hidden tests on a JupyterHub: release, "
     "collect, autograde, feedback (and the grading guide)."),
    ("Author", "docs/authoring", "One Markdown master per chapter builds the notebooks, the slides "
     "and this site."),
]


def home_page(folder, chapters):
    repo, branch = repository()
    doors = "".join(f"<li class='nopos-door'><a href='{path}.html'><b>{html.escape(title)}</b></a>"
                    f"<p>{html.escape(text)}</p></li>" for title, path, text in DOORS)
    chapter_list = "\n".join(f"- [{title}]({cid}.md)" for cid, title, _, _ in chapters)
    page = Page("index", folder)
    page.md("# Position without positional embeddings\n\n"
            "A course that recreates one piece of interpretability research: a tiny "
            "transformer with **no positional embeddings**, trained to predict the previous "
            "token, works out where each token sits through causal attention. You build the "
            "dataset, find out why the original's loss spikes, train, and find the circuit.")
    page.raw(f"<nav aria-label='Four ways in'><ul class='nopos-doors'>{doors}</ul></nav>")
    page.md(f"## The chapters\n\n{chapter_list}\n\n"
            f"Each chapter page has its text, exercises (the stubs you fill in), hints, and "
            f"its predictions as forms: commit a guess and the answer appears. "
            f"[Your predictions](predictions.md) can be downloaded for `make scoreboard`. "
            f"The notebooks live in the repository: <https://github.com/{repo}> (branch `{branch}`).")
    page.md("```{toctree}\n:hidden:\n:caption: Chapters\n\n" +
            "\n".join(cid for cid, _, _, _ in chapters) + "\npredictions\n```\n"
            "```{toctree}\n:hidden:\n:caption: Guides\n\ndocs/learn\ndocs/self-study\ndocs/facilitator/README\n"
            "docs/teach\ndocs/hub\ndocs/grading\ndocs/grading-at-scale\ndocs/authoring\ndocs/mutants\n```")
    page.write()


def predictions_page(folder):
    page = Page("predictions", folder)
    page.md("# Your predictions\n\nEvery prediction you commit on a chapter page is kept in "
            "this browser (nothing is sent anywhere). Download them as `predictions.jsonl`, "
            "the log the notebooks write, and read them with the scoreboard:\n\n"
            "```bash\n# on its own:\n"
            ".venv/bin/python -m nopos.learner.scoreboard --log ~/Downloads/predictions.jsonl\n"
            "# or added to your log, with what the notebooks logged (each question's first "
            "commit, by time, counts; a record added twice counts once):\ncat ~/Downloads/predictions.jsonl >> ~/.nopos/predictions.jsonl\n"
            "make scoreboard\n```")
    page.raw("<p><span class='nopos-count' role='status'></span></p>"
             "<p><button type='button' class='nopos-download'>Download my predictions "
             "(predictions.jsonl)</button> <button type='button' class='nopos-clear'>Forget "
             "my predictions on this site&hellip;</button></p>"
             "<dialog class='nopos-forget' aria-labelledby='nopos-forget-title' "
             "aria-describedby='nopos-forget-text'><p id='nopos-forget-title'><b>Forget your "
             "predictions?</b></p><p id='nopos-forget-text'>This deletes the <span "
             "class='nopos-forget-count'></span> kept in this browser; it cannot be undone. "
             "Download them first to keep a copy.</p><p><button type='button' class='nopos-keep'>"
             "Keep them</button> <button type='button' class='nopos-forget-yes'>Forget them"
             "</button></p></dialog>")
    page.write()


def copy_docs(folder):
    """The guides. The facilitator's per-chapter guides give every prediction's answer, so
    the public site (and its search index) has none of them: its facilitator page points
    to them in the repository, where a facilitator reads them before the session."""
    for path in DOCS:
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, target)
    repo, branch = repository()
    guides = f"https://github.com/{repo}/blob/{branch}/docs/facilitator/"
    kit = (ROOT / FACILITATOR).read_text(encoding="utf-8")
    kit = re.sub(r"\]\((0\d_\w+\.md)\)", lambda m: f"]({guides}{m.group(1)})", kit)
    kit = kit.replace("One guide per chapter:", "One guide per chapter, in the repository (each "
                      "gives the chapter's answers, so they are not on this site: read them "
                      "before the session, not in front of the group):", 1)
    (folder / FACILITATOR).parent.mkdir(parents=True, exist_ok=True)
    (folder / FACILITATOR).write_text(kit, encoding="utf-8")


CONF = '''\
# generated by tools/build_site.py
project = {project!r}
author = "the course's authors"
extensions = ["myst_parser"]
myst_enable_extensions = ["colon_fence"]
html_theme = "sphinx_book_theme"
html_title = {project!r}
html_static_path = ["_static"]
templates_path = ["_templates"]
html_css_files = ["nopos-site.css"]
html_js_files = ["nopos-site.js"]
html_copy_source = False
html_show_search_summary = False  # summaries fetch() each result page: refused from file://
html_use_index = False          # no index entries: an empty genindex page is noise
html_show_sourcelink = False
html_last_updated_fmt = None
html_context = {{"default_mode": "light"}}  # the colours of nopos-site.css are checked on light
suppress_warnings = ["myst.xref_missing", "myst.header", "misc.highlighting_failure",
                     "toc.not_included", "myst.directive_unknown"]
html_theme_options = {{
    "repository_url": {repo_url!r},
    "repository_branch": {branch!r},
    "use_repository_button": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
}}
'''


def build(out=OUT, run=True, only=None, cache=CACHE):
    """Write the site into `out`; returns its pages' names."""
    from sphinx.cmd.build import build_main

    prefixes = tuple(p.strip() for p in only.split(",") if p.strip()) if only else ()
    if prefixes and not any(m.stem.startswith(prefixes) for m in masters()):
        raise SystemExit(f"--execute {only!r} names no chapter: give the start of a chapter's id, "
                         f"or several with commas (e.g. 02,05)")
    src = Path(tempfile.mkdtemp(prefix="nopos-site-src-"))
    try:
        shutil.copytree(STATIC, src / "_static")
        chapters = [chapter_page(m, src, run and (not prefixes or m.stem.startswith(prefixes)), cache)
                    for m in masters()]
        home_page(src, chapters)
        predictions_page(src)
        copy_docs(src)
        shutil.copytree(TEMPLATES, src / "_templates")
        repo, branch = repository()
        (src / "conf.py").write_text(CONF.format(project="Position without positional embeddings",
                                                 repo_url=f"https://github.com/{repo}",
                                                 branch=branch), encoding="utf-8")
        if Path(out).exists():
            shutil.rmtree(out)
        code = build_main(["-q", "-b", "html", "-j", "1", "-d", str(src / ".doctrees"),
                           str(src), str(out)])
        if code:
            raise SystemExit(f"sphinx failed ({code})")
        reveal_segments(out, chapters)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    # Sphinx's build records, and the themes' Jinja macros that land among the static files
    for junk in (".buildinfo", ".doctrees", "objects.inv", "_static/webpack-macros.html",
                 "_static/sbt-webpack-macros.html"):
        path = Path(out) / junk
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    for source_map in Path(out).glob("_static/**/*.map"):  # the theme's, for its developers (4 MB)
        source_map.unlink()
    problems = [p for page in pages(out) for p in loaded_problems(page)]
    if problems:
        raise SystemExit("the site is not offline:\n  " + "\n  ".join(problems[:20]))
    return pages(out)


def loaded_problems(page):
    """What `page` makes a browser load (scripts, styles, images, fonts) that is remote or
    missing; links a reader may follow (<a href>: Colab, GitHub) load nothing."""
    return offline_problems(page, links=False)


def pages(out=OUT):
    return sorted(Path(out).rglob("*.html"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-execute", action="store_true", help="no outputs, no answers")
    parser.add_argument("--execute", metavar="CHAPTERS",
                        help="run only the chapters whose id starts so (several: 02,05)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--cache", default=str(CACHE), help="where chapter runs are kept")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    built = build(Path(args.out), run=not args.no_execute, only=args.execute, cache=args.cache)
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file())
    print(f"{len(built)} pages, {size / 1e6:.1f} MB in {args.out} "
          f"({time.perf_counter() - start:.0f} s); open {args.out}/index.html, no network needed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
