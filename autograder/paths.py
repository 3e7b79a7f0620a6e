"""Where things live, in the repository and in the unpacked handout or Gradescope zip.

The same engine runs from three layouts:
- the repository: stubs and provided code under ``student/``;
- the student handout: stubs and ``hw4/`` at the root;
- Gradescope's ``/autograder/source``: the repository layout, minus the project's own tests.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDENT_DIR = ROOT / "student" if (ROOT / "student" / "hw4").is_dir() else ROOT
PROVIDED_DIR = STUDENT_DIR  # the folder that holds the provided package ``hw4``
REFERENCE_DIR = ROOT / "reference"
FIXTURES_DIR = ROOT / "fixtures"
TESTS_DIR = ROOT / "tests"
GRADING_TESTS_DIR = TESTS_DIR / "grading"
RUBRIC_PATH = ROOT / "rubric.toml"

SUBMISSION_FILES = ("lab1.py", "lab2.py", "lab3.py", "answers.py")


def ensure_provided_importable() -> None:
    """Make ``import hw4`` work in this process (the grader's own copy of the provided code)."""
    path = str(PROVIDED_DIR)
    if path not in sys.path:
        sys.path.insert(0, path)


def shared_data_dir() -> Path | None:
    """The folder with the course's real checkpoint and CIFAR-10 subset, if configured.

    ``HW4_SHARED`` names it; tests that need it skip when this returns None.
    """
    value = os.environ.get("HW4_SHARED")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None
