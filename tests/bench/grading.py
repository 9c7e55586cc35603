"""Benchmark: autograde a synthetic class serially (stock nbgrader) and in parallel.

    python -m tests.bench.grading --n 30 --workers 2 [--chapters 01_dataset ...]

For every chapter present in autograder/source (or --chapters), builds `--n`
submissions from the release notebook: reference answers, the realistic wrong
answers of tests/wrong/ch<id>.py, and hostile ones (an endless loop, os._exit,
a 50 GB allocation, a patched numpy, an unreadable file). Grades them

  * serially: one stock `nbgrader autograde <aid>` over the whole class, and
  * in parallel: `nopos.grading.batch` with --workers nbgrader processes,

each in its own fresh course with the same (short) time limits, then prints
wall time, the median time per submission, the peak memory of the grading
process tree, and compares every test cell's score between the two gradebooks.
"""
import argparse
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from nopos.grading import batch, course  # noqa: E402
from nopos.grading.batch import grade_batch  # noqa: E402

# 60 s a cell: chapter 2's recipe check trains for 11-30 s, and a tighter limit made
# one correct submission's score depend on the timing of the run
SETTINGS = {"Execute.timeout": 60, "SandboxedExecute.notebook_timeout": 300}


def _answers(aid):
    from tools.build_course import strip_markers

    nb = nbformat.read(REPO / "autograder" / "source" / aid / f"{aid}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: strip_markers(c.source) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def _filled(aid, overrides=None):
    answers = {**_answers(aid), **(overrides or {})}
    nb = nbformat.read(REPO / "course" / aid / f"{aid}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            cell.source = answers[gid]
    return nb


def submissions(aid, n):
    """n (name, writer) pairs: about half correct, a third wrong, the rest hostile."""
    answers = _answers(aid)
    first = next(iter(answers))
    try:
        wrong = list(importlib.import_module(f"wrong.ch{aid}").CASES.values())
    except ImportError:
        wrong = []
    hostile = [
        ("loop", {first: "while True:\n    pass\n" + answers[first]}),
        ("exit", {first: "import os\nos._exit(0)\n" + answers[first]}),
        ("bomb", {first: "hog = bytearray(50 * 10**9)\n" + answers[first]}),
        ("patch", {first: "import numpy\nnumpy.allclose = lambda *a, **k: True\n" + answers[first]}),
        ("unreadable", None),
    ]
    out = []
    for i in range(n):
        kind = i % 6
        if kind in (0, 1, 2) or (kind == 3 and not wrong):
            out.append((f"s{i:02d}-correct", _filled(aid)))
        elif kind in (3, 4):
            out.append((f"s{i:02d}-wrong", _filled(aid, wrong[i % len(wrong)].answers)))
        else:
            name, overrides = hostile[(i // 6) % len(hostile)]
            out.append((f"s{i:02d}-{name}", _filled(aid, overrides) if overrides is not None else None))
    return out


class PeakMemory(threading.Thread):
    """Peak resident memory of this process and all its descendants, sampled."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, _tree_rss(os.getpid()))
            time.sleep(0.3)


def _tree_rss(root_pid):
    parents, rss = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                status = (d / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            parents[int(d.name)] = int(fields.get("PPid", "0").strip())
            rss[int(d.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [root_pid]
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def _course(where, aid, subs):
    root = course.make_course(where, [aid], SETTINGS)
    for name, nb in subs:
        target = root / "submitted" / name / aid
        target.mkdir(parents=True, exist_ok=True)
        if nb is None:
            (target / f"{aid}.ipynb").write_text('{"cells": [ not json')
        else:
            nbformat.write(nb, target / f"{aid}.ipynb")
    return root


def _scores(root, aid, students):
    return {s: {r.grade_id: r.score for r in course.results(root, aid, s)} for s in students}


def measure(fn):
    mem = PeakMemory()
    mem.start()
    start = time.monotonic()
    result = fn()
    wall = time.monotonic() - start
    mem.running = False
    mem.join()
    return result, wall, mem.peak


def bench(aid, n, workers, scratch):
    subs = submissions(aid, n)
    students = [s for s, _ in subs]
    serial_root = _course(scratch / f"serial-{aid}", aid, subs)
    parallel_root = _course(scratch / f"parallel-{aid}", aid, subs)

    def serial():  # intake, then one stock `nbgrader autograde` of the repaired copies
        return batch.autograde(serial_root, aid, check=False)

    _, serial_wall, serial_peak = measure(serial)
    done = sorted((serial_root / "autograded" / s / aid / f"{aid}.ipynb").stat().st_mtime
                  for s in students)
    serial_each = [b - a for a, b in zip(done, done[1:])]
    outcome, parallel_wall, parallel_peak = measure(
        lambda: grade_batch(parallel_root, aid, students, workers=workers))
    parallel_each = [seconds for _, seconds in outcome.values()]
    a, b = _scores(serial_root, aid, students), _scores(parallel_root, aid, students)
    diff = {s: (a[s], b[s]) for s in students if a[s] != b[s]}
    print(f"\n{aid}: {n} submissions ({sum('correct' in s for s in students)} correct, "
          f"{sum('wrong' in s for s in students)} wrong, "
          f"{sum(not ('correct' in s or 'wrong' in s) for s in students)} hostile), "
          f"{os.cpu_count()} cores")
    print(f"  serial   (stock nbgrader autograde): wall {serial_wall:7.1f} s, "
          f"median {statistics.median(serial_each):5.1f} s/submission, peak memory "
          f"{serial_peak / 2 ** 30:.2f} GiB")
    print(f"  parallel (grade_batch, {workers} workers):  wall {parallel_wall:7.1f} s, "
          f"median {statistics.median(parallel_each):5.1f} s/submission (one nbgrader each), "
          f"peak memory {parallel_peak / 2 ** 30:.2f} GiB")
    total = sum(sum(v.values()) for v in a.values())
    if diff:
        print(f"  SCORES DIFFER for {len(diff)} submissions: {diff}")
    else:
        print(f"  scores identical: {len(students)} submissions x {len(next(iter(a.values())))} "
              f"test cells, {total:g} points in total, in both gradebooks")
    return not diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    present = sorted(p.name for p in (REPO / "autograder" / "source").iterdir() if p.is_dir()
                     and (REPO / "course" / p.name / f"{p.name}.ipynb").exists())
    parser.add_argument("--chapters", nargs="*", default=present)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch courses")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="nopos-bench-grading-"))
    try:
        ok = all([bench(aid, args.n, args.workers, scratch) for aid in args.chapters])
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
