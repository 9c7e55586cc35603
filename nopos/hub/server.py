"""Start and stop the course's JupyterHub (root, Linux): `make hub`, `make hub-stop`.

    python -m nopos.hub.server start     # build what is missing, lay out, start in the background
    python -m nopos.hub.server stop      # stop the hub, every user's server, the proxy
    python -m nopos.hub.server status

`start` builds the course environment from /usr/bin/python3 under settings.PREFIX
(root's home is mode 700: a Python there cannot run as a learner), with the
course's pinned packages, the package itself, its kernel, JupyterHub and
configurable-http-proxy from npm; lays out the grader's course folder, the
exchange and the rooms folder with the modes they need; then runs the hub with
hub/jupyterhub_config.py. Nothing here is fetched at run time, only at set-up.
Stdlib only: it runs from the checkout's venv before the hub's exists.
"""
import argparse
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from nopos.hub import answers, limits, settings as s

REPO = Path(__file__).resolve().parents[2]
BASE_PYTHON = "/usr/bin/python3"  # readable by every user, unlike a pyenv under /root
STAMP = ".nopos-hub-installed"


class SetupError(SystemExit):
    """A set-up problem the instructor must fix; the message says how."""


def run(*cmd, **kw):
    subprocess.run([str(c) for c in cmd], check=True, **kw)


# ---------------------------------------------------------- environment
def package_source(into, packages=("nopos", "nopos_reference")):
    """A copy of what the course package is built from (pyproject.toml's packages), in
    folder `into`: building in the checkout would leave build/ and *.egg-info there.
    (tests/test_install.py installs from the same copy; the hub builds `nopos` alone,
    nopos.hub.answers lays out nopos_reference.)"""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, into / name)
    for package in packages:
        shutil.copytree(REPO / package, into / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def _uv():
    for candidate in (shutil.which("uv"), Path(sys.executable).parent / "uv"):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def _find_links():
    links = os.environ.get("PIP_FIND_LINKS", "").split()
    got = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.find-links"],
                         capture_output=True, text=True)
    links += got.stdout.split() if got.returncode == 0 else []
    return [arg for link in dict.fromkeys(links) if Path(link.removeprefix("file://")).is_dir()
            for arg in ("--find-links", link)]


def _lock_digest():
    text = ((REPO / "requirements.txt").read_text() + s.JUPYTERHUB_VERSION + s.NBGITPULLER_VERSION
            + BASE_PYTHON)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_env(env=s.ENV):
    """The course's environment at `env`: locks + jupyterhub (when they changed), the
    package (every time: seconds) and the course kernel; every file readable by all.
    Of the reference answers only the published ones (nopos.hub.answers)."""
    env, os_umask = Path(env), os.umask(0o022)
    try:
        python, uv = env / "bin" / "python", _uv()
        stamp = env / STAMP
        if not (stamp.exists() and stamp.read_text() == _lock_digest()):
            if not python.exists():
                run(*([uv, "venv", "-q", "-p"] if uv else [BASE_PYTHON, "-m", "venv"]),
                    *([BASE_PYTHON] if uv else []), env)
            # byte-compiled now: learners cannot write __pycache__ here, and every
            # import would compile torch and nbgrader from source again (seconds each)
            install = [uv, "pip", "install", "-q", "--compile-bytecode", "--python", python] if uv else \
                [python, "-m", "pip", "install", "-q"]
            run(*install, *_find_links(), "-r", REPO / "requirements.txt",
                f"jupyterhub=={s.JUPYTERHUB_VERSION}", f"nbgitpuller=={s.NBGITPULLER_VERSION}")
            stamp.write_text(_lock_digest())
        install = [uv, "pip", "install", "-q", "--compile-bytecode", "--python", python, "--reinstall-package",
                   "nopos-course"] if uv else [python, "-m", "pip", "install", "-q", "--force-reinstall"]
        with tempfile.TemporaryDirectory() as source:  # a build writes egg-info beside the
            source = package_source(Path(source), ("nopos",))  # sources: never into the checkout
            run(*install, "--no-deps", source, stderr=subprocess.DEVNULL)
        answers.install_private(REPO, env=env)
        answers.publish(env=env)
        run(python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "nopos",
            "--display-name", "Python (nopos course)", "--env", "OMP_WAIT_POLICY", "PASSIVE",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        os.umask(os_umask)
    return env


def build_proxy(prefix=s.PROXY):
    """configurable-http-proxy from npm, into the hub's prefix (not global)."""
    package = Path(prefix) / "node_modules" / "configurable-http-proxy" / "package.json"
    if package.exists() and json.loads(package.read_text())["version"] == s.CHP_VERSION:
        return
    if not shutil.which("npm"):
        raise SetupError("npm is missing: install Node.js 20 or later (apt-get install nodejs npm)")
    run("npm", "install", "--silent", "--no-fund", "--no-audit", "--prefix", prefix,
        f"configurable-http-proxy@{s.CHP_VERSION}")


def write_jupyter_config(env):
    """nbgrader and server settings every user's server reads (the env's etc/jupyter),
    and the grader's own (formgrader's iframe needs frame-ancestors 'self': hub >= 4.1
    sends 'none' otherwise, nbgrader #1870)."""
    csp = ("c.ServerApp.tornado_settings = {'headers': "
           "{'Content-Security-Policy': \"frame-ancestors 'self'\"}}\n")
    etc = Path(env) / "etc" / "jupyter"
    etc.mkdir(parents=True, exist_ok=True)
    # hub/nbgrader_config.py, with the exchange as resolved now (a learner's shell may lack NOPOS_EXCHANGE)
    nbgrader = (REPO / "hub" / "nbgrader_config.py").read_text() + \
        f"c.Exchange.root = {s.EXCHANGE!r}  # settings.EXCHANGE when the hub started\n"
    (etc / "nbgrader_config.py").write_text(nbgrader)
    (etc / "jupyter_server_config.py").write_text("c = get_config()\n" + csp)
    entry = pwd.getpwnam(s.GRADER_USER)
    grader = Path(entry.pw_dir) / ".jupyter"  # the grader's own: root-owned files it can read
    grader.mkdir(exist_ok=True)
    os.chown(grader, entry.pw_uid, entry.pw_gid)
    (grader / "jupyter_server_config.py").write_text("c = get_config()\n" + csp)
    (grader / "nbgrader_config.py").write_text(nbgrader)


# What a learner's JupyterLab offers: her tools only (assignment list, validate),
# no formgrader, course list or create-assignment (those are the grader's service's),
# and no news pop-up. Given to learners' servers only (JUPYTER_CONFIG_PATH, set by
# hub/jupyterhub_config.py); the grader's service runs without it.
LEARNER_HIDDEN_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                          "@jupyter/nbgrader:course-list", "@jupyterlab/apputils-extension:announcements")
LEARNER_OFF_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",
                                 "nbgrader.server_extensions.course_list")


def write_learner_config(folder=s.LEARNER_CONFIG):
    folder = Path(folder)
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {name: True for name in LEARNER_HIDDEN_PLUGINS}}, indent=1))
    (folder / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {name: False for name in LEARNER_OFF_SERVER_EXTENSIONS}}},
        indent=1))
    for path in (folder, folder / "labconfig"):
        os.chmod(path, 0o755)
    return folder


def warn_test_login():
    """The test login (any name, one shared password or none) is for loopback only."""
    if s.LOGIN_METHOD != "dummy":
        return
    if s.HUB_IP not in ("127.0.0.1", "::1", "localhost"):
        raise SetupError(f"NOPOS_HUB_IP={s.HUB_IP}: the test login lets anyone in; on an address "
                         f"other than loopback choose a real one ([login] method = pam, oauth or lti13 "
                         f"in {s.SETTINGS_FILE}, docs/hub.md)")
    password = s.LOGIN_OPTIONS.get("password") or os.environ.get("NOPOS_HUB_DUMMY_PASSWORD")
    print("!" * 78 + "\nTEST LOGIN (method dummy): ANY user name logs in with "
          + ("the one shared password NOPOS_HUB_DUMMY_PASSWORD" if password else "ANY password")
          + ".\nLoopback only, for trying the hub out: never for a class (docs/hub.md, Logging in).\n"
          + "!" * 78, file=sys.stderr)


# --------------------------------------------------------------- folders
def ensure_user(name, home=None):
    """An OS user (no password, no login shell); True when made now."""
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        run("useradd", "-m", "-s", "/usr/sbin/nologin", *(["-d", home] if home else []), name)
        return True


def shared_folder(path, mode, what, owner=0):
    """A folder with exactly `mode`, owned by uid `owner` (root unless told). An existing
    one with other modes or owner is refused, saying how to fix it (nothing is changed)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise SetupError(f"{what} {path} is not a folder: remove it (`rm {path}`), then start again.")
    if path.exists():
        got, uid = stat.S_IMODE(path.stat().st_mode), path.stat().st_uid
        if got != mode or uid != owner:
            user = pwd.getpwuid(owner).pw_name
            fix = f"`chown {user} {path} && chmod {oct(mode)[2:]} {path}`"
            if uid not in (0, owner):  # someone else made it: nothing in it can be trusted
                fix = f"look at what is in it, then `rm -r {path}`"
            raise SetupError(
                f"{what} {path} has mode {oct(got)} (owner uid {uid}); it must be owned by "
                f"{user} with mode {oct(mode)}. Fix: {fix}, then start again.")
        return path
    path.mkdir(parents=True)
    os.chown(path, owner, -1)
    os.chmod(path, mode)
    return path


# The exchange, as nbgrader's own code needs it (release_assignment, submit, collect,
# release_feedback, fetch_*), with what the file system must refuse a learner:
#   root        1777 root     anyone may add a course folder, nobody renames another's
#   <course>     755 grader   learners read, only the grader adds or renames
#   outbound     755 grader   released assignments: read by all
#   inbound     3733 grader   submissions: learners create, cannot list, read, rename or
#                             remove another's (sticky); setgid: the grader's group
#   feedback     711 grader   a learner opens only the file named by her notebook's hash
# nbgrader keeps these: it never changes the mode of a folder that exists, and checks
# only the root's low nine bits (0777 == 1777 & 0777).
EXCHANGE_ROOT_MODE = 0o1777
EXCHANGE_COURSE = (("", 0o755), ("outbound", 0o755), ("inbound", 0o3733), ("feedback", 0o711))


def lay_out_exchange(root=s.EXCHANGE, course=s.COURSE, user=s.GRADER_USER):
    shared_folder(root, EXCHANGE_ROOT_MODE, "The nbgrader exchange")
    uid = pwd.getpwnam(user).pw_uid
    for sub, mode in EXCHANGE_COURSE:
        shared_folder(Path(root) / course / sub, mode, "The exchange's course folder", owner=uid)


def private_checkout(repo=REPO):
    """The instructor's clone holds the solutions: readable by no learner. A clone that
    others can reach is closed (o-rwx), and said. (NOPOS_HUB_OPEN_CHECKOUT=1 leaves it:
    the test suite's, whose other tests import the course from it as other OS users.)"""
    if os.environ.get("NOPOS_HUB_OPEN_CHECKOUT") == "1":
        return False
    for folder in [repo, *repo.parents]:
        if not stat.S_IMODE(folder.stat().st_mode) & 0o001:
            return False  # a folder on the way others cannot enter: private already
        if folder == Path(folder.anchor):
            break
    mode = stat.S_IMODE(repo.stat().st_mode)
    os.chmod(repo, mode & ~0o007)
    print(f"the checkout {repo} (source notebooks, solutions) was open to every user: "
          f"made it {oct(mode & ~0o007)[2:]}. Keep it under a private folder (e.g. /root).",
          file=sys.stderr)
    return True


def lay_out_course(root=s.COURSE_ROOT, user=s.GRADER_USER):
    """The grader's course folder: a copy of autograder/ (config, source, templates), the
    config extended for the hub; gradebook and submissions kept across starts. The
    config names no absolute course root: the batch grader runs it in private copies."""
    root = Path(root)
    entry = pwd.getpwnam(user)
    root.mkdir(parents=True, exist_ok=True)
    for name in ("source", "templates"):
        shutil.copytree(REPO / "autograder" / name, root / name, dirs_exist_ok=True)
    config = (REPO / "autograder" / "nbgrader_config.py").read_text()
    (root / "nbgrader_config.py").write_text(config + f"""
# ------------------------------------------------ on the hub (nopos.hub.server)
c.Exchange.root = {s.EXCHANGE!r}
c.Exchange.path_includes_course = True
from nbgrader.auth import JupyterHubAuthPlugin  # noqa: E402
c.Authenticator.plugin_class = JupyterHubAuthPlugin
# feedback's offline template: this folder's copy (the package's lives in site-packages)
c.HTMLExporter.extra_template_basedirs = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")] \
    + c.HTMLExporter.extra_template_basedirs[1:]
""")
    for folder, _, files in os.walk(root):
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)
    for path in (root, root.parent if root.parent == Path(entry.pw_dir) else root):
        os.chmod(path, 0o700)  # learners see no source, no gradebook
    return root


def tokens():
    """The services' api tokens (made once, root only)."""
    path = Path(s.TOKENS)
    known = json.loads(path.read_text()) if path.exists() else {}
    for name in (s.SERVICE, s.ADMIN_SERVICE):
        known.setdefault(name, secrets.token_hex(32))
    path.write_text(json.dumps(known))
    os.chmod(path, 0o600)
    return known


def lay_out():
    shared_folder(s.EXCHANGE, EXCHANGE_ROOT_MODE, "The nbgrader exchange")  # checked first: refused, nothing made
    shared_folder(s.ROOMS, 0o1777, "The rooms folder")
    Path(s.STATE).mkdir(parents=True, exist_ok=True)
    os.chmod(s.STATE, 0o700)
    ensure_user(s.GRADER_USER)
    lay_out_exchange()
    write_learner_config()
    write_jupyter_config(s.ENV)
    lay_out_course()
    tokens()
    config = Path(s.PREFIX) / "etc" / "jupyterhub_config.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "hub" / "jupyterhub_config.py", config)  # the course's: refreshed
    instructor_settings()
    return config


def instructor_settings():
    """The instructor's settings file and own-config folder: made once, then theirs
    (never rewritten). Root only: the file may hold an authenticator's secrets."""
    mine = Path(s.SETTINGS_FILE)
    if not mine.exists():
        shutil.copy(REPO / "hub" / "hub.toml", mine)
        print(f"made {mine}: the login method, its options and each learner's limits; edit it, "
              f"then restart the hub (docs/hub.md)")
    os.chown(mine, 0, 0)
    os.chmod(mine, 0o600)
    extra = Path(s.EXTRA_CONFIG)
    extra.mkdir(exist_ok=True)
    os.chmod(extra, 0o700)


# ------------------------------------------------------------ start / stop
def running_pid():
    try:
        pid = int(Path(s.PID_FILE).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def hub_url():
    return f"http://{s.HUB_IP}:{s.HUB_PORT}"


def wait_ready(timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running_pid():
            raise SetupError(f"the hub stopped while starting; its log: {s.LOG_FILE}")
        try:
            with urllib.request.urlopen(f"{hub_url()}/hub/api/", timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    raise SetupError(f"the hub did not answer on {hub_url()} in {timeout} s; log: {s.LOG_FILE}")


def start(build=True):
    if os.geteuid() != 0:
        raise SetupError("the hub runs as root (it starts servers as each user): sudo make hub")
    if running_pid():
        print(f"the hub is already running ({hub_url()}, pid {running_pid()})")
        return running_pid()
    warn_test_login()
    for path, mode, what in ((s.EXCHANGE, EXCHANGE_ROOT_MODE, "The nbgrader exchange"),
                             (s.ROOMS, 0o1777, "The rooms folder")):
        if Path(path).exists():
            shared_folder(path, mode, what)  # refuse before minutes of building
    private_checkout()
    if build:
        build_env()
        build_proxy()
    config = lay_out()
    env = dict(os.environ, PATH=f"{s.ENV}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}")
    env.pop("PYTHONPATH", None)
    with open(s.LOG_FILE, "ab") as log:
        hub = subprocess.Popen([f"{s.ENV}/bin/jupyterhub", "-f", str(config)], cwd=s.STATE,
                               env=env, stdout=log, stderr=log, start_new_session=True)
    Path(s.PID_FILE).write_text(str(hub.pid))
    wait_ready()
    print(f"JupyterHub {s.JUPYTERHUB_VERSION} for {s.COURSE}: {hub_url()} (pid {hub.pid}, log {s.LOG_FILE})")
    return hub.pid


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _kill_user_processes(user):
    """Everything the service user still runs (its formgrader, the kernels it started)."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if proc.stat().st_uid == uid:
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass


def stop(timeout=20):
    """Stop the hub (it stops the servers and the proxy), then make sure: nothing left."""
    pid = running_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        try:
            os.killpg(pid, signal.SIGKILL)  # the hub's own session (the proxy it started)
        except OSError:
            pass
    proxy = Path(s.STATE) / "jupyterhub-proxy.pid"
    if proxy.exists():
        try:
            os.kill(int(proxy.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        proxy.unlink()
    for made in limits.all_groups().values():  # users' servers and their kernels
        limits.release(made)
    limits.remove_parents()
    _kill_user_processes(s.GRADER_USER)
    Path(s.PID_FILE).unlink(missing_ok=True)
    print("the hub is stopped" if pid else "the hub was not running")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--no-build", action="store_true", help="use the environment as it is")
    args = parser.parse_args(argv)
    if args.action == "start":
        start(build=not args.no_build)
    elif args.action == "stop":
        stop()
    else:
        pid = running_pid()
        print(f"running: {hub_url()} (pid {pid})" if pid else "not running")
        return 0 if pid else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
