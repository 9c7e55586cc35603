"""Pictures: circuitsvis attention views that work offline, and small matplotlib plots.

circuitsvis renders each view in two forms: a short one that loads its
JavaScript from a CDN, and a long one with the whole bundle inlined (about
1.3 MB). Its own display logic probes the internet to choose, so a notebook
saved online shows nothing when opened offline, exported to HTML, or read as
nbgrader feedback. `self_contained` always takes the inlined form; every
attention view in the course goes through it. Each view costs ~1.3 MB in a
saved notebook, so put several sequences and layers into one view.
"""
import html as _html

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML

with __import__("warnings").catch_warnings():
    __import__("warnings").simplefilter("ignore")
    import circuitsvis as cv


def self_contained(rendered):
    """A circuitsvis view as IPython HTML that needs no internet.

    Takes the local form (bundle inlined, never the CDN form) and wraps it in
    its own <div>: the local form opens with a self-closing <div/> that HTML
    does not close, so two views pasted into one page would otherwise nest
    and the second would vanish.
    """
    return HTML(f"<div class='nopos-circuitsvis'>{rendered.local_src}</div>")


def attention_heads(patterns, labels, names=None):
    """One interactive view of several attention patterns over the same positions.

    patterns: [n, query, key] (or a list of [query, key]); labels: one string
    per position; names: one per pattern ("seq 0 · layer 0", ...).
    """
    patterns = torch.stack(list(patterns)) if not isinstance(patterns, torch.Tensor) else patterns
    rendered = cv.attention.attention_heads(
        attention=patterns.detach().float().cpu(), tokens=[str(t) for t in labels],
        attention_head_names=list(names) if names is not None else None)
    return self_contained(rendered)


def attention_patterns(patterns, labels):
    """The compact grid view (circuitsvis' attention_patterns), self-contained."""
    patterns = torch.stack(list(patterns)) if not isinstance(patterns, torch.Tensor) else patterns
    rendered = cv.attention.attention_patterns(
        tokens=[str(t) for t in labels], attention=patterns.detach().float().cpu())
    return self_contained(rendered)


def caption(text):
    """A small caption under a view (plain HTML, survives export)."""
    return HTML(f"<div style='color:#555;font-size:90%'>{_html.escape(text)}</div>")


# ---------------------------------------------------------------- matplotlib
def describe(fig):
    """A figure in words, from what it is drawn with: per plot its kind, title, axes and
    series, and what it shows in numbers (each bar's height and the tallest; each line's
    first, last, lowest and highest value and which ends lowest; a heat map's range): the
    course website's alt text for it, which must carry the answer a revealed figure gives."""
    said = []
    for ax in fig.get_axes():
        if not ax.get_visible() or not (ax.lines or ax.patches or ax.images or ax.collections):
            continue
        kind = ("heat map" if ax.images else "bar chart" if len(ax.patches) > 1 else
                "scatter plot" if ax.collections and not ax.lines else "line chart")
        text = kind + (f" '{ax.get_title()}'" if ax.get_title() else "")
        axes = [f"{name}: {label}" for name, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel()))
                if label]
        if axes:
            text += " (" + "; ".join(axes) + ")"
        named = (type(ax.xaxis.get_major_locator()).__name__ == "FixedLocator"  # set_xticks(labels)
                 or type(ax.xaxis.get_major_formatter()).__name__ == "StrCategoryFormatter")
        heights = [p.get_height() for p in ax.patches if hasattr(p, "get_height")]
        if kind == "bar chart" and named:  # each bar's name (categorical ticks are set at draw)
            bars = [t.get_text() for t in ax.get_xticklabels()]
            if not any(bars):
                fig.canvas.draw()
                bars = [t.get_text() for t in ax.get_xticklabels()]
            bars = [b for b in bars if b]
            if bars and len(bars) == len(heights):  # the data a reader needs: each bar's height
                pairs = [f"{b} {_num(h)}" for b, h in zip(bars, heights)]
                top = max(range(len(heights)), key=lambda i: heights[i])
                text += (", bars: " + ", ".join(pairs[:12]) + (", ..." if len(pairs) > 12 else "")
                         + f"; tallest: {bars[top]}")
            elif bars:
                text += ", bars: " + ", ".join(bars[:12]) + (", ..." if len(bars) > 12 else "")
        elif kind == "bar chart" and heights:
            text += f", {len(heights)} bars from {_num(min(heights))} to {_num(max(heights))}"
        legend = ax.get_legend()
        if legend is not None:
            text += ", showing " + ", ".join(t.get_text() for t in legend.get_texts())
        if kind == "line chart":
            text += _lines_in_numbers(ax)
        elif kind == "heat map":
            values = ax.images[0].get_array()
            text += f", values from {_num(values.min())} to {_num(values.max())}"
        said.append(text)
    title = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    return ((title + ": " if title else "") + "; ".join(said) or "A figure") + "."


def _num(value):
    return f"{float(value):.3g}"


def _lines_in_numbers(ax, most=8):
    """Each drawn series in numbers (its first and last value, its lowest and highest and
    where), and which ends lowest when there are several: a loss curve's spike, a sweep's
    best run."""
    series = []
    for line in ax.lines:
        x, y = (list(map(float, v)) for v in line.get_data())
        if len(y) < 2:
            continue
        finite = [(a, b) for a, b in zip(x, y) if b == b and abs(b) != float("inf")]
        if not finite:
            continue
        name = line.get_label()
        series.append(("the line" if name.startswith("_") else name, finite))
    if not series:
        return ""
    parts = []
    for name, points in series[:most]:
        low, high = min(points, key=lambda p: p[1]), max(points, key=lambda p: p[1])
        parts.append(f"{name}: {_num(points[0][1])} at {_num(points[0][0])} to {_num(points[-1][1])} "
                     f"at {_num(points[-1][0])}, lowest {_num(low[1])} (at {_num(low[0])}), "
                     f"highest {_num(high[1])} (at {_num(high[0])})")
    text = ". " + "; ".join(parts)
    named = [(n, p) for n, p in series if n != "the line"]
    if len(named) > 1:
        best = min(named, key=lambda s: s[1][-1][1])
        text += f"; ends lowest: {best[0]}"
    return text


def describe_figures():
    """From now on in this kernel, every inline figure's output carries its description
    (`describe`) in its metadata as "alt": tools/build_site.py runs this first, so each
    figure on the site has its own alt text."""
    from matplotlib_inline import backend_inline

    original = backend_inline._fetch_figure_metadata
    if getattr(original, "describes", False):
        return

    def with_alt(fig):
        return {**(original(fig) or {}), "alt": describe(fig)}

    with_alt.describes = True
    backend_inline._fetch_figure_metadata = with_alt


def _show(fig):
    fig.tight_layout()
    plt.show()


def plot_bos_curve(weights, c=None):
    """BOS weight by query position, with the fitted c/(c+q) if c is given."""
    weights = torch.as_tensor(weights).detach().cpu()
    q = torch.arange(len(weights))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(q[1:], weights[1:], "o", ms=4, label="layer 0: attention to BOS")
    ax.plot(q[1:], 1 / (q[1:] + 1), ":", color="grey", label="uniform causal: 1/(q+1)")
    if c is not None:
        qq = torch.linspace(1, len(weights) - 1, 200)
        ax.plot(qq, c / (c + qq), "-", label=f"fit c/(c+q), c = {c:.2f}")
    ax.set_xlabel("query position q")
    ax.set_ylabel("weight on BOS")
    ax.legend()
    _show(fig)


def plot_offsets(kernel, title="layer 1, averaged over the batch"):
    """Mean attention by relative offset (0 = current token)."""
    kernel = torch.as_tensor(kernel).detach().cpu()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(len(kernel)), kernel)
    ax.set_xticks(range(len(kernel)),
                  ["current" if k == 0 else "prev" if k == 1 else f"-{k}" for k in range(len(kernel))])
    ax.set_ylabel("mean attention weight")
    ax.set_title(title)
    _show(fig)


def plot_neuron_profiles(profile, neurons, max_lines=12):
    """Mean activation by position of a few neurons (position 0, BOS, left out)."""
    profile = torch.as_tensor(profile).detach().cpu()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for n in list(neurons)[:max_lines]:
        ax.plot(range(1, profile.shape[0]), profile[1:, int(n)], label=f"neuron {int(n)}")
    ax.set_xlabel("position")
    ax.set_ylabel("mean activation (MLP0)")
    ax.legend(fontsize=7, ncol=2)
    _show(fig)


def plot_thresholds(falling, rising, n_ctx):
    """Histogram of switch positions of falling and rising position neurons."""
    fig, ax = plt.subplots(figsize=(6, 3))
    bins = range(1, n_ctx + 1)
    ax.hist([list(falling), list(rising)], bins=bins, stacked=True,
            label=[f"on→off ({len(falling)})", f"off→on ({len(rising)})"])
    ax.set_xlabel("threshold position")
    ax.set_ylabel("neurons")
    ax.legend()
    _show(fig)


def plot_bars(values, ylabel, title="", log=False):
    """A labelled bar chart of a {name: number} dict (ablation losses, R², DLA)."""
    names, numbers = list(values), [float(v) for v in values.values()]
    fig, ax = plt.subplots(figsize=(max(5, 0.55 * len(names)), 3.4))
    ax.bar(range(len(names)), numbers, color=["#c0392b" if v < 0 else "#2c7fb8" for v in numbers])
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    _show(fig)
