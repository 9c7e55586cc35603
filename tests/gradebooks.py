"""One new, empty nbgrader gradebook per test session (worker), copied where needed:
creating one costs seconds (nbgrader runs `alembic`), copying it nothing."""
import shutil

from nopos.hub import roster


def empty_gradebook(tmp_path_factory):
    """The path of the template: made once, by the roster's own code."""
    path = tmp_path_factory.getbasetemp() / "empty-gradebook" / "gradebook.db"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        with roster._opened(path.parent):
            pass
    return path


def course_with_gradebook(tmp_path_factory, root):
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_gradebook(tmp_path_factory), root / "gradebook.db")
    return root
