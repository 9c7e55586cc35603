"""circuitsvis views are self-contained: no CDN, the bundle inlined, one <div> each."""
import re
from pathlib import Path

import circuitsvis
import torch
from circuitsvis.utils.render import RenderedHTML

from nopos import vis

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|from\s+["']https?://|"""
                      r"""import\s*\(\s*["']https?://|unpkg\.com|jsdelivr""", re.IGNORECASE)


def _patterns(n=3, size=6):
    pattern = torch.tril(torch.ones(size, size))
    return (pattern / pattern.sum(-1, keepdim=True)).expand(n, size, size)


def test_views_have_no_external_url_and_inline_the_bundle():
    bundle_head = BUNDLE.read_text(encoding="utf-8")[:200]
    for view in (vis.attention_heads(_patterns(), [f"p{i}" for i in range(6)], names=["a", "b", "c"]),
                 vis.attention_patterns(_patterns(), [f"p{i}" for i in range(6)])):
        html = view.data
        assert not EXTERNAL.search(html), EXTERNAL.search(html).group(0)
        assert bundle_head in html, "the circuitsvis bundle must be inlined"
        assert len(html) > 1_000_000
        assert html.startswith("<div") and html.rstrip().endswith("</div>")


def test_the_local_form_is_chosen_without_asking_the_internet(monkeypatch):
    import circuitsvis.utils.render as render

    def no_probe():
        raise AssertionError("vis must not probe the internet")

    monkeypatch.setattr(render, "internet_on", no_probe)
    html = vis.self_contained(RenderedHTML(local_src="<p>LOCAL</p>", cdn_src="<p>CDN</p>")).data
    assert "LOCAL" in html and "CDN" not in html


def test_two_views_on_one_page_do_not_nest():
    one = vis.attention_heads(_patterns(1), list("abcdef")).data
    two = vis.attention_heads(_patterns(2), list("abcdef")).data
    page = one + two
    ids = re.findall(r'<div id="(circuits-vis-[^"]+)"', page)
    assert len(set(ids)) == 2
    # each view is closed by its own wrapper before the next begins
    assert page.count("<div class='nopos-circuitsvis'>") == 2
    assert one.rstrip().endswith("</div>")


def test_chapters_render_circuitsvis_only_through_nopos_vis():
    for master in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md")):
        text = master.read_text(encoding="utf-8")
        assert "import circuitsvis" not in text and "_repr_html_" not in text, master.name


def test_a_figure_is_described_by_what_it_draws(monkeypatch):
    """The site's alt text for a figure (nopos.vis.describe): its kind, axes and series and
    what it shows in numbers (the answer a revealed figure gives: the tallest bar, the
    run that ends lowest, a curve's lowest and highest point), not a sentence every
    figure shares."""
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    monkeypatch.setattr(plt, "show", lambda: None)
    vis.plot_bos_curve(torch.tensor([1.0, 0.8, 0.6, 0.5]), c=2.0)
    said = vis.describe(plt.gcf())
    assert said.startswith("line chart (x: query position q; y: weight on BOS), showing layer 0: "
                           "attention to BOS, uniform causal: 1/(q+1), fit c/(c+q), c = 2.00. "
                           "layer 0: attention to BOS: 0.8 at 1 to 0.5 at 3, lowest 0.5 (at 3), "
                           "highest 0.8 (at 1); "), said
    plt.close("all")
    vis.plot_offsets(torch.tensor([0.2, 0.5, 0.3]))  # the tallest is not the first bar
    assert vis.describe(plt.gcf()) == ("bar chart 'layer 1, averaged over the batch' "
                                       "(y: mean attention weight), bars: current 0.2, prev 0.5, "
                                       "-2 0.3; tallest: prev.")
    plt.close("all")
    # a sweep: which run ends lowest (not the one lowest at the start), and a spike's peak
    fig, ax = plt.subplots()
    ax.plot([0, 100, 200], [5.0, 3.0, 2.5], label="lr 1e-3")
    ax.plot([0, 100, 200], [6.0, 9.0, 1.5], label="lr 1e-2")
    ax.legend()
    said = vis.describe(fig)
    assert "lr 1e-2: 6 at 0 to 1.5 at 200, lowest 1.5 (at 200), highest 9 (at 100)" in said, said
    assert said.endswith("; ends lowest: lr 1e-2."), said
    plt.close("all")
    fig, ax = plt.subplots()
    ax.imshow([[0.0, 0.25], [0.5, 1.0]])
    assert vis.describe(fig) == "heat map, values from 0 to 1.", vis.describe(fig)
    plt.close("all")
