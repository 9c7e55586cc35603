"""What the grader reads of a kernel's messages, judged before it is decoded.

jupyter_client turns every message the kernel sends into Python objects (JSON),
in the grader's process, before nbclient or the judge sees it. A kernel writes
those bytes itself, so their cost is the kernel's choice: 48 MB of `[[],[],...]`
decode to some 16 million lists (1.4 GB), a frame of ASCII with one emoji to a
string four times its size, and zmq's MAXMSGSIZE bounds each frame, not their
number. So every message the grader's client accepts is measured first, as
bytes: its frames, its size as decoded text (x4 when not ASCII, or when an
escape such as `\\ud83d\\ude00` names a character past U+00FF), and the JSON
values it would build (commas and brackets outside strings). One over the
bound is never decoded: the grader reads a small stand-in with the same parent
(so it lands in the cell that asked) that says what was dropped: a note in the
cell's output, or, for a reply, an error named `MessageTooLarge`.

Rejected alternative: a JSON decoder with a budget (object hooks fire only after
a container is built, lists have no hook) - it would bound too late.
libzmq holds a whole multipart message before the first frame is read; what one
message can hold there is bounded on the wire by nopos/grading/relay.py.
"""
import json
import re

REFUSED = "MessageTooLarge"
FRAMES = 5 + 16  # signature, header, parent, metadata, content, then a few buffers
SMALL = 64 << 10  # a header or parent header is read only up to this size
# a string, or what is left of one never closed (so a frame of `"\\"\\"...` is one
# string read once, not one attempt per quote to the frame's end: quadratic)
_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)  # (a last lone backslash too)
# an escape of a character past U+00FF: ASCII on the wire, but it makes the whole
# string it is in two or four bytes a character once decoded. Searched for as a
# literal (a fast scan); only where one is found are escaped backslashes taken out
# first (`\\\\u02FF` is a backslash and five letters: narrow text)
_WIDE_ESCAPE = re.compile(rb"\\u(?:0[1-9a-fA-F]|[1-9a-fA-F])[0-9a-fA-F]{2}")


def values(frame):
    """JSON values `frame` would decode to, at most (a cheap count first; strings are
    only skipped when the cheap count is too high, so a long text costs no scan)."""
    return frame.count(b",") + frame.count(b"[") + frame.count(b"{") + 1


def _values_outside_strings(frame):
    return values(_STRINGS.sub(b'""', frame))


def refusal(frames, max_bytes, max_values):
    """Why this message (its frames after the identities) is not decoded, or ""."""
    if len(frames) > FRAMES:
        return f"a message of {len(frames)} parts (the grader reads at most {FRAMES})"
    size = sum(len(f) * _width(bytes(f)) for f in frames)
    if size > max_bytes:
        return f"a message of {size >> 20} MB (the grader reads at most {max_bytes >> 20} MB)"
    count = sum(values(f) for f in frames)
    if count > max_values:
        count = sum(_values_outside_strings(bytes(f)) for f in frames)
        if count > max_values:
            return f"a message of {count} values (the grader reads at most {max_values})"
    return ""


def _width(frame):
    """Bytes a character of the text `frame` decodes to, at most: 4 when it is not
    ASCII or escapes a character past U+00FF, else 1."""
    if not frame.isascii():
        return 4
    if not _WIDE_ESCAPE.search(frame):
        return 1
    # pairs of backslashes are taken out left to right, as JSON reads them: what is
    # left of a run is the backslash that starts an escape
    return 4 if _WIDE_ESCAPE.search(frame.replace(b"\\\\", b"")) else 1


def _small(frame):
    frame = bytes(frame)
    if len(frame) > SMALL or values(frame) > 1000:
        return {}
    try:
        value = json.loads(frame)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def stand_in(frames, why, channel):
    """The message the grader reads instead: the same parent, a small content that says
    what was dropped (a stream note on iopub, an error reply on the shell channel)."""
    header = _small(frames[1]) if len(frames) > 1 else {}
    parent = _small(frames[2]) if len(frames) > 2 else {}
    note = f"[output dropped: the kernel sent {why}]"
    kind = str(header.get("msg_type", ""))
    if channel == "iopub":
        header = {**header, "msg_type": "stream"}
        content = {"name": "stdout", "text": note + "\n"}
    else:
        header = {**header, "msg_type": kind if kind.endswith("_reply") else "execute_reply"}
        content = {"status": "error", "ename": REFUSED, "evalue": note, "traceback": [f"{REFUSED}: {note}"],
                   "execution_count": None, "user_expressions": {}}
    return {"header": header, "msg_id": header.get("msg_id"), "msg_type": header["msg_type"],
            "parent_header": parent, "metadata": {}, "content": content, "buffers": []}
