"""The instructor's commands on the hub (root, with the hub running):

    python -m nopos.hub.instructor release 01_dataset      # generate + release to learners
    python -m nopos.hub.instructor collect 01_dataset      # the latest submission of each learner
    python -m nopos.hub.instructor autograde 01_dataset --workers 2
    python -m nopos.hub.instructor feedback 01_dataset     # generate + release feedback

nbgrader's own commands run as the grader (settings.GRADER_USER) in its course
folder, as formgrader would run them. Autograding is the course's parallel batch
(nopos.grading.batch) with the sandboxed kernel (nopos.grading.sandbox): it runs
as root, because building the kernel's namespaces and cgroups needs root; every
kernel drops to a throw-away uid of its own and sees neither the gradebook nor
other submissions. What it wrote is then handed back to the grader.
"""
import argparse
import json
import os
import pwd
import subprocess
import sys

from nopos.hub import settings as s


def grader_env():
    home = pwd.getpwnam(s.GRADER_USER).pw_dir
    token = json.loads(open(s.TOKENS).read())[s.SERVICE]
    return {"HOME": home, "PATH": f"{s.ENV}/bin:/usr/bin:/bin", "PYTHONWARNINGS": "ignore",
            "JUPYTERHUB_API_TOKEN": token, "JUPYTERHUB_USER": s.GRADER_USER,
            "JUPYTERHUB_API_URL": f"http://{s.HUB_IP}:{s.HUB_API_PORT}/hub/api"}


def as_grader(*args, check=True):
    """`nbgrader ARGS` as the grader, in the course folder."""
    env = [f"{k}={v}" for k, v in grader_env().items()]
    cmd = ["runuser", "-u", s.GRADER_USER, "--", "env", "-i", *env,
           f"{s.ENV}/bin/python", "-P", "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=s.COURSE_ROOT, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"`nbgrader {' '.join(args)}` failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc


def give_back(path=s.COURSE_ROOT):
    entry = pwd.getpwnam(s.GRADER_USER)
    subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", path], check=True)


def release(aid):
    as_grader("generate_assignment", aid, "--force")
    return as_grader("release_assignment", aid, "--force")


def collect(aid):
    return as_grader("collect", aid, "--update")


def autograde(aid, workers=2):
    """The parallel sandboxed batch; returns its exit status (1: someone not graded)."""
    # the sandbox calls mount, unshare and pivot_root (in sbin)
    env = dict(os.environ, PATH=f"{s.ENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    try:  # -P, cwd /: nothing from the course folder lands on root's import path
        proc = subprocess.run([f"{s.ENV}/bin/python", "-P", "-m", "nopos.grading.batch",
                               s.COURSE_ROOT, aid, "--workers", str(workers)], cwd="/", env=env)
    finally:
        give_back()
    return proc.returncode


def feedback(aid):
    as_grader("generate_feedback", aid, "--force")
    return as_grader("release_feedback", aid)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["release", "collect", "autograde", "feedback"])
    parser.add_argument("assignment")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.action == "autograde":
        return autograde(args.assignment, args.workers)
    proc = {"release": release, "collect": collect, "feedback": feedback}[args.action](args.assignment)
    print((proc.stdout + proc.stderr).strip()[-2000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
