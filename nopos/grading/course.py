"""The nbgrader course directory, driven by nbgrader's own commands.

A course is a folder with `nbgrader_config.py`, `source/` and a gradebook; these
helpers make a scratch copy of the course's (`autograder/`), place submissions,
run nbgrader and read scores and failure messages back from the gradebook.
The batch grader (`batch.py`), the self-grader (`nopos.learner.selfgrade`) and
the tests use them.
"""
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
AUTOGRADER = REPO / "autograder"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
@dataclass
class CellResult:
    grade_id: str
    score: float
    max_score: float
    message: str = ""


def nbgrader(root, *args, check=True, timeout=None, threads=None, runtime=None):
    """Run one nbgrader command in course directory `root`; returns the completed process.

    `timeout` (s) bounds the whole command: past it, nbgrader and its kernel are
    killed and subprocess.TimeoutExpired is raised. `threads`: CPU threads of the
    kernel's torch, by default `nopos.threads.pick_threads()` (several graders at
    once must share the cores: oversubscribed, torch's thread pools slow each other
    down manyfold). `runtime`: the folder of the kernels' connection files (removed
    by the caller, even if nbgrader is killed)."""
    from nopos.threads import pick_threads, thread_env

    env = dict(os.environ, NOPOS_NONINTERACTIVE="1", PYTHONWARNINGS="ignore")
    # the course's config reads the shared gradebook from it (for the instructor's own
    # nbgrader); this package's runs name theirs, or use the course's gradebook.db
    env.pop("NOPOS_GRADEBOOK_URL", None)
    if runtime:
        Path(runtime).mkdir(parents=True, exist_ok=True)
        env["NOPOS_RUNTIME_DIR"] = str(runtime)
    env.update(thread_env(threads or pick_threads()))
    # nbgrader runs `alembic` (and kernels) by name: find this environment's first
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    cmd = [sys.executable, "-m", "nopos.grading.nbgrader_cli", *args]
    # nbgrader (and so its kernel) dies with the thread that started it: a grading process
    # killed (a queue worker's) leaves nothing grading on, unseen, in its folder
    setpriv = shutil.which("setpriv")
    launch = [setpriv, "--pdeathsig", "KILL", *cmd] if setpriv else cmd
    with subprocess.Popen(launch, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as popen:
        readers = [_Tail(popen.stdout), _Tail(popen.stderr)]
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(popen.pid, 9)  # nbgrader; its kernel follows (setpriv --pdeathsig)
            try:
                popen.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                popen.kill()
            raise
        finally:
            for reader in readers:
                reader.join(10)
        out, err = (r.text() for r in readers)
    proc = subprocess.CompletedProcess(cmd, popen.returncode, out, err)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


LOG_KEPT = 64 << 10  # bytes of nbgrader's stdout and stderr kept: the first and the last


class _Tail:
    """Read a pipe to its end in a thread, keeping only its first and last LOG_KEPT bytes:
    whatever a grader prints, the caller's memory stays bounded."""

    def __init__(self, pipe):
        import threading

        self.head, self.tail, self.dropped = b"", b"", 0
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe):
        while chunk := pipe.read1(1 << 16) if hasattr(pipe, "read1") else pipe.read(1 << 16):
            if len(self.head) < LOG_KEPT:
                take = LOG_KEPT - len(self.head)
                self.head, chunk = self.head + chunk[:take], chunk[take:]
            self.tail += chunk
            if len(self.tail) > LOG_KEPT:
                self.dropped += len(self.tail) - LOG_KEPT
                self.tail = self.tail[-LOG_KEPT:]

    def join(self, timeout):
        self._thread.join(timeout)

    def text(self):
        cut = f"\n[... {self.dropped} bytes not kept ...]\n".encode() if self.dropped else b""
        return (self.head + cut + self.tail).decode("utf-8", "replace")


def config(root):
    """The course's nbgrader_config.py as nbgrader itself loads it (`30 * 60`, a variable,
    a later line all count)."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def make_course(root, assignments=None, settings=None):
    """A scratch course: the course's config, its source notebooks, a fresh gradebook.

    `settings`: extra nbgrader config lines, e.g. {"Execute.timeout": 10}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(AUTOGRADER / "nbgrader_config.py", root / "nbgrader_config.py")
    if settings:
        with open(root / "nbgrader_config.py", "a") as config:
            config.write("\n# settings of this scratch course\n")
            config.writelines(f"c.{k} = {v!r}\n" for k, v in settings.items())
    available = sorted(p.name for p in (AUTOGRADER / "source").iterdir() if p.is_dir())
    for aid in assignments or available:
        if aid not in available:
            raise SystemExit(f"no assignment {aid!r}; the course has {', '.join(available)}")
        shutil.copytree(AUTOGRADER / "source" / aid, root / "source" / aid, dirs_exist_ok=True)
        nbgrader(root, "generate_assignment", aid, "--force")
    return root


def submit(root, aid, student, notebook):
    """Place a learner's notebook where `nbgrader autograde` looks for it."""
    target = Path(root) / "submitted" / student / aid
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, target / f"{aid}.ipynb", follow_symlinks=False)
    return target


def submitted_students(root, aid):
    return sorted(p.parent.name for p in (Path(root) / "submitted").glob(f"*/{aid}") if p.is_dir())


def feedback(root, aid, student=None):
    args = ["generate_feedback", aid, "--force"] + ([f"--student={student}"] if student else [])
    nbgrader(root, *args)
    return Path(root) / "feedback" / (student or "*") / aid / f"{aid}.html"


def results(root, aid, student):
    """Score and failure message of every graded cell, read from the gradebook."""
    from nbgrader.api import Gradebook

    root = Path(root)
    messages = _messages(root / "autograded" / student / aid / f"{aid}.ipynb")
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submission = gb.find_submission_notebook(aid, aid, student)
        out = [CellResult(g.name, float(g.score or 0), float(g.max_score),
                          messages.get(g.name, "")) for g in submission.grades
               if g.max_score and g.cell_type == "code"]
    order = _cell_order(root / "source" / aid / f"{aid}.ipynb")
    return sorted(out, key=lambda r: order.get(r.grade_id, 1e9))


def _cell_order(path):
    nb = nbformat.read(path, as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(nb.cells)}


def _messages(path):
    """Readable reason per failed test cell: the exception's message, or stderr."""
    if not path.exists():
        return {}
    nb = nbformat.read(path, as_version=4)
    found = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id or not cell.metadata["nbgrader"].get("grade"):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found[grade_id] = ANSI.sub("", f"{output['ename']}: {output['evalue']}")
            elif output.get("name") == "stderr" and grade_id not in found:
                found[grade_id] = "the cell wrote to stderr: " + output["text"].strip()[:300]
    return found
