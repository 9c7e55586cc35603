"""What a chapter's grading kernel may import of the course.

The kernel needs the course's two packages: `nopos` (what the notebooks import)
and `nopos_reference` (later chapters import earlier chapters' answers). It
gets copies, made for that chapter alone: `nopos_reference` without the
chapter's own answer modules (`nopos_reference.ANSWERS`) and `nopos` without
the checks (the verdict is reached outside the kernel, nopos/grading/judge.py). The
sandbox mounts each copy, read-only, wherever the real package lives, so no
import, file read or byte-compiled cache inside the kernel reaches the answers.
"""
import importlib.util
import shutil
from pathlib import Path

PACKAGES = ("nopos", "nopos_reference")


def package_dir(name):
    """Where Python imports a package from (the checkout, or site-packages)."""
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).resolve().parent


def hidden_files(assignment):
    """Relative paths, per package, that the chapter's kernel must not see."""
    from nopos_reference import ANSWERS

    # a notebook that is not one of the chapters sees none of the answers
    answers = ANSWERS[assignment] if assignment in ANSWERS else sum(ANSWERS.values(), ())
    return {
        "nopos": {"checks/" + p.name for p in (package_dir("nopos") / "checks").glob("ch*.py")},
        "nopos_reference": {f"{m}.py" for m in answers},
    }


def kernel_packages(assignment, scratch):
    """[(copy, mount point)]: the filtered copies to mount over the real packages."""
    hidden = hidden_files(assignment)
    mounts = []
    for name in PACKAGES:
        source, copy = package_dir(name), Path(scratch) / name
        skip = hidden[name]

        def ignore(folder, names, source=source, skip=skip):
            rel = Path(folder).relative_to(source)
            return [n for n in names if n == "__pycache__" or n.endswith(".pyc")
                    or (rel / n).as_posix() in skip]

        shutil.copytree(source, copy, ignore=ignore, symlinks=False)
        mounts.append((str(copy), str(source)))
    return mounts
