"""Bad and hostile submissions through real nbgrader, and the sandbox.

One scratch course grades a whole class at once, in parallel (nopos.grading.batch:
one real `nbgrader autograde --student` per student, 2 at a time): the reference
answers, a realistic wrong answer, the core cases of tests/hostile/cases.py (every
case with NOPOS_HOSTILE=all), and student folders whose names must be refused. Each case must lose exactly the
tests it names, with a readable reason, while the rest of its notebook and every
other student are graded normally; nothing outside the course changes; no
feedback or output shows a hidden test; the gradebook and the exported CSV list
every student; grading again gives the same. A small subset also goes through
stock `nbgrader autograde` with the course's config.
"""
import csv
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, filled_release, message_executor, source_path
from hostile.cases import AID, BAD_IDS, CORE, GOOD_IDS, HIDDEN_ARGS, MARKER, SECRET, TESTS, cases
from nopos.grading import batch, course, sandbox_launcher
from nopos.grading.batch import ORIGINALS, grade_batch, intake
from nopos.grading.sandbox import SandboxedExecute, release_runtime

# short limits: the battery must fit a CI budget on 2 cores. 60 s a cell leaves room for
# the imports cell (about 5 s alone, 20 s with four gradings on two cores) while the
# other test worker grades beside it; it is what `uncatchable_loop` waits out
SETTINGS = {"Execute.timeout": 60, "SandboxedExecute.notebook_timeout": 240,
            "SandboxedExecute.memory_mb": 1024, "SandboxedExecute.address_space_mb": 4096,
            "SandboxedExecute.cpu_seconds": 120, "SandboxedExecute.max_procs": 48}
ALL_CASES = cases()
_PICK = os.environ.get("NOPOS_HOSTILE", "")  # "all", or case names (a comma list) to grade only those
CASES = (ALL_CASES if _PICK == "all" else {k: ALL_CASES[k] for k in _PICK.split(",")} if _PICK
         else {k: ALL_CASES[k] for k in CORE})
WRONG = "bos_in_loss"  # a realistic wrong answer: loses test_masked_loss, 2 points
NEEDS_ROOT = pytest.mark.skipif(not sandbox_launcher.probed()["unshare"],
                                reason="namespaces need root and a working unshare")
PROTECTED = [ROOT / "nopos" / "checks" / "ch01.py", ROOT / "autograder" / "nbgrader_config.py"]
SHARED = [Path("/var/tmp"), Path("/run/lock"), Path("/dev/shm"), Path("/tmp")]
# stock nbgrader too: the seams a privileged step and the grader's memory offer (link_notebook
# and shadow_nopos are refused by intake and by the kernel's view, as in the batch: core cases)
STOCK = ["reference", "relink_exit", "direct_fds"]
# The grader's (nbgrader's) peak memory, whatever a notebook sends or prints: its own
# (about 320 MB for chapter 1: torch and nbgrader) + what the relay lets the kernel make it
# hold (nopos/grading/sandbox.py, CHANNELS: a 96 MB reply, queued output)
GRADER_PEAK_MB = 1024
BATCH_PEAK_MB = 2048  # the batch's process (here: pytest, torch imported) at its peak
# graded first: they wait out a limit or restart their kernel, and the other grader of
# the pair works meanwhile (last, they would leave the pair's other half idle)
SLOW_FIRST = ["uncatchable_loop", "infinite_loop", "sleep", "memory_creep", "fork_bomb",
              "segfault", "os_exit", "print_in_calls", "relink_in_call", "kill_after_tests",
              "direct_fds", "print_100mb", "output_flood", "read_hidden", "survivor"]


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _tree(folder):
    """Every entry under `folder`, links as links: what a grader must never change."""
    out = {}
    for dirpath, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(dirpath) / name
            out[str(p.relative_to(folder))] = (os.readlink(p) if p.is_symlink() else
                                               _digest(p) if p.is_file() else "dir")
    return out


def _submit_class(root, work, names):
    import importlib

    wrong = importlib.import_module("wrong.ch01_dataset").CASES[WRONG]
    plain = {"reference": filled_release(AID), "wrong": filled_release(AID, wrong.answers)}
    plain.update({name: filled_release(AID) for name in BAD_IDS + GOOD_IDS})
    for name, nb in plain.items():
        if name in names:
            nbformat.write(nb, work / "plain.ipynb")
            course.submit(root, AID, name, work / "plain.ipynb")
    for name, case in CASES.items():
        if name in names:
            path = work / f"{name}.ipynb"
            case.build(root, path)
            course.submit(root, AID, name, path)
            if case.extra:
                case.extra(root, root / "submitted" / name / AID)


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    root = course.make_course(tmp_path_factory.mktemp("hostile-course"), [AID], SETTINGS)
    students = sorted(["reference", "wrong", *GOOD_IDS, *CASES])
    _submit_class(root, tmp_path_factory.mktemp("hostile-submissions"), students + BAD_IDS)
    before = {p: _digest(p) for p in PROTECTED}
    submitted = _tree(root / "submitted")
    os.environ["NOPOS_GRADER_SECRET"] = SECRET  # must never reach a kernel
    try:
        start = time.monotonic()
        stats = {}
        outcome = grade_batch(root, AID, _slowest_first(students) + BAD_IDS, workers=2, stats=stats)
        seconds = time.monotonic() - start
    finally:
        del os.environ["NOPOS_GRADER_SECRET"]
    batch_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print(f"\nhostile battery: {len(outcome)} submissions graded in {seconds:.0f} s (2 workers); "
          f"batch process peak {batch_peak} MB")
    print(_table(root, outcome, stats))
    return {"root": root, "outcome": outcome, "before": before, "submitted": submitted,
            "students": students, "seconds": seconds, "stats": stats, "batch_peak": batch_peak}


def _slowest_first(students):
    """Kernels that wait or restart first, notebooks that run no kernel (rejected) last."""
    def rank(name):
        if name in SLOW_FIRST:
            return SLOW_FIRST.index(name)
        return len(SLOW_FIRST) + (name in CASES and CASES[name].raw)
    return sorted(students, key=rank)


def _table(root, outcome, stats=None):
    """The battery's results, one line a student: score, status, grader's peak MB, first reason."""
    stats = stats or {}
    lines = [f"{'student':<24} {'score':>6} {'secs':>5} {'MB':>5}  reason of the first lost test / status"]
    for student, (status, secs) in sorted(outcome.items()):
        if status.startswith("refused"):
            lines.append(f"{student:<24} {'-':>6} {'':>5} {'':>5}  {status[:90]}")
            continue
        rows = course.results(root, AID, student)
        lost = [r for r in rows if r.score < r.max_score]
        why = f"{lost[0].grade_id}: {lost[0].message}" if lost else status
        peak = stats.get(student, {}).get("grader_peak_mb", 0)
        lines.append(f"{student:<24} {sum(r.score for r in rows):>3g}/{sum(r.max_score for r in rows):<2g}"
                     f" {secs:5.0f} {peak:5d}  {why[:90]}")
    return "\n".join(lines)


def scores(root, student):
    return {r.grade_id: r for r in course.results(root, AID, student)}


FULL = {"test_make_batch": 3, "test_previous_token_targets": 3, "test_masked_loss": 2,
        "test_masked_accuracy": 2}


def _check_case(root, case):
    spec = CASES[case]
    got = scores(root, case)
    assert set(got) == set(TESTS), f"{case}: graded cells {sorted(got)}"
    for gid, row in got.items():
        if gid in spec.loses:
            assert row.score == 0, f"{case}: {gid} scored {row.score}, expected 0 ({row.message})"
            assert row.message, f"{case}: {gid} lost its points without a reason"
            assert spec.loses[gid].lower() in row.message.lower(), (
                f"{case}: {gid}: reason should mention {spec.loses[gid]!r}, got {row.message!r}")
        else:
            assert row.score == FULL[gid], (f"{case}: {gid} scored {row.score}/{FULL[gid]} "
                                            f"({row.message}): the rest of the notebook must be "
                                            f"graded normally")
    if spec.says:
        assert spec.says.lower() in _texts(root, case).lower(), f"{case}: no note saying {spec.says!r}"


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_case(battery, case):
    """Named tests score 0 with a readable reason; the rest of the notebook keeps its points."""
    _check_case(battery["root"], case)


@pytest.mark.slow
def test_other_students_unaffected(battery):
    root = battery["root"]
    for student in ["reference", *GOOD_IDS]:  # gradebook.snapshot.db is a plain name: graded
        assert {g: r.score for g, r in scores(root, student).items()} == FULL, student
    wrong = {g: r.score for g, r in scores(root, "wrong").items()}
    assert wrong == {**FULL, "test_masked_loss": 0}, wrong


@pytest.mark.slow
def test_gradebook_and_export_list_every_student(battery):
    """One submission per student, a grade row for every test cell, and a line in
    `nbgrader export`'s CSV, rejected students included."""
    from nbgrader.api import Gradebook

    root = battery["root"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        subs = {s.student.id: s for s in gb.assignment_submissions(AID)}
        assert sorted(subs) == battery["students"]
        for student, sub in subs.items():
            grades = [g for nb in sub.notebooks for g in nb.grades if g.cell_type == "code"]
            assert sorted(g.name for g in grades) == sorted(TESTS), student
            assert all(g.score is not None for g in grades), student
    course.nbgrader(root, "export", "--to", str(root / "grades.csv"))
    with open(root / "grades.csv") as f:
        exported = sorted(row["student_id"] for row in csv.DictReader(f))
    assert exported == battery["students"]


@pytest.mark.slow
def test_grader_memory_is_bounded(battery):
    """Replies that expand, output printed in judged calls, writes straight to the kernel's
    descriptors: every grader (nbgrader process) and the batch stay under their bounds."""
    stats = battery["stats"]
    graded = [s for s, (status, _) in battery["outcome"].items() if not status.startswith("refused")]
    measured = {s: stats.get(s, {}).get("grader_peak_mb", 0) for s in graded}
    raw = {s for s in graded if s in CASES and CASES[s].raw}
    missing = [s for s, mb in measured.items() if not mb and s not in raw]
    assert not missing, f"no peak memory logged for {missing}"
    over = {s: mb for s, mb in measured.items() if mb > GRADER_PEAK_MB}
    assert not over, f"graders over {GRADER_PEAK_MB} MB: {over}"
    assert battery["batch_peak"] < BATCH_PEAK_MB, battery["batch_peak"]


@pytest.mark.slow
def test_hidden_arguments_reach_nobody(battery):
    """A function that records its arguments (in memory, in /tmp, in its folder) and later
    cells that print them: only the visible check's arguments show; an error raised on a
    hidden input carries none of them; no grader's call code or packed arguments anywhere."""
    root = battery["root"]
    for case in ("record_args", "record_and_raise", "record_restart", "patch_serve"):
        if case not in CASES:
            continue
        text = _texts(root, case)
        assert not [a for a in HIDDEN_ARGS if a in text], f"{case}: hidden inputs in {text[-3000:]}"
        assert "_nopos_transport" not in text and "LEAK" not in text, case
        assert not re.search(r"[A-Za-z0-9+/=]{200,}", text), f"{case}: packed data in the feedback"
    for case in ("record_args", "record_restart"):
        if case in CASES:
            assert "RECORDED make_batch(8, 12, 10)" in _outputs(root, case)  # the visible one


@pytest.mark.slow
def test_nothing_a_kernel_writes_is_trusted(battery):
    """Links and renames in every path a kernel can write, then a crash: the restart mounts
    the same filtered packages (the reference answer stays out of reach), and what the
    kernel could write to the host's disk was bounded."""
    for case in ("relink_exit", "relink_in_call"):
        if case not in CASES:
            continue
        got = scores(battery["root"], case)
        assert got["test_masked_loss"].score == 0, got["test_masked_loss"]
    if "relink_exit" in CASES:
        out = _outputs(battery["root"], "relink_exit")
        found = re.search(r"RELINKED (\d+) QUOTA (\d+)", out)
        assert found, out[-2000:]
        assert int(found.group(2)) <= 4 * 2 ** 20, f"the kernel wrote {found.group(2)} bytes to the host"


@pytest.mark.slow
def test_bad_student_ids_refused(battery):
    """Folder names with path characters or the grader's own file names: refused by name,
    nothing done in their name."""
    root, outcome = battery["root"], battery["outcome"]
    for bad in BAD_IDS:
        assert outcome[bad][0].startswith("refused:") and "student id" in outcome[bad][0], outcome[bad]
        assert not (root / "intake" / "ready" / bad).exists()
        assert not (root / "autograded" / bad).exists()
    assert (root / "gradebook.db").is_file() and (root / "nbgrader_config.py").is_file()


@pytest.mark.slow
def test_nothing_changed_outside_the_course(battery):
    """The course's code, submitted/ (never rewritten: repaired copies live in intake/),
    the host's shared folders, the process table: as before grading."""
    for path, digest in battery["before"].items():
        assert _digest(path) == digest, f"a learner's notebook changed {path}"
    assert _tree(battery["root"] / "submitted") == battery["submitted"]
    if "vandal" not in CASES:
        pytest.skip("the core cases were not graded (NOPOS_HOSTILE names others)")
    out = _outputs(battery["root"], "vandal")
    assert "done rm" not in out and "done rmtree" not in out and "done write" not in out, out
    left = [p for shared in SHARED if shared.is_dir() for p in shared.glob(f"{MARKER}*")]
    assert not left, f"files outlived their notebook: {left}"
    survivors = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f"{MARKER}-survivor".encode() in cmdline.read_bytes():
                survivors.append(cmdline.parent.name)
        except OSError:
            pass
    assert not survivors, f"processes outlived their notebook: {survivors}"
    assert "wrote /var/tmp" not in _outputs(battery["root"], "write_around")


@pytest.mark.slow
def test_kernel_sees_only_its_allow_list(battery):
    """Course root, repository, other checkouts, .git, home, /proc of others: nothing there.
    Only the Python installation stays readable (its packages ship a few sample
    notebooks, which a glob of /tmp finds when the venv lives there)."""
    if "read_hidden" not in CASES:
        pytest.skip("the core cases were not graded (NOPOS_HOSTILE names others)")
    out = _outputs(battery["root"], "read_hidden")
    assert "files" in out.split("found")[-1], f"the reader did not finish: {out[-2000:]}"
    python = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    leaked = [p for p in re.findall(r"^FOUND (.+)$", out, re.M)
              if not any(p.startswith(py + os.sep) for py in python)]
    assert not leaked, f"the kernel could read {leaked[:10]}"
    if "read_around" in CASES:
        around = _outputs(battery["root"], "read_around")
        assert "read-around done" in around and "FOUND" not in around, around[:3000]


@pytest.mark.slow
def test_no_grader_variable_reaches_a_kernel(battery):
    root = battery["root"]
    if "print_env" not in CASES:
        pytest.skip("the core cases were not graded (NOPOS_HOSTILE names others)")
    env = _outputs(root, "print_env")
    assert "ENV" in env and "PATH" in env
    assert "NOPOS_GRADER_SECRET" not in env and "NOPOS_RUNTIME_DIR" not in env
    for student in battery["students"]:
        assert SECRET not in _texts(root, student), student


@pytest.mark.slow
def test_no_hidden_test_in_any_output(battery):
    hidden = _hidden_lines()
    for student in battery["students"]:
        text = _texts(battery["root"], student)
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}: hidden test in the graded notebook: {leaked[:2]}"


@pytest.mark.slow
def test_output_is_bounded(battery):
    root = battery["root"]
    for student, mb in (("print_100mb", 6), ("output_flood", 24)):
        if student not in CASES:
            continue
        path = root / "autograded" / student / AID / f"{AID}.ipynb"
        assert path.stat().st_size < mb * 2 ** 20, f"{student}: {path.stat().st_size} bytes kept"


def test_rejected_submission_keeps_the_original_and_every_resubmission(tmp_path):
    """Intake never rewrites submitted/: each distinct file handed in is kept by content,
    and what is graded is written to intake/ready/."""
    root = tmp_path / "course"
    (root / "release" / AID).mkdir(parents=True)
    (root / "release" / AID / f"{AID}.ipynb").write_bytes((ROOT / "course" / AID / f"{AID}.ipynb").read_bytes())
    folder = root / "submitted" / "ann" / AID
    folder.mkdir(parents=True)
    kept, notes = [], []
    for text in ('{"cells": [ this is not json', nbformat.writes(filled_release(AID))):
        (folder / f"{AID}.ipynb").write_text(text)
        notes.append(intake(root, AID, "ann"))
        assert (folder / f"{AID}.ipynb").read_text() == text  # untouched
        kept.append(text)
    assert "not valid notebook JSON" in notes[0][0] and notes[1] == []
    originals = sorted(p.read_text() for p in (root / ORIGINALS / "ann" / AID).glob("*.ipynb"))
    assert originals == sorted(kept)
    ready = nbformat.read(root / "intake" / "ready" / "ann" / AID / f"{AID}.ipynb", as_version=4)
    assert "nopos_grading" not in ready.metadata  # the second, valid one needed no repair
    intake(root, AID, "ann")  # again: nothing new kept
    assert len(list((root / ORIGINALS / "ann" / AID).glob("*.ipynb"))) == 2


def test_intake_that_breaks_its_bounds_rejects_that_submission_only(tmp_path, monkeypatch):
    """A notebook built to cost far more than its size to decode (a Markdown source of
    line breaks: about 50 bytes held per byte submitted) is checked in a child with its own
    memory and time: past either, that submission is rejected saying which, the batch's
    process holds none of it, and a classmate's submission is checked as usual."""
    import resource

    from nopos.grading import batch

    root = tmp_path / "course"
    (root / "release" / AID).mkdir(parents=True)
    (root / "release" / AID / f"{AID}.ipynb").write_bytes((ROOT / "course" / AID / f"{AID}.ipynb").read_bytes())
    huge = filled_release(AID)
    huge.cells.append(nbformat.v4.new_markdown_cell("\r" * 3_000_000))  # 6 MB as JSON
    for student, nb in (("ann", huge), ("bob", filled_release(AID))):
        folder = root / "submitted" / student / AID
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{AID}.ipynb")
        (folder / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    monkeypatch.setattr(batch, "INTAKE_MEMORY_MB", 64)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    notes = intake(root, AID, "ann")
    assert notes == ["the submission could not be checked (checking it needed more than 64 MB of "
                     "memory): not graded"]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 32 * 1024  # kB
    ready = root / "intake" / "ready" / "ann" / AID
    assert nbformat.read(ready / f"{AID}.ipynb", as_version=4).metadata["nopos_grading"] == {
        "rejected": notes[0]}
    assert (ready / "timestamp.txt").is_file()  # the feedback is still named by its time
    assert intake(root, AID, "bob") == []
    monkeypatch.setattr(batch, "INTAKE_MEMORY_MB", 2048)
    monkeypatch.setattr(batch, "INTAKE_SECONDS", 0.05)
    assert intake(root, AID, "ann") == ["the submission could not be checked (checking it took "
                                        "longer than 0.05 s): not graded"]
    assert sorted(p.name for p in (root / "intake" / "ready").iterdir()) == [
        ".ann.lock", ".bob.lock", "ann", "bob"]  # nothing the killed child was building


def _one_submission(tmp_path, nb, student="ann"):
    root = tmp_path / "course"
    (root / "release" / AID).mkdir(parents=True, exist_ok=True)
    (root / "release" / AID / f"{AID}.ipynb").write_bytes((ROOT / "course" / AID / f"{AID}.ipynb").read_bytes())
    folder = root / "submitted" / student / AID
    folder.mkdir(parents=True)
    (folder / f"{AID}.ipynb").write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
    return root, folder


def test_intake_notes_and_what_it_writes_are_bounded(tmp_path):
    """A note quoted a learner's grade id whole (40 ids of 25,000 characters: a 2 MB
    submission written for grading as 14 MB, the notes sent whole to the batch's process),
    and 20,000 pasted copies of a test made as many notes, after a quadratic repair (review
    a21w, W3, W4): the notes are a few, short; what is written is about what came in."""
    from nopos.grading import batch

    nb = filled_release(AID)
    for k in range(40):
        cell = nbformat.v4.new_markdown_cell("x")
        cell.metadata["nbgrader"] = {"grade_id": "\u0378" * 25_000 + str(k), "solution": False,
                                     "grade": False, "locked": False}
        nb.cells.append(cell)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_make_batch")
    nb.cells += [nbformat.from_dict({**test, "id": f"c{k}"}) for k in range(20_000)]
    root, folder = _one_submission(tmp_path, nb)
    start = time.process_time()
    notes = intake(root, AID, "ann")
    assert len(notes) <= batch.NOTES + 1 and all(len(n) <= batch.NOTE_CHARS for n in notes), notes
    ready = root / batch.READY / "ann" / AID / f"{AID}.ipynb"
    assert ready.stat().st_size <= 2 * (folder / f"{AID}.ipynb").stat().st_size
    assert notes[-1] == f"and {40 + 20_000 - batch.NOTES} more of these"
    assert time.process_time() - start < 5  # the parent's own time: the child's is apart


def test_a_notebook_written_far_larger_than_it_came_is_rejected_saying_so(tmp_path, monkeypatch):
    """nbgrader reads the notebook intake writes, and a text of line breaks is written as a
    list of its lines, 5 times its size: past MAX_READY_MB it is rejected with the reason,
    where it used to be graded 0 for "grading failed" (review a21v, V2)."""
    from nopos.grading import batch

    monkeypatch.setattr(batch, "MAX_READY_MB", 2)
    nb = filled_release(AID)
    nb.cells.append(nbformat.v4.new_markdown_cell("\r" * 500_000))  # 1 MB submitted
    root, _ = _one_submission(tmp_path, nb)
    [note] = intake(root, AID, "ann")
    assert note.startswith("the notebook is 5 MB as written for grading (at most 2 MB"), note


def test_a_large_notebook_of_figures_is_graded_without_its_outputs(tmp_path, monkeypatch):
    """Outputs are dropped before anything copies a notebook over MAX_NOTEBOOK_MB: a 300 MB
    notebook of figures needed 6 bytes a byte and was refused for intake's memory (review
    a21w, W6). Here every bound a tenth: 36 MB within 205 MB."""
    import base64

    from nopos.grading import batch

    monkeypatch.setattr(batch, "MAX_READ_MB", 40)
    monkeypatch.setattr(batch, "MAX_NOTEBOOK_MB", 2)
    monkeypatch.setattr(batch, "INTAKE_MEMORY_MB", 205)
    nb = filled_release(AID)
    png = base64.b64encode(b"\x89PNG" * (3 << 18)).decode()  # 4 MB of base64 a figure
    nb.cells += [nbformat.v4.new_code_cell(f"plot {k}", outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": png, "text/plain": "<Figure>"})]) for k in range(9)]
    root, _ = _one_submission(tmp_path, nb)
    del nb, png
    assert intake(root, AID, "ann") == ["the notebook was 36 MB; its outputs were removed before grading"]


def test_a_file_name_that_is_not_utf8_costs_a_note_not_the_submission(tmp_path):
    """A link named in Latin-1 (a Windows zip's `donn\xe9es.csv`) put a lone surrogate into
    its note, and the whole submission was rejected (review a21w, W7)."""
    root, folder = _one_submission(tmp_path, filled_release(AID))
    os.symlink(b"data.csv", os.path.join(bytes(folder), b"donn\xe9es.csv"))
    [note] = intake(root, AID, "ann")
    assert "donn?es.csv is a symbolic link" in note, note


def test_an_intake_child_ends_with_its_batch(tmp_path):
    """A batch killed while its child checks a submission (the OOM killer, `kill`, a hub's
    stop) left the child running for minutes, writing intake/ready/ when it ended (review
    a21w, W4). Its parent's death now kills it."""
    import subprocess
    import sys

    nb = filled_release(AID)
    nb.cells.append(nbformat.v4.new_markdown_cell("\r" * 20_000_000))  # seconds of decoding
    root, _ = _one_submission(tmp_path, nb)
    script = (f"import sys; sys.path[:0] = [{str(ROOT)!r}]\n"
              "from nopos.grading import batch\n"
              f"batch.intake({str(root)!r}, {AID!r}, 'ann')\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    children, deadline = Path(f"/proc/{proc.pid}/task/{proc.pid}/children"), time.monotonic() + 30
    child = None
    while child is None and time.monotonic() < deadline:
        time.sleep(0.05)
        found = children.read_text().split() if children.exists() else []
        child = int(found[0]) if found else None
    assert child, "intake never forked"
    proc.kill()
    proc.wait()
    time.sleep(0.5)
    stat = Path(f"/proc/{child}/stat")
    alive = stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    if alive:
        os.kill(child, signal.SIGKILL)
    assert not alive, "the intake child outlived its batch"


@pytest.mark.slow
def test_feedback_is_inert_offline_and_hides_hidden_tests(battery):
    """Feedback of failing hidden tests shows no hidden test, and no learner output or
    Markdown can run a script or load anything from elsewhere."""
    root = battery["root"]
    course.nbgrader(root, "generate_feedback", AID, "--force")
    for student in battery["students"]:
        html = (root / "feedback" / student / AID / f"{AID}.html").read_text()
        for line in _hidden_lines():
            assert line not in html, f"{student}: hidden test in feedback: {line}"
        assert "BEGIN HIDDEN TESTS" not in html
        tags = _Tags()
        tags.feed(html)
        assert not tags.remote, f"{student}: feedback loads {tags.remote[:3]}"
        assert not tags.active, f"{student}: learner content is live in feedback: {tags.active[:3]}"
        assert "@import url(http" not in html
    if "print_100mb" in CASES:
        size = (root / "feedback" / "print_100mb" / AID / f"{AID}.html").stat().st_size
        assert size < 8 * 2 ** 20, f"feedback of 100 MB printed is {size} bytes"


class _Tags(HTMLParser):
    """Tags and attributes of a page (not its text: learner code shows there, escaped)."""

    def __init__(self):
        super().__init__()
        self.remote, self.active, self._script = [], [], False

    def handle_starttag(self, tag, attrs):
        self._script = tag == "script"
        for name, value in attrs:
            value = value or ""
            if name in ("src", "href") and re.match(r"\s*(https?:)?//", value):
                self.remote.append(f"<{tag} {name}={value}>")
            if name.startswith("on") or "pwned" in value or "evil.example" in value:
                self.active.append(f"<{tag} {name}={value[:80]}>")
        if tag in ("iframe", "object", "embed"):
            self.active.append(f"<{tag}>")

    def handle_data(self, data):
        if self._script and ("pwned" in data or "evil.example" in data):
            self.active.append(f"<script>{data[:80]}")

    def handle_endtag(self, tag):
        self._script = False


@pytest.mark.slow
def test_parallel_regrade_is_identical_and_idempotent(battery):
    """Grade part of the class again: same scores, same rows, no new original kept,
    submitted/ still untouched."""
    root = battery["root"]
    some = ["wrong", "relink_exit", "link_notebook"]
    before = {s: {g: r.score for g, r in scores(root, s).items()} for s in some}
    originals = sorted(p.name for p in (root / ORIGINALS).rglob("*.ipynb"))
    outcome = grade_batch(root, AID, some, workers=2)
    assert all(status == "ok" for status, _ in outcome.values()), outcome
    after = {s: {g: r.score for g, r in scores(root, s).items()} for s in some}
    assert after == before
    assert sorted(p.name for p in (root / ORIGINALS).rglob("*.ipynb")) == originals
    assert _tree(root / "submitted") == battery["submitted"]
    test_gradebook_and_export_list_every_student(battery)


@pytest.mark.slow
def test_stock_nbgrader_grades_a_subset_alike(tmp_path_factory):
    """The same cases through stock `nbgrader autograde` (after intake), with the course's config."""
    root = course.make_course(tmp_path_factory.mktemp("hostile-stock"), [AID], SETTINGS)
    _submit_class(root, tmp_path_factory.mktemp("hostile-stock-submissions"), STOCK)
    submitted = _tree(root / "submitted")
    batch.autograde(root, AID, check=False, timeout=900)
    for case in STOCK:
        if case == "reference":
            assert {g: r.score for g, r in scores(root, case).items()} == FULL
        else:
            _check_case(root, case)
    assert _tree(root / "submitted") == submitted
    course.nbgrader(root, "export", "--to", str(root / "grades.csv"))
    with open(root / "grades.csv") as f:
        assert sorted(row["student_id"] for row in csv.DictReader(f)) == sorted(STOCK)


@pytest.mark.slow
def test_whole_notebook_wall_limit(battery):
    """A student whose notebook outlasts the per-notebook wall limit is stopped, scored 0
    with the reason, and the batch goes on."""
    root = battery["root"]
    outcome = grade_batch(root, AID, ["uncatchable_loop"], workers=1, notebook_timeout=12)
    assert outcome["uncatchable_loop"][0] == "timeout", outcome
    got = scores(root, "uncatchable_loop")
    assert all(r.score == 0 and "limit for a whole notebook" in r.message for r in got.values())
    test_other_students_unaffected(battery)


def _outputs(root, student):
    nb = nbformat.read(root / "autograded" / student / AID / f"{AID}.ipynb", as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []) if o.get("output_type") == "stream")


def _texts(root, student):
    """Everything a graded notebook shows: notes, outputs, error messages."""
    nb = nbformat.read(root / "autograded" / student / AID / f"{AID}.ipynb", as_version=4)
    parts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts += [o.get("text", ""), o.get("evalue", ""), *o.get("traceback", [])]
            parts += [str(v) for v in o.get("data", {}).values()]
    return "\n".join(parts)


def _hidden_lines():
    src = nbformat.read(source_path(AID), as_version=4)
    lines = []
    for cell in src.cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            body = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            lines += [l.strip() for l in body.splitlines() if len(l.strip()) > 20]
    return lines


# ---------------------------------------------- the launcher alone (fast, no nbgrader)
PROBE = r"""
import json, os, resource, socket, sys
out = {"uid": os.getuid(), "pid": os.getpid()}
out["env"] = sorted(os.environ)  # before torch's import sets variables of its own
for name, path in {"course": COURSE, "autograder": AUTOGRADER, "tmp": "/tmp", "root": "/",
                   "repo": REPO, "chapters": REPO + "/chapters", "work": os.path.dirname(REPO),
                   "git": REPO + "/.git", "cwd": "."}.items():
    out[name] = sorted(os.listdir(path)) if os.path.isdir(path) else None
try:
    import nopos.grading.transport, nopos.model, torch
    out["packages"] = "ok" if not hasattr(torch, "SHADOW") and not hasattr(nopos, "SHADOW") else "shadowed"
except ImportError as e:
    out["packages"] = repr(e)
out["reachable"] = []  # the checks and this chapter's answers: out of the kernel's reach
for module in ("nopos.checks.ch01", "nopos_reference.data"):
    try:
        __import__(module)
        out["reachable"].append(module)
    except ImportError:
        pass
out["path"] = [p for p in sys.path if p in ("", ".", os.getcwd())]
try:
    bytearray(3 * 2**30); out["alloc"] = "ok"
except MemoryError:
    out["alloc"] = "MemoryError"
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2); out["net"] = "open"
except OSError as e:
    out["net"] = type(e).__name__
try:
    open(GRADEBOOK).read(); out["gradebook"] = "read"
except OSError as e:
    out["gradebook"] = type(e).__name__
out["writable"] = []
for place in ("/var/tmp", "/run/lock", "/dev/shm", "/tmp", "/", "/usr"):
    try:
        open(os.path.join(place, "nopos-probe"), "w").write("x"); out["writable"].append(place)
    except OSError:
        pass
out["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
print(json.dumps(out))
"""


def _launch(tmp_path, **settings):
    course = tmp_path / "course"
    cwd = course / "autograded" / "s" / AID
    cwd.mkdir(parents=True)
    (course / "gradebook.db").write_text("secret")
    (cwd / f"{AID}.ipynb").write_text("hidden tests here")
    (cwd / "torch.py").write_text("SHADOW = True")  # a learner's files must not shadow the course's
    (cwd / "nopos").mkdir()
    (cwd / "nopos" / "__init__.py").write_text("SHADOW = True")
    grader = SandboxedExecute()
    real = grader.sandbox_settings(str(cwd / f"{AID}.ipynb"))
    # cpu_seconds: room for the probe's imports (7 CPU-s alone; CI's busy cores inflate
    # CPU time, and at 20 s the kernel's SIGKILL cut the probe short there)
    base = dict(memory_mb=1024, address_space_mb=2048, cpu_seconds=90, max_procs=32,
                file_size_mb=8, open_files=256, python=real["python"], packages=real["packages"],
                quiet_fds=False,  # the probe answers on its stdout
                env=real["env"])
    os.environ["NOPOS_SECRET_OF_THE_GRADER"] = "x"
    try:
        argv = sandbox_launcher.kernel_argv({**base, **settings}, kernel=[
            sys.executable, "-P", "-s", "-c", PROBE.replace("COURSE", repr(str(course)))
            .replace("AUTOGRADER", repr(str(ROOT / "autograder"))).replace("REPO", repr(str(ROOT)))
            .replace("GRADEBOOK", repr(str(course / "gradebook.db")))])
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    finally:
        del os.environ["NOPOS_SECRET_OF_THE_GRADER"]
        release_runtime(grader._runtime)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@NEEDS_ROOT
def test_launcher_contains_the_kernel(tmp_path):
    """The kernel's view is an allow-list: nothing of the course, the repository, another
    checkout or the host's shared folders; only its own working folder, without the notebook."""
    out = _launch(tmp_path)
    assert out["uid"] != 0 and out["pid"] == 1
    assert out["course"] == ["autograded"]  # only the path down to its own folder
    assert out["cwd"] == ["nopos", "torch.py"]  # its own files, not the notebook
    assert out["autograder"] is None and out["chapters"] is None and out["git"] is None
    assert sorted(out["repo"]) == [".venv", "nopos", "nopos_reference"], out["repo"]
    others = [n for n in out["work"] if n != ROOT.name and (ROOT.parent / n / ".git").exists()]
    assert ROOT.name in out["work"] and not others, out["work"]  # no other checkout of the course
    assert "work" not in out["root"] or ROOT.is_relative_to("/work")
    assert not {"home", "var", "run", "srv", "opt", "mnt"} & set(out["root"]), out["root"]
    assert out["packages"] == "ok" and out["path"] == []  # torch.py / nopos/ next to it: ignored
    assert out["reachable"] == [], f"the grading kernel of chapter 1 can import {out['reachable']}"
    assert out["gradebook"] == "FileNotFoundError"
    assert out["alloc"] == "MemoryError" and out["net"] != "open" and out["nproc"] == 32
    assert set(out["writable"]) <= {"/tmp", "/dev/shm"}, out["writable"]  # both private
    assert "NOPOS_SECRET_OF_THE_GRADER" not in out["env"] and "NOPOS_COURSE_ROOT" not in out["env"]
    assert set(out["env"]) <= set(sandbox_launcher.ENV_ALLOW) | {
        "PATH", "HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME", "NOPOS_HOME", "LANG", "NBGRADER_EXECUTION",
        "LC_CTYPE"}, out["env"]


SPIN = r"""
import os, time
for _ in range(3):  # four processes spin for 2 s of wall time each
    if os.fork() == 0:
        break
end = time.monotonic() + 2
while time.monotonic() < end:
    pass
print(time.process_time(), flush=True)
"""


@NEEDS_ROOT
def test_a_kernel_gets_its_share_of_cpu_however_many_processes(tmp_path):
    """A fork bomb or a busy loop slows only its own notebook: the kernel's cgroup has a
    CPU quota (here half a CPU) shared by every process it starts."""
    grader = SandboxedExecute(cpus=0.5)
    settings = grader.sandbox_settings(str(tmp_path / f"{AID}.ipynb"))
    settings.update(cgroup_name=f"test-cpu-{os.getpid()}", namespaces=False, quiet_fds=False)
    argv = sandbox_launcher.kernel_argv(settings, kernel=[sys.executable, "-c", SPIN])
    try:
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    finally:
        sandbox_launcher.kill_cgroup(settings["cgroup_name"])
        release_runtime(grader._runtime)
    times = [float(t) for t in proc.stdout.split()]
    assert len(times) >= 2, proc.stdout + proc.stderr
    assert sum(times) < 2.0, f"processes spinning 2 s each used {sum(times):.1f} CPU-s under a 0.5-CPU quota"


def test_fallback_without_namespaces(tmp_path):
    """Where unshare is missing or refused: limits only, and the probe says so."""
    out = _launch(tmp_path, namespaces=False)
    assert out["pid"] != 1
    assert out["alloc"] == "MemoryError"  # the rlimits still hold
    assert out["packages"] == "ok" and out["path"] == []  # no shadowing, even here
    assert "NOPOS_SECRET_OF_THE_GRADER" not in out["env"]
    # what the instructor loses (docs/grading.md): the course is visible
    assert out["gradebook"] == "read"



@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is root's")
@pytest.mark.parametrize("config, says", [
    ("c.SandboxedExecute.namespaces = False", "switched off in the course's config"),
    ("c.SandboxedExecute.drop_privileges = False", "drop_privileges is off"),
])
def test_root_grades_nothing_where_a_kernel_would_run_as_root(tmp_path, config, says):
    """Review a31a H2: with namespaces off (or refused by the host) the kernel ran as root
    on the real disk, rewrote a classmate's notebook and printed the hidden tests. As root
    a class is now graded only contained; a learner grading her own notebook
    (selfgrade's own_notebook) still can."""
    from nopos.grading.sandbox import RootUncontained, SandboxedExecute, root_refusal

    (tmp_path / "nbgrader_config.py").write_text(
        (ROOT / "autograder" / "nbgrader_config.py").read_text() + f"\n{config}\n")
    for grade in (lambda: grade_batch(tmp_path, AID, ["ada"]),
                  lambda: batch.autograde(tmp_path, AID)):
        with pytest.raises(SystemExit, match=f"nothing graded: .*{says}"):
            grade()
    assert not (tmp_path / "autograded").exists() and not (tmp_path / "intake").exists()
    grader = SandboxedExecute(**{config.split(".")[-1].split(" =")[0].strip(): False})
    with pytest.raises(RootUncontained, match="hidden tests"):  # stock autograde's route
        grader.create_kernel_manager()
    assert root_refusal(False, True, own_notebook=True) is None



def test_the_wall_limit_reads_the_config_as_nbgrader_does(tmp_path):
    """Review a31c N5: read as text, `30 * 60` or a later line gave a wall shorter than the
    sandbox's own budget (2070 s where 3870 s were needed)."""
    from nopos.grading.batch import _notebook_timeout

    base = (ROOT / "autograder" / "nbgrader_config.py").read_text()
    for lines, wall in (("", 2070), ("c.SandboxedExecute.notebook_timeout = 30 * 60", 3870),
                        ("T = 1200\nc.SandboxedExecute.notebook_timeout = T\nc.Execute.timeout = 60", 2610)):
        (tmp_path / "nbgrader_config.py").write_text(base + "\n" + lines + "\n")
        assert _notebook_timeout(tmp_path) == wall, lines


def test_a_learners_longest_file_name_is_copied(tmp_path):
    """Review a31a M1, H3: the temporary name was the file's name and 14 bytes more, so a
    255-byte name failed the whole submission (and, merged back, the whole batch)."""
    from nopos.grading.batch import copy_nofollow, write_atomic

    name = "\u00e9" * 127 + "x"  # 255 bytes in UTF-8
    (tmp_path / "src").mkdir()
    write_atomic(tmp_path / "src" / name, b"data")
    assert copy_nofollow(tmp_path / "src", tmp_path / "dst") == []
    assert (tmp_path / "dst" / name).read_bytes() == b"data"


# ------------------------------------------------------------------ no leaks
def _solution_lines(aid):
    src = nbformat.read(source_path(aid), as_version=4)
    lines = []
    for cell in src.cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) > 30 and not line.strip().startswith("#"):
                lines.append(line.strip())
    return lines


def _course_lines():
    """Every file a learner can open in course/, as its stripped lines (notebook cells and
    outputs read from their JSON)."""
    out = {}
    for p in (ROOT / "course").rglob("*"):
        if not p.is_file() or p.suffix not in (".ipynb", ".py", ".md", ".txt", ".json", ".html"):
            continue
        text = p.read_text(errors="replace")
        if p.suffix == ".ipynb":
            try:
                nb = json.loads(text)
                parts = []
                for cell in nb.get("cells", []):
                    parts.append("".join(cell.get("source", [])))
                    for o in cell.get("outputs", []):
                        parts.append("".join(o.get("text", [])))
                        parts += ["".join(v) if isinstance(v, list) else str(v)
                                  for v in o.get("data", {}).values()]
                text = "\n".join(parts)
            except ValueError:
                pass
        out[str(p.relative_to(ROOT))] = [l.strip() for l in text.splitlines()]
    return out


@pytest.mark.parametrize("aid", sorted(p.parent.name for p in (ROOT / "autograder" / "source").glob("*/*.ipynb")))
def test_no_solution_body_or_hidden_test_in_course(aid):
    """Nothing a learner can open in course/ contains a hidden test line, or two consecutive
    lines of a reference solution's body (one line may be a deliberate hint)."""
    files = _course_lines()
    pairs = {f: set(zip(lines, lines[1:])) for f, lines in files.items()}
    sets = {f: set(lines) for f, lines in files.items()}
    src = nbformat.read(source_path(aid), as_version=4)
    given = set()  # lines the course hands out anyway (outside every solution region)
    for path in (ROOT / "autograder" / "source").glob("*/*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            outside, inside = [], False
            for line in cell.source.splitlines():
                inside = (inside or "BEGIN SOLUTION" in line) and "END SOLUTION" not in line
                if not inside:
                    outside.append(line.strip())
            given.update(outside)
    for cell in src.cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            body = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            for line in (l.strip() for l in body.splitlines() if len(l.strip()) > 20):
                leaks = [f for f, lines in sets.items() if line in lines]
                assert not leaks, f"{aid}: hidden test line {line!r} is in {leaks}"
        if "### BEGIN SOLUTION" in cell.source:
            for block in cell.source.split("### BEGIN SOLUTION")[1:]:
                lines = [l.strip() for l in block.split("### END SOLUTION")[0].splitlines()
                         if len(l.strip()) > 15 and not l.strip().startswith("#")]
                for pair in zip(lines, lines[1:]):
                    if set(pair) <= given:
                        continue
                    leaks = [f for f, got in pairs.items() if pair in got]
                    assert not leaks, f"{aid}: solution lines {pair} are in {leaks}"


# ------------------------------------------------------- intake alone (fast, no nbgrader)
def _release_nb():
    return nbformat.read(ROOT / "course" / AID / f"{AID}.ipynb", as_version=4)


def test_repair_never_moves_a_correct_learners_cells():
    """A test pasted above the imports, or a test and an answer copied to the end: the
    copies become ordinary cells and every other cell keeps its place."""
    from nopos.grading.batch import repair

    for where in (0, None):
        nb = filled_release(AID)
        test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_masked_loss")
        copy_ = nbformat.from_dict(json.loads(json.dumps(test)))
        before = [c.source for c in nb.cells]
        nb.cells.insert(0 if where == 0 else len(nb.cells), copy_)
        notes = repair(nb, _release_nb())
        after = [c.source for c in nb.cells]
        assert after == ([copy_.source] + before if where == 0 else before + [copy_.source]), notes
        assert "nbgrader" not in nb.cells[0 if where == 0 else -1].metadata
        assert any("second cell" in n for n in notes)


def test_repair_restores_grading_settings():
    """A flipped grade flag, changed points, a test marked as an answer: put back, code kept."""
    from nopos.grading.batch import repair

    nb = filled_release(AID)
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    cells["test_masked_loss"].metadata.nbgrader.update(grade=False, points=0)
    cells["test_make_batch"].metadata.nbgrader.update(solution=True, locked=False)
    cells["make_batch"].source += "\n# mine"
    notes = repair(nb, _release_nb())
    release = {c.metadata["nbgrader"]["grade_id"]: c for c in _release_nb().cells if "nbgrader" in c.metadata}
    for gid, cell in cells.items():
        assert cell.metadata.nbgrader == release[gid].metadata.nbgrader, gid
    assert cells["make_batch"].source.endswith("# mine")
    assert sum("grading settings" in n for n in notes) == 2, notes


def test_repair_drops_grading_settings_without_a_grade_id():
    """Review a31a M5: a cell with nbgrader's metadata and no grade id (a tool dropped it)
    made nbgrader stop on the whole correct notebook: 0/10, "see the above traceback"."""
    from nopos.grading.batch import repair

    nb = filled_release(AID)
    nb.cells.insert(3, nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"solution": True}}))
    nb.cells.insert(5, nbformat.v4.new_markdown_cell("notes", metadata={"nbgrader": {"grade_id": ""}}))
    notes = repair(nb, _release_nb())
    assert all(c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells
               if "nbgrader" in c.metadata)
    assert any("2 cell(s) with grading settings but no grade id" in n for n in notes), notes
    assert [c.source for c in nb.cells if c.source in ("x = 1", "notes")] == ["x = 1", "notes"]


@pytest.mark.parametrize("data, says", [
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b"\xff\xfe not utf", "not valid notebook JSON"),
    (b'{"cells": 5}', "not a notebook"),
    (b'{"cells": [], "metadata": [], "nbformat": 4, "nbformat_minor": 5}', None),
])
def test_load_never_raises(data, says):
    from nopos.grading.batch import _load

    nb, notes = _load(data)
    if says:
        assert nb is None and says in notes
    else:
        assert nb is not None and any("mapping" in n for n in notes)


@pytest.mark.parametrize("slip", ["stream metadata", "result count", "error traceback",
                                  "code attachments", "markdown outputs"])
def test_a_correct_notebook_with_outputs_off_the_format_keeps_its_answers(slip):
    """Review a31a L1: an editor's slip in what grading throws away (an output or a cell's
    extra field) rejected a correct notebook whole, 0/10. Intake drops the outputs, says
    so, and keeps the cells."""
    import copy

    from nopos.grading.batch import _load

    raw = json.loads(nbformat.writes(filled_release(AID)))
    code = next(c for c in raw["cells"] if c["cell_type"] == "code")
    text = next(c for c in raw["cells"] if c["cell_type"] == "markdown")
    out = {"output_type": "stream", "name": "stdout", "text": "x"}
    change = {
        "stream metadata": lambda: code.update(outputs=[{**out, "metadata": {}}]),
        "result count": lambda: code.update(outputs=[{"output_type": "execute_result",
                                                      "data": {"text/plain": "1"}, "metadata": {}}]),
        "error traceback": lambda: code.update(outputs=[{"output_type": "error", "ename": "E",
                                                         "evalue": "v"}]),
        "code attachments": lambda: code.update(attachments={}),
        "markdown outputs": lambda: text.update(outputs=[], execution_count=None),
    }
    change[slip]()
    sources = ["".join(c["source"]) for c in copy.deepcopy(raw)["cells"]]
    nb, notes = _load(json.dumps(raw).encode())
    assert nb is not None, notes
    assert [c.source for c in nb.cells] == sources
    assert any("did not follow the notebook format" in n for n in notes), notes


def test_a_correct_notebook_with_cell_ids_nbformat_refuses_is_graded():
    """A cell id with a space, over 64 characters, empty or not ASCII, or ids in a 4.4
    notebook (another tool wrote them): nbformat refuses the notebook, and a correct one was
    rejected, 0/10 (review a21x, X3). Intake renews or drops them."""
    import copy

    from nopos.grading.batch import _load

    base = json.loads(nbformat.writes(filled_release(AID)))
    for bad in ("a b", "x" * 65, "", "donn\u00e9es", None, ["a"], 7):
        raw = copy.deepcopy(base)
        raw["cells"][3]["id"] = bad
        assert _load(json.dumps(raw).encode())[0] is not None, bad
    # versions written as other types (review a21y, Y5): read as what they say, or as none
    for key, value in (("nbformat_minor", 4), ("nbformat_minor", 5.0), ("nbformat_minor", "5"),
                       ("nbformat_minor", None), ("nbformat_minor", [5]), ("nbformat", 4.0)):
        raw = copy.deepcopy(base)
        raw[key] = value
        assert _load(json.dumps(raw).encode())[0] is not None, (key, value)


def test_output_caps_keep_a_bounded_notebook():
    """Output is kept up to the cell's and the notebook's caps, with one note each."""
    from collections import defaultdict

    from nbclient.client import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print"),
                                         nbformat.v4.new_code_cell("print more")])
    ex = SandboxedExecute(cell_output_mb=1, notebook_output_mb=1.2)
    NotebookClient.__init__(ex, nb, None)
    ex.reset_execution_trackers()
    ex.clear_before_next_output = False
    ex._output_used, ex._output_noted = defaultdict(int), set()

    def send(index, text):
        msg = {"msg_type": "stream", "content": {"name": "stdout", "text": text},
               "parent_header": {"msg_id": "m"}, "header": {"msg_type": "stream"}}
        ex.output(nb.cells[index].outputs, msg, None, index)

    for _ in range(3):
        send(0, "x" * 600_000)  # 1.8 MB into a 1 MB cell
    kept = nb.cells[0].outputs
    assert sum(len(o.get("text", "")) for o in kept) <= 2 ** 20
    assert [o.text for o in kept if "output cut" in o.get("text", "")] == [
        "[output cut: this cell printed more than the 1 MB kept for grading (each output counts at "
        "least 2 KB); the rest was dropped]\n"]
    for _ in range(3):
        send(1, "y" * 400_000)  # within the cell's 1 MB, past the notebook's 1.2 MB
    texts = [o.get("text", "") for o in nb.cells[1].outputs]
    assert sum(len(t) for t in texts if "output cut" not in t) <= 2 ** 20
    assert sum("the notebook printed more" in t for t in texts) == 1, [t[:80] for t in texts]


def _display(i, display_id, msg_type="display_data"):
    return {"msg_type": msg_type, "header": {"msg_type": msg_type, "msg_id": str(i)},
            "parent_header": {"msg_id": "p"}, "metadata": {},
            "content": {"data": {"text/plain": ""}, "metadata": {},
                        "transient": {"display_id": display_id}}}


def test_display_ids_are_bounded_where_nbclient_keeps_them():
    """nbclient keeps every display id for the whole notebook, and an output with an id
    already shown walks every earlier one (review a21t, H2: 140 ids of 7 MB grew a grader
    by 1 GB; M3: one id 20000 times cost 74 s of CPU). Long ids, ids past the count and
    outputs past an id's share are kept as plain outputs: nothing is lost but the link."""
    from nopos.grading.sandbox import DISPLAY_ID_CHARS, DISPLAY_IDS, OUTPUTS_PER_ID

    ex, nb = message_executor(cells=1, cell_output_mb=100, notebook_output_mb=100)
    for i in range(20):
        ex.process_message(_display(i, f"{i}" + "x" * 100_000), nb.cells[0], 0)
    assert sum(len(k) for k in ex._display_id_map) == 0 and len(nb.cells[0].outputs) == 20
    for i in range(DISPLAY_IDS + 50):
        ex.process_message(_display(i, f"id{i}"), nb.cells[0], 0)
    assert len(ex._display_id_map) == DISPLAY_IDS
    assert max(len(k) for k in ex._display_id_map) <= DISPLAY_ID_CHARS
    import nopos.grading.sandbox as sandbox_module

    ex, nb = message_executor(cells=1, cell_output_mb=100, notebook_output_mb=100)
    walked, size = [], sandbox_module._size

    def counting(content):
        walked.append(1)
        return size(content)

    sandbox_module._size = counting
    try:
        for i in range(500):
            ex.process_message(_display(i, "same"), nb.cells[0], 0)
    finally:
        sandbox_module._size = size
    assert sum(map(len, ex._display_id_map["same"].values())) == OUTPUTS_PER_ID
    assert len(walked) < 500 * (OUTPUTS_PER_ID + 3), len(walked)  # not 500 x 500 / 2


def test_every_output_costs_what_the_grader_keeps_of_it():
    """An empty display costs the grader about 1.5 KB (review a21t, M5: 64,000 of them took
    a grader to 548 MB within a 20 MB budget): each new output is charged OUTPUT_COST, so
    the notebook's budget bounds their number; a stream's text is charged as it is."""
    from nopos.grading.sandbox import OUTPUT_COST

    ex, nb = message_executor(cells=1, cell_output_mb=1, notebook_output_mb=1)
    for i in range(10_000):
        ex.output(nb.cells[0].outputs, {**_display(i, None), "content": {"data": {}, "metadata": {}}}, None, 0)
    kept = [o for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
    assert len(kept) <= 2 ** 20 // OUTPUT_COST
    assert any("output cut" in o.get("text", "") for o in nb.cells[0].outputs)


def test_the_launcher_follows_no_link_a_kernel_could_plant(tmp_path):
    """The folder the launcher gives the kernel's uid must be a real folder of the grader's
    (never a link to one), and it reads the connection file without following a link."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "secret").write_text("answers")
    link = tmp_path / "s2"
    link.symlink_to(precious)
    with pytest.raises(OSError):
        sandbox_launcher._own_folder(str(link), 4242424)
    assert precious.stat().st_uid == os.geteuid()
    connection = tmp_path / "kernel-2.json"
    connection.symlink_to(precious / "secret")
    with pytest.raises(OSError):
        sandbox_launcher._read_connection(str(connection))
    fresh = tmp_path / "s3"
    fresh.mkdir()
    if os.geteuid() == 0:
        sandbox_launcher._own_folder(str(fresh), 4242424)
        assert fresh.stat().st_uid == 4242424


def test_a_large_print_leaves_the_kernel_in_pieces():
    """The grading kernel's stdout (nopos/grading/outstream.py) sends 5 MB printed at once as
    messages of about 1 MB each: none reaches the grader's 8 MB bound, whose breach would
    drop the connection and the cell's end with it."""
    import zmq
    from ipykernel.iostream import IOPubThread
    from jupyter_client.session import Session

    from nopos.grading.outstream import CHUNK, ChunkedOutStream

    ctx = zmq.Context()
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    pub.bind("inproc://nopos-outstream")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect("inproc://nopos-outstream")
    thread = IOPubThread(pub)
    thread.start()
    try:
        stream = ChunkedOutStream(Session(key=b""), thread, "stdout", watchfd=False)
        time.sleep(0.2)
        stream.write("y" * (5 * CHUNK + 10))
        stream.write("small")
        stream.flush()
        sizes = []
        while sub.poll(2000):
            sizes.append(sum(len(f) for f in sub.recv_multipart()))
        assert len(sizes) >= 5 and max(sizes) < 2 * CHUNK, sizes
        assert sum(sizes) > 5 * CHUNK
    finally:
        thread.stop()
        thread.close()
        sub.close()
        ctx.term()


# ------------------------------------------------- the kernel's messages, handled here
def _msg(msg_type, **content):
    return {"msg_type": msg_type, "content": content, "parent_header": {"msg_id": "m"},
            "header": {"msg_type": msg_type, "msg_id": "k"}, "metadata": {}, "buffers": []}


def test_comm_messages_are_never_interpreted():
    """A widget comm_open without the state nbclient's handler reads (its KeyError once zeroed
    a correct notebook), comm state of any target: nothing kept, nothing written, no error."""
    ex, nb = message_executor()
    cell = nb.cells[0]
    for msg in (_msg("comm_open", comm_id="c1", target_name="jupyter.widget", data={"state": {}}),
                _msg("comm_open", comm_id="c2", target_name="nobody",
                     data={"state": {"v": "S" * 1000}, "buffer_paths": []}),
                _msg("comm_msg", comm_id="c1", data={"method": "update", "state": {"v": "S"}}),
                _msg("comm_close", comm_id="c1", data={})):
        assert ex.process_message(msg, cell, 0) is None
    assert not ex.widget_state and not ex.widget_buffers and not ex.comm_objects
    ex.set_widgets_metadata()
    assert "widgets" not in nb.metadata and cell.outputs == []


def test_a_message_the_grader_cannot_handle_costs_a_note():
    """Whatever a kernel message makes the handling raise, the cell gets one note and the
    notebook goes on; the cell's end still ends it; an execution count that is no count is
    not written."""
    from nbclient.exceptions import CellExecutionComplete

    ex, nb = message_executor()
    cell = nb.cells[0]
    for _ in range(2):
        ex.process_message(_msg("display_data", data="not a mapping", metadata={}), cell, 0)
        ex.process_message(_msg("update_display_data", data=[], metadata={},
                                transient={"display_id": "d"}), cell, 0)
    notes = [o.text for o in cell.outputs]
    assert len(notes) == 1 and "could not be read" in notes[0], notes
    ex.process_message(_msg("stream", name="stdout", text="hi", execution_count="9" * 10_000), cell, 0)
    assert cell.get("execution_count") is None and cell.outputs[-1].text == "hi"
    for metadata in ({"execution": {}}, {}):  # the end is the end, even when recording it fails
        cell.metadata = metadata
        with pytest.raises(CellExecutionComplete):
            ex.process_message(_msg("status", execution_state="idle"), cell, 0)


def test_display_updates_are_counted_for_every_output_they_rewrite():
    """60 tiny displays with one display id, then one update (or one new display with that
    id) of 100 KB: it would rewrite all 60 (6 MB). Refused with a note, outputs unchanged;
    an update that fits is kept and counted, and what it replaces stops counting."""
    ex, nb = message_executor(cell_output_mb=1, notebook_output_mb=1.5)
    for index in (0, 1):
        for _ in range(30):
            ex.process_message(_msg("display_data", data={"text/plain": "x"}, metadata={},
                                    transient={"display_id": "amp"}), nb.cells[index], index)
    used = dict(ex._output_used)
    big = {"text/plain": "A" * 100_000}
    ex.process_message(_msg("update_display_data", data=big, metadata={},
                            transient={"display_id": "amp"}), nb.cells[1], 1)
    ex.process_message(_msg("display_data", data=big, metadata={},
                            transient={"display_id": "amp"}), nb.cells[1], 1)
    texts = [o["data"]["text/plain"] for c in nb.cells for o in c.outputs if o.output_type == "display_data"]
    assert texts.count("x") == 60 and texts.count("A" * 100_000) == 1, "an earlier output was rewritten"
    notes = [o.text for o in nb.cells[1].outputs if o.output_type == "stream"]
    assert len(notes) == 1 and "display update dropped" in notes[0] and "60" in notes[0], notes
    small = {"text/plain": "y" * 1000}
    ex.process_message(_msg("update_display_data", data=small, metadata={},
                            transient={"display_id": "amp"}), nb.cells[0], 0)
    texts = [o["data"]["text/plain"] for c in nb.cells for o in c.outputs if o.output_type == "display_data"]
    assert texts.count("y" * 1000) == 61
    json_size = len(nbformat.writes(nb))
    assert ex._output_used["notebook"] >= 61 * 1000 and json_size < 1.5 * 2 ** 20 + 50_000
    assert ex._output_used["notebook"] > used["notebook"]


def test_every_part_of_an_output_is_counted():
    """Metadata, an error's name and text, and JSON's escapes all reach the written notebook:
    all are counted against the cell's cap (a control character is written as 6 bytes)."""
    from nopos.grading.sandbox import _size

    assert _size({"data": {}, "metadata": {"m": "x" * 1000}}) > 1000
    assert _size({"ename": "E" * 500, "evalue": "v" * 500, "traceback": []}) > 1000
    assert _size({"name": "stdout", "text": "\x01" * 1000}) >= 6000
    ex, nb = message_executor(cell_output_mb=0.5)
    for _ in range(4):
        ex.process_message(_msg("display_data", data={}, metadata={"junk": "m" * 200_000}), nb.cells[0], 0)
    assert len(nbformat.writes(nb)) < 0.5 * 2 ** 20 + 10_000
    assert any("output cut" in o.get("text", "") for o in nb.cells[0].outputs)


class _NoGradebook:  # merge's rows are not what this test is about
    def __init__(self, url):
        self.db = self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def commit(self):
        pass


def test_merge_says_what_it_does_not_keep(tmp_path, monkeypatch):
    """An autograded notebook over merge's bound is not copied, and merge says so (the batch
    report shows it); the learner's files never crowd the notebook out."""
    private, root = tmp_path / "private", tmp_path / "root"
    source = private / "autograded" / "s1" / AID
    source.mkdir(parents=True)
    (source / f"{AID}.ipynb").write_bytes(b"n" * 3000)
    (source / "data.bin").write_bytes(b"d" * 3000)
    (source / "sub").mkdir()
    (source / "sub" / "more.bin").write_bytes(b"d" * 3000)
    monkeypatch.setattr(batch, "read_results", lambda *a: None)
    monkeypatch.setattr(batch, "write_results", lambda *a: None)
    monkeypatch.setattr(batch, "MAX_AUTOGRADED_MB", 2000 / 2 ** 20)
    monkeypatch.setattr("nbgrader.api.Gradebook", _NoGradebook)
    notes = batch.merge(root, AID, "s1", private)
    assert any("autograded notebook is over" in n and "no feedback" in n for n in notes), notes
    assert not (root / "autograded" / "s1" / AID / f"{AID}.ipynb").exists()
    # a tree's budget is shared by its subfolders
    assert batch.copy_nofollow(source, tmp_path / "copy", budget=7000) == ["sub/more.bin is too large: not copied for grading"]
