"""Grading tests' shared fixtures: the engine's plugin, expected values, and cached probe calls.

``expected(name)`` loads ``fixtures/expected/<group>/<name>.npz`` (``autograder.expected.load``,
cached, arrays read-only), where the group is "hidden" for tests under ``hidden/`` and
"visible" otherwise.

``probe(key, name, inputs)`` (``autograder.memo.ProbeCache``) runs a probe once per session and
replays its result (or its ``SubmissionError``) to every test that asks with the same key:
several tests judge one sandbox call. ``probe.prefetch(calls)`` answers many keys in ONE sandbox
child (``Sandbox.run_batch``): a test module prefetches every call of its lab, so a grade forks
a handful of children instead of one per question; a batch that dies is asked again call by
call, so the failure is charged to the function that caused it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder import expected as expected_values
from autograder.memo import ProbeCache

# In the handout, its root conftest.py registers the plugin, so that pytest knows the options
# from any folder (pytest accepts pytest_plugins only in a conftest loaded at start-up).
if not (Path(__file__).resolve().parents[2] / "conftest.py").is_file():
    pytest_plugins = ["autograder.plugin"]


@pytest.fixture
def expected(request):
    group = "hidden" if "hidden" in request.path.parent.parts[-1:] else "visible"
    return lambda name: expected_values.load(name, group)


@pytest.fixture(scope="session")
def probe(sandbox) -> ProbeCache:
    return ProbeCache(sandbox)
