"""One graded class per chapter and test session, read by every test file that
needs its rows (tests/test_grading_roundtrip.py, tests/test_fakes.py).

All of a chapter's submissions go through one `grade_batch` (the class batch of
`make grade-class`: real nbgrader per student, 2 at a time), so an honest notebook
is graded once rather than once per file, and the pool is never left with one
student to grade alone. A chapter joins by having tests/wrong/chNN_*.py (GRADED);
other students of a chapter (the fakes of chapter 1) are listed in EXTRA. Under
`make test` one worker runs every test of a class (tests/conftest.py, CLASS_FILES:
the chapter is a test's first parameter), so each class is graded once.
"""
import contextlib
import importlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from conftest import chapters, filled_release, release_path
from nopos.grading import course
from nopos.grading.batch import grade_batch
from wrong import Case, pack

GRADED = [aid for aid in chapters() if importlib.util.find_spec(f"wrong.ch{aid}")]
# `make test` grades the first submission of each chapter: one mistake in every answer
# cell at once (each must cost only its own test). NOPOS_ROUNDTRIP=all grades every
# case through nbgrader; tests/test_judge.py checks every case's message without it.
EVERY_CASE = os.environ.get("NOPOS_ROUNDTRIP") == "all"


def _fakes():
    from hostile.fakes import BEYOND_CORE, FAKES

    return {f"fake-{name}": filled_release("01_dataset", {"make_batch": code})
            for name, (code, _) in FAKES.items() if EVERY_CASE or name not in BEYOND_CORE}


EXTRA = {"01_dataset": _fakes}  # aid -> () -> {student: notebook}, graded with its class
# Chapters whose reference is graded alone first, on one CPU another process keeps busy:
# chapter 2's recipe check trains for real, and must still finish within its limits
BUSY = {"02_schedule"}


def packs(aid):
    """The wrong submissions of a chapter: [[case names]]."""
    cases = importlib.import_module(f"wrong.ch{aid}").CASES
    return pack(cases) if EVERY_CASE else pack(cases)[:1]


@dataclass
class Graded:
    case: Case
    student: str  # the submission that carried this mistake
    loses: dict  # what that whole submission must lose: grade_id -> points


class Classes:
    """classes(aid) grades a chapter's class the first time it is asked for (so `-k 02`
    grades chapter 2 only) and returns {wrong case name: Graded}."""

    def __init__(self, root, work):
        self.root, self.work, self.done = root, work, {}
        self.seconds = {}  # aid -> wall seconds per submission of its batch (2 at a time)

    def __call__(self, aid):
        if aid not in self.done:
            self.done[aid] = self._grade(aid)
        return self.done[aid]

    def _grade(self, aid):
        cases = importlib.import_module(f"wrong.ch{aid}").CASES if aid in GRADED else {}
        students, graded = {"reference": filled_release(aid)}, {}
        for i, names in enumerate(packs(aid) if cases else []):
            student = f"wrong{i + 1}-" + "-".join(names)[:60]
            answers = {k: v for n in names for k, v in cases[n].answers.items()}
            loses = {k: v for n in names for k, v in cases[n].loses.items()}
            students[student] = filled_release(aid, answers)
            graded.update({n: Graded(cases[n], student, loses) for n in names})
        students.update(EXTRA.get(aid, dict)())
        # last: it runs no exercise, the quickest to grade, filling the pool's tail
        students["untouched"] = nbformat.read(release_path(aid), as_version=4)
        for student, nb in students.items():
            path = self.work / f"{aid}-{student}.ipynb"
            nbformat.write(nb, path)
            course.submit(self.root, aid, student, path)
        # these students only: the session's course may hold other tests' submissions
        start = time.monotonic()
        outcome = {}
        if aid in BUSY:
            with busy_core(), fresh_recipe_cache(self.work / f"{aid}-recipes"):
                outcome = grade_batch(self.root, aid, ["reference"], workers=1)
        outcome.update(grade_batch(self.root, aid, [s for s in students if s not in outcome], workers=2))
        self.seconds[aid] = 2 * (time.monotonic() - start) / len(students)
        assert all(status == "ok" for status, _ in outcome.values()), outcome
        return graded


@contextlib.contextmanager
def busy_core():
    """This process and its children get half of one CPU: a shared server's share, or a
    laptop doing something else. A cpu cgroup's quota where there is one (the other half
    is not burnt: the other test worker uses it), else a process spinning on that CPU.
    (One CPU, so that the other test worker keeps the rest of the machine.)"""
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    home = _cpu_cgroup()
    group = home / f"nopos-busy-{os.getpid()}" if home else None
    spinner = None
    try:
        try:
            group.mkdir()
            period = int((group / "cpu.cfs_period_us").read_text())
            (group / "cpu.cfs_quota_us").write_text(str(period // 2))
            (group / "cgroup.procs").write_text(str(os.getpid()))
        except (OSError, AttributeError):
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            os.sched_setaffinity(spinner.pid, {cpu})
        yield
    finally:
        os.sched_setaffinity(0, allowed)
        if spinner:
            spinner.kill()
            spinner.wait()
        elif group:
            (home / "cgroup.procs").write_text(str(os.getpid()))
            for _ in range(50):  # its last children may take a moment to be gone
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def _cpu_cgroup():
    """This process's cgroup (v1) of the cpu controller, as a folder; None if there is none."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "cpu" in controllers.split(","):
                folder = Path("/sys/fs/cgroup/cpu") / path.lstrip("/")
                return folder if (folder / "cpu.cfs_quota_us").exists() else None
    except (OSError, ValueError):
        pass
    return None


@contextlib.contextmanager
def fresh_recipe_cache(folder):
    """Chapter 2's recipe check trains the recipe it has not seen (nopos.checks.ch02's cache)."""
    from nopos.checks.ch02 import CACHE_VARIABLE

    before = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ[CACHE_VARIABLE]
        else:
            os.environ[CACHE_VARIABLE] = before
