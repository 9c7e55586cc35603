"""What a kernel's output and replies cost the grader, against what the grader counts
(nopos/grading/wire.py, sandbox.py, judge.py), as a fourth hostile review (a21u) attacked
the bounds: scans that read each byte once, a hidden check's one sentence, nested data
counted as written, a live plot's clears given back to the budget, every message an
output. Each ran in milliseconds once fixed; each failed before (figures: docs/grading.md)."""
import base64
import io
import json
import time
import tracemalloc

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from conftest import message_executor
from nopos.grading import judge, transport, wire
from nopos.grading.sandbox import OUTPUT_COST, _size


@pytest.mark.parametrize("tail", [b"\\", b"\\\n"])
def test_an_unclosed_string_that_ends_in_a_lone_escape_is_measured_in_one_scan(tail):
    """`(?:"|\\Z)` ends an unclosed string only where the possessive run reached the frame's
    end: a final lone backslash (or a backslash before a newline, which `.` does not match)
    stops the run early, the match fails and re starts again at the next quote (review a21u:
    quadratic as in a21t H1; 8000 escaped quotes ~1.5 s, 160 KB ~ a minute of grader CPU)."""
    frames = [b"", b"{}", b"{}", b"{}", b"{}", b"," * 200_001]
    start = time.process_time()
    wire.refusal(frames + [b'"' + b'\\"' * 8_000], 100 << 20, 200_000)
    plain = time.process_time() - start
    start = time.process_time()
    wire.refusal(frames + [b'"' + b'\\"' * 8_000 + tail], 100 << 20, 200_000)
    assert time.process_time() - start < 10 * plain + 0.2


def _b64(value):
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_hidden_checks_refused_answer_says_the_same_whatever_it_holds():
    """M1 (a21t) made one sentence of every unreadable reply, but three ReplyRefused texts
    remain for the reply's bytes to pick in a hidden check: a sparse tensor, an unreadable
    reply, a tensor of zero strides (counted by its elements)."""
    source = ("from nopos.checks.ch01 import check_make_batch\n### BEGIN HIDDEN TESTS\n"
              "check_make_batch(make_batch, batch_size=5, n_ctx=3, d_vocab=3, quiet=True)\n"
              "### END HIDDEN TESTS")
    said = set()
    for text in (_b64(torch.ones(3).to_sparse()), "A", _b64(torch.zeros(1).expand(1 << 30))):
        def ask(name, request, text=text):
            return transport.pack({"callable": True, "params": []}) if request is None else text
        passed, _, message = judge.judge_test_cell(source, ask, part="hidden")
        assert not passed
        said.add(message)
    assert len(said) == 1, said


def test_an_outputs_nested_metadata_is_counted_as_the_notebook_writes_it():
    """`_size` counts compact JSON; nbformat writes indent=1, one line per value indented by its
    depth: metadata nested 400 deep around 199k zeros is counted 0.6 MB and written 81.5 MB
    (review a21u: x136 past the notebook's 20 MB budget, in the grader's memory and on disk)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from nopos.grading.sandbox import OUTPUT_COST, _size

    md = [0] * 20_000
    for _ in range(99):
        md = [md]
    content = {"data": {"text/plain": ""}, "metadata": {"x": md}}
    nb = new_notebook(cells=[new_code_cell("x", outputs=[new_output("display_data", **content)])])
    empty = new_notebook(cells=[new_code_cell("x")])
    written = len(nbformat.writes(nb).encode()) - len(nbformat.writes(empty).encode())
    assert written <= 2 * (_size(content) + OUTPUT_COST), (written, _size(content))


def _message(i, msg_type, **content):
    return {"msg_type": msg_type, "header": {"msg_type": msg_type, "msg_id": str(i)},
            "parent_header": {"msg_id": "p"}, "metadata": {}, "content": content, "buffers": []}


def test_a_live_plot_keeps_its_last_figure_or_says_why_not():
    """clear_output(wait=True) then a figure, many times (a training loop's live plot): the
    delayed clear is never given back to the budget, and once past it the clear that the last
    print sets off wipes the last figure and the note (review a21u: only the print is left)."""
    ex, nb = message_executor(cells=1, cell_output_mb=1, notebook_output_mb=10)
    cell = nb.cells[0]
    figure = "A" * 60_000
    for step in range(40):
        ex.process_message(_message(2 * step, "clear_output", wait=True), cell, 0)
        ex.process_message(_message(2 * step + 1, "display_data", data={"image/png": figure, "text/plain": "<Figure>"},
                                    metadata={}), cell, 0)
    ex.process_message(_message(999, "stream", name="stdout", text="final step 39\n"), cell, 0)
    figures = [o for o in cell.outputs if o.get("output_type") == "display_data"]
    notes = [o for o in cell.outputs if o.get("output_type") == "stream" and "output cut" in o.get("text", "")]
    assert figures or notes, cell.outputs


def test_a_flood_of_tiny_stream_messages_is_bounded_like_other_outputs():
    """nbclient appends one output per stream message (coalescing is at the cell's end at
    most), each ~1.5 KB of the grader's memory, but a stream is charged its text only (review
    a21u: 1-byte flushed writes, alternating stdout and stderr)."""
    from nopos.grading.sandbox import OUTPUT_COST

    ex, nb = message_executor(cells=1, cell_output_mb=1, notebook_output_mb=1)
    cell = nb.cells[0]
    for i in range(10_000):
        ex.process_message(_message(i, "stream", name=("stdout", "stderr")[i % 2], text="x"), cell, 0)
    assert len(cell.outputs) <= 2 ** 20 // OUTPUT_COST + 1, len(cell.outputs)


# a fifth review (a21v): what clears leave held, and a text's lines as written


def test_a_cleared_output_is_not_kept_by_the_grader():
    """`_sizes` (473545f) keeps every output an update measured or rewrote for the whole
    notebook; clear_output gives the cell's bytes back, but the cache still holds the
    output: display + a 1 MB update + clear, 30 times, leaves 30 MB in the grader (review
    a21v: 350 cycles of 3.8 MB in one cell, ~1.3 GB, bounded by no budget)."""
    ex, nb = message_executor(cells=1, cell_output_mb=4, notebook_output_mb=20)
    cell = nb.cells[0]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(30):
            ex.process_message(_message(3 * i, "display_data", data={"text/plain": ""}, metadata={},
                                        transient={"display_id": "L"}), cell, 0)
            ex.process_message(_message(3 * i + 1, "update_display_data", data={"text/plain": "z" * (1 << 20)},
                                        metadata={}, transient={"display_id": "L"}), cell, 0)
            ex.process_message(_message(3 * i + 2, "clear_output", wait=False), cell, 0)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert ex._output_used["notebook"] < 2 ** 20  # the budget was given back ...
    assert held < 4 << 20, f"{held >> 20} MB still held after the clears"  # ... and the memory too


def _written(output):
    nb = new_notebook(cells=[new_code_cell("x", outputs=[output])])
    empty = new_notebook(cells=[new_code_cell("x")])
    return len(nbformat.writes(nb).encode()) - len(nbformat.writes(empty).encode())


def test_output_text_is_counted_as_the_notebook_writes_it_one_line_an_element():
    """nbformat writes text (a stream's, a display's text/*) as a list of lines, one indented
    line per element; `_size` counts compact JSON, where a line break is 2 bytes: a "\\r" is
    counted 2 and written ~11 (nbgrader's LimitOutput cuts streams at 1000 "\\n" lines only).
    Review a21v: a 20 MB budget writes a ~115 MB notebook, ~1 GB of grader memory to write."""
    for kind, content in (("stream", {"name": "stdout", "text": "\r" * 100_000}),
                          ("display_data", {"data": {"text/plain": "\n" * 100_000}, "metadata": {}})):
        written = _written(new_output(kind, **content))
        assert written <= 2 * (_size(content) + OUTPUT_COST), (kind, written, _size(content))


def test_a_lone_surrogate_in_an_output_does_not_cost_the_notebook():
    """A kernel's own packer can send '\\ud800' (a plain print cannot): nbformat writes the
    notebook as UTF-8, which has no lone surrogate, so one output or display update holding
    one lost the whole notebook (review a21v: 0/10, "grading failed"). Replaced by '?'."""
    ex, nb = message_executor(cells=1, cell_output_mb=1, notebook_output_mb=1)
    cell = nb.cells[0]
    ex.process_message(_message(1, "display_data", data={"text/plain": "lone \ud800"}, metadata={},
                                transient={"display_id": "s"}), cell, 0)
    ex.process_message(_message(2, "stream", name="stdout", text="and \udfff\n"), cell, 0)
    ex.process_message(_message(3, "error", ename="E\ud800", evalue="v", traceback=["t\ud800"]), cell, 0)
    assert nbformat.writes(nb).encode("utf-8")
    assert [o.get("data", {}).get("text/plain") or o.get("text") for o in cell.outputs[:2]] == [
        "lone ?", "and ?\n"]
    ex.process_message(_message(4, "update_display_data", data={"text/plain": "new \ud800"}, metadata={},
                                transient={"display_id": "s"}), cell, 0)
    assert cell.outputs[0]["data"]["text/plain"] == "new ?"
    assert nbformat.writes(nb).encode("utf-8")


# a sixth review (a21w): what a check's message, a clear and a hidden call's result say


def test_a_lone_surrogate_in_a_checks_message_does_not_cost_the_notebook():
    """A learner's `raise ValueError('\\udcff')` is quoted by the check ("masked_accuracy
    raised ValueError: ..."): the notebook, written as UTF-8, lost all 10 points for a test
    worth 2 (review a21w, W1). The message keeps the rest, with '?'."""
    from nopos.grading.sandbox import SandboxedExecute

    def masked_accuracy(logits, targets, mask):
        raise ValueError("a name read with surrogateescape: \udcff")

    space = {"masked_accuracy": masked_accuracy, "torch": torch}
    nb = new_notebook(cells=[new_code_cell(
        "from nopos.checks.ch01 import check_masked_accuracy\n\ncheck_masked_accuracy(masked_accuracy)")])
    ex = SandboxedExecute()
    ex.nb, ex.kc, ex._place, ex.timeout = nb, object(), None, 10
    ex._ask = lambda name, request: transport.serve(space, name, request)
    assert not ex._judge(nb.cells[0], 0)
    assert "raised ValueError" in nb.cells[0].outputs[-1]["evalue"]
    assert "surrogateescape: ?" in nbformat.writes(nb).encode("utf-8").decode()


def test_a_clear_forgets_only_its_own_cells_measured_outputs(monkeypatch):
    """The measured sizes of outputs an update rewrites are kept so that each is measured
    once; a clear forgot them all, of every cell, so each update after a clear measured all
    64 outputs of its id again (review a21w, W2: 67 times the cost a message)."""
    from nopos.grading import sandbox

    ex, nb = message_executor(cells=7)
    for c in range(6):
        for k in range(11):
            ex.process_message(_message(100 * c + k, "display_data", data={"text/plain": "d" * 30_000},
                                        metadata={}, transient={"display_id": "D"}), nb.cells[c], c)
    measured, real = [], sandbox._size

    def counting(content):
        measured.append(real(content))
        return measured[-1]

    monkeypatch.setattr(sandbox, "_size", counting)
    for i in range(20):
        ex.process_message(_message(10_000 + 2 * i, "clear_output", wait=False), nb.cells[6], 6)
        ex.process_message(_message(10_001 + 2 * i, "update_display_data",
                                    data={"text/plain": "de"[i % 2] * 30_000}, metadata={},
                                    transient={"display_id": "D"}), nb.cells[6], 6)
    assert nb.cells[0].outputs[0]["data"]["text/plain"][:1] == "e"  # the updates were kept
    sent = 20 * real({"data": {"text/plain": "d" * 30_000}, "metadata": {}})
    assert sum(measured) <= 3 * sent, f"measured {sum(measured):,} B for {sent:,} B of updates"


def test_a_hidden_checks_calls_stay_within_the_hidden_pass_budget():
    """Each hidden test had a cell's full time even with one second of the hidden pass
    left, so the whole notebook's wall limit was an outcome a hidden call could pick
    (review a21y, Y3)."""
    from nopos.grading.sandbox import SandboxedExecute

    space = {"make_batch": lambda *args, **kwargs: None, "torch": torch}
    nb = new_notebook(cells=[new_code_cell(
        "from nopos.checks.ch01 import check_make_batch\n### BEGIN HIDDEN TESTS\n"
        "check_make_batch(make_batch, batch_size=5, n_ctx=3, d_vocab=3, quiet=True)\n"
        "### END HIDDEN TESTS")])
    ex = SandboxedExecute()
    ex.nb, ex.kc, ex._place, ex.timeout = nb, object(), None, 120
    ex._ask = lambda name, request: transport.serve(space, name, request)
    ex._deadline = time.monotonic() + 1
    assert not ex._judge(nb.cells[0], 0, hidden=True)
    assert ex._judge_deadline <= ex._deadline


class _Calls:
    """A pickled call, as a kernel can write one: torch.save pickles it as `func(*args)`."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _archive(records, method):
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in records.items():
            z.writestr(name, data)
    return base64.b64encode(out.getvalue()).decode()


def _records(value):
    import zipfile

    z = zipfile.ZipFile(io.BytesIO(base64.b64decode(transport.pack(value))))
    return {i.filename: z.read(i) for i in z.infolist()}


def test_a_reply_that_asks_the_grader_to_allocate_is_refused_before_anything_is_allocated():
    """Review a31a H1: torch's weights_only loader calls bytearray(n), torch.FloatTensor(n)
    and inflates deflated records, all before `bounded` counts anything: a 1,768-character
    reply took the grader to +1.5 GB, a 2 MB one too. The archive is checked first, and
    torch reads only an archive the grader made from the checked records."""
    import _codecs
    import zipfile

    bombs = {
        "bytearray": _b64({"x": _Calls(bytearray, 1 << 30)}),
        "legacy tensor": _b64({"x": _Calls(torch.FloatTensor, 1 << 28)}),
        "legacy storage": _b64({"x": _Calls(torch.FloatStorage, 1 << 28)}),
        "bytes(n)": _b64({"x": _Calls(bytes, 1 << 30)}),
        "escape codec": _b64({"x": _Calls(_codecs.encode, "\x00" * 1000, "unicode_escape")}),
        "deflated": _archive(_records({"t": torch.zeros(1 << 18)}), zipfile.ZIP_DEFLATED),
    }
    records = _records({"t": torch.zeros(4)})  # a storage record shorter than its tensor says
    records["archive/data/0"] = records["archive/data/0"][:8]
    bombs["short record"] = _archive(records, zipfile.ZIP_STORED)
    tracemalloc.start()
    try:
        for name, text in bombs.items():
            with pytest.raises(transport.ReplyRefused, match="only plain data and tensors"):
                transport.unpack(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"{peak >> 20} MB while refusing"


def test_every_plain_value_a_kernel_sends_still_crosses():
    import collections

    shared = [1, 2]
    value = {"list": [1, 2.5, None, True, "text", b"bytes", 10 ** 30, 1 + 2j], "tuple": (1, (2,)),
             "set": {1, 2}, "ordered": collections.OrderedDict(a=1), "size": torch.Size([2, 3]),
             "dtype": torch.float16, "device": torch.device("cpu"), "shared": [shared, shared],
             "nested": {1: {2: [[3]]}}, "empty": torch.empty(0), "scalar": torch.tensor(3.0),
             "view": torch.arange(10)[2:5], "transposed": torch.arange(12).reshape(3, 4).t(),
             **{str(dtype): torch.ones(2, dtype=dtype) for dtype in (
                 torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                 torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
                 torch.complex128)}}
    back = transport.unpack(transport.pack(value))
    assert sorted(back) == sorted(value)
    for key, sent in value.items():
        got = back[key]
        assert (torch.equal(got, sent) and got.stride() == sent.stride()) \
            if isinstance(sent, torch.Tensor) else got == sent, key


def test_a_pickle_of_marks_is_checked_in_one_pass():
    """A stack of a million values, then mark, tuple, mark, tuple ...: a check that looked
    for each mark through the stack would take hours."""
    import pickle

    n = 200_000
    body = pickle.PROTO + b"\x02" + b"N" * n + b"(t" * n + b"."  # None x n, then (mark, tuple) x n
    records = _records(None)
    records["archive/data.pkl"] = body
    start = time.process_time()
    with pytest.raises(transport.ReplyRefused):
        transport.unpack(_archive(records, __import__("zipfile").ZIP_STORED))
    assert time.process_time() - start < 5


@pytest.mark.parametrize("html, shown", [
    ("<script>x " * 400_000, None),  # unclosed openers: each looked to the end (quadratic)
    ("<div>" * 50_000, "nested more than"),  # html5lib: the square of the depth (73 s)
    ("<a" * 300_000, "KB) is shown as text"),
    ("<p>x</p>" * 200_000, "KB) is shown as text"),
])
def test_learner_html_is_cleaned_in_time_linear_in_its_size(html, shown):
    """Review a31a M4: 300 KB of Markdown took one learner's feedback page 54 s, and the
    class's feedback is one process: 4 MB would have been two hours."""
    from nopos.grading.nbgrader_ext import clean_html

    start = time.process_time()
    out = clean_html(html)
    assert time.process_time() - start < 2
    assert "<script" not in out.lower() and (shown is None or shown in out)
    assert len(out) < 400 * 1024


def test_ordinary_learner_html_still_renders_inert():
    from nopos.grading.nbgrader_ext import clean_html

    out = clean_html("<p>hi <b>there</b><script>alert(1)</script> after <STYLE>x</style >"
                     "<img src='http://evil.example/y.png' onerror='x()'> <a href='#a'>k</a>"
                     "<iframe src='x'>inside</iframe><table><tr><td>1</td></tr></table></p>")
    assert out == ('<p>hi <b>there</b> after <img> <a href="#a">k</a></p>'
                   '<table><tbody><tr><td>1</td></tr></tbody></table><p></p>'), out


def _pickled(body):
    """A reply whose pickle is `body`, in an archive as pack makes it."""
    import zipfile

    records = _records(None)
    records["archive/data.pkl"] = body
    return _archive(records, zipfile.ZIP_STORED)


@pytest.mark.parametrize("body", [
    b"\x80\x02}(" + b")" + b"\x85" * 1_000_000 + b"Nu.",  # a dict key: a tuple a million deep
    b"\x80\x02c__builtin__\nset\n]" + b"]" * 0 + b")" + b"\x85" * 300_000 + b"a\x85R.",  # a set's member
    b"\x80\x02(" + b")" * 400_000 + b"t.",  # empty tuples: the check's own memory
    b"\x80\x02(" + b"".join(b"Nr" + i.to_bytes(4, "little") for i in range(210_000)) + b"t.",
], ids=["deep dict key", "deep set member", "empty tuples", "remembered values"])
def test_the_reply_check_itself_is_bounded(body, monkeypatch):
    """Review a31c: a tuple a million deep passed the first check, and torch crashed the
    grader hashing it (SIGSEGV: a classmate graded after the attacker lost 10/10); a pickle
    of empty tuples took the check 139 bytes a byte (+2.2 GB for 16 MB). Nesting, opcodes
    and remembered values are counted as they come (here with bounds a tenth of the
    grader's, for time: at its own, 41 MB and 122 MB)."""
    monkeypatch.setattr(transport, "PICKLE_LIVE", transport.PICKLE_LIVE // 10)
    monkeypatch.setattr(transport, "PICKLE_OPS", transport.PICKLE_OPS // 10)
    tracemalloc.start()
    start = time.process_time()
    try:
        with pytest.raises(transport.ReplyRefused):
            transport.unpack(_pickled(body))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20 and time.process_time() - start < 10, (peak >> 20, time.process_time() - start)


def test_every_tensor_dtype_still_crosses():
    """uint16/32/64, complex32 and float8 tensors are pickled as untyped storages (a31c N6)."""
    for dtype in (torch.uint16, torch.uint32, torch.uint64, torch.complex32, torch.float8_e4m3fn,
                  torch.float8_e5m2):
        sent = torch.ones(3).to(dtype)
        back = transport.unpack(transport.pack({"x": sent, "nested": [[[sent]]] * 3}))["x"]
        assert back.dtype == dtype and back.shape == sent.shape, dtype


@pytest.mark.parametrize("html, shown", [
    ("<div/>" * 40_000, "nested more than"),  # "/>" closes no <div> (review a31c: 63 s)
    ("<div></x>" * 40_000, "nested more than"),  # an end tag of nothing open closes nothing
    ("<ul>" + "<li><div>x" * 12_000 + "</ul>", "more than 2000 elements"),  # 3.6 s, quadratic
])
def test_learner_html_that_html5lib_nests_is_shown_as_text(html, shown):
    from nopos.grading import nbgrader_ext

    nbgrader_ext._TAGS_LEFT[0] = nbgrader_ext.NOTEBOOK_TAGS
    start = time.process_time()
    out = nbgrader_ext.clean_html(html)
    assert shown in out and time.process_time() - start < 2


def test_optional_end_tags_render_and_a_notebook_has_a_budget():
    """Lists, paragraphs and tables written without their optional end tags render (a31c
    N7); past a notebook's budget of elements, what is left is shown as text."""
    from nopos.grading import nbgrader_ext

    nbgrader_ext._TAGS_LEFT[0] = nbgrader_ext.NOTEBOOK_TAGS
    for html in ("<ul>" + "<li>x" * 150 + "</ul>", "<p>x" * 500,
                 "<table>" + "<tr><td>1<td>2" * 300 + "</table>", "<p>a<embed src='x'>b c</p>"):
        assert "shown as text" not in nbgrader_ext.clean_html(html), html[:40]
    assert nbgrader_ext.clean_html("<p>a<embed src='x'>b c</p>") == "<p>ab c</p>"
    nbgrader_ext._TAGS_LEFT[0] = 10
    assert "a notebook's page shows" in nbgrader_ext.clean_html("<p>x" * 20)
    nbgrader_ext._TAGS_LEFT[0] = nbgrader_ext.NOTEBOOK_TAGS


@pytest.mark.parametrize("value", [
    {k * (2 ** 61 - 1): 0 for k in range(1, 5001)},  # every key hashes to 0
    {k * (2 ** 61 - 1) for k in range(1, 5001)},
    {k + 0.5: 0 for k in range(5001)},
], ids=["int keys", "set members", "float keys"])
def test_keys_whose_hashes_a_reply_chooses_are_bounded(value):
    """Review a31e: 40,000 dict keys that all hash alike took torch's load 6 s before any
    count (a million: an hour, the class's grading held). At most HASHED_KEYS such keys."""
    start = time.process_time()
    with pytest.raises(transport.ReplyRefused):
        transport.unpack(transport.pack(value))
    assert time.process_time() - start < 2
    honest = {"ints": {i: i for i in range(100_000)}, "pairs": {(i, i + 1): i for i in range(500)},
              "texts": {str(i): i for i in range(10_000)}, "a set": set(range(1000))}
    assert transport.unpack(transport.pack(honest)) == honest


def test_hashing_a_reply_is_bounded_by_what_it_walks():
    """Review a31g: one key of shared tuples (16 deep, 4 wide: 1,268 characters) took
    torch's load 13.5 s to hash; colliding keys came in through set(tuple),
    OrderedDict([...]) and torch.Size keys, past the count of keys."""
    import collections

    key = (1,)
    for _ in range(16):
        key = (key,) * 4
    for value in ({key: 1}, collections.OrderedDict((k * (2 ** 61 - 1), 0) for k in range(1, 3000)),
                  {torch.Size([i, i]): 0 for i in range(3000)}):
        start = time.process_time()
        with pytest.raises(transport.ReplyRefused):
            transport.unpack(transport.pack(value))
        assert time.process_time() - start < 2
    for pickled_as in (b"c__builtin__\nset\n(K\x01K\x02t\x85R.",  # set((1, 2)): not as pack writes
                       b"ccollections\nOrderedDict\n]\x85R."):  # OrderedDict([])
        with pytest.raises(transport.ReplyRefused):
            transport.unpack(_pickled(b"\x80\x02" + pickled_as))
