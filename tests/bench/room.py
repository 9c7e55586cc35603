"""Benchmark: how fast a live room's count follows a commit, and a 30-person burst.

    python -m tests.bench.room [--commits 20] [--interval 0.5] [--burst 30]

Latency: a facilitator's Panel polls a scratch rooms folder every `interval`
seconds in its background thread (as on the projector); commits land at random
moments of its polling cycle; for each, the time from the commit's file being
in place to the Panel's count showing it. Expect about interval/2 on average
and at most one interval.

Burst: `burst` processes wait at a barrier, then commit at once into the same
entries folder; the figure is the window in which all were written, whether
the facilitator counts every one, and how long the Panel took to show them all.
All run as one OS user, so each commits a question of its own (a room counts a
user once per question); tests/test_room_users.py runs the same burst as 30 real
users. Timings are wall clock on a shared machine: noisy.
"""
import argparse
import multiprocessing as mp
import random
import statistics
import tempfile
import time
from pathlib import Path

from nopos.room.store import Seat, create
from nopos.room.view import Panel


def wait_for(panel, check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check(panel.committed):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.001)
    return time.monotonic()


def latency(room, interval, commits, home):
    panel = Panel(room, interval=interval).start_polling()
    seat = Seat(room, home=home)
    waits = []
    try:
        for i in range(commits):
            time.sleep(random.uniform(0, interval))   # a random phase of the polling cycle
            key = f"lat.q{i:03d}"
            seat.commit(key, {"kind": "choice", "options": ["a", "b"], "prediction": "a",
                              "confidence": 0.7})
            done = time.monotonic()
            seen = wait_for(panel, lambda c, k=key: c.get(k) == 1)
            waits.append(float("inf") if seen is None else seen - done)
    finally:
        panel.stop_polling()
    return waits


def _committer(args):
    root, code, home, i, go = args
    from nopos.room.store import Room
    seat = Seat(Room(code, root), home=home)
    go.wait()
    t0 = time.time()
    seat.commit(f"burst.p{i:02d}", {"kind": "number", "prediction": float(i), "low": i - 1.0,
                                   "high": i + 1.0, "tolerance": 0.1})
    return t0, time.time()


def burst(root, room, n, interval, scratch):
    panel = Panel(room, interval=interval).start_polling()
    with mp.Manager() as manager:
        go = manager.Event()
        with mp.Pool(n) as pool:
            jobs = pool.map_async(_committer, [(root, room.code, scratch / f"h{i}", i, go)
                                              for i in range(n)])
            time.sleep(2)  # every worker waiting at the barrier
            t_go = time.monotonic()
            go.set()
            times = jobs.get(timeout=60)
    start = min(t0 for t0, _ in times)
    window = max(t1 for _, t1 in times) - start
    seen = wait_for(panel, lambda c: sum(v for k, v in c.items() if k.startswith("burst.")) == n)
    panel.stop_polling()
    counted = sum(v for k, v in room.counts()[0].items() if k.startswith("burst."))
    return window, counted, None if seen is None else seen - t_go


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--burst", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nopos-bench-room-") as tmp:
        scratch = Path(tmp)
        (scratch / "rooms").mkdir()
        room = create("bench", root=scratch / "rooms")
        waits = latency(room, args.interval, args.commits, scratch / "home")
        print(f"commit -> count, polling every {args.interval} s, {len(waits)} commits: "
              f"median {statistics.median(waits):.3f} s, max {max(waits):.3f} s, "
              f"mean {statistics.mean(waits):.3f} s")
        window, counted, seen = burst(scratch / "rooms", room, args.burst, args.interval, scratch)
        shown = "never" if seen is None else f"{seen:.2f} s after the go"
        print(f"{args.burst}-burst: written within {window:.3f} s; facilitator counts "
              f"{counted} of {args.burst}; the panel showed all {shown}")


if __name__ == "__main__":
    main()
