"""How many CPU threads torch should use: the CPU this process may really use.

torch starts one thread per core it *sees*. On a shared server, in a container
or on a busy laptop that is too many: the cores are someone else's, and a
thread pool whose threads wait for each other at every matrix product runs
4-20x slower than a single thread (measured on a busy 2-core machine, where
chapter 2 took 36 minutes instead of under 3). The course's model is small, so
a few threads are all it can use anyway.

One rule for every place that starts torch (`nopos.setup` in the notebooks,
`make grade`, `make progress`, the class grader): `pick_threads`.

    NOPOS_THREADS=2 make lab      # override the choice (any positive integer)
"""
import math
import os

CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"  # cgroup v2: "<quota> <period>" or "max <period>"
MOST_USEFUL = 4  # d_model 64, batch 32: more threads than this only wait for each other


def cgroup_cpus(path=CGROUP_CPU_MAX):
    """The cgroup v2 CPU quota in CPUs (e.g. 1.5), or None when there is none."""
    try:
        quota, period = open(path, encoding="ascii").read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def available_cpus(cgroup_file=CGROUP_CPU_MAX):
    """CPUs this process may run on: its affinity mask, capped by a cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_cpus(cgroup_file)
    if quota is not None:
        cpus = min(cpus, math.floor(quota))  # 1.5 CPUs cannot keep 2 threads busy
    return max(1, cpus)


def idle_cpus(cpus, load=None):
    """Of `cpus`, how many the last minute's load average leaves free (at least 1)."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return cpus
    return max(1, min(cpus, math.floor(cpus - load + 0.5)))


def pick_threads(share=1, environ=None, cgroup_file=CGROUP_CPU_MAX, load=None):
    """Threads for one of `share` torch processes that run at once.

    NOPOS_THREADS, when set, wins. Otherwise: the CPUs this process may use
    (affinity, cgroup quota), less those the load average says are busy,
    divided among the `share` processes, at most MOST_USEFUL, at least 1.
    """
    environ = os.environ if environ is None else environ
    override = environ.get("NOPOS_THREADS", "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ValueError(f"NOPOS_THREADS must be a positive integer, not {override!r}")
        return int(override)
    free = idle_cpus(available_cpus(cgroup_file), load)
    return max(1, min(MOST_USEFUL, free // max(1, share)))


def thread_env(threads):
    """Environment variables that make a *new* process (a kernel) use `threads`
    threads, and let idle OpenMP threads sleep instead of spinning on a core
    another process needs."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "NOPOS_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}


def use_threads(threads):
    """Make this process's torch use `threads` threads (and one inter-op thread)."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)  # only possible before torch's first parallel work
    except RuntimeError:
        pass
    return threads
