"""Autograde a class in parallel, on top of nbgrader, and survive bad submissions.

    python -m nopos.grading.batch COURSE_ROOT 01_dataset --workers 2

nbgrader autogrades one student after another in one process. Here every
student is graded by a real `nbgrader autograde <aid> --student=<s>` in a
private copy of the course (its config, the assignment's source, a snapshot of
the gradebook and only that student's submission), N at a time. The results
are then merged into the instructor's gradebook one student at a time through
nbgrader's Gradebook API, so the shared sqlite file only ever has one writer,
and the autograded notebooks are copied back where `nbgrader generate_feedback`
looks for them.

Before grading, `intake` repairs what a learner can break in a submission and
nbgrader cannot grade (see docs/grading.md): unreadable or empty files,
a wrong nbformat, huge outputs, duplicated grade ids, changed cell types or
grading settings, deleted or reordered graded cells, symbolic links. It never
writes in submitted/: every original is kept in intake/originals/, and what is
graded goes to intake/ready/. What it cannot repair becomes a "rejected"
submission: every test scores 0 and its feedback says why. Every student gets
a row in the gradebook; a student id that is not a plain name is refused.
"""
import argparse
import copy
import hashlib
import json
import math
import os
import re
import resource
import select
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from nopos.grading import course
from nopos.grading.sandbox import KEEP_SECONDS, release_runtime
from nopos.threads import pick_threads

MAX_NOTEBOOK_MB = 20  # larger submissions lose their outputs (graded again from scratch anyway)
MAX_READ_MB = 400  # larger files are not read at all
MAX_FILES_MB = 100  # the learner's other files copied for grading, in all
INTAKE_MEMORY_MB = 2048  # checking one submission; a 20 MB notebook of images needs about 300
INTAKE_SECONDS = 120  # the same (a 40 MB one of plain text takes about 10 s)
MAX_READY_MB = 50  # the notebook as intake writes it for nbgrader (a text of line breaks: x5)
MAX_AUTOGRADED_MB = 200  # an autograded notebook merged back (submission 20 MB + outputs the sandbox kept)
NOTE = "nopos_grading"
KERNELSPEC = {"name": "nopos", "display_name": "Python (nopos course)", "language": "python"}
READY = Path("intake") / "ready"  # what nbgrader grades: repaired copies, by student
ORIGINALS = Path("intake") / "originals"  # every file ever submitted, by content
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")  # fullmatch (no trailing newline); nbgrader keeps 128
# A student id only ever names a folder inside folders that hold nothing but student
# folders (submitted/, autograded/, feedback/, intake/ready/ and originals/, the batch's
# students/; the grader's own entries there start with '.', which an id cannot): so a
# plain name is all it needs to be, and an id like 'gradebook.db' collides with nothing.


def check_student_id(student):
    """None, or why `student` cannot be a folder name of the course."""
    if not isinstance(student, str) or not STUDENT_ID.fullmatch(student) or ".." in student:
        return (f"the student id {student!r} is not a plain name (letters, digits, '.', '_', "
                f"'-', '@', '+'; at most 128; no '/', no '..'): not graded")
    return None


def _grade_id(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _release(root, aid):
    return nbformat.read(Path(root) / "release" / aid / f"{aid}.ipynb", as_version=4)


def rejected_notebook(root, aid, reason):
    """The release notebook, marked so that every test scores 0 saying `reason`."""
    nb = _release(root, aid)
    nb.metadata[NOTE] = {"rejected": reason}
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(
        f"**This submission was not graded:** {reason}"))
    return nb


def write_atomic(path, data):
    """Write bytes to `path` through a temporary file in the same folder: a reader sees
    the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own length, not the file's: a learner's name may already be 255 bytes
    tmp = path.parent / f".nopos-{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def read_nofollow(path, limit):
    """The bytes of a regular file, never through a symbolic link; None if too large."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{Path(path).name} is not a regular file")
        # in parts: read(limit) would take the whole limit's memory first, whatever the size
        parts, left = [], limit + 1
        while left > 0 and (part := f.read(min(left, 16 << 20))):
            parts.append(part)
            left -= len(part)
    return None if left <= 0 else b"".join(parts)


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def plain_path(name):
    """Whether `name` is a relative path of ordinary names ('/' between them): no '', '.',
    '..', no control character, at most 8 deep and 1 KB. What intake copies for grading
    and a grading worker writes (spaces, accents and leading dots are a learner's own)."""
    if not isinstance(name, str) or len(name.encode("utf-8", "replace")) > 1024:
        return False
    parts = name.split("/")
    return len(parts) <= 8 and all(p not in ("", ".", "..") and not CONTROL.search(p)
                                   and len(p.encode("utf-8", "replace")) <= 255 for p in parts)


def copy_nofollow(src, dst, skip=(), budget=MAX_FILES_MB * 2 ** 20, top=None):
    """Copy a learner's folder: regular files and folders only; symbolic links, pipes and
    devices are left out (never followed). Returns notes of what was left out. The
    budget is for the whole tree, subfolders included."""
    top = top or Path(src)
    budget = budget if isinstance(budget, list) else [budget]
    notes = []
    Path(dst).mkdir(parents=True, exist_ok=True)
    with os.scandir(src) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            rel = Path(entry.path).relative_to(top)
            if entry.name in skip:
                continue
            if entry.is_symlink():
                notes.append(f"{rel} is a symbolic link: not copied for grading")
            elif not plain_path(rel.as_posix()) and (entry.is_file(follow_symlinks=False)
                                                     or CONTROL.search(entry.name)):
                notes.append(f"{rel.as_posix()!r} is not a plain file name (a control character, "
                             f"or more than 8 folders deep): not copied for grading")
            elif entry.is_dir(follow_symlinks=False):
                notes += copy_nofollow(entry.path, Path(dst) / entry.name, (), budget, top)
            elif entry.is_file(follow_symlinks=False):
                try:
                    data = read_nofollow(entry.path, budget[0])
                    if data is None:
                        notes.append(f"{rel} is too large: not copied for grading")
                        continue
                    budget[0] -= len(data)
                    write_atomic(Path(dst) / entry.name, data)
                except OSError as error:  # that file, not the submission: said, left out
                    why = error.strerror or type(error).__name__
                    notes.append(f"{str(rel)[:120]!r} could not be copied ({why}): not copied "
                                 f"for grading")
            else:
                notes.append(f"{rel} is not a regular file: not copied for grading")
    return notes


CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # nbformat 4.5's rule (fullmatch)


def _plain(raw):
    """The parts of a notebook's JSON nbformat needs, put into shape; None if hopeless."""
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", []), list):
        return None, []
    notes = []
    if not isinstance(raw.get("metadata", {}), dict):
        raw["metadata"] = {}
        notes.append("the notebook's metadata was not a mapping; it was reset")
    raw.get("metadata", {}).pop(NOTE, None)  # only the grader writes its notes
    spec = raw.get("metadata", {}).get("kernelspec")
    if spec is not None and not (isinstance(spec, dict) and all(
            isinstance(spec.get(k), str) for k in ("name", "display_name"))):
        raw["metadata"]["kernelspec"] = dict(KERNELSPEC)
        notes.append("the notebook's kernel description was incomplete; it was put back")
    for key, default in (("nbformat", None), ("nbformat_minor", 0)):  # 5.0 or "5" is 5
        try:
            raw[key] = int(raw[key]) if float(raw[key]) == int(float(raw[key])) else default
        except (KeyError, TypeError, ValueError, OverflowError):
            raw[key] = default
    cells, ids = [], set()
    for cell in raw.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            notes.append("a cell that was not a notebook cell was dropped")
            continue
        if not isinstance(cell.get("metadata", {}), dict):
            cell["metadata"] = {}
        if "nbgrader" in cell["metadata"] and not isinstance(cell["metadata"]["nbgrader"], dict):
            del cell["metadata"]["nbgrader"]
            notes.append("a cell's grading metadata was not a mapping; it was removed")
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        cell["source"] = source if isinstance(source, str) else ""
        if raw["nbformat_minor"] < 5:
            cell.pop("id", None)  # cell ids came with 4.5: an older notebook with one is refused
        elif "id" in cell and (not isinstance(cell["id"], str) or cell["id"] in ids
                               or not CELL_ID.fullmatch(cell["id"])):
            cell["id"] = uuid.uuid4().hex[:12]  # copied cells share ids; some are not ids at all
        ids.add(cell.get("id"))
        if cell["cell_type"] == "code":
            if not isinstance(cell.get("outputs"), list):
                cell["outputs"] = []
            cell.setdefault("execution_count", None)
        cells.append(cell)
    raw["cells"] = cells
    return raw, notes


def _load(data):
    """(notebook, notes) or (None, reason), from the submitted bytes."""
    if not data:
        return None, "the submitted file is empty"
    notes = []
    try:
        raw = json.loads(data)
    except RecursionError:
        return None, "the submitted file is nested too deeply to be a notebook"
    except (ValueError, UnicodeDecodeError) as error:
        return None, f"the submitted file is not valid notebook JSON ({str(error)[:120]})"
    if len(data) > MAX_NOTEBOOK_MB * 2 ** 20 and isinstance(raw, dict) and isinstance(raw.get("cells"), list):
        # first: every later step copies the whole notebook (a 300 MB one of figures needed
        # 6 bytes a byte, past intake's own memory)
        for cell in raw["cells"]:
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
            if isinstance(cell, dict):
                cell.pop("attachments", None)  # pasted images: no test reads them
        notes.append(f"the notebook was {len(data) / 2 ** 20:.0f} MB; its outputs were removed "
                     f"before grading")
    # text that cannot be written back as UTF-8 (lone surrogates): replaced by '?'
    text = json.dumps(raw, ensure_ascii=False)
    clean = text.encode("utf-8", "replace")
    if clean != text.encode("utf-8", "surrogatepass"):
        notes.append("text that is not valid Unicode was replaced by '?'")
        raw = json.loads(clean)
    raw, more = _plain(raw)
    if raw is None:
        return None, "the submitted file is JSON but not a notebook"
    notes += more
    version = raw.get("nbformat")
    if version not in (3, 4):
        return None, (f"the notebook has nbformat version {version!r}; this course reads version 4 "
                      f"(open and save it again in Jupyter)")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # nbformat raises many kinds
        # an editor's slip in what grading throws away anyway (an output's or a cell's extra
        # field, a markdown cell with outputs): the notebook without them, said in a note
        try:
            nb = nbformat.reads(json.dumps(_without_outputs(raw)), as_version=4)
            nbformat.validate(nb)
            notes.append("the notebook's outputs did not follow the notebook format; they were "
                         "removed before grading (grading runs every cell again)")
        except Exception:  # noqa: BLE001 - the cells themselves: the first error says why
            said = (str(error).splitlines() or [type(error).__name__])[0]  # some say nothing
            return None, f"the notebook does not follow the notebook format ({said[:160]})"
    return nb, notes


_CELL_FIELDS = {"code": ("id", "cell_type", "metadata", "source", "outputs", "execution_count"),
                "markdown": ("id", "cell_type", "metadata", "source"),
                "raw": ("id", "cell_type", "metadata", "source")}


def _without_outputs(raw):
    """A copy of the notebook's JSON with each cell's fields as the format has them, no
    output and no attachment: what grading reads of it."""
    cells = []
    for cell in raw["cells"]:
        cell = {k: v for k, v in cell.items() if k in _CELL_FIELDS[cell["cell_type"]]}
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    return {**raw, "cells": cells}


def _in_order(positions):
    """Indices of a longest strictly increasing run of `positions` (not contiguous); of runs
    as long, the one of the earliest cells. n x (distinct positions) steps: the positions are
    a release's graded cells, so 20,000 pasted copies of a test are not 20,000 squared."""
    values = sorted(set(positions))
    ending = {}  # value -> (longest run ending in it so far, the first cell that ends one)
    best, before = [0] * len(positions), [-1] * len(positions)
    for i, p in enumerate(positions):
        length, j = 0, -1
        for v in values:
            if v >= p:
                break
            if v in ending and (ending[v][0] > length or ending[v][0] == length and ending[v][1] < j):
                length, j = ending[v]
        best[i], before[i] = length + 1, j
        if p not in ending or best[i] > ending[p][0]:
            ending[p] = (best[i], i)
    i = max(range(len(positions)), key=lambda k: best[k], default=-1)
    keep = set()
    while i >= 0:
        keep.add(i)
        i = before[i]
    return keep


def repair(nb, release):
    """Put back what nbgrader needs, in place; returns the notes of what changed.

    Graded cells keep the learner's code but get their grading metadata and type from
    the release. Of the graded cells, the largest set already in the assignment's
    order stays where it is (a copy of a test pasted at the top does not move the
    learner's work around it); other copies become ordinary cells."""
    notes = []
    # grading settings without a grade id (a tool that dropped it): nbgrader stops on them
    stray = [c for c in nb.cells if "nbgrader" in c.get("metadata", {}) and not _grade_id(c)]
    for cell in stray:
        del cell.metadata["nbgrader"]
    if stray:
        notes.append(f"{len(stray)} cell(s) with grading settings but no grade id are graded as "
                     f"ordinary cells")
    want = {_grade_id(c): c for c in release.cells if _grade_id(c)}
    order = [_grade_id(c) for c in release.cells if _grade_id(c)]
    rank = {g: i for i, g in enumerate(order)}
    graded = [i for i, c in enumerate(nb.cells) if _grade_id(c)]
    for i in [i for i in graded if not isinstance(_grade_id(nb.cells[i]), str)
              or _grade_id(nb.cells[i]) not in want]:
        notes.append(f"a cell with the unknown grade id {str(_grade_id(nb.cells[i]))[:60]!r} is "
                     f"graded as an ordinary cell")
        del nb.cells[i].metadata["nbgrader"]
    graded = [i for i in graded if _grade_id(nb.cells[i]) in want]
    kept = {graded[k] for k in _in_order([rank[_grade_id(nb.cells[i])] for i in graded])}
    placed, seen = {_grade_id(nb.cells[i]) for i in kept}, set()
    for i in graded:
        gid = _grade_id(nb.cells[i])
        if i not in kept and (gid in placed or gid in seen):
            del nb.cells[i].metadata["nbgrader"]
            notes.append(f"a second cell with grade id {gid!r} is graded as an ordinary cell")
        else:
            seen.add(gid)
    for cell in nb.cells:  # grading metadata and type from the release, code from the learner
        gid = _grade_id(cell)
        if not gid:
            continue
        if cell.metadata["nbgrader"] != want[gid].metadata["nbgrader"]:
            notes.append(f"the grading settings of cell {gid!r} were changed; they were put back")
        metadata = {**cell.metadata, "nbgrader": copy.deepcopy(want[gid].metadata["nbgrader"])}
        if cell.cell_type != want[gid].cell_type:
            notes.append(f"cell {gid!r} was turned into {cell.cell_type}; it is {want[gid].cell_type} again")
            new = (nbformat.v4.new_code_cell if want[gid].cell_type == "code"
                   else nbformat.v4.new_markdown_cell)(cell.source)
            cell.clear()
            cell.update(new)
        cell.metadata = metadata
    # graded cells in the release's order, each with the learner's cells that follow it
    groups, head, current = {}, [], None
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid:
            current = gid
            groups[gid] = [cell]
        elif current is None:
            head.append(cell)
        else:
            groups[current].append(cell)
    present = [g for g in [_grade_id(c) for c in nb.cells] if g]
    missing = [g for g in order if g not in groups]
    if missing or present != [g for g in order if g in groups]:
        if missing:
            notes.append(f"deleted graded cells were put back: {', '.join(missing)}")
        if present != [g for g in order if g in groups]:
            notes.append("graded cells were moved; they were put back in the assignment's order")
        cells = list(head)
        for gid in order:
            cells += groups.get(gid) or [copy.deepcopy(want[gid])]
        nb.cells = cells
    return notes


def _keep_original(root, aid, student, data):
    """Every distinct file a student handed in stays, named by its content."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    path = Path(root) / ORIGINALS / student / aid / f"{digest}.ipynb"
    if not path.exists():
        write_atomic(path, data)
    return path


def _submitted(root, aid, student):
    """The submitted notebook's bytes, or (None, reason). No link is ever followed:
    the student's folder, the assignment's folder and the notebook must be real."""
    folder = Path(root) / "submitted" / student
    for path in (folder, folder / aid):
        if path.is_symlink():
            return None, f"{path.relative_to(root)} is a symbolic link: not graded"
    path = folder / aid / f"{aid}.ipynb"
    if path.is_symlink():
        return None, f"the submitted {aid}.ipynb is a symbolic link, not a notebook: not graded"
    if not path.exists():
        return None, f"no {aid}.ipynb was submitted"
    try:
        data = read_nofollow(path, MAX_READ_MB * 2 ** 20)
    except OSError as error:
        return None, f"the submitted {aid}.ipynb could not be read ({error.strerror or error})"
    if data is None:
        return None, f"the submitted {aid}.ipynb is larger than {MAX_READ_MB} MB: not graded"
    return data, None


def intake(root, aid, student):
    """Check and repair one submission; never touches submitted/.

    The original is kept in intake/originals/<student>/<aid>/ (each resubmission too),
    and what nbgrader grades (the repaired notebook, the learner's other regular files,
    the timestamp) is written to intake/ready/<student>/<aid>/, replaced whole.
    Returns the notes, also stored in the notebook; a rejection is a one-note list.

    The check runs in a forked child with INTAKE_MEMORY_MB and INTAKE_SECONDS of its own:
    decoding a notebook can cost 50 times its size (a text of line breaks, nested empty
    lists), and it runs in the class's batch process, so one submission built for it would
    otherwise take every classmate's grading down with it. A child that breaks a bound
    rejects that submission, saying which."""
    root = Path(root)
    reason = check_student_id(student)
    if reason:
        raise ValueError(reason)
    build = root / READY / f".{student}.{uuid.uuid4().hex[:8]}"
    read, write = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: no return, no exception, no flushing of the parent's buffers
        code = 1
        try:
            os.close(read)
            _die_with(parent)
            limit = _address_space() + INTAKE_MEMORY_MB * 2 ** 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            seconds = math.ceil(INTAKE_SECONDS)
            resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
            notes = _intake(root, aid, student, build)
            with os.fdopen(write, "w") as out:
                json.dump(notes, out)
            code = 0
        except MemoryError:
            code = OUT_OF_MEMORY
        finally:
            os._exit(code)
    os.close(write)
    got, why, heard = [], None, False
    deadline = time.monotonic() + INTAKE_SECONDS
    try:
        with os.fdopen(read, "rb") as pipe:
            poll = select.poll()  # (select() cannot wait on a descriptor past 1023)
            poll.register(pipe, select.POLLIN)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not poll.poll(left * 1000):
                    why = f"checking it took longer than {INTAKE_SECONDS} s"
                    break
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    break
                got.append(chunk)
                if sum(map(len, got)) > 2 ** 20:  # the notes are bounded: this is not notes
                    why = "checking it said more than its notes"
                    break
        heard = why is None
    finally:  # whatever happened here, the child does not outlive this call
        if not heard:
            os.kill(pid, signal.SIGKILL)
        status = os.waitpid(pid, 0)[1]
    if why is None and status == 0:
        return json.loads(b"".join(got))
    if why is None:
        why = (f"checking it needed more than {INTAKE_MEMORY_MB} MB of memory"
               if os.WIFEXITED(status) and os.WEXITSTATUS(status) == OUT_OF_MEMORY
               else "checking it stopped the checker")
    notes = [f"the submission could not be checked ({why}): not graded"]
    _ready(root, aid, student, _build_rejected(root, aid, student, notes[0], build))
    return notes


OUT_OF_MEMORY = 3  # the child's exit code when its bound was hit


def _die_with(parent):
    """This process is killed when `parent` ends (a batch killed mid-intake leaves no child
    writing intake/ready/ minutes later)."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the line above
        os._exit(1)


def _address_space():
    """This process's virtual size in bytes (the child's bound is on top of what it inherits)."""
    return int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()


def _build_rejected(root, aid, student, reason, build):
    """A folder to become ready/: the release marked rejected, with the submission's time
    and secret (nbgrader's release_feedback names the feedback by them; the secret: the
    exchange on a hub). Whatever `build` held is dropped."""
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    folder = Path(root) / "submitted" / student
    if not (folder.is_symlink() or (folder / aid).is_symlink()):
        _timestamp(folder / aid, build)
        secret = folder / aid / "submission_secret.txt"
        if secret.is_file() and not secret.is_symlink():
            write_atomic(build / secret.name, read_nofollow(secret, 1000) or b"")
    reason = _readable([reason])[0]
    write_atomic(build / f"{aid}.ipynb",
                 nbformat.writes(rejected_notebook(root, aid, reason)).encode("utf-8"))
    return build


def _ready(root, aid, student, build):
    """`build` becomes intake/ready/<student>/<aid>/, whole; one intake of a student at a
    time (two batches at once swapped each other's folders away)."""
    import fcntl

    ready = Path(root) / READY / student / aid
    old = Path(root) / READY / f".{student}.old.{uuid.uuid4().hex[:8]}"
    ready.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(root) / READY / f".{student}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            os.replace(ready, old)
        os.replace(build, ready)
    shutil.rmtree(old, ignore_errors=True)


def _intake(root, aid, student, build):
    """intake's check, in the child; what is graded is built in `build`."""
    try:
        data, reason = _submitted(root, aid, student)
        notes = []
        if data is not None:
            _keep_original(root, aid, student, data)
            nb, loaded = _load(data)
            if nb is None:
                reason = loaded
            else:
                notes = loaded + repair(nb, _release(root, aid))
        if reason is None:
            source = root / "submitted" / student / aid
            notes += copy_nofollow(source, build, skip={f"{aid}.ipynb", "timestamp.txt"})
            notes += _timestamp(source, build)
            notes = _readable(notes)
            if notes:
                nb.metadata[NOTE] = {"notes": notes}
                nb.cells.insert(0, nbformat.v4.new_markdown_cell(
                    "**Grading notes:** " + "; ".join(notes)))
            written = nbformat.writes(nb).encode("utf-8")
            del nb
            if len(written) > MAX_READY_MB * 2 ** 20:  # nbgrader would read it whole, twice
                reason = (f"the notebook is {len(written) / 2 ** 20:.0f} MB as written for grading "
                          f"(at most {MAX_READY_MB} MB: its text holds very many lines or cells)")
            else:
                write_atomic(build / f"{aid}.ipynb", written)
        if reason is not None:
            notes = _readable([reason])
            _build_rejected(root, aid, student, reason, build)
    except MemoryError:
        raise  # the parent says so (what is held here may leave nothing to write with)
    except Exception as error:  # one unreadable submission never stops the class
        notes = _readable([f"the submission could not be checked ({type(error).__name__}: "
                           f"{str(error)[:120]})"])
        _build_rejected(root, aid, student, notes[0], build)
    _ready(root, aid, student, build)
    return notes


NOTE_CHARS, NOTES = 300, 20  # what a learner reads in the notes cell


def _readable(notes):
    """Notes as the notebook keeps them: each in UTF-8 ('?' for a file name's bytes that are
    not), each and all of them bounded (a note may quote what the learner chose: a grade
    id, a file name; 20,000 pasted cells make as many notes)."""
    kept = [n.encode("utf-8", "replace").decode("utf-8")[:NOTE_CHARS] for n in notes[:NOTES]]
    return kept + ([f"and {len(notes) - NOTES} more of these"] if len(notes) > NOTES else [])


def _timestamp(source, build):
    """nbgrader reads the submission time from timestamp.txt; one it cannot parse is dropped."""
    from nbgrader.utils import parse_utc

    path = Path(source) / "timestamp.txt"
    if not path.exists() and not path.is_symlink():
        return []
    try:
        text = read_nofollow(path, 1000).decode("utf-8").strip()
        parse_utc(text)
    except Exception:
        return ["timestamp.txt is not a time nbgrader can read: the submission counts as on time"]
    write_atomic(Path(build) / "timestamp.txt", text.encode())
    return []


# ------------------------------------------------------------------ parallel
def _snapshot(db, target):
    """A consistent copy of an sqlite file, even while someone writes to it."""
    src, dst = sqlite3.connect(db), sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def _grade_private(root, aid, student, batch, snapshot, timeout, threads, stats=None):
    """One real `nbgrader autograde --student` in a private copy of the course; `stats`
    (a dict) gets the student's {"grader_peak_mb": ...}."""
    private = batch / "students" / student
    shutil.rmtree(private, ignore_errors=True)
    (private / "source").mkdir(parents=True)
    shutil.copy(root / "nbgrader_config.py", private / "nbgrader_config.py")
    shutil.copytree(root / "source" / aid, private / "source" / aid)
    submitted = private / "submitted" / student / aid
    # intake kept the learner's files within MAX_FILES_MB and the notebook within MAX_READY_MB
    copy_nofollow(root / READY / student / aid, submitted, budget=(MAX_FILES_MB + MAX_READY_MB) << 20)
    shutil.copy(snapshot, private / "gradebook.db")
    start = time.monotonic()

    def run(**limit):
        return course.nbgrader(private, "autograde", aid, "--force", f"--student={student}",
                                check=False, threads=threads, runtime=batch / "runtime", **limit)

    peak = 0
    try:
        proc = run(timeout=timeout)
        peak = grader_peak_mb(proc.stderr)
        status = "ok" if proc.returncode == 0 else f"nbgrader failed: {proc.stderr[-2000:]}"
        reason = None if (private / "autograded" / student / aid).exists() else (
            f"grading failed ({_last_error(proc.stderr)})")
    except subprocess.TimeoutExpired:
        reason = f"grading stopped: the notebook ran past the {timeout} s limit for a whole notebook"
        status = "timeout"
    if reason:  # every student gets a row: graded as rejected, saying why
        write_atomic(submitted / f"{aid}.ipynb",
                     nbformat.writes(rejected_notebook(root, aid, reason)).encode("utf-8"))
        run()
    if stats is not None:
        stats[student] = {"grader_peak_mb": peak}
    return student, status, time.monotonic() - start


def grader_peak_mb(log):
    """The grader's own peak memory (MB), as SandboxedExecute logs it; 0 if not logged."""
    found = re.findall(r"nopos: grader peak memory (\d+) MB", log or "")
    return int(found[-1]) if found else 0


def _last_error(stderr):
    lines = [l for l in (stderr or "").splitlines() if "error" in l.lower()]
    return (lines[-1] if lines else "nbgrader stopped").strip()[:200]


def merge(root, aid, student, private):
    """Copy one student's autograde results from a private course into `root`; returns
    notes of what was not kept (the batch's report says them)."""
    from nbgrader.api import Gradebook

    results = read_results(private, aid, student)
    with Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gb:
        write_results(gb, aid, student, results)
        gb.db.commit()
    target = Path(root) / "autograded" / student / aid
    shutil.rmtree(target, ignore_errors=True)
    source = private / "autograded" / student / aid
    notes = copy_nofollow(source, target, skip={f"{aid}.ipynb"})
    notebook = source / f"{aid}.ipynb"
    if notebook.exists() or notebook.is_symlink():  # its own budget: the learner's files never crowd it out
        data = read_nofollow(notebook, int(MAX_AUTOGRADED_MB * 2 ** 20))
        if data is None:
            notes.append(f"the autograded notebook is over {MAX_AUTOGRADED_MB:g} MB: not kept, so "
                         f"this student gets no feedback")
        else:
            write_atomic(target / notebook.name, data)
    return notes


def read_results(private, aid, student):
    """One student's autograde rows in a private course's gradebook, as plain data."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{private / 'gradebook.db'}") as src:
        got = src.find_submission(aid, student)
        rows = {}
        for nb in got.notebooks:
            rows[nb.name] = (
                {g.name: (g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                 for g in nb.grades},
                {c.name: c.auto_comment for c in nb.comments},
                nb.flagged, nb.late_submission_penalty)
        return {"timestamp": got.timestamp, "notebooks": rows}


def write_results(gb, aid, student, results):
    """Put read_results' rows into gradebook `gb` (any database); the caller commits."""
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        # nbgrader's API autoflushes mid-creation of a new student's submission and
        # SQLAlchemy warns about it; the rows are complete once committed
        warnings.filterwarnings("ignore", message=".*not in session", category=SAWarning)
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(aid, student, timestamp=results["timestamp"])
        for nb in sub.notebooks:
            grades, comments, flagged, penalty = results["notebooks"][nb.name]
            for g in nb.grades:
                g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade = grades[g.name]
            for c in nb.comments:  # no NUL: PostgreSQL refuses it (a shared gradebook)
                said = comments.get(c.name)
                c.auto_comment = said.replace("\x00", "?") if isinstance(said, str) else said
            nb.flagged, nb.late_submission_penalty = flagged, penalty
        gb.db.flush()


def grade_batch(root, aid, students=None, workers=2, notebook_timeout=None, keep=False, stats=None):
    """Autograde `students` (default: every submission of `aid`) with `workers` nbgrader
    processes at a time; returns {student: (status, seconds)}. A student id that is not a
    plain name is refused (status "refused: ..."), and nothing is done in its name.
    `stats` (a dict) gets each student's grader peak memory."""
    root = Path(root).resolve()
    refuse_uncontained(root)
    students = students or course.submitted_students(root, aid)
    notebook_timeout = notebook_timeout or _notebook_timeout(root)
    outcome = {}
    for student in students:
        reason = check_student_id(student)
        if reason:
            outcome[student] = (f"refused: {reason}", 0.0)
        else:
            intake(root, aid, student)
    valid = [s for s in students if s not in outcome]
    batch = Path(tempfile.mkdtemp(prefix=f"nopos-batch-{aid}-"))
    try:
        snapshot = batch / "snapshot" / "gradebook.db"
        snapshot.parent.mkdir()
        _snapshot(root / "gradebook.db", snapshot)
        workers = max(1, min(workers, len(valid) or 1))
        threads = pick_threads(share=workers)  # the free cores, shared out
        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(_grade_private, root, aid, s, batch, snapshot, notebook_timeout,
                                threads, stats) for s in valid]
            for job in jobs:  # merge in a fixed order, one writer at a time
                student, status, seconds = job.result()
                private = batch / "students" / student
                if (private / "autograded" / student / aid).exists():
                    try:
                        notes = merge(root, aid, student, private)
                    except Exception as error:  # noqa: BLE001 - that student's, never the class's
                        notes = [f"the results could not be kept ({type(error).__name__}: "
                                 f"{str(error)[:200]}): grade this student again"]
                    if notes:
                        status = f"{status}; not kept: {'; '.join(notes)}"
                else:
                    status = f"not graded: {status}"
                outcome[student] = (status, seconds)
        return outcome
    finally:
        release_runtime(batch / "runtime")  # a killed grader's socket quotas, if any
        if not keep:
            shutil.rmtree(batch, ignore_errors=True)


def refuse_uncontained(root):
    """Stop before any grading where a kernel would run as root outside its sandbox (the
    course's config switches namespaces or the uid drop off, or this host refuses them):
    one clear error, not a class of failed gradings."""
    from nopos.grading.sandbox import root_refusal

    settings = course.config(root).get("SandboxedExecute", {})
    refused = root_refusal(settings.get("namespaces", True), settings.get("drop_privileges", True),
                           settings.get("own_notebook", False))
    if refused:
        raise SystemExit(f"nothing graded: {refused}")


def _notebook_timeout(root):
    """The wall limit of one student's whole autograde: the sandbox's notebook budget, as
    far as the notebook can run past it (a test cell started just before the budget ends
    gets its whole cell limit, then the 30 s that keep its hidden checks' objects), the
    hidden checks' pass with a budget of its own, and a margin for nbgrader's own start-up
    and the kernel restarts. Shorter, and whether a hidden call used its pass's time would
    decide between one test's sentence and the whole notebook stopped (review a31a, M3)."""
    config = course.config(root)
    budget = int(config.get("SandboxedExecute", {}).get("notebook_timeout", 900))
    cell = int(config.get("SandboxedExecute", {}).get("timeout")
               or config.get("Execute", {}).get("timeout") or 120)
    return 2 * budget + cell + KEEP_SECONDS + 120


def autograde(root, aid, student=None, timeout=None, workers=None, check=True):
    """`nbgrader autograde`, after the intake check of every submission.

    Intake leaves submitted/ as it is and writes what is graded to intake/ready/;
    nbgrader grades that folder. A student nbgrader could not grade is graded again
    as rejected, so that everyone has a row. With `workers`, the parallel batch of
    grade_batch (one nbgrader per student in a private copy of the course,
    merged into this gradebook)."""
    if workers:
        return grade_batch(root, aid, [student] if student else None, workers=workers,
                           notebook_timeout=timeout)
    refuse_uncontained(root)
    who = [student] if student else course.submitted_students(root, aid)
    for name in [w for w in who if check_student_id(w)]:
        print(f"not graded: {check_student_id(name)}", file=sys.stderr)
    who = [w for w in who if not check_student_id(w)]
    for name in who:
        intake(root, aid, name)
    args = ["autograde", aid, "--force", f"--CourseDirectory.submitted_directory={READY}"]
    proc = course.nbgrader(root, *args, *([f"--student={student}"] if student else []),
                    timeout=timeout, check=check)
    missing = [w for w in who if not (Path(root) / "autograded" / w / aid).exists()]
    for name in missing:  # nbgrader gave up on it: graded as rejected, saying why
        nbformat.write(rejected_notebook(root, aid, "nbgrader could not grade this submission"),
                       Path(root) / READY / name / aid / f"{aid}.ipynb")
        course.nbgrader(root, *args, f"--student={name}", check=check)
    return proc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the course folder (where nbgrader_config.py is)")
    parser.add_argument("assignment")
    parser.add_argument("--student", action="append", help="only these students (repeatable)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=int, help="seconds for one whole notebook")
    args = parser.parse_args(argv)
    start = time.monotonic()
    outcome = grade_batch(args.root, args.assignment, args.student, args.workers, args.timeout)
    for student, (status, seconds) in outcome.items():
        first = status.splitlines()[0] if status else ""
        print(f"{student:<24} {seconds:6.1f} s  {first[:100]}")
        if "; not kept: " in first:  # what merge left out, said in full
            print(f"{'':<24}   not kept: {first.split('; not kept: ', 1)[1][:400]}")
    print(f"{len(outcome)} submissions in {time.monotonic() - start:.1f} s with {args.workers} workers")
    return 0 if all(s in ("ok", "timeout") for s, _ in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
