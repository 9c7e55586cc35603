"""The live room's logic in a scratch rooms folder, one OS user (real users: test_room_users.py).

Widgets are driven with Button.click(), as a facilitator and participants would."""
import json
import os
import stat
import time

import pytest

import nopos.room as room_api
from nopos import predict
from nopos.room import aggregate as agg_mod
from nopos.room.__main__ import main as cli
from nopos.room.store import Room, RoomError, Seat, create

OPTIONS = ["head 0.0", "head 0.1", "head 1.0"]


@pytest.fixture
def rooms(tmp_path, monkeypatch):
    root = tmp_path / "rooms"
    root.mkdir()
    monkeypatch.setenv("NOPOS_ROOMS", str(root))
    monkeypatch.delenv("NOPOS_ROOM", raising=False)
    yield root
    for panel in room_api.PANELS.values():
        panel.stop_polling()
    room_api.PANELS.clear()
    room_api.leave()


@pytest.fixture
def person(monkeypatch):
    for var in ("NOPOS_NONINTERACTIVE", "NBGRADER_EXECUTION", "CI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NOPOS_INTERACTIVE", "1")


def seat(room, tmp_path, name):
    return Seat(room, home=tmp_path / name)


def choice(pick, confidence):
    return {"kind": "choice", "options": OPTIONS, "prediction": pick, "confidence": confidence,
            "text": "Which head?"}


def number(guess, low, high):
    return {"kind": "number", "prediction": guess, "low": low, "high": high, "tolerance": 0.1,
            "text": "Loss?", "unit": "nats"}


def test_a_new_room_has_the_modes_that_keep_entries_private(rooms):
    room = create("04_attention")
    assert len(room.code) == 4 and room.path.parent == rooms
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(room.path) == 0o755 and mode(room.path / "room.json") == 0o644
    assert mode(room.entries) == 0o3733          # create-only, not listable, setgid, sticky
    assert room.info["chapter"] == "04_attention" and room.info["closest"] is False


def test_the_default_rooms_root_is_the_hubs(monkeypatch):
    import importlib

    from nopos.hub import settings
    from nopos.room.store import rooms_root
    monkeypatch.delenv("NOPOS_ROOMS", raising=False)
    try:
        assert str(rooms_root()) == importlib.reload(settings).ROOMS
    finally:
        monkeypatch.undo()
        importlib.reload(settings)


def test_wrong_codes_and_a_missing_root_say_what_to_do(rooms, monkeypatch):
    with pytest.raises(RoomError, match="not a room code"):
        Room("K7")
    with pytest.raises(RoomError, match="no room K7P2 .*facilitator's screen"):
        room_api.join("k7p2")                      # lower case is accepted, then not found
    monkeypatch.setenv("NOPOS_ROOMS", str(rooms / "absent"))
    with pytest.raises(RoomError, match="does not exist.*1777"):
        create("01_dataset")


def test_a_later_commit_replaces_the_earlier_and_a_restart_keeps_the_secret(rooms, tmp_path):
    room = create("04_attention")
    first = seat(room, tmp_path, "ana")
    first.commit("ch4.head", choice("head 0.0", 0.5))
    again = seat(room, tmp_path, "ana")            # a kernel restart: a new Seat, same home
    assert again.secret == first.secret
    again.commit("ch4.head", choice("head 1.0", 0.9))
    files = [p for p in os.listdir(room.entries) if "ch4.head" in p]
    assert files == [f"{first.secret}-ch4.head.json"]  # replaced, no temporary left behind
    assert room.read_entries("ch4.head")[_me()]["prediction"] == "head 1.0"
    assert stat.S_IMODE(os.stat(room.entries / files[0]).st_mode) == 0o640


def _me():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def test_one_user_counts_once_per_question_even_with_a_lost_secret(rooms, tmp_path):
    room = create("04_attention")
    seat(room, tmp_path, "a").commit("ch4.head", choice("head 0.0", 0.5))
    time.sleep(0.01)
    seat(room, tmp_path, "b").commit("ch4.head", choice("head 0.1", 0.7))  # same OS user
    assert room.counts() == ({"ch4.head": 1}, 1)
    assert room.read_entries("ch4.head")[_me()]["prediction"] == "head 0.1"  # the newest


def test_links_oversized_and_malformed_entries_are_ignored(rooms, tmp_path):
    room = create("04_attention")
    secret = tmp_path / "secret.txt"
    secret.write_text("{}")
    (room.entries / "aaaa-ch4.head.json").symlink_to(secret)
    (room.entries / "bbbb-ch4.other.json").write_text("x" * 70000)
    (room.entries / "cccc-ch4.bad.json").write_text("[not json")
    assert room.read_entries("ch4.head") == {} and room.read_entries("ch4.other") == {}
    assert room.read_entries("ch4.bad") == {} and room.unreadable == 1
    assert room.publish("ch4.bad", "head 0.0")["unreadable"] == 1
    with pytest.raises(RoomError, match="cannot name a question"):
        room.read_entries("../etc")


def test_choice_counts_and_calibration_by_hand():
    entries = {"a": choice("head 1.0", 0.9), "b": choice("head 1.0", 0.5),
               "c": choice("head 0.0", 0.9), "d": choice("head 0.1", 0.7),
               "e": choice("nonsense", 0.9)}
    out = agg_mod.aggregate(entries, "head 1.0")
    assert out["counts"] == {"head 0.0": 1, "head 0.1": 1, "head 1.0": 2}
    assert out["n"] == 4 and out["dropped"] == 1 and out["right"] == 2 and "closest" not in out
    cal = out["calibration"]
    assert cal["mean_confidence"] == pytest.approx((0.9 + 0.5 + 0.9 + 0.7) / 4)
    assert cal["fraction_right"] == 0.5
    # Brier: (0.9-1)^2 + (0.5-1)^2 + 0.9^2 + 0.7^2 = 0.01 + 0.25 + 0.81 + 0.49
    assert cal["brier"] == pytest.approx(1.56 / 4)
    assert "too few" in cal["verdict"]


def test_number_guesses_ranges_and_closest_when_opted_in():
    entries = {"a": number(5.0, 4.0, 6.0), "b": number(6.0, 5.9, 6.1), "c": number(9.0, 8, 10)}
    out = agg_mod.aggregate(entries, 5.5, closest=True)
    assert out["guesses"] == [5.0, 6.0, 9.0] and out["right"] == 2   # within 10% of 5.5
    cal = out["calibration"]
    assert cal["held"] == 1 and cal["fraction_held"] == pytest.approx(1 / 3)
    # interval scores: 2; 0.2 + 10 * 0.4 = 4.2; 2 + 10 * 2.5 = 27; mean / 5.5
    assert cal["interval_score"] == pytest.approx((2 + 4.2 + 27) / 3 / 5.5)
    assert [c["user"] for c in out["closest"]] == ["a", "b", "c"][:agg_mod.TOP]
    with pytest.raises(ValueError, match="not a number"):
        agg_mod.aggregate(entries, "five")


def test_a_room_of_overconfident_people_is_told_so():
    entries = {str(i): choice("head 0.0", 0.99) for i in range(8)}
    entries["r"] = choice("head 1.0", 0.99)
    assert "overconfident" in agg_mod.aggregate(entries, "head 1.0")["calibration"]["verdict"]


def test_the_reveal_is_published_and_closes_the_question(rooms, tmp_path):
    room = create("04_attention", closest=True)
    for name, pick in zip("abc", ["head 0.0", "head 0.1", "head 1.0"]):  # one OS user here:
        seat(room, tmp_path, name).commit("ch4.head", choice(pick, 0.7))   # the newest counts
        time.sleep(0.01)
    agg = room.publish("ch4.head", "head 1.0")
    assert json.loads((room.revealed_dir / "ch4.head.json").read_text()) == agg
    assert stat.S_IMODE(os.stat(room.revealed_dir / "ch4.head.json").st_mode) == 0o644
    assert agg["closest"] == [{"user": _me(), "prediction": "head 1.0", "confidence": 0.7}]
    assert agg["code"] == room.code and agg["counts"]["head 1.0"] == 1
    with pytest.raises(RoomError, match="already revealed"):
        seat(room, tmp_path, "late").commit("ch4.head", choice("head 0.1", 0.5))


# ---------------------------------------------------------------- widgets and predict
def test_commit_in_a_joined_notebook_reaches_the_facilitators_panel(rooms, person, monkeypatch):
    panel = room_api.start("04_attention", show=False, interval=60)   # poll by hand here
    assert "of 0 committed" not in panel.header.value and panel.room.code in panel.header.value
    monkeypatch.setenv("NOPOS_ROOM", panel.room.code.lower())
    q = predict.ask("ch4.head", "Which head?", options=OPTIONS)         # joins: "I am here"
    panel.refresh()
    assert panel.people == 1 and "ch4.head" not in panel.committed
    q.control.value = "head 1.0"
    q.sure.value = 0.9
    q.button.click()
    assert f"Sent to room {panel.room.code}" in q.status.value
    panel.refresh()
    assert "<b style='font-size:1.6em'>1</b> of 1 committed" in panel.rows["ch4.head"].count.value
    row = panel.rows["ch4.head"]
    assert row.button.disabled                      # no answer yet
    predict.reveal(q, "head 1.0")                   # the facilitator's reveal cell
    assert not row.button.disabled
    row.button.click()
    assert "1 of 1 (100%) chose the right answer" in row.result.value
    assert "well calibrated" not in row.result.value and "too few" in row.result.value


def test_a_bad_room_code_never_loses_the_commit(rooms, person, monkeypatch, private_log):
    monkeypatch.setenv("NOPOS_ROOM", "ZZZZ")
    q = predict.ask("ch4.head", "Which head?", options=OPTIONS)
    assert "no room ZZZZ" in q.status.value
    q.control.value = "head 0.0"
    q.button.click()
    assert q.committed and "Not sent to the room: no room ZZZZ" in q.status.value
    assert json.loads(private_log.read_text().splitlines()[-1])["prediction"] == "head 0.0"


def test_polling_updates_the_count_and_a_resumed_panel_keeps_the_reveal(rooms, tmp_path):
    panel = room_api.start("04_attention", show=False, interval=0.05)
    s = seat(panel.room, tmp_path, "p")
    s.commit("ch4.loss", number(5.0, 4.0, 6.0))
    deadline = time.monotonic() + 5
    while panel.committed.get("ch4.loss") != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert panel.committed.get("ch4.loss") == 1
    assert panel.reveal("ch4.loss") is None and "No answer yet" in panel.status.value
    panel.reveal("ch4.loss", actual=5.2)
    panel.stop_polling()
    again = room_api.resume(panel.room.code.lower(), show=False)   # a facilitator restart
    again.stop_polling()
    assert "within 10% of the answer, 5.2" in again.rows["ch4.loss"].result.value
    assert "1</b> of 1 committed" in again.rows["ch4.loss"].count.value


def test_the_command_line_starts_reports_reveals_and_writes_a_page(rooms, tmp_path, capsys):
    assert cli(["start", "05_mechanism", "--expected", "9"]) == 0
    code = capsys.readouterr().out.split()[1]
    room = Room(code)
    seat(room, tmp_path, "p").commit("ch5.q", choice("head 0.1", 0.6))
    cli(["status", code])
    assert "ch5.q: 1 of 9 committed" in capsys.readouterr().out
    cli(["reveal", code, "ch5.q", "--actual", "head 0.1"])
    assert json.loads(capsys.readouterr().out)["counts"]["head 0.1"] == 1
    cli(["html", code, "--out", str(tmp_path / "room.html")])
    assert "1 of 1 (100%) chose the right answer" in (tmp_path / "room.html").read_text()
    assert cli(["status", "QQQQ"]) == 2 and "no room QQQQ" in capsys.readouterr().err
