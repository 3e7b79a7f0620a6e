"""Fixtures shared by the project's own tests."""
import pytest

from autograder.sandbox import reuse


@pytest.fixture(scope="module")
def shared_zygotes():
    """The module's grades and Sandboxes share sandbox zygotes (``autograder.sandbox.reuse``),
    as ``validate`` does: for modules that judge verdicts and feedback, not a zygote's life.
    A zygote's start is most of a unit-stage grade's cost."""
    with reuse.kept_zygotes():
        yield
