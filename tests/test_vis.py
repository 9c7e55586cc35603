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
    """The site's alt text for a figure (nopos.vis.describe): its kind, axes and series,
    not a sentence every figure shares."""
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    monkeypatch.setattr(plt, "show", lambda: None)
    vis.plot_bos_curve(torch.tensor([1.0, 0.8, 0.6, 0.5]), c=2.0)
    said = vis.describe(plt.gcf())
    assert said == ("line chart (x: query position q; y: weight on BOS), showing layer 0: attention to "
                    "BOS, uniform causal: 1/(q+1), fit c/(c+q), c = 2.00."), said
    plt.close("all")
    vis.plot_offsets(torch.tensor([0.5, 0.3, 0.2]))
    assert vis.describe(plt.gcf()) == ("bar chart 'layer 1, averaged over the batch' "
                                       "(y: mean attention weight), bars: current, prev, -2.")
    plt.close("all")
