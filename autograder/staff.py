"""The staff solutions of ``reference/``, loaded for the trusted process: the one loader.

``reference("lab2")`` imports ``reference/lab2.py`` under the private name
``hw4_reference_lab2``, so it never meets the student's modules (``lab2`` in a sandbox child,
or anything named ``reference`` a submission could bring). Used by the expected values'
generator (``autograder.fixtures``), the training stage's trusted measurements (``autograder.training.measure``),
``evaluate`` and the hidden True/False tests (the instructor's key). Never imported by a
sandbox child: the reference is one of the sandbox's secrets.
"""
from __future__ import annotations

import importlib.util
import sys

from autograder import paths
from autograder.errors import GraderError


def reference(module_name: str):
    """The staff solution ``reference/<module_name>.py``, imported once per process.

    Raises GraderError where the reference is absent (the student handout ships none).
    """
    qualified = f"hw4_reference_{module_name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    path = paths.REFERENCE_DIR / f"{module_name}.py"
    if not path.is_file():
        raise GraderError(f"the staff reference {path} is missing: this check runs with the "
                          "staff's copy of the grader (Gradescope), not in the handout")
    return import_private(qualified, path)


def import_private(qualified: str, path) -> object:
    """The module at ``path`` imported once per process under the private name ``qualified``
    (dropped again from ``sys.modules`` when its import fails, so a retry starts clean)."""
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(qualified, None)
        raise
    return module
