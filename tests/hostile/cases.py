"""The hostile-submission battery: real notebooks built from the chapter 1 release.

Each case is a learner who hands in chapter 1 with the reference answers and one
bad or hostile change. `Case.loses` names the test cells that must score 0 and
`Case.says` words that must appear in their reason; every other test cell of
the notebook must keep full marks ("the rest graded normally").
"""
import copy
import json
from dataclasses import dataclass, field

import nbformat

from conftest import ROOT, filled_release, reference_answers

AID = "01_dataset"
TESTS = ["test_make_batch", "test_previous_token_targets", "test_masked_loss", "test_masked_accuracy"]


@dataclass
class Case:
    expected: str
    loses: dict = field(default_factory=dict)  # test grade id -> words its reason must contain
    build: object = None  # (course_root, path) -> None: writes the submission
    raw: bool = False  # the file is not a notebook (all tests lose, reason at notebook level)


def _nb(overrides=None):
    return filled_release(AID, overrides)


def _prepend(gid, code):
    return {gid: code + "\n" + reference_answers(AID)[gid]}


def _write(nb):
    def build(root, path):
        nbformat.write(nb if not callable(nb) else nb(root), path)
    return build


def _cells(nb, gid):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _edit(fn, overrides=None):
    def make(root):
        nb = _nb(overrides)
        fn(nb, root)
        return nb
    return _write(make)


def _raw(text):
    def build(root, path):
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return build


def _huge(root, path):
    nb = _nb()
    cell = nb.cells[_cells(nb, "make_batch") + 2]  # the example cell after the first test
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (200 * 2 ** 20))]
    nbformat.write(nb, path)


def _wrong_nbformat(root, path):
    raw = json.loads(nbformat.writes(_nb()))
    raw["nbformat"] = 99
    path.write_text(json.dumps(raw))


def _del_test(nb, root):
    del nb.cells[_cells(nb, "test_masked_loss")]


def _edit_test(nb, root):
    nb.cells[_cells(nb, "test_make_batch")].source = "pass  # tests? what tests"


def _duplicate(nb, root):
    i = _cells(nb, "masked_accuracy")
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))


def _type_changed(nb, root):
    for gid in ("masked_loss", "test_previous_token_targets"):
        i = _cells(nb, gid)
        old = nb.cells[i]
        nb.cells[i] = nbformat.v4.new_markdown_cell(old.source, metadata=old.metadata)


def _reordered(nb, root):
    i, j = _cells(nb, "make_batch"), _cells(nb, "test_make_batch")
    nb.cells[i], nb.cells[j] = nb.cells[j], nb.cells[i]


def _extra(nb, root):
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("my notes"))
    nb.cells.insert(5, nbformat.v4.new_code_cell("scratch = [i * i for i in range(10)]\nprint(scratch)"))


UNCATCHABLE = """import time
while True:
    try:
        while True:
            time.sleep(0.01)
    except BaseException:
        pass"""

WRONG_LOSS = """def masked_loss(logits, targets, mask):
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())"""

SEED_CHEAT = """def make_batch(batch_size, n_ctx, d_vocab, generator=None):
    torch.manual_seed(0)  # ignore the generator: a fixed global seed makes 'same seed' pass
    tokens = torch.randint(1, d_vocab, (batch_size, n_ctx))
    tokens[:, 0] = BOS
    return tokens"""

NOISY = """import sys, warnings
warnings.simplefilter("always")
print("debug: starting", file=sys.stderr)
warnings.warn("a learner's own warning")
_reference_masked_accuracy = None
""" + reference_answers(AID)["masked_accuracy"] + """
_quiet = masked_accuracy
def masked_accuracy(logits, targets, mask):
    print("computing accuracy ...", file=sys.stderr)
    warnings.warn("accuracy is a float")
    return _quiet(logits, targets, mask)"""

TQDM = """from tqdm.auto import tqdm
for _ in tqdm(range(50)):
    pass
""" + reference_answers(AID)["masked_loss"] + """
_plain_loss = masked_loss
def masked_loss(logits, targets, mask):
    for _ in tqdm(range(3), desc="loss"):
        pass
    return _plain_loss(logits, targets, mask)"""


def _reader(root):
    return f"""import glob, os
found = []
for pattern in [{str(root)!r} + "/gradebook.db", {str(root)!r} + "/**/*.ipynb",
                {str(ROOT / 'autograder')!r} + "/**/*.ipynb", {str(ROOT / 'solutions')!r} + "/*.ipynb",
                {str(ROOT / 'chapters')!r} + "/*.md", {str(ROOT)!r} + "/**/*.ipynb",
                "/tmp/**/gradebook*.db", "/tmp/**/*.ipynb", "./*.ipynb", "../../../**/*.ipynb"]:
    for p in glob.glob(pattern, recursive=True):
        try:
            text = open(p, errors="replace").read()
            found.append(p)
            print("FOUND", os.path.realpath(p))
            print(text[:20000])
        except OSError as e:
            print("blocked", p, e)
print("found", len(found), "files")
""" + reference_answers(AID)["make_batch"]


def _vandal(root):
    return f"""import os, shutil
for act, path in [("rm", {str(root)!r} + "/gradebook.db"),
                  ("rmtree", {str(root)!r} + "/submitted/reference"),
                  ("rmtree", {str(root)!r} + "/autograded"),
                  ("write", {str(ROOT / 'nopos' / 'checks' / 'ch01.py')!r}),
                  ("write", {str(ROOT / 'autograder' / 'nbgrader_config.py')!r})]:
    try:
        if act == "rm": os.remove(path)
        elif act == "rmtree": shutil.rmtree(path)
        else: open(path, "a").write("\\n# vandalised\\n")
        print("done", act, path)
    except OSError as e:
        print("blocked", act, path, type(e).__name__)
""" + reference_answers(AID)["make_batch"]


def cases():
    timeout = "ran past its"
    died = "stopped the kernel"
    return {
        "infinite_loop": Case("answer cell stopped at the cell limit; its test 0, others full",
                              {"test_make_batch": timeout},
                              _write(lambda root: _nb(_prepend("make_batch", "while True:\n    pass")))),
        "uncatchable_loop": Case("loop that swallows the interrupt: kernel restarted, cells replayed",
                                 {"test_previous_token_targets": timeout},
                                 _write(lambda root: _nb(_prepend("previous_token_targets", UNCATCHABLE)))),
        "sleep": Case("sleep past the cell limit: stopped, its test 0",
                      {"test_masked_loss": timeout},
                      _write(lambda root: _nb(_prepend("masked_loss", "import time\ntime.sleep(600)")))),
        "memory_bomb": Case("50 GB allocation fails at once (address-space limit)",
                            {"test_make_batch": "MemoryError"},
                            _write(lambda root: _nb(_prepend("make_batch", "hog = bytearray(50 * 10**9)")))),
        "memory_creep": Case("memory grown step by step: killed at the cgroup limit, notebook goes on",
                             {"test_previous_token_targets": died},
                             _write(lambda root: _nb(_prepend("previous_token_targets",
                                 "hog = []\nwhile True:\n    hog.append(bytearray(50 * 2**20))\n    hog[-1][::4096] = b'x' * len(hog[-1][::4096])")))),
        "fork_bomb": Case("fork bomb hits the process limit; its test 0, others full",
                          {"test_masked_accuracy": died},
                          _write(lambda root: _nb(_prepend("masked_accuracy",
                              "import os\nwhile True:\n    os.fork()")))),
        "os_exit": Case("os._exit(0): kernel dies, restarted, later tests graded",
                        {"test_previous_token_targets": died},
                        _write(lambda root: _nb(_prepend("previous_token_targets", "import os\nos._exit(0)")))),
        "sys_exit": Case("sys.exit(): an ordinary error in that cell; its test 0",
                         {"test_masked_loss": "SystemExit"},
                         _write(lambda root: _nb(_prepend("masked_loss", "import sys\nsys.exit()")))),
        "segfault": Case("segfault via ctypes: kernel dies, restarted, later tests graded",
                         {"test_make_batch": died},
                         _write(lambda root: _nb(_prepend("make_batch", "import ctypes\nctypes.string_at(0)")))),
        "stderr_noise": Case("stderr and warnings from the learner's code: full marks",
                             {}, _write(lambda root: _nb({"masked_accuracy": NOISY}))),
        "tqdm": Case("tqdm progress bars in an answer and inside the function: full marks",
                     {}, _write(lambda root: _nb({"masked_loss": TQDM}))),
        "edited_test": Case("test cell emptied by the learner: restored, graded normally",
                            {}, _edit(_edit_test)),
        "deleted_test": Case("test cell deleted: put back, graded normally", {}, _edit(_del_test)),
        "duplicate_grade_id": Case("answer cell copied (same grade id): graded normally", {},
                                   _edit(_duplicate)),
        "cell_type_changed": Case("answer and test cells turned into markdown: types restored",
                                  {}, _edit(_type_changed)),
        "reordered": Case("test cell moved above its answer: order restored", {}, _edit(_reordered)),
        "extra_cells": Case("extra learner cells: graded normally", {}, _edit(_extra)),
        "malformed_json": Case("not JSON: every test 0, says why", dict.fromkeys(TESTS, "not valid notebook JSON"),
                               _raw('{"cells": [ this is not json'), raw=True),
        "wrong_nbformat": Case("nbformat 99: every test 0, says why", dict.fromkeys(TESTS, "nbformat version"),
                               _wrong_nbformat, raw=True),
        "empty_file": Case("empty file: every test 0, says why", dict.fromkeys(TESTS, "empty"),
                           _raw(b""), raw=True),
        "huge_outputs": Case("200 MB of outputs: outputs dropped, graded normally", {}, _huge),
        "patch_numpy": Case("numpy.allclose patched to pass: tests refused after it",
                            dict.fromkeys(TESTS[2:], "numpy.allclose"),
                            _write(lambda root: _nb({"masked_loss": "import numpy\nnumpy.allclose = lambda *a, **k: True\n" + WRONG_LOSS}))),
        "patch_checks": Case("check helper patched to pass: tests refused after it",
                             dict.fromkeys(TESTS[2:], "check_masked_loss"),
                             _write(lambda root: _nb({"masked_loss": "import nopos.checks.ch01 as _c\n_c.check_masked_loss = lambda *a, **k: None\n" + WRONG_LOSS}))),
        "patch_torch_testing": Case("torch.testing.assert_close and torch.equal patched: tests refused",
                                    dict.fromkeys(TESTS[1:], "torch"),
                                    _write(lambda root: _nb(_prepend("previous_token_targets",
                                        "import torch.testing\ntorch.testing.assert_close = lambda *a, **k: None\ntorch.equal = lambda *a: True")))),
        "read_hidden": Case("reads hidden tests / solutions / gradebook from disk: nothing there, full marks",
                            {}, _write(lambda root: _nb({"make_batch": _reader(root)}))),
        "vandal": Case("deletes the gradebook, other students' folders, edits the checks: all blocked",
                       {}, _write(lambda root: _nb({"make_batch": _vandal(root)}))),
        "seed_cheat": Case("fixed global seed instead of the generator: the check catches it",
                           {"test_make_batch": "seed"}, _write(lambda root: _nb({"make_batch": SEED_CHEAT}))),
    }
