"""The learner's tools, run from a terminal beside the notebooks.

- `doctor`: is this machine ready for the course? (session 0 of a reading group)
- `selfgrade`: grade your own notebook with real nbgrader (`make grade NB=...`);
- `progress`: which exercises of your notebooks pass their checks;
- `scoreboard`: how your predictions fared, scored for honest confidence.

They use what the notebooks use (`nopos`) and the grader (`nopos.grading`);
nothing in the notebooks imports them.
"""
