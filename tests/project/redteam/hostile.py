"""The hostile-submission catalogue: read it, and build one submission folder from an entry.

An entry is the reference with one definition replaced (spliced by ``autograder.validate.splice``,
the same splicing the catalogue of honest wrong submissions uses), plus optional module-level
code at the top of the file (``prelude`` and the ``[snippets]`` it ``uses``), extra files in
the submission folder, and symlinks or hard links that replace a file.
"""
from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from autograder.paths import REFERENCE_DIR, ROOT, SUBMISSION_FILES
from autograder.validate import splice

CATALOGUE = Path(__file__).with_name("hostile_submissions.toml")
MARKER_TOKEN = "@MARKER@"
ROOT_TOKEN = "@ROOT@"


@dataclass(frozen=True)
class Hostile:
    """One attack. ``marker`` ("hw4rt-<name>") tags the processes and files it leaves."""

    name: str
    attack: str
    file: str
    loses: tuple[str, ...]
    function: str | None = None
    source: str = ""
    prelude: str = ""
    extra_files: dict[str, str] = field(default_factory=dict)
    links: dict[str, dict[str, str]] = field(default_factory=dict)
    needs_root: bool = False
    forges: bool = False

    @property
    def marker(self) -> str:
        return f"hw4rt-{self.name}"


def load_catalogue(path: Path = CATALOGUE) -> list[Hostile]:
    """Every ``[[submission]]`` of the catalogue, with its snippets resolved into ``prelude``."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    snippets = data.get("snippets", {})
    hostiles = []
    for entry in data["submission"]:
        used = [snippets[name] for name in entry.get("uses", ())]  # KeyError: unknown snippet
        if "function" not in entry and entry["file"] not in entry.get("links", {}):
            raise ValueError(f"{entry['name']}: no function to replace and no link for {entry['file']}")
        hostiles.append(Hostile(
            name=entry["name"], attack=entry["attack"], file=entry["file"],
            loses=tuple(entry["loses"]), function=entry.get("function"),
            source=entry.get("source", ""),
            prelude="\n".join(used + [entry.get("prelude", "")]),
            extra_files=dict(entry.get("extra_files", {})), links=dict(entry.get("links", {})),
            needs_root=bool(entry.get("needs_root", False)), forges=bool(entry.get("forges", False))))
    names = [hostile.name for hostile in hostiles]
    if len(set(names)) != len(names):
        raise ValueError("duplicate names in the hostile catalogue")
    return hostiles


def hostile_source(hostile: Hostile, reference_text: str) -> str:
    """The text of ``hostile.file``: the reference spliced, the prelude on top, markers filled."""
    text = splice(reference_text, hostile.function, hostile.source)
    if hostile.prelude.strip():
        text = hostile.prelude.strip("\n") + "\n\n\n" + text
    return text.replace(MARKER_TOKEN, hostile.marker)


def build_submission(hostile: Hostile, dest: Path, *, root: Path = ROOT) -> Path:
    """Write the hostile submission into ``dest`` (created) and return it.

    Links point into ``root`` (the grader's tree, where reference/ and the hidden tests live).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for filename in SUBMISSION_FILES:
        if filename in hostile.links:
            continue
        text = (REFERENCE_DIR / filename).read_text()
        if filename == hostile.file and hostile.function:
            text = hostile_source(hostile, text)
        (dest / filename).write_text(text)
    for filename, text in hostile.extra_files.items():
        (dest / filename).write_text(text.replace(MARKER_TOKEN, hostile.marker))
    for filename, link in hostile.links.items():
        (kind, target), = link.items()
        target = target.replace(ROOT_TOKEN, str(root))
        if kind == "symlink":
            os.symlink(target, dest / filename)
        elif kind == "hardlink":
            os.link(target, dest / filename)
        else:
            raise ValueError(f"{hostile.name}: unknown link kind {kind!r}")
    return dest


def copy_reference(dest: Path) -> Path:
    """The reference's four files in ``dest``: the honest baseline every attack is compared to."""
    dest.mkdir(parents=True, exist_ok=True)
    for filename in SUBMISSION_FILES:
        shutil.copyfile(REFERENCE_DIR / filename, dest / filename)
    return dest
