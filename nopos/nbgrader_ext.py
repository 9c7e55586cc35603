"""nbgrader add-ons the course's nbgrader_config.py switches on."""
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class ScrubTestTracebacks(Preprocessor):
    """Feedback shows why a test failed, never the test's code.

    nbgrader's ClearHiddenTests empties hidden tests from the cell *source*,
    but a failing cell's traceback quotes the lines around the failure, hidden
    tests included. Keep only the exception's own message, which our checks
    write for the learner.
    """

    enabled = Bool(True)  # nbconvert's Preprocessor is off unless told otherwise

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
