"""Reference answers to every exercise, and the course's training loop.

This is the instructor's side: the solution cells of the notebooks are built
from these functions (tools/build_course.py inlines them), the command-line
trainer and the benchmark use them, and the shipped checkpoint was made with
them. Learners: open it once you have tried an exercise yourself.
"""

# The modules that hold each chapter's answers. Grading a chapter hides its own
# answer modules from the learner's kernel (nopos/grading/course_view.py): an answer
# cell that imports them gets nothing, while later chapters still import the
# answers of earlier ones (chapter 3 uses chapter 1's make_batch).
ANSWERS = {
    "01_dataset": ("data",),
    "02_schedule": ("schedule",),
    "03_training": ("training",),
    "04_attention": ("attention",),
    "05_mechanism": ("mechanism",),
    "06_beyond": ("beyond",),
}

# The modules a learner's notebook imports that are no chapter's answer: the training
# loop and the causal experiments' plumbing. They must hold no graded answer: on a
# class server they reach learners as soon as the answers they import are published
# (nopos/hub/answers.py), maybe while a later chapter's grades are open.
HELPERS = ("train", "causal")
