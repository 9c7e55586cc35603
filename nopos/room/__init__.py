"""A live room: everyone predicts in their own notebook, the projector shows the room.

Facilitator, one cell (or `python -m nopos.room start 04_attention` in a terminal):

    import nopos.room
    room = nopos.room.start("04_attention")   # shows the code, e.g. K7P2, and "0 of 0 committed"
    ...                                       # the chapter's reveal cells tell the room the answer
    room.reveal("ch4.key")                    # or press Reveal under the question

Participants: `nopos.room.join("K7P2")` once in their notebook, or a server started
with `NOPOS_ROOM=K7P2`; the chapters' prediction widgets need no change: Commit
sends the prediction and confidence to the room. After a kernel restart the
facilitator runs `room = nopos.room.resume("K7P2")`.

Why the file system, and not a service on the hub: on a hub with
LocalProcessSpawner every user's server runs as that OS user on one file system
(on Kubernetes, the shared volume nbgrader's exchange uses), so the kernel
itself enforces who may read what, as it does for nbgrader's exchange: no
server to run, secure, authenticate or keep alive, no token in any notebook,
and nothing lives in a process, so any kernel's restart (participant's or
facilitator's) loses nothing. A hub service with OAuth scopes would add a
process that must stay up for the whole session and a network path to defend,
to move a few hundred bytes a person. The cost is polling: the facilitator's
count lags a commit by up to `view.INTERVAL` (0.5 s). Layout and modes are in
`nopos.room.store`.

The rooms root is $NOPOS_ROOMS (the hub sets it; its default is
nopos.hub.settings.ROOMS, /srv/nopos/rooms), made by the hub's admin:
owner root, mode 1777 (anyone may start a room; the sticky bit keeps people from
removing each other's), on a file system every user's server sees.
"""
import os

from nopos.room.store import Room, RoomError, Seat, create, normalise_code, rooms_root  # noqa: F401

__all__ = ["start", "resume", "join", "leave", "current", "send", "answer", "RoomError"]

PANELS = {}        # code -> Panel: the rooms this kernel facilitates
_SEAT = [None]     # the room this kernel has joined as a participant


def start(chapter, closest=False, expected=None, root=None, interval=None, show=True):
    """Open a new room for `chapter` and show its live panel; returns the Panel.

    closest=True: the reveal names who was closest (the room agreed to it).
    expected: how many people to count on before they have joined ("0 of 9").
    """
    return _panel(create(chapter, root=root, closest=closest, expected=expected),
                  interval, show)


def resume(code, root=None, interval=None, show=True):
    """The facilitator's panel of an existing room (after a kernel restart)."""
    room = Room(code, root)
    room.info  # noqa: B018 - a clear error for a wrong code
    if not room.is_facilitator():
        raise RoomError(f"room {room.code} belongs to {room.info['facilitator']}: only its "
                        "facilitator can watch and reveal it; join it instead")
    return _panel(room, interval, show)


def _panel(room, interval, show):
    # widgets only where a panel is drawn: a participant's commit (and a 30-person
    # burst of them) needs nothing beyond the standard library
    from nopos.room.view import Panel

    panel = Panel(room, **({} if interval is None else {"interval": interval}))
    PANELS[room.code] = panel
    panel.start_polling()
    if show:
        panel.show()
    return panel


def join(code, root=None, home=None):
    """Join a room as a participant: your commits go to it from now on."""
    room = Room(code, root)
    room.info  # noqa: B018 - a clear error for a wrong code
    seat = Seat(room, home=home)
    seat.mark_joined()
    _SEAT[0] = seat
    return seat


def leave():
    _SEAT[0] = None


def current():
    """The joined room's Seat: join() in this kernel, else $NOPOS_ROOM, else None."""
    if _SEAT[0] is None and os.environ.get("NOPOS_ROOM"):
        join(os.environ["NOPOS_ROOM"])
    return _SEAT[0]


def send(key, entry):
    """Send a committed prediction to the joined room. Returns a line for the learner
    (None outside a room); never raises, a room's trouble must not lose the commit."""
    try:
        seat = current()
        if seat is None:
            return None
        seat.commit(key, entry)
    except (RoomError, OSError) as error:
        return f"Not sent to the room: {error}"
    return f"Sent to room {seat.room.code}; the facilitator reveals the room's answers."


def answer(key, actual):
    """Tell the rooms this kernel facilitates the answer to `key` (predict.reveal does)."""
    for panel in PANELS.values():
        panel.answer(key, actual)
