"""True/False answers read from a report: every accepted form, a PDF, missing and doubled answers,
and the files intake and ``extract`` make from them."""
from __future__ import annotations

import ast
import io
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import cli, report_answers
from autograder.intake import collect
from autograder.paths import REFERENCE_DIR
from autograder.report_answers import QUESTIONS, answers_module, find_answers, read_answers

KEY = {"1.1": True, "1.2": False, "1.3": False, "1.4": False, "1.5": False, "1.6": True,
       "1.7": True, "1.8": True, "1.9": False, "1.10": True}


@pytest.mark.parametrize("line, question, verdict", [
    ("Problem 1.1: True", "1.1", True),
    ("1.1 True", "1.1", True),
    ("a. Problem 1.1: False, because pruning and quantization interact", "1.1", False),
    ("(1.3) F", "1.3", False),
    ("(1.3) T", "1.3", True),
    ("**Problem 1.4:** **False**", "1.4", False),
    ("**1.4** false", "1.4", False),
    ("- 1.5 — False", "1.5", False),
    ("Q1.6: T", "1.6", True),
    ("### 1.7 True", "1.7", True),
    ("  b) 1.8. TRUE.", "1.8", True),
    ("1.9 The statement is false: the backward pass uses them, not the forward", "1.9", False),
    ("1.10 True", "1.10", True),
    ("Question 1.2: False, although it would be true with sparse kernels", "1.2", False),
])
def test_each_accepted_form_reads_the_first_verdict_after_the_number(line, question, verdict):
    assert [(q, v) for q, v, _ in find_answers(line, "report.md")] == [(question, verdict)]


@pytest.mark.parametrize("line", [
    "2.1 True",                                   # a lab problem, not a True/False one
    "Table 1.3 shows it is True",                 # the number does not start the line
    "1.11 True",                                  # there is no 1.11
    "1.1.2 True",                                 # a subsection
    "1.4 pruning helps",                          # no verdict at all
    "1.6 Fine-tuning comes after",                # F begins a word, not a verdict
])
def test_lines_that_are_not_answers(line):
    assert find_answers(line, "report.md") == []


def test_a_verdict_on_the_line_after_a_bare_number():
    found = find_answers("**Problem 1.5:**\n\nFalse, since soft thresholding keeps the bias", "r.md")
    assert found == [("1.5", False, "r.md: `**Problem 1.5:** / False, since soft thresholding "
                                    "keeps the bias`")]


def _report(answers: dict, form: str = "Problem {q}: {v}, because ...") -> str:
    return "# Report\n\n" + "\n".join(form.format(q=q, v=v) for q, v in answers.items()) + "\n"


def test_a_missing_and_a_doubled_answer_are_their_questions_messages():
    answers = dict(KEY)
    del answers["1.4"]
    text = _report(answers) + "Problem 1.7: False (changed my mind)\nProblem 1.1: True again\n"
    reading = read_answers([("report.md", text)])
    assert set(reading.problems) == {"1.4", "1.7"}
    assert "no answer found in your report" in reading.problems["1.4"]
    assert "`report.md`" in reading.problems["1.4"]
    assert "both True and False" in reading.problems["1.7"]
    assert "Problem 1.7: True" in reading.problems["1.7"] and "changed my mind" in reading.problems["1.7"]
    assert reading.answers["1.1"] is True  # the same verdict twice is one answer
    assert "1.4 no answer found" in reading.summary()
    module = ast.literal_eval(answers_module(reading).split("TRUE_FALSE = ", 1)[1])
    assert set(module) == set(QUESTIONS) - {"1.4", "1.7"}


def test_the_generated_answers_module_holds_literals_only():
    reading = read_answers([("report.md", _report(KEY, "{q} {v}"))])
    text = answers_module(reading)
    tree = ast.parse(text)
    assert [type(node).__name__ for node in tree.body] == ["Expr", "Assign"]
    assert ast.literal_eval(tree.body[1].value) == KEY


def pdf_of(lines: list[str]) -> bytes:
    """A real PDF of ``lines``, written by matplotlib's PDF backend (standard fonts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with matplotlib.rc_context({"pdf.use14corefonts": True, "font.family": "sans-serif"}), \
            PdfPages(buffer) as pdf:
        figure = plt.figure(figsize=(8.5, 11))
        for index, line in enumerate(lines):
            figure.text(0.05, 0.95 - 0.03 * index, line, fontsize=10)
        pdf.savefig(figure)
        plt.close(figure)
    return buffer.getvalue()


def test_a_pdf_report_is_read():
    lines = ["Homework 4 report", "1. True/False"]
    lines += [f"{chr(ord('a') + i)}. Problem {q}: {v}, because ..." for i, (q, v) in
              enumerate(KEY.items())]
    text, problem = report_answers.pdf_text(pdf_of(lines), "report.pdf")
    assert problem is None
    assert read_answers([("report.pdf", text)]).answers == KEY


def test_a_pdf_that_is_not_one_is_a_clear_message_in_bounded_time():
    start = time.monotonic()
    text, problem = report_answers.pdf_text(b"%PDF-1.7\n" + b"\x00garbage" * 10_000, "report.pdf")
    assert time.monotonic() - start < report_answers.PDF_TIMEOUT_S
    assert text == "" and problem == "`report.pdf` could not be read as a PDF."


def test_intake_reads_the_answers_from_a_pdf_when_answers_py_is_absent(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    for name in ("lab1.py", "lab2.py", "lab3.py"):
        (sub / name).write_text((REFERENCE_DIR / name).read_text())
    (sub / "HW4 report.pdf").write_bytes(pdf_of([f"{q} {v}" for q, v in KEY.items()]))
    got = collect(sub, tmp_path / "dest")
    assert got.complete and got.found["answers.py"] == "your report"
    assert got.answer_problems == {}
    assert any(note.startswith("`answers.py` was read from your report") and
               "1.10 True (HW4 report.pdf: `1.10 True`)" in note for note in got.notes)
    assert "1.9" in (tmp_path / "dest" / "answers.py").read_text()


def test_intake_reads_the_answers_from_notebook_markdown_cells(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    for name in ("lab1.py", "lab2.py", "lab3.py"):
        (sub / name).write_text((REFERENCE_DIR / name).read_text())
    book = new_notebook(cells=[new_code_cell("x = 1"),
                               new_markdown_cell(_report(KEY, "**{q}** {v}"))])
    (sub / "HW4.ipynb").write_text(nbformat.writes(book))
    got = collect(sub, tmp_path / "dest")
    assert got.found["answers.py"] == "your report" and got.answer_problems == {}
    # the labs were submitted as files: they win, and the notes say so
    assert "`lab2.py` is the file you submitted (it wins over your notebooks and report)." in got.notes
    assert (tmp_path / "dest" / "lab2.py").read_text() == (REFERENCE_DIR / "lab2.py").read_text()


def test_a_submitted_answers_py_wins_over_the_report(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "answers.py").write_text("TRUE_FALSE = {}\n")
    (sub / "report.md").write_text(_report(KEY))
    got = collect(sub, tmp_path / "dest")
    assert got.found["answers.py"] == "answers.py"
    assert (tmp_path / "dest" / "answers.py").read_text() == "TRUE_FALSE = {}\n"


def test_the_extract_command_writes_the_four_files(tmp_path, capsys):
    book = new_notebook(cells=[new_code_cell((REFERENCE_DIR / name).read_text())
                               for name in ("lab1.py", "lab2.py", "lab3.py")])
    (tmp_path / "HW4.ipynb").write_text(nbformat.writes(book))
    (tmp_path / "report.txt").write_text(_report(KEY, "{q}: {v}"))
    code = cli.main(["extract", str(tmp_path / "HW4.ipynb"), str(tmp_path / "report.txt"),
                     "--out", str(tmp_path / "out")])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["answers.py", "lab1.py", "lab2.py", "lab3.py"]
    printed = capsys.readouterr().out
    assert "`lab3.py` was built from your notebooks: `STE`, `device` from `HW4.ipynb` cell 3" in printed
    assert cli.main(["extract", str(tmp_path / "missing.ipynb"), "--out", str(tmp_path)]) == 2
