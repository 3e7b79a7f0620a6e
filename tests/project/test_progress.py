"""``python -m autograder grade`` draws a progress bar on a terminal, and only there."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from autograder import paths


def grade_stubs(tmp_path, *, stderr_on_terminal: bool) -> tuple[str, dict]:
    """Grade the stubs' unit stage; (what reached stderr, results.json)."""
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "autograder", "grade", str(paths.STUDENT_DIR), "--out", str(out)]
    if not stderr_on_terminal:
        done = subprocess.run(command, cwd=paths.ROOT, capture_output=True, text=True, timeout=300)
        return done.stderr, json.loads(out.read_text())
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(command, cwd=paths.ROOT, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the grade is over
            break
        if not chunk:
            break
        seen += chunk
    process.wait(timeout=300)
    os.close(leader)
    return seen.decode("utf-8", "replace"), json.loads(out.read_text())


def test_bar_counts_the_tests_on_a_terminal_and_stays_out_of_results(tmp_path):
    drawn, results = grade_stubs(tmp_path, stderr_on_terminal=True)
    total = len(results["tests"])
    counts = [int(n) for n in re.findall(rf"(\d+)/{total} \[", drawn)]
    assert counts and counts[0] == 0 and max(counts) > 0, drawn[:500]  # drawn, then advancing
    assert "test/s" in drawn
    assert "test/s" not in json.dumps(results)


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path):
    logged, results = grade_stubs(tmp_path, stderr_on_terminal=False)
    assert "test/s" not in logged and results["tests"]
