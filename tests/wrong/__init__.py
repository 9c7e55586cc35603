"""Realistic wrong answers per chapter, each with the points it must lose.

Each chapter module defines CASES: name -> Case(answers={grade_id: code},
loses={test grade_id: points}, says=text the feedback must contain).
"""
from dataclasses import dataclass, field


@dataclass
class Case:
    answers: dict
    loses: dict
    says: str = ""
    notes: str = field(default="")
