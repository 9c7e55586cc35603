"""Learners who try to fake a pass instead of writing correct code.

Each fake hands in chapter 1 with the reference answers everywhere except
`make_batch`, which is wrong (or missing), plus a trick that used to, or
could, make the test pass anyway: replacing the checks, patching torch's
comparisons, rewriting test cells before they run, patching only while a check
runs, returning objects that lie, forging the grader's channel, importing or
reading the reference answers, shadowing the course's package. With the
verdict reached outside the kernel (nopos/grading/judge.py), every one must lose
exactly test_make_batch's 3 points, with a reason, and keep the other 7.

`make test` grades all but BEYOND_CORE (each notebook costs about 15 s); those repeat a
class a core fake covers, and NOPOS_ROUNDTRIP=all grades them too.
"""
WRONG = '''
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    tokens = torch.randint(1, d_vocab, (batch_size, n_ctx))   # ignores the generator
    tokens[:, 0] = BOS
    return tokens
'''

FAKES = {
    # the kernel's copy of the checks is gone while grading; patching it changes nothing
    "replaces_the_check": (WRONG + '''
try:
    import nopos.checks.ch01 as _c
    _c.check_make_batch = lambda *a, **k: print("\\N{HEAVY CHECK MARK} make_batch: all checks passed")
except Exception:
    pass
''', "same seed"),
    "patches_torch_comparisons": (WRONG + '''
torch.equal = lambda a, b: True
torch.allclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
''', "same seed"),
    "rewrites_test_cells": (WRONG + '''
def _skip_checks(lines):
    return ["pass\\n"] if any("check_" in line for line in lines) else lines
get_ipython().input_transformers_cleanup.append(_skip_checks)
''', "same seed"),
    "patches_only_during_checks": (WRONG + '''
import sys
def _tracer(frame, event, arg):
    if frame.f_code.co_name.startswith("check_"):
        frame.f_globals["expect"] = lambda *a, **k: None
        frame.f_globals["fail"] = lambda *a, **k: None
    return None
sys.setprofile(_tracer)
''', "same seed"),
    "returns_a_liar": ('''
class _Liar(torch.Tensor):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    @property
    def shape(self):
        return torch.Size([8, 12])

def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    return torch.zeros(3, 3, dtype=torch.long).as_subclass(_Liar)
''', "shape"),
    "forges_the_channel": (WRONG + '''
try:
    import nopos.grading.transport as _t
    _honest = _t.serve
    def _forged(namespace, name, request):  # lies about make_batch only
        if name != "make_batch":
            return _honest(namespace, name, request)
        return _t.pack({"result": True, "after": {}})
    _t.serve = _forged
except Exception:
    pass
''', "not a function"),
    "imports_the_reference": ('''
from nopos_reference.data import make_batch
''', "nopos_reference"),
    "reads_the_reference_from_disk": ('''
import glob, sys
for _folder in sys.path + ["/work", "/tmp", "/root", "/home", "/srv", "/opt", "/usr"]:
    for _path in glob.glob(_folder + "/**/nopos_reference/data.py", recursive=True)[:5]:
        try:
            exec(open(_path).read())
        except Exception:
            pass
''', "not defined"),
    "calls_a_check_to_get_the_answer": ('''
try:
    from nopos.checks.ch03 import make_batch
except Exception:
    pass
''', "not defined"),
    "kills_the_kernel_when_called": ('''
import os
def make_batch(batch_size, n_ctx, d_vocab, generator=None, device="cpu"):
    os._exit(0)
''', "did not return"),
}

# the check is not in the kernel while grading (as for rewrites_test_cells); a tracer is
# one more way to patch during a check (as patches_torch_comparisons); a kernel that dies
# in a judged call is the hostile battery's relink_in_call
BEYOND_CORE = {"replaces_the_check", "patches_only_during_checks", "kills_the_kernel_when_called"}
