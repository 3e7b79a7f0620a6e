"""The grading tests' expected values: ``fixtures/expected/{visible,hidden}/<name>.npz``.

Written by ``python -m autograder fixtures`` from reference/ (``autograder.fixtures``); read by
the grading tests with ``load(name, group)`` (the ``expected`` fixture), which needs neither the
reference nor torch.

File format (no pickle): key ``c<i>__<field>`` is field ``<field>`` of case ``i``; a field absent
from a case means None. ``load`` returns the cases as a list of dicts, with 0-d arrays turned
into Python scalars and the variants (what a known mistake returns on that input, for
``autograder.checks.recognise``) gathered under ``case["variants"]``.
"""
from __future__ import annotations

import functools

import numpy as np

from autograder.paths import FIXTURES_DIR

EXPECTED_DIR = FIXTURES_DIR / "expected"
GROUPS = ("visible", "hidden")


def encode(cases: list[dict]) -> dict[str, np.ndarray]:
    arrays = {}
    for index, case in enumerate(cases):
        for field, value in case.items():
            if field == "variants":
                for key, wrong in value.items():
                    arrays[f"c{index}__variant_{key}"] = np.asarray(wrong)
            elif value is not None:
                arrays[f"c{index}__{field}"] = np.asarray(value)
    return arrays


def load(name: str, group: str) -> list[dict]:
    """The cases of ``fixtures/expected/<group>/<name>.npz``, in order.

    Read once per process: every call returns new case dicts over the same read-only arrays,
    so a judge that wrote into an input would fail loudly instead of changing other tests."""
    return [{**case, "variants": dict(case["variants"])} for case in _read(name, group)]


@functools.lru_cache(maxsize=None)
def _read(name: str, group: str) -> tuple[dict, ...]:
    with np.load(EXPECTED_DIR / group / f"{name}.npz", allow_pickle=False) as data:
        cases: dict[int, dict] = {}
        for key in data.files:
            index, field = key.split("__", 1)
            case = cases.setdefault(int(index[1:]), {"variants": {}})
            value = data[key]
            value.flags.writeable = False
            value = value.item() if value.ndim == 0 else value
            if field.startswith("variant_"):
                case["variants"][field[len("variant_"):]] = value
            else:
                case[field] = value
    return tuple(cases[i] for i in sorted(cases))
