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
_BLOCKS = re.compile(r"<(script|style|iframe|object|embed|template)\b.*?</\1\s*>", re.I | re.S)
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


def clean_html(html):
    """Learner HTML made inert: scripts, styles and frames gone with their content, event
    handlers and style attributes gone, links and images only if they load nothing remote."""
    import bleach

    return bleach.clean(_BLOCKS.sub("", str(html or "")), tags=_SAFE_TAGS, attributes=_attribute,
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
