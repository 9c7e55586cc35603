"""Each user's server gets a bounded share of the machine, by cgroup.

JupyterHub's LocalProcessSpawner accepts mem_limit and cpu_limit but does not
enforce them. The hub (root) makes one cgroup per user before the spawn
(`prepare`), the spawned process joins it before it drops to the user
(`join`, in the spawner's preexec), so the server and every kernel it starts
share the cap; `release` kills what is left and removes the group. cgroup v2
where the machine has it, else the v1 memory, cpu and pids controllers.
Stdlib only (and the grading sandbox's launcher, stdlib only too): the hub
imports it inside its config.
"""
import math
import os
from pathlib import Path

from nopos.grading.sandbox_launcher import cgroup_members, kill_groups

ROOT = Path("/sys/fs/cgroup")
PARENT = "nopos-hub"


def threads_for(cpus):
    """torch threads that fit a CPU share: one per whole CPU, at least one."""
    return max(1, math.floor(cpus))


def user_env(cpus, rooms):
    """The per-user environment the spawner sets (threads fitting the share)."""
    threads = str(threads_for(cpus))
    return {"NOPOS_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "OMP_WAIT_POLICY": "PASSIVE", "NOPOS_ROOMS": rooms}


def is_v2(root=ROOT):
    return (root / "cgroup.controllers").exists()


def groups(name, root=ROOT):
    """The cgroup folders of user `name`."""
    if is_v2(root):
        return [root / PARENT / name]
    return [root / ctl / PARENT / name for ctl in ("memory", "cpu", "pids")]


def _write(path, value):
    path.write_text(str(value))


def prepare(name, memory_mb, cpus, tasks, root=ROOT):
    """Make user `name`'s cgroup(s) with its caps; returns the folders (joined later)."""
    made = groups(name, root)
    if is_v2(root):
        for parent in (root, root / PARENT):  # let the controllers reach the user's group
            parent.mkdir(exist_ok=True)
            _write(parent / "cgroup.subtree_control", "+memory +cpu +pids")
        group = made[0]
        group.mkdir(exist_ok=True)
        _write(group / "memory.max", memory_mb * 2 ** 20)
        _write(group / "memory.swap.max", 0)
        _write(group / "cpu.max", f"{int(cpus * 100000)} 100000")
        _write(group / "pids.max", tasks)
        return made
    memory, cpu, pids = made
    for group in made:
        group.mkdir(parents=True, exist_ok=True)
    _write(memory / "memory.limit_in_bytes", memory_mb * 2 ** 20)
    try:  # swap counted too, where the kernel accounts it
        _write(memory / "memory.memsw.limit_in_bytes", memory_mb * 2 ** 20)
    except OSError:
        pass
    period = int((cpu / "cpu.cfs_period_us").read_text())
    _write(cpu / "cpu.cfs_quota_us", int(cpus * period))
    _write(pids / "pids.max", tasks)
    return made


def join(made):
    """Put the calling process in the groups (as root, before it drops privileges)."""
    for group in made:
        _write(group / "cgroup.procs", os.getpid())


def members(made):
    """The pids in a user's groups."""
    return cgroup_members(made)


def release(made, wait=5.0):
    """Kill every process left in the groups, then remove them. True when all went
    (the grader's kernel groups are released by the same loop)."""
    return kill_groups(made, wait)


def all_groups(root=ROOT):
    """Every user group the hub made (for the stop command's sweep)."""
    parents = [root / PARENT] if is_v2(root) else [root / c / PARENT for c in ("memory", "cpu", "pids")]
    names = {p.name for parent in parents if parent.is_dir() for p in parent.iterdir() if p.is_dir()}
    return {name: groups(name, root) for name in names}


def remove_parents(root=ROOT):
    """Remove the hub's parent group(s) once no user group is left in them."""
    parents = [root / PARENT] if is_v2(root) else [root / c / PARENT for c in ("memory", "cpu", "pids")]
    for parent in parents:
        try:
            parent.rmdir()
        except OSError:
            pass
