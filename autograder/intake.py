"""Intake: find the four submission files in a directory or a .zip and copy only them.

A submission is a directory or a .zip holding ``lab1.py lab2.py lab3.py answers.py`` at its
root or one folder down (students often zip a whole folder). Gradescope's upload folder may
also hold a single .zip, which is opened in turn. Rules:
- only the four files are taken, so a submitted ``conftest.py``, ``numpy.py`` or
  ``sitecustomize.py`` never reaches the grader;
- ``__MACOSX`` and hidden entries are ignored;
- links are never followed: a symlinked file, or a hard-linked one (``st_nlink > 1``: the same
  inode may be a file of the grader's), counts as missing, with a note; only regular files are
  ever copied (no device, fifo or socket, in a folder or an archive);
- size caps guard against zip bombs (entries are read with a bounded read, since a zip's
  declared sizes can lie); archive names are never used as paths, so traversal cannot write
  outside ``dest``.
When some of the four files are missing, the submission's notebooks (``.ipynb``) and report
(``.pdf``, ``.md``, ``.txt``), found and read under the same rules, are used to build them
(``autograder.extract``): a submitted file always wins, and the notes say where each came from.
"""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.errors import SubmissionError
from autograder.paths import SUBMISSION_FILES

EXTRA_SUFFIXES = (".ipynb", ".pdf", ".md", ".markdown", ".txt")  # see autograder.extract
MAX_FILE_BYTES = 2 * 1024 * 1024  # one source file; real ones are a few kB
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
MAX_ARCHIVE_ENTRIES = 5000
MAX_EXTRA_BYTES = 32 * 1024 * 1024  # one notebook or report: outputs and figures are large
MAX_EXTRA_FILES = 20  # notebooks and reports taken from one submission
MAX_EXTRA_TOTAL = 64 * 1024 * 1024  # all of them together


class IntakeError(SubmissionError):
    """The submission could not be read at all (corrupt or oversized archive)."""

    kind = "intake"


@dataclass(frozen=True)
class Intake:
    """What intake found. ``found`` maps each file taken to where it came from; ``sources``
    maps each file built from notebooks or the report to a line saying which cells or lines;
    ``answer_problems`` maps a question the report does not answer once to its message."""

    dest: Path
    found: dict
    missing: tuple[str, ...]
    notes: tuple[str, ...]
    sources: dict = field(default_factory=dict)
    answer_problems: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing


def collect(src: Path | str, dest: Path | str) -> Intake:
    """Copy the submission files of ``src`` (directory or .zip) into ``dest`` (created).

    Never raises for a missing or unreadable single file (it is recorded in ``missing`` with a
    note); raises ``IntakeError`` only when ``src`` itself cannot be read.
    """
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    extras: dict[str, bytes] = {}
    if src.is_file() and zipfile.is_zipfile(src):
        files = _from_zip(src, notes, extras)
    elif src.is_dir():
        files = _from_dir(src, notes, extras)
        if not files and not extras:
            archives = [p for p in _visible_children(src) if p.suffix.lower() == ".zip"
                        and not p.is_symlink() and p.is_file()]
            if len(archives) == 1:
                notes.append(f"Took the files from the archive `{archives[0].name}`.")
                files = _from_zip(archives[0], notes, extras)
    elif src.exists():
        raise IntakeError(f"The submission `{src.name}` is neither a folder nor a .zip archive.")
    else:
        raise IntakeError(f"No submission found at `{src}`.")

    sources, answer_problems = {}, {}
    if extras:
        from autograder.extract import complete

        made = complete(tuple(name for name in SUBMISSION_FILES if name not in files), extras)
        notes += made.notes
        sources, answer_problems = dict(made.sources), made.answer_problems
        from_notebooks = made.files or any(o.lower().endswith(".ipynb") for o in extras)
        for name in SUBMISSION_FILES:
            if name in files and from_notebooks:
                sources[name] = (f"`{name}` is the file you submitted (it wins over your "
                                 "notebooks and report).")
            elif name in made.files:
                files[name] = ("your report" if name == "answers.py" else "your notebooks",
                               made.files[name])
    found = {}
    for name, (origin, data) in sorted(files.items()):
        target = dest / name
        target.write_bytes(data)
        os.chmod(target, 0o644)
        found[name] = origin
    missing = tuple(name for name in SUBMISSION_FILES if name not in found)
    for name in missing:
        if not any(f"`{name}`" in note for note in notes):
            notes.append(f"`{name}` was not found in the submission; the problems that use it "
                         "get 0.")
    notes += [sources[name] for name in SUBMISSION_FILES if name in sources]
    return Intake(dest=dest, found=found, missing=missing, notes=tuple(notes), sources=sources,
                  answer_problems=answer_problems)


def _visible_children(folder: Path):
    return sorted(p for p in folder.iterdir() if not _ignored(p.name))


def _ignored(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def submission_folders(src: Path) -> list[Path]:
    """The entries of folder ``src`` that each look like a submission when ``src`` is a folder
    of a class's submissions rather than one submission: two or more sub-folders holding a
    file of the contract or a notebook, or else two or more .zip archives. Empty otherwise
    (``collect`` takes one submission at the root, one folder down or in its only archive)."""
    def holds_work(folder: Path) -> bool:
        return any(_match(folder, name) is not None for name in SUBMISSION_FILES) or \
            any(p.suffix.lower() == ".ipynb" for p in _visible_children(folder))

    if holds_work(src):
        return []
    children = [p for p in _visible_children(src) if not p.is_symlink()]
    folders = [p for p in children if p.is_dir() and holds_work(p)]
    archives = [p for p in children if p.is_file() and p.suffix.lower() == ".zip"]
    return folders if len(folders) > 1 else archives if not folders and len(archives) > 1 else []


def _from_dir(src: Path, notes: list[str], extras: dict) -> dict:
    """{name: (origin, bytes)} for the four files, root first, then one folder down; the
    notebooks and reports of those folders go into ``extras`` ({origin: bytes})."""
    folders = [src] + [p for p in _visible_children(src) if p.is_dir() and not p.is_symlink()]
    for folder in folders:
        for path in _visible_children(folder):
            if path.suffix.lower() in EXTRA_SUFFIXES and len(extras) < MAX_EXTRA_FILES:
                origin = str(path.relative_to(src))
                if path.is_symlink():
                    notes.append(f"`{origin}` is a symbolic link; it was not read.")
                    continue
                _keep_extra(extras, origin, _read_regular(path, origin, notes,
                                                          cap=MAX_EXTRA_BYTES), notes)
    files = {}
    for name in SUBMISSION_FILES:
        for folder in folders:
            path = _match(folder, name)
            if path is None:
                continue
            origin = str(path.relative_to(src))
            if path.is_symlink():
                notes.append(f"`{origin}` is a symbolic link; links are not followed, so "
                             f"`{name}` counts as missing. Submit the file itself.")
                break
            data = _read_regular(path, origin, notes)
            if data is not None:
                files[name] = (origin, data)
                _note_origin(name, origin, notes)
            break
    return files


def _keep_extra(extras: dict, origin: str, data: bytes | None, notes: list[str]) -> None:
    if data is None:
        return
    if sum(map(len, extras.values())) + len(data) > MAX_EXTRA_TOTAL:
        notes.append(f"`{origin}` was not read: the notebooks and reports together exceed "
                     f"{MAX_EXTRA_TOTAL // 2**20} MB.")
        return
    extras[origin] = data


def _match(folder: Path, name: str) -> Path | None:
    """``folder/name``, or a case-insensitive match (``Lab1.py``), without following links."""
    exact = folder / name
    if exact.is_symlink() or exact.exists():
        return exact
    for child in _visible_children(folder):
        if child.name.lower() == name:
            return child
    return None


def _read_regular(path: Path, origin: str, notes: list[str], *,
                  cap: int | None = None) -> bytes | None:
    cap = MAX_FILE_BYTES if cap is None else cap  # read at call time (tests lower it)
    # O_NOFOLLOW: a link swapped in after the check above still is not followed;
    # O_NONBLOCK: opening a fifo must not wait for a writer (it is refused just below).
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        notes.append(f"`{origin}` could not be read (a link or unreadable); it counts as missing.")
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            notes.append(f"`{origin}` is not a regular file; it counts as missing.")
            return None
        if info.st_nlink > 1:
            notes.append(f"`{origin}` is a hard link (the same file as another path); links are "
                         f"not followed, so it counts as missing. Submit a copy of the file.")
            return None
        data = handle.read(cap + 1)
    if len(data) > cap:
        notes.append(f"`{origin}` is larger than {cap // 1024} kB; it counts as missing.")
        return None
    return data


def _note_origin(name: str, origin: str, notes: list[str]) -> None:
    if origin != name:
        notes.append(f"Took `{origin}` as `{name}`.")


def _from_zip(archive: Path, notes: list[str], extras: dict) -> dict:
    if archive.stat().st_size > MAX_ARCHIVE_BYTES:
        raise IntakeError(f"The archive `{archive.name}` is larger than "
                          f"{MAX_ARCHIVE_BYTES // 2**20} MB.")
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = zf.infolist()
            if len(entries) > MAX_ARCHIVE_ENTRIES:
                raise IntakeError(f"The archive `{archive.name}` has more than "
                                  f"{MAX_ARCHIVE_ENTRIES} entries.")
            chosen = _choose_zip_entries(entries, notes)
            for info in _extra_zip_entries(entries)[:MAX_EXTRA_FILES]:
                _keep_extra(extras, info.filename,
                            _read_zip_entry(zf, info, notes, cap=MAX_EXTRA_BYTES), notes)
            files = {}
            for name, info in chosen.items():
                data = _read_zip_entry(zf, info, notes)
                if data is not None:
                    files[name] = (info.filename, data)
                    _note_origin(name, info.filename, notes)
            return files
    except zipfile.BadZipFile as error:
        raise IntakeError(f"The archive `{archive.name}` is corrupt: {error}.") from error


def _choose_zip_entries(entries, notes: list[str]) -> dict:
    """{name: ZipInfo} for entries at depth 0 or 1; the root wins, then folders in order."""
    candidates: dict[str, list] = {}
    for info in entries:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        parts = path.parts
        if info.is_dir() or not parts:
            continue
        if parts[0] == "/" or ".." in parts or ":" in parts[0]:
            notes.append(f"Ignored the archive entry `{info.filename}` (an unsafe path).")
            continue
        if any(_ignored(part) for part in parts) or len(parts) > 2:
            continue
        name = parts[-1].lower()
        if name in SUBMISSION_FILES:
            candidates.setdefault(name, []).append(info)
    return {name: min(infos, key=lambda i: (i.filename.count("/"), i.filename))
            for name, infos in candidates.items()}


def _extra_zip_entries(entries) -> list:
    """The notebooks and reports among the entries at depth 0 or 1, safe paths only."""
    chosen = []
    for info in entries:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if (info.is_dir() or not parts or len(parts) > 2 or parts[0] == "/" or ".." in parts
                or ":" in parts[0] or any(_ignored(part) for part in parts)):
            continue
        if PurePosixPath(parts[-1]).suffix.lower() in EXTRA_SUFFIXES:
            chosen.append(info)
    return chosen


def _read_zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, notes: list[str], *,
                    cap: int | None = None) -> bytes | None:
    cap = MAX_FILE_BYTES if cap is None else cap  # read at call time (tests lower it)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        notes.append(f"`{info.filename}` is a symbolic link; links are not followed, so it "
                     "counts as missing. Submit the file itself.")
        return None
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        notes.append(f"`{info.filename}` is not a regular file; it counts as missing.")
        return None
    if info.flag_bits & 0x1:
        notes.append(f"`{info.filename}` is encrypted; it counts as missing.")
        return None
    if info.file_size > cap:
        notes.append(f"`{info.filename}` is larger than {cap // 1024} kB; it counts as missing.")
        return None
    try:
        with zf.open(info) as handle:
            data = handle.read(cap + 1)  # bounded: declared sizes can lie
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as error:
        notes.append(f"`{info.filename}` could not be extracted ({error}); it counts as missing.")
        return None
    if len(data) > cap:
        notes.append(f"`{info.filename}` is larger than {cap // 1024} kB; it counts as missing.")
        return None
    return data
