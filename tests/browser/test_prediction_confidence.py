"""A prediction with its confidence, in real JupyterLab: a choice with "how sure",
a number with its 80% range; the reveal shows both next to the result and the log
holds them. A reveal cell's code (the answer) is collapsed. Run it alone: `pytest tests/browser/test_prediction_confidence.py`."""
import json

import nbformat
import pytest

from tools.build_course import REVEAL_FIRST_LINE

from .conftest import ROOT

pytestmark = pytest.mark.browser

CELLS = [
    "from nopos import predict\n"
    "q = predict.ask('ch9.pick', 'Which one?', options=['red', 'green', 'blue'])",
    "predict.reveal(q, 'green')",
    "n = predict.ask('ch9.size', 'How big?', kind='number', tolerance=0.1)",
    "predict.reveal(n, 7.5)",
]


def test_commit_a_choice_and_a_range_with_confidence(lab, scratch_dir, screenshots):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "nopos", "display_name": "nopos",
                                                            "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.cells[1].source = f"{REVEAL_FIRST_LINE}\n{nb.cells[1].source}"  # as the course builds it
    nb.cells[1].metadata = {"jupyter": {"source_hidden": True}, "tags": ["reveal"]}
    path = scratch_dir / "confidence" / "confidence.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    lab.open(path.relative_to(ROOT))
    lab.run_all_from_menu(120_000)
    assert not lab.errors(), lab.errors()
    page = lab.page
    asks = page.locator(".widget-vbox:has(> .widget-button:has-text('Commit prediction'))")
    assert asks.count() == 2
    # the reveal cell's code is collapsed: JupyterLab draws a placeholder with the first
    # line only, which says what the cell is
    assert page.locator(".jp-Cell .jp-InputPlaceholder").count() == 1
    assert "predict.reveal(q, 'green')" not in page.locator(".jp-Notebook").inner_text()
    assert REVEAL_FIRST_LINE in page.locator(".jp-InputPlaceholder").inner_text()
    for i, name in enumerate(("choice", "number")):
        page.locator(".jp-Cell:has(.widget-button:has-text('Commit prediction'))").nth(i).screenshot(
            path=str(screenshots / f"prediction-confidence-ask-{name}.png"))

    choice = asks.nth(0)
    choice.locator(".widget-radio-box label").nth(1).click()          # green
    choice.get_by_role("button", name="90%").click()                  # the one extra click
    choice.get_by_role("button", name="Commit prediction").click()
    choice.locator(".widget-html:has-text('Committed:')").wait_for(timeout=15_000)
    assert "green (90% sure)" in choice.inner_text()

    number = asks.nth(1)
    guess, low, high = (number.locator("input[type=number]").nth(i) for i in range(3))
    guess.fill("5")
    guess.press("Enter")
    page.wait_for_function("el => el.value === '4'", arg=low.element_handle(), timeout=15_000)
    # the range's two ends update one after the other: wait for the high end as well
    page.wait_for_function("el => el.value === '6'", arg=high.element_handle(), timeout=15_000)
    assert high.input_value() == "6"                                  # the range followed the guess
    high.fill("8")
    high.press("Enter")
    number.get_by_role("button", name="Commit prediction").click()
    number.locator(".widget-html:has-text('Committed:')").wait_for(timeout=15_000)

    page.wait_for_function("() => document.querySelectorAll('.nopos-reveal').length === 2",
                           timeout=30_000)
    reveals = page.locator(".nopos-reveal")
    first, second = reveals.nth(0).inner_text(), reveals.nth(1).inner_text()
    assert "green (90% sure)" in first and "right" in first
    assert "80% range 4 to 8" in second and "held it" in second
    page.locator(".jp-Cell:has(.nopos-reveal)").last.screenshot(
        path=str(screenshots / "prediction-confidence.png"))

    log = lab.server.home / "nopos-home" / "predictions.jsonl"
    commits = [json.loads(line) for line in log.read_text().splitlines()
               if '"ch9.' in line and '"commit"' in line]
    assert [(c["key"], c.get("confidence"), c.get("low"), c.get("high")) for c in commits] == [
        ("ch9.pick", 0.9, None, None), ("ch9.size", None, 4.0, 8.0)]
