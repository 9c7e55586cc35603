"""What a worker reads off the broker before Celery does: only messages shaped as the grader
sends them.

Anyone with the broker's password can push anything onto the queue, and what kombu and
Celery do with a message happens before the task's signature is checked: kombu's Redis
channel parses the list item as JSON outside any handler (a string that is not JSON
stopped the worker: "Unrecoverable error"), kombu inflates a body whose `compression`
header asks for it (79 bytes of bzip2 are 64 MB), Celery looks the `task` header up in a
dict (a list there stopped the worker, and went back to the queue to stop the next one)
and logs the id and the shadow name raw (a newline in one forged a line of the log).
So the worker's transport is kombu's Redis transport with one gate (`refusal`) where a
list item becomes a message: an allow-list of the grader's own envelope, every header and
property with the one shape the grader's Celery gives it (a gate of merely "plain" values
let an id that was a list, or a timelimit of 5, through to stop the worker: review h31b).
What fails it is dropped with one line of log, and nothing of it is acted on; a message
kombu or Celery still cannot take is dropped too, acknowledged, never handed back to the
next worker. The grader's own messages always pass: it sets no option, no compression,
and names every task `run/student` (`nopos.grading.distributed.submit`).
"""
import logging
import re

from kombu.transport import redis

from nopos.grading.distributed import settings

log = logging.getLogger(__name__)
PLAIN = re.compile(r"[^\x00-\x1f\x7f]*")  # a header's text: no line break, no control character
# `run/student` (the worker checks which): a run's letters, and every letter of a student
# id (batch.STUDENT_ID: '+' and '@' of an e-mail login too)
ID = re.compile(r"[A-Za-z0-9._:@+/-]{1,300}")
SIGNED = "application/data"  # the content type of Celery's `auth` serializer (signing)
HEADER_CHARS = 2048  # Celery cuts the arguments' repr it sends (argsrepr) at 1024
# the task's JSON (at most MAX_PAYLOAD_MB), signed (base64) in kombu's envelope (again): x1.8
BODY_CHARS = (2 * settings.MAX_PAYLOAD_MB + 8) * 2 ** 20  # (submit.payload counts as sent)


def _text(limit, pattern=PLAIN):
    return lambda v: isinstance(v, str) and len(v) <= limit and pattern.fullmatch(v) is not None


def _exactly(*values):  # equal and of the same type (0 is not False)
    return lambda v: any(v == w and type(v) is type(w) for w in values)


# The grader's envelope, as its Celery and kombu write it (Celery 5, protocol 2): every
# header and property it sends, each with the one shape it has there. Celery and kombu
# read these before the task's signature is checked and rely on their types (an id that
# is a list, a timelimit of 5 or a missing id stopped or stalled a worker: review h31b):
# so nothing else passes, not a name more, not another type.
HEADERS = {
    "lang": _exactly("py"), "task": _exactly(settings.TASK), "id": _text(300, ID),
    "root_id": lambda v: v is None or _text(300, ID)(v), "parent_id": _exactly(None),
    "shadow": _exactly(None), "eta": _exactly(None), "expires": _exactly(None),
    "group": _exactly(None), "group_index": _exactly(None), "retries": _exactly(0),
    "timelimit": lambda v: isinstance(v, list) and v == [None, None],
    "argsrepr": _text(HEADER_CHARS), "kwargsrepr": _text(HEADER_CHARS), "origin": _text(300),
    "ignore_result": _exactly(None, True, False), "replaced_task_nesting": _exactly(0),
    "stamped_headers": _exactly(None), "stamps": lambda v: isinstance(v, dict) and not v,
    # kombu's own mark on a message it put back (a worker lost, a task handed back)
    "redelivered": _exactly(True),
}
PROPERTIES = {
    "body_encoding": _exactly("base64"), "delivery_tag": _text(64, ID),
    "delivery_info": lambda v: isinstance(v, dict) and {"exchange", "routing_key"} <= set(v)
    <= {"exchange", "routing_key", "redelivered"} and _text(200)(v["exchange"])
    and _text(200)(v["routing_key"]) and v.get("redelivered", True) is True,
    "correlation_id": _text(300, ID), "reply_to": lambda v: v is None or _text(300, ID)(v),
    "delivery_mode": _exactly(1, 2), "priority": lambda v: type(v) is int and 0 <= v <= 255,
}
ENVELOPE = {"body", "content-encoding", "content-type", "headers", "properties"}
NEEDED = {"headers": {"lang", "task", "id"}, "properties": {"body_encoding", "delivery_tag",
                                                           "delivery_info"}}


def refusal(raw):
    """None, or why a message as it lies on the broker is not one the grader sent."""
    if not isinstance(raw, dict) or set(raw) - {"redelivered"} != ENVELOPE \
            or raw.get("redelivered", True) is not True:
        return "not a message the grader sends"
    if raw["content-type"] != SIGNED or raw["content-encoding"] != "utf-8":
        return "not signed"
    if not isinstance(raw["body"], str) or len(raw["body"]) > BODY_CHARS:
        return "a body that is not one the grader sends"
    for part, rules in (("headers", HEADERS), ("properties", PROPERTIES)):
        fields = raw[part]
        if not isinstance(fields, dict) or not NEEDED[part] <= set(fields):
            return f"{part} that are not the grader's"
        for key, value in fields.items():
            rule = rules.get(key)
            if rule is None or not rule(value):
                return f"a {part[:-1] if part == 'headers' else 'property'} the grader never " \
                       f"sends ({str(key)[:40]!r})"
    return None


class Channel(redis.Channel):
    def _brpop_read(self, **options):
        try:
            return super()._brpop_read(**options)
        except (ValueError, RecursionError) as error:  # taken off the list; not JSON we read
            log.error("dropped a message from the broker: not JSON (%s)",
                      str(error)[:80].encode("unicode_escape").decode())
            return True


_deliver_unchecked = redis.Transport._deliver


def _deliver(transport, message, queue):
    """kombu's delivery of a message read off the list, past the gate. A message kombu or
    Celery still cannot take (any error before the task starts) is dropped too: taken off
    the channel's unacknowledged set, never handed back to stop or stall the next worker."""
    why = refusal(message)
    if why:
        log.error("dropped a message from the broker: %s", why)
        return None
    try:
        return _deliver_unchecked(transport, message, queue)
    except Exception as error:  # noqa: BLE001 - whatever the message made kombu or Celery do
        tag = message["properties"]["delivery_tag"]
        for channel in getattr(transport, "channels", ()):
            if tag in getattr(getattr(channel, "qos", None), "_delivered", {}):
                channel.qos.ack(tag)
        log.error("dropped a message from the broker: it could not be taken (%s: %s)",
                  type(error).__name__, str(error)[:80].encode("unicode_escape").decode())
        return None


class Transport(redis.Transport):
    """kombu's Redis transport, with the gate."""

    Channel = Channel
    _deliver = _deliver


def install():
    """The gate for every Redis URL this process opens (redis://, rediss://, and
    redis+socket://, whose '+' makes kombu pick its transport by name whatever the app
    says): a grading worker's process only; the grader's own only sends."""
    redis.Transport.Channel = Channel
    redis.Transport._deliver = _deliver
