"""nbgrader add-ons the course's nbgrader_config.py switches on."""
import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class ScrubTestTracebacks(Preprocessor):
    """Feedback shows why a test failed, never the test's code.

    nbgrader's ClearHiddenTests empties hidden tests from the cell *source*,
    but a failing cell's traceback quotes the lines around the failure, hidden
    tests included. Keep only the exception's own message, which our checks
    write for the learner.
    """

    enabled = Bool(True)  # nbconvert's Preprocessor is off unless told otherwise

    def preprocess(self, nb, resources):
        _TAGS_LEFT[0] = NOTEBOOK_TAGS  # each notebook's page gets the whole budget
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


# ------------------------------------------------------------- feedback html
# Learner outputs and learner Markdown reach the feedback page, which the learner and
# the instructor open in a browser: no script, no style sheet, nothing loaded from
# elsewhere. The course's feedback template (autograder/templates/feedback_offline)
# passes every Markdown cell and every HTML output through `clean_html`.
# elements dropped with their content (an embed has none: bleach drops the tag itself)
_OPENERS = re.compile(r"<(script|style|iframe|object|template)\b", re.I)
_CLOSERS = {tag: re.compile(rf"</{tag}\s*>", re.I) for tag in ("script", "style", "iframe", "object",
                                                             "template")}
# every '<name' and '</name' counts, where it is (a '<' inside a tag's attribute hid the
# whole tag from a pattern that wanted its '>': review a31e): more, never fewer, than a parser
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}
# a start tag of one of these closes the nearest open one of its group, and what is open
# inside it (HTML's optional end tags: a list of <li> without </li> is not 150 deep)
_GROUPS = [{"li"}, {"p"}, {"dt", "dd"}, {"tr"}, {"td", "th"}, {"option"}, {"optgroup"},
           {"thead", "tbody", "tfoot"}, {"caption"}, {"colgroup"}, {"rb", "rt", "rp"}]
_SIBLINGS = {name: group for group in _GROUPS for name in group}
# bleach (html5lib) takes time in the square of the nesting depth (50,000 nested <div>: 73 s)
# and of some element counts (12,000 list items holding a <div>: 3.6 s), and the feedback of
# a whole class is one process: HTML larger, deeper or with more elements than these, or
# past its notebook's budget (reset for each notebook by ScrubTestTracebacks), is shown as
# text. The course's own chapters use fewer than 400 elements each.
MAX_HTML_KB, MAX_DEPTH, MAX_TAGS, NOTEBOOK_TAGS, SHOWN_KB = 512, 100, 2000, 40_000, 64
_TAGS_LEFT = [NOTEBOOK_TAGS]
_SAFE_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl",
              "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
              "ol", "p", "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup",
              "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
              "caption", "col", "colgroup", "figure", "figcaption", "mark"}


def _local(value):
    """A URL that loads nothing from elsewhere: a fragment, a relative path, inline data."""
    v = value.strip().lower()
    if v.startswith("//") or v.startswith("\\\\"):
        return False
    scheme = v.split(":", 1)[0] if ":" in v.split("/", 1)[0] else ""
    return scheme in ("", "data") and not (scheme == "data" and not v.startswith("data:image/"))


def _attribute(tag, name, value):
    if name in ("href", "src"):
        return _local(value)
    return name in ("alt", "title", "class", "colspan", "rowspan", "align", "id", "width",
                    "height", "open")


def _drop_blocks(html):
    """The text without script, style, frame ... elements and their content; an element
    left open runs to the end. One pass: each closer is looked for once, from its opener."""
    out, at = [], 0
    for opener in _OPENERS.finditer(html):
        if opener.start() < at:  # inside an element already dropped
            continue
        out.append(html[at:opener.start()])
        closer = _CLOSERS[opener[1].lower()].search(html, opener.end())
        at = closer.end() if closer else len(html)
        if not closer:
            break
    out.append(html[at:])
    return "".join(out)


def _too_large(html):
    """Why this HTML is not rendered (its size, its nesting), or None; read in one pass."""
    if len(html) > MAX_HTML_KB * 1024:
        return f"{len(html) // 1024} KB"
    # open elements as an HTML parser keeps them: "/>" closes only a void element, an end
    # tag closes the open element it names (and what is open inside it) or nothing
    open_, count = [], 0
    for tag in _TAG.finditer(html):
        name = tag[2].lower()
        count += not tag[1]
        if count > min(MAX_TAGS, _TAGS_LEFT[0]):
            return (f"more than {MAX_TAGS} elements" if count > MAX_TAGS else
                    f"past the {NOTEBOOK_TAGS} elements a notebook's page shows")
        if tag[1]:
            if name in open_:
                del open_[len(open_) - 1 - open_[::-1].index(name):]
        elif name not in _VOID:
            group = _SIBLINGS.get(name, ())
            for at in range(len(open_) - 1, -1, -1):  # depth <= MAX_DEPTH: bounded
                if open_[at] in group:
                    del open_[at:]
                    break
            open_.append(name)
            if len(open_) > MAX_DEPTH:
                return f"elements nested more than {MAX_DEPTH} deep"
    _TAGS_LEFT[0] -= count
    return None


def clean_html(html):
    """Learner HTML made inert: scripts, styles and frames gone with their content, event
    handlers and style attributes gone, links and images only if they load nothing remote.
    HTML too large or too deeply nested to clean in reasonable time is shown as text, cut."""
    import html as html_lib

    import bleach

    html = _drop_blocks(str(html or ""))
    why = _too_large(html)
    if why:
        shown = html_lib.escape(html[:SHOWN_KB * 1024])
        return (f"<p><em>This HTML ({why}) is shown as text, its first {SHOWN_KB} KB: "
                f"too large or too deeply nested to show safely.</em></p><pre>{shown}</pre>")
    return bleach.clean(html, tags=_SAFE_TAGS, attributes=_attribute,
                        protocols=["data", "http", "https"], strip=True, strip_comments=True)


def _markdown2html_clean():
    import jinja2

    @jinja2.pass_context
    def markdown2html_clean(context, source):
        """nbgrader's feedback template renders Markdown cells without asking whether to
        sanitise: this filter, configured in place of nbconvert's, always does."""
        from nbconvert.filters.markdown_mistune import markdown2html_mistune

        return clean_html(markdown2html_mistune(source))

    return markdown2html_clean


markdown2html_clean = _markdown2html_clean()
