"""Benchmark: what judging tests outside the kernel costs, side by side.

    python -m nopos_reference.bench_verdict [--baseline 6a89136] [--chapter 02_schedule] [--repeat 2]

Grades a correct submission of one chapter (the release with the reference
answers) with `make grade`'s code path (`nopos.selfgrade.grade_one`: real
nbgrader, sandboxed kernel) twice over: with this checkout, where test cells are
judged in nbgrader's process (nopos/grading/judge.py), and with a baseline revision,
where they ran in the learner's kernel. The baseline is checked out into a
temporary git worktree and run with this checkout's Python environment. Prints
the wall time of each run and the score, side by side.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "6a89136"  # the last commit whose tests ran in the learner's kernel

GRADE = """
import sys, time, nbformat
sys.path.insert(0, "tests")
from conftest import filled_release
from nopos.learner import selfgrade
path = sys.argv[1]
nbformat.write(filled_release(sys.argv[2]), path)
start = time.perf_counter()
rows, _ = selfgrade.grade_one(path, workdir=sys.argv[3])
print(f"RESULT {time.perf_counter() - start:.1f} {sum(r.score for r in rows):g} {sum(r.max_score for r in rows):g}")
"""


def grade(tree, chapter, scratch):
    """(seconds, score, out of) for one correct submission graded in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "NOPOS_NONINTERACTIVE": "1"}
    out = subprocess.run([sys.executable, "-c", GRADE, str(scratch / f"{chapter}.ipynb"), chapter,
                          str(scratch / "course")], cwd=tree, env=env, capture_output=True, text=True)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(f"grading in {tree} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    seconds, score, possible = line.split()[1:]
    return float(seconds), score, possible


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--chapter", default="02_schedule")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nopos-bench-verdict-") as scratch:
        scratch = Path(scratch)
        base = scratch / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.baseline],
                       cwd=REPO, check=True)
        try:
            rows = []
            for i in range(args.repeat):  # interleaved, so that machine load hits both alike
                for label, tree in (("in the kernel (baseline)", base), ("outside (this checkout)", REPO)):
                    work = scratch / f"{label[:6]}-{i}"
                    work.mkdir()
                    rows.append((label, *grade(tree, args.chapter, work)))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO)
    print(f"a correct {args.chapter} submission, graded by nopos.selfgrade.grade_one "
          f"(nbgrader autograde, sandboxed), {os.cpu_count()} cores")
    print(f"{'where the tests run':<28} {'seconds':>8} {'score':>10}")
    for label, seconds, score, possible in rows:
        print(f"{label:<28} {seconds:>8.1f} {score + ' / ' + possible:>10}")


if __name__ == "__main__":
    main()
