"""Fixtures shared by the project's own tests."""
import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each xdist worker has one core of its own (pytest.ini: -n auto). torch's default, a thread
    # per core, would oversubscribe the machine, and its OpenMP threads spin while they wait for
    # each other: test_shared_data's evaluations then took 164 CPU s instead of 69 beside a busy
    # worker. Set before any test module imports torch; sandbox calls set their own threads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from autograder.sandbox import reuse


@pytest.fixture(scope="module")
def shared_zygotes():
    """The module's grades and Sandboxes share sandbox zygotes (``autograder.sandbox.reuse``),
    as ``validate`` does: for modules that judge verdicts and feedback, not a zygote's life.
    A zygote's start is most of a unit-stage grade's cost."""
    with reuse.kept_zygotes():
        yield


SLOW_SECONDS = 20  # a slow module that does not say how slow (``slow(seconds=N)``)


def pytest_collection_modifyitems(config, items):
    """Modules go out heaviest first: by the ``seconds`` of their ``slow`` marks (their measured
    wall time on 2 cores), the quick ones last, in collection order otherwise.

    pytest-xdist hands out whole modules (``--dist loadscope``) in this order
    (``--no-loadscope-reorder`` in pytest.ini; by default it would put the modules with the
    most tests first), each to the next worker free: the longest modules start at once and the
    short ones fill in around them, instead of a four-minute module starting last and running
    alone while the other worker idles.
    """
    weight: dict[str, float] = {}
    for item in items:
        marker = item.get_closest_marker("slow")
        if marker is not None:
            module = item.nodeid.split("::")[0]
            weight[module] = max(weight.get(module, 0), marker.kwargs.get("seconds", SLOW_SECONDS))
    items.sort(key=lambda item: -weight.get(item.nodeid.split("::")[0], 0))  # stable: order kept
