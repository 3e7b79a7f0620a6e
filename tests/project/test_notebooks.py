"""Notebook extraction: which definitions are taken, what they pull in, and what never is."""
from __future__ import annotations

import ast
import json
import time
import tracemalloc

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import notebooks
from autograder.notebooks import extract_all


def notebook_bytes(*cells: str, markdown: tuple[str, ...] = ()) -> bytes:
    book = new_notebook(cells=[new_markdown_cell(m) for m in markdown]
                        + [new_code_cell(c) for c in cells])
    return nbformat.writes(book).encode()


def lab(sources: dict[str, bytes], name: str) -> notebooks.LabFile:
    files, _ = extract_all(sources, (name,))
    return files[name]


def namespace_of(text: str) -> dict:
    """Run an extracted file (trusted test code: it holds only the test's own definitions)."""
    space: dict = {}
    exec(compile(text, "<extracted>", "exec"), space)
    return space


def test_the_last_module_level_definition_wins_not_one_in_a_loop_or_function():
    book = notebook_bytes(
        "def gradient(W, X, Y):\n    return 'first'",
        "def gradient(W, X, Y):\n    return 'second'",
        "for epoch in range(3):\n    def gradient(W, X, Y):\n        return 'in a loop'",
        "def train():\n    def gradient(W, X, Y):\n        return 'in a function'")
    space = namespace_of(lab({"Lab1.ipynb": book}, "lab1.py").text)
    assert space["gradient"](0, 0, 0) == "second"


def test_dependencies_are_taken_transitively_and_nothing_else():
    book = notebook_bytes(
        "import numpy as np\nimport os",
        "SCALE = 2.0\nUNUSED = 99",
        "def _residual(W, X, Y):\n    return X @ W - Y",
        "def gradient(W, X, Y):\n    return SCALE * np.dot(X.T, _residual(W, X, Y))",
        "W = np.zeros(5)\nfor step in range(200):\n    W = W - 0.02 * gradient(W, X, Y)",
        "print(gradient)")
    text = lab({"Lab1.ipynb": book}, "lab1.py").text
    for needed in ("import numpy as np", "SCALE = 2.0", "def _residual", "def gradient"):
        assert needed in text
    for left_out in ("import os", "UNUSED", "for step", "W = np.zeros", "print("):
        assert left_out not in text
    import numpy as np
    space = namespace_of(text)
    X, Y = np.eye(5), np.ones(5)
    assert np.allclose(space["gradient"](np.zeros(5), X, Y), -2.0 * np.ones(5))


def test_a_parameter_or_local_does_not_pull_a_global_of_the_same_name():
    book = notebook_bytes("W = run_twenty_epochs_of_training()",
                          "def gradient(W, X, Y):\n    residual = X @ W - Y\n    return residual")
    text = lab({"Lab1.ipynb": book}, "lab1.py").text
    assert "run_twenty_epochs_of_training" not in text


def test_a_module_level_value_uses_the_definition_before_it():
    book = notebook_bytes("LR = 0.5", "STEP = LR * 2", "LR = 1000.0",
                          "def gd_step(W, X, Y, lr):\n    return STEP")
    space = namespace_of(lab({"Lab1.ipynb": book}, "lab1.py").text)
    assert space["gd_step"](0, 0, 0, 0) == 1.0  # STEP was computed from the first LR


def test_magics_and_shell_lines_are_blanked_and_a_broken_cell_is_skipped_with_a_note():
    book = notebook_bytes(
        "!pip install torch\n%matplotlib inline\nimport numpy as np",
        "files = !ls\ndef loss(W, X, Y):\n    return float(np.sum((X @ W - Y) ** 2)\n"
        "                 % 7)",
        "%%time\ndef gradient(W, X, Y):\n    return 'from a cell magic'",
        "def gd_step(W, X, Y, lr:\n    return W")
    files, notes = extract_all({"Lab1.ipynb": book}, ("lab1.py",))
    text = files["lab1.py"].text
    assert "% 7" in text and "pip" not in text  # a continuation line starting with % is code
    assert any("cell 3" in n and "cell magic" in n for n in notes)
    assert any("cell 4" in n and "does not parse" in n and "def gd_step" in n for n in notes)
    ast.parse(text)


def test_a_graded_name_not_found_raises_naming_the_notebooks_searched():
    book = notebook_bytes("import torch", "def helper():\n    pass")
    extracted = lab({"HW4_Lab2.ipynb": book}, "lab2.py")
    assert "prune_by_percentage" in extracted.missing
    space = namespace_of(extracted.text)
    with pytest.raises(NotImplementedError, match=r"not found in your notebooks.*HW4_Lab2.ipynb"):
        space["prune_by_percentage"](None)
    assert "`prune_by_percentage` not found" in extracted.describe()


def test_a_missing_ste_is_a_stub_autograd_function():
    import torch

    extracted = lab({"Lab3.ipynb": notebook_bytes("x = 1")}, "lab3.py")
    ste = namespace_of(extracted.text)["STE"]
    assert issubclass(ste, torch.autograd.Function)
    with pytest.raises(NotImplementedError, match="not found in your notebooks"):
        ste.apply(torch.ones(3), 2)


def test_each_notebook_is_its_own_namespace_and_the_last_notebook_wins():
    lab1 = notebook_bytes("X = 'lab1 data'", "def loss(W, X2, Y):\n    return X")
    other = notebook_bytes("X = 'another notebook'")
    space = namespace_of(lab({"A_lab1.ipynb": lab1, "B_other.ipynb": other}, "lab1.py").text)
    assert space["loss"](0, 0, 0) == "lab1 data"
    later = notebook_bytes("def loss(W, X, Y):\n    return 'later notebook'")
    extracted = lab({"A_lab1.ipynb": lab1, "B_redo.ipynb": later}, "lab1.py")
    assert namespace_of(extracted.text)["loss"](0, 0, 0) == "later notebook"
    assert "`loss` is also defined in `A_lab1.ipynb` (the last notebook by name wins)" in \
        extracted.describe()


def test_device_comes_with_the_graded_code_and_the_feedback_names_the_cells():
    book = notebook_bytes("import torch\ndevice = 'cuda' if torch.cuda.is_available() else 'cpu'",
                          "def prune_by_percentage(layer, q=80.0):\n    return device")
    extracted = lab({"Lab2.ipynb": book}, "lab2.py")
    assert extracted.text.count("device = ") == 1
    assert "`prune_by_percentage` from `Lab2.ipynb` cell 2 (`def prune_by_percentage(layer, " \
           "q=80.0):`)" in extracted.describe()


def test_decorators_and_statements_sharing_a_line_are_kept_whole():
    book = notebook_bytes("import torch; import numpy as np",
                          "@torch.no_grad()\ndef prune_by_percentage(layer, q=80.0):\n"
                          "    return np.float64(q)")
    space = namespace_of(lab({"Lab2.ipynb": book}, "lab2.py").text)
    assert space["prune_by_percentage"](None, 3.0) == 3.0


# --- hostile notebooks: a clear message, bounded time and memory ---------------------------

def _bounded(function, *, seconds: float = 10.0, megabytes: int = 400):
    tracemalloc.start()
    start = time.monotonic()
    try:
        result = function()
    finally:
        elapsed = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < megabytes * 2**20, f"peak {peak / 2**20:.0f} MiB"
    return result


def test_a_huge_notebook_is_refused_before_parsing():
    data = notebook_bytes("x = 1") + b" " * (notebooks.LIMITS.notebook_bytes + 1)
    files, notes = _bounded(lambda: extract_all({"big.ipynb": data}, ("lab1.py",)))
    assert any("`big.ipynb` is larger than" in note for note in notes)
    assert files["lab1.py"].missing  # graded as not found, nothing else lost


def test_deeply_nested_json_is_a_clear_message():
    data = ('{"cells": ' + "[" * 200_000 + "]" * 200_000 + "}").encode()
    files, notes = _bounded(lambda: extract_all({"deep.ipynb": data}, ("lab1.py",)))
    assert any("`deep.ipynb` could not be read as a notebook" in note for note in notes)


def test_a_cell_of_megabytes_is_skipped_and_the_others_used():
    huge = "x = [" + "1, " * 2_000_000 + "]"
    book = notebook_bytes(huge, "def loss(W, X, Y):\n    return 1.0")
    files, notes = _bounded(lambda: extract_all({"Lab1.ipynb": book}, ("lab1.py",)))
    assert any("cell 1 is longer than" in note for note in notes)
    assert "loss" not in files["lab1.py"].missing


def test_a_deeply_nested_expression_is_a_skipped_cell():
    book = notebook_bytes("x = " + "(" * 50_000 + "1" + ")" * 50_000,
                          "def loss(W, X, Y):\n    return 1.0")
    files, notes = _bounded(lambda: extract_all({"Lab1.ipynb": book}, ("lab1.py",)))
    assert any("cell 1 does not parse" in note for note in notes)
    assert "loss" not in files["lab1.py"].missing


def test_a_name_defined_ten_thousand_times_stays_linear():
    cells = ["\n".join(f"def loss(W, X, Y):\n    return {100 * c + i}" for i in range(100))
             for c in range(100)]  # 10,000 definitions of one name
    book = notebook_bytes(*cells)
    files, _ = _bounded(lambda: extract_all({"Lab1.ipynb": book}, ("lab1.py",)), seconds=20)
    assert namespace_of(files["lab1.py"].text)["loss"](0, 0, 0) == 9_999
    assert files["lab1.py"].text.count("def loss") == 1


def test_too_many_statements_is_a_clear_message(monkeypatch):
    monkeypatch.setattr(notebooks, "LIMITS", notebooks.Limits(statements=1000))
    book = notebook_bytes("\n".join(f"a{i} = {i}" for i in range(1500)))
    files, notes = extract_all({"many.ipynb": book}, ("lab1.py",), limits=notebooks.LIMITS)
    assert any("more than 1000 statements" in note for note in notes)


def test_a_notebook_of_the_wrong_shape_is_a_note_and_the_others_are_used():
    odd = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                      "cells": [7, {"cell_type": "code", "source": 12}]}).encode()
    good = notebook_bytes("def loss(W, X, Y):\n    return 2.0")
    files, notes = extract_all({"odd.ipynb": odd, "good.ipynb": good}, ("lab1.py",))
    assert any("`odd.ipynb` could not be read as a notebook" in note for note in notes)
    assert "loss" not in files["lab1.py"].missing


def test_extraction_past_its_time_budget_is_a_clear_message(monkeypatch):
    chain = ["a0 = 1"] + [f"a{i} = a{i - 1}" for i in range(1, 3000)]
    cells = ["\n".join(chain[k:k + 500]) for k in range(0, len(chain), 500)]
    book = notebook_bytes(*cells, "def loss(W, X, Y):\n    return a2999")
    files, notes = extract_all({"Lab1.ipynb": book}, ("lab1.py",),
                               limits=notebooks.Limits(seconds=0.0))
    assert any("took too long" in note for note in notes)
    assert files["lab1.py"].missing == notebooks.CONTRACT["lab1.py"][0]


def test_an_extracted_file_over_the_size_cap_is_not_graded():
    chain = ["a0 = 1"] + [f"a{i} = a{i - 1}" for i in range(1, 3000)]
    cells = ["\n".join(chain[k:k + 500]) for k in range(0, len(chain), 500)]
    book = notebook_bytes(*cells, "def loss(W, X, Y):\n    return a2999")
    files, notes = extract_all({"Lab1.ipynb": book}, ("lab1.py",),
                               limits=notebooks.Limits(lab_bytes=10_000))
    assert any("larger than" in note and "`lab1.py`" in note for note in notes)
    assert "loss" in files["lab1.py"].missing
    full, _ = extract_all({"Lab1.ipynb": book}, ("lab1.py",))
    assert "a2999 = a2998" in full["lab1.py"].text  # the whole chain, within the default cap
