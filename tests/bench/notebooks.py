"""Benchmark: how long every notebook takes, top to bottom from a fresh kernel,
against the time its header promises.

    python -m tests.bench.notebooks [--quick] [01_dataset ...]

Solutions run at full size (what a learner runs); `--quick` runs them the way
nbgrader and the browser tests do (NOPOS_QUICK=1: demonstrations shortened).
Prints one line per notebook and exits 1 when a notebook fails or takes more
than its promise. The test suite runs the same notebooks but never times them:
this machine, and any shared CI machine, is too noisy for a timed test.
"""
import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
PROMISE = re.compile(r"Running every cell:\*\* under (\d+) (seconds|minutes?)")


def promised_seconds(nb):
    """The header's 'Running every cell: under N minutes', in seconds (None if absent)."""
    match = PROMISE.search(nb.cells[0].source)
    if not match:
        return None
    return int(match.group(1)) * (60 if match.group(2).startswith("minute") else 1)


def run(path):
    """Execute a notebook in its own folder; (notebook, seconds, first error or None)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="nopos", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    error = next((f"{o['ename']}: {o['evalue'][:120]}" for c in nb.cells
                  for o in c.get("outputs", []) if o.get("output_type") == "error"), None)
    return nb, seconds, error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter ids (default: every solution)")
    parser.add_argument("--quick", action="store_true", help="NOPOS_QUICK=1, as nbgrader runs them")
    args = parser.parse_args(argv)
    os.environ["NOPOS_NONINTERACTIVE"] = "1"
    if args.quick:
        os.environ["NOPOS_QUICK"] = "1"
    paths = [REPO / "solutions" / f"{c}.ipynb" for c in args.chapters] or \
        sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
    print(f"threads: {os.cpu_count()} cores, NOPOS_THREADS={os.environ.get('NOPOS_THREADS', 'auto')}; mode: {'quick' if args.quick else 'full size'}")
    ok = True
    for path in paths:
        nb, seconds, error = run(path)
        limit = promised_seconds(nb)
        verdict = "FAILS: " + error if error else (
            "no promise in the header" if limit is None else
            f"{seconds / limit:.0%} of its promise" + ("" if seconds <= limit else "  OVER"))
        ok &= error is None and limit is not None and seconds <= limit
        print(f"{path.stem:<14} {seconds:7.1f} s   promise {limit or '?':>5} s   {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
