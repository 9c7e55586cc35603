"""Browser tests: one real JupyterLab server and one headless Chromium per session.

The server runs from the course's environment with a token on a free loopback
port, from the repository root (so course/ and solutions/ are reachable), with
fresh Jupyter config/runtime/settings folders so no user settings leak in, and
the nbgrader server extensions pointed at the course's autograder/. Chromium is
Debian's /usr/bin/chromium driven by Playwright; Playwright never downloads a
browser (never run `playwright install`). The browser context blocks every
request that does not go to the loopback server: a classroom without internet.

A missing browser skips these tests, except in CI (CI=true), where it fails.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from .lab_driver import Lab

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"
SCRATCH = ROOT / ".artifacts" / "browser"  # notebooks made by the tests (git-ignored)
CHROMIUM = os.environ.get("NOPOS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SERVER_START_TIMEOUT = 90  # seconds


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives JupyterLab in headless Chromium")


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.browser_call_failed = report.failed


def _missing(reason):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI; .ci/run installs "
                    f"Chromium with apt)", pytrace=False)
    pytest.skip(f"{reason}; install it with `sudo apt-get install chromium` to run the browser tests")


# --------------------------------------------------------------------------- course files

def release_notebooks():
    """course/<id>/<id>.ipynb for every chapter that has one (new chapters join by themselves)."""
    return sorted(p.stem for p in (ROOT / "course").glob("*/*.ipynb")
                  if p.parent.name == p.stem and not p.parent.name.startswith("."))


def solution_notebooks():
    return sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))


def promised_seconds(path):
    """The header's promise "Running every cell: under N seconds/minutes" (default 60 s)."""
    nb = json.loads(Path(path).read_text())
    head = "".join(nb["cells"][0]["source"]) if nb["cells"] else ""
    match = re.search(r"Running every cell:\*\* under (\d+) (seconds|minutes?)", head)
    if not match:
        return 60
    return int(match.group(1)) * (60 if match.group(2).startswith("minute") else 1)


def run_budget_ms(path):
    """Generous but bounded time for running a whole notebook in the browser."""
    return int(min(900, max(120, 4 * promised_seconds(path) + 60)) * 1000)


# --------------------------------------------------------------------------- the server

LEFTOVER_DIRS = ("course", "solutions")


def _course_files():
    return {p for d in LEFTOVER_DIRS for p in (ROOT / d).rglob("*") if p.is_file()}


def _remove_leftovers(before):
    """Running notebooks in place leaves git-ignored files next to them (JupyterLab's
    .ipynb_checkpoints/, a chapter's my_model.pt). Remove the ignored files this session
    created; never anything git tracks or would show (others may be adding chapters)."""
    new = sorted(str(p.relative_to(ROOT)) for p in _course_files() - before)
    if not new:
        return
    try:
        out = subprocess.run(["git", "check-ignore", "--stdin"], cwd=ROOT, input="\n".join(new),
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return
    for rel in out.split():
        path = ROOT / rel
        path.unlink(missing_ok=True)
        if path.parent.name == ".ipynb_checkpoints":
            try:
                path.parent.rmdir()
            except OSError:
                pass


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(settings_dir):
    """User settings of the test profile: no news pop-up, no update check, no autosave
    (the course's notebooks are opened in place and must never be written), and every
    cell kept in the DOM so outputs can be inspected and photographed."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


class LabServer:
    def __init__(self, url, token, proc, log_path, home):
        self.url, self.token, self.proc, self.log_path, self.home = url, token, proc, log_path, home

    def api(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def shutdown_kernels(self):
        """Free the memory of notebooks a test has finished with."""
        for session in self.api("GET", "/api/sessions") or []:
            try:
                self.api("DELETE", f"/api/sessions/{session['id']}")
            except urllib.error.URLError:
                pass

    def log_tail(self, n=4000):
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyterlab")
    dirs = {name: home / name for name in ("config", "runtime", "settings", "workspaces",
                                           "ipython", "nopos-home", "mpl")}
    for d in dirs.values():
        d.mkdir()
    _settings(dirs["settings"])
    gradebook = home / "gradebook.db"
    # nbgrader reads nbgrader_config.py from the Jupyter config path: load the course's
    # own config (its CourseDirectory.root is autograder/) but keep the gradebook out
    # of the repository.
    (dirs["config"] / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig('nbgrader_config.py', path={str(ROOT / 'autograder')!r})  # noqa: F821\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(gradebook)!r}\n"
        # Validate runs the whole notebook on the server; a shared, loaded CI machine can be
        # several times slower than a laptop, so a cell gets more than the course's 120 s here.
        "c.Execute.timeout = 600\n")

    env = dict(os.environ)
    # A learner at the keyboard: the course's "no person watching" switches must be off,
    # even when the tests themselves run under CI=true or NOPOS_NONINTERACTIVE=1.
    for var in ("CI", "NOPOS_NONINTERACTIVE", "NBGRADER_EXECUTION", "NBGRADER_VALIDATING",
                "MPLBACKEND", "JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_PREFER_ENV_PATH"):
        env.pop(var, None)
    env.update(JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
               JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
               IPYTHONDIR=str(dirs["ipython"]), NOPOS_HOME=str(dirs["nopos-home"]),
               MPLCONFIGDIR=str(dirs["mpl"]), PYTHONWARNINGS="ignore")
    # The chapters' long demonstration trainings run short (nopos.env.grading()): these
    # tests look at what the browser shows; tests/test_notebooks.py runs them full length.
    env.setdefault("NOPOS_QUICK", "1")

    before = _course_files()
    token = uuid.uuid4().hex
    port = _free_port()
    log_path = home / "server.log"
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.port={port}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False",
           f"--ServerApp.root_dir={ROOT}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.expose_app_in_browser=True",
           "--ContentsManager.allow_hidden=True",  # the tests' notebooks live in .artifacts/
           "--ServerApp.jpserver_extensions={'nbgrader.server_extensions.formgrader': True, "
           "'nbgrader.server_extensions.validate_assignment': True}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI runners
        cmd.append("--allow-root")
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, proc, log_path, home)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            server.api("GET", "/api/status")
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT} s:\n"
                            f"{server.log_tail()}")
            time.sleep(0.25)
    yield server
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    log.close()
    _remove_leftovers(before)


# --------------------------------------------------------------------------- the browser

@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the Python package playwright is not installed (pip install -r requirements.txt)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    blocked = []

    def only_local(route):
        host = urlparse(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        context.route("**/*", only_local)
        context.blocked_requests = blocked
        yield context
        context.close()


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def scratch_dir():
    """Notebooks the tests write (a learner's solved copy, a circuitsvis probe), inside the
    server root and git-ignored."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    return SCRATCH


@pytest.fixture
def lab(request, browser_context, lab_server, screenshots):
    """A fresh tab; its kernels are shut down afterwards."""
    page = browser_context.new_page()
    page.set_default_timeout(30_000)
    messages = []
    page.on("pageerror", lambda exc: messages.append(f"pageerror: {exc}"))
    driver = Lab(page, lab_server, messages)
    yield driver
    if getattr(request.node, "browser_call_failed", False):  # what the page showed at the failure
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
        try:
            page.screenshot(path=str(screenshots / f"FAILED-{name}.png"), full_page=True)
        except Exception:  # a crashed page cannot be photographed; the failure says enough
            pass
    page.close()
    try:
        lab_server.shutdown_kernels()
    except urllib.error.URLError:
        pass

