"""The verdict of a graded test, reached outside the learner's kernel.

A graded test cell is a list of check calls:

    from nopos.checks.ch01 import check_make_batch
    check_make_batch(make_batch)
    check_make_batch(make_batch, batch_size=5, n_ctx=3, quiet=True)   # hidden

In the learner's own notebook the cell runs as written: the check calls the
function directly and says what is wrong. When nbgrader grades, the cell never
runs in the kernel. `judge_test_cell` runs the same checks here, in the
grader's process, with every notebook name replaced by a `KernelName`: calling
it sends the arguments into the kernel as data, calls the learner's function
there and brings back the result as data (`nopos.grading.transport`). The reference,
the comparison and the message all stay on this side. Whatever the kernel
prints, raises or patches, the test passes only if the check here says so.
"""
import ast
import builtins
import contextlib
import importlib
import io

import torch

from nopos.grading import transport
from nopos.checks import CheckFailed, NotDefined

CHECK_MODULE_PREFIX = "nopos.checks."
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
HIDDEN_PREFIX = "a hidden check: "
MESSAGE_CHARS = 2000  # a verdict's message is the grader's text, at most this long


class TestCellError(ValueError):
    """A test cell that is not a plain list of check calls (an authoring mistake)."""


class KernelTimeout(BaseException):
    """The kernel did not answer a call in time (a BaseException: no check may take it
    for a mistake in the learner's code and carry on)."""


# ------------------------------------------------------------------ parsing
def _literal(node, where):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise TestCellError(f"{where}: arguments must be notebook names or literals, "
                            f"got `{ast.unparse(node)}`") from None


def parse_test_cell(source):
    """[(module, function, args, kwargs, line)]; an arg is ("name", n) or ("value", v)."""
    tree = ast.parse(source)
    imported, calls = {}, []
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith(CHECK_MODULE_PREFIX):
            for alias in stmt.names:
                imported[alias.asname or alias.name] = (stmt.module, alias.name)
            continue
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id in imported):
            raise TestCellError(f"line {stmt.lineno}: a test cell may only import checks from "
                                f"nopos.checks and call them, got `{ast.unparse(stmt)[:80]}`")
        call = stmt.value
        where = f"line {stmt.lineno}"
        args = [("name", a.id) if isinstance(a, ast.Name) else ("value", _literal(a, where))
                for a in call.args]
        kwargs = {}
        for kw in call.keywords:
            if kw.arg is None:
                raise TestCellError(f"{where}: no **kwargs in a test cell")
            kwargs[kw.arg] = (("name", kw.value.id) if isinstance(kw.value, ast.Name)
                              else ("value", _literal(kw.value, where)))
        calls.append((*imported[call.func.id], args, kwargs, stmt.lineno))
    if not calls:
        raise TestCellError("a test cell must call at least one check")
    return calls


def hidden_lines(source):
    """Line numbers (from 1) inside the cell's hidden-test blocks."""
    inside, lines = False, set()
    for number, line in enumerate(source.splitlines(), 1):
        if line.strip().startswith(HIDDEN_BEGIN):
            inside = True
        elif line.strip().startswith(HIDDEN_END):
            inside = False
        elif inside:
            lines.add(number)
    return lines


def has_hidden(source):
    return bool(hidden_calls(source))


def hidden_calls(source):
    """The cell's calls inside its hidden-test blocks ([] for a cell that does not parse)."""
    try:
        hidden = hidden_lines(source)
        return [call for call in parse_test_cell(source) if call[-1] in hidden]
    except (SyntaxError, TestCellError):
        return []


def hidden_names(source):
    """The notebook names the cell's hidden checks use (what the grader keeps, at the
    test's place, for the hidden pass after the last cell)."""
    names = set()
    for _, _, args, kwargs, _ in hidden_calls(source):
        names.update(v for kind, v in [*args, *kwargs.values()] if kind == "name")
    return sorted(names)


# ------------------------------------------------------------ the kernel
class KernelName:
    """A name of the notebook, seen from the grader: calling it calls the learner's
    function in the kernel; everything crosses as data."""

    def __init__(self, name, ask, why_missing="", hidden=False, params=()):
        self.__name__ = self.name = name
        self._ask, self._why_missing, self._hidden = ask, why_missing, hidden
        self.__signature__ = _signature(params)

    def __repr__(self):
        return self.name

    def missing(self):
        return NotDefined(f"{self.name} is not defined in your notebook: its answer cell did not "
                         f"run cleanly{self._why_missing}")

    def __call__(self, *args, **kwargs):
        modules = {i: _recorded_outputs(a, args) for i, a in enumerate(args) if _stand_in(a)}
        reply = transport.unpack(self._ask(self.name, transport.encode_call(args, kwargs, modules)))
        if reply.get("missing"):
            raise self.missing()
        transport.apply_after(reply.get("after", {}), args, kwargs)
        if "error" in reply:  # in a hidden check, neither its text nor its type is told
            if self._hidden:
                raise hidden_error(reply["error"])
            raise transport.learner_error(reply["error"], reply.get("args", []))
        return transport.decode_result(reply["result"], args, kwargs, texts=not self._hidden)


# The built-in errors a check tells apart in a hidden call (`except KeyError:` ...), the
# kinds it judges by; any other error is the same plain exception. Each is named "an
# exception" in a message: which one of a few kinds is all a hidden call can choose.
HIDDEN_KINDS = ("NotImplementedError", "KeyError", "TypeError", "ValueError", "RuntimeError")
_HIDDEN_ERRORS = {kind: type("an exception", (getattr(builtins, kind), transport.LearnerError), {})
                  for kind in HIDDEN_KINDS}
_HIDDEN_ERRORS[None] = type("an exception", (transport.LearnerError,), {})


def hidden_error(name):
    """The learner's error in a hidden call, with no text and no type of its own to tell:
    one of a few fixed kinds, each named "an exception" (a built-in's name, like a
    learner's class's, could be chosen from dozens as a function of the hidden input)."""
    if name == "NotImplementedError":  # "not written yet": the one kind a message names
        return NotImplementedError()
    return _HIDDEN_ERRORS.get(str(name), _HIDDEN_ERRORS[None])()


def _stand_in(value):
    """A check's designed fake model: it crosses as a table of its outputs."""
    if not isinstance(value, torch.nn.Module):
        return False  # before the import: TransformerLens costs seconds, once per grader
    from nopos.model import NativeModel, lens_source

    return not isinstance(value, NativeModel) and lens_source(value) is None


@torch.no_grad()
def _recorded_outputs(module, args):
    return [(t.detach().cpu(), module(t).detach().cpu()) for t in args if isinstance(t, torch.Tensor)]


def _signature(params):
    """The learner's positional parameter names, so that a check can name the argument a call
    changed (`nopos.checks.unchanged`); any keyword goes through."""
    import inspect

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    names = [p for p in params if isinstance(p, str) and p.isidentifier()]
    rest = inspect.Parameter("_other_keywords_", inspect.Parameter.VAR_KEYWORD)
    try:
        return inspect.Signature([inspect.Parameter(p, kind) for p in names] + [rest])
    except ValueError:  # a repeated name
        return inspect.Signature([rest])


def _resolve(name, ask, why_missing, hidden=False):
    """A notebook name: a KernelName for a function, its value (as data) otherwise."""
    reply = transport.unpack(ask(name, None))
    if reply.get("missing"):
        return transport.Missing(name, f"not defined{why_missing}")
    if reply.get("callable"):  # a hidden check's message carries no text of the learner's
        return KernelName(name, ask, why_missing, hidden, () if hidden else reply.get("params") or ())
    return transport.decode_result(reply["result"], texts=not hidden)


def _missing_callable(name, why_missing):
    return KernelName(name, lambda *_: transport.pack({"missing": True}), why_missing)


# ------------------------------------------------------------------ verdict
def judge_test_cell(source, ask, why_missing="", part="all"):
    """Run a test cell's checks here against the kernel; returns (passed, printed, message).

    `ask(name, request)` sends one request into the kernel and returns its packed
    reply (`transport.serve` answers it there); it raises KernelTimeout when the
    kernel does not answer. `part`: "visible" or "hidden" judges only the calls
    outside or inside the cell's hidden-test blocks ("all": every call). A hidden part
    that fails says HIDDEN_FAILED and prints nothing: any other text could carry what
    the learner's code chose for the hidden inputs.
    """
    printed = io.StringIO()
    try:
        calls = parse_test_cell(source)
    except (SyntaxError, TestCellError) as error:
        return False, "", f"this test cell could not be graded ({error}); tell your instructor"
    hidden = part == "hidden"
    if part != "all":
        inside = hidden_lines(source)
        calls = [c for c in calls if (c[-1] in inside) == hidden]
    names = {}

    def value_of(arg):
        kind, value = arg
        if kind == "value":
            return value
        if value not in names:
            resolved = _resolve(value, ask, why_missing, hidden)
            if _looks_like_function(value) and not isinstance(resolved, KernelName):
                why = (why_missing if isinstance(resolved, transport.Missing) else
                       f" (it is a {type(resolved).__name__}, not a function)")
                resolved = _missing_callable(value, why)
            names[value] = resolved
        return names[value]

    try:
        with contextlib.redirect_stdout(printed):
            for module, function, args, kwargs, _ in calls:
                check = getattr(importlib.import_module(module), function)
                transport.new_check()
                check(*[value_of(a) for a in args], **{k: value_of(v) for k, v in kwargs.items()})
    except (KernelTimeout, transport.ReplyRefused, Exception) as failure:  # noqa: BLE001 (both Base)
        if hidden:  # one sentence, whatever failed (HIDDEN_FAILED), and nothing printed
            return False, "", HIDDEN_FAILED
        if isinstance(failure, (CheckFailed, KernelTimeout, transport.ReplyRefused)):
            return False, printed.getvalue(), str(failure)
        # the check met an answer it could not read
        return False, printed.getvalue(), f"the check could not use your answer ({type(failure).__name__}: {failure})"
    return True, printed.getvalue(), ""


# A hidden check's failure says only that it failed. Anything more (the mistake it names, a
# value the function returned, a type, "not written yet", a hang) is chosen by the learner's
# code as a function of the hidden inputs, and masking what a message quotes kept missing
# routes (reviews a21u-a21x: dtypes, lengths, type names, letters spelling digits): which
# hidden checks pass is all the feedback says of them.
HIDDEN_FAILED = ("this test's visible checks pass but its hidden ones do not: on other inputs "
                 "(other sizes, seeds or models) or settings, the answer was wrong, missing or "
                 "too slow. Try your answer on cases of your own beyond the visible checks' "
                 "(if it seems right, tell your instructor).")


def _looks_like_function(name):
    return not name.isupper()  # MY_RECIPE is a value; make_batch a function


def cell_outputs(passed, printed, message):
    """nbgrader's view of the verdict: an error output fails the test."""
    from nbformat.v4 import new_output

    # a learner's exception text may hold a lone surrogate ('\udcff' is plain Python): the
    # notebook is written as UTF-8, which has none, and would not be written at all
    printed, message = (t.encode("utf-8", "replace").decode("utf-8") for t in (printed, message))
    if not passed:  # no "all checks passed" above a failure (a hidden check can fail after it)
        printed = "\n".join(line for line in printed.splitlines() if "all checks passed" not in line)
    outputs = [new_output("stream", name="stdout", text=printed[:MESSAGE_CHARS])] if printed.strip() else []
    if not passed:
        message = message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + " [...]"
        outputs.append(new_output("error", ename="CheckFailed", evalue=message,
                                  traceback=[f"CheckFailed: {message}"]))
    return outputs
