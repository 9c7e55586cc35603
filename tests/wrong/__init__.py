"""Realistic wrong answers per chapter, each with the points it must lose.

Each chapter module defines CASES: name -> Case(answers={grade_id: code},
loses={test grade_id: points}, says=text the feedback must contain).

A chapter module may also define HARMLESS: name -> {grade_id: code}, correct alternatives that
must keep full marks. tests/test_checks.py grades them through the judge; they stay out of
CASES, so the nbgrader round trip does not grow by a submission per alternative.

The round trip hands several mistakes in one submission when they sit in
different answer cells and cost different tests (`pack`): each case still
checks its own cells and its own words, and every cell no case touches must
keep full marks, so one mistake that leaks into another exercise still fails.
"""
from dataclasses import dataclass, field


@dataclass
class Case:
    answers: dict
    loses: dict
    says: str = ""
    notes: str = field(default="")


def pack(cases):
    """Group case names into submissions whose answers and lost tests are disjoint."""
    students = []  # [(names, answer cells, lost tests)]
    for name, case in cases.items():
        for names, cells, lost in students:
            if not cells & case.answers.keys() and not lost & case.loses.keys():
                names.append(name)
                cells.update(case.answers)
                lost.update(case.loses)
                break
        else:
            students.append(([name], set(case.answers), set(case.loses)))
    return [names for names, _, _ in students]
