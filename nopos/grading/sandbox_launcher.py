"""The kernel launcher of the grading sandbox (stdlib only: it starts every kernel,
so it must not import nbgrader, torch or the nopos package).

    setpriv --pdeathsig KILL unshare --mount --net --pid --fork --kill-child --mount-proc \
        python -I nopos/grading/sandbox_launcher.py launch --settings JSON -- python -P -s -m ipykernel_launcher -f CONN

Inside the fresh namespaces, as root, it joins its own memory and pids cgroups,
builds a new root from an allow-list (system libraries and the Python
installation read-only, the course's packages read-only, the kernel's working
folder as a throw-away overlay, its connection folder, a private /tmp and
/dev/shm), pivots into it so that nothing else on the machine exists for the
kernel, sets rlimits, drops to an unprivileged uid of its own and execs the
kernel with an allow-listed environment. See nopos/grading/sandbox.py.
"""
import argparse
import glob
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

CGROUP_V1 = Path("/sys/fs/cgroup")
LAUNCHER = os.path.abspath(__file__)

# What the kernel sees of the machine besides the Python installation, the course's
# packages and its own folders: programs and shared libraries, read-only.
SYSTEM = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"]
ETC = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "nsswitch.conf",
       "passwd", "group", "hosts", "mime.types", "fonts", "alternatives", "ssl"]
DEVICES = ["null", "zero", "full", "random", "urandom"]
# The kernel's environment: these variables of the grader's, when set, and nothing else
ENV_ALLOW = ["LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "PYTHONWARNINGS", "PYTHONHASHSEED",
             "NBGRADER_EXECUTION", "NOPOS_NONINTERACTIVE", "NOPOS_QUICK", "NOPOS_DEVICE",
             "NOPOS_THREADS", "OMP_WAIT_POLICY"]


# --------------------------------------------------------------------- probe
def probe():
    """What this machine can contain: {'unshare': bool, 'cgroup': bool, 'root': bool, ...}."""
    found = {"root": os.geteuid() == 0, "prlimit": True}
    unshare = shutil.which("unshare")
    found["unshare"] = bool(unshare) and found["root"] and subprocess.run(
        [unshare, "--mount", "--net", "--pid", "--fork", "--mount-proc", "true"],
        capture_output=True).returncode == 0
    found["cgroup"] = found["root"] and all(
        os.access(CGROUP_V1 / c, os.W_OK) for c in ("memory", "pids"))
    found["overlay"] = "overlay" in Path("/proc/filesystems").read_text()
    found["pivot_root"] = bool(shutil.which("pivot_root"))
    return found


_PROBED = None


def probed():
    global _PROBED
    if _PROBED is None:
        _PROBED = probe()
    return _PROBED


# ------------------------------------------------------------------ launcher
def kernel_argv(settings, kernel=None):
    """argv of a sandboxed ipykernel: unshare (when it works) + the launcher + ipykernel.

    The kernel's Python runs with -P (its working folder, where a learner may put
    a `torch.py` or a `nopos/`, is not on sys.path; IPython respects it) and -s
    (no user site-packages). ipykernel does not capture file descriptors 1 and 2
    (`capture_fd_output`): what is written straight to them is not the notebook's
    output, and goes to /dev/null (launch, below) instead of the grader. What the
    notebook prints goes out in messages of at most 1 MB (nopos/grading/outstream.py)."""
    kernel = kernel or [sys.executable, "-P", "-s", "-m", "ipykernel_launcher",
                        "--IPKernelApp.capture_fd_output=False",
                        "--IPKernelApp.outstream_class=nopos.grading.outstream.ChunkedOutStream",
                        "-f", "{connection_file}"]
    launcher = [sys.executable, "-I", LAUNCHER, "launch",
                "--settings", json.dumps(settings), "--"]
    prefix = []
    if settings.get("namespaces", True) and probed()["unshare"]:
        prefix = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
        if not settings.get("network", False):
            prefix.insert(1, "--net")
    if shutil.which("setpriv"):
        # if nbgrader is killed (the per-notebook wall limit), its kernel goes too
        prefix = ["setpriv", "--pdeathsig", "KILL"] + prefix
    return prefix + launcher + kernel


def _mount(*args):
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _bind(source, target, readonly=True):
    """Bind `source` at `target` (made as a file or a folder); read-only unless told."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "a").close()
    _mount("--bind", source, target)
    if readonly:
        _mount("-o", "remount,bind,ro,nosuid,nodev", target)


def _graft(new, path, readonly=True):
    """Bring `path` of the machine into the new root at the same place; a symbolic link
    (/lib -> usr/lib) comes as the same link."""
    if os.path.islink(path):
        target = new + path
        if not os.path.lexists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(path), target)
    elif os.path.exists(path):
        _bind(path, new + path, readonly)


def _stage():
    """An empty folder for the new root, outside every path it will bring in."""
    for stage in ("/mnt", "/media", "/srv", "/opt"):
        if os.path.isdir(stage):
            return stage
    raise OSError("no folder to build the kernel's root in")


def build_root(cwd, runtime, python, packages, overlay=True):
    """In this (private) mount namespace: a new root holding only the allow-list,
    then pivot into it. `packages`: [(source folder, mount point)] read-only, in that
    order after the Python installation (a mount point may lie inside it)."""
    subprocess.run(["mount", "--make-rprivate", "/"], capture_output=True)
    new = _stage()
    staged = {}  # the kernel's own folders may lie under the stage: reach them first
    _mount("-t", "tmpfs", "-o", "mode=700,size=1m", "nopos-hold", "/dev/shm")
    for i, path in enumerate(filter(None, [cwd, runtime])):
        hold = f"/dev/shm/nopos-{i}"
        os.makedirs(hold)
        _mount("--bind", path, hold)
        staged[path] = hold
    _mount("-t", "tmpfs", "-o", "mode=755,size=4m", "nopos-root", new)
    for sub, mode in (("tmp", 0o1777), ("dev", 0o755), ("proc", 0o555), ("etc", 0o755)):
        os.makedirs(f"{new}/{sub}")
        os.chmod(f"{new}/{sub}", mode)
    _mount("-t", "tmpfs", "-o", "mode=1777,size=512m,nosuid,nodev", "nopos-tmp", f"{new}/tmp")
    for dev in DEVICES:
        _bind(f"/dev/{dev}", f"{new}/dev/{dev}", readonly=False)
    os.makedirs(f"{new}/dev/shm")
    _mount("-t", "tmpfs", "-o", "mode=1777,size=256m,nosuid,nodev", "nopos-shm", f"{new}/dev/shm")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{name}")
    _mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", f"{new}/proc")
    for path in SYSTEM:
        _graft(new, path)
    for name in ETC:
        _graft(new, f"/etc/{name}")
    cpu = "/sys/devices/system/cpu"  # torch and numpy count the cores here
    if os.path.isdir(cpu):
        _bind(cpu, new + cpu)
    for path in python:
        _graft(new, path)
    for source, point in packages:
        if not os.path.isdir(new + point) and os.path.exists(os.path.dirname(new + point)) \
                and any(point.startswith(p + os.sep) for p in python):
            raise OSError(f"cannot bring the package {source} in at {point}: no such folder "
                          f"in the Python installation")
        _bind(source, new + point)
    if runtime:
        _bind(staged[runtime], new + runtime, readonly=False)
    _working_folder(staged[cwd], new + cwd, f"{new}/tmp", overlay)
    subprocess.run(["umount", "-l", "/dev/shm"], capture_output=True)
    os.makedirs(f"{new}/.old")
    subprocess.run(["pivot_root", new, f"{new}/.old"], check=True, capture_output=True)
    os.chdir("/")
    subprocess.run(["umount", "-l", "/.old"], check=True, capture_output=True)
    os.rmdir("/.old")
    _mount("-o", "remount,bind,ro", "/")  # nothing new at the top


def _working_folder(source, target, tmp, overlay):
    """The kernel may write in its working folder, in a layer that vanishes with it;
    the notebook being graded (it holds the restored hidden tests) is not there."""
    os.makedirs(target, exist_ok=True)
    made = False
    if overlay:
        upper, work = f"{tmp}/.nopos-overlay/up", f"{tmp}/.nopos-overlay/work"
        os.makedirs(upper)
        os.makedirs(work)
        os.chmod(f"{tmp}/.nopos-overlay", 0o711)
        try:
            _mount("-t", "overlay", "overlay", "-o",
                   f"lowerdir={source},upperdir={upper},workdir={work}", target)
            os.chmod(target, 0o1777)
            made = True
        except (subprocess.CalledProcessError, OSError):
            pass
    if made:
        for nb in glob.glob(os.path.join(target, "*.ipynb")):
            os.remove(nb)
    else:
        _bind(source, target)
        for nb in glob.glob(os.path.join(target, "*.ipynb")):
            _mount("--bind", "/dev/null", nb)


# ------------------------------------------------------------------- cgroups
def _groups(name):
    return [CGROUP_V1 / ctl / "nopos" / name for ctl in ("memory", "pids", "cpu")]


def join_cgroup(name, memory_mb, max_procs, cpus=None):
    """Put this process in fresh memory, pids and cpu cgroups (v1) named `name`.

    `cpus`: the CPU time the whole kernel may use, in CPUs (1.5 = one and a half
    cores), however many processes it starts: a fork bomb or a busy-looping
    notebook then slows only itself, not the other students graded at the same time."""
    memory, pids, cpu = _groups(name)
    for group, knob, value in ((memory, "memory.limit_in_bytes", memory_mb * 2 ** 20),
                               (pids, "pids.max", max_procs)):
        group.mkdir(parents=True, exist_ok=True)
        if knob.startswith("memory"):
            try:
                (group / "memory.memsw.limit_in_bytes").write_text(str(value))
            except OSError:
                pass
        (group / knob).write_text(str(value))
        (group / "cgroup.procs").write_text(str(os.getpid()))
    if cpus:
        try:  # a bonus where the cpu controller is there: the others are the containment
            cpu.mkdir(parents=True, exist_ok=True)
            period = int((cpu / "cpu.cfs_period_us").read_text())
            (cpu / "cpu.cfs_quota_us").write_text(str(max(1000, int(cpus * period))))
            (cpu / "cgroup.procs").write_text(str(os.getpid()))
        except (OSError, ValueError):
            pass


def kill_cgroup(name, wait=5.0):
    """Kill every process of the kernel's cgroup (a process that left the kernel's
    session and parent behind is still in it), then remove the group. True when empty."""
    return kill_groups(_groups(name), wait) if name else True


def cgroup_members(groups):
    """The pids in cgroup folders `groups` (v1 or v2: both list them in cgroup.procs)."""
    pids = set()
    for group in groups:
        try:
            pids.update(int(p) for p in (Path(group) / "cgroup.procs").read_text().split())
        except OSError:
            pass
    return pids


def kill_groups(groups, wait=5.0):
    """SIGKILL every process in cgroup folders `groups` until none is left (or `wait`
    seconds pass: a process can fork while it is being killed), then remove the
    folders. True when they were emptied. (The hub's per-user groups use it too.)"""
    deadline = time.monotonic() + wait
    while True:
        pids = cgroup_members(groups)
        if not pids or time.monotonic() > deadline:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    for group in groups:
        try:
            Path(group).rmdir()
        except OSError:
            pass
    return not pids


def kernel_env(settings, home="/tmp"):
    """The kernel's environment: allow-listed variables of the grader, then the settings'."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    python_bin = os.path.dirname(settings.get("python_bin") or sys.executable)
    env.update(PATH=os.pathsep.join([python_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
               HOME=home, MPLCONFIGDIR=f"{home}/mpl", XDG_CACHE_HOME=f"{home}/cache",
               NOPOS_HOME=f"{home}/nopos", LANG=env.get("LANG", "C.UTF-8"))
    env.update(settings.get("env", {}))
    return env


def _own_folder(path, uid):
    """Give the kernel's uid a folder the grader made for this start: never through a
    link, never anything but a real folder of the grader's (a kernel cannot have touched it)."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise OSError(f"{path} is not a folder of the grader's: the kernel is not started")
    os.chown(path, uid, uid, follow_symlinks=False)


def _read_connection(path):
    """The connection file's bytes, read as the grader (never through a link)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return f.read(1 << 16)


def _give_connection(data, folder, uid):
    """The kernel's own copy of its connection file (ipykernel reads and rewrites it)."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, "kernel.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if uid is not None:
        os.chown(folder, uid, uid, follow_symlinks=False)
        os.chown(path, uid, uid, follow_symlinks=False)
    return path


def launch(settings, argv):
    """Runs as the kernel process: contain, then exec ipykernel (argv).

    Nothing the kernel can write is trusted here: the connection file lies in the
    grader's folder, out of the kernel's view, and the kernel gets a copy of it; the
    only folder it shares with the grader (`sockets`, its sockets) is made fresh by
    the grader for this start and given to its uid without following links."""
    at = next((i for i, a in enumerate(argv) if i and argv[i - 1] == "-f"), None)
    connection_file = argv[at] if at is not None else ""
    root = os.geteuid() == 0
    in_namespace = os.getpid() == 1
    # without a mount namespace the kernel sees the real disk, where the Python
    # installation may sit in a home only root can enter: stay root there
    drop = root and settings.get("drop_privileges", True) and (in_namespace or settings.get("uid"))
    uid = settings.get("uid") or (200000 + (uuid.uuid4().int % 1000000))
    cwd = os.getcwd()
    sockets = settings.get("sockets") or (
        os.path.dirname(os.path.abspath(connection_file)) if connection_file else None)
    connection = _read_connection(connection_file) if connection_file and drop else None
    if drop and sockets:
        _own_folder(sockets, uid)
    if root and settings.get("cgroup_name") and os.access(CGROUP_V1 / "memory", os.W_OK):
        try:
            join_cgroup(settings["cgroup_name"], settings["memory_mb"], settings["max_procs"],
                        settings.get("cpus"))
        except OSError as error:
            print(f"nopos.grading.sandbox: no cgroup ({error}); rlimits only", file=sys.stderr)
    if in_namespace and root:
        python = sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
                         *settings.get("python", [])})
        build_root(cwd, sockets, python, [tuple(p) for p in settings.get("packages", [])],
                   overlay=settings.get("writable_cwd", True) and probed_overlay())
        os.chdir(cwd)
    if connection is not None:  # its private /tmp in its own root; else its socket folder
        argv[at] = _give_connection(connection, "/tmp/.nopos-kernel" if in_namespace else
                                    os.path.join(sockets, ".kernel"), uid)
    limits = {
        resource.RLIMIT_AS: settings["address_space_mb"] * 2 ** 20,
        resource.RLIMIT_CPU: settings["cpu_seconds"],
        resource.RLIMIT_NPROC: settings["max_procs"],
        resource.RLIMIT_FSIZE: settings["file_size_mb"] * 2 ** 20,
        resource.RLIMIT_NOFILE: settings["open_files"],
        resource.RLIMIT_CORE: 0,
    }
    for which, value in limits.items():
        if value:
            resource.setrlimit(which, (value, value))
    env = kernel_env(settings) if (in_namespace or drop) else kernel_env(
        settings, home=os.environ.get("HOME", "/tmp"))
    if drop:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if in_namespace:
        # changing uid cleared unshare --kill-child's parent-death signal: set it again,
        # so that the kernel dies with unshare (and unshare with nbgrader)
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    if settings.get("quiet_fds", True):
        # the kernel's own stdout and stderr (fds 1 and 2, not the notebook's output, which
        # goes over its sockets) are not the grader's: what learner code writes straight to
        # them is dropped, never buffered by nbgrader or the batch nor written to their logs
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
    os.execvpe(argv[0], argv, env)


def probed_overlay():
    return "overlay" in Path("/proc/filesystems").read_text()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "launch":
        cut = argv.index("--")
        parser = argparse.ArgumentParser(prog="sandbox_launcher launch")
        parser.add_argument("--settings", required=True)
        args = parser.parse_args(argv[1:cut])
        return launch(json.loads(args.settings), argv[cut + 1:])
    if argv and argv[0] == "probe":
        print(json.dumps(probe(), indent=2))
        return 0
    print("usage: sandbox_launcher.py probe | launch --settings JSON -- KERNEL ARGV")
    return 2


if __name__ == "__main__":
    sys.exit(main())
