"""The course website (tools/build_site.py, `make site`) in headless Chromium, from file://.

The site is built once for this file, from the working tree into a scratch folder with
an empty run cache (as on a clean clone): every chapter's page, with chapter 4 run
for real (its outputs, answers and circuitsvis views; the other chapters' pages are
built without running them). Then every page is opened once from file://: each request
it makes, its console errors and axe-core's findings in the theme's light and dark
mode (vendor/axe-core, injected from disk; chapter pages with every answer loaded and
shown) are collected for the tests below; the other browser tests reuse its Chromium.

Cost: about 39 s of CPU for the whole file (measured with /usr/bin/time, empty run
cache: 34 s user + 5 s sys, the build's kernel and Chromium included), most of it the
chapter-4 run and the Sphinx build; the machine's load, not the work, makes its wall
time longer.
"""
import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, SCREENSHOTS, _missing

RUN = "04"  # the chapter run for real: predictions of both kinds, figures, circuitsvis
AXE = ROOT / "vendor" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
# preload: false: axe would re-read the style sheets by XHR, which file:// forbids
SHOW_ANSWERS = "nopos.showAll().then(() => true)"  # the answers file loaded, every answer shown
# the theme's dark mode, as its switcher sets it (the site is checked in both)
# (the theme fades its colours: axe would measure them half-way)
DARK = """const still = document.createElement('style');
still.textContent = '*, *::before, *::after { transition: none !important; }';
document.head.appendChild(still);
document.documentElement.dataset.theme = 'dark'; document.documentElement.dataset.mode = 'dark'"""
AXE_RUN = """async () => (await axe.run(document, {resultTypes: ['violations'], preload: false}))
    .violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length,
                           where: v.nodes.slice(0, 2).map(n => n.target.join(' '))}))"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    # NOPOS_SITE_CACHE: keep the chapter run between reruns (a developer's loop); CI starts empty
    cache = os.environ.get("NOPOS_SITE_CACHE") or tmp_path_factory.mktemp("site-cache")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "tools/build_site.py", "--execute", RUN, "--out", str(out),
                           "--cache", str(cache)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"site built in {time.perf_counter() - start:.0f} s: {proc.stdout.strip()}")
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-site")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1300, "height": 900}, accept_downloads=True)
        context.route(re.compile(r"^(?!file:|data:|blob:)"), lambda route: route.abort("internetdisconnected"))
        yield context
        context.close()


def open_page(browser, path):
    """A tab on `path` (file://) with its requests and console errors recorded."""
    page = browser.new_page()
    page.requests, page.errors = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
    page.on("pageerror", lambda exc: page.errors.append(f"pageerror: {exc}"))
    page.goto(path.as_uri(), wait_until="load")
    return page


@pytest.fixture(scope="module")
def visits(site, browser):
    """{page: (requests, console errors, axe violations in light and dark mode)} for every
    page of the site."""
    found = {}
    for path in sorted(site.rglob("*.html")):
        page = open_page(browser, path)
        page.wait_for_timeout(100)
        requests, errors = list(page.requests), list(page.errors)  # the page's own, before axe
        page.add_script_tag(path=str(AXE))
        if page.locator(".nopos-segment").count():  # checked as it looks with every segment shown
            page.evaluate(SHOW_ANSWERS)
            page.wait_for_timeout(300)
        violations = page.evaluate(AXE_RUN)
        page.evaluate(DARK)
        dark = [{**v, "id": f"{v['id']} (dark)"} for v in page.evaluate(AXE_RUN)]
        found[path.relative_to(site)] = (requests, errors + page.errors[len(errors):], violations + dark)
        page.close()
    # a search with a query: results (with no summaries: each would fetch() its page,
    # refused from file://) and no console error
    page = open_page(browser, site / "search.html")
    page.goto((site / "search.html").as_uri() + "?q=attention", wait_until="load")
    page.wait_for_function("document.querySelectorAll('#search-results li').length > 0", timeout=20_000)
    page.wait_for_timeout(300)
    found[Path("search.html?q=attention")] = (list(page.requests), list(page.errors), [])
    page.close()
    print("\naxe-core per page, light and dark mode (serious/critical, then all):")
    for name, (_, _, violations) in found.items():
        bad = [v for v in violations if v["impact"] in SERIOUS]
        print(f"  {str(name):40} {len(bad)} / {len(violations)}  "
              + ", ".join(f"{v['id']}({v['impact']})" for v in violations))
    return found


def test_site_has_every_page(site):
    names = {str(p.relative_to(site)) for p in site.rglob("*.html")}
    chapters = sorted(p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.md"))
    guides = [f"docs/{page}.html" for page in ("learn", "self-study", "teach", "hub", "grading",
                                               "authoring", "facilitator/README")]
    missing = {"index.html", "predictions.html", *guides,
               *(f"{c}.html" for c in chapters)} - names
    assert not missing, missing
    # the facilitator's chapter guides give the answers: not on the public site, nor in its search
    assert not [n for n in names if re.match(r"docs/facilitator/0", n)], names
    index = (site / "searchindex.js").read_text(encoding="utf-8")
    assert "facilitator/0" not in index and "docs/facilitator/README" in index
    home = (site / "index.html").read_text()
    for door in ("Learn alone", "Run a reading group", "Teach a class", "Author"):
        assert door in home
    for cid in chapters:  # launch buttons on every chapter
        text = (site / f"{cid}.html").read_text()
        assert "colab.research.google.com/github/" in text and f"course/{cid}/{cid}.ipynb" in text
        assert "mybinder.org/v2/gh/" in text


def test_every_page_loads_offline_with_no_console_error(site, visits):
    root = site.as_uri()
    problems = {str(name): ([u for u in requests if not u.startswith((root, "data:", "blob:"))], errors)
                for name, (requests, errors, _) in visits.items()}
    problems = {name: p for name, p in problems.items() if p[0] or p[1]}
    assert not problems, problems


def test_axe_core_finds_no_serious_violation(visits):
    bad = {str(name): [v for v in violations if v["impact"] in SERIOUS]
           for name, (_, _, violations) in visits.items()}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_circuitsvis_views_render_offline(site, browser):
    """Drawn from the one bundle the site ships (_static/), not one inlined per view."""
    page = open_page(browser, site / f"{chapter(RUN)}.html")
    page.evaluate(SHOW_ANSWERS)
    bundles = list(site.glob("_static/circuitsvis-*.js"))
    assert len(bundles) == 1, bundles
    big = {str(p.relative_to(site)): p.stat().st_size for p in [*site.rglob("*.html"),
           *site.glob("_static/answers/*/*.js")] if p.stat().st_size > 1_000_000}
    assert not big, f"a page or answers file carries a bundle of its own: {big}"
    widths = ("Array.from(document.querySelectorAll('.nopos-circuitsvis')).map(v => "
              "Math.max(0, ...Array.from(v.querySelectorAll('canvas')).map(c => c.clientWidth)))")
    try:  # every view drawn, its zoomed pattern included (React draws after the scripts ran)
        page.wait_for_function(f"(() => {{ const w = {widths}; return w.length && w.every(x => x > 100); }})()",
                               timeout=20_000)
    except Exception:
        pytest.fail(f"circuitsvis views not drawn: canvas widths {page.evaluate(widths)}")
    assert not page.errors, page.errors
    # each view says where its attention goes, in numbers (its text alternative)
    for alt in page.evaluate("Array.from(document.querySelectorAll('.nopos-html-output[data-alt]'))"
                             ".map(v => v.getAttribute('aria-label'))"):
        assert re.search(r"\d+% on the first token, \d+% on its own, \d+% on the one before", alt), alt
    page.close()


def chapter(prefix):
    return next(p.stem for p in (ROOT / "chapters").glob(f"{prefix}_*.md"))


def commit_by_keyboard(page, form):
    """Keyboard only: a choice's first option then arrow down; a number typed; then Enter."""
    if form.locator("input[name=guess]").count():
        form.locator("input[name=guess]").focus()
        page.keyboard.type("0.3")
        page.keyboard.press("Enter")
    else:
        form.locator("input[type=radio]").first.focus()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Tab")   # to the confidence row (50% stays chosen)
        form.locator("button").focus()
        page.keyboard.press("Enter")


def answers(site, cid):
    """{key: {key, actual, body}} of a chapter's answers files, one per prediction: its
    segment (everything from its form to the next form or the chapter's end)."""
    found = {}
    for path in sorted((site / "_static" / "answers" / cid).glob("*.js")):
        text = path.read_text(encoding="utf-8").strip()
        match = re.fullmatch(r'nopos\.answers\((".*?"), (.*)\);', text, re.S)
        assert match and json.loads(match.group(1)) == str(path.relative_to(site)), text[:200]
        one = json.loads(match.group(2))
        found[one["key"]] = one
    return found


def wait_for_verdict(page, slug):
    page.wait_for_function(f"document.querySelector('#answer-{slug} .nopos-verdict').textContent"
                           f".includes('Result:')", timeout=20_000)


def visible_text(page):
    return page.evaluate("document.querySelector('article.bd-article').innerText")


def toc(page):
    return page.evaluate("Array.from(document.querySelectorAll('nav.page-toc a')).map(a => a.textContent.trim())")


def test_a_chapter_unfolds_one_keyboard_commit_at_a_time(site, browser, tmp_path):
    """Before a commit the page ends at the form (its table of contents too); the commit
    brings the answer and what follows, up to the next form. A second tab of the same
    chapter is locked by the first tab's commit (the answer it showed cannot be committed)."""
    cid = chapter(RUN)
    segments = answers(site, cid)
    page = open_page(browser, site / f"{cid}.html")
    page.evaluate("localStorage.clear()")
    page.reload()
    other = open_page(browser, site / f"{cid}.html")
    assert page.locator("form.nopos-predict").count() == 1  # the rest is behind the first commit
    before = toc(page)
    committed, figured = [], False
    while True:
        open_forms = [f for f in page.locator("form.nopos-predict").all() if f.locator("button").is_enabled()]
        if not open_forms:
            break
        form = open_forms[0]
        slug = form.get_attribute("id").removeprefix("predict-")
        key = page.locator(f"#after-{slug}").get_attribute("data-key")
        assert page.evaluate(f"document.querySelector('#after-{slug}').children.length") == 0, key
        shown = visible_text(page)
        assert not [h for h in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", segments[key]["body"], re.S)
                    if html.unescape(re.sub(r"<[^>]+>", "", h)).strip() in shown.splitlines()], key
        commit_by_keyboard(page, form)
        page.wait_for_function(f"document.querySelector('#after-{slug}').children.length > 0", timeout=20_000)
        if page.locator(f"#answer-{slug}").count():
            wait_for_verdict(page, slug)
            assert page.locator(f"#answer-{slug}").is_visible()
            figure = page.locator(f"#answer-{slug}").locator("img, .nopos-circuitsvis")
            if figure.count():
                assert figure.first.is_visible()
                if not figured:
                    page.locator(f"#predict-{slug}").scroll_into_view_if_needed()
                    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(SCREENSHOTS / "site-committed-prediction.png"))
                figured = True
        committed.append(key)
        if len(committed) == 1:  # the other tab hears of it: locked, showing this commit
            other.wait_for_function(f"document.querySelector('#predict-{slug} button').disabled",
                                    timeout=20_000)  # as the commit's own wait: a loaded machine
            assert other.locator(f"#predict-{slug} .nopos-status").inner_text().startswith("Committed: ")
    assert figured and set(committed) == set(segments) and len(committed) >= 4, committed
    after = toc(page)
    assert len(after) > len(before) and set(before) <= set(after), (before, after)
    headings = page.evaluate("Array.from(document.querySelectorAll('article section[id] > h2, "
                             "article section[id] > h3')).length")
    assert len(after) == headings, (after, headings)
    other.close()
    # the commits outlive the page: reopened, every segment is back and the forms locked
    page.reload()
    for key in committed:
        slug = re.sub(r"\W+", "-", key)
        page.wait_for_function(f"document.querySelector('#after-{slug}') && "
                               f"document.querySelector('#after-{slug}').children.length > 0", timeout=20_000)
        assert page.locator(f"#predict-{slug} button").is_disabled()
    with page.expect_download() as got:
        page.locator(".nopos-launch-bar .nopos-download").click()
    log = tmp_path / "predictions.jsonl"
    got.value.save_as(log)
    assert not page.errors, page.errors
    page.close()

    from nopos.learner import scoreboard

    rows = {e.key: e for e in scoreboard.entries(scoreboard.read_log(log))}
    assert set(rows) == set(committed), rows
    for entry in rows.values():
        assert entry.prediction is not None and entry.actual is not None and entry.stated, entry
    report = subprocess.run([sys.executable, "-m", "nopos.learner.scoreboard", "--log", str(log)],
                            cwd=ROOT, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr


def _text_lines(site):
    """Every page's text (tags dropped, entities decoded), line by line, stripped."""
    out = {}
    for path in site.rglob("*.html"):
        text = re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8"))
        # (minified bundles, circuitsvis' and the theme's, are single lines of thousands of
        # characters: no line of a solution or a test is)
        out[str(path.relative_to(site))] = [html.unescape(l).strip() for l in text.splitlines()
                                            if len(l) < 2000]
    return out


def test_no_solution_or_hidden_test_anywhere_in_the_site(site):
    """The course/ no-leak rule (tests/test_hostile.py), applied to build/site/: no hidden
    test line, no two consecutive lines of a solution body, no solutions-only prose."""
    from tools.build_course import masters, parse_master, source_notebook

    files = _text_lines(site)
    every = "\n".join("\n".join(lines) for lines in files.values())
    notebooks = [(m, *parse_master(m)) for m in masters()]
    for master, _, _ in notebooks:  # (the author's page names the markers: it documents them)
        page = "\n".join(files[f"{master.stem}.html"])
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in page, (master.name, marker)
    pairs = {f: set(zip(lines, lines[1:])) for f, lines in files.items()}
    sets = {f: set(lines) for f, lines in files.items()}
    sources = [source_notebook(meta, cells) for _, meta, cells in notebooks]
    given = set()  # lines handed out anyway, outside every solution region
    for nb in sources:
        for cell in nb.cells:
            inside = False
            for line in cell.source.splitlines():
                inside = (inside or "BEGIN SOLUTION" in line) and "END SOLUTION" not in line
                if not inside:
                    given.add(line.strip())
    for (master, _, cells), nb in zip(notebooks, sources):
        for cell in nb.cells:
            if "### BEGIN HIDDEN TESTS" in cell.source:
                body = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
                for line in (l.strip() for l in body.splitlines() if len(l.strip()) > 20):
                    assert not [f for f, got in sets.items() if line in got], (master.name, line)
            for block in cell.source.split("### BEGIN SOLUTION")[1:]:
                lines = [l.strip() for l in block.split("### END SOLUTION")[0].splitlines()
                         if len(l.strip()) > 15 and not l.strip().startswith("#")]
                for pair in zip(lines, lines[1:]):
                    if not set(pair) <= given:
                        assert not [f for f, got in pairs.items() if pair in got], (master.name, pair)
        for cell in cells:  # solutions-only prose and the written answers' example texts
            if cell["attrs"].get("solutions-only") or cell["attrs"].get("task"):
                for line in (l.strip() for l in cell["source"].splitlines() if len(l.strip()) > 40):
                    assert line not in every, (master.name, line)


def _words(text):
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)).replace("`", "")).lower()


def _index(site):
    text = (site / "searchindex.js").read_text(encoding="utf-8").strip()
    return json.loads(text[len("Search.setIndex("):-1])


def test_no_chapter_page_carries_what_follows_a_prediction(site):
    """Each prediction's segment (its answer, the prose, outputs and headings up to the next
    form) lives only in its answers file, which a page loads once the reader commits: none
    of it is in a page's HTML, and the search index has no segment, no hidden heading."""
    from tools.build_site import SEGMENT

    index = _index(site)
    assert not [d for d in index["docnames"] if SEGMENT in d], index["docnames"]
    checked, chapters = 0, sorted(site.glob("[0-9][0-9]_*.html"))
    assert len(chapters) == len(list((ROOT / "chapters").glob("[0-9][0-9]_*.md")))
    for path in chapters:
        page = path.read_text(encoding="utf-8")
        text = {l.strip() for l in html.unescape(re.sub(r"<[^>]+>", "\n", page)).splitlines()}
        for form in re.findall(r"data-question='([^']*)'", page):
            assert "actual" not in json.loads(html.unescape(form)), (path.name, form)
        assert "nopos.answers(" not in page and not re.search(r"<script[^>]*_static/answers", page), path.name
        segments = answers(site, path.stem)
        assert segments, f"{path.name}: its predictions have segments"
        options = set(answers_options(page))  # a choice's result is one of its options
        for key, segment in segments.items():
            body = segment["body"]
            for image in re.findall(r"base64,([A-Za-z0-9+/=]{200})", body):
                assert image not in page, (path.name, key, "a figure")
            # (the next form's own wording, "How sure? ...", and the no-script note are the page's too)
            body = re.sub(r"<noscript>.*?</noscript>|<form.*?</form>", "", body, flags=re.S)
            for line in html.unescape(re.sub(r"<[^>]+>", "\n", body)).splitlines():
                line = line.strip()
                if len(line) > 30 and line not in options:  # result, explanation, prose, code
                    assert line not in text, (path.name, key, line)
                    checked += 1
            for heading in re.findall(r"<h[23][^>]*>(.*?)</h[23]>", body, re.S):
                title = html.unescape(re.sub(r"<[^>]+>", "", heading)).replace("#", "").strip()
                assert title not in index["alltitles"], (path.name, key, title)
    assert checked > 100, checked


def test_no_page_gives_a_prediction_away_before_its_commit(site, visits):
    """No giveaway (each ```prediction block's `giveaways`, as tests/test_no_spoilers.py uses)
    is in any page (chapter pages included), in the search index, or in any file a page
    loads before a commit. A chapter's page may state an earlier chapter's findings, which
    it builds on (chapter 3 trains with the learning rate chapter 2 finds), never its own
    or a later one's."""
    from tools.build_course import masters, parse_master

    phrases = {_words(p).strip(): (m.stem, key) for m in masters()
               for key, facts in parse_master(m)[0].get("predictions", {}).items()
               for p in facts["giveaways"]}
    assert phrases
    files = {path for path in site.rglob("*.html")} | {site / "searchindex.js"}
    for requests, _, _ in visits.values():
        files |= {Path(url.removeprefix("file://").split("?")[0]) for url in requests
                  if url.startswith("file://")}
    for path in sorted(files):
        if path.suffix not in (".html", ".js", ".css") or path.stat().st_size > 1_000_000:
            continue  # (minified bundles: the theme's, circuitsvis')
        text = _words(path.read_text(encoding="utf-8", errors="replace"))
        chapter_ = re.match(r"\d\d_\w+", path.name) and path.stem
        found = {key: p for p, (cid, key) in phrases.items() if p in text
                 and not (chapter_ and cid < chapter_)}
        assert not found, (str(path), found)
    loaded = " ".join(u for requests, _, _ in visits.values() for u in requests)
    assert "_static/answers/" not in loaded, "an answers file is loaded before a commit"


def test_every_committed_answer_gets_its_verdict(site, browser):
    """Where a question is asked before the previous one is revealed (chapter 5's patch and
    its control), the first one's answer sits in the second one's segment: once both are
    committed, and again after a reload, every answer on the page says what was predicted."""
    cid = chapter("05")
    page = open_page(browser, site / f"{cid}.html")
    page.evaluate("localStorage.clear()")
    page.reload()
    for visit in ("committing", "reloaded"):
        while visit == "committing":
            open_forms = [f for f in page.locator("form.nopos-predict").all() if f.locator("button").is_enabled()]
            if not open_forms:
                break
            slug = open_forms[0].get_attribute("id").removeprefix("predict-")
            commit_by_keyboard(page, open_forms[0])
            page.wait_for_function(f"document.querySelector('#after-{slug}').children.length > 0", timeout=20_000)
        if visit == "reloaded":
            page.reload()
        page.wait_for_function("Array.from(document.querySelectorAll('form.nopos-predict button'))"
                               ".every(b => b.disabled) && document.querySelectorAll('.nopos-answer').length "
                               "== document.querySelectorAll('form.nopos-predict').length", timeout=30_000)
        empty = page.evaluate("Array.from(document.querySelectorAll('.nopos-answer'))"
                              ".filter(a => !a.querySelector('.nopos-verdict').textContent.startsWith('Your prediction'))"
                              ".map(a => a.getAttribute('data-key'))")
        assert not empty, (visit, empty)
    assert not page.errors, page.errors
    page.close()


def answers_options(page):
    return [o for form in re.findall(r"data-question='([^']*)'", page)
            for o in json.loads(html.unescape(form)).get("options", [])]


def test_number_form_and_forgetting(site, browser):
    """A number as typed with a decimal comma, a range shown as it follows the guess, a
    clear message for what is not a number; forgetting asks first (keyboard only)."""
    page = open_page(browser, site / f"{chapter(RUN)}.html")
    page.evaluate("localStorage.clear()")
    page.reload()
    page.evaluate(SHOW_ANSWERS)  # (the forms inside segments too, none committed)
    form = page.locator("form.nopos-predict:has(input[name=guess])").first
    status = form.locator(".nopos-status")
    form.locator("input[name=guess]").focus()
    page.keyboard.type("1e999")  # overflow: Infinity, logged as null, is refused
    page.keyboard.press("Enter")
    assert "too large" in status.inner_text() and form.locator("button").is_enabled(), status.inner_text()
    assert form.locator("input[name=low]").input_value() == ""  # the range did not follow it
    form.locator("input[name=guess]").fill("")
    # "50%" is 50 where the question's unit is %, else the message says what to leave out
    assert page.evaluate("nopos.number('50 %', 'x', '%')") == {"value": 50}
    assert "Leave out the %" in page.evaluate("nopos.number('50%', 'x', '')")["error"]
    form.locator("input[name=guess]").focus()
    page.keyboard.type("6,5")
    low, high = (form.locator(f"input[name={n}]").input_value() for n in ("low", "high"))
    assert 0 < float(low) < 6.5 < float(high), (low, high)  # shown before the commit
    form.locator("input[name=low]").fill("1,234.5")
    page.keyboard.press("Enter")
    assert "not a number" in status.inner_text() and form.locator("button").is_enabled()
    form.locator("input[name=low]").fill("")
    form.locator("input[name=guess]").focus()
    page.keyboard.press("Enter")
    assert "both ends" in status.inner_text() and form.locator("button").is_enabled()
    form.locator("input[name=low]").fill("5")
    form.locator("input[name=guess]").focus()
    page.keyboard.press("Enter")
    assert status.inner_text().startswith("Committed: 6.5 "), status.inner_text()
    slug = form.get_attribute("id").removeprefix("predict-")
    wait_for_verdict(page, slug)

    page.goto((site / "predictions.html").as_uri())
    count = page.locator(".nopos-count").first
    assert count.inner_text().startswith("1 prediction ")
    dialog = page.locator("dialog.nopos-forget")
    page.locator(".nopos-clear").focus()
    page.keyboard.press("Enter")
    assert dialog.is_visible() and page.evaluate("document.activeElement.className") == "nopos-keep"
    page.keyboard.press("Escape")
    assert dialog.is_hidden() and count.inner_text().startswith("1 prediction ")
    page.keyboard.press("Enter")  # the focus is back on "Forget ..."
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Forget them"
    assert dialog.is_hidden() and count.inner_text().startswith("0 predictions ")
    assert not page.errors, page.errors
    page.close()


# ---------------------------------------------------------------- settings (no browser)
def test_no_page_lists_the_reference_runs_answers(site):
    """A chapter's last cell shows the learner's scoreboard; on the site the reference
    run's would list every answer before the reader commits one (the run chapter, 04)."""
    page = (site / "04_attention.html").read_text(encoding="utf-8")
    assert "revealed without a prediction" not in page and "Your predictions, chapter" not in page


def test_site_address_comes_from_one_setting():
    """README's `**Website:**` line: the README's links to the site and every notebook's
    header link (made by tools/build_course.py) use it."""
    from tools.build_course import website

    site_url = website()
    readme = (ROOT / "README.md").read_text()
    assert re.findall(r"\(https://[^)]*github\.io[^)]*\)", readme) == [f"({site_url})"]
    for nb in sorted((ROOT / "course").glob("*/*.ipynb")):
        assert f"{site_url}{nb.stem}.html" in nb.read_text(), f"{nb.name}: run make generate"


def test_hub_button_is_an_nbgitpuller_link_to_the_chapter(tmp_path, monkeypatch):
    from urllib.parse import parse_qs, urlparse

    from tools import build_course, build_site

    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text().replace(
        "**JupyterHub:** none", "**JupyterHub:** https://hub.example.edu/"))
    monkeypatch.setattr(build_site, "README", readme)
    monkeypatch.setattr(build_course, "README", readme)
    links = {label: url for label, url, _ in build_site.launch_links("04_attention")}
    hub = urlparse(links["Open on your course's JupyterHub"])
    assert (hub.netloc, hub.path) == ("hub.example.edu", "/hub/user-redirect/git-pull")
    query = {k: v[0] for k, v in parse_qs(hub.query).items()}
    repo, branch = build_course.repository()
    assert query == {"repo": f"https://github.com/{repo}", "branch": branch,
                     "urlpath": f"lab/tree/{repo.split('/')[1]}/course/04_attention/04_attention.ipynb"}
    readme.write_text((ROOT / "README.md").read_text().replace(
        "**JupyterHub:** none", "**JupyterHub:** hub.example.edu"))
    with pytest.raises(SystemExit, match="not a hub address: write it whole, e.g. https://"):
        build_site.launch_links("04_attention")
    # what the address bar shows once logged in: the links add /hub/... themselves
    for pasted, said in (("https://hub.example.edu/hub/login", "has a path: write only the hub's scheme "
                          "and host, https://hub.example.edu "),
                         ("https://hub.example.edu:8443/user/alice/lab", "https://hub.example.edu:8443 "),
                         ("https://hub.example.edu:99999", "the port must be a number from 1 to 65535"),
                         ("https://-", "not a hub address"), ("https://hub.example.edu:", "the port")):
        readme.write_text((ROOT / "README.md").read_text().replace(
            "**JupyterHub:** none", f"**JupyterHub:** {pasted}"))
        with pytest.raises(SystemExit, match=re.escape(said)):
            build_site.launch_links("04_attention")
    monkeypatch.setattr(build_site, "README", ROOT / "README.md")
    assert "Open on your course's JupyterHub" not in {l for l, _, _ in build_site.launch_links("04_attention")}
