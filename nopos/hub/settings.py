"""Names the whole deployment shares; change them here, nowhere else."""
import os

COURSE = "nopos"                          # nbgrader's course id
LEARNERS_GROUP = f"nbgrader-{COURSE}"     # JupyterHubAuthPlugin: learners of the course
INSTRUCTORS_GROUP = f"formgrade-{COURSE}"  # ... and who may open its formgrader
GRADER_USER = f"grader-{COURSE}"          # the OS user the course's formgrader service runs as
SERVICE = COURSE                          # the hub-managed service serving formgrader

PREFIX = os.environ.get("NOPOS_HUB_PREFIX", "/opt/nopos-hub")        # env, proxy, state
EXCHANGE = os.environ.get("NOPOS_EXCHANGE", "/srv/nbgrader/exchange")  # nbgrader's exchange
ROOMS = os.environ.get("NOPOS_ROOMS", "/srv/nopos/rooms")            # live prediction rooms

# added by the roster and grade exports (hubops); the hub's config should use these too
COURSE_ROOT = os.environ.get("NOPOS_COURSE_ROOT", f"/home/{GRADER_USER}/{COURSE}")  # formgrader's course
HUB_API_URL = os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8000/hub/api")
