"""True/False (problems 1.1-1.10), visible: the format of answers.py only. Each statement's
answer is graded against the key by the hidden tests."""
from gradescope_utils.autograder_utils.decorators import number, tags, visibility

from autograder.checks import fail

STATEMENTS = [f"1.{i}" for i in range(1, 11)]


def read_answers(probe) -> dict:
    return probe("answers", "answers.read", {})


def _format_test(key: str):
    @number(f"{key}.1")
    @visibility("visible")
    @tags("true-false", "format")
    def test(probe, intake):
        if intake is not None and key in intake.answer_problems:  # answers read from a report
            fail(f"Statement {key}: {intake.answer_problems[key]}")
        answers = read_answers(probe)
        if not answers["found"]:
            fail("`answers.py` must define the dict `TRUE_FALSE` with keys \"1.1\" to \"1.10\".")
        if key not in answers["types"]:
            fail(f"`TRUE_FALSE` has no key \"{key}\" (keys are strings like \"1.1\").")
        if answers["answers"][key] is None:
            fail(f"`TRUE_FALSE[\"{key}\"]` is `{answers['types'][key]}`; answer True or False "
                 "(the Python booleans, not strings).")

    test.__name__ = test.__qualname__ = f"test_format_{key.replace('.', '_')}"
    test.__doc__ = f"answers.py: TRUE_FALSE[\"{key}\"] is True or False (a format check)."
    return test


for _key in STATEMENTS:
    globals()[f"test_format_{_key.replace('.', '_')}"] = _format_test(_key)
