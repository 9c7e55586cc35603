"""Benchmark: a class of simulated learners through the course's JupyterHub.

    sudo python -m tests.bench.hub --n 30 --workers 2 [--no-serial]

Starts the hub exactly as `make hub` does (test folders under /srv/nopos-bench,
free loopback ports, the environment under /opt/nopos-hub-test reused), makes
`--n` OS users `npb-NN` and an instructor through the REST API, and times each
phase: release, fetch (all learners at once, 8 at a time), submit (half the
reference answers, half a realistic mistake), collect, autograde with the
parallel sandboxed batch (`--workers`) and, unless --no-serial, again with one
worker, feedback, fetch_feedback. Prints the wall time per phase, the peak
memory (RSS) of the hub's processes (hub, proxy, formgrader service) and of the
grading process tree, and the serial/parallel grading ratio. Everything it made
(users, folders, processes) is removed at the end. Figures, not a test.
"""
import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import test_hub as th  # noqa: E402  (the hub driver of the end-to-end test)
from conftest import filled_release  # noqa: E402
from nopos.hub import settings  # noqa: E402

AID = th.AID


def _children():
    kids = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    return kids


def _rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def per_student(stdout):
    """One line for the batch's per-student report: how many graded ok, and the spread
    of one student's grading time (the batch prints `student  seconds s  status`)."""
    rows = [line.split() for line in stdout.splitlines()]
    rows = [(float(r[1]), r[3]) for r in rows if len(r) >= 4 and r[2] == "s" and
            r[1].replace(".", "", 1).isdigit()]
    if not rows:
        return stdout[-600:]
    seconds = sorted(s for s, _ in rows)
    ok = sum(status == "ok" for _, status in rows)
    return (f"  {ok} of {len(rows)} graded ok; one student {seconds[0]:.1f} s min, "
            f"{seconds[len(seconds) // 2]:.1f} s median, {seconds[-1]:.1f} s max")


def tree_rss(roots):
    """RSS (MB) of processes `roots` and all their descendants."""
    kids, seen, todo = _children(), set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += kids.get(pid, [])
    return sum(_rss_mb(p) for p in seen)


class Peak(threading.Thread):
    """Samples the memory of the hub's and the grader's process trees twice a second."""

    def __init__(self, hub_pid):
        super().__init__(daemon=True)
        self.hub_pid, self.hub_mb, self.grading_mb, self.stop = hub_pid, 0.0, 0.0, False

    def run(self):
        while not self.stop:
            self.hub_mb = max(self.hub_mb, tree_rss([self.hub_pid]))
            batch = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
                     if b"nopos.grading.batch" in _read(p)]
            if batch:
                self.grading_mb = max(self.grading_mb, tree_rss(batch))
            time.sleep(0.5)


def _read(path):
    try:
        return path.read_bytes()
    except OSError:
        return b""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-serial", action="store_true", help="skip the one-worker grading")
    args = parser.parse_args(argv)
    why = th._can_run()
    if why:
        raise SystemExit(f"bench_hub {why}")
    th.TEST_ROOT = Path("/srv/nopos-bench")
    learners = [f"npb-{i:02d}" for i in range(args.n)]
    teacher = "npb-teach"
    phases, made = {}, []
    ports = th._free_ports(4)
    hub = th.Hub({"NOPOS_HUB_PREFIX": "/opt/nopos-hub-test",
                  "NOPOS_EXCHANGE": str(th.TEST_ROOT / "exchange"), "NOPOS_ROOMS": str(th.TEST_ROOT / "rooms"),
                  "NOPOS_COURSE_ROOT": str(th.TEST_ROOT / "course"), "NOPOS_HUB_PORT": str(ports[0]),
                  "NOPOS_HUB_API_PORT": str(ports[1]), "NOPOS_SERVICE_PORT": str(ports[2]),
                  "NOPOS_PROXY_API_PORT": str(ports[3])})
    grader_existed = th._exists(settings.GRADER_USER)

    def timed(name, fn, *a):
        start = time.monotonic()
        result = fn(*a)
        phases[name] = time.monotonic() - start
        print(f"{name:<18} {phases[name]:7.1f} s", flush=True)
        return result

    def each(fn):  # all learners at once, as a class would
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(fn, learners))

    peak = None
    try:
        th.shutil.rmtree(th.TEST_ROOT, ignore_errors=True)
        th.TEST_ROOT.mkdir(parents=True)
        for name in [teacher, *learners]:
            th._remove_user(name)
            th._add_user(name)
            made.append(name)
        started = timed("start hub", hub.module, "nopos.hub.server", "start")
        assert started.returncode == 0, started.stdout + started.stderr
        peak = Peak(int((hub.prefix / "state" / "jupyterhub.pid").read_text()))
        peak.start()

        def users():
            hub.api("POST", "/users", {"usernames": [teacher, *learners]})
            hub.api("POST", f"/groups/{settings.LEARNERS_GROUP}/users", {"users": learners})
            for user in [teacher, *learners]:
                hub.tokens[user] = hub.api("POST", f"/users/{user}/tokens", {})["token"]
        timed("users + tokens", users)
        timed("release", hub.module, "nopos.hub.instructor", "release", AID)
        timed("fetch", each, lambda u: hub.nbgrader(u, "fetch_assignment", AID))
        right, wrong = filled_release(AID), filled_release(AID, th.MISTAKE.answers)
        timed("submit", each, lambda u: th._hand_in(hub, u, right if int(u[-2:]) % 2 else wrong))
        timed("collect", hub.module, "nopos.hub.instructor", "collect", AID)
        graded = timed(f"autograde x{args.workers}", hub.module, "nopos.hub.instructor", "autograde", AID,
                       "--workers", str(args.workers))
        print(per_student(graded.stdout))
        if not args.no_serial:
            timed("autograde x1", hub.module, "nopos.hub.instructor", "autograde", AID, "--workers", "1")
        timed("feedback", hub.module, "nopos.hub.instructor", "feedback", AID)
        timed("fetch_feedback", each, lambda u: hub.nbgrader(u, "fetch_feedback", AID))
    finally:
        if peak:
            peak.stop = True
        hub.module("nopos.hub.server", "stop")
        for name in made:
            th._remove_user(name)
        if not grader_existed:
            th._remove_user(settings.GRADER_USER)
        th.shutil.rmtree(th.TEST_ROOT, ignore_errors=True)
        th.shutil.rmtree(hub.prefix / "state", ignore_errors=True)
    print(f"\n{args.n} learners, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}: timings are noisy)")
    if peak:
        print(f"peak memory: hub + proxy + formgrader {peak.hub_mb:.0f} MB; grading {peak.grading_mb:.0f} MB")
    if not args.no_serial:
        ratio = phases["autograde x1"] / phases[f"autograde x{args.workers}"]
        print(f"grading: {args.workers} workers {phases[f'autograde x{args.workers}']:.0f} s, "
              f"1 worker {phases['autograde x1']:.0f} s: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
