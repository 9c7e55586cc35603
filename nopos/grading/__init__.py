"""The instructor's grading: nbgrader, made safe for a class.

Nothing a notebook imports lives here, and nothing here is needed to take the
course. Read in this order:

- `course`: the nbgrader course directory, driven by nbgrader's own commands;
- `batch`: a class graded several at a time; intake of every submission first;
- `sandbox` (+ `sandbox_launcher`, `course_view`): the kernel a submission runs in;
- `judge` (+ `transport`): test cells judged in the grader, not in that kernel;
- `nbgrader_ext`: feedback without hidden tests or unsafe HTML.

The hub (`nopos.hub`) grades through the same path.
"""
