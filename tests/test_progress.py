"""The progress overview on chapter 1: untouched release, reference answers, one wrong answer."""
import nbformat
import pytest

from conftest import filled_release, release_path
from nopos.learner import progress

AID = "01_dataset"


def graded_ids(aid):
    nb = nbformat.read(release_path(aid), as_version=4)
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")]


def test_untouched_release_is_not_started_and_fast():
    p = progress.check_notebook(release_path(AID))
    assert p.chapter == AID and not p.executed
    assert [r.grade_id for r in p.results] == graded_ids(AID)
    assert all(r.status == progress.TODO for r in p.results) and p.passed == 0
    assert "(not started)" in progress.report(p)


@pytest.mark.slow
def test_untouched_release_run_anyway_fails_every_check():
    p = progress.check_notebook(release_path(AID), run_all=True)
    assert p.executed and not p.error
    assert p.passed == 0 and len(p.results) == len(graded_ids(AID))
    assert all(r.status != progress.PASS for r in p.results)


@pytest.mark.slow
def test_reference_answers_pass_every_check(tmp_path):
    path = tmp_path / f"{AID}.ipynb"
    nbformat.write(filled_release(AID), path)
    p = progress.check_notebook(path)
    assert p.executed and not p.error, p.error
    assert [r.status for r in p.results] == [progress.PASS] * len(graded_ids(AID)), progress.report(p)
    assert p.done and p.points == p.max_points == 10
    assert "chapter done" in progress.report(p)


@pytest.mark.slow
def test_one_wrong_answer_fails_with_its_reason(tmp_path, capsys):
    wrong = ("def masked_accuracy(logits, targets, mask):\n"
             "    return (logits.argmax(-1) == targets).float().mean().item()\n")
    path = tmp_path / f"{AID}.ipynb"
    nbformat.write(filled_release(AID, {"masked_accuracy": wrong}), path)
    assert progress.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "3/4 checks pass" in out
    failing = out.split("test_masked_accuracy")[1]
    assert "\N{HEAVY BALLOT X}" in out.split("test_masked_accuracy")[0].splitlines()[-1]
    assert "CheckFailed" in failing or "Error" in failing


def test_unreadable_and_ungraded_notebooks_are_reported(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ not a notebook")
    assert "cannot read" in progress.check_notebook(bad).error
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), plain)
    assert "no graded checks" in progress.check_notebook(plain).error


def test_finds_chapters_by_number_or_id():
    assert progress.find_notebooks(chapter="1") == progress.find_notebooks(chapter="01_dataset")
    assert progress.find_notebooks(chapter="ch1") == [release_path(AID)]


def test_kernels_run_in_grading_mode_with_the_picked_threads(monkeypatch, tmp_path):
    """`make progress` runs the short demonstrations, as grading does, on the threads
    the machine can spare; and leaves this process's environment as it found it."""
    import nbclient

    seen = {}

    class Recorder:
        def __init__(self, nb, **kwargs):
            pass

        def execute(self):
            seen.update({k: progress.os.environ.get(k) for k in
                         ("NOPOS_QUICK", "NOPOS_NONINTERACTIVE", "NOPOS_THREADS", "OMP_WAIT_POLICY")})

    monkeypatch.setattr(nbclient, "NotebookClient", Recorder)
    monkeypatch.setenv("NOPOS_THREADS", "3")
    monkeypatch.delenv("NOPOS_QUICK", raising=False)
    progress._execute(nbformat.v4.new_notebook(), tmp_path / "x.ipynb", 10, "nopos")
    assert seen == {"NOPOS_QUICK": "1", "NOPOS_NONINTERACTIVE": "1", "NOPOS_THREADS": "3",
                    "OMP_WAIT_POLICY": "PASSIVE"}, seen
    assert "NOPOS_QUICK" not in progress.os.environ
