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


def pytest_collection_modifyitems(config, items):
    """Modules with slow tests run first, the quick ones after, in collection order otherwise.

    pytest-xdist hands out whole modules (``--dist loadscope``) in this order
    (``--no-loadscope-reorder`` in pytest.ini; by default it would put the modules with the
    most tests first): the minutes-long modules start at once on every worker and the quick
    ones fill the end, instead of one long module starting last and running alone.
    """
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)  # stable: order kept
