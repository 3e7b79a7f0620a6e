"""True/False (problems 1.1-1.10), hidden: each answer against the instructor's key, which is
read from reference/answers.py in the trusted process (``autograder.staff``)."""
from gradescope_utils.autograder_utils.decorators import number, tags, visibility

from autograder.checks import fail
from autograder.staff import reference

STATEMENTS = [f"1.{i}" for i in range(1, 11)]


def answer_key() -> dict:
    return reference("answers").TRUE_FALSE


def _statement_test(key: str):
    @number(f"{key}.2")
    @visibility("after_published")
    @tags("true-false")
    def test(probe, intake):
        if intake is not None and key in intake.answer_problems:  # answers read from a report
            fail(f"Statement {key}: {intake.answer_problems[key]}")
        answers = probe("answers", "answers.read", {})
        given = answers["answers"].get(key) if answers["found"] else None
        if given is None:
            fail(f"Statement {key} has no True/False answer in `TRUE_FALSE`.")
        if given != answer_key()[key]:
            fail(f"Statement {key}: the answer is not correct.")

    test.__name__ = test.__qualname__ = f"test_statement_{key.replace('.', '_')}"
    test.__doc__ = f"answers.py: TRUE_FALSE[\"{key}\"] matches the instructor's key."
    return test


for _key in STATEMENTS:
    globals()[f"test_statement_{_key.replace('.', '_')}"] = _statement_test(_key)
