"""Presenter mode: slides build from the chapter masters and need no network at all."""
import re

import pytest

from conftest import ROOT, chapters
from tools import build_slides

URL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.I)
NAMESPACE = re.compile(r"https?://www\.w3\.org/[\w/.-]*")  # xmlns: an identifier, never loaded


def external_urls(text):
    return URL.findall(NAMESPACE.sub("", text))


@pytest.fixture(scope="module")
def chapter1(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    return build_slides.build_chapter(ROOT / "chapters" / "01_dataset.md", out, run=True)


@pytest.mark.slow
def test_chapter1_slides_are_fully_offline(chapter1):
    page = chapter1.read_text(encoding="utf-8")
    assert chapter1.name == "01_dataset.slides.html"
    assert build_slides.offline_problems(chapter1) == []
    assert external_urls(page) == [], "no URL of any kind, not even a link in prose"
    for asset in ("vendor/reveal.js/dist/reveal.js", "vendor/reveal.js/dist/reveal.css",
                  "vendor/reveal.js/dist/theme/white.css", "vendor/reveal.js/plugin/notes/notes.js",
                  "vendor/requirejs/require.js", "vendor/jquery/jquery.min.js"):
        assert asset in page
        assert (chapter1.parent / asset).is_file()


@pytest.mark.slow
def test_chapter1_slides_step_through_prediction_pause_reveal(chapter1):
    page = chapter1.read_text(encoding="utf-8")
    master = (ROOT / "chapters" / "01_dataset.md").read_text()
    asks = master.count("predict.ask(")
    assert page.count("Stop and predict") == asks == 2
    assert page.count("nopos-pause") >= asks and page.count(">Reveal<") == asks
    # the question comes before its pause, which comes before its reveal and the result
    q = page.index("What will its loss be")
    assert q < page.index("nopos-pause", q) < page.index(">Reveal<", q) < page.index("Result:", q)
    assert "<b>B.</b> about 2% (1 in 50)" in page  # choice options are on the question slide
    assert "no prediction" not in page             # nobody committed in the kernel: not shown
    assert 'class="fragment"' in page
    assert "check_make_batch" not in page          # check cells are for learners, skipped
    assert "navigationMode: 'linear'" in page      # space and arrows reach every step


@pytest.mark.parametrize("aid", chapters())
def test_every_chapter_builds_offline_without_running(aid, tmp_path):
    target = build_slides.build_chapter(ROOT / "chapters" / f"{aid}.md", tmp_path, run=False)
    page = target.read_text(encoding="utf-8")
    assert build_slides.offline_problems(target) == []
    assert not [u for u in external_urls(page)
                if not re.search(r"<a [^>]*href=[\"']" + re.escape(u), page)], \
        "asset URLs (scripts, styles, images) must be local"
    master = (ROOT / "chapters" / f"{aid}.md").read_text()
    assert page.count("Stop and predict") == len(re.findall(r"predict\.ask\(", master))


def test_offline_checker_catches_cdn_and_missing_files(tmp_path):
    css = tmp_path / "a.css"
    css.write_text("@import url(https://fonts.example.com/x.css);\n"
                   "b { background: url('gone.png') }\nc { background: url(data:image/png;base64,AA) }")
    page = tmp_path / "p.html"
    page.write_text('<link href="a.css" rel="stylesheet"><script src="//cdn.example.com/r.js">'
                    '</script><img src="here.png"><a href="#top">top</a>\n'
                    '<script>require({waitSeconds: 15}, ["https://unpkg.com/reveal.js/dist/reveal.js",'
                    ' "local.js"], function(){});</script>')
    (tmp_path / "here.png").write_bytes(b"")
    problems = "\n".join(build_slides.offline_problems(page))
    for needle in ("//cdn.example.com/r.js", "https://unpkg.com/reveal.js", "missing local file local.js",
                   "https://fonts.example.com/x.css", "missing local file gone.png"):
        assert needle in problems
    assert "here.png" not in problems and "#top" not in problems and "data:" not in problems


def test_vendor_folder_is_small_licensed_and_documented():
    files = [p for p in (ROOT / "vendor").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 5 * 2**20
    readme = (ROOT / "vendor" / "README.md").read_text()
    for needle in ("reveal.js", "4.6.1", "requirejs", "2.3.8", "jquery", "2.2.4", "MIT", "Open Font"):
        assert needle in readme
    assert (ROOT / "vendor/reveal.js/LICENSE").is_file()
    assert (ROOT / "vendor/jquery/LICENSE.txt").is_file()
    assert "MIT" in (ROOT / "vendor/requirejs/require.js").read_text()[:400]


def test_slide_cut_is_computed_from_content():
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_markdown_cell("## Section"),
        nbformat.v4.new_markdown_cell("### Exercise"),
        nbformat.v4.new_code_cell("from nopos.checks.ch01 import check_x\n\ncheck_x(x)"),
        nbformat.v4.new_code_cell('q = predict.ask("ch9.k", "How *many*?", kind="number", unit="s")'),
        nbformat.v4.new_code_cell("y = 1\npredict.reveal(q, y)"),
        nbformat.v4.new_code_cell("z = 2"),
    ])
    cut = build_slides.slide_cells(nb)
    kinds = [(c.cell_type, c.metadata["slideshow"]["slide_type"]) for c in cut.cells]
    assert kinds == [("markdown", "slide"), ("markdown", "slide"), ("markdown", "subslide"),
                     ("code", "skip"),
                     ("markdown", "slide"), ("markdown", "fragment"), ("code", "skip"),
                     ("markdown", "subslide"), ("code", "fragment"), ("code", "-")]
    assert "<em>many</em>" in cut.cells[4].source and "______ s" in cut.cells[4].source
    assert "How <em>many</em>?" in cut.cells[7].source


def test_a_live_rooms_revealed_answers_follow_the_reveal():
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell('q = predict.ask("ch9.k", "Which?", options=["a", "b"])'),
        nbformat.v4.new_code_cell('predict.reveal(q, "b")'),
    ])
    agg = {"kind": "choice", "n": 3, "actual": "b", "counts": {"a": 1, "b": 2}, "right": 2,
           "tolerance": None, "calibration": {"n": 0}}
    cut = build_slides.slide_cells(nb, room={"ch9.k": agg})
    last = cut.cells[-1]
    assert last.metadata["slideshow"]["slide_type"] == "subslide"
    assert "How the room answered" in last.source and "2 of 3 (67%) chose the right" in last.source
    assert len(build_slides.slide_cells(nb).cells) == len(cut.cells) - 1
