"""Intake: the four files from a folder or a zip, one folder down at most, nothing else."""
from __future__ import annotations

import os
import stat
import zipfile

import pytest

from autograder import intake
from autograder.intake import IntakeError, collect
from autograder.paths import SUBMISSION_FILES


def _write_all(folder, prefix=""):
    folder.mkdir(parents=True, exist_ok=True)
    for name in SUBMISSION_FILES:
        (folder / name).write_text(f"# {prefix}{name}\n")


def test_a_folder_gives_exactly_the_four_files(tmp_path):
    _write_all(tmp_path / "sub")
    for extra in ("conftest.py", "numpy.py", "sitecustomize.py", "pytest.ini"):
        (tmp_path / "sub" / extra).write_text("raise SystemExit('must not be taken')\n")
    got = collect(tmp_path / "sub", tmp_path / "dest")
    assert got.complete and not got.missing
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(SUBMISSION_FILES)
    assert (tmp_path / "dest" / "lab2.py").read_text() == "# lab2.py\n"


def test_files_one_folder_down_and_macosx_ignored(tmp_path):
    root = tmp_path / "upload"
    _write_all(root / "__MACOSX" / "hw4", prefix="junk ")
    _write_all(root / "my_hw4")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "lab1.py").write_text("# hidden\n")
    got = collect(root, tmp_path / "dest")
    assert got.complete
    assert (tmp_path / "dest" / "lab1.py").read_text() == "# lab1.py\n"
    assert got.found["lab1.py"] == "my_hw4/lab1.py"


def test_two_folders_down_is_too_deep(tmp_path):
    _write_all(tmp_path / "upload" / "a" / "b")
    got = collect(tmp_path / "upload", tmp_path / "dest")
    assert got.missing == SUBMISSION_FILES
    assert all(any(f"`{name}`" in note for note in got.notes) for name in SUBMISSION_FILES)


def test_missing_file_is_recorded_with_a_note(tmp_path):
    _write_all(tmp_path / "sub")
    (tmp_path / "sub" / "lab3.py").unlink()
    got = collect(tmp_path / "sub", tmp_path / "dest")
    assert got.missing == ("lab3.py",)
    assert not (tmp_path / "dest" / "lab3.py").exists()
    assert any("`lab3.py`" in note for note in got.notes)


def test_symlinked_file_is_not_followed(tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("SECRET = 1\n")
    _write_all(tmp_path / "sub")
    (tmp_path / "sub" / "lab1.py").unlink()
    os.symlink(secret, tmp_path / "sub" / "lab1.py")
    got = collect(tmp_path / "sub", tmp_path / "dest")
    assert got.missing == ("lab1.py",)
    assert not (tmp_path / "dest" / "lab1.py").exists()
    assert any("symbolic link" in note for note in got.notes)


def test_symlinked_folder_is_not_entered(tmp_path):
    _write_all(tmp_path / "elsewhere")
    (tmp_path / "upload").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "upload" / "hw")
    got = collect(tmp_path / "upload", tmp_path / "dest")
    assert got.missing == SUBMISSION_FILES


def _zip(path, entries: dict, links=()):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def test_zip_of_a_folder(tmp_path):
    entries = {f"hw4_folder/{name}": f"# {name}\n" for name in SUBMISSION_FILES}
    entries["__MACOSX/hw4_folder/._lab1.py"] = "junk"
    got = collect(_zip(tmp_path / "s.zip", entries), tmp_path / "dest")
    assert got.complete
    assert (tmp_path / "dest" / "answers.py").read_text() == "# answers.py\n"


def test_zip_root_wins_over_a_folder(tmp_path):
    entries = {name: f"# root {name}\n" for name in SUBMISSION_FILES}
    entries.update({f"old/{name}": "# old\n" for name in SUBMISSION_FILES})
    collect(_zip(tmp_path / "s.zip", entries), tmp_path / "dest")
    assert (tmp_path / "dest" / "lab1.py").read_text() == "# root lab1.py\n"


def test_zip_traversal_is_never_written_outside(tmp_path):
    entries = {"../../lab1.py": "# escaped\n", "/abs/lab2.py": "# abs\n", "lab3.py": "# ok\n"}
    got = collect(_zip(tmp_path / "s.zip", entries), tmp_path / "work" / "dest")
    assert sorted(p.name for p in (tmp_path / "work" / "dest").iterdir()) == ["lab3.py"]
    assert not (tmp_path / "lab1.py").exists()
    assert "lab1.py" in got.missing and "lab2.py" in got.missing
    assert any("unsafe path" in note for note in got.notes)


def test_zip_symlink_entry_counts_as_missing(tmp_path):
    entries = {name: "# x\n" for name in SUBMISSION_FILES if name != "lab2.py"}
    got = collect(_zip(tmp_path / "s.zip", entries, links=[("lab2.py", "/etc/passwd")]),
                  tmp_path / "dest")
    assert got.missing == ("lab2.py",)
    assert any("symbolic link" in note for note in got.notes)


def test_zip_bomb_entry_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 1000)
    entries = {name: "# x\n" for name in SUBMISSION_FILES}
    entries["lab1.py"] = "0" * 100_000  # compresses to little, expands past the cap
    got = collect(_zip(tmp_path / "s.zip", entries), tmp_path / "dest")
    assert got.missing == ("lab1.py",)
    assert any("larger than" in note for note in got.notes)


def test_upload_folder_holding_one_zip(tmp_path):
    (tmp_path / "upload").mkdir()
    _zip(tmp_path / "upload" / "submission.zip", {name: "# z\n" for name in SUBMISSION_FILES})
    got = collect(tmp_path / "upload", tmp_path / "dest")
    assert got.complete


def test_corrupt_or_absent_submission_raises_a_submission_error(tmp_path):
    with pytest.raises(IntakeError):
        collect(tmp_path / "nothing-here", tmp_path / "dest")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(IntakeError):
        collect(tmp_path / "notes.txt", tmp_path / "dest")


def test_hard_linked_file_counts_as_missing(tmp_path):
    secret = tmp_path / "grader" / "reference_lab3.py"
    secret.parent.mkdir()
    secret.write_text("SECRET = 'the reference'\n")
    _write_all(tmp_path / "sub")
    (tmp_path / "sub" / "lab3.py").unlink()
    os.link(secret, tmp_path / "sub" / "lab3.py")
    got = collect(tmp_path / "sub", tmp_path / "dest")
    assert got.missing == ("lab3.py",)
    assert not (tmp_path / "dest" / "lab3.py").exists()
    assert any("hard link" in note and "`lab3.py`" in note for note in got.notes)
    assert (tmp_path / "dest" / "lab1.py").read_text() == "# lab1.py\n"


def test_fifo_in_a_folder_is_not_read(tmp_path):
    _write_all(tmp_path / "sub")
    (tmp_path / "sub" / "lab2.py").unlink()
    os.mkfifo(tmp_path / "sub" / "lab2.py")
    got = collect(tmp_path / "sub", tmp_path / "dest")  # a blocking read would hang here
    assert got.missing == ("lab2.py",)
    assert any("not a regular file" in note for note in got.notes)


def test_zip_entry_of_a_special_file_counts_as_missing(tmp_path):
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as archive:
        for name in SUBMISSION_FILES:
            info = zipfile.ZipInfo(name)
            kind = stat.S_IFCHR if name == "answers.py" else stat.S_IFREG
            info.external_attr = (kind | 0o644) << 16
            archive.writestr(info, "# z\n")
    got = collect(tmp_path / "s.zip", tmp_path / "dest")
    assert got.missing == ("answers.py",)
    assert any("not a regular file" in note for note in got.notes)


# --- notebooks and reports stand in for missing files ---------------------------------------

def _notebook(*cells: str) -> str:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    return nbformat.writes(new_notebook(cells=[new_code_cell(c) for c in cells]))


def test_zip_of_a_folder_of_notebooks_builds_the_lab_files(tmp_path):
    entries = {"HW4/Lab2-3.ipynb": _notebook("import torch", "def prune_by_percentage(layer, q=80.0):\n"
                                                             "    return torch.zeros(1)"),
               "HW4/report.md": "1.1 True\n",
               "HW4/deeper/lab1.ipynb": _notebook("def loss(W, X, Y):\n    return 0.0"),
               "__MACOSX/HW4/._Lab2-3.ipynb": "junk"}
    got = collect(_zip(tmp_path / "s.zip", entries), tmp_path / "dest")
    assert got.found["lab2.py"] == got.found["lab3.py"] == got.found["lab1.py"] == "your notebooks"
    assert got.found["answers.py"] == "your report"
    lab2 = (tmp_path / "dest" / "lab2.py").read_text()
    assert "def prune_by_percentage(layer, q=80.0):" in lab2 and "import torch" in lab2
    assert "def loss(W, X, Y):\n    return 0.0" not in (tmp_path / "dest" / "lab1.py").read_text()
    assert any(note.startswith("`lab2.py` was built from your notebooks: `prune_by_percentage` "
                               "from `HW4/Lab2-3.ipynb` cell 2") for note in got.notes)


def test_a_linked_notebook_is_not_read(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (tmp_path / "elsewhere.ipynb").write_text(_notebook("def loss(W, X, Y):\n    return 1.0"))
    (sub / "lab1.ipynb").symlink_to(tmp_path / "elsewhere.ipynb")
    got = collect(sub, tmp_path / "dest")
    assert "lab1.py" in got.missing
    assert any("`lab1.ipynb` is a symbolic link" in note for note in got.notes)


def test_a_folder_of_py_files_and_a_readme_is_graded_as_before(tmp_path):
    _write_all(tmp_path / "sub")
    (tmp_path / "sub" / "README.md").write_text("1.1 False\n")
    got = collect(tmp_path / "sub", tmp_path / "dest")
    assert got.found == {name: name for name in SUBMISSION_FILES}
    assert got.notes == () and got.sources == {} and got.answer_problems == {}
