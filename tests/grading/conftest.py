"""Grading tests' shared fixtures: the engine's plugin, expected values, and cached probe calls.

``expected(name)`` loads ``fixtures/expected/<group>/<name>.npz`` (``autograder.fixtures.load``),
where the group is "hidden" for tests under ``hidden/`` and "visible" otherwise.
``probe(key, name, inputs)`` runs a probe once per session and replays its result (or its
``SubmissionError``) to every test that asks with the same key: several tests can judge one
sandbox call, which keeps the unit stage fast.
"""
from __future__ import annotations

import pytest

from autograder import fixtures
from autograder.errors import SubmissionError

pytest_plugins = ["autograder.plugin"]


@pytest.fixture
def expected(request):
    group = "hidden" if "hidden" in request.path.parent.parts[-1:] else "visible"
    return lambda name: fixtures.load(name, group)


class ProbeCache:
    """Sandbox calls memoised by a caller-chosen key, failures included."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.outcomes: dict[str, tuple[bool, object]] = {}

    def __call__(self, key: str, name: str, inputs: dict, *, timeout: float = 30.0) -> dict:
        if key not in self.outcomes:
            try:
                self.outcomes[key] = (True, self.sandbox.run(name, inputs, timeout=timeout).values)
            except SubmissionError as error:
                self.outcomes[key] = (False, error)
        ok, value = self.outcomes[key]
        if not ok:
            raise value
        return value


@pytest.fixture(scope="session")
def probe(sandbox):
    return ProbeCache(sandbox)
