"""nbgrader settings for the JupyterLab you start with `make lab` (it runs from here).

The Validate button reads the nbgrader_config.py of the folder JupyterLab was
started from; the course itself lives in autograder/ (see its config there).
"""
import os

c = get_config()  # noqa: F821  (nbgrader provides get_config)
c.CourseDirectory.root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autograder")
# Validate runs every cell, training demonstrations included: give them room.
c.Execute.timeout = 300
