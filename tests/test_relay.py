"""The relay between the grader's client and a kernel (nopos/grading/relay.py): what
one message can make the grader hold is bounded on the wire, before libzmq assembles
it. The attack end to end (a kernel writing one message of 12 x 90 MB to its shell
socket) is an opt-in hostile case: NOPOS_HOSTILE=shell_parts,iopub_parts."""
import os
import socket
import threading
import time

import pytest

from nopos.grading.relay import DROPPED, PART_CHARGE, Cut, Frames, Relay

zmq = pytest.importorskip("zmq")

GREETING = b"\xff" + bytes(8) + b"\x7f" + bytes([3, 1]) + b"NULL".ljust(20, b"\0") + b"\0" + bytes(31)


def frame(body, more=False, command=False):
    flags = (1 if more else 0) | (4 if command else 0) | (2 if len(body) > 255 else 0)
    size = len(body).to_bytes(8 if len(body) > 255 else 1, "big")
    return bytes([flags]) + size + body


def message(*parts):
    return b"".join(frame(p, more=i < len(parts) - 1) for i, p in enumerate(parts))


READY = frame(b"\x05READY\x0bSocket-Type\x00\x00\x00\x06ROUTER", command=True)


def feed(data, limit, part=None, step=None):
    """What the relay passes of `data`, fed at once or `step` bytes at a time, and why
    it cut the connection (or None)."""
    frames, passed = Frames(limit, part), []
    try:
        for at in range(0, len(data), step or len(data) or 1):
            passed.append(frames.feed(data[at:at + (step or len(data))]))
    except Cut as why:
        return b"".join(passed), str(why)
    return b"".join(passed), None


def messages(stream):
    """The messages (lists of parts) in a ZMTP 3 stream, commands left out."""
    at, found, parts = len(GREETING), [], []
    while at < len(stream):
        flags = stream[at]
        width = 8 if flags & 2 else 1
        size = int.from_bytes(stream[at + 1:at + 1 + width], "big")
        body = stream[at + 1 + width:at + 1 + width + size]
        at += 1 + width + size
        if flags & 4:
            continue
        parts.append(body)
        if not flags & 1:
            found.append(parts)
            parts = []
    return found


@pytest.mark.parametrize("step", [None, 1, 7])
def test_messages_within_the_bound_pass_unchanged_however_the_bytes_arrive(step):
    stream = GREETING + READY + message(b"id", b"<IDS|MSG>", b"x" * 300, b"{}") + message(b"y" * 900)
    assert feed(stream, 1500, step=step) == (stream, None)


def test_each_message_is_counted_afresh():
    stream = GREETING + READY + b"".join(message(b"a" * 700, b"b" * 700) for _ in range(50))
    assert feed(stream, 2 * (700 + PART_CHARGE)) == (stream, None)


@pytest.mark.parametrize("step", [None, 1, 1000])
def test_a_message_past_the_bound_is_dropped_and_the_next_one_passes(step):
    stream = GREETING + READY + message(*[b"a" * 1000] * 12) + message(b"next", b"one")
    passed, cut = feed(stream, 5000, step=step)
    assert cut is None
    assert messages(passed) == [[b"a" * 1000] * 4 + [DROPPED], [b"next", b"one"]]


def test_a_part_past_the_part_bound_is_dropped():
    passed, _ = feed(GREETING + message(b"head", b"p" * 2000, b"tail") + message(b"ok"), 1 << 20, part=1000)
    assert messages(passed) == [[b"head", DROPPED], [b"ok"]]


def test_many_empty_parts_count():
    passed, _ = feed(GREETING + message(*[b""] * 1000), 10_000)
    assert messages(passed) == [[b""] * (10_000 // PART_CHARGE) + [DROPPED]]


def test_a_part_announcing_more_than_the_bound_goes_no_further_than_its_header():
    head = bytes([2]) + (1 << 30).to_bytes(8, "big")  # a 1 GB part: the grader sees none of it
    passed, cut = feed(GREETING + head + bytes(100_000), 96 << 20)
    assert cut is None and messages(passed) == [[DROPPED]] and len(passed) < 200


def test_a_message_too_long_to_let_go_is_cut():
    """Reading a dropped message is the grader's CPU, not the kernel's: past 16 x the
    bound (no genuine message comes near), the kernel is cut instead."""
    head = bytes([2]) + (10 << 30).to_bytes(8, "big")
    assert feed(GREETING + head, 96 << 20)[1] == "a message of more than 16 x 96 MB"
    parts = GREETING + b"".join(frame(bytes(1000), more=True) for _ in range(300))
    assert feed(parts, 10_000)[1] == "a message of more than 16 x 10000 bytes"


@pytest.mark.parametrize("stream", [
    b"GET / HTTP/1.1\r\n",                      # not zmq at all
    b"\xff" + bytes(8) + b"\x7f\x01\x05",       # ZMTP 2's greeting
    b"\x01\x00",                                 # ZMTP 1.0: a bare frame
], ids=["http", "zmtp2", "zmtp1"])
def test_anything_but_zmtp3_is_cut_within_its_first_bytes(stream):
    passed, cut = feed(stream.ljust(11, b"\0"), 1 << 20)
    assert passed == b"" and "not ZMTP 3" in cut


@pytest.mark.parametrize("bad", [bytes([0x08, 1, 0]), bytes([0x05, 1, 0])], ids=["reserved", "command_in_parts"])
def test_frames_zmtp3_does_not_have_are_cut(bad):
    passed, cut = feed(GREETING + bad, 1 << 20)
    assert bad[:1] not in passed[len(GREETING):] and "flags" in cut


def test_a_command_past_the_bound_or_inside_a_dropped_message_is_cut():
    assert feed(GREETING + frame(b"\x05READY" + b"p" * 2000, command=True), 1000)[1] == \
        "a command of more than 1000 bytes"
    dropped = frame(b"a" * 2000, more=True) + frame(b"\x04PING", command=True)
    assert feed(GREETING + dropped, 1000)[1] == "a command inside a message"


# -- the relay itself, with real zmq sockets on Unix sockets, as the grader's client uses it
@pytest.fixture
def relay(tmp_path):
    cuts = []
    relay = Relay(str(tmp_path / "relay"), {"shell": (4 << 20, 4 << 20), "iopub": (1 << 20, 1 << 20)},
                  cuts.append)
    relay.cuts = cuts
    yield relay
    relay.close()
    assert not relay._thread.is_alive()


def test_a_message_past_the_bound_reaches_the_grader_as_its_start_and_a_marker(relay, tmp_path):
    ctx = zmq.Context()
    kernel = ctx.socket(zmq.ROUTER)
    kernel.bind(f"ipc://{tmp_path}/k-1")
    client = ctx.socket(zmq.DEALER)
    client.connect(relay.url("shell", f"ipc://{tmp_path}/k-1"))
    kernel.RCVTIMEO = client.RCVTIMEO = 10_000  # a failure, never a hang
    try:
        client.send_multipart([b"request", b"r" * (3 << 20)])
        ident, *parts = kernel.recv_multipart()
        assert [len(p) for p in parts] == [7, 3 << 20]
        kernel.send_multipart([ident, b"reply", b"a" * (3 << 20)])
        assert [len(p) for p in client.recv_multipart()] == [5, 3 << 20]
        kernel.send_multipart([ident, b"big"] + [b"b" * (1 << 20)] * 6)  # 6 MB in one message
        got = client.recv_multipart()
        assert got[0] == b"big" and got[-1] == DROPPED and sum(map(len, got)) < 4 << 20
        kernel.send_multipart([ident, b"after"])  # the kernel goes on, and so does its channel
        assert client.recv_multipart() == [b"after"]
        assert relay.cut is None and relay.cuts == []
    finally:
        client.close(0)
        kernel.close(0)
        ctx.term()


def _raw_kernel(path, total, sent):
    """A 'kernel' on a bare Unix socket: a greeting, then one message of `total` bytes
    in parts of 1 MB from one small buffer (it costs itself nothing), then b"end"."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        part = frame(bytes(1 << 20), more=True)
        try:
            conn.sendall(GREETING + READY)
            while sent[0] < total:
                conn.sendall(part)
                sent[0] += len(part)
            conn.sendall(frame(b"") + message(b"end"))
        except OSError:
            pass
        time.sleep(0.5)
        conn.close()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def _drain(sock, seconds):
    got, end = 0, time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < end:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        except OSError:
            break
        if not data:
            break
        got += len(data)
    return got


def test_what_reaches_the_grader_of_a_huge_message_is_at_most_the_bound(relay, tmp_path):
    sent = [0]
    thread = _raw_kernel(str(tmp_path / "k-2"), 12 << 20, sent)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(relay.url("iopub", f"ipc://{tmp_path}/k-2")[len("ipc://"):])
    got = bytearray()
    client.settimeout(5)
    while not got.endswith(message(b"end")):
        data = client.recv(1 << 20)
        assert data, "the relay closed the connection"
        got += data
    thread.join(5)
    assert sent[0] >= 12 << 20 and relay.cut is None  # read to its end, not cut
    assert messages(bytes(got)) == [[DROPPED], [b"end"]]  # of a 12 MB message, only its end
    client.close()


def test_the_relay_holds_one_buffer_when_the_grader_does_not_read(tmp_path):
    cuts = []
    relay = Relay(str(tmp_path / "relay"), {"shell": (1 << 40, 1 << 40)}, cuts.append)  # only pace
    sent = [0]
    thread = _raw_kernel(str(tmp_path / "k-3"), 1 << 30, sent)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(relay.url("shell", f"ipc://{tmp_path}/k-3")[len("ipc://"):])
    try:
        time.sleep(1.0)  # the client reads nothing: the kernel must wait, not the relay fill
        assert sent[0] < 32 << 20, f"the kernel sent {sent[0] >> 20} MB to a grader that reads nothing"
        assert _drain(client, 0.5) > 0  # and it moves again once the grader reads
        assert not cuts
    finally:
        client.close()
        relay.close()
        thread.join(5)


def test_a_link_in_place_of_the_kernels_socket_is_not_followed(relay, tmp_path):
    """The kernel owns its socket folder: a link there to another socket on the host
    (here one outside the folder) must not make the grader connect to it."""
    folder = tmp_path / "kernel"
    folder.mkdir()
    host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    host.bind(str(tmp_path / "host.sock"))
    host.listen(4)
    host.settimeout(1.0)
    (folder / "k-1").symlink_to(tmp_path / "host.sock")
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(relay.url("shell", f"ipc://{folder}/k-1")[len("ipc://"):])
    with pytest.raises(socket.timeout):
        host.accept()
    host.close()
    client.close()


def test_a_kernel_that_keeps_dropping_the_grader_is_cut(relay, tmp_path):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "k-1"))
    server.listen(64)
    stop = threading.Event()

    def drop_every_connection():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                pass

    thread = threading.Thread(target=drop_every_connection, daemon=True)
    thread.start()
    ctx = zmq.Context()
    client = ctx.socket(zmq.DEALER)
    client.setsockopt(zmq.RECONNECT_IVL, 10)
    client.connect(relay.url("shell", f"ipc://{tmp_path}/k-1"))
    try:
        deadline = time.monotonic() + 10
        while relay.cut is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relay.cut == "the end of its connection 16 times on its shell channel"
    finally:
        stop.set()
        client.close(0)
        ctx.term()
        thread.join(5)
        server.close()


def test_the_graders_own_reconnections_do_not_count(relay, tmp_path):
    """jupyter_client's heartbeat makes a new socket after a late echo: the client ends
    those connections, not the kernel, and a slow machine must not cost the kernel."""
    kernel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    kernel.bind(str(tmp_path / "k-1"))
    kernel.listen(64)
    url = relay.url("shell", f"ipc://{tmp_path}/k-1")[len("ipc://"):]
    for _ in range(20):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(url)
        time.sleep(0.02)
        client.close()
    time.sleep(0.3)
    assert relay.cut is None
    kernel.close()


def test_refused_messages_are_kept_for_a_note_only_on_shell_and_only_a_few():
    """A kernel chooses how many messages it sends (a forged marker costs it 60 bytes):
    what the grader keeps of them must not grow with their number."""
    from nopos.grading import sandbox

    for kind, kept in ((sandbox._IopubChannel, 0), (sandbox._BoundedChannel, sandbox.REFUSED_KEPT)):
        channel = kind.__new__(kind)
        channel.refused = []
        for _ in range(10_000):
            channel._refused("a message past the grader's bounds")
        assert len(channel.refused) == kept


def test_the_kernel_manager_makes_no_socket_of_its_own_to_the_kernel():
    """jupyter_client's manager connects a control socket straight to the kernel's path
    after each start: past the relay, through a link the kernel put there, unbounded."""
    from nopos.grading import sandbox

    assert sandbox.SandboxedExecute().kernel_manager_class is sandbox._KernelManager
    manager = sandbox._KernelManager()
    manager._connect_control_socket()
    assert manager._control_socket is None


def test_dropped_messages_in_all_are_bounded_on_a_channel():
    """Each dropped message under LET_GO x its bound, many of them (review a21t, M4: 612 of
    150 MB cost a grader 13 s of CPU): past LET_GO_ALL x the bound in all, on one channel and
    whatever connection carried them, the kernel is cut."""
    from nopos.grading.relay import LET_GO_ALL, Cut

    limit, dropped = 1 << 10, [0]
    message = bytes([0, 255]) + b"a" * 255  # one frame of 255 bytes, past a 128-byte part bound
    sent = 0
    with pytest.raises(Cut, match="in all"):
        for connection in range(4):
            frames = Frames(limit, 128, dropped=dropped)
            frames.feed(GREETING)
            for _ in range(LET_GO_ALL * limit // 255 // 4 + 2):
                frames.feed(message)
                sent += 1
    assert (sent + 1) * (255 + PART_CHARGE) > LET_GO_ALL * limit  # cut when the total passed it
