"""The thread picker: the CPUs this process may really use, shared out."""
import os

import pytest

from nopos import threads
from nopos.threads import available_cpus, cgroup_cpus, idle_cpus, pick_threads, thread_env


@pytest.fixture
def cpu_max(tmp_path):
    """A fake cgroup v2 cpu.max file: cpu_max("150000 100000") is 1.5 CPUs."""
    path = tmp_path / "cpu.max"

    def write(text):
        path.write_text(text + "\n")
        return str(path)
    return write


@pytest.fixture
def cores(monkeypatch):
    """Pretend the affinity mask holds `n` CPUs."""
    def set_cores(n):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)
    return set_cores


def test_cgroup_quota_is_read_in_cpus(cpu_max, tmp_path):
    assert cgroup_cpus(cpu_max("150000 100000")) == 1.5
    assert cgroup_cpus(cpu_max("max 100000")) is None
    assert cgroup_cpus(cpu_max("garbage")) is None
    assert cgroup_cpus(str(tmp_path / "absent")) is None


def test_available_cpus_is_the_affinity_capped_by_the_quota(cores, cpu_max):
    cores(8)
    assert available_cpus(cpu_max("max 100000")) == 8
    assert available_cpus(cpu_max("200000 100000")) == 2
    assert available_cpus(cpu_max("150000 100000")) == 1   # 1.5 CPUs keep 1 thread busy, not 2
    assert available_cpus(cpu_max("50000 100000")) == 1    # never 0
    cores(3)
    assert available_cpus(cpu_max("800000 100000")) == 3   # a quota above the affinity


def test_busy_cpus_are_left_out():
    assert idle_cpus(2, load=0.1) == 2
    assert idle_cpus(2, load=1.2) == 1
    assert idle_cpus(2, load=13.8) == 1   # the busy 2-core machine: one thread, never 0
    assert idle_cpus(16, load=4.0) == 12


def test_pick_threads_shares_and_caps(cores, cpu_max):
    cores(16)
    free = cpu_max("max 100000")
    assert pick_threads(environ={}, cgroup_file=free, load=0) == threads.MOST_USEFUL
    assert pick_threads(share=8, environ={}, cgroup_file=free, load=0) == 2
    assert pick_threads(share=32, environ={}, cgroup_file=free, load=0) == 1
    assert pick_threads(environ={}, cgroup_file=cpu_max("100000 100000"), load=0) == 1
    cores(2)
    free = cpu_max("max 100000")
    assert pick_threads(environ={}, cgroup_file=free, load=0) == 2
    assert pick_threads(share=2, environ={}, cgroup_file=free, load=0) == 1
    assert pick_threads(environ={}, cgroup_file=free, load=3.0) == 1


def test_the_override_wins_and_is_checked(cores, cpu_max):
    cores(2)
    assert pick_threads(environ={"NOPOS_THREADS": "6"}, cgroup_file=cpu_max("max 1"), load=9) == 6
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="NOPOS_THREADS"):
            pick_threads(environ={"NOPOS_THREADS": bad})


def test_a_kernel_gets_the_threads_and_sleeping_idle_threads():
    env = thread_env(3)
    assert env["OMP_NUM_THREADS"] == env["NOPOS_THREADS"] == "3"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_setup_applies_the_override(monkeypatch):
    import torch

    import nopos

    before = torch.get_num_threads()
    monkeypatch.setenv("NOPOS_THREADS", "1")
    try:
        nopos.setup(seed=0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
