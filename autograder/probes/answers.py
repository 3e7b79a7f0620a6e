"""Child-side probe for the True/False answers: the student's ``TRUE_FALSE`` as plain data."""
from __future__ import annotations

from autograder.probes import student


def read(inputs: dict) -> dict:
    """``{"answers": {key: True/False, or None when the value is not a bool}, "types": {...}}``.

    Keys are reported as strings; ``found`` is False when ``TRUE_FALSE`` is missing or not a dict.
    """
    module = student("answers")
    answers = getattr(module, "TRUE_FALSE", None)
    if not isinstance(answers, dict):
        return {"found": False, "answers": {}, "types": {}}
    return {"found": True,
            "answers": {str(k): v if isinstance(v, bool) else None for k, v in answers.items()},
            "types": {str(k): type(v).__name__ for k, v in answers.items()}}
