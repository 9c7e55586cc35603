"""JupyterHub for the course `nopos`: real OS users, nbgrader's exchange, formgrader.

Started by `make hub` (python -m nopos.hub.server start), which builds the environment
this file names and runs JupyterHub as root from settings.STATE with a copy of this
file (PREFIX/etc/jupyterhub_config.py, refreshed at every start). Every name comes from nopos/hub/settings.py; docs/hub.md says
how to size it and how to put it behind TLS.

Logging in: the method and its options come from the instructor's settings file
(PREFIX/etc/hub.toml, made from hub/hub.toml; NOPOS_HUB_AUTH overrides the method for
one start); LOGIN_METHODS below says what each method means. The instructor's own
JupyterHub settings, PREFIX/etc/jupyterhub_config.d/*.py, are read last.
Whichever it is, every hub user must also be an OS user of the same name
(useradd), because LocalProcessSpawner runs each server as its user, and nbgrader
takes a submission's owner from that.
"""
import json
import os
import pwd
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner

from nopos.hub import limits, settings
from nopos.hub.settings import EXCHANGE, INSTRUCTORS_GROUP, LEARNERS_GROUP, SERVICE

c = get_config()  # noqa: F821  (JupyterHub provides get_config)
s = settings
TOKENS = json.loads(open(s.TOKENS).read())  # written by `nopos.hub start`, root only

# ------------------------------------------------------------------ the hub
c.JupyterHub.bind_url = f"http://{s.HUB_IP}:{s.HUB_PORT}"
c.JupyterHub.hub_ip = s.HUB_IP
c.JupyterHub.hub_port = s.HUB_API_PORT
c.JupyterHub.db_url = f"sqlite:///{s.STATE}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{s.STATE}/jupyterhub_cookie_secret"
c.ConfigurableHTTPProxy.command = [f"{s.PROXY}/node_modules/.bin/configurable-http-proxy"]
c.ConfigurableHTTPProxy.api_url = f"http://{s.HUB_IP}:{s.PROXY_API_PORT}"
c.ConfigurableHTTPProxy.pid_file = f"{s.STATE}/jupyterhub-proxy.pid"
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every user's server
c.JupyterHub.cleanup_proxy = True

# ----------------------------------------------------------------- logging in
# Each method as data: its authenticator, the config section its options go to, the
# settings the course fixes for it, and whether its names are emails (an OS account
# cannot be named by one: ada@uni.edu logs in as the OS user ada).
LOGIN_METHODS = {
    "dummy": {"class": "dummy", "section": "DummyAuthenticator", "loopback_only": True},
    "pam": {"class": "pam", "section": "PAMAuthenticator"},
    "oauth": {"class": "generic-oauth", "section": "GenericOAuthenticator", "email_names": True,
              "fixed": {"username_claim": "preferred_username", "allow_existing_users": True}},
    "lti13": {"class": "ltiauthenticator.lti13.auth.LTI13Authenticator", "section": "LTI13Authenticator",
              "email_names": True, "defaults": {"username_key": "email"}},
}
if s.LOGIN_METHOD not in LOGIN_METHODS:
    raise SystemExit(f"login method {s.LOGIN_METHOD!r} ({s.SETTINGS_FILE}): choose one of {sorted(LOGIN_METHODS)}")
LOGIN = LOGIN_METHODS[s.LOGIN_METHOD]
if LOGIN.get("loopback_only") and s.HUB_IP not in ("127.0.0.1", "::1", "localhost"):
    raise SystemExit(f"the {s.LOGIN_METHOD} login lets anyone in: it serves loopback only, not {s.HUB_IP}; "
                     f"choose pam, oauth or lti13 in {s.SETTINGS_FILE} (docs/hub.md)")
c.JupyterHub.authenticator_class = LOGIN["class"]
for trait, value in {**LOGIN.get("defaults", {}), **s.LOGIN_OPTIONS, **LOGIN.get("fixed", {})}.items():
    setattr(c[LOGIN["section"]], trait, value)
if s.LOGIN_METHOD == "dummy":  # the one method whose password may also come from the environment
    c.DummyAuthenticator.password = s.LOGIN_OPTIONS.get("password",
                                                         os.environ.get("NOPOS_HUB_DUMMY_PASSWORD", ""))
    print("!" * 70 + "\nTEST LOGIN: any user name logs in with "
          + ("the shared password" if c.DummyAuthenticator.password else "ANY password")
          + ". Loopback only; never for a class.\n" + "!" * 70, file=sys.stderr, flush=True)
c.Authenticator.allow_existing_users = True  # anyone added through the REST API / roster


def os_user_name(authenticator, handler, authentication):
    """An LMS or OAuth provider names people by email; an OS user cannot be called that."""
    name = authentication["name"]
    authentication["name"] = name.split("@", 1)[0].lower() if "@" in name else name
    return authentication


if LOGIN.get("email_names"):
    c.Authenticator.post_auth_hook = os_user_name
c.Authenticator.admin_users = set(s.ADMINS)


# ------------------------------------------------------- each user's server
class BoundedSpawner(LocalProcessSpawner):
    """LocalProcessSpawner whose server (and kernels) live in a cgroup of the user's:
    at most USER_MEMORY_MB of memory, USER_CPUS CPUs of time, USER_TASKS tasks."""

    def make_preexec_fn(self, name):
        drop = super().make_preexec_fn(name)
        made = self._groups = limits.prepare(name, s.USER_MEMORY_MB, s.USER_CPUS, s.USER_TASKS)

        def preexec():  # runs in the child, as root: join, then become the user
            limits.join(made)
            drop()
        return preexec

    async def start(self):
        home = pwd.getpwnam(self.user.name).pw_dir
        os.chmod(home, 0o700)  # useradd's default 755 would show a learner's work to all
        return await super().start()

    async def stop(self, now=False):
        await super().stop(now=now)
        limits.release(getattr(self, "_groups", limits.groups(self.user.name)))


c.JupyterHub.spawner_class = BoundedSpawner
c.Spawner.cmd = [f"{s.ENV}/bin/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
# offline first: JupyterLab asks nobody about news and never checks for updates
c.Spawner.args = ["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
c.Spawner.notebook_dir = "~"
c.Spawner.mem_limit = f"{s.USER_MEMORY_MB}M"  # informational for LocalProcessSpawner: the cgroup enforces
c.Spawner.cpu_limit = s.USER_CPUS
# NOPOS_THREADS (torch threads: the whole CPUs of the share), OMP_WAIT_POLICY=PASSIVE
# (idle OpenMP threads sleep) and NOPOS_ROOMS: nopos.hub.limits.user_env
# JUPYTER_CONFIG_PATH: learner tools only, no news pop-up (nopos.hub.server.write_learner_config)
c.Spawner.environment = {**limits.user_env(s.USER_CPUS, s.ROOMS), "NOPOS_EXCHANGE": EXCHANGE,
                         "PATH": f"{s.ENV}/bin:/usr/local/bin:/usr/bin:/bin",
                         "JUPYTER_CONFIG_PATH": s.LEARNER_CONFIG}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# a server's token may read its own user's groups: JupyterHubAuthPlugin needs them
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                 "read:users!user", "read:users:groups!user"]

# --------------------------------------------------- course, groups, roles
c.JupyterHub.load_groups = {
    LEARNERS_GROUP: {"users": []},
    INSTRUCTORS_GROUP: {"users": [s.GRADER_USER]},  # the service user must exist in the hub
}
c.JupyterHub.load_roles = [
    # instructors may open the course's formgrader; learners may not
    {"name": INSTRUCTORS_GROUP, "groups": [INSTRUCTORS_GROUP],
     "scopes": [f"access:services!service={SERVICE}"]},
    # the formgrader reads who is in which course (JupyterHubAuthPlugin) and adds learners
    {"name": f"{s.SERVICE}-service", "services": [s.SERVICE],
     "scopes": ["read:users", "list:users", "read:groups", "list:groups", "groups"]},
    # scripts (roster sync, tests): users, groups, servers and tokens
    {"name": f"{s.ADMIN_SERVICE}-role", "services": [s.ADMIN_SERVICE],
     "scopes": ["admin:users", "admin:servers", "tokens", "admin:groups", "list:services",
                f"access:services!service={s.SERVICE}"]},
]
# the learners' and grader's nbgrader: exchange at EXCHANGE (settings.EXCHANGE), path_includes_course,
# JupyterHubAuthPlugin: hub/nbgrader_config.py
c.JupyterHub.services = [
    {   # the course: a Jupyter server with formgrader, run as the grader in the course folder
        "name": s.SERVICE,
        "url": f"http://{s.HUB_IP}:{s.SERVICE_PORT}",
        "command": [f"{s.ENV}/bin/jupyterhub-singleuser", f"--ServerApp.root_dir={s.COURSE_ROOT}"],
        "user": s.GRADER_USER,
        "cwd": s.COURSE_ROOT,
        "api_token": TOKENS[s.SERVICE],
        "oauth_no_confirm": True,
        "display": True,
        "environment": {
            "JUPYTERHUB_DEFAULT_URL": "/lab",
            "HOME": pwd.getpwnam(s.GRADER_USER).pw_dir,  # its ~/.jupyter: CSP for formgrader's iframe
            "PATH": f"{s.ENV}/bin:/usr/local/bin:/usr/bin:/bin",
            **limits.user_env(s.USER_CPUS, s.ROOMS),
        },
    },
    {"name": s.ADMIN_SERVICE, "api_token": TOKENS[s.ADMIN_SERVICE]},
]

# ------------------------------------------- the instructor's own settings, last
for extra in sorted(Path(s.EXTRA_CONFIG).glob("*.py")):
    load_subconfig(str(extra))  # noqa: F821  (the config loader provides it)
