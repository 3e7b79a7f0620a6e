"""Submission files made from notebooks and the report, and the ``extract`` command.

``complete(found, extras)`` is what intake calls when a submission lacks some of the four files:
each missing lab file is built from the notebooks (``autograder.notebooks``), and a missing
``answers.py`` from the report (``autograder.report_answers``). The files it makes are plain
source text; they go through the same intake copy and sandbox as submitted ones. Nothing is
executed here: notebooks and reports are only parsed.

Command: ``python -m autograder extract NOTEBOOK_OR_REPORT... --out DIR`` writes the files the
grader would grade, for staff and students to inspect.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder import notebooks, report_answers

NOTEBOOK_SUFFIX = ".ipynb"
EXTRA_SUFFIXES = (NOTEBOOK_SUFFIX, report_answers.PDF_SUFFIX) + report_answers.TEXT_SUFFIXES


@dataclass
class Completion:
    """Files made for the missing ones: ``files`` {name: bytes}; ``sources`` {name: one line
    saying where each came from}; ``answer_problems`` {question: message}; student ``notes``."""

    files: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    answer_problems: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def complete(missing: tuple[str, ...], extras: dict[str, bytes]) -> Completion:
    """Build the files of ``missing`` from ``extras`` ({origin path: bytes} of the submission's
    notebooks and reports). A file is made only when there is something to make it from."""
    done = Completion()
    books = {name: data for name, data in extras.items() if name.lower().endswith(NOTEBOOK_SUFFIX)}
    labs = [name for name in notebooks.CONTRACT if name in missing]
    if books and labs:
        built, notes = notebooks.extract_all(books, labs)
        done.notes += notes
        for name, lab in built.items():
            done.files[name] = lab.text.encode()
            done.sources[name] = f"`{name}` was built from your notebooks: {lab.describe()}."
    if "answers.py" in missing:
        texts = _report_texts(extras, books, done.notes)
        if texts:
            reading = report_answers.read_answers(texts)
            done.files["answers.py"] = report_answers.answers_module(reading).encode()
            done.answer_problems = dict(reading.problems)
            done.sources["answers.py"] = f"`answers.py` was read from your report, {reading.summary()}."
    return done


def _report_texts(extras: dict[str, bytes], books: dict[str, bytes],
                  notes: list[str]) -> list[tuple[str, str]]:
    """[(where, text)] of every report: PDFs, markdown and text files, notebook markdown cells."""
    texts = []
    for name in sorted(extras):
        data, lower = extras[name], name.lower()
        if lower.endswith(report_answers.PDF_SUFFIX):
            text, problem = report_answers.pdf_text(data, name)
            if problem:
                notes.append(problem)
            texts.append((name, text))
        elif lower.endswith(report_answers.TEXT_SUFFIXES):
            texts.append((name, data.decode("utf-8", errors="replace")))
    for name in sorted(books):
        cells = notebooks.markdown_cells(name, books[name])
        if cells:
            texts.append((f"{name} (markdown cells)", "\n".join(cells)))
    return texts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Write the lab1.py, lab2.py, lab3.py and answers.py the grader builds "
                          "from notebooks and a report (no cell is run).")
    parser.add_argument("inputs", nargs="+", metavar="NOTEBOOK_OR_REPORT",
                        help=".ipynb notebooks, and optionally the report (.pdf, .md, .txt)")
    parser.add_argument("--out", required=True, help="folder to write the files into (created)")


def run(args: argparse.Namespace) -> int:
    """0 when every input was read (missing definitions are reported, not fatal), 2 otherwise."""
    extras = {}
    for item in args.inputs:
        path = Path(item)
        if not path.is_file() or not path.name.lower().endswith(EXTRA_SUFFIXES):
            print(f"extract: `{item}` is not a notebook or report file.", file=sys.stderr)
            return 2
        extras[path.name] = path.read_bytes()
    done = complete(tuple(notebooks.CONTRACT) + ("answers.py",), extras)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(done.files.items()):
        (out / name).write_bytes(data)
        print(f"wrote {out / name}")
    for line in list(done.sources.values()) + done.notes:
        print(f"- {line}")
    return 0
