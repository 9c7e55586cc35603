"""Benchmark: a chapter-1 class through the queue with 1, 2, 4 workers, against the
one-machine batch.

    python -m tests.bench.queue --n 12 --workers 1 2 4     (root: namespaces)

Builds `--n` copies of the reference submission in a scratch course; grades them
with `nopos.grading.batch` (1 nbgrader at a time: the one-machine figure per
submission), then, for each worker count, through a LocalCluster (Redis and
PostgreSQL in a namespace, each worker in its own, veth pairs between): from the
first task sent to the last outcome recorded. Workers make their course copy
before the clock starts (`--prepare`). Prints submissions per minute, the
queue's overhead per submission (1 worker against the batch with 1), and the
machines for 5,000 submissions in an hour at the measured rate per worker.
Workers on one machine share its cores: past the core count, more workers only
show the queue's cost, not more throughput.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from nopos.grading import course  # noqa: E402
from nopos.grading.batch import grade_batch  # noqa: E402
from bench.grading import _filled  # noqa: E402
from queue_cluster import LocalCluster, available  # noqa: E402

AID = "01_dataset"
TARGET = 5000  # submissions in an hour: the sizing line


def make_class(root, n, prefix):
    nb = _filled(AID)
    path = Path(root) / f"{prefix}.ipynb"
    nbformat.write(nb, path)
    students = [f"{prefix}{i:03d}" for i in range(n)]
    for s in students:
        course.submit(root, AID, s, path)
    return students


def through_queue(root, n, workers):
    from nopos.grading.distributed import submit

    with LocalCluster(workers=workers, visibility_s=1200) as cluster:
        old = dict(os.environ)
        os.environ.update(cluster.producer_env())
        try:
            for i in range(1, workers + 1):
                cluster.start_worker(i, prepare=AID)
            cluster.wait_ready(workers)
            students = make_class(root, n, f"q{workers}-")
            start = time.monotonic()
            run, _ = submit.submit(root, AID, students)
            submit.watch(run, n, every=0.5, out=open(os.devnull, "w"))
            return time.monotonic() - start
        finally:
            os.environ.clear()
            os.environ.update(old)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    why = available()
    if why:
        sys.exit(f"bench_queue: {why}")
    root = Path(tempfile.mkdtemp(prefix="nopos-bench-queue-"))
    course.make_course(root, [AID])
    students = make_class(root, args.n, "b-")
    start = time.monotonic()
    outcome = grade_batch(root, AID, students, workers=1)
    batch_s = time.monotonic() - start
    assert all(s == "ok" for s, _ in outcome.values()), outcome
    per = batch_s / args.n
    print(f"cores: {os.cpu_count()}   class: {args.n} copies of a correct chapter-1 submission")
    print(f"one-machine batch, 1 at a time: {batch_s:6.1f} s  {60 / per:5.1f} submissions/min  "
          f"({per:.1f} s each)")
    rates = {}
    for w in args.workers:
        seconds = through_queue(root, args.n, w)
        rates[w] = args.n * 60 / seconds
        print(f"queue, {w} worker(s):            {seconds:6.1f} s  {rates[w]:5.1f} submissions/min")
    if 1 in rates:
        overhead = 60 / rates[1] - per
        print(f"queue overhead per submission (1 worker vs batch 1 at a time): {overhead:+.1f} s")
        per_worker = rates[1] * 60  # submissions an hour, one worker on one core pair
        machines = -(-TARGET // int(per_worker * (os.cpu_count() or 2) / 2))
        print(f"sizing: one worker grades {per_worker:.0f} submissions an hour here; 5,000 in an hour "
              f"take {-(-TARGET // int(per_worker))} workers (2 cores each), e.g. {machines} machines "
              f"of {os.cpu_count()} cores (chapter 1; later chapters take longer a submission)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
