"""nbgrader configuration of the course. Run nbgrader commands from this folder:

    cd autograder
    nbgrader generate_assignment 01_dataset --force    # source/ -> release/
    nbgrader collect / autograde / generate_feedback / export

The notebooks in source/ are generated from chapters/*.md (make generate):
edit the masters, never these notebooks.
"""
import os

c = get_config()  # noqa: F821  (nbgrader provides get_config)

c.CourseDirectory.course_id = "nopos"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# Grading past one machine (docs/grading-at-scale.md): nbgrader's own commands and
# formgrader read the shared gradebook where NOPOS_GRADEBOOK_URL is set (its password
# from PGPASSWORD), as `make export-grades` does. The package's own nbgrader runs name
# their gradebook (nopos.grading.course.nbgrader hides this variable from them).
if os.environ.get("NOPOS_GRADEBOOK_URL"):
    c.CourseDirectory.db_url = os.environ["NOPOS_GRADEBOOK_URL"]

# Each cell gets this many seconds; training cells detect grading and stay short.
c.Execute.timeout = 120
# Learners' stray warnings must not land in test cells as stderr.
c.Execute.extra_arguments = ["--HistoryManager.enabled=False"]

# The release keeps a friendly stub where the solution was.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Feedback must never show hidden tests: nbgrader shows them by default, in the
# cell and in the traceback of a failing test.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nopos.grading.nbgrader_ext.ScrubTestTracebacks",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Feedback loads nothing from the internet: nbgrader's feedback template links
# MathJax from a CDN; templates/feedback_offline replaces that macro.
import nbgrader as _nbgrader  # noqa: E402
import nopos as _nopos  # noqa: E402  (the templates live with the course, wherever this file is copied)

c.HTMLExporter.template_name = "feedback_offline"
# ... and runs nothing a learner wrote (the page also opens in the instructor's browser):
# JavaScript and widget outputs dropped, Markdown and HTML cleaned of scripts, styles,
# event handlers and anything loaded from elsewhere (nopos.grading.nbgrader_ext.clean_html).
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"clean_html": "nopos.grading.nbgrader_ext.clean_html",
                          "markdown2html": "nopos.grading.nbgrader_ext.markdown2html_clean"}
c.HTMLExporter.extra_template_basedirs = [
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(_nopos.__file__))), "autograder", "templates"),
    os.path.join(os.path.dirname(_nbgrader.__file__), "server_extensions", "formgrader", "templates"),
]

# ---------------------------------------------------------------- containment
# Learner code runs in a contained kernel (nopos/grading/sandbox.py; docs/grading.md):
# nbgrader's Execute replaced by SandboxedExecute, which launches ipykernel
# under unshare (no network, a pid namespace, a mount namespace in which the
# kernel's root holds only an allow-list: system libraries, the Python
# installation and the course's packages read-only, its own folder, a private
# /tmp), with an allow-listed environment, its working folder off sys.path,
# rlimits, a memory and pids cgroup (killed at the end of every notebook) and
# an unprivileged uid; it bounds the output kept and survives crashes and hangs.
c.Autograde.autograde_preprocessors = [
    "nopos.grading.sandbox.SandboxedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.SandboxedExecute.notebook_timeout = 900   # seconds for one whole notebook
c.SandboxedExecute.memory_mb = 4096         # kernel + children (cgroup)
c.SandboxedExecute.address_space_mb = 8192  # per process (rlimit): one huge allocation fails fast
c.SandboxedExecute.cpu_seconds = 1200       # CPU seconds of the kernel process (rlimit)
c.SandboxedExecute.max_procs = 64           # processes + threads (rlimit, cgroup)
c.SandboxedExecute.file_size_mb = 256       # largest file written (rlimit)
c.SandboxedExecute.network = False          # no network (network namespace)
c.SandboxedExecute.stderr_fails_tests = False
c.SandboxedExecute.cell_output_mb = 4        # output kept per cell; the rest dropped with a note
c.SandboxedExecute.notebook_output_mb = 20   # output kept per notebook
