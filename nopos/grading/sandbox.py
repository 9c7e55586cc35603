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
import os
import re
import resource
import shutil
import signal
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
# What an output message may put into the notebook: every field output_from_msg keeps
_OUTPUT_FIELDS = ("name", "text", "data", "metadata", "ename", "evalue", "traceback", "execution_count")
# The kernel's messages the grader reads; comm messages (widgets) and every other type are
# never interpreted: grading needs none of them, and nbclient's handlers raise on malformed
# ones and keep their state outside every output bound
READ_MESSAGES = {"status", "execute_input", "stream", "display_data", "execute_result", "error",
                 "clear_output", "update_display_data"}


# what a new output costs the grader besides its fields (its dicts, in nbclient and in
# the notebook: about 1.5 KB measured), so that a flood of empty outputs is counted
OUTPUT_COST = 2048
# display ids: nbclient keeps each one (a key of its map) for the whole notebook, and an
# output with an id already shown makes it walk every earlier output with that id
DISPLAY_ID_CHARS, DISPLAY_IDS, OUTPUTS_PER_ID = 256, 1000, 64


def _size(content):
    """Bytes an output adds to the notebook as written (JSON, escapes included): every
    field it keeps, so that no part of a message (metadata, an error's text) is free.
    A lone surrogate (only a kernel's own packer sends one) is replaced by '?' in `content`,
    in place: the notebook is written as UTF-8, which has none, and would not be written."""
    import json

    total = 0
    for key in _OUTPUT_FIELDS:
        value = content.get(key)
        if value is not None:
            text = json.dumps(value, ensure_ascii=False, default=str)
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:
                data = text.encode("utf-8", "replace")
                content[key] = value = json.loads(data)
            total += len(data) + _indents(value)
    return total


# what str.splitlines splits on: nbformat writes a text as a list, one line an element
_BREAKS = dict.fromkeys(map(ord, "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"))


def _indents(value):
    """What nbformat's indented writing adds to a value's compact JSON: a line break and
    one space a level for each value inside (nested 400 deep, an output of 0.6 MB is
    written as 82 MB), and for each line of a text, which is written as a list of its
    lines (a text of 200 KB of "\\r" is written as 1.2 MB)."""
    extra, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            extra += (depth + 5) * (len(item) - len(item.translate(_BREAKS)))
        elif isinstance(item, dict):
            extra += (depth + 1) * (len(item) + 1)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            extra += (depth + 1) * (len(item) + 1)
            stack.extend((v, depth + 1) for v in item)
    return extra


def _note(text):
    from nbformat.v4 import new_output

    return new_output("stream", name="stdout", text=text + "\n")


def _kernel_threads():
    """The torch threads the kernel is told to use (nopos.grading.course sets them), at least 1."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(threads)) if threads.isdigit() else 1


SOCKETS_MB = 4  # what a kernel can write to the host through its socket folder (tmpfs quota)
KEEP_SECONDS = 30  # a test's keep for the hidden pass, at most (`_keep_for_hidden`)
_PACKED_REPR = re.compile(r"'[A-Za-z0-9+/=]*'")  # repr() of transport.pack's text
SHELL_MESSAGE_MB = 96  # a check's reply (64 MB of data, base64) and no more
IOPUB_MESSAGE_MB = 8  # one output message; a larger one is dropped (the cell's cap is 4 MB)
REFUSED_KEPT = 4  # refused replies told in one cell's note
QUEUED_MESSAGES = 16  # output messages waiting to be read: at most 16 x 10 MB queued
# Per channel, what the relay passes of one message (nopos/grading/relay.py: its parts'
# bytes plus a charge per part; a larger one is dropped, and the grader reads a stand-in
# that says so), of one part, and how many whole messages zmq may queue. zmq then holds
# at most (queued + 1) x a message of a channel, whatever the kernel sends, and the
# grader decodes one message at a time. The kernel sends only replies on shell and
# control, one per request, hence one queued.
CHANNELS = {  # channel: (one message, one part, queued), in bytes
    "shell": ((SHELL_MESSAGE_MB + 4) << 20, SHELL_MESSAGE_MB << 20, 1),
    "control": (1 << 20, 1 << 20, 1),
    "stdin": (1 << 20, 1 << 20, 4),
    "iopub": ((IOPUB_MESSAGE_MB + 2) << 20, IOPUB_MESSAGE_MB << 20, QUEUED_MESSAGES),
    "hb": (1 << 10, 1 << 10, 4),  # an echo of a few bytes
}


def _runtime_folder():
    """The grader's folder for one notebook's kernels, named after this process (0700,
    never in a kernel's view): the filtered package copies, the connection files and,
    per start, a fresh socket folder. Folders of graders that were killed before they
    could clean up are removed."""
    parent = os.environ.get("NOPOS_RUNTIME_DIR") or tempfile.gettempdir()
    for old in Path(parent).glob(f"{RUNTIME_PREFIX}*-*"):
        try:
            pid = int(old.name[len(RUNTIME_PREFIX):].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            release_runtime(old)
        except (ValueError, OSError):
            pass
    return tempfile.mkdtemp(prefix=f"{RUNTIME_PREFIX}{os.getpid()}-", dir=parent)


def release_runtime(folder):
    """Remove a runtime folder (or a folder of them): socket quotas unmounted first;
    nothing in it is followed (rmtree never follows links)."""
    import subprocess

    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
              if len(line.split()) > 1]
    inside = str(folder.resolve()) + os.sep
    for point in sorted((m for m in mounts if m.startswith(inside)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def _socket_folder(runtime, start):
    """A folder made now, for one kernel start only, where that kernel makes its sockets
    (the only place it shares with the grader); as root, a small tmpfs of its own, so
    that what the kernel writes there is bounded and never reaches the host's disk."""
    import subprocess

    folder = os.path.join(runtime, f"s{start}")
    os.mkdir(folder, 0o700)
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SOCKETS_MB}m,nr_inodes=256,mode=700,"
                        "nosuid,nodev,noexec", "nopos-sockets", folder], capture_output=True)
    return folder


def _drop_socket_folder(folder):
    import subprocess

    if folder and os.path.isdir(folder):
        if os.path.ismount(folder):
            subprocess.run(["umount", "-l", folder], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


try:
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.channels import AsyncZMQSocketChannel, HBChannel
    from traitlets import Type
except ImportError:  # pragma: no cover
    AsyncKernelClient = AsyncKernelManager = AsyncZMQSocketChannel = HBChannel = object

# What one message may make this process hold once decoded (nopos/grading/wire.py): a check's
# reply (64 MB of data, base64) on the shell channel; one output message on iopub (the cell's
# cap is 4 MB). JSON values: a reply has a handful, an output (a plotly figure) may have many.
SHELL_VALUES, IOPUB_VALUES = 20_000, 200_000


class _BoundedChannel(AsyncZMQSocketChannel):
    """A channel that measures each message as bytes and decodes only what is in bounds
    (nopos/grading/wire.py); a refused one is read as a small stand-in that says so."""

    channel, max_bytes, max_values = "shell", SHELL_MESSAGE_MB << 20, SHELL_VALUES

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.refused = []

    async def _recv(self, **kwargs):
        from nopos.grading import wire

        from nopos.grading.relay import DROPPED

        msg = await self.socket.recv_multipart(**kwargs)
        if msg and msg[-1] == DROPPED:  # the relay passed only the start of it
            whole, part, _ = CHANNELS[self.channel]
            why = (f"a message past the grader's bounds ({whole >> 20} MB a message, "
                   f"{part >> 20} MB a part)")
            try:
                _, frames = self.session.feed_identities(msg[:-1])
            except ValueError:
                frames = []
            self._refused(why)
            return wire.stand_in(frames, why, self.channel)
        _, frames = self.session.feed_identities(msg)
        del msg
        why = wire.refusal(frames, self.max_bytes, self.max_values)
        if why:
            self._refused(why)
            return wire.stand_in(frames, why, self.channel)
        return self.session.deserialize(frames)

    def _refused(self, why):
        """Kept for the cell's note: replies only (outputs say so in their own stand-in),
        a few at most (the kernel chooses how many messages it sends)."""
        if self.channel == "shell" and len(self.refused) < REFUSED_KEPT:
            self.refused.append(why)


class _IopubChannel(_BoundedChannel):
    channel, max_bytes, max_values = "iopub", IOPUB_MESSAGE_MB << 20, IOPUB_VALUES


class _StdinChannel(_BoundedChannel):
    channel = "stdin"


class _ControlChannel(_BoundedChannel):
    channel = "control"


class _Heartbeat(HBChannel):
    """The heartbeat's socket, made by the channel itself: bounded the same way (an echo
    of a few bytes is all it reads)."""

    def _create_socket(self):
        import zmq

        if self.socket is not None:
            self.poller.unregister(self.socket)
            self.socket.close()
        self.socket = self.context.socket(zmq.REQ)
        self.socket.linger = 1000
        _, part, queued = CHANNELS["hb"]
        self.socket.setsockopt(zmq.MAXMSGSIZE, part)
        self.socket.setsockopt(zmq.RCVHWM, queued)
        self.socket.connect(self.address)
        self.poller.register(self.socket, zmq.POLLIN)


class BoundedClient(AsyncKernelClient):
    """A kernel client whose sockets bound what the kernel can make this process hold:
    each frame's size and the number of messages queued (zmq applies both only to
    connections made after they are set, hence here, before connecting), each whole
    message's size on the wire (its kernel manager's relay, which it connects to instead
    of the kernel), and each message's size once decoded, judged before decoding (the
    channels above)."""

    shell_channel_class = Type(_BoundedChannel)
    iopub_channel_class = Type(_IopubChannel)
    stdin_channel_class = Type(_StdinChannel)
    control_channel_class = Type(_ControlChannel)
    hb_channel_class = Type(_Heartbeat)

    def _create_connected_socket(self, channel, identity=None):
        import zmq
        from jupyter_client.connect import channel_socket_types

        sock = self.context.socket(channel_socket_types[channel])
        sock.linger = 1000
        if identity:
            sock.identity = identity
        _, part, queued = CHANNELS[channel]
        sock.setsockopt(zmq.MAXMSGSIZE, part)  # the relay passes no larger part: a second guard
        sock.setsockopt(zmq.RCVHWM, queued)
        sock.connect(self._make_url(channel))
        return sock

    def _make_url(self, channel):
        url = super()._make_url(channel)
        relay = getattr(self.parent, "nopos_relay", None)
        return relay.url(channel, url) if relay is not None else url

    def refused_replies(self):
        """The replies refused since the last call (forgotten now); a refused output has
        already said so in the cell, as a note in its place."""
        channel = self._shell_channel
        found, channel.refused = (channel.refused, []) if channel is not None else ([], [])
        return found


class _KernelManager(AsyncKernelManager):
    """The grader's kernel manager, with no socket of its own to the kernel.
    jupyter_client's connects a control socket after each start, straight to the
    kernel's path: past the relay, through a link the kernel put in its socket's
    place (the grader connected, as root, to a socket on the host), with no bound on
    what it queues (1000 messages of any size, read by nobody). Nothing here needs
    it: interrupts are signals and a shutdown kills (`shutdown_kernel` "immediate")."""

    def _connect_control_socket(self):
        self._control_socket = None


def _error(ename, evalue):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class _Run:
    """One notebook's grading, as later cells need it: the cells that ran cleanly (replayed
    in a fresh kernel), the hidden checks to judge at the end, and what went wrong so far
    (told in the tests that fail after it)."""

    def __init__(self, execute, last_graded):
        self.execute, self.last_graded = execute, last_graded
        self.clean = []      # (index, cell)
        self.pending = []    # (index, test cell, printed, kept for its hidden checks)
        self.incidents = []  # sentences

    def recover(self, index, what):
        """After a crash or a hang: a fresh kernel and the clean cells again, unless no
        graded cell follows (then nothing is run again: every verdict stands)."""
        execute = self.execute
        self.incidents.append(what)
        if index >= self.last_graded:
            execute._stop_kernel()
            execute._no_kernel = f"{what}, after the last graded cell"
            return
        try:
            execute._restart([c for _, c in self.clean])
        except Exception as error:  # judged tests keep their verdicts; later ones say why
            execute.log.error("the kernel could not be restarted: %r", error)
            execute._stop_kernel()
            execute._no_kernel = f"the kernel could not be started again after {what}"


ROOT_UNCONTAINED = (
    "grading as root, but the sandbox would not contain the kernel (namespaces {why}): each "
    "learner's code would run as root on this machine's own disk, able to read the hidden "
    "tests and rewrite a classmate's notebook. `python -m nopos.grading.sandbox probe` says "
    "what is missing (unshare; in a container, CAP_SYS_ADMIN). Without root the kernel has the "
    "grading account's rights instead (docs/grading.md, without namespaces)")


def root_refusal(namespaces=True, drop_privileges=True, own_notebook=False):
    """None, or why this process must not start a learner's kernel: as root, a kernel runs
    only inside its namespaces and under a user id of its own (but for one's own notebook)."""
    from nopos.grading.sandbox_launcher import probed

    if os.geteuid() != 0 or own_notebook:
        return None
    why = ("switched off in the course's config" if not namespaces else
           "refused on this host" if not probed()["unshare"] else
           "used, but drop_privileges is off" if not drop_privileges else None)
    return ROOT_UNCONTAINED.format(why=why) if why else None


class RootUncontained(RuntimeError):
    """A kernel would run as root outside its sandbox: nothing is graded."""


def _peak_mb():
    """This process's peak resident memory: VmHWM, which an exec resets (ru_maxrss keeps the
    peak of the process that started nbgrader: the batch's)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) >> 10
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10


class SandboxedExecute(Execute):
    """nbgrader's Execute with a contained kernel and per-notebook resilience."""

    notebook_timeout = Integer(900, help="Seconds for the whole notebook; later cells are "
                               "not run once it is spent.").tag(config=True)
    memory_mb = Integer(4096, help="Memory of the kernel and its children (cgroup).").tag(config=True)
    address_space_mb = Integer(8192, help="Address space of each kernel process (rlimit).").tag(config=True)
    cpu_seconds = Integer(1200, help="CPU seconds of the kernel process (rlimit).").tag(config=True)
    max_procs = Integer(64, help="Processes and threads of the kernel's user (rlimit, cgroup).").tag(config=True)
    file_size_mb = Integer(256, help="Largest file the kernel may write (rlimit).").tag(config=True)
    open_files = Integer(1024, help="Open files of the kernel (rlimit).").tag(config=True)
    network = Bool(False, help="Allow the kernel network access.").tag(config=True)
    namespaces = Bool(True, help="Use unshare (mount, network, pid namespaces) when it works.").tag(config=True)
    drop_privileges = Bool(True, help="Run the kernel as an unprivileged user id of its own.").tag(config=True)
    own_notebook = Bool(False, help="A learner grading their own notebook on their own machine "
                        "(nopos.learner.selfgrade): as root, a kernel may then run outside "
                        "the namespaces. Never set for a class.").tag(config=True)
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

    def __init__(self, *args, **kwargs):
        # no control socket of its own (nbgrader's Execute names its class: hence here)
        kwargs.setdefault("kernel_manager_class", _KernelManager)
        super().__init__(*args, **kwargs)

    @default("store_widget_state")
    def _no_widgets(self):  # grading needs no widget: nothing of a comm is kept
        return False

    @default("shutdown_kernel")
    def _immediate(self):  # a polite shutdown waits 5 s; everything left is killed by cgroup
        return "immediate"

    def course_packages(self, notebook_path):
        """[(source folder, mount point)] of the packages the kernel grading
        `notebook_path` may import, read-only: copies made for its chapter, without
        the chapter's answers or the checks (nopos/grading/course_view.py), bound over the
        real packages wherever they live (the checkout, or the Python installation's
        site-packages). The one place to change what a chapter can reach.

        The copies are made once per notebook in the grader's own runtime folder, which
        no kernel sees or can write: every start mounts the same, untouched copies."""
        from nopos.grading import course_view

        if getattr(self, "_runtime", None) is None:  # asked before any kernel was made
            self._runtime = _runtime_folder()
        folder = os.path.join(self._runtime, "view")
        if getattr(self, "_packages", None) is None or not os.path.isdir(folder):
            os.mkdir(folder, 0o755)
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
        """A kernel manager for one start: a fresh cgroup, a fresh socket folder (the only
        place the kernel shares with the grader) and a connection file in the grader's
        runtime folder, out of the kernel's reach. A restart is a new start, so nothing
        an earlier kernel of the notebook did to its folders is reused."""
        from jupyter_client.kernelspec import KernelSpec

        from nopos.grading import relay

        refused = root_refusal(self.namespaces, self.drop_privileges, self.own_notebook)
        if refused:
            raise RootUncontained(refused)
        km = super().create_kernel_manager()
        if getattr(self, "_runtime", None) is None:
            self._runtime = _runtime_folder()
        self._starts = getattr(self, "_starts", 0) + 1
        self._sockets = _socket_folder(self._runtime, self._starts)
        self._cgroup = f"k{uuid.uuid4().hex[:12]}"
        km.transport = "ipc"  # sockets in a folder: works across network namespaces
        km.ip = os.path.join(self._sockets, "k")
        km.connection_file = os.path.join(self._runtime, f"kernel-{self._starts}.json")
        km.client_factory = BoundedClient
        if getattr(self, "_relay", None) is not None:
            self._relay.close()
        self._relay = km.nopos_relay = relay.Relay(
            os.path.join(self._runtime, f"r{self._starts}"),
            {channel: (whole, part) for channel, (whole, part, _) in CHANNELS.items()},
            lambda why, km=km: self._cut_kernel(why, km))
        settings = self.sandbox_settings(getattr(self, "_notebook_path", ""))
        settings["sockets"] = self._sockets
        km._kernel_spec = KernelSpec(argv=kernel_argv(settings), display_name="nopos sandbox",
                                     language="python", interrupt_mode="signal", metadata={})
        return km

    def _start_kernel(self):
        self.km = self.create_kernel_manager()
        self.start_new_kernel()
        self.start_new_kernel_client()
        self.wait_for_reply(self.kc.kernel_info())

    def _stop_kernel(self):
        """Stop the kernel and everything it started; its socket folder goes with it."""
        from jupyter_core.utils import run_sync

        km, kc, self.km, self.kc = getattr(self, "km", None), getattr(self, "kc", None), None, None
        steps = [kc.stop_channels] if kc is not None else []
        if km is not None:
            steps += [lambda: run_sync(km.shutdown_kernel)(now=True), run_sync(km.cleanup_resources)]
        for step in steps:
            try:
                step()
            except Exception as error:  # a kernel already gone
                self.log.debug("stopping the kernel: %r", error)
        kill_cgroup(getattr(self, "_cgroup", None))
        _drop_socket_folder(getattr(self, "_sockets", None))
        self._sockets = None
        if getattr(self, "_relay", None) is not None:
            self._relay.close()
            shutil.rmtree(self._relay.folder, ignore_errors=True)

    def _cut_kernel(self, why, km=None):
        """The relay cut the kernel's connections (it sent more than a channel's bound):
        end the kernel now, from the relay's thread; the grader sees it stopped. A cut
        from the relay of a kernel already replaced ends nothing (`km`: the cut relay's)."""
        if km is not None and km is not getattr(self, "km", None):
            return
        kill_cgroup(getattr(self, "_cgroup", None))
        process = getattr(getattr(getattr(self, "km", None), "provisioner", None), "process", None)
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass

    def _stopped(self, default):
        """Why the kernel stopped: the relay's cut, when it was that."""
        cut = getattr(getattr(self, "_relay", None), "cut", None)
        return f"the grader stopped the kernel: it sent {cut}" if cut else default

    # -- the kernel's messages: only outputs are read, each within the budgets
    def process_message(self, msg, cell, cell_index):
        """nbclient's handling of one iopub message, for the types grading reads only; a
        message it cannot handle costs a note in its cell, never the notebook."""
        from nbclient.exceptions import CellControlSignal, CellExecutionComplete

        content = msg.get("content")
        if msg.get("msg_type") not in READ_MESSAGES or not isinstance(content, dict):
            return None
        count = content.get("execution_count")
        if "execution_count" in content and not (type(count) is int and 0 <= count < 2 ** 31):
            msg = {**msg, "content": {**content, "execution_count": None}}
        self._message_cell, self._message_outputs = cell_index, cell.outputs
        try:
            return super().process_message(msg, cell, cell_index)
        except CellControlSignal:  # the cell's end
            raise
        except Exception as error:  # noqa: BLE001 - the kernel's message, not the grader's
            self.log.warning("a kernel message could not be handled: %r", error)
            self._note_dropped(cell.outputs, cell_index, "message", (
                f"[a message from the kernel could not be read ({type(error).__name__}); "
                f"it was dropped]"))
            if msg.get("msg_type") == "status" and content.get("execution_state") == "idle":
                raise CellExecutionComplete() from None  # the cell's end all the same
            return None

    def handle_comm_msg(self, outs, msg, cell_index):
        """Never called (process_message reads no comm message); kept inert all the same."""
        return None

    def set_widgets_metadata(self):  # no widget state is kept, none is written
        return None

    def _update_display_id(self, display_id, msg):
        """An output with a display id already shown rewrites every earlier output with that
        id, in any cell (nbclient): the rewrite is kept only if it fits the budgets of every
        cell it writes into and of the notebook, counted as new output is; otherwise no
        output changes, and the cell that sent it says so."""
        if display_id not in self._display_id_map:  # never kept (`_display_id`): nothing to rewrite
            return
        content = msg["content"]
        new = {"data": content.get("data", {}), "metadata": content.get("metadata", {})}
        if not isinstance(new["data"], dict) or not isinstance(new["metadata"], dict):
            raise TypeError("a display update whose data is not a mapping")
        size = _size(new)
        targets, growth = [], defaultdict(int)
        for index, positions in self._display_id_map.get(display_id, {}).items():
            outputs = self.nb.cells[index].get("outputs", [])
            for at in positions:
                if at < len(outputs) and outputs[at].get("output_type") in ("display_data", "execute_result"):
                    old = outputs[at]
                    targets.append((index, old))
                    growth[index] += size - self._measured(old, index)
        if not targets:
            return
        used, total = self._output_used, sum(growth.values())
        cell_limit, notebook_limit = self.cell_output_mb * 2 ** 20, self.notebook_output_mb * 2 ** 20
        over = next((i for i, g in growth.items() if used["cell", i] + g > cell_limit), None)
        if over is not None or used["notebook"] + total > notebook_limit:
            which, limit = ("notebook", self.notebook_output_mb) if over is None else ("cell", self.cell_output_mb)
            self._note_dropped(self._message_outputs, self._message_cell, "update", (
                f"[display update dropped: it would rewrite {len(targets)} earlier output(s) and "
                f"{'a cell' if over is not None else 'the notebook'} would keep more than the "
                f"{limit:g} MB kept for grading]"))
            return
        for index, g in growth.items():
            used["cell", index] += g
        used["notebook"] += total
        for index, old in targets:
            old["data"], old["metadata"] = new["data"], new["metadata"]
            self._sizes_in(index)[id(old)] = (old, size)

    def _sizes_in(self, cell_index):
        """{id(output): (output, its measured size)} of a cell's outputs (`_measured`)."""
        return self.__dict__.setdefault("_sizes", {}).setdefault(cell_index, {})

    def _measured(self, output, cell_index):
        """An output's size as `_size` counts its data and metadata, measured once (an update
        walks up to OUTPUTS_PER_ID outputs: each is not measured again at every update)."""
        sizes = self._sizes_in(cell_index)
        kept = sizes.get(id(output))
        if kept is None or kept[0] is not output:
            kept = sizes[id(output)] = (output, _size({"data": output.get("data"),
                                                              "metadata": output.get("metadata")}))
        return kept[1]

    # -- output kept: bounded per cell and per notebook, as it arrives
    def output(self, outs, msg, display_id, cell_index):
        if self.clear_before_next_output:  # a clear that waited for this output (a live plot):
            outs[:] = []                     # what it clears stops counting before this is measured
            self.clear_display_id_mapping(cell_index)
            self.clear_before_next_output = False
            self._cleared(cell_index)
        size = _size(msg.get("content", {})) + OUTPUT_COST  # (each message, a stream's too, is an output)
        display_id = self._display_id(display_id)
        used = self._output_used
        if used["cell", cell_index] + size > self.cell_output_mb * 2 ** 20:
            return self._drop_output(outs, cell_index, "cell", self.cell_output_mb)
        if used["notebook"] + size > self.notebook_output_mb * 2 ** 20:
            return self._drop_output(outs, cell_index, "notebook", self.notebook_output_mb)
        used["cell", cell_index] += size
        used["notebook"] += size
        return super().output(outs, msg, display_id, cell_index)

    def _display_id(self, display_id):
        """The id kept for an output, or None (the output is kept, as one that no update
        rewrites): a short string, among at most DISPLAY_IDS, on at most OUTPUTS_PER_ID
        outputs."""
        if not display_id:
            return None
        if not isinstance(display_id, str) or len(display_id) > DISPLAY_ID_CHARS:
            return None
        kept = self._display_id_map.get(display_id)
        if kept is None:
            return display_id if len(self._display_id_map) < DISPLAY_IDS else None
        return display_id if sum(map(len, kept.values())) < OUTPUTS_PER_ID else None

    def clear_output(self, outs, msg, cell_index):
        super().clear_output(outs, msg, cell_index)
        if not outs:  # what was cleared no longer counts
            self._cleared(cell_index)

    def _cleared(self, cell_index):
        """A cell's outputs were cleared: their bytes stop counting, and a note cleared with
        them is written again if the cell overflows again."""
        self._output_used["notebook"] -= self._output_used.pop(("cell", cell_index), 0)
        self._output_noted -= {("cell", cell_index), ("notebook", cell_index)}
        # the sizes measured for updates hold their outputs: cleared outputs must not stay
        # alive in it (a21v: 300 clears of an updated display held 1.1 GB); the other cells'
        # stay measured (a21w: forgetting them all made each update after a clear 67x dearer)
        self.__dict__.get("_sizes", {}).pop(cell_index, None)

    def _drop_output(self, outs, cell_index, which, limit):
        what = {"cell": "this cell", "notebook": "the notebook"}[which]
        self._note_dropped(outs, cell_index, which, f"[output cut: {what} printed more than the "
                                                     f"{limit:g} MB kept for grading (each output counts at "
                                                     f"least {OUTPUT_COST >> 10} KB); the rest was dropped]")
        return None

    def _note_dropped(self, outs, cell_index, which, text):
        """One note a cell for each kind of output dropped (outside the budgets it noted)."""
        if (which, cell_index) not in self._output_noted and outs is not None:
            self._output_noted.add((which, cell_index))
            outs.append(_note(text))

    # -- helpers running code the learner does not see
    def _silent(self, code, timeout, expressions=None, alive=False):
        """Run code the learner does not see; the shell reply's content, or None.
        With `alive`, give up as soon as the kernel has died (os._exit in a call)."""
        from jupyter_core.utils import run_sync

        async def go():
            msg_id = self.kc.execute(code, silent=True, store_history=False,
                                     user_expressions=expressions or {})
            deadline = time.monotonic() + timeout
            checked = time.monotonic()
            while time.monotonic() < deadline:
                await drain()
                try:
                    msg = await self.kc.get_shell_msg(timeout=max(0.05, min(0.2, deadline - time.monotonic())))
                except Exception:
                    if alive and time.monotonic() - checked > 2:
                        checked = time.monotonic()
                        if not await self.km.is_alive():
                            return None
                    continue
                if msg["parent_header"].get("msg_id") == msg_id:
                    await drain()
                    return msg["content"]
            return None

        async def drain():
            """What the code prints is nobody's output: read and dropped as it comes, so it
            waits neither in this process nor in the kernel (whose memory it would fill)."""
            for _ in range(256):
                try:
                    await self.kc.get_iopub_msg(timeout=0)
                except Exception:
                    return

        t0 = time.monotonic()
        try:
            return run_sync(go)()
        except Exception as error:
            self.log.warning("silent run failed: %r", error)
            return None
        finally:  # a refused reply here is told by the caller (an error named MessageTooLarge)
            if self.kc is not None:
                self.kc.refused_replies()
            self.log.debug("silent run of %d chars took %.1f s", len(code), time.monotonic() - t0)

    def _restart(self, replay):
        """A fresh kernel (a new start: fresh cgroup, socket folder and connection file;
        every process of the old one is killed first), then the cells that had run
        cleanly, within what is left of the notebook's time."""
        self.log.warning("restarting the kernel and replaying %d cells", len(replay))
        self._stop_kernel()
        self._start_kernel()
        self._replay(replay)

    def _replay(self, cells):
        for cell in cells:
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

        # in place: the notebook's names; in the hidden pass: the copies kept at the test's
        # place, called under the process-wide state it had (transport.keep)
        where = ("get_ipython().user_ns" if self._place is None else
                 f"_nopos_transport.SNAPSHOTS[{self._place}]")
        state = "None" if self._place is None else f"_nopos_transport.PLACES[{self._place}]"
        # the state is set around serve(), not passed to it: a notebook that replaced serve
        # (tests/hostile/fakes.py) loses only what its forgery lies about
        code = ("import nopos.grading.transport as _nopos_transport\n"
                f"with _nopos_transport.under({state}):\n"
                f"    _nopos_reply = _nopos_transport.serve({where}, {name!r}, {request!r})")
        limit = self.timeout or 120
        left = self._judge_deadline - time.monotonic()  # one cell's time for all of a test's calls
        if left <= 0:
            raise KernelTimeout(f"the calls of your functions took more than this test's {limit} s")
        if self.kc is None:
            raise KernelTimeout(f"{name} could not be called: no kernel ({self._no_kernel})")
        reply = self._silent(code, left, {"r": "_nopos_reply"}, alive=True)
        if reply is None:
            self._hung = True
            if not self._alive():
                died = (f"the kernel stopped while it ran (os._exit, a crash, or more than the "
                        f"{self.memory_mb} MB memory limit)")
                # in place, why the grader stopped it; never in the hidden pass (in the same
                # kernel or a replayed one), where which of the relay's reasons and channels
                # it was could be chosen by a hidden input
                raise KernelTimeout(f"{name} did not return: "
                                    + (died if self._hidden else self._stopped(died)))
            raise KernelTimeout(f"{name} did not return within {limit} s")
        value = reply.get("user_expressions", {}).get("r", {})
        if reply.get("status") != "ok" or value.get("status") != "ok":
            # only the error's type: its text is the kernel's and may quote the grader's
            # call (the code above, the packed arguments of a hidden check)
            # (and in the hidden pass not even that: a class the learner made could be named
            # after a hidden input)
            ename = str(reply.get("ename") or value.get("ename") or "no answer")
            ename = ename if ename.isidentifier() and len(ename) < 60 and not self._hidden else "an error"
            raise self._no_answer(f"the kernel could not run the grader's call of {name} ({ename})")
        text = value.get("data", {}).get("text/plain", "")
        # serve() answers with a base64 string, so its repr is one quoted run of base64
        # characters; anything else is read as nothing (never parsed: a text the kernel
        # built could expand to gigabytes of objects in this process before any bound)
        if not isinstance(text, str) or len(text) > (SHELL_MESSAGE_MB << 20) \
                or not _PACKED_REPR.fullmatch(text):
            raise self._no_answer(f"the kernel's answer for {name} was not readable")
        return text[1:-1]

    def _no_answer(self, why):
        """A call that got no answer. In the hidden pass, the judge's one sentence for every
        kind of it (a RuntimeError would reach a check as the learner's own error, and the
        check's wording for that is one more outcome a hidden input could pick: review a21v)."""
        from nopos.grading.judge import KernelTimeout

        return KernelTimeout(why) if self._hidden else RuntimeError(why)

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

    def _judge(self, cell, index, hidden=False, printed=""):
        """The verdict of a test cell's visible checks (in place) or hidden ones (in the
        hidden pass); sets the cell's outputs and returns whether it passed."""
        from nopos.grading import judge

        self._hung, self._hidden = False, hidden
        self._judge_deadline = time.monotonic() + (self.timeout or 120)
        if hidden:  # and within the hidden pass's own budget (review a21y: past it, the
            # whole notebook's wall limit was a notebook-wide outcome a hidden call could pick)
            self._judge_deadline = min(self._judge_deadline, self._deadline)
        try:
            passed, out, message = judge.judge_test_cell(cell.source, self._ask, self._why_missing(index),
                                                         part="hidden" if hidden else "visible")
        finally:
            self._hidden = False
        cell.outputs = judge.cell_outputs(passed, printed + out, message)
        return passed

    def _keep_for_hidden(self, cell, index):
        """At a test's place, keep in the kernel the objects its hidden checks name, for
        the hidden pass after the last cell; returns the kernel start they were kept in
        (None when the kernel could not keep them: the hidden pass then replays)."""
        from nopos.grading import judge

        code = ("import nopos.grading.transport as _nopos_transport\n"
                f"_nopos_transport.keep({index}, get_ipython().user_ns, {judge.hidden_names(cell.source)!r})")
        if self.kc is None:
            return None
        reply = self._silent(code, min(KEEP_SECONDS, self.timeout or 120), alive=True)
        if reply is None:  # the kernel died or hangs: recovered as after a hung call
            self._hung = True
        return self._starts if reply is not None and reply.get("status") == "ok" else None

    def _judge_hidden(self, pending, clean):
        """The hidden checks, after the last cell, in the same kernel: each test's calls go
        to the objects kept at its place (`_keep_for_hidden`). No learner cell runs after
        a hidden call, what the kernel prints meanwhile is dropped, and the kernel and its
        files go when the notebook ends, so what a learner's function records of its
        arguments reaches nobody (docs/grading.md).

        A test whose kernel is gone (restarted after the test, or died in this pass) is
        judged in a fresh kernel that replays the cells that had run cleanly before it,
        its output dropped: the old cost, paid only then. A call that hangs fails its
        test, as in place; the tests after it are replayed."""
        replay = []
        self._deadline = time.monotonic() + self.notebook_timeout  # the pass's own budget
        for index, cell, printed, start in pending:
            if self.kc is None or start is None or start != self._starts:
                replay.append((index, cell, printed))
                continue
            self._place = index
            try:
                self._judge_hidden_cell(cell, index, printed)
            finally:
                self._place = None
            if self._hung:  # dead or hung: nothing more of this kernel is trusted to answer
                died = not self._alive()
                self._stop_kernel()
                if died:  # perhaps a thread of a later cell, not this call: judged again, replayed
                    replay.append((index, cell, printed))
        if replay:
            self._judge_replayed(replay, clean)
        self._stop_kernel()

    def _judge_replayed(self, pending, clean):
        self._stop_kernel()
        replayed, fresh = 0, True
        for index, cell, printed in pending:
            if fresh or self._hung:
                self._stop_kernel()
                try:
                    self._start_kernel()
                except Exception as error:  # the machine, not the learner: say so
                    self.log.error("no kernel for the hidden checks: %r", error)
                    self._no_kernel = "the grading kernel did not start; tell your instructor"
                replayed, fresh = 0, False
            if self.kc is not None:
                self._replay([c for i, c in clean[replayed:] if i < index])
                replayed = sum(1 for i, _ in clean if i < index)
            self._judge_hidden_cell(cell, index, printed)

    def _judge_hidden_cell(self, cell, index, printed):
        from nopos.grading import judge

        if not self._judge(cell, index, hidden=True, printed=printed):
            error = cell.outputs[-1]
            error["evalue"] = judge.HIDDEN_PREFIX + error["evalue"]
            error["traceback"] = [f"CheckFailed: {error['evalue']}"]

    @staticmethod
    def _is_test(cell):
        meta = cell.metadata.get("nbgrader", {})
        return bool(meta.get("grade") and not meta.get("solution"))

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
        """Run the notebook's cells in order; a test cell is judged, never run in the kernel.

        What can go wrong in a cell (a hang, a dead kernel, a refused reply, an error) is
        handled where that cell is run (_run_code_cell, _run_test_cell); what it means for
        later cells is in _Run: the incidents their failing tests mention, the clean cells
        a fresh kernel replays, the hidden checks judged at the end."""
        rejected = nb.metadata.get("nopos_grading", {}).get("rejected")
        if rejected:  # intake could not read the submission: every test says why
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = []
                    if cell.metadata.get("nbgrader", {}).get("grade"):
                        cell.outputs = [_error("SubmissionNotGraded", rejected)]
            return nb, resources

        from nbclient.client import NotebookClient

        NotebookClient.__init__(self, nb, km)
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        self._deadline = time.monotonic() + self.notebook_timeout
        meta = (resources or {}).get("metadata", {})
        self._notebook_path = os.path.join(meta.get("path", ""), (resources or {}).get(
            "unique_key", "notebook") + ".ipynb")
        self._output_used, self._output_noted = defaultdict(int), set()
        self._sizes = {}  # cell -> {id(output): (output, its measured size)}: `_measured`
        self._runtime = self._packages = self._place = None
        self._hidden = False  # judging a hidden check: no text the kernel chose goes out
        self._no_kernel = ""
        codes = [i for i, c in enumerate(self.nb.cells) if c.cell_type == "code" and c.source.strip()]
        run = _Run(self, last_graded=max(
            [i for i in codes if self.nb.cells[i].metadata.get("nbgrader", {}).get("grade")], default=-1))
        try:
            self._start_kernel()
            self.nb.metadata["language_info"] = self.wait_for_reply(
                self.kc.kernel_info())["content"]["language_info"]
            for index in codes:
                cell = self.nb.cells[index]
                graded = cell.metadata.get("nbgrader", {}).get("grade")
                if time.monotonic() > self._deadline:
                    cell.outputs = [_error("NotebookTimeLimit", (
                        f"not run: the notebook used up its {self.notebook_timeout} s limit "
                        f"for the whole notebook before this cell"))]
                elif self._is_test(cell):
                    self._run_test_cell(cell, index, run)
                elif self.kc is None:
                    cell.outputs = [_note(f"[not run: {self._no_kernel}]")] if not graded else [
                        _error("KernelDied", f"not run: {self._no_kernel}")]
                else:
                    self._run_code_cell(cell, index, run, resources, graded)
            if run.pending:
                self._judge_hidden(run.pending, run.clean)
        finally:  # nothing of the notebook's outlives it: no process, no socket folder
            self._stop_kernel()
            release_runtime(self._runtime)
            self.log.info("nopos: grader peak memory %d MB", _peak_mb())
        return self.nb, self.resources

    def _run_test_cell(self, cell, index, run):
        """Judge a test cell here, out of the kernel; keep what its hidden checks need."""
        from nopos.grading import judge

        if self._judge(cell, index):
            if judge.has_hidden(cell.source):
                printed = "".join(o.get("text", "") for o in cell.outputs
                                  if o.get("output_type") == "stream")
                run.pending.append((index, cell, printed,
                                    None if self._hung else self._keep_for_hidden(cell, index)))
        elif run.incidents:
            error = cell.outputs[-1]
            error["evalue"] += f" (earlier: {'; '.join(run.incidents[-2:])})"
            error["traceback"] = [f"CheckFailed: {error['evalue']}"]
        if self._hung:
            run.recover(index, f"a check's call in cell {index} did not return")

    def _run_code_cell(self, cell, index, run, resources, graded):
        """Run a cell in the kernel; a hang or a dead kernel costs that cell and starts a
        fresh kernel for the rest; an error is told in the later tests that fail."""
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        from nopos.grading import wire

        try:
            self.preprocess_cell(cell, resources, index)
        except CellTimeoutError:  # no output and no reply: treat as a hung kernel
            cell.outputs.append(_error("CellTimeoutError", self._timeout_reason()))
            return run.recover(index, f"cell {index} ran past its {self.timeout} s limit")
        except DeadKernelError:
            cell.outputs.append(_error("KernelDied", (
                self._stopped(f"the kernel stopped while running this cell (os._exit, sys.exit "
                              f"in a thread, a crash such as a segfault, or more than the "
                              f"{self.memory_mb} MB memory limit)") + ("; the notebook went on in a fresh kernel" if index < run.last_graded
                                    else "; no graded cell follows: every verdict stands"))))
            return run.recover(index, f"cell {index} stopped the kernel")
        except Exception as error:  # noqa: BLE001 - whatever the kernel sent: this cell alone is lost
            self.log.error("cell %d could not be followed: %r", index, error)
            cell.outputs.append(_error("GraderError", (
                f"the grader could not follow this cell ({type(error).__name__}); the notebook "
                f"went on in a fresh kernel")))
            return run.recover(index, f"the grader could not follow cell {index}")
        for why in self.kc.refused_replies() if self.kc is not None else []:
            cell.outputs.append(_error(wire.REFUSED, f"this cell's reply was not read: the "
                                       f"kernel sent {why}"))
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if any(o.get("ename") == "CellTimeoutError" for o in errors):
            for o in errors:
                if o.get("ename") == "CellTimeoutError":
                    o["evalue"] = self._timeout_reason()
                    o["traceback"] = [f"CellTimeoutError: {o['evalue']}"]
            if not self._alive() or self._silent("", self.restart_grace) is None:
                run.recover(index, f"cell {index} ran past its {self.timeout} s limit")
            else:  # it stopped when interrupted: the kernel goes on
                run.incidents.append(f"cell {index} ran past its {self.timeout} s limit")
            return
        if not self._alive():
            cell.outputs.append(_error("KernelDied", self._stopped("the kernel stopped after this cell")))
            return run.recover(index, f"cell {index} stopped the kernel")
        if graded and errors and run.incidents:
            for o in errors:
                o["evalue"] = f"{o.get('evalue', '')} (earlier: {'; '.join(run.incidents[-2:])})"
                o["traceback"] = list(o.get("traceback", [])) + [
                    f"Earlier in this notebook: {'; '.join(run.incidents[-2:])}"]
        if graded and not self.stderr_fails_tests:
            for o in cell.get("outputs", []):
                if o.get("output_type") == "stream" and o.get("name") == "stderr":
                    o["name"] = "stdout"
        if not errors and not graded:
            run.clean.append((index, cell))
        elif errors and not graded:
            run.incidents.append(f"cell {index} raised {errors[0].get('ename')}: "
                                 f"{str(errors[0].get('evalue', ''))[:80]}")


def main(argv=None):
    from nopos.grading import sandbox_launcher

    return sandbox_launcher.main(argv)


if __name__ == "__main__":
    sys.exit(main())
