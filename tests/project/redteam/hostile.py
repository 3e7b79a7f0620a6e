"""The hostile-submission catalogue: read it, and build one submission folder from an entry.

An entry is the reference with one definition replaced (spliced by ``autograder.validate.splice``,
the same splicing the catalogue of honest wrong submissions uses), plus optional module-level
code at the top of the file (``prelude`` and the ``[snippets]`` it ``uses``), extra files in
the submission folder, and symlinks or hard links that replace a file.

Grading is the suite's cost (10-25 s a submission), so ``pack`` groups attacks that touch
disjoint definitions and problems into one submission; each group is graded once.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from autograder.compat import tomllib
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
    snippets: tuple[str, ...] = ()  # names of [snippets] the prelude needs
    extra_files: dict[str, str] = field(default_factory=dict)
    links: dict[str, dict[str, str]] = field(default_factory=dict)
    needs_root: bool = False
    forges: bool = False
    known_gap: str = ""  # a defence the engine lacks today: the grade is expected to fail

    @property
    def marker(self) -> str:
        return f"hw4rt-{self.name}"

    @property
    def occupies(self) -> set[tuple[str, str]]:
        """What of the submission the attack owns: (file, definition), (file, "*") when it acts
        on the whole module (import-time code, a link), ("extra", filename) for extra files."""
        whole = bool(self.prelude.strip()) or self.file in self.links or not self.function
        owned = {(self.file, "*" if whole else self.function)}
        owned |= {(name, "*") for name in self.links}
        owned |= {("extra", name) for name in self.extra_files}
        return owned

    def conflicts_with(self, other: "Hostile") -> bool:
        for file, what in self.occupies:
            for other_file, other_what in other.occupies:
                if file == other_file and (what == other_what or "*" in (what, other_what)):
                    return True
        # a known gap is graded alone, so its expected failure hides nobody else's result
        return bool(self.known_gap or other.known_gap)


def load_catalogue(path: Path = CATALOGUE) -> tuple[list[Hostile], dict[str, str]]:
    """Every ``[[submission]]`` of the catalogue, and the ``[snippets]`` they may use."""
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    snippets = data.get("snippets", {})
    hostiles = []
    for entry in data["submission"]:
        used = tuple(entry.get("uses", ()))
        unknown = [name for name in used if name not in snippets]
        if unknown:
            raise ValueError(f"{entry['name']}: unknown snippets {unknown}")
        if "function" not in entry and entry["file"] not in entry.get("links", {}):
            raise ValueError(f"{entry['name']}: no function to replace and no link for {entry['file']}")
        hostiles.append(Hostile(
            name=entry["name"], attack=entry["attack"], file=entry["file"],
            loses=tuple(entry["loses"]), function=entry.get("function"),
            source=entry.get("source", ""),
            prelude=entry.get("prelude", ""), snippets=used,
            extra_files=dict(entry.get("extra_files", {})), links=dict(entry.get("links", {})),
            needs_root=bool(entry.get("needs_root", False)), forges=bool(entry.get("forges", False)),
            known_gap=entry.get("known_gap", "")))
    names = [hostile.name for hostile in hostiles]
    if len(set(names)) != len(names):
        raise ValueError("duplicate names in the hostile catalogue")
    return hostiles, snippets


def pack(hostiles: list[Hostile], *, separate_root: bool = True) -> list[tuple[Hostile, ...]]:
    """Group attacks that can share one submission (first fit, catalogue order).

    Attacks in a group own disjoint parts of the submission (see ``Hostile.occupies``) and
    lose disjoint problems, so one grade judges them all: the union of their ``loses`` must
    lose points and every other problem keep them. With ``separate_root`` (a run without
    root, which skips them) root-only attacks are grouped apart; as root they mix with the
    others, so fewer grades are needed.
    """
    groups: list[list[Hostile]] = []
    for hostile in hostiles:
        for group in groups:
            if not any(hostile.conflicts_with(other) or set(hostile.loses) & set(other.loses)
                       or (separate_root and hostile.needs_root != other.needs_root)
                       for other in group):
                group.append(hostile)
                break
        else:
            groups.append([hostile])
    return [tuple(group) for group in groups]


def hostile_source(group: tuple[Hostile, ...], filename: str, reference_text: str,
                   snippets: dict[str, str]) -> str:
    """The text of ``filename`` under ``group``: every attack on it spliced into the reference,
    then the snippets they use (once each) and their preludes on top, markers filled in."""
    text, top, used = reference_text, [], []
    for hostile in group:
        if hostile.file != filename or not hostile.function:
            continue
        text = splice(text, hostile.function, hostile.source.replace(MARKER_TOKEN, hostile.marker))
        for name in hostile.snippets:
            if name not in used:
                used.append(name)
                top.append(snippets[name].replace(MARKER_TOKEN, hostile.marker).strip("\n"))
        if hostile.prelude.strip():
            top.append(hostile.prelude.replace(MARKER_TOKEN, hostile.marker).strip("\n"))
    return "\n\n\n".join(top + [text]) if top else text


def build_submission(group: tuple[Hostile, ...], snippets: dict[str, str], dest: Path, *,
                     root: Path = ROOT) -> Path:
    """Write the submission of ``group`` (one or more compatible attacks) into ``dest``.

    Links point into ``root`` (the grader's tree, where reference/ and the hidden tests live).
    """
    dest.mkdir(parents=True, exist_ok=True)
    links = {name: (hostile, link) for hostile in group for name, link in hostile.links.items()}
    for filename in SUBMISSION_FILES:
        if filename not in links:
            text = hostile_source(group, filename, (REFERENCE_DIR / filename).read_text(), snippets)
            (dest / filename).write_text(text)
    for hostile in group:
        for filename, text in hostile.extra_files.items():
            (dest / filename).write_text(text.replace(MARKER_TOKEN, hostile.marker))
    for filename, (hostile, link) in links.items():
        (kind, target), = link.items()
        target = target.replace(ROOT_TOKEN, str(root))
        if kind == "symlink":
            os.symlink(target, dest / filename)
        elif kind == "hardlink":
            # A hard link shares the inode, so linking the repository's own file would raise its
            # link count for every grade running meanwhile (intake refuses files with several
            # links, the reference's included). Link a private copy of the same bytes instead:
            # intake sees the same thing, a file whose inode has two names.
            decoy = dest.parent / ".hardlink-targets" / Path(target).name
            decoy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, decoy)
            os.link(decoy, dest / filename)
        else:
            raise ValueError(f"{hostile.name}: unknown link kind {kind!r}")
    return dest


def copy_reference(dest: Path) -> Path:
    """The reference's four files in ``dest``: the honest baseline every attack is compared to."""
    dest.mkdir(parents=True, exist_ok=True)
    for filename in SUBMISSION_FILES:
        shutil.copyfile(REFERENCE_DIR / filename, dest / filename)
    return dest
