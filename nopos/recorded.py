"""Runs recorded once by `make record`, shown without paying for them again.

Chapter 2's 2000-step spike run takes minutes on a laptop CPU (far more on a
busy one); the notebook shows the recorded run and can re-run it on demand.
"""
import json
from pathlib import Path

RECORDED = Path(__file__).resolve().parent / "data" / "recorded_runs.json"


def load(name, path=RECORDED):
    """One recorded run by name, e.g. load("ch2_spike_run"): a dict of lists.

    A training history (or each of a set of them) gets the keys of `train`'s history ("step", "loss",
    "running", "lr"), so that the plots take it as they take a live run."""
    record = json.loads(Path(path).read_text(encoding="utf-8"))[name]
    for history in [record, *record.values()]:  # one run, or {label: run}
        if isinstance(history, dict) and "loss" in history and "step" not in history:
            history["step"] = list(range(len(history["loss"])))
    return record
