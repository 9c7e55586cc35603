"""The kernel launcher of the grading sandbox (stdlib only: it starts every kernel,
so it must not import nbgrader, torch or the nopos package).

    unshare --mount --net --pid --fork --kill-child --mount-proc \
        python -I nopos/sandbox_launcher.py launch --settings JSON -- python -m ipykernel_launcher -f CONN

Inside the fresh namespaces, as root, it hides the course behind empty mounts,
gives the kernel a private /tmp, joins memory and pids cgroups, sets rlimits,
drops to an unprivileged uid of its own and execs the kernel. See nopos/sandbox.py.
"""
import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

CGROUP_V1 = Path("/sys/fs/cgroup")
LAUNCHER = os.path.abspath(__file__)


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
    return found


_PROBED = None


def probed():
    global _PROBED
    if _PROBED is None:
        _PROBED = probe()
    return _PROBED


# ------------------------------------------------------------------ launcher
def kernel_argv(settings, kernel=None):
    """argv of a sandboxed ipykernel: unshare (when it works) + the launcher + ipykernel."""
    kernel = kernel or [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
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


def _hide(paths, keep, connection_file, overlay=True, reveal=()):
    """In this (private) mount namespace: empty every path in `paths` and /tmp,
    then bring back the paths in `keep` (the kernel's working directory first,
    its runtime folder) at the same place."""
    stage = "/dev/shm"
    _mount("-t", "tmpfs", "-o", "mode=700,size=1m", "nopos-stage", stage)
    staged = {}
    hidden = [os.path.abspath(p) for p in paths] + ["/tmp"]  # /tmp is emptied below
    for path in reveal:  # e.g. the Python installation, when it lives under a hidden home
        if any(path == h or path.startswith(h + os.sep) for h in hidden):
            keep = list(keep) + [path]
    for i, path in enumerate(keep):
        if os.path.isdir(path):
            os.mkdir(f"{stage}/{i}")
            _mount("--bind", path, f"{stage}/{i}")
            staged[path] = f"{stage}/{i}"
    for path in sorted(set(paths), key=len):
        if os.path.isdir(path):
            _mount("-t", "tmpfs", "-o", "mode=755,size=1m", "nopos-hidden", path)
    _mount("-t", "tmpfs", "-o", "mode=1777,size=512m", "nopos-tmp", "/tmp")
    for path, src in staged.items():
        os.makedirs(path, exist_ok=True)
        _mount("--bind", src, path)
        if path in reveal:
            _mount("-o", "remount,bind,ro", path)
    # a revealed tree (the course's code under /tmp, say) came back whole: hide
    # again what lies inside it, unless it holds what the kernel must keep
    for path in sorted(set(paths), key=len):
        inside = any(path.startswith(r + os.sep) for r in reveal if r in staged)
        holds_kept = any(k == path or k.startswith(path + os.sep) for k in keep if k not in reveal)
        if inside and not holds_kept and os.path.isdir(path):
            _mount("-t", "tmpfs", "-o", "mode=755,size=1m", "nopos-hidden", path)
    for src in staged.values():
        subprocess.run(["umount", "-l", src], capture_output=True)
    subprocess.run(["umount", "-l", stage], capture_output=True)
    _mount("-t", "tmpfs", "-o", "mode=1777,size=256m", "nopos-shm", stage)
    cwd = keep[0]
    if overlay and _overlay(cwd):
        # the notebook being graded holds the restored (hidden) tests: gone from the view
        for nb in glob.glob(os.path.join(cwd, "*.ipynb")):
            os.remove(nb)
    else:
        for nb in glob.glob(os.path.join(cwd, "*.ipynb")):
            _mount("--bind", "/dev/null", nb)


def _cgroup(name, memory_mb, max_procs):
    """Put this process in fresh memory and pids cgroups (v1); clear stale ones."""
    made = []
    for ctl, knob, value in (("memory", "memory.limit_in_bytes", memory_mb * 2 ** 20),
                             ("pids", "pids.max", max_procs)):
        base = CGROUP_V1 / ctl / "nopos"
        base.mkdir(exist_ok=True)
        for old in base.glob("k*"):
            try:
                old.rmdir()  # only succeeds once its kernel has gone
            except OSError:
                pass
        group = base / name
        group.mkdir(exist_ok=True)
        if ctl == "memory":
            try:
                (group / "memory.memsw.limit_in_bytes").write_text(str(value))
            except OSError:
                pass
        (group / knob).write_text(str(value))
        (group / "cgroup.procs").write_text(str(os.getpid()))
        made.append(str(group))
    return made


def launch(settings, argv):
    """Runs as the kernel process: contain, then exec ipykernel (argv)."""
    connection_file = next((a for i, a in enumerate(argv) if i and argv[i - 1] == "-f"), "")
    root = os.geteuid() == 0
    in_namespace = os.getpid() == 1
    # without a mount namespace the kernel sees the real disk, where the Python
    # installation may sit in a home only root can enter: stay root there
    drop = root and settings.get("drop_privileges", True) and (in_namespace or settings.get("uid"))
    uid = settings.get("uid") or (200000 + os.getpid() if not in_namespace else
                                  200000 + (uuid.uuid4().int % 1000000))
    cwd = os.getcwd()
    runtime = os.path.dirname(os.path.abspath(connection_file)) if connection_file else None
    if drop:
        for path in filter(None, [runtime, connection_file]):
            os.chown(path, uid, uid)  # its own connection file and socket folder only
    if in_namespace and root:
        hide = [p for p in settings.get("hide", []) if p]
        python = os.path.realpath(sys.base_prefix)
        for parent in reversed(Path(python).parents):  # e.g. /root (0700) above a pyenv Python
            if str(parent) != "/" and not os.stat(parent).st_mode & 0o001:
                hide.append(str(parent))
                break
        _hide(hide, [cwd] + ([runtime] if runtime else []), connection_file,
              overlay=settings.get("writable_cwd", True) and probed_overlay(),
              reveal=[os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
                      *settings.get("reveal", [])])  # Python, venv, the course's packages
        for copy, target in settings.get("packages", []):  # the chapter's view (course_view.py)
            if os.path.isdir(copy) and os.path.isdir(target):
                _mount("--bind", copy, target)
                _mount("-o", "remount,bind,ro", target)
        os.chdir(cwd)
    if root and settings.get("cgroup", True) and os.access(CGROUP_V1 / "memory", os.W_OK):
        try:
            _cgroup(f"k{uuid.uuid4().hex[:12]}", settings["memory_mb"], settings["max_procs"])
        except OSError as error:
            print(f"nopos.sandbox: no cgroup ({error}); rlimits only", file=sys.stderr)
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
    env = dict(os.environ)
    if drop:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        env.update(HOME="/tmp", MPLCONFIGDIR="/tmp/mpl", XDG_CACHE_HOME="/tmp/cache")
    env.update(settings.get("env", {}))
    if in_namespace:
        # changing uid cleared unshare --kill-child's parent-death signal: set it again,
        # so that the kernel dies with unshare (and unshare with nbgrader)
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    os.execvpe(argv[0], argv, env)


def probed_overlay():
    return "overlay" in Path("/proc/filesystems").read_text()


def _overlay(path):
    """Let the kernel write in its working directory; the writes vanish with it."""
    upper = Path("/tmp/.nopos-overlay")
    (upper / "up").mkdir(parents=True, exist_ok=True)
    (upper / "work").mkdir(parents=True, exist_ok=True)
    os.chmod(upper, 0o711)
    try:
        _mount("-t", "overlay", "overlay", "-o",
               f"lowerdir={path},upperdir={upper / 'up'},workdir={upper / 'work'}", path)
        os.chmod(path, 0o1777)
        return True
    except (subprocess.CalledProcessError, OSError):
        return False


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
