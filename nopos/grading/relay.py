"""A relay between the grader's kernel client and one kernel's sockets, which bounds
what one message from the kernel can make the grader hold.

libzmq assembles a whole multi-part message in the receiving process before the
application sees any of it, and it bounds each part (MAXMSGSIZE), never their
number: a kernel that wrote 12 parts of 90 MB to its shell socket made a grader
hold 1.1 GB before `wire.refusal` could count them. So the grader's client does
not connect to the kernel. It connects to this relay, which connects to the kernel
and copies bytes both ways, reading the kernel's side as ZMTP 3 as it passes: the
64-byte greeting, then per frame a flags byte and a 1- or 8-byte size. It keeps a
running total per message (each part's bytes plus a fixed charge for the part, so
a million empty parts count too). A message past the channel's bound, or with a
part past the part bound, is dropped, not the kernel: the relay ends what it
passed of it with a last part DROPPED and lets the rest go by, and the grader reads
a stand-in that says so (a correct notebook that shows a 12 MB figure loses only
the figure). What the relay cannot follow it cuts: bytes that are not ZMTP 3, a
command past the bound, or a kernel that ends the grader's connection on one
channel more than CONNECTIONS times (the client's own reconnections, such as the
heartbeat's after a late echo, do not count). Both connections close, no new one is taken, and `on_cut` is
told why (the grader ends the kernel; the cell says why, and a fresh kernel goes
on, as after `os._exit`).

The relay reads from one side only when what it read last has been written to the
other, so it holds one buffer per direction whatever is sent, and zmq's queue
limits (RCVHWM) still hold end to end: zmq holds at most (queued messages + 1) x
the channel's bound.

The kernel owns the folder its sockets are in, so it can put anything in a
socket's place: a link to another socket on the host (the grader would connect to
it, as root), or to this relay's own listener (a loop). The relay opens the
kernel's socket without following links, takes only a socket on the folder's own
file system, and connects through that open file (/proc/self/fd), so what it
checked is what it connects to.

Rejected: the receiving client in a child process with a hard memory limit. That
bounds memory too, but nbclient's channels live in the grader's process, so it
means running the executor, or a relay of decoded messages, out of process. This
is one thread per kernel and no change to the client. Its cost: every byte is
copied once through Python (a 96 MB reply takes about 0.1 s).
"""
import errno
import os
import selectors
import socket
import stat
import threading

GREETING = 64  # ZMTP 3: signature (10), version (2), mechanism (20), as-server (1), filler (31)
PART_CHARGE = 64  # what zmq keeps for each part besides its bytes (a zmq_msg_t)
CHUNK = 1 << 18
CONNECTIONS = 16  # per channel and kernel start: a kernel does not end the grader's connections
MORE, LONG, COMMAND = 1, 2, 4
LET_GO = 16  # a dropped message longer than 16 x its bound is cut: its reading is the grader's CPU
LET_GO_ALL = 64  # and dropped messages of more than 64 x the bound in all, on one channel
_OUT_OF = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}  # a listener that cannot accept
# the last part of a message the relay did not pass whole: the grader reads a stand-in
DROPPED = b"nopos-relay: the rest of this message was dropped"
_DROPPED_FRAME = bytes([0, len(DROPPED)]) + DROPPED


class Cut(Exception):
    """The kernel's connection must end: what it sent is not a zmq stream the relay can follow."""


class Frames:
    """The kernel's side of one connection, read as ZMTP 3 frames as it passes.
    `feed(bytes)` returns the bytes to pass on; it raises Cut when the connection
    must end. A message past the bound (`limit` for the whole, `part_limit` for a
    part) is not passed whole: what went on of it is ended with a last part DROPPED,
    and the rest of it is read and let go. A frame's header is held until it is whole,
    so it is judged before any of it goes on."""

    def __init__(self, limit, part_limit=None, dropped=None):
        self.limit, self.part_limit = limit, min(limit, part_limit or limit)
        # bytes let go on this channel by every connection of this kernel start (shared:
        # reconnecting starts no new count)
        self.dropped = dropped if dropped is not None else [0]
        self.state, self.need, self.head = "signature", 11, bytearray()
        self.flags = 0
        self.total = 0  # the message so far: its parts' bytes plus PART_CHARGE each
        self.dropping = False  # the rest of the current message is let go
        self.let_go = 0  # bytes of it let go so far

    def feed(self, data):
        view, at, out = memoryview(data), 0, []
        while at < len(view):
            take = min(self.need, len(view) - at)
            piece, at = view[at:at + take], at + take
            self.need -= take
            if self.state != "body":
                self.head += piece
            elif not self.dropping:
                out.append(piece)
            if self.need == 0:
                out.append(self._step())
        return b"".join(out)

    def _step(self):
        """The bytes a whole header (or greeting) lets go on, once judged."""
        head = bytes(self.head)
        if self.state == "signature":  # checked before the rest goes on: no other protocol
            if head[0] != 0xFF or head[9] & 1 != 1 or head[10] < 3:
                raise Cut("bytes that are not ZMTP 3 (a zmq socket's protocol)")
            self.head.clear()
            self.state, self.need = "greeting", GREETING - 11
            return head
        if self.state == "greeting":
            self.head.clear()
            self.state, self.need = "flags", 1
            return head
        if self.state == "flags":
            self.flags = head[0]
            if self.flags & ~(MORE | LONG | COMMAND) or self.flags & (MORE | COMMAND) == MORE | COMMAND:
                raise Cut("a frame with flags ZMTP 3 does not have")
            self.state, self.need = "size", 8 if self.flags & LONG else 1
            return b""  # the flags stay held with the size that follows
        if self.state == "size":
            self.head.clear()
            size = int.from_bytes(head[1:], "big")
            self.state, self.need = "body", size
            passed = self._judge(size, head)
            if size == 0:
                self._end_frame()
            return passed
        self._end_frame()  # a frame's body has passed
        return b""

    def _judge(self, size, header):
        if self.flags & COMMAND:
            if self.dropping or size > self.limit:
                raise Cut(f"a command of more than {_size(self.limit)}" if size > self.limit
                          else "a command inside a message")
            return header
        passed = b""
        if not self.dropping:
            self.total += size + PART_CHARGE
            if size <= self.part_limit and self.total <= self.limit:
                return header
            self.dropping, self.let_go = True, 0
            passed = _DROPPED_FRAME
        self.let_go += size + PART_CHARGE
        self.dropped[0] += size + PART_CHARGE
        if self.let_go > LET_GO * self.limit:
            raise Cut(f"a message of more than {LET_GO} x {_size(self.limit)}")
        if self.dropped[0] > LET_GO_ALL * self.limit:
            raise Cut(f"messages past the bound of more than {LET_GO_ALL} x {_size(self.limit)} in all")
        return passed

    def _end_frame(self):
        if not self.flags & (MORE | COMMAND):
            self.total, self.dropping = 0, False
        self.state, self.need = "flags", 1


def _size(n):
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{n} bytes"


class _Pair:
    """One connection of the client, and the relay's own connection to the kernel."""

    def __init__(self, client, kernel, channel, limits, dropped):
        self.client, self.kernel, self.channel = client, kernel, channel
        self.frames = Frames(*limits, dropped=dropped)
        self.to_client = self.to_kernel = b""
        self.registered = set()


class Relay:
    """The relay for one kernel start: `url(channel, kernel_url)` gives the address
    the client connects to instead; `close()` ends it. `cut` is None, or why the
    kernel's connections were cut."""

    def __init__(self, folder, limits, on_cut):
        os.mkdir(folder, 0o700)
        self.folder, self.limits, self.on_cut = folder, limits, on_cut
        self.cut = None
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._new = []  # listeners made by url(), registered by the relay's thread
        self._wake, self._woken = socket.socketpair()
        self._woken.setblocking(False)
        self._selector.register(self._woken, selectors.EVENT_READ, ("wake", None))
        self._pairs, self._listeners = [], []
        self._ended = {}  # channel -> connections the kernel's side ended
        self._dropped = {}  # channel -> [bytes of messages past the bound, let go]
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="nopos-relay", daemon=True)
        self._thread.start()

    def url(self, channel, kernel_url):
        """Listen for the client's connection on `channel`; the relay's address."""
        transport, _, path = kernel_url.partition("://")
        if transport != "ipc":
            raise ValueError(f"the relay follows ipc sockets only, not {kernel_url!r}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        mine = os.path.join(self.folder, channel)
        if os.path.exists(mine):
            os.unlink(mine)
        listener.bind(mine)
        listener.listen(4)
        listener.setblocking(False)
        folder = os.stat(os.path.dirname(path)).st_dev
        with self._lock:
            self._new.append((listener, channel, (path, folder)))
        self._wake.send(b"x")
        return f"ipc://{mine}"

    def close(self):
        self._closing = True
        try:
            self._wake.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout=5)
        for sock in [self._wake, self._woken, *self._listeners,
                     *(s for p in self._pairs for s in (p.client, p.kernel))]:
            sock.close()
        self._pairs, self._listeners = [], []
        self._selector.close()

    # -- the relay's thread
    def _loop(self):
        while not self._closing:
            for key, events in self._selector.select(timeout=1.0):
                kind, what = key.data
                try:
                    if kind == "wake":
                        self._take_new()
                    elif kind == "listen":
                        self._accept(key.fileobj, *what)
                    else:
                        self._move(what, key.fileobj, events)
                except Exception as error:  # noqa: BLE001 - one connection's end, never the relay's
                    if kind == "pair":
                        self._drop(what)
                    elif kind == "listen" and getattr(error, "errno", None) in _OUT_OF:
                        self._close_listener(key.fileobj)  # take none more rather than spin

    def _take_new(self):
        try:
            while self._woken.recv(64):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            new, self._new = self._new, []
        for listener, channel, path in new:
            self._listeners.append(listener)
            self._selector.register(listener, selectors.EVENT_READ, ("listen", (channel, path)))

    def _accept(self, listener, channel, where):
        client, _ = listener.accept()
        if self.cut is not None:
            client.close()
            return
        try:
            kernel = _connect(*where)
        except OSError:  # not listening yet: the client tries again
            client.close()
            return
        for sock in (client, kernel):
            sock.setblocking(False)
        pair = _Pair(client, kernel, channel, self.limits[channel], self._dropped.setdefault(channel, [0]))
        self._pairs.append(pair)
        self._interest(pair)

    def _move(self, pair, sock, events):
        if sock is pair.kernel:
            if events & selectors.EVENT_WRITE:
                pair.to_kernel = pair.to_kernel[sock.send(pair.to_kernel):]
            if events & selectors.EVENT_READ and not pair.to_client:
                data = sock.recv(CHUNK)
                if not data:  # the kernel's side ended it: the client will connect again
                    self._drop(pair)
                    self._ended[pair.channel] = self._ended.get(pair.channel, 0) + 1
                    if self._ended[pair.channel] >= CONNECTIONS:
                        self._cut(pair.channel, f"the end of its connection {CONNECTIONS} times")
                    return None
                try:
                    pair.to_client = pair.frames.feed(data)
                except Cut as why:
                    return self._cut(pair.channel, str(why))
        else:
            if events & selectors.EVENT_WRITE:
                pair.to_client = pair.to_client[sock.send(pair.to_client):]
            if events & selectors.EVENT_READ and not pair.to_kernel:
                data = sock.recv(CHUNK)
                if not data:
                    return self._drop(pair)
                pair.to_kernel = data
        self._interest(pair)

    def _interest(self, pair):
        """Read a side only when what was read from it has gone on; write when due."""
        for sock, held_from, held_for in ((pair.kernel, pair.to_client, pair.to_kernel),
                                          (pair.client, pair.to_kernel, pair.to_client)):
            events = (0 if held_from else selectors.EVENT_READ) | (selectors.EVENT_WRITE if held_for else 0)
            registered = sock in pair.registered
            if events and registered:
                self._selector.modify(sock, events, ("pair", pair))
            elif events:
                self._selector.register(sock, events, ("pair", pair))
                pair.registered.add(sock)
            elif registered:  # it waits for the other side to take what it sent
                self._selector.unregister(sock)
                pair.registered.discard(sock)

    def _close_listener(self, listener):
        if listener in self._listeners:
            self._listeners.remove(listener)
            self._selector.unregister(listener)
            listener.close()

    def _drop(self, pair):
        if pair in self._pairs:
            self._pairs.remove(pair)
            for sock in (pair.client, pair.kernel):
                if sock in pair.registered:
                    self._selector.unregister(sock)
                sock.close()
            pair.registered.clear()

    def _cut(self, channel, why):
        self.cut = f"{why} on its {channel} channel"
        for pair in list(self._pairs):
            self._drop(pair)
        for listener in list(self._listeners):
            self._close_listener(listener)
        try:
            self.on_cut(self.cut)
        except Exception:  # noqa: BLE001 - the grader's callback; the cut stands anyway
            pass


def _connect(path, device):
    """A connection to the kernel's socket at `path`: opened without following a
    link, a socket on its folder's file system (`device`), connected to through
    the open file, so that the kernel cannot swap it in between."""
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    try:
        found = os.fstat(fd)
        if not stat.S_ISSOCK(found.st_mode) or found.st_dev != device:
            raise OSError(f"{path} is not the kernel's socket")
        kernel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        kernel.setblocking(False)  # a full backlog fails now (EAGAIN) rather than block the relay
        try:
            kernel.connect(f"/proc/self/fd/{fd}")  # a Unix socket connects at once, or not at all
        except OSError:
            kernel.close()
            raise
        return kernel
    finally:
        os.close(fd)
