"""Helpers shared by the batch tests: a Gradescope-export-shaped class made from the reference,
the stubs and catalogue entries, and the one-at-a-time ``grade`` a batch must agree with."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autograder import paths, validate

GRADE_TIMEOUT = 300  # one unit-stage grade takes seconds; this only bounds a hang

# Catalogue entries in the class: wrong ones on several labs, and a correct convention.
WRONG = ("tf-one-wrong", "gradient-no-factor-2", "prune-largest", "finetune-mask-never-applied",
         "sparsity-count-not-fraction")
CORRECT_COUNT = 1

METADATA_HEAD = """\
# Gradescope's export: Ruby-symbol keys.
"""


def _case(name: str):
    cases = {case.name: case for case in validate.plan_cases()}
    return cases[name]


def make_export(root: Path) -> dict[str, dict]:
    """Write a Gradescope export of a dozen submissions under ``root`` and return, per id, what
    the test knows of it: ``path`` (None: listed but absent), ``names``, ``emails``, ``sids``,
    ``status`` expected in scores.csv."""
    root.mkdir(parents=True, exist_ok=True)
    cases = validate.plan_cases()
    reference = next(c for c in cases if c.kind == "reference")
    stubs = next(c for c in cases if c.kind == "stubs")
    correct = [c for c in cases if c.kind == "correct"][:CORRECT_COUNT]
    wrong = [_case(name) for name in WRONG]
    plan: dict[str, dict] = {}

    def folder(sub_id, case, **person):
        path = validate.build_submission(case, root / f"submission_{sub_id}")
        plan[sub_id] = {"path": path, "status": "graded", **person}

    folder("1001", reference, names=["Ada Lovelace", "Alan Turing"],
           emails=["ada@example.edu", "alan@example.edu"], sids=["900001", "900002"])
    zipped = root / "submission_1002"  # Gradescope keeps an uploaded zip inside the folder
    inner = validate.build_submission(reference, root / "tmp-1002" / "work")
    zipped.mkdir()
    with zipfile.ZipFile(zipped / "my_hw4.zip", "w") as archive:
        for file in sorted(inner.iterdir()):
            archive.write(file, f"hw4/{file.name}")
    plan["1002"] = {"path": zipped, "status": "graded", "names": ["Grace Hopper"],
                    "emails": ["grace@example.edu"], "sids": ["900003"]}
    folder("1003", stubs, names=["Stub Only"], emails=[], sids=[])  # no email, no SID
    for n, case in enumerate(wrong + correct):
        sub_id = str(1004 + n)
        folder(sub_id, case, names=[f"Student {sub_id}"], emails=[f"s{sub_id}@example.edu"],
               sids=[f"91{sub_id}"])
    corrupt = root / "submission_1010"
    corrupt.mkdir()
    (corrupt / "hw4.zip").write_bytes(b"PK\x03\x04 this is no zip archive")
    plan["1010"] = {"path": corrupt, "status": "no files", "names": ["Corrupt Zip"],
                    "emails": ["cz@example.edu"], "sids": ["900010"]}
    (root / "submission_1011").mkdir()
    plan["1011"] = {"path": root / "submission_1011", "status": "no files",
                    "names": ["Empty Folder"], "emails": ["ef@example.edu"], "sids": ["900011"]}
    plan["1012"] = {"path": None, "status": "missing", "names": ["Never Uploaded"],
                    "emails": ["nu@example.edu"], "sids": ["900012"]}
    _remove_tree(root / "tmp-1002")
    (root / "submission_metadata.yml").write_text(_metadata(plan), encoding="utf-8")
    return plan


def _metadata(plan: dict[str, dict]) -> str:
    lines = [METADATA_HEAD.rstrip()]
    for sub_id, info in plan.items():
        lines.append(f"submission_{sub_id}:")
        lines.append("  :submitters:")
        for i, name in enumerate(info["names"]):
            lines.append(f"  - :name: {name}")
            if i < len(info["sids"]):
                lines.append(f"    :sid: '{info['sids'][i]}'")
            if i < len(info["emails"]):
                lines.append(f"    :email: {info['emails'][i]}")
        if sub_id != "1003":  # one record without the optional fields
            lines.append("  :created_at: 2026-10-01 12:00:00.000000000 -04:00")
            lines.append("  :score: 41.5")
    return "\n".join(lines) + "\n"


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def grade_one_at_a_time(plan: dict[str, dict], out: Path, *, jobs: int = 2,
                        cwd: Path = paths.ROOT) -> dict[str, dict]:
    """{id: results.json} from ``python -m autograder grade SUB --out F``, one per submission."""
    out.mkdir(parents=True, exist_ok=True)

    def grade(item):
        sub_id, info = item
        target = out / f"{sub_id}.json"
        done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(info["path"]),
                               "--out", str(target)], cwd=cwd, capture_output=True, text=True,
                              timeout=GRADE_TIMEOUT)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return sub_id, json.loads(target.read_text())

    todo = [(k, v) for k, v in plan.items() if v["path"] is not None]
    with ThreadPoolExecutor(jobs) as pool:
        return dict(pool.map(grade, todo))


def run_batch_cli(args: list[str], *, cwd: Path = paths.ROOT, timeout: float = 900,
                  check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "autograder", "batch", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    return done


def comparable(results: dict) -> dict:
    """A results.json without its execution time, the one field two runs never share."""
    return {k: v for k, v in results.items() if k != "execution_time"}
