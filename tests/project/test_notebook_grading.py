"""Submissions as students make them, graded end to end: notebooks and a report instead of the
four files grade exactly as the four files do, and no training cell ever runs."""
from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.grade import grade_submission
from autograder.intake import collect
from autograder.paths import REFERENCE_DIR
from autograder.validate import WRONG_CATALOGUE, load_catalogue, splice

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_zygotes")]

NEVER_RUN = "this cell must never run"
TRAINING_CELLS = [  # what a student's notebook holds besides the graded code
    f"raise RuntimeError({NEVER_RUN!r})",
    f"print({NEVER_RUN!r})\nwhile True:\n    pass",
    "import urllib.request\nurllib.request.urlretrieve('https://www.cs.toronto.edu/~kriz/"
    "cifar-10-python.tar.gz', 'cifar.tgz')",
    "from IPython.display import display\ndisplay(results)",
    "!nvidia-smi\n%time trained = train_for_twenty_epochs()",
    "%%time\nfor epoch in range(20):\n    finetune_after_prune(net, trainloader, criterion, optimizer)",
    f"for attempt in range(3):\n    def gradient(W, X, Y):\n        return {NEVER_RUN!r}",
    "def half_written(net:\n    for name, layer in",
]


def cells_of(source: str) -> list[str]:
    """``source`` split into one cell per top-level statement (decorators kept with theirs)."""
    lines = source.splitlines()
    tree = ast.parse(source)
    starts = [min([n.lineno] + [d.lineno for d in getattr(n, "decorator_list", [])])
              for n in tree.body]
    ends = starts[1:] + [len(lines) + 1]
    return ["\n".join(lines[a - 1:b - 1]).strip() for a, b in zip(starts, ends)]


def decoy(name: str) -> str:
    """An earlier, wrong definition of a graded name, which a later cell redefines."""
    if name == "STE":
        return ("import torch\nclass STE(torch.autograd.Function):\n    @staticmethod\n"
                "    def forward(ctx, w, bit, keep_zeros=False):\n        return w * 0\n")
    return f"def {name}(*args, **kwargs):\n    return None  # first attempt"


def notebook(sources: list[str], decoys: list[str], markdown: str = "") -> str:
    cells = [new_markdown_cell("# Homework 4")]
    cells += [new_code_cell(c) for c in ["!pip install torchvision", "%matplotlib inline"]]
    cells += [new_code_cell(decoy(name)) for name in decoys]
    for source in sources:
        cells += [new_code_cell(c) for c in cells_of(source)]
    cells += [new_code_cell(c) for c in TRAINING_CELLS]
    if markdown:
        cells.append(new_markdown_cell(markdown))
    return nbformat.writes(new_notebook(cells=cells))


def report_of(answers: dict) -> str:
    return "## Problem 1\n\n" + "\n".join(
        f"{chr(ord('a') + i)}. Problem {q}: {v}, because ..." for i, (q, v) in
        enumerate(answers.items())) + "\n"


def write_notebook_submission(folder: Path, labs: dict[str, str], answers_markdown: str) -> Path:
    """Lab 1 in ``HW4_Lab1.ipynb``, Labs 2 and 3 together in ``Lab2-3.ipynb`` (the answers in
    its last markdown cell), as students submit them."""
    folder.mkdir(parents=True)
    (folder / "HW4_Lab1.ipynb").write_text(notebook([labs["lab1.py"]], ["gradient", "loss"]))
    (folder / "Lab2-3.ipynb").write_text(notebook(
        [labs["lab2.py"], labs["lab3.py"]], ["prune_by_percentage", "STE"], answers_markdown))
    return folder


def write_file_submission(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def reference_files() -> dict[str, str]:
    return {name: (REFERENCE_DIR / name).read_text()
            for name in ("lab1.py", "lab2.py", "lab3.py", "answers.py")}


def answers_of(answers_source: str) -> dict:
    namespace: dict = {}
    exec(answers_source, namespace)  # the reference or a catalogue entry: trusted test data
    return namespace["TRUE_FALSE"]


def scores(submission: Path, tmp: Path):
    with contextlib.redirect_stdout(io.StringIO()):
        results = grade_submission(submission, out=tmp / f"{submission.name}.json",
                                   stage="unit", device="cpu")
    return results, {t.nodeid: (t.score, t.max_score) for t in results.tests}


def test_notebooks_of_the_reference_grade_exactly_as_its_files_and_no_cell_ran(tmp_path):
    files = reference_files()
    as_files = write_file_submission(tmp_path / "files", files)
    as_notebooks = write_notebook_submission(tmp_path / "notebooks", files,
                                             report_of(answers_of(files["answers.py"])))
    _, expected = scores(as_files, tmp_path)
    results, got = scores(as_notebooks, tmp_path)
    assert got == expected
    assert results.tests and all(t.score == t.max_score for t in results.tests)  # every point
    extracted = collect(as_notebooks, tmp_path / "extracted")
    for name in ("lab1.py", "lab2.py", "lab3.py", "answers.py"):
        text = (tmp_path / "extracted" / name).read_text()
        assert NEVER_RUN not in text and "urlretrieve" not in text and "display(" not in text
    assert any(note.startswith("`lab2.py` was built from your notebooks: ") and "`Lab2-3.ipynb`"
               in note for note in results.notes)
    assert any("`Lab2-3.ipynb`, cell" in note and "does not parse" in note
               for note in extracted.notes)


def _combined_mutant() -> tuple[dict[str, str], set[str]]:
    """The reference with one catalogue mistake in each file: they lose disjoint problems."""
    chosen = {"gradient-no-factor-2", "global-includes-id-mapping", "ste-forgets-beta",
              "tf-one-wrong"}
    files, loses = reference_files(), set()
    for variant in load_catalogue(WRONG_CATALOGUE, correct=False):
        if variant.name in chosen:
            files[variant.file] = splice(files[variant.file], variant.target, variant.source)
            loses.update(variant.loses)
    return files, loses


def test_notebooks_of_catalogue_mutants_lose_what_their_files_lose(tmp_path):
    files, loses = _combined_mutant()
    as_files = write_file_submission(tmp_path / "files", files)
    as_notebooks = write_notebook_submission(tmp_path / "notebooks", files,
                                             report_of(answers_of(files["answers.py"])))
    expected_results, expected = scores(as_files, tmp_path)
    results, got = scores(as_notebooks, tmp_path)
    assert got == expected
    lost = {p for p, (s, m) in results.by_problem().items() if s < m}
    assert lost == loses == {p for p, (s, m) in expected_results.by_problem().items() if s < m}


def test_a_report_with_a_missing_and_a_doubled_answer_loses_those_questions_only(tmp_path):
    files = reference_files()
    key = answers_of(files["answers.py"])
    answers = {q: v for q, v in key.items() if q != "1.4"}
    report = report_of(answers) + f"\nProblem 1.7: {not key['1.7']}, on second thought\n"
    as_notebooks = write_notebook_submission(tmp_path / "notebooks", files, report)
    results, _ = scores(as_notebooks, tmp_path)
    lost = {p for p, (s, m) in results.by_problem().items() if s < m}
    assert lost == {"1.4", "1.7"}
    outputs = {t.number: t.output for t in results.tests}
    assert "Statement 1.4: no answer found in your report" in outputs["1.4.1"]
    assert "Statement 1.7: answered both True and False" in outputs["1.7.1"]
    assert any("1.4 no answer found" in note and "1.7 both True and False" in note
               for note in results.notes)
