"""End to end, as Gradescope runs it: build the zips, unpack autograder.zip into a simulated
/autograder tree, run ``run_autograder`` on several submissions, and check each results.json.

Also runs ``pytest`` inside the unpacked student handout, on the stubs and on the reference,
the way a student checks their work before submitting.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import paths
from autograder.build import HANDOUT_FOLDER, build
from autograder.report import validate_json
from results_helpers import scores_by_problem

pytestmark = pytest.mark.slow(seconds=100)

GRADE_TIMEOUT = 300  # seconds for one unit-stage run_autograder, far above its ~15 s


@pytest.fixture(scope="module")
def zips(tmp_path_factory):
    return build(paths.ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def source(zips, tmp_path_factory) -> Path:
    """The unpacked autograder.zip, as /autograder/source."""
    source = tmp_path_factory.mktemp("autograder") / "source"
    with zipfile.ZipFile(zips[0]) as archive:
        archive.extractall(source)
    (source / "run_autograder").chmod(0o755)
    return source


def run_autograder(source: Path, submission: Path, tmp_path: Path) -> dict:
    """Copy ``submission`` (a folder, or a file such as a .zip) into a fresh /autograder-like
    root beside ``source``, run run_autograder on the unit stage, return results.json."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    (root / "results").mkdir()
    if submission.is_dir():
        for path in submission.iterdir():
            if path.is_file():
                shutil.copy(path, root / "submission" / path.name)
    else:
        shutil.copy(submission, root / "submission" / submission.name)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "HW4_PYTHON": sys.executable,
           "HW4_STAGE": "unit"}
    completed = subprocess.run([str(source / "run_autograder")], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=GRADE_TIMEOUT)
    results_path = root / "results" / "results.json"
    assert results_path.is_file(), completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(results_path.read_text())
    validate_json(results)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return results


def kinds(results: dict) -> set[str]:
    return {test["extra_data"]["kind"] for test in results["tests"]}


def test_reference_gets_every_point(source, tmp_path):
    results = run_autograder(source, paths.REFERENCE_DIR, tmp_path)
    failed = [(t["number"], t["name"], t.get("output", "")[:300])
              for t in results["tests"] if t["score"] != t["max_score"]]
    assert failed == []
    assert kinds(results) == {"passed"}
    assert results["score"] == pytest.approx(sum(t["max_score"] for t in results["tests"]))
    assert results["score"] > 0
    pictured = [t for t in results["tests"] if '<img alt="problem' in t["output"]]
    assert {t["extra_data"]["problem"] for t in pictured} >= {"2.2", "3.5", "4.1"}
    assert all(t["output_format"] == "html" and t["visibility"] == "visible" for t in pictured)
    assert not any("<img" in t["output"] for t in results["tests"] if t["visibility"] != "visible")


def test_stubs_get_zero_without_harness_errors(source, tmp_path):
    results = run_autograder(source, paths.STUDENT_DIR, tmp_path)
    assert results["score"] == 0
    assert "internal_error" not in kinds(results)
    assert "not_graded" not in kinds(results)
    outputs = " ".join(t.get("output", "") for t in results["tests"])
    assert "not implemented yet" in outputs.lower()


def test_syntax_error_zeroes_only_its_file(source, tmp_path):
    submission = tmp_path / "syntax"
    shutil.copytree(paths.REFERENCE_DIR, submission, ignore=shutil.ignore_patterns("__*"))
    (submission / "lab3.py").write_text("import torch\ndef broken(:\n    pass\n")
    results = run_autograder(source, submission, tmp_path)
    scores = scores_by_problem(results)
    assert scores["4.1"] == 0 and scores["4.4"] == 0
    for problem in ("2.1", "2.3", "3.2", "1.1"):
        assert scores[problem] > 0, problem
    lab3_outputs = [t["output"] for t in results["tests"]
                    if t["extra_data"]["problem"] == "4.1" and t["visibility"] == "visible"]
    assert any("lab3.py" in out and "line 2" in out for out in lab3_outputs), lab3_outputs[:2]
    assert "internal_error" not in kinds(results)


def test_zipped_folder_is_graded_like_the_folder(source, tmp_path):
    archive = tmp_path / "my-homework.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in paths.SUBMISSION_FILES:
            zf.write(paths.REFERENCE_DIR / name, f"hw4-final/{name}")
        zf.writestr("__MACOSX/hw4-final/._lab1.py", b"\x00\x05junk")
    results = run_autograder(source, archive, tmp_path)
    assert kinds(results) == {"passed"}


def test_missing_file_zeroes_only_its_problems(source, tmp_path):
    submission = tmp_path / "partial"
    submission.mkdir()
    for name in ("lab1.py", "lab2.py", "lab3.py"):
        shutil.copy(paths.REFERENCE_DIR / name, submission / name)
    results = run_autograder(source, submission, tmp_path)
    scores = scores_by_problem(results)
    assert all(scores[f"1.{i}"] == 0 for i in range(1, 11))
    assert scores["2.1"] > 0 and scores["3.2"] > 0 and scores["4.1"] > 0
    outputs = [t["output"] for t in results["tests"] if t["extra_data"]["problem"] == "1.1"]
    assert any("answers.py" in out for out in outputs)


@pytest.fixture(scope="module")
def handout(zips, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("handout")
    with zipfile.ZipFile(zips[1]) as archive:
        archive.extractall(folder)
    return folder / HANDOUT_FOLDER


def run_handout_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``pytest ARGS`` started in ``folder`` (the handout, its parent, a folder inside it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=GRADE_TIMEOUT)


def passed_count(completed: subprocess.CompletedProcess) -> int:
    found = re.search(r"(\d+) passed", completed.stdout)
    return int(found.group(1)) if found else 0


def test_handout_has_nothing_secret(zips):
    with zipfile.ZipFile(zips[1]) as archive:
        names = [name.removeprefix(HANDOUT_FOLDER + "/") for name in archive.namelist()]
    assert not [n for n in names if n.startswith(("reference/", "course/")) or "/hidden/" in n]


def test_handout_pytest_on_stubs_reports_failures_not_harness_errors(handout):
    completed = run_handout_pytest(handout)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 1, output[-3000:]  # tests failed, pytest itself did not
    assert " failed" in output and " error" not in output.split("short test summary")[-1]
    assert "INTERNALERROR" not in output and "Internal grading error" not in output
    assert "not implemented yet" in output.lower()


@pytest.fixture(scope="module")
def solved_handout(handout, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A copy of the handout holding the reference's files, and its plain ``pytest`` run."""
    folder = tmp_path_factory.mktemp("solved") / HANDOUT_FOLDER
    shutil.copytree(handout, folder)
    for name in paths.SUBMISSION_FILES:
        shutil.copy(paths.REFERENCE_DIR / name, folder / name)
    return folder, run_handout_pytest(folder)


def test_handout_pytest_on_reference_passes(solved_handout):
    folder, completed = solved_handout
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-3000:]
    assert " passed" in completed.stdout and " failed" not in completed.stdout
    pictures = folder / "hw4-pictures"
    assert f"PNG files): {pictures}" in completed.stdout  # the run names where they are
    assert {p.name for p in pictures.glob("*.png")} >= {"2.2.png", "3.5.png", "4.1.png"}


@pytest.mark.parametrize("start", ["parent", "hw4"])
def test_handout_pytest_starts_from_its_parent_and_from_inside(solved_handout, start):
    """``pytest homework4`` from the parent folder, or ``pytest`` inside ``hw4/`` (as an IDE
    starts it), runs the same visible tests as ``pytest`` in the handout's folder."""
    folder, here = solved_handout
    if start == "parent":
        completed = run_handout_pytest(folder.parent, HANDOUT_FOLDER)
    else:
        completed = run_handout_pytest(folder / "hw4")
    output = completed.stdout + completed.stderr
    assert "unrecognized arguments" not in output
    assert completed.returncode == 0, output[-3000:]
    assert passed_count(completed) == passed_count(here) > 0 and " failed" not in completed.stdout


# ------------------------------------------------------------------ what a student's terminal shows

# The reference's prune_by_percentage with the mask inverted (it prunes the largest weights),
# printing 30 debugging lines per call as students do.
CHATTY_WRONG_PRUNE = '''
def prune_by_percentage(layer, q=80.0):
    weight = layer.weight
    threshold = torch.quantile(weight.abs().flatten().double(), q / 100.0)
    for line in range(30):
        print(f"debug {line}: layer {tuple(weight.shape)} threshold {float(threshold):.4f}")
    keep = weight.abs().double() >= threshold
    weight.masked_fill_(keep, 0.0)
'''
GRADER_FILES = re.compile(r"_judges\.py|checks\.py|plugin\.py")


def chatty_wrong_submission(folder: Path) -> Path:
    """The reference's four files in ``folder``, lab2's pruning replaced by CHATTY_WRONG_PRUNE."""
    for name in paths.SUBMISSION_FILES:
        shutil.copy(paths.REFERENCE_DIR / name, folder / name)
    lab2 = (folder / "lab2.py").read_text()
    start = lab2.index("def prune_by_percentage")
    end = lab2.index("\ndef ", start + 1)
    (folder / "lab2.py").write_text(lab2[:start] + CHATTY_WRONG_PRUNE.strip() + "\n\n" + lab2[end:])
    return folder


# As root: become ``nobody`` and exec the command. A student can always run their own Python;
# where it lives behind a folder others cannot traverse (a Python under /root, mode 700), the
# launcher first reaches it the way a sandbox call does (``mounts.reach_in_child``, in its own
# mount namespace), so no folder's mode changes for anyone else.
AS_NOBODY = """
import os, pwd, sys
sys.path.insert(0, sys.argv[1])
from autograder.sandbox import mounts, secrets
needed = secrets.needed_paths()
locked = mounts.locked_folders(needed)
if locked:
    mounts.reach_in_child(locked, keep=needed)
user = pwd.getpwnam("nobody")
os.setgroups([])
os.setgid(user.pw_gid)
os.setuid(user.pw_uid)
os.execv(sys.argv[2], sys.argv[2:])
"""


def ordinary_user() -> list[str]:
    """The command prefix that runs a command as an ordinary user: none when this process is
    one; as root, a launcher that runs it as ``nobody`` (``AS_NOBODY``)."""
    if os.geteuid() != 0:
        return []
    try:
        import pwd

        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root, and there is no 'nobody' account to run the handout as")
    from autograder.sandbox import mounts, secrets
    if mounts.locked_folders(secrets.needed_paths()) and not mounts.available():
        pytest.skip("running as root, Python lies behind a folder 'nobody' cannot traverse, and "
                    "this platform refuses the mount namespace that would let it reach Python")
    return [sys.executable, "-c", AS_NOBODY, str(paths.ROOT)]


@pytest.fixture(scope="module")
def student_handout(handout):
    """The handout holding the chatty wrong submission, in a folder an ordinary user owns."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="hw4-student-"))
    base.chmod(0o755)
    folder = base / HANDOUT_FOLDER
    shutil.copytree(handout, folder)
    chatty_wrong_submission(folder)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "nobody", str(base)], check=True)
    yield folder
    shutil.rmtree(base, ignore_errors=True)


def run_as_student(folder: Path, *args: str) -> str:
    """``pytest ARGS`` in ``folder`` as an ordinary user; its stdout and stderr together."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["HOME"] = str(folder.parent)
    completed = subprocess.run([*ordinary_user(), sys.executable, "-m", "pytest", *args], cwd=folder, env=env,
                               capture_output=True, text=True, timeout=GRADE_TIMEOUT)
    output = completed.stdout + completed.stderr
    assert "INTERNALERROR" not in output and "Traceback (most recent" not in output, output[-3000:]
    return output


def test_handout_failure_shows_the_students_message_and_no_grader_frame(student_handout):
    output = run_as_student(student_handout)
    assert "2 failed" in output, output[-3000:]
    failures = output.split("= FAILURES =")[1].split("HW4 grade")[0]
    # what was wrong, on which input, expected versus got, the hint: in that order
    order = [failures.index(part) for part in (
        "pruned the wrong number of weights", "a Conv2d weight of shape (8, 4, 3, 3)",
        "should give between", "Hint: the largest weights were pruned")]
    assert order == sorted(order), failures[:3000]
    assert not GRADER_FILES.search(output), [line for line in output.splitlines()
                                             if GRADER_FILES.search(line)][:5]
    assert "def test_prune_conv" not in output and "check_pruned" not in output
    assert "[staff]" not in output


def test_handout_failure_shows_the_first_lines_the_student_printed(student_handout):
    output = run_as_student(student_handout, "-k", "prune_conv")
    assert "What your code printed (the first 20 of 60 lines)" in output, output[-3000:]
    assert "debug 0: layer (8, 4, 3, 3) threshold" in output
    assert "debug 19: layer (8, 4, 3, 3)" in output and "debug 20:" not in output


def test_handout_long_traceback_still_shows_the_grader_for_staff(student_handout):
    output = run_as_student(student_handout, "--tb=long", "-k", "prune_conv")
    assert "lab2_judges.py" in output and "checks.py" in output
    assert "pruned the wrong number of weights" in output


@pytest.mark.parametrize("selection", [["-k", "prune"], ["tests/grading/visible/test_lab3.py"]])
def test_handout_partial_run_grades_only_what_was_selected(student_handout, selection):
    output = run_as_student(student_handout, *selection)
    assert "not graded" not in output and "staff have been told" not in output, output[-3000:]
    assert "expected 35 tests" not in output.lower() and "collected" in output
    table = output.split("HW4 grade")[1]
    shown = {line.split()[0] for line in table.splitlines()[1:] if re.match(r"\d+\.\d+ ", line)}
    assert shown == ({"4.1", "4.4"} if "test_lab3.py" in selection[0] else {"3.2", "3.3", "3.5"})
    assert "graded only the" in table


def test_gradescope_shows_what_a_visible_test_printed_and_never_a_hidden_ones(source, tmp_path):
    (tmp_path / "chatty").mkdir()
    submission = chatty_wrong_submission(tmp_path / "chatty")
    root = tmp_path / "run"
    root.mkdir()
    results = run_autograder(source, submission, root)
    by_number = {t["number"]: t for t in results["tests"]}
    visible = by_number["3.2.1"]["output"]
    assert "pruned the wrong number of weights" in visible and "debug 0:" in visible
    assert not GRADER_FILES.search(visible)
    hidden = [t["output"] for t in results["tests"]
              if t["extra_data"]["group"] == "hidden" and t["extra_data"]["problem"] == "3.2"]
    assert hidden and not any("debug" in out for out in hidden)
    assert results["score"] < sum(t["max_score"] for t in results["tests"])
