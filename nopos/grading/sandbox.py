"""Containment for autograding: learner code runs in a kernel with limits.

Two parts, both switched on by the course's ``autograder/nbgrader_config.py``:

* ``SandboxedExecute``: nbgrader's ``Execute`` preprocessor, hardened. It starts
  every kernel through the launcher below, survives a kernel that dies (crash,
  ``os._exit``, out of memory) or hangs past its cell timeout by restarting it
  and replaying the cells that had run cleanly (within the notebook's time
  budget), bounds the output it keeps per cell and per notebook, kills every
  process the notebook left behind (by cgroup), and writes a readable reason
  into every cell it could not grade.
* the launcher (``nopos/grading/sandbox_launcher.py``), the kernel process itself. Run
  under ``unshare --mount --net --pid`` it builds the kernel a new root from an
  allow-list (system libraries and the Python installation read-only, the
  course's packages read-only, its own working folder as a throw-away layer, a
  private ``/tmp``), so nothing else on the machine exists for it; no network;
  its own memory and pids cgroup; rlimits; an unprivileged uid of its own and an
  allow-listed environment.

``python -m nopos.grading.sandbox probe`` says which of these this machine supports;
``docs/grading.md`` explains the settings to instructors.
"""
import ast
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

try:  # nbgrader is only needed by the preprocessor
    from nbgrader.preprocessors import Execute
    from traitlets import Bool, Dict, Float, Integer, List, Unicode, default
except ImportError:  # pragma: no cover
    Execute = object


from nopos.grading.sandbox_launcher import kernel_argv, kill_cgroup, probe, probed  # noqa: E402,F401

RUNTIME_PREFIX = "nopos-kernel-"


# ------------------------------------------------------------- preprocessor
def _size(content):
    """Bytes an output message adds to the notebook (its text and data)."""
    total = len(content.get("text", "") or "")
    for value in (content.get("data") or {}).values():
        total += len(value) if isinstance(value, str) else len(str(value))
    return total + sum(len(str(t)) for t in content.get("traceback", []) or [])


def _note(text):
    from nbformat.v4 import new_output

    return new_output("stream", name="stdout", text=text + "\n")


def _kernel_threads():
    """The torch threads the kernel is told to use (nopos.grading.course sets them), at least 1."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(threads)) if threads.isdigit() else 1


def _runtime_folder():
    """A folder for the kernel's connection file and sockets, named after this process;
    folders of graders that were killed before they could clean up are removed."""
    parent = os.environ.get("NOPOS_RUNTIME_DIR") or tempfile.gettempdir()
    for old in Path(parent).glob(f"{RUNTIME_PREFIX}*-*"):
        try:
            pid = int(old.name[len(RUNTIME_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (ValueError, OSError):
            pass
    return tempfile.mkdtemp(prefix=f"{RUNTIME_PREFIX}{os.getpid()}-", dir=parent)


def _error(ename, evalue):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class SandboxedExecute(Execute):
    """nbgrader's Execute with a contained kernel and per-notebook resilience."""

    notebook_timeout = Integer(600, help="Seconds for the whole notebook; later cells are "
                               "not run once it is spent.").tag(config=True)
    memory_mb = Integer(4096, help="Memory of the kernel and its children (cgroup).").tag(config=True)
    address_space_mb = Integer(8192, help="Address space of each kernel process (rlimit).").tag(config=True)
    cpu_seconds = Integer(900, help="CPU seconds of the kernel process (rlimit).").tag(config=True)
    max_procs = Integer(64, help="Processes and threads of the kernel's user (rlimit, cgroup).").tag(config=True)
    file_size_mb = Integer(256, help="Largest file the kernel may write (rlimit).").tag(config=True)
    open_files = Integer(1024, help="Open files of the kernel (rlimit).").tag(config=True)
    network = Bool(False, help="Allow the kernel network access.").tag(config=True)
    namespaces = Bool(True, help="Use unshare (mount, network, pid namespaces) when it works.").tag(config=True)
    drop_privileges = Bool(True, help="Run the kernel as an unprivileged user id of its own.").tag(config=True)
    python_paths = List(Unicode(), help="More folders of the Python installation the kernel "
                        "needs, read-only (its prefix and base prefix always come).").tag(config=True)
    cell_output_mb = Float(4, help="Output kept per cell (MB); the rest is dropped with a "
                           "note.").tag(config=True)
    notebook_output_mb = Float(20, help="Output kept per notebook (MB).").tag(config=True)
    stderr_fails_tests = Bool(False, help="nbgrader scores a test cell 0 when it writes to stderr "
                              "(a warning, a progress bar); False shows that text as stdout "
                              "instead, so only a raised error fails a test.").tag(config=True)
    restart_grace = Integer(5, help="Seconds a timed-out kernel gets to answer after the "
                            "interrupt before it is restarted.").tag(config=True)
    kernel_env = Dict(help="Extra environment of the kernel.").tag(config=True)
    cpus = Float(0, help="CPU time the kernel may use, in CPUs, all its processes together "
                 "(a fork bomb slows only itself); 0: as many as the kernel's torch threads "
                 "(OMP_NUM_THREADS), at least 1.").tag(config=True)

    @default("shutdown_kernel")
    def _immediate(self):  # a polite shutdown waits 5 s; everything left is killed by cgroup
        return "immediate"

    def course_packages(self, notebook_path):
        """[(source folder, mount point)] of the packages the kernel grading
        `notebook_path` may import, read-only: copies made for its chapter, without
        the chapter's answers or the checks (nopos/grading/course_view.py), bound over the
        real packages wherever they live (the checkout, or the Python installation's
        site-packages). The one place to change what a chapter can reach."""
        from nopos.grading import course_view

        if getattr(self, "_runtime", None) is None:  # asked before any kernel was made
            self._runtime = _runtime_folder()
        folder = os.path.join(self._runtime, "course")
        if not os.path.isdir(folder):  # made once per notebook, kept across restarts
            os.makedirs(folder)
            aid = os.path.splitext(os.path.basename(notebook_path))[0]
            self._packages = course_view.kernel_packages(aid, folder)
        return self._packages

    def sandbox_settings(self, notebook_path=""):
        python = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, *self.python_paths)]
        return dict(memory_mb=self.memory_mb, address_space_mb=self.address_space_mb,
                    cpu_seconds=self.cpu_seconds, max_procs=self.max_procs,
                    file_size_mb=self.file_size_mb, open_files=self.open_files,
                    network=self.network, namespaces=self.namespaces,
                    drop_privileges=self.drop_privileges, python=sorted(set(python)),
                    cpus=self.cpus or _kernel_threads(),
                    packages=self.course_packages(notebook_path),
                    cgroup_name=getattr(self, "_cgroup", None) or f"k{uuid.uuid4().hex[:12]}",
                    env={"NBGRADER_EXECUTION": "autograde", **self.kernel_env})

    def create_kernel_manager(self):
        from jupyter_client.kernelspec import KernelSpec

        km = super().create_kernel_manager()
        runtime = self._runtime = _runtime_folder()
        self._cgroup = f"k{uuid.uuid4().hex[:12]}"
        km.transport = "ipc"  # sockets in a folder: works across network namespaces
        km.ip = os.path.join(runtime, "k")
        km.connection_file = os.path.join(runtime, "kernel.json")
        settings = self.sandbox_settings(getattr(self, "_notebook_path", ""))
        km._kernel_spec = KernelSpec(argv=kernel_argv(settings), display_name="nopos sandbox",
                                     language="python", interrupt_mode="signal", metadata={})
        self._runtime = runtime
        return km

    # -- output kept: bounded per cell and per notebook, as it arrives
    def output(self, outs, msg, display_id, cell_index):
        size = _size(msg.get("content", {}))
        used = self._output_used
        if used["cell", cell_index] + size > self.cell_output_mb * 2 ** 20:
            return self._drop_output(outs, cell_index, "cell", self.cell_output_mb)
        if used["notebook"] + size > self.notebook_output_mb * 2 ** 20:
            return self._drop_output(outs, cell_index, "notebook", self.notebook_output_mb)
        used["cell", cell_index] += size
        used["notebook"] += size
        return super().output(outs, msg, display_id, cell_index)

    def clear_output(self, outs, msg, cell_index):
        super().clear_output(outs, msg, cell_index)
        if not outs:  # what was cleared no longer counts
            self._output_used["notebook"] -= self._output_used.pop(("cell", cell_index), 0)

    def _drop_output(self, outs, cell_index, which, limit):
        if (which, cell_index) not in self._output_noted:
            self._output_noted.add((which, cell_index))
            what = {"cell": "this cell", "notebook": "the notebook"}[which]
            outs.append(_note(f"[output cut: {what} printed more than the {limit:g} MB kept "
                              f"for grading; the rest was dropped]"))
        return None

    # -- helpers running code the learner does not see
    def _silent(self, code, timeout, expressions=None, alive=False):
        """Run code the learner does not see; the shell reply's content, or None.
        With `alive`, give up as soon as the kernel has died (os._exit in a call)."""
        from jupyter_core.utils import run_sync

        async def go():
            msg_id = self.kc.execute(code, silent=True, store_history=False,
                                     user_expressions=expressions or {})
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    wait = min(2.0, deadline - time.monotonic()) if alive else deadline - time.monotonic()
                    msg = await self.kc.get_shell_msg(timeout=max(0.1, wait))
                except Exception:
                    if alive and not await self.km.is_alive():
                        return None
                    continue
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg["content"]
            return None

        t0 = time.monotonic()
        try:
            return run_sync(go)()
        except Exception as error:
            self.log.warning("silent run failed: %r", error)
            return None
        finally:
            self.log.debug("silent run of %d chars took %.1f s", len(code), time.monotonic() - t0)

    def _restart(self, replay):
        """A fresh kernel (in a fresh cgroup; every process of the old one is killed),
        then the cells that had run cleanly, within what is left of the notebook's time."""
        from jupyter_client.kernelspec import KernelSpec
        from jupyter_core.utils import run_sync

        self.log.warning("restarting the kernel and replaying %d cells", len(replay))
        try:
            self.kc.stop_channels()
        except Exception:
            pass
        old, self._cgroup = self._cgroup, f"k{uuid.uuid4().hex[:12]}"
        self.km._kernel_spec = KernelSpec(
            argv=kernel_argv(self.sandbox_settings(self._notebook_path)),
            display_name="nopos sandbox", language="python", interrupt_mode="signal", metadata={})
        run_sync(self.km.restart_kernel)(now=True)
        kill_cgroup(old)
        self.start_new_kernel_client()
        self._bound_messages()
        for cell in replay:
            left = self._deadline - time.monotonic()
            if left <= 1:
                self.log.warning("no time left in the notebook's budget to replay more cells")
                break
            self._silent(cell.source, min(self.timeout or 60, left))

    def _get_timeout(self, cell):
        """A cell gets its own limit, or what is left of the notebook's, if less."""
        own = super()._get_timeout(cell)
        left = max(1, int(getattr(self, "_deadline", float("inf")) - time.monotonic()))
        return min(own, left) if own else left

    # -- the verdict of a test cell, reached in this process (nopos/grading/judge.py)
    def _ask(self, name, request):
        """One call of the learner's `name` in the kernel; its packed reply."""
        from nopos.grading.judge import KernelTimeout

        code = ("import nopos.grading.transport as _nopos_transport\n"
                f"_nopos_reply = _nopos_transport.serve(get_ipython().user_ns, {name!r}, {request!r})")
        limit = self.timeout or 120
        left = self._judge_deadline - time.monotonic()  # one cell's time for all of a test's calls
        if left <= 0:
            raise KernelTimeout(f"the calls of your functions took more than this test's {limit} s")
        reply = self._silent(code, left, {"r": "_nopos_reply"}, alive=True)
        if reply is None:
            self._hung = True
            if not self._alive():
                raise KernelTimeout(f"{name} did not return: the kernel stopped while it ran "
                                    f"(os._exit, a crash, or more than the {self.memory_mb} MB memory limit)")
            raise KernelTimeout(f"{name} did not return within {limit} s")
        value = reply.get("user_expressions", {}).get("r", {})
        if reply.get("status") != "ok" or value.get("status") != "ok":
            why = reply.get("evalue") or value.get("evalue") or "no answer"
            raise RuntimeError(f"the kernel could not run the grader's call of {name}: {why}")
        return ast.literal_eval(value["data"]["text/plain"])

    def _bound_messages(self):
        """A kernel cannot make this process read a message of any size (zmq drops the peer)."""
        import zmq

        for channel, limit in ((self.kc.shell_channel, 96 << 20), (self.kc.iopub_channel, 64 << 20)):
            try:
                channel.socket.setsockopt(zmq.MAXMSGSIZE, limit)
            except Exception as error:  # pragma: no cover - a client without sockets
                self.log.warning("could not bound messages: %r", error)

    def _why_missing(self, upto):
        """Why a name may be undefined: an answer cell that failed, or that imports the reference."""
        for cell in self.nb.cells[:upto]:
            if not cell.metadata.get("nbgrader", {}).get("solution") or cell.cell_type != "code":
                continue
            if "nopos_reference" in cell.source:
                return (" (an answer cell imports from nopos_reference, the course's reference "
                        "answers: answers must be your own code, and grading cannot reach them)")
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                return f" (an answer cell raised {errors[0].get('ename')}: {str(errors[0].get('evalue'))[:120]})"
        return ""

    def _judge(self, cell, index):
        from nopos.grading import judge

        self._hung = False
        self._judge_deadline = time.monotonic() + (self.timeout or 120)
        passed, printed, message = judge.judge_test_cell(cell.source, self._ask, self._why_missing(index))
        cell.outputs = judge.cell_outputs(passed, printed, message)
        return passed

    def _timeout_reason(self):
        if time.monotonic() >= getattr(self, "_deadline", float("inf")) - 1:
            return (f"the cell ran past its limit and was stopped: the notebook used up its "
                    f"{self.notebook_timeout} s limit for the whole notebook")
        return f"the cell ran past its {self.timeout} s limit and was stopped"

    def _alive(self):
        from jupyter_core.utils import run_sync

        try:
            return run_sync(self.km.is_alive)()
        except Exception:
            return False

    def preprocess(self, nb, resources=None, km=None):
        from nbclient.client import NotebookClient
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        rejected = nb.metadata.get("nopos_grading", {}).get("rejected")
        if rejected:  # intake could not read the submission: every test says why
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = []
                    if cell.metadata.get("nbgrader", {}).get("grade"):
                        cell.outputs = [_error("SubmissionNotGraded", rejected)]
            return nb, resources

        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        start = time.monotonic()
        self._deadline = start + self.notebook_timeout
        meta = (resources or {}).get("metadata", {})
        self._notebook_path = os.path.join(meta.get("path", ""), (resources or {}).get(
            "unique_key", "notebook") + ".ipynb")
        self._output_used, self._output_noted = defaultdict(int), set()
        clean = []
        incidents = []  # what went wrong in earlier cells, told in the tests that fail after it
        try:
            with self.setup_kernel():
                self._bound_messages()
                info = self.wait_for_reply(self.kc.kernel_info())
                self.nb.metadata["language_info"] = info["content"]["language_info"]
                self._bound_messages()
                for index, cell in enumerate(self.nb.cells):
                    if cell.cell_type != "code" or not cell.source.strip():
                        continue
                    graded = cell.metadata.get("nbgrader", {}).get("grade")
                    if time.monotonic() - start > self.notebook_timeout:
                        cell.outputs = [_error("NotebookTimeLimit", (
                            f"not run: the notebook used up its {self.notebook_timeout} s limit "
                            f"for the whole notebook before this cell"))]
                        continue
                    if graded and not cell.metadata["nbgrader"].get("solution"):
                        # a test: judged here, never run in the kernel
                        if not self._judge(cell, index) and incidents:
                            error = cell.outputs[-1]
                            error["evalue"] += f" (earlier: {'; '.join(incidents[-2:])})"
                            error["traceback"] = [f"CheckFailed: {error['evalue']}"]
                        if self._hung:
                            incidents.append(f"a check's call in cell {index} did not return")
                            self._restart(clean)
                        continue
                    try:
                        self.preprocess_cell(cell, resources, index)
                    except CellTimeoutError:  # no output and no reply: treat as a hung kernel
                        cell.outputs.append(_error("CellTimeoutError", self._timeout_reason()))
                        incidents.append(f"cell {index} ran past its {self.timeout} s limit")
                        self._restart(clean)
                        continue
                    except DeadKernelError:
                        cell.outputs.append(_error("KernelDied", (
                            f"the kernel stopped while running this cell (os._exit, sys.exit in a "
                            f"thread, a crash such as a segfault, or more than the {self.memory_mb} MB "
                            f"memory limit); the notebook went on in a fresh kernel")))
                        incidents.append(f"cell {index} stopped the kernel")
                        self._restart(clean)
                        continue
                    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
                    if any(o.get("ename") == "CellTimeoutError" for o in errors):
                        for o in errors:
                            if o.get("ename") == "CellTimeoutError":
                                o["evalue"] = self._timeout_reason()
                                o["traceback"] = [f"CellTimeoutError: {o['evalue']}"]
                        incidents.append(f"cell {index} ran past its {self.timeout} s limit")
                        if not self._alive() or self._silent("", self.restart_grace) is None:
                            self._restart(clean)
                        continue
                    if not self._alive():
                        cell.outputs.append(_error("KernelDied", "the kernel stopped after this cell"))
                        incidents.append(f"cell {index} stopped the kernel")
                        self._restart(clean)
                        continue
                    if graded and errors and incidents:
                        for o in errors:
                            o["evalue"] = f"{o.get('evalue', '')} (earlier: {'; '.join(incidents[-2:])})"
                            o["traceback"] = list(o.get("traceback", [])) + [
                                f"Earlier in this notebook: {'; '.join(incidents[-2:])}"]
                    if graded and not self.stderr_fails_tests:
                        for o in cell.get("outputs", []):
                            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                                o["name"] = "stdout"
                    if not errors and not graded:
                        clean.append(cell)
                    elif errors and not graded:
                        incidents.append(f"cell {index} raised {errors[0].get('ename')}: "
                                         f"{str(errors[0].get('evalue', ''))[:80]}")
        finally:  # nothing of the notebook's outlives it: no process, no socket folder
            kill_cgroup(getattr(self, "_cgroup", None))
            shutil.rmtree(getattr(self, "_runtime", ""), ignore_errors=True)
        self.set_widgets_metadata()
        return self.nb, self.resources


def main(argv=None):
    from nopos.grading import sandbox_launcher

    return sandbox_launcher.main(argv)


if __name__ == "__main__":
    sys.exit(main())
