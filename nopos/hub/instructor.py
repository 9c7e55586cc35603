"""The instructor's commands on the hub (root, with the hub running):

    python -m nopos.hub.instructor release 01_dataset      # generate + release to learners
    python -m nopos.hub.instructor collect 01_dataset      # the latest submission each learner made
    python -m nopos.hub.instructor autograde 01_dataset --workers 2 [--student bob]
    python -m nopos.hub.instructor feedback 01_dataset     # generate + release feedback, publish answers
    python -m nopos.hub.instructor publish 01_dataset      # only publish the chapter's answers
    python -m nopos.hub.instructor report 01_dataset       # scores, statuses, set-aside submissions

Collect accepts only submissions their learner made (nopos.grading.ownership):
the inbound is closed to new submissions, each submission folder is frozen (made
root's, so its learner can no longer change it) and verified, then copied by
nbgrader; the others, and any nbgrader could not read, are set aside in
settings.SET_ASIDE and named in every report. Releasing feedback
closes the chapter's grades: its reference answers are then published into the
learners' environment (nopos.hub.answers), never before.

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
import stat
import subprocess
import sys
from pathlib import Path

from nopos.grading import course_view, ownership
from nopos.hub import answers, settings as s

INBOUND_OPEN = 0o3733   # learners create submissions, cannot list, rename or remove others'
INBOUND_CLOSED = 0o2700  # while collect screens and copies


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


def private_course(root=s.COURSE_ROOT):
    """The course folder (source notebooks, gradebook) is the grader's alone: a mode that
    lets others in is fixed, and said."""
    root = Path(root)
    if root.exists() and stat.S_IMODE(root.stat().st_mode) & 0o077:
        print(f"the course folder {root} was open to others (mode "
              f"{oct(stat.S_IMODE(root.stat().st_mode))}): made it 700", file=sys.stderr)
        os.chmod(root, 0o700)


def give_back(path=s.COURSE_ROOT):
    entry = pwd.getpwnam(s.GRADER_USER)
    subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", path], check=True)


def release(aid):
    as_grader("generate_assignment", aid, "--force")
    return as_grader("release_assignment", aid, "--force")


def inbound():
    return Path(s.EXCHANGE) / s.COURSE / "inbound"


def collect(aid):
    """nbgrader's collect of the submissions their learners made; others set aside.
    The inbound is closed meanwhile, so nothing new lands between screening and copying."""
    folder = inbound()
    if not folder.is_dir():
        raise SystemExit(f"no inbound at {folder}: release the assignment first")
    os.chmod(folder, INBOUND_CLOSED)
    try:
        # frozen (root's, the grader's to read) and verified, then copied: no window
        moved = ownership.screen(folder, aid, s.SET_ASIDE, gid=pwd.getpwnam(s.GRADER_USER).pw_gid)
        # the owner is root's now, checked by the screen: nbgrader's warning would be noise
        proc = as_grader("collect", aid, "--update", "--CollectApp.check_owner=False")
    finally:
        os.chmod(folder, INBOUND_OPEN)
    said = "".join(f"SET ASIDE {r['name']}: {r['reason']} (kept in {r['kept_at']})\n" for r in moved)
    proc.stderr += "\n" + (said or "set aside: none (every submission is its learner's own)\n")
    return proc


def timed_out_cells(student, aid, root=s.COURSE_ROOT):
    """The cells of `student`'s autograded notebooks the sandbox stopped at its cell
    limit (nopos.grading.sandbox writes a CellTimeoutError output there): a score
    made under a loaded machine rather than by the learner's work."""
    cells = []
    for path in sorted((Path(root) / "autograded" / student / aid).glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for index, cell in enumerate(nb.get("cells", [])):
            if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
                cells.append(index)
    return cells


def report_lines(aid):
    """Every learner's score and status in the gradebook, then what was set aside."""
    from nbgrader.api import Gradebook, MissingEntry

    lines = [f"{'learner':<24} {'score':>9}  status"]
    with Gradebook(f"sqlite:///{Path(s.COURSE_ROOT) / 'gradebook.db'}") as gb:
        for student in sorted(st.id for st in gb.students):
            try:
                sub = gb.find_submission(aid, student)
            except MissingEntry:
                lines.append(f"{student:<24} {'-':>9}  no submission collected")
                continue
            grades = [g for nb in sub.notebooks for g in nb.grades]
            graded = any(g.auto_score is not None or g.manual_score is not None for g in grades)
            status = "graded" if graded else "collected, not graded (see the batch's line above)"
            cells = timed_out_cells(student, aid)
            if graded and cells:
                status = (f"timed out (cell {', '.join(map(str, cells))}): regrade with "
                          f"STUDENT={student}")
            if sub.needs_manual_grade:
                status += ", needs manual grading"
            late = f", late by {sub.total_seconds_late:.0f} s" if sub.total_seconds_late else ""
            lines.append(f"{student:<24} {sub.score:>4g}/{sub.max_score:<4g}  {status}{late}")
    aside = ownership.set_aside_report(s.SET_ASIDE, aid)
    lines.append(f"set aside: {len(aside)}" + ("" if aside else " (none)"))
    lines += [f"  {r['name']}: {r['reason']} ({r['at']}, kept in {r['kept_at']})" for r in aside]
    return lines


def autograde(aid, workers=2, students=()):
    """The parallel sandboxed batch (the named students only, when given); returns its
    exit status (1: someone not graded)."""
    # the sandbox calls mount, unshare and pivot_root (in sbin)
    env = dict(os.environ, PATH=f"{s.ENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    # the kernel sees only answers that are published (closed grades), of earlier chapters
    env[course_view.CHAPTERS_VAR] = ",".join(answers.released_chapters())
    try:  # -P, cwd /: nothing from the course folder lands on root's import path
        only = [arg for name in students for arg in ("--student", name)]
        proc = subprocess.run([f"{s.ENV}/bin/python", "-P", "-m", "nopos.grading.batch",
                               s.COURSE_ROOT, aid, "--workers", str(workers), *only], cwd="/", env=env)
    finally:
        give_back()
    return proc.returncode


def feedback(aid):
    """Feedback generated and released; the chapter's grades are closed, so its
    answers are published to the learners' environment."""
    as_grader("generate_feedback", aid, "--force")
    proc = as_grader("release_feedback", aid)
    proc.stdout += "\n" + publish(aid).stdout + "\n"
    return proc


def publish(aid):
    modules = answers.release(aid)
    return subprocess.CompletedProcess([], 0, stdout=(
        f"published to the learners' environment: nopos_reference {', '.join(modules) or '(nothing)'}"), stderr="")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["release", "collect", "autograde", "feedback", "publish", "report"])
    parser.add_argument("assignment")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--student", action="append", default=[],
                        help="autograde only this learner (repeatable): a regrade")
    args = parser.parse_args(argv)
    private_course()
    if args.action == "report":
        print("\n".join(report_lines(args.assignment)))
        return 0
    if args.action == "autograde":
        status = autograde(args.assignment, args.workers, args.student)
        print("\n".join(report_lines(args.assignment)))
        return status
    proc = {"release": release, "collect": collect, "feedback": feedback,
            "publish": publish}[args.action](args.assignment)
    print((proc.stdout + proc.stderr).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
