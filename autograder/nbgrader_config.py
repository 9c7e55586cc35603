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
    "nopos.nbgrader_ext.ScrubTestTracebacks",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
