"""Batch discovery: Gradescope exports (metadata with Ruby-symbol keys, zipped or not) and
plain folders of submissions, read without grading anything."""
from __future__ import annotations

import stat
import zipfile

import pytest

from autograder.batch.discovery import DiscoveryError, discover, read_metadata

METADATA = """\
submission_123456:
  :submitters:
  - :name: Jane Doe
    :sid: '901234'
    :email: jd@example.edu
  - :name: John Roe
    :email: jr@example.edu
  :created_at: 2026-10-01 12:00:00.000000000 -04:00
  :score: 41.5
submission_777:
  :submitters:
  - :name: No Fields
submission_888:
  :submitters: !ruby/object:Something
    weird: yes
"""


def test_metadata_keys_lose_their_ruby_colon_and_missing_fields_are_tolerated(tmp_path):
    path = tmp_path / "submission_metadata.yml"
    path.write_text(METADATA)
    data = read_metadata(path)
    assert set(data) == {"submission_123456", "submission_777", "submission_888"}
    first = data["submission_123456"]
    assert first["submitters"][0] == {"name": "Jane Doe", "sid": "901234",
                                      "email": "jd@example.edu"}
    assert first["score"] == 41.5
    assert "created_at" not in data["submission_777"]


def test_unreadable_metadata_reads_as_empty(tmp_path):
    path = tmp_path / "submission_metadata.yml"
    path.write_text("submission_1: [unclosed\n")
    assert read_metadata(path) == {}


def test_an_export_folder_names_rows_by_metadata(tmp_path):
    (tmp_path / "submission_metadata.yml").write_text(METADATA)
    (tmp_path / "submission_123456").mkdir()
    (tmp_path / "submission_777").mkdir()
    (tmp_path / "submission_999").mkdir()  # not in the metadata: still a submission
    found = discover(tmp_path, tmp_path / "unpack")
    by_id = {s.id: s for s in found.submissions}
    assert list(by_id) == ["123456", "777", "888", "999"]
    assert by_id["123456"].names == "Jane Doe; John Roe"
    assert by_id["123456"].emails == "jd@example.edu; jr@example.edu"
    assert by_id["123456"].sids == "901234"
    assert by_id["123456"].created_at.startswith("2026-10-01")
    assert by_id["777"].emails == "" and by_id["777"].path is not None
    assert by_id["888"].path is None and by_id["888"].submitters == ()  # listed, absent
    assert by_id["999"].submitters == ()
    assert found.source == "gradescope export"


def test_an_export_zip_is_unpacked_once_and_safely(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("assignment_1_export/submission_metadata.yml", METADATA)
        zf.writestr("assignment_1_export/submission_123456/lab1.py", "x = 1\n")
        zf.writestr("assignment_1_export/submission_777/", "")
        zf.writestr("../escaped.py", "bad\n")
        zf.writestr("/abs/escaped.py", "bad\n")
        link = zipfile.ZipInfo("assignment_1_export/submission_777/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    unpack = tmp_path / "out" / "export"
    found = discover(archive, unpack)
    assert [s.id for s in found.submissions] == ["123456", "777", "888"]
    sub = found.submissions[0]
    assert (sub.path / "lab1.py").read_text() == "x = 1\n"
    assert found.submissions[1].path.is_dir() and not any(found.submissions[1].path.iterdir())
    assert not (tmp_path / "out" / "escaped.py").exists()
    assert not list(unpack.rglob("escaped.py")) and not list(unpack.rglob("link"))
    mtime = (sub.path / "lab1.py").stat().st_mtime_ns
    assert discover(archive, unpack).submissions == found.submissions
    assert (sub.path / "lab1.py").stat().st_mtime_ns == mtime  # reused, not unpacked again


def test_a_plain_folder_takes_folders_and_zips_and_ignores_the_rest(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "bob.zip").write_bytes(b"not really a zip")  # grade's intake decides
    (tmp_path / "alice.zip").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "carol weird/name").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "alice")
    found = discover(tmp_path, tmp_path / ".unpack")
    assert [(s.id, s.path.name) for s in found.submissions] == [
        ("alice", "alice"), ("alice-2", "alice.zip"), ("bob", "bob.zip"),
        ("carol_weird", "carol weird")]
    assert found.ignored == ("notes.txt",)


def test_unusable_sources_are_refused_with_a_reason(tmp_path):
    with pytest.raises(DiscoveryError, match="no such"):
        discover(tmp_path / "absent", tmp_path / "u")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DiscoveryError, match="neither a folder nor a zip"):
        discover(tmp_path / "file.txt", tmp_path / "u")
