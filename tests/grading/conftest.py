"""Grading tests' shared fixtures: the engine's plugin, expected values, and cached probe calls.

``expected(name)`` loads ``fixtures/expected/<group>/<name>.npz`` (``autograder.fixtures.load``,
cached, arrays read-only), where the group is "hidden" for tests under ``hidden/`` and
"visible" otherwise.

``probe(key, name, inputs)`` runs a probe once per session and replays its result (or its
``SubmissionError``) to every test that asks with the same key: several tests judge one
sandbox call. ``probe.prefetch(calls)`` answers many keys in ONE sandbox child (the
``batch.run`` probe): a test module prefetches every call of its lab, so a grade forks a
handful of children instead of one per question. When the batch as a whole fails (a sub-call
hung, crashed or ended the process), each call is asked again in its own child, so the failure
is charged to the function that caused it.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from autograder import fixtures
from autograder.errors import SUBMISSION_ERRORS, GraderError, SubmissionError, from_kind

# In the handout, its root conftest.py registers the plugin, so that pytest knows the options
# from any folder (pytest accepts pytest_plugins only in a conftest loaded at start-up).
if not (Path(__file__).resolve().parents[2] / "conftest.py").is_file():
    pytest_plugins = ["autograder.plugin"]

DEFAULT_TIMEOUT = 30.0  # seconds for one probe call on the course's small inputs


@pytest.fixture
def expected(request):
    group = "hidden" if "hidden" in request.path.parent.parts[-1:] else "visible"
    return lambda name: fixtures.load(name, group)


class Call(NamedTuple):
    """One probe call: the probe's name, its inputs, and its wall-clock limit in seconds."""

    name: str
    inputs: dict
    timeout: float = DEFAULT_TIMEOUT


class ProbeCache:
    """Sandbox calls memoised by a caller-chosen key, failures included (a SubmissionError, or
    a GraderError that one sub-call of a batch met)."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.outcomes: dict[str, tuple[bool, object]] = {}

    def __call__(self, key: str, name: str, inputs: dict, *,
                 timeout: float = DEFAULT_TIMEOUT) -> dict:
        __tracebackhide__ = True  # the student's message matters, not this frame
        if key not in self.outcomes:
            self._ask(key, Call(name, inputs, timeout))
        ok, value = self.outcomes[key]
        if not ok:
            # A fresh traceback per replay: re-raising one object would chain every earlier
            # test's frames onto it, and pytest would format them all for each failed test.
            raise value.with_traceback(None)
        return value

    def _ask(self, key: str, call: Call) -> None:
        try:
            self.outcomes[key] = (True, self.sandbox.run(call.name, call.inputs,
                                                         timeout=call.timeout).values)
        except SubmissionError as error:
            self.outcomes[key] = (False, error)

    def prefetch(self, calls: dict[str, tuple]) -> None:
        """Answer every key of ``calls`` (``(name, inputs)`` or ``(name, inputs, timeout)``
        tuples) not answered yet, in one sandbox child if possible."""
        pending = {key: Call(*call) for key, call in calls.items() if key not in self.outcomes}
        if len(pending) < 2:
            return  # a single call gains nothing from a batch; __call__ will ask it
        batch = {"calls": [{"probe": call.name, "inputs": call.inputs}
                           for call in pending.values()]}
        try:
            # A batch that works takes well under a second; a hung sub-call costs this limit
            # once, then its own limit again when asked alone.
            results = self.sandbox.run("batch.run", batch, timeout=max(
                call.timeout for call in pending.values())).values.get("results")
        except SubmissionError:
            results = None
        if type(results) is not list or len(results) != len(pending) or \
                not all(type(reply) is dict for reply in results):
            for key, call in pending.items():  # each alone: the failure finds its owner
                self._ask(key, call)
            return
        for key, reply in zip(pending, results):
            self.outcomes[key] = _outcome(reply)


def _outcome(reply: dict) -> tuple[bool, object]:
    """A batch reply as a cached outcome: (True, values), or (False, the exception to raise):
    the SubmissionError the sub-call met, or a GraderError for our own faults."""
    if reply.get("ok") is True and type(reply.get("values")) is dict:
        return True, reply["values"]
    error = reply.get("error")
    if reply.get("ok") is not False or type(error) is not dict or \
            not all(type(error.get(field)) is str for field in ("kind", "message", "details")):
        return False, GraderError(f"batch.run returned a malformed reply: {str(reply)[:200]}")
    if error["kind"] not in SUBMISSION_ERRORS:  # "grader", or a kind no one defined
        return False, GraderError(f"{error['message']}\n{error['details']}")
    return False, from_kind(error["kind"], error["message"], error["details"])


@pytest.fixture(scope="session")
def probe(sandbox):
    return ProbeCache(sandbox)
