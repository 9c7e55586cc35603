"""Grades out of nbgrader's gradebook, for a learning platform's gradebook.

    python -m nopos.grading.export COURSE_ROOT [--out DIR] [--section NAME]

writes three files into DIR (default: COURSE_ROOT/exports), from the course's
gradebook.db, or from the shared PostgreSQL gradebook that NOPOS_GRADEBOOK_URL
names (grading past one machine: docs/grading-at-scale.md):

- `nbgrader.csv`: nbgrader's own `nbgrader export` (one row per chapter and
  student; a missing submission scores 0 there);
- `canvas.csv`: shaped like Canvas's gradebook export, which its gradebook
  import reads back: `Student,ID,SIS User ID,SIS Login ID,Section`, one column
  per chapter, a `Points Possible` row, the course's user name in `SIS Login ID`;
- `moodle.csv`: for Moodle's "Import grades > CSV file": `Username,Email
  address,First name,Last name`, one column per chapter (map the user by
  username or email address, each chapter column to a grade item).

In the Canvas and Moodle files a learner without a graded submission gets an
empty cell, not 0: both platforms read an empty cell as "no grade" and leave
that grade alone, while a 0 would overwrite one entered by hand. The score is
the one nbgrader exports: the sum of the chapter's cell scores less any late
penalty, never below 0.
"""
import argparse
import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path

CANVAS_FIXED = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS = "    Points Possible"  # Canvas's own label (indented, as its export writes it)
MOODLE_FIXED = ["Username", "Email address", "First name", "Last name"]


@dataclass
class Grades:
    assignments: list  # [(name, max score)]
    students: list  # [(id, first, last, email)]
    scores: dict  # (student id, assignment) -> score, or None when nothing was graded


def gradebook_url(course_root):
    """The shared gradebook of grading past one machine (NOPOS_GRADEBOOK_URL, a
    PostgreSQL URL; docs/grading-at-scale.md) if set, else the course's sqlite file."""
    url = os.environ.get("NOPOS_GRADEBOOK_URL")
    if url:
        return url
    db = Path(course_root) / "gradebook.db"
    if not db.exists():
        raise SystemExit(f"no gradebook at {db}: autograde a chapter first (or pass the course root)")
    return f"sqlite:///{db.resolve()}"


def read_grades(course_root):
    """Every chapter and student of the course's gradebook, with the scores."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(gradebook_url(course_root)) as gb:
        assignments = sorted((a.name, float(a.max_score)) for a in gb.assignments)
        students = sorted((s.id, s.first_name, s.last_name, s.email) for s in gb.students)
        scores = {}
        for sid, *_ in students:
            for aid, _ in assignments:
                try:
                    sub = gb.find_submission(aid, sid)
                except MissingEntry:
                    scores[sid, aid] = None
                else:
                    scores[sid, aid] = max(0.0, float(sub.score) - float(sub.late_submission_penalty or 0))
    return Grades(assignments, students, scores)


def number(x):
    """8.0 -> '8', 7.25 -> '7.25', None -> '' (no grade)."""
    return "" if x is None else format(round(x, 2), "g")


def canvas_rows(grades, section=""):
    header = CANVAS_FIXED + [aid for aid, _ in grades.assignments]
    rows = [header, [CANVAS_POINTS, "", "", "", ""] + [number(m) for _, m in grades.assignments]]
    for sid, first, last, _ in grades.students:
        name = ", ".join(x for x in (last, first) if x) or sid  # Canvas shows "Last, First"
        rows.append([name, "", "", sid, section]
                    + [number(grades.scores[sid, aid]) for aid, _ in grades.assignments])
    return rows


def moodle_rows(grades):
    header = MOODLE_FIXED + [aid for aid, _ in grades.assignments]
    rows = [header]
    for sid, first, last, email in grades.students:
        rows.append([sid, email or "", first or "", last or ""]
                    + [number(grades.scores[sid, aid]) for aid, _ in grades.assignments])
    return rows


def write_csv(rows, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def nbgrader_export(course_root, path):
    """nbgrader's own CSV, by `nbgrader export --to PATH` run in the course root."""
    from nopos.grading.course import nbgrader

    url = gradebook_url(course_root)  # the database's password stays in PGPASSWORD
    nbgrader(course_root, "export", f"--to={Path(path).resolve()}", f"--CourseDirectory.db_url={url}")
    return Path(path)


def export_all(course_root, out=None, section=""):
    out = Path(out or Path(course_root) / "exports")
    grades = read_grades(course_root)
    out.mkdir(parents=True, exist_ok=True)
    written = [nbgrader_export(course_root, out / "nbgrader.csv"),
               write_csv(canvas_rows(grades, section), out / "canvas.csv"),
               write_csv(moodle_rows(grades), out / "moodle.csv")]
    graded = sum(v is not None for v in grades.scores.values())
    print(f"{len(grades.students)} student(s), {len(grades.assignments)} chapter(s), "
          f"{graded} graded submission(s):")
    for path in written:
        print(f"  {path}")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nopos.grading.export",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("course_root", help="the nbgrader course root (holds gradebook.db)")
    parser.add_argument("--out", help="folder for the CSV files (default: COURSE_ROOT/exports)")
    parser.add_argument("--section", default="", help="Canvas section name for every row")
    args = parser.parse_args(argv)
    export_all(args.course_root, args.out, args.section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
