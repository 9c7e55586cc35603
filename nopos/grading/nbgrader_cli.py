"""nbgrader's own command line, started about 1.5 s sooner: what this package runs
for every grading (`python -m nopos.grading.nbgrader_cli autograde ...`).

jsonschema imports `rfc3987_syntax` whenever it is installed (jupyter-events asks for
it), and that module builds a parser for IRIs as it is imported: 1.5 s of CPU at the
start of every nbgrader, a third of a chapter-1 grading's own. The notebook format's
schema has no IRI field, so nbgrader never uses it; here it is simply not imported
(jsonschema then has no IRI format check, which no notebook needs). An instructor's
own `nbgrader` is unchanged.
"""
import sys

sys.modules.setdefault("rfc3987_syntax", None)  # None: `import` raises ImportError, jsonschema goes on

from nbgrader.apps.nbgraderapp import main  # noqa: E402 - after the line above, by design

if __name__ == "__main__":
    sys.exit(main())
