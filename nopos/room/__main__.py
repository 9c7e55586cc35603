"""A live room from a terminal (the facilitator's side; participants use their notebook).

    python -m nopos.room start 04_attention [--closest] [--expected 9]   # prints the code
    python -m nopos.room status K7P2              # "ch4.heads: 7 of 9 committed"
    python -m nopos.room watch K7P2               # the same, refreshed until Ctrl-C
    python -m nopos.room reveal K7P2 ch4.heads --actual "head 1.0" [--text "Which head?"]
    python -m nopos.room html K7P2 [--out room.html]   # the revealed questions as a page
    python -m nopos.room close K7P2               # takes no more commits
"""
import argparse
import html
import json
import sys
import time

from nopos.room.store import Room, RoomError, create
from nopos.room.view import revealed_html


FACILITATOR_ONLY = ("status", "watch", "reveal", "close")  # html shows the revealed only


def status_lines(room):
    committed, people = room.counts()
    people = max(people, room.info.get("expected") or 0)
    if not committed:
        return [f"room {room.code}: {people} joined, no commits yet"]
    return [f"{key}: {n} of {people} committed" for key, n in sorted(committed.items())]


def page(room):
    """Every revealed question of a room as one offline HTML page (for slides, or a browser)."""
    parts = []
    for path in sorted(room.revealed_dir.glob("*.json")):
        agg = json.loads(path.read_text(encoding="utf-8"))
        parts.append(f"<section><h2>{html.escape(agg.get('text') or path.stem)}</h2>"
                     f"{revealed_html(agg)}</section>")
    body = "".join(parts) or "<p>Nothing revealed yet.</p>"
    return (f"<!doctype html><meta charset='utf-8'><title>Room {room.code}</title>"
            f"<body style='font-family:sans-serif'><h1>Room {room.code}: "
            f"{html.escape(str(room.info['chapter']))}</h1>{body}</body>")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nopos.room", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start")
    p.add_argument("chapter")
    p.add_argument("--closest", action="store_true", help="the reveal names who was closest")
    p.add_argument("--expected", type=int, help="how many people to expect")
    for name in ("status", "watch", "close", "html"):
        p = sub.add_parser(name)
        p.add_argument("code")
        if name == "html":
            p.add_argument("--out", help="write here instead of printing")
    p = sub.add_parser("reveal")
    p.add_argument("code")
    p.add_argument("key")
    p.add_argument("--actual", required=True, help="the answer (an option, or a number)")
    p.add_argument("--text", help="the question as asked (default: as the notebooks sent it)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except RoomError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args):
    if args.command == "start":
        room = create(args.chapter, closest=args.closest, expected=args.expected)
        print(f"room {room.code} for {args.chapter} at {room.path}")
        print(f"participants: nopos.room.join(\"{room.code}\") or NOPOS_ROOM={room.code}")
        return 0
    room = Room(args.code)
    room.info  # noqa: B018 - a clear error for a wrong code
    if args.command in FACILITATOR_ONLY and not room.is_facilitator():
        raise RoomError(f"only the facilitator of room {room.code} ({room.info.get('facilitator')}) "
                        f"can {args.command} it; participants see each question's result in "
                        "their notebook once it is revealed")
    if args.command == "status":
        print("\n".join(status_lines(room)))
    elif args.command == "watch":
        try:
            while True:
                print("\x1b[2J\x1b[H" + "\n".join(status_lines(room)), flush=True)
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    elif args.command == "reveal":
        agg = room.publish(args.key, args.actual, text=args.text)
        print(json.dumps({k: agg[k] for k in ("text", "n", "actual", "right", "counts", "guesses")
                          if k in agg}))
    elif args.command == "html":
        text = page(room)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
        else:
            print(text)
    elif args.command == "close":
        room.close()
        print(f"room {room.code} takes no more commits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
