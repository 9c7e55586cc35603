"""Names the whole deployment shares; change them here, nowhere else.

What an instructor sets (the login method and its options, each learner's limits)
comes from the hub's settings file, PREFIX/etc/hub.toml (made once from hub/hub.toml,
then the instructor's: never rewritten). Every path and size can also be overridden
by an environment variable of the same name with NOPOS_ in front (the tests run a hub
of their own that way)."""
import os
import tomllib

from nopos.room.store import DEFAULT_ROOMS

COURSE = "nopos"                          # nbgrader's course id
LEARNERS_GROUP = f"nbgrader-{COURSE}"     # JupyterHubAuthPlugin: learners of the course
INSTRUCTORS_GROUP = f"formgrade-{COURSE}"  # ... and who may open its formgrader
GRADER_USER = f"grader-{COURSE}"          # the OS user the course's formgrader service runs as
SERVICE = COURSE                          # the hub-managed service serving formgrader
ADMIN_SERVICE = f"{COURSE}-admin"         # a token-only service for scripts: users, groups, servers

PREFIX = os.environ.get("NOPOS_HUB_PREFIX", "/opt/nopos-hub")        # env, proxy, state
EXCHANGE = os.environ.get("NOPOS_EXCHANGE", "/srv/nbgrader/exchange")  # nbgrader's exchange
ROOMS = os.environ.get("NOPOS_ROOMS", DEFAULT_ROOMS)                 # live prediction rooms
# the course folder nbgrader works in (source, release, gradebook), the grader's own
COURSE_ROOT = os.environ.get("NOPOS_COURSE_ROOT", f"/home/{GRADER_USER}/{COURSE}")

SETTINGS_FILE = f"{PREFIX}/etc/hub.toml"          # the instructor's settings (hub/hub.toml)
EXTRA_CONFIG = f"{PREFIX}/etc/jupyterhub_config.d"  # the instructor's own JupyterHub settings


def _instructor_settings(path=SETTINGS_FILE):
    """The instructor's file, or {} where there is none yet or it is not ours to read
    (it is root's: a learner's process importing this module gets the defaults)."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (FileNotFoundError, PermissionError):
        return {}


_FILE = _instructor_settings()
_LOGIN, _LIMITS = _FILE.get("login", {}), _FILE.get("limits", {})

ENV = f"{PREFIX}/env"        # the course's Python environment, readable by every user
PROXY = f"{PREFIX}/proxy"    # configurable-http-proxy, from npm
STATE = f"{PREFIX}/state"    # hub database, cookie secret, tokens, pid file, log (root only)
ANSWERS_DIR = f"{PREFIX}/answers"  # the whole nopos_reference, root only (nopos.hub.answers)
LEARNER_CONFIG = f"{PREFIX}/etc/learner-jupyter"  # learners' servers only: learner tools, no news
PUBLISHED = f"{STATE}/published.json"  # chapters whose answers learners may read
# on a cluster (hub/kubernetes/): the published answers, a volume every learner pod
# mounts read-only and the grader writes (`python -m nopos.hub.answers --into`)
PUBLISHED_VOLUME = "/srv/nopos/published"
SET_ASIDE = f"{STATE}/set-aside"  # submissions collect refused (not the learner's own)
TOKENS = f"{STATE}/tokens.json"  # {service name: api token}, made at the first start
PID_FILE = f"{STATE}/jupyterhub.pid"
LOG_FILE = f"{STATE}/jupyterhub.log"

# loopback: put a TLS reverse proxy in front for a real class; any other address
# needs a real login method (hub.toml's [login], hub/jupyterhub_config.py)
HUB_IP = os.environ.get("NOPOS_HUB_IP", "127.0.0.1")
HUB_PORT = int(os.environ.get("NOPOS_HUB_PORT", "8000"))
SERVICE_PORT = int(os.environ.get("NOPOS_SERVICE_PORT", "9999"))  # formgrader, on loopback
HUB_API_PORT = int(os.environ.get("NOPOS_HUB_API_PORT", "8081"))
PROXY_API_PORT = int(os.environ.get("NOPOS_PROXY_API_PORT", "8001"))
# the hub's REST API for scripts (roster sync); JUPYTERHUB_API_URL wins where set
HUB_API_URL = os.environ.get("JUPYTERHUB_API_URL", f"http://{HUB_IP}:{HUB_PORT}/hub/api")

JUPYTERHUB_VERSION = "6.1.1"
# the course website's "open on your course's JupyterHub" links pull the repository with it
NBGITPULLER_VERSION = "1.3.0"
CHP_VERSION = "5.3.0"  # configurable-http-proxy; needs node >= 20

# Each user's server: a cgroup caps its memory (kernels included) and CPU time; torch
# gets one thread per whole CPU of the share. Size for a real server: see docs/hub.md.
USER_MEMORY_MB = int(os.environ.get("NOPOS_USER_MEMORY_MB", _LIMITS.get("memory_mb", 3072)))
USER_CPUS = float(os.environ.get("NOPOS_USER_CPUS", _LIMITS.get("cpus", 1)))
USER_TASKS = int(os.environ.get("NOPOS_USER_TASKS", _LIMITS.get("tasks", 512)))  # processes + threads

# Logging in (hub/jupyterhub_config.py's LOGIN_METHODS): the method, its options, admins
LOGIN_METHOD = os.environ.get("NOPOS_HUB_AUTH", _LOGIN.get("method", "dummy"))
LOGIN_OPTIONS = dict(_LOGIN.get("options", {}))
ADMINS = sorted(set(_LOGIN.get("admins", [])) | set(filter(None, os.environ.get("NOPOS_HUB_ADMINS", "").split(","))))
