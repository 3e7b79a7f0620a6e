"""Outcomes memoised per grading session: one computation per key, replayed to every test.

Several grading tests judge one sandbox call (``ProbeCache``), and several training-stage tests
judge one pipeline run (``tests/grading/train``): each is computed once, and its value, or the
``SubmissionError`` it met, is replayed to every test that asks with the same key. A failure is
replayed with a fresh traceback, so pytest formats the student's message once per test, not
every earlier test's frames. A ``GraderError`` met while computing is not memoised: each test
that asks meets it again (as an internal grading error), except one that a batch reported for
one of its calls, which is stored as that call's outcome.

What each computation printed (the sandbox's captured output) is kept beside its outcome, and
``take_printed`` hands the plugin what the computations asked since its last take printed: the
output a failed test shows is that of the calls it judged.
"""
from __future__ import annotations

from typing import Callable

from autograder.errors import SubmissionError
from autograder.sandbox.client import DEFAULT_TIMEOUT, Call, ProbeResult


class OutcomeMemo:
    """Values or failures by a caller-chosen key."""

    def __init__(self):
        self._outcomes: dict[str, tuple[bool, object]] = {}
        self._printed: dict[str, str] = {}  # key -> what computing it printed
        self._asked: list[str] = []  # keys asked since the last take_printed

    def __contains__(self, key: str) -> bool:
        return key in self._outcomes

    def get(self, key: str, compute: Callable[[], object]):
        """``compute()``'s value for ``key``, computed at the first ask; its SubmissionError is
        raised now and at every later ask."""
        __tracebackhide__ = True  # the student's message matters, not this frame
        self._asked.append(key)
        if key not in self._outcomes:
            try:
                self._outcomes[key] = (True, compute())
            except SubmissionError as error:
                self.store(key, error)
        ok, value = self._outcomes[key]
        if not ok:
            raise value.with_traceback(None)
        return value

    def store(self, key: str, outcome) -> None:
        """Record ``outcome`` for ``key``: an exception is a failure to replay (with what the
        call printed, its ``stdout``), else a value."""
        failed = isinstance(outcome, BaseException)
        self._outcomes[key] = (not failed, outcome)
        if failed:
            self.note_printed(key, getattr(outcome, "stdout", ""))

    def note_printed(self, key: str, text: str) -> None:
        """Keep what computing ``key`` printed."""
        if text:
            self._printed[key] = text

    def take_printed(self) -> list[str]:
        """What the keys asked since the last take printed, each once, in the order asked."""
        keys = list(dict.fromkeys(self._asked))
        self._asked.clear()
        return [self._printed[key] for key in keys if self._printed.get(key)]


class ProbeCache(OutcomeMemo):
    """Sandbox calls memoised by key: the grading tests' ``probe`` fixture."""

    def __init__(self, sandbox):
        super().__init__()
        self.sandbox = sandbox

    def __call__(self, key: str, name: str, inputs: dict, *, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """The values of the probe ``name`` on ``inputs``, asked once per key."""
        __tracebackhide__ = True
        return self.get(key, lambda: self._run(key, name, inputs, timeout))

    def _run(self, key: str, name: str, inputs: dict, timeout: float) -> dict:
        result = self.sandbox.run(name, inputs, timeout=timeout)
        self.note_printed(key, result.stdout)
        return result.values

    def prefetch(self, calls: dict[str, tuple]) -> None:
        """Answer every key of ``calls`` (``(name, inputs)`` or ``(name, inputs, timeout)``
        tuples) not answered yet, in one sandbox child (``Sandbox.run_batch``)."""
        pending = {key: Call(*call) for key, call in calls.items() if key not in self}
        if len(pending) < 2:
            return  # a single call gains nothing from a batch; __call__ will ask it
        for key, outcome in zip(pending, self.sandbox.run_batch(list(pending.values()))):
            if isinstance(outcome, ProbeResult):
                self.note_printed(key, outcome.stdout)
            self.store(key, outcome.values if isinstance(outcome, ProbeResult) else outcome)


