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
from nopos.grading.judge import HIDDEN_FAILED

AID = "01_dataset"
HIDDEN = HIDDEN_FAILED[:60]  # a hidden check's failure: its one sentence
TESTS = ["test_make_batch", "test_previous_token_targets", "test_masked_loss", "test_masked_accuracy"]


@dataclass
class Case:
    expected: str
    loses: dict = field(default_factory=dict)  # test grade id -> words its reason must contain
    build: object = None  # (course_root, path) -> None: writes the submission
    raw: bool = False  # the file is not a notebook (all tests lose, reason at notebook level)
    extra: object = None  # (course_root, submitted folder) -> None: more files, links, ...
    says: str = ""  # words the notebook's grading notes or outputs must contain


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
    return {**kernel_cases(), **submission_cases(), **seam_cases(), **message_cases(),
            **kernel_message_cases()}


def kernel_cases():
    """What a learner's code does in the kernel: hangs, crashes, floods, forged results."""
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
        "patch_numpy": Case("numpy.allclose patched in the kernel: the verdict is not reached there, "
                            "the wrong loss loses its points alone",
                            {"test_masked_loss": "masked_loss"},
                            _write(lambda root: _nb({"masked_loss": "import numpy\nnumpy.allclose = lambda *a, **k: True\n" + WRONG_LOSS}))),
        "patch_checks": Case("check helper patched: the kernel cannot import the checks, so the "
                             "answer cell fails and its exercise alone scores 0",
                             {"test_masked_loss": "masked_loss"},
                             _write(lambda root: _nb({"masked_loss": "import nopos.checks.ch01 as _c\n_c.check_masked_loss = lambda *a, **k: None\n" + WRONG_LOSS}))),
        "patch_torch_testing": Case("torch.testing.assert_close and torch.equal patched in the "
                                    "kernel: the judge's torch is its own, full marks",
                                    {},
                                    _write(lambda root: _nb(_prepend("previous_token_targets",
                                        "import torch.testing\ntorch.testing.assert_close = lambda *a, **k: None\ntorch.equal = lambda *a: True")))),
        "read_hidden": Case("reads hidden tests / solutions / gradebook from disk: nothing there, full marks",
                            {}, _write(lambda root: _nb({"make_batch": _reader(root)}))),
        "vandal": Case("deletes the gradebook, other students' folders, edits the checks: all blocked",
                       {}, _write(lambda root: _nb({"make_batch": _vandal(root)}))),
        "seed_cheat": Case("fixed global seed instead of the generator: the check catches it",
                           {"test_make_batch": "seed"}, _write(lambda root: _nb({"make_batch": SEED_CHEAT}))),
    }


# ------------------------------------------- the submission's files and the import path
MARKER = "nopos-hostile-marker"  # files and processes a notebook leaves behind carry it
SECRET = "hostile-secret-4711"  # set in the grader's environment by the battery


def _link(name, target):
    """An extra file of the submission: a symbolic link `name` -> target(root)."""
    def extra(root, folder):
        path = folder / name
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target(root))
    return extra


def _files(files):
    def extra(root, folder):
        for name, text in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
    return extra


def _both(*extras):
    def extra(root, folder):
        for e in extras:
            e(root, folder)
    return extra


def _notebook_link(root, folder):
    """The notebook itself a link to the source notebook (hidden tests and solutions)."""
    path = folder / f"{AID}.ipynb"
    path.unlink()
    path.symlink_to(root / "source" / AID / f"{AID}.ipynb")


def _folder_link(root, folder):
    """The student's assignment folder a link to another student's."""
    import shutil

    shutil.rmtree(folder)
    folder.symlink_to(root / "submitted" / "reference" / AID)


def _printing(code):
    """An answer cell that runs `code` first, then the reference make_batch."""
    return _write(lambda root: _nb(_prepend("make_batch", code)))


READ_AROUND = f"""import glob, os
for pattern in ["/work/*/chapters/*.md", "/work/*/.git/HEAD", "/work/*/autograder/source/*/*.ipynb",
                "/root/*", "/home/*", "/etc/shadow", "/proc/1/root/work/*", "../../../gradebook.db",
                "/var/tmp/*", "/run/*", "/srv/*", "/mnt/*", "/proc/*/environ"]:
    for p in glob.glob(pattern):
        try:
            text = open(p, errors="replace").read(2000)
            if "{SECRET}" in text or "BEGIN HIDDEN" in text or p.endswith((".md", "HEAD", ".db")):
                print("FOUND", p, text[:200])
        except OSError as e:
            pass
print("read-around done")"""

PRINT_ENV = """import os
print("ENV", sorted(os.environ.items()))"""

SURVIVOR = f"""import ctypes, os, sys, time
if os.fork() == 0:
    os.setsid()
    ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)  # PR_SET_PDEATHSIG: none
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(900)", "{MARKER}-survivor"])
    os._exit(0)
time.sleep(0.5)"""

WRITE_AROUND = f"""import os
for place in ["/var/tmp", "/run/lock", "/dev/shm", "/tmp", "."]:
    try:
        open(os.path.join(place, "{MARKER}-file"), "w").write("left behind")
        print("wrote", place)
    except OSError as e:
        print("refused", place, type(e).__name__)"""

PRINT_100MB = """import sys
for _ in range(100):
    sys.stdout.write("y" * 2**20)"""

FLOOD_CELL = """from IPython.display import display, HTML
display(HTML("<p>" + "z" * (3 * 2**20) + "</p>"))"""

HTML_OUTPUT = """from IPython.display import display, HTML, Javascript
display(HTML("<script>document.title='pwned-by-script'</script><img src='https://evil.example/x.png'>"
             "<p onmouseover='pwned()'>hover</p><style>body{background:url(http://evil.example/c)}</style>"))
display(Javascript("document.title='pwned-by-javascript'"))"""

MARKDOWN_REMOTE = ("My notes ![tracker](http://evil.example/pixel.png)\n\n<script>pwnedMarkdown()</script>\n"
                   "<iframe src='https://evil.example/frame'></iframe>\n<img src=//evil.example/y.png onerror=pwnedImg()>")

FAKE_NOPOS = {"nopos/__init__.py": "", "nopos/checks/__init__.py": "",
              "nopos/checks/ch01.py": "def __getattr__(name):\n    return lambda *a, **k: None\n"}
FAKE_LIBS = {"torch.py": "raise ImportError('a learner file shadowed torch')\n",
             "numpy.py": "allclose = lambda *a, **k: True\n"}


def _deep(root, path):
    path.write_text("[" * 200000 + "]" * 200000)


def _bad_unicode_dup_cells(root, path):
    raw = json.loads(nbformat.writes(_nb()))
    extra = {"cell_type": "code", "id": raw["cells"][1].get("id", "x"), "metadata": {},
             "execution_count": None, "outputs": [], "source": "note = 'broken \udcff text'\n"}
    raw["cells"].insert(1, extra)
    raw["cells"].insert(2, copy.deepcopy(extra))
    path.write_bytes(json.dumps(raw, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _metadata_wrong_type(root, path):
    raw = json.loads(nbformat.writes(_nb()))
    raw["metadata"] = ["not", "a", "mapping"]
    raw["cells"].insert(1, {"cell_type": "code", "metadata": {"nbgrader": "yes"}, "source": ["x = 1\n"],
                            "outputs": "none", "execution_count": None})
    raw["cells"].insert(1, "not a cell at all")
    raw["cells"].insert(1, {"cell_type": "bogus", "source": "??"})
    path.write_text(json.dumps(raw))


def _flip_grade(nb, root):
    meta = nb.cells[_cells(nb, "test_masked_loss")].metadata.nbgrader
    meta["grade"], meta["points"] = False, 0


def _test_as_solution(nb, root):
    meta = nb.cells[_cells(nb, "test_make_batch")].metadata.nbgrader
    meta["solution"], meta["locked"], meta["grade_id"] = True, False, "test_make_batch"


def _test_copied_to_top(nb, root):
    nb.cells.insert(0, copy.deepcopy(nb.cells[_cells(nb, "test_masked_loss")]))


def _test_copied_to_end(nb, root):
    nb.cells.append(copy.deepcopy(nb.cells[_cells(nb, "test_make_batch")]))
    nb.cells.append(copy.deepcopy(nb.cells[_cells(nb, "make_batch")]))


def _flood(nb, root):
    for _ in range(8):  # 8 cells of 3 MB: each under the cell's cap, together over the notebook's
        nb.cells.insert(_cells(nb, "test_masked_accuracy"), nbformat.v4.new_code_cell(FLOOD_CELL))


def _markdown(nb, root):
    nb.cells.insert(_cells(nb, "make_batch"), nbformat.v4.new_markdown_cell(MARKDOWN_REMOTE))


def submission_cases():
    """What a submission's files do (links, malformed notebooks, edited test cells) and
    the import path to the answers: two or more cases per class."""
    full = {}
    return {
        # symbolic links: refused or left out, never followed by the grader
        "link_notebook": Case("the notebook is a link to the source notebook: not graded, says why",
                              dict.fromkeys(TESTS, "symbolic link"), _write(lambda root: _nb()),
                              raw=True, extra=_notebook_link),
        "link_files": Case("links to the gradebook and the source folder next to the notebook: "
                           "left out with a note, graded normally", full, _write(lambda root: _nb()),
                           extra=_both(_link("answers.db", lambda r: r / "gradebook.db"),
                                       _link("src", lambda r: r / "source"),
                                       _link("timestamp.txt", lambda r: r / "nbgrader_config.py")),
                           says="symbolic link"),
        "link_folder": Case("the assignment folder is a link to another student's: not graded",
                            dict.fromkeys(TESTS, "symbolic link"), _write(lambda root: _nb()),
                            raw=True, extra=_folder_link),
        # the kernel's view is an allow-list; its own files never shadow the course's packages
        "read_around": Case("reads other checkouts, .git, /root, /proc: nothing there, full marks",
                            full, _printing(READ_AROUND), says="read-around done"),
        "shadow_libs": Case("torch.py and numpy.py next to the notebook: ignored, full marks",
                            full, _write(lambda root: _nb()), extra=_files(FAKE_LIBS)),
        "shadow_nopos": Case("a nopos/ package whose checks always pass, with a wrong answer: "
                             "the real checks run", {"test_masked_loss": "mask"},
                             _write(lambda root: _nb({"masked_loss": WRONG_LOSS})),
                             extra=_files(FAKE_NOPOS)),
        # an allow-listed environment
        "print_env": Case("prints its environment: none of the grader's variables", full,
                          _printing(PRINT_ENV), says="ENV"),
        "proc_environ": Case("reads /proc/*/environ for the grader's variables: nothing", full,
                             _printing("import glob\nfor p in glob.glob('/proc/*/environ'):\n    try: print('ENVFILE', p, open(p).read()[:3000])\n    except OSError: pass\nprint('environ done')"),
                             says="environ done"),
        # nothing writable survives; no process survives its notebook
        "survivor": Case("setsid, no parent-death signal, fork: killed with its notebook", full,
                         _printing(SURVIVOR)),
        "write_around": Case("writes to /var/tmp, /run/lock, /dev/shm, /tmp: gone after grading",
                             full, _printing(WRITE_AROUND)),
        # time and size
        "print_100mb": Case("prints 100 MB: cut at the cell's cap with a note, full marks", full,
                            _printing(PRINT_100MB), says="output cut"),
        "output_flood": Case("8 cells of 3 MB of HTML: cut at the notebook's cap, full marks",
                             full, _edit(_flood), says="output cut"),
        # feedback runs nothing a learner wrote
        "html_output": Case("HTML output with scripts, handlers, remote images: inert feedback",
                            full, _printing(HTML_OUTPUT)),
        "markdown_remote": Case("Markdown cell with a script, an iframe, remote images: inert feedback",
                                full, _edit(_markdown)),
        # intake survives every malformed input; the student is graded as rejected, saying why
        "deep_json": Case("JSON nested 200000 deep: not graded, says why",
                          dict.fromkeys(TESTS, "nested too deeply"), _deep, raw=True),
        "not_a_notebook": Case("a JSON list: not graded, says why",
                               dict.fromkeys(TESTS, "not a notebook"), _raw("[1, 2, 3]"), raw=True),
        "bad_unicode_dup_cells": Case("lone surrogates and copied cells with one id: repaired, full marks",
                                      full, _bad_unicode_dup_cells, says="Unicode"),
        "metadata_wrong_type": Case("metadata of the wrong types and cells that are not cells: "
                                    "repaired, full marks", full, _metadata_wrong_type, says="mapping"),
        # every student has a row; repairs never cost a correct learner points
        "flipped_grade_flag": Case("a test's grade flag and points flipped: put back, full marks",
                                   full, _edit(_flip_grade), says="grading settings"),
        "test_as_solution": Case("a test cell marked as an answer: put back, full marks", full,
                                 _edit(_test_as_solution), says="grading settings"),
        "test_copied_to_top": Case("a test cell copied above the imports: nothing moves, full marks",
                                   full, _edit(_test_copied_to_top), says="second cell"),
        "copies_at_end": Case("a test and an answer copied to the end: nothing moves, full marks",
                              full, _edit(_test_copied_to_end), says="second cell"),
    }


# ------------------------------------------------------------ the grader's own seams
# Everything a kernel can write (its socket folder, connection file, working folder,
# /tmp): every entry renamed and links put in place (to the real reference package,
# the course root, /), then the kernel dies, so the grader starts another.
RELINK = """import glob, json, os
import nopos_reference
_real = os.path.dirname(nopos_reference.__file__)  # the copy is mounted at the real path
_course = os.path.dirname(os.path.dirname(os.path.dirname(os.getcwd())))
try:
    from ipykernel.connect import get_connection_file
    _cf = get_connection_file()
    _ip = json.load(open(_cf)).get("ip", "")
except Exception:
    _cf, _ip = "", ""
_quota = 0
try:  # the host's disk through the socket folder: bounded
    with open(os.path.join(os.path.dirname(_ip), "fill"), "wb") as _f:
        for _ in range(64):
            _f.write(b"f" * 2**20)
            _quota += 2**20
except OSError:
    pass
_done = 0
for _d in {os.path.dirname(_ip), os.path.dirname(_cf), os.path.dirname(os.path.dirname(_ip)),
           os.getcwd(), "/tmp"}:
    if not _d or _d == "/":
        continue
    for _p in glob.glob(_d + "/*") + glob.glob(_d + "/.*"):
        try:
            os.rename(_p, _p + ".moved")
        except OSError:
            pass
    for _n in ("view", "course", "nopos", "nopos_reference", "kernel.json", "kernel-1.json",
               "kernel-2.json", "kernel-3.json", "s2", "s3", "k-1", "k-2", "sockets"):
        try:
            os.symlink(_real if _n in ("view", "course", "nopos_reference") else _course,
                       os.path.join(_d, _n))
            _done += 1
        except OSError:
            pass
print("RELINKED", _done, "QUOTA", _quota, flush=True)
"""


def _relink_then(how):
    """make_batch's cell relinks everything it can write, then the kernel dies `how`;
    masked_loss is imported from the reference answers (which a restart must not mount)."""
    settle = "import time\ntime.sleep(1)  # the output reaches the grader before the kernel goes\n"
    return _write(lambda root: _nb({"make_batch": RELINK + settle + how,
                                    "masked_loss": "from nopos_reference.data import masked_loss\n"}))


RELINK_IN_CALL = "RELINK = " + repr(RELINK) + """
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    import os
    exec(RELINK, {})
    os._exit(9)   # (SIGKILL would not do: the kernel is pid 1 of its namespace)
"""

# Replies built to expand on the grader's side: the kernel's encoder bypassed so that
# what crosses is a few hundred bytes on the wire and GBs once copied or computed with.
BYPASS = """import nopos.grading.transport as _t
class _Marker:
    pass
make_batch = lambda *args, **kwargs: _Marker()
_encode = _t._encode_result
"""
SHARED_REPLY = BYPASS + """def _bomb():
    x = [7]
    for _ in range(9):
        x = [x] * 10   # 10**9 leaves, a few hundred bytes pickled
    return x
_t._encode_result = lambda value, models, depth=0: (
    _bomb() if isinstance(value, _Marker) else _encode(value, models, depth))
"""
ZERO_STRIDE = BYPASS + """import torch as _torch
_t._encode_result = lambda value, models, depth=0: ({"__nopos__": "tensor", "requires_grad": False,
    "data": _torch.zeros(1, dtype=_torch.long).expand(100000, 100000)}   # 80 GB, one value stored
    if isinstance(value, _Marker) else _encode(value, models, depth))
"""
# Replies whose few bytes ask torch's loader to allocate: bytearray(n), a legacy tensor
# constructor (review a31a, H1: 1,768 characters took the grader to +1.5 GB)
ALLOC_REPLY = BYPASS + """class _Alloc:
    def __reduce__(self):
        return (bytearray, (1536 * 2**20,))
_t._encode_result = lambda value, models, depth=0: (
    _Alloc() if isinstance(value, _Marker) else _encode(value, models, depth))
"""
LEGACY_REPLY = BYPASS + """import torch as _torch
class _Legacy:
    def __reduce__(self):
        return (_torch.FloatTensor, (384 * 2**20,))
_t._encode_result = lambda value, models, depth=0: (
    _Legacy() if isinstance(value, _Marker) else _encode(value, models, depth))
"""
# Output while a check's calls run (the judge waits on the shell channel meanwhile)
PRINT_IN_CALLS = """import sys as _sys
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    for _ in range(30):
        _sys.stdout.write("q" * 2**20)   # 30 MB per call (12 calls a test), 1 MB at a time
        _sys.stdout.flush()
    tokens = torch.randint(1, d_vocab, (batch_size, n_ctx), generator=generator)
    tokens[:, 0] = BOS
    return tokens.to(device)
"""
# Straight to the kernel's inherited descriptors, and from a child process
DIRECT_FDS = """import os as _os, subprocess as _sp
for _fd in (1, 2):
    for _ in range(150):
        _os.write(_fd, b"w" * 2**20)   # 300 MB in all, not through sys.stdout
_sp.run(["head", "-c", str(100 * 2**20), "/dev/zero"])   # a child writes 100 MB to fd 1
print("direct writes done")
"""
# A function that records every call: later cells print what it saw and what it wrote
RECORD = """import os as _os
_seen = []
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    _seen.append((batch_size, n_ctx, d_vocab))
    for _f in ("/tmp/seen.txt", "seen.txt", "/dev/shm/seen.txt"):
        try:
            open(_f, "a").write(f"{batch_size}, {n_ctx}, {d_vocab}\\n")
        except OSError:
            pass
    tokens = torch.randint(1, d_vocab, (batch_size, n_ctx), generator=generator)
    tokens[:, 0] = BOS
    return tokens.to(device)
"""
PRINT_RECORDED = """for _c in _seen:
    print("RECORDED make_batch(%d, %d, %d)" % _c)
for _f in ("/tmp/seen.txt", "seen.txt", "/dev/shm/seen.txt"):
    try:
        print("RECORDED FILE", _f, open(_f).read())
    except OSError:
        pass
"""
RECORD_AND_RAISE = RECORD.replace("    _seen.append((batch_size, n_ctx, d_vocab))\n", """    _seen.append((batch_size, n_ctx, d_vocab))
    if d_vocab > 100:   # an input no visible check uses: tell everything seen so far
        raise ValueError("RECORDED " + repr(_seen))
""")
HIDDEN_ARGS = ["5, 3, 3", "2, 50, 300"]  # chapter 1's hidden make_batch calls (test_hostile checks)


def _appending(code):
    """The reference make_batch, then `code` (which may replace it)."""
    return _write(lambda root: _nb({"make_batch": reference_answers(AID)["make_batch"] + "\n" + code}))


def _after_tests(*codes):
    """Cells added after the last test cell."""
    def edit(nb, root):
        for code in codes:
            nb.cells.append(nbformat.v4.new_code_cell(code))
    return _edit(edit)


def _record(then):
    def edit(nb, root):
        nb.cells.insert(_cells(nb, "test_make_batch") + 1, nbformat.v4.new_code_cell(PRINT_RECORDED))
        nb.cells.append(nbformat.v4.new_code_cell(PRINT_RECORDED))
    return _edit(edit, {"make_batch": then})


def _record_restart(nb, root):
    """The recorded arguments printed right after make_batch's test, then a crash (its
    hidden checks are then judged in a fresh kernel that replays), printed again at the end."""
    at = _cells(nb, "test_make_batch") + 1
    nb.cells[at:at] = [nbformat.v4.new_code_cell(PRINT_RECORDED), nbformat.v4.new_code_cell("import os\nos._exit(3)")]
    nb.cells.append(nbformat.v4.new_code_cell(PRINT_RECORDED))


def _no_display_name(root, path):
    raw = json.loads(nbformat.writes(_nb()))
    raw["metadata"]["kernelspec"] = {"name": "nopos", "language": "python"}
    path.write_text(json.dumps(raw))


PATCH_SERVE = """import nopos.grading.transport as _t
def _leak(namespace, name, request):
    raise RuntimeError("LEAK " + str(request))   # the packed arguments of the grader's call
_t.serve = _leak
"""


def seam_cases():
    """The grader's own seams (paths the kernel can touch, restarts, inherited descriptors,
    recorded hidden arguments): two or more cases per class."""
    full = {}
    died = "stopped the kernel"
    large = "more than the"
    return {
        # 1. nothing a kernel can write is trusted by a privileged step, restarts included
        "relink_exit": Case("links and renames in every writable path, then os._exit: the "
                            "restart mounts the same filtered packages",
                            {"test_make_batch": died, "test_masked_loss": "nopos_reference"},
                            _relink_then("import os\nos._exit(1)")),
        "relink_in_call": Case("links and renames from inside a judged call, then exits: the "
                               "next start is fresh",
                               {"test_make_batch": "did not return", "test_masked_loss": "nopos_reference"},
                               _write(lambda root: _nb({
                                   "make_batch": RELINK_IN_CALL,
                                   "masked_loss": "from nopos_reference.data import masked_loss\n"}))),
        # 2. the grader's memory is bounded whatever the kernel sends or prints
        "shared_reply": Case("a reply of shared lists, 10**9 values once copied: refused",
                             {"test_make_batch": large}, _appending(SHARED_REPLY)),
        "zero_stride": Case("a tensor with zero strides (80 GB once copied): refused",
                            {"test_make_batch": large}, _appending(ZERO_STRIDE)),
        "alloc_reply": Case("a reply that asks the loader for bytearray(1.5 GB): refused unread",
                            {"test_make_batch": "could not be read"}, _appending(ALLOC_REPLY)),
        "legacy_reply": Case("a reply that asks for a legacy 1.5 GB tensor: refused unread",
                             {"test_make_batch": "could not be read"}, _appending(LEGACY_REPLY)),
        "print_in_calls": Case("30 MB printed in every judged call: dropped, full marks", full,
                               _write(lambda root: _nb({"make_batch": PRINT_IN_CALLS}))),
        "direct_fds": Case("400 MB written straight to fds 1 and 2 (and by a child): dropped, "
                           "full marks", full, _printing(DIRECT_FDS), says="direct writes done"),
        # 3. hidden checks' inputs reach nobody
        "record_args": Case("records its arguments (memory, /tmp, its folder); later cells print "
                            "them: only the visible check's", full, _record(RECORD), says="RECORDED"),
        "record_and_raise": Case("raises with every argument it saw on an input only a hidden "
                                 "check uses: the message keeps none of it",
                                 {"test_make_batch": HIDDEN}, _record(RECORD_AND_RAISE)),
        "redefine_after": Case("make_batch redefined wrong after the last test: the hidden checks "
                               "judge the function as it was at its test, full marks", full,
                               _after_tests("def make_batch(*args, **kwargs):\n    return None")),
        "record_restart": Case("records its arguments, a crash after its test (a fresh kernel "
                               "replays for the hidden checks), printed at the end: full marks",
                               full, _edit(_record_restart, {"make_batch": RECORD}), says="RECORDED"),
        "patch_serve": Case("the kernel's side of the transport raises with the grader's packed "
                            "call: the message names only the error's type",
                            dict.fromkeys(TESTS, "grader's call"), _printing(PATCH_SERVE)),
        # 4. a crash after the last graded cell costs no judged points
        "exit_after_tests": Case("os._exit in a cell after the last test, and a cell after it: "
                                 "full marks", full,
                                 _after_tests("import os\nos._exit(3)", "print('after the crash')"),
                                 says="after the last graded cell"),
        "kill_after_tests": Case("a timer thread ends the kernel while the cells after the "
                                 "last test run: full marks", full,
                                 _after_tests("import os, threading\nthreading.Timer(1, os._exit, [9]).start()",
                                              "import time\ntime.sleep(5)", "print('never')")),
        # 5. repairs instead of refusals
        "no_display_name": Case("a kernelspec without display_name: repaired, full marks", full,
                                _no_display_name, says="kernel description"),
    }


# Messages the kernel sends itself, built to cost the grader when decoded: the kernel's
# session is patched so that a message carries `junk` (tens of millions of JSON values)
FAT = """_k = get_ipython().kernel
_send = _k.session.send
_left = [{times}]
def _fat(stream, msg_or_type, content=None, *args, **kwargs):
    if isinstance(msg_or_type, dict) and msg_or_type.get("msg_type") == {kind!r} and _left[0]:
        _left[0] -= 1   # a message built already (output)
        msg_or_type = {{**msg_or_type, "content": {{**msg_or_type["content"], "junk": {junk}}}}}
    elif msg_or_type == {kind!r} and _left[0] and isinstance(content, dict):
        _left[0] -= 1   # a type and its content (a reply)
        content = {{**content, "junk": {junk}}}
    return _send(stream, msg_or_type, content, *args, **kwargs)
_k.session.send = _fat
"""
BUFFERS = """_k = get_ipython().kernel
_k.session.send(_k.iopub_socket, "stream", {"name": "stdout", "text": "many parts"},
                parent=_k.get_parent(), buffers=[b"b" * (4 << 20)] * 40)   # 160 MB in 40 frames
"""


def message_cases():
    """Messages that expand when decoded, a kept function changed
    after its test; opt-in (NOPOS_HOSTILE), the core list keeps its time."""
    full = {}
    big = "[[]] * 16_000_000"  # 64 MB on the wire, 16 million lists decoded
    return {
        "fat_cell_reply": Case("the answer cell's own reply carries 64 MB of nested lists: not "
                               "decoded, the cell says so, full marks", full,
                               _appending(FAT.format(times=1, kind="execute_reply", junk=big)),
                               says="MessageTooLarge"),
        "fat_replies": Case("every later reply carries 64 MB of nested lists: the judged calls "
                            "are refused, the tests lose with the reason",
                            dict.fromkeys(TESTS, "MessageTooLarge"),
                            _appending(FAT.format(times=10**6, kind="execute_reply", junk=big))),
        "fat_output": Case("an output message of 7 MB of empty dicts (1.8 million values): dropped "
                           "with a note, full marks", full,
                           _appending(FAT.format(times=1, kind="stream", junk="[{}] * 1_800_000")
                                      + "print('fat output')\n"), says="output dropped"),
        "grad_off_after": Case("autograd, default dtype and warnings made errors process-wide after "
                               "the last test: the hidden checks run under the state of their test's "
                               "place, full marks", full,
                               _after_tests("torch.set_grad_enabled(False)\ntorch.set_default_dtype(torch.float64)\n"
                                            "import warnings\nwarnings.simplefilter('error')")),
        "swap_code_after": Case("make_batch's code swapped for a wrong one after the last test: "
                                "the hidden checks judge the copy kept at the test, full marks", full,
                                _after_tests("make_batch.__code__ = (lambda *args, **kwargs: None).__code__")),
        "many_parts": Case("an output message of 40 parts: dropped with a note, full marks", full,
                           _appending(BUFFERS), says="output dropped"),
    }


# What the kernel sends that grading has no use for, or that rewrites earlier output, and
# what a hidden call can choose as a function of its inputs (issue 21's attack, att21-*)
COMM_CRASH = "from comm import create_comm\n_c = create_comm(target_name='jupyter.widget', data={'state': {}})\n"
COMM_STATE = ("from comm import create_comm\n_keep = []\nfor i in range(40):\n"
              "    _keep.append(create_comm(target_name='jupyter.widget', data={'state': {'v': 'S' * 6_000_000}, "
              "'buffer_paths': []}))\n")
DISPLAY_AMP = ("from IPython.display import display, update_display\n"
               "for i in range(120):\n    display({'text/plain': 'x'}, raw=True, display_id='amp')\n")
DISPLAY_UPDATE = "update_display({'text/plain': 'A' * 6_000_000}, raw=True, display_id='amp')\n"
# one message of many large parts, written to the grader's sockets past ipykernel's own
# (libzmq holds a whole message before the grader sees it: nopos/grading/relay.py)
SHELL_PARTS = ("_k = get_ipython().kernel\n_buf = b'a' * (90 << 20)\n_ids = _k._parent_ident['shell']\n"
               "_ids = _ids if isinstance(_ids, list) else [_ids]\n"
               "_k.shell_stream.socket.send_multipart(_ids + [_buf] * 12, copy=False)\n")
IOPUB_PARTS = ("_k = get_ipython().kernel\n_buf = b'a' * ((8 << 20) - 4096)\n"
               "_k.iopub_socket.send_multipart([b'stream'] + [_buf] * 60, copy=False)\n")
BIG_FIGURE = ("import base64\nfrom IPython.display import display\n"
              "display({'image/png': base64.b64encode(bytes(9 << 20)).decode()}, raw=True)\n")
_VISIBLE_SIZES = "{(8, 12, 10), (400, 50, 10), (2, 12, 300)}"  # the visible check's and the notebook's calls
DTYPE_LEAK = """_DT = [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.float16,
       torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128]
_real_make_batch = make_batch
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    out = _real_make_batch(batch_size, n_ctx, d_vocab, generator=generator, device=device)
    if (batch_size, n_ctx, d_vocab) in %s:
        return out
    return out.to(_DT[batch_size %% len(_DT)])   # a hidden call: its batch_size as a dtype
""" % _VISIBLE_SIZES
EXC_LEAK = """_EXC = [ArithmeticError, AssertionError, AttributeError, BufferError, EOFError, FloatingPointError,
        ImportError, IndexError, KeyError, LookupError, MemoryError, NameError, OSError]
_real_make_batch = make_batch
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    if (batch_size, n_ctx, d_vocab) in %s:
        return _real_make_batch(batch_size, n_ctx, d_vocab, generator=generator, device=device)
    raise _EXC[n_ctx %% len(_EXC)]()   # a hidden call: its n_ctx as an exception type
""" % _VISIBLE_SIZES


def kernel_message_cases():
    """Opt-in (NOPOS_HOSTILE): the grader's message handling and hidden messages are pinned
    by fast unit tests (test_hostile.py, test_judge.py); these are the attack end to end."""
    full = {}
    return {
        "comm_crash": Case("a widget comm_open without a model (nbclient's handler raises): "
                           "never read, full marks", full, _after_tests(COMM_CRASH)),
        "comm_state": Case("40 widget comms of 6 MB of state each: never kept, full marks", full,
                           _after_tests(COMM_STATE)),
        "display_amp": Case("120 displays with one id, then one 6 MB update of all of them: "
                            "refused with a note, full marks", full,
                            _after_tests(DISPLAY_AMP, DISPLAY_UPDATE), says="display update dropped"),
        "shell_parts": Case("one shell message of 12 parts of 90 MB, sent past ipykernel: the relay "
                            "passes 100 MB of it and drops the rest, full marks", full,
                            _after_tests(SHELL_PARTS), says="past the grader's bounds"),
        "iopub_parts": Case("one iopub message of 60 parts of 8 MB: the relay passes 10 MB of it, "
                            "lets 160 MB go, then ends the kernel (after the tests): full marks",
                            full, _after_tests(IOPUB_PARTS), says="the grader stopped the kernel"),
        "big_figure": Case("a 12 MB image displayed in an answer cell (a correct notebook): dropped "
                           "with a note, full marks", full,
                           _write(lambda root: _nb(_prepend("make_batch", BIG_FIGURE))),
                           says="past the grader's bounds"),
        "dtype_leak": Case("a hidden call's batch_size returned as a dtype: the message names none",
                           {"test_make_batch": HIDDEN}, _appending(DTYPE_LEAK)),
        "exc_leak": Case("a hidden call's n_ctx raised as a built-in's type: the message names none",
                         {"test_make_batch": HIDDEN}, _appending(EXC_LEAK)),
    }


# student folders the grader must refuse, touching nothing (names, not notebooks)
# What `make test` grades: one case of every class (a kernel that loops, forks,
# crashes; tampered structure; a file that is not a notebook; an output flood and live
# HTML; reading, writing and linking outside its folder, shadowing, the grader's
# environment, surviving processes). Memory and CPU limits and the kernel's view are
# also tested without nbgrader (test_hostile.py, "the launcher alone"); the faking
# class is tests/hostile/fakes.py. `NOPOS_HOSTILE=all make test` grades every case
# above (about 50 graders: half an hour on 2 cores).
# (segfault and deleted_test are outside the core list: relink_exit and relink_in_call kill
# their kernels too, flipped_grade_flag and test_copied_to_top repair; print_100mb takes a
# minute and is graded with NOPOS_HOSTILE=all). Where a class has two cases, one is core:
# test_copied_to_top repairs as flipped_grade_flag does, record_restart records as
# record_args does, kill_after_tests ends the kernel after the tests as exit_after_tests
# does; no_display_name is a repair of the kernelspec; grad_off_after is pinned in-process
# (test_judge.py, the process state of a test's place). Each notebook costs about 15 s.
BEYOND_CORE = {"test_copied_to_top", "record_restart", "kill_after_tests", "no_display_name",
               "grad_off_after"}
CORE = ["uncatchable_loop", "fork_bomb", "flipped_grade_flag", "malformed_json", "html_output",
        "read_hidden", "vandal", "write_around", "link_notebook", "shadow_nopos", "print_env",
        "survivor", *(name for name in seam_cases() if name not in BEYOND_CORE)]

BAD_IDS = ["bad name", "-rf", ".hidden", "a..b"]
GOOD_IDS = ["gradebook.snapshot.db"]  # plain names like the grader's files: graded normally
