"""Benchmark: `make setup` with pip and with uv, side by side, on a fresh clone.

    python -m tests.bench.install [--routes pip uv] [--keep]

For each route: a cold run (empty package cache, everything downloaded) and a
warm run (a second fresh clone, same cache). Prints the set-up time, the venv's
size, and the torch that was installed (it must be the CPU build). Each route
gets its own caches in a scratch folder, so your own caches are neither used
nor touched. Wheels that lie on this machine's disk (pip's find-links, where
the CPU build of torch is) are used by both routes, cold or warm.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TORCH_CHECK = ("import torch, importlib.metadata as m; "
               "print(torch.__version__, 'cuda' if torch.version.cuda else 'cpu', "
               "sum(d.metadata['Name'].startswith('nvidia') for d in m.distributions()))")


def fresh_clone(target):
    """The working tree as a clone would have it: tracked and untracked-but-not-ignored files."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def megabytes(path):
    return int(subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def setup(clone, route, caches):
    env = dict(os.environ, NOPOS_INSTALLER=route, PIP_CACHE_DIR=str(caches / "pip"),
               UV_CACHE_DIR=str(caches / "uv"))
    env.pop("VIRTUAL_ENV", None)
    # the bootstrap must be measured: no uv from this machine's PATH
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "uv").exists())
    start = time.perf_counter()
    done = subprocess.run(["make", "setup"], cwd=clone, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"make setup ({route}) failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    taken = "uv" if "installed with uv" in done.stdout else "pip"
    torch = subprocess.run([str(clone / ".venv/bin/python"), "-c", TORCH_CHECK],
                           capture_output=True, text=True, check=True).stdout.split()
    return seconds, megabytes(clone / ".venv"), taken, torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", nargs="+", default=["pip", "uv"], choices=["pip", "uv"])
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="nopos-bench-install-"))
    print(f"{'route':<5} {'cache':<5} {'set-up':>8} {'venv':>8}  installer  torch")
    try:
        for route in args.routes:
            caches = scratch / f"cache-{route}"
            for cache in ("cold", "warm"):
                clone = fresh_clone(scratch / f"clone-{route}-{cache}")
                seconds, size, taken, (version, build, nvidia) = setup(clone, route, caches)
                print(f"{route:<5} {cache:<5} {seconds:7.0f}s {size:6d} MB  {taken:<9}  "
                      f"{version} ({build}, {nvidia} nvidia packages)", flush=True)
                shutil.rmtree(clone)
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
