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
list item becomes a message: what fails it is dropped with one line of log, and nothing
of it is acted on. The grader's own messages always pass: it sets no option, no
compression, and names every task `run/student` (`nopos.grading.distributed.submit`).
"""
import json
import logging
import re

from kombu.transport import redis

from nopos.grading.distributed import settings

log = logging.getLogger(__name__)
PLAIN = re.compile(r"[^\x00-\x1f\x7f]*")  # a header's text: no line break, no control character
SIGNED = "application/data"  # the content type of Celery's `auth` serializer (signing)
HEADER_CHARS = 2048  # Celery cuts the arguments' repr it sends (argsrepr) at 1024
IDS, ID_CHARS = ("id", "root_id", "parent_id", "group"), 300  # `run/student`: well under this
# the task's JSON (at most MAX_PAYLOAD_MB), signed (base64) in kombu's envelope (again): x1.8
BODY_CHARS = (2 * settings.MAX_PAYLOAD_MB + 8) * 2 ** 20  # (submit.payload counts as sent)


def refusal(raw):
    """None, or why a message as it lies on the broker is not one the grader sent."""
    if not isinstance(raw, dict):
        return "not a message"
    headers, properties = raw.get("headers"), raw.get("properties")
    if not isinstance(headers, dict) or not isinstance(properties, dict):
        return "no headers or properties"
    if properties.get("body_encoding") != "base64" or not isinstance(properties.get("delivery_info"), dict):
        return "properties that are not the grader's"
    for key, value in properties.items():
        if not _plain(value) or key == "delivery_tag" and not isinstance(value, str):
            return f"a property that is not plain ({str(key)[:40]!r})"
    if headers.get("task") != settings.TASK:
        return "not the grading task"
    if "compression" in headers:
        return "a compressed body (the grader sends none)"
    if raw.get("content-type") != SIGNED:
        return "not signed"
    if not isinstance(raw.get("body"), str) or len(raw["body"]) > BODY_CHARS:
        return "a body that is not one the grader sends"
    for key, value in headers.items():
        if not _plain(value) or key in IDS and isinstance(value, str) and len(value) > ID_CHARS:
            return f"a header that is not plain ({str(key)[:40]!r})"
    if headers.get("shadow") is not None:
        return "another name for the task"
    return None


def _plain(value, depth=0):
    """A header's value as the grader's have them: short text, numbers, flags, and small
    lists or mappings of those."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return len(value) <= HEADER_CHARS and PLAIN.fullmatch(value) is not None
    if isinstance(value, (list, dict)) and depth < 2 and len(value) <= 8:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in items)
    return False


class Channel(redis.Channel):
    def _brpop_read(self, **options):
        try:
            return super()._brpop_read(**options)
        except (ValueError, RecursionError) as error:  # taken off the list; not JSON we read
            log.error("dropped a message from the broker: not JSON (%s)", str(error)[:80])
            return True


_deliver_unchecked = redis.Transport._deliver


def _deliver(transport, message, queue):
    """kombu's delivery of a message read off the list, past the gate."""
    why = refusal(message)
    if why:
        log.error("dropped a message from the broker: %s", why)
        return None
    return _deliver_unchecked(transport, message, queue)


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
