"""Discovery: turn the SUBMISSIONS argument of ``batch`` into a list of submissions to grade.

SUBMISSIONS is one of:
- a Gradescope "Export Submissions" zip, unpacked (safely) into the batch's folder first;
- its unpacked folder: ``submission_metadata.yml`` (at the root or one folder down) and one
  ``submission_<id>/`` folder per submission;
- a plain folder whose entries are submissions: every folder or ``.zip`` is one submission.

Discovery never looks inside a submission: whether a folder holds the four files, Python or
notebooks, and whether a zip is readable at all, is ``grade``'s business (its intake), so a
corrupt zip or an empty folder is still a submission, with its own row. Loose files that are
neither (a README beside the folders) are listed as ignored.
"""
from __future__ import annotations

import datetime
import hashlib
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

METADATA_NAME = "submission_metadata.yml"
GRADESCOPE_PREFIX = "submission_"
# Caps on an export zip: a class of 300 with notebooks and images is a few hundred MB.
MAX_EXPORT_BYTES = 8 * 2**30
MAX_EXPORT_ENTRIES = 200_000


class DiscoveryError(Exception):
    """SUBMISSIONS itself cannot be read (missing, or an unreadable export zip)."""


@dataclass(frozen=True)
class Submitter:
    name: str = ""
    sid: str = ""
    email: str = ""


@dataclass(frozen=True)
class Submission:
    """One submission: ``id`` names its files in the batch folder; ``path`` is what ``grade``
    receives (a folder or a zip); ``path`` is None when the metadata lists a submission whose
    folder the export lacks."""

    id: str
    path: Path | None
    submitters: tuple[Submitter, ...] = ()
    created_at: str = ""
    gradescope_score: float | None = None

    @property
    def names(self) -> str:
        return "; ".join(s.name for s in self.submitters if s.name)

    @property
    def emails(self) -> str:
        return "; ".join(s.email for s in self.submitters if s.email)

    @property
    def sids(self) -> str:
        return "; ".join(s.sid for s in self.submitters if s.sid)


@dataclass(frozen=True)
class Discovery:
    submissions: tuple[Submission, ...]
    ignored: tuple[str, ...] = ()  # entries of SUBMISSIONS that are no submission
    source: str = "folder"  # "gradescope export" or "folder"
    notes: tuple[str, ...] = field(default=())


def discover(src: Path | str, unpack_dir: Path) -> Discovery:
    """The submissions of ``src``; an export zip is unpacked under ``unpack_dir`` (once: a
    rerun finds the same zip already unpacked). Raises DiscoveryError when ``src`` is unusable."""
    src = Path(src)
    if not src.exists():
        raise DiscoveryError(f"no such file or folder: {src}")
    if src.is_file():
        if not zipfile.is_zipfile(src):
            raise DiscoveryError(f"{src} is neither a folder nor a zip archive")
        src = unpack_export(src, unpack_dir)
    metadata_file = _find_metadata(src)
    if metadata_file is not None:
        return _from_export(metadata_file)
    return _from_folder(src)


# --- a Gradescope export -------------------------------------------------------------------

def _find_metadata(folder: Path) -> Path | None:
    if (folder / METADATA_NAME).is_file():
        return folder / METADATA_NAME
    children = [c for c in _entries(folder) if c.is_dir()]
    found = [c / METADATA_NAME for c in children if (c / METADATA_NAME).is_file()]
    return found[0] if len(found) == 1 else None


def _from_export(metadata_file: Path) -> Discovery:
    folder = metadata_file.parent
    metadata = read_metadata(metadata_file)
    notes = []
    if not metadata:
        notes.append(f"{METADATA_NAME} lists no submission (or could not be read): rows are "
                     "named by folder only")
    on_disk = {c.name: c for c in _entries(folder) if c.is_dir() or _is_zip_name(c)}
    submissions = []
    for key, record in metadata.items():
        path = on_disk.pop(key, None)
        submissions.append(_submission(_export_id(key), path, record))
    for name, path in sorted(on_disk.items()):  # folders the metadata does not list
        submissions.append(Submission(id=_export_id(name), path=path))
    ignored = tuple(sorted(c.name for c in _entries(folder) if c.is_file()
                           and c.name != METADATA_NAME and not _is_zip_name(c)))
    return Discovery(_unique_ids(submissions), ignored, "gradescope export", tuple(notes))


def _export_id(name: str) -> str:
    stem = name[:-4] if name.lower().endswith(".zip") else name
    return stem[len(GRADESCOPE_PREFIX):] if stem.startswith(GRADESCOPE_PREFIX) else stem


def _submission(sub_id: str, path: Path | None, record: dict) -> Submission:
    submitters = []
    for person in record.get("submitters") or ():
        if isinstance(person, dict):
            submitters.append(Submitter(name=_text(person.get("name")),
                                        sid=_text(person.get("sid")),
                                        email=_text(person.get("email"))))
    score = record.get("score")
    return Submission(id=sub_id, path=path, submitters=tuple(submitters),
                      created_at=_text(record.get("created_at")),
                      gradescope_score=float(score) if isinstance(score, (int, float)) else None)


def read_metadata(path: Path) -> dict[str, dict]:
    """``submission_metadata.yml`` as ``{folder name: record}``, its Ruby-symbol keys
    (``:submitters``, ``:name``) without their colon. Unknown YAML tags (a Ruby object) read as
    plain data and missing fields are simply absent; an unreadable file gives ``{}``."""
    import yaml

    class _Tolerant(yaml.SafeLoader):
        """SafeLoader that reads any unknown tag as the plain node beneath it."""

    def _untagged(loader, suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    _Tolerant.add_multi_constructor("!", _untagged)
    _Tolerant.add_multi_constructor("tag:", _untagged)
    try:
        data = yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=_Tolerant)
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(_symbol(k)): v for k, v in _unsymbol(data).items() if isinstance(v, dict)}


def _symbol(key):
    return key[1:] if isinstance(key, str) and key.startswith(":") else key


def _unsymbol(value):
    if isinstance(value, dict):
        return {_symbol(k): _unsymbol(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsymbol(v) for v in value]
    return value


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


# --- a plain folder ------------------------------------------------------------------------

def _from_folder(folder: Path) -> Discovery:
    submissions, ignored = [], []
    for child in _entries(folder):
        if child.is_dir() or _is_zip_name(child):
            submissions.append(Submission(id=child.name[:-4] if _is_zip_name(child)
                                          else child.name, path=child))
        else:
            ignored.append(child.name)
    return Discovery(_unique_ids(submissions), tuple(ignored), "folder")


def _entries(folder: Path) -> list[Path]:
    """Visible entries, sorted; symlinks are never followed into (a link is no submission)."""
    return sorted((c for c in folder.iterdir() if not c.name.startswith((".", "__MACOSX"))
                   and not c.is_symlink()), key=lambda p: p.name)


def _is_zip_name(path: Path) -> bool:
    return path.suffix.lower() == ".zip" and path.is_file()


_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


def _unique_ids(submissions: list[Submission]) -> tuple[Submission, ...]:
    """Ids made safe as file names, and distinct (``a/`` and ``a.zip`` become ``a``, ``a-2``)."""
    seen: set[str] = set()
    out = []
    for sub in submissions:
        base = _SAFE_ID.sub("_", sub.id).strip("._") or "submission"
        candidate, n = base, 1
        while candidate in seen:
            n += 1
            candidate = f"{base}-{n}"
        seen.add(candidate)
        out.append(Submission(candidate, sub.path, sub.submitters, sub.created_at,
                              sub.gradescope_score))
    return tuple(out)


# --- unpacking an export zip ---------------------------------------------------------------

def unpack_export(archive: Path, unpack_dir: Path) -> Path:
    """Unpack ``archive`` into ``unpack_dir/<its hash>/`` and return that folder.

    Regular files only (links and devices skipped), names checked so nothing lands outside the
    folder, sizes capped with bounded reads (declared sizes can lie). A finished unpack is
    marked, so a resumed batch reuses it; a half-done one is redone.
    """
    digest = _file_digest(archive)[:16]
    target = unpack_dir / digest
    done = target / ".unpacked"
    if done.is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    total = 0
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = zf.infolist()
            if len(entries) > MAX_EXPORT_ENTRIES:
                raise DiscoveryError(f"{archive.name} has more than {MAX_EXPORT_ENTRIES} entries")
            for info in entries:
                relative = _safe_member(info)
                if relative is None:
                    continue
                dest = target.joinpath(*relative.parts)
                if info.is_dir():  # kept: an empty submission folder is still a submission
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source, open(dest, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        total += len(chunk)
                        if total > MAX_EXPORT_BYTES:
                            raise DiscoveryError(f"{archive.name} unpacks to more than "
                                                 f"{MAX_EXPORT_BYTES // 2**30} GiB")
                        sink.write(chunk)
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as error:
        raise DiscoveryError(f"cannot unpack {archive.name}: {error}") from error
    done.write_text(archive.name + "\n", encoding="utf-8")
    return target


def _safe_member(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, or None for a link, a device or an unsafe name."""
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0: the archiver recorded no file type
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        return None
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if path.is_absolute() or any(part in ("", "..") for part in path.parts) or not path.parts:
        return None
    if path.parts[0] == "__MACOSX":
        return None
    return path


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["Discovery", "DiscoveryError", "Submission", "Submitter", "discover",
           "read_metadata", "unpack_export", "METADATA_NAME"]
