"""Reference answers to every exercise, and the course's training recipe.

This is the instructor's side: the solution cells of the notebooks are built
from these functions (tools/build_course.py inlines them), the command-line
trainer and the benchmark use them, and the shipped checkpoint was made with
them. Learners: open it once you have tried an exercise yourself.
"""
