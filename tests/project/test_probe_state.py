"""Settings a student writes at the top of a lab file do not change what the grader builds.

``autograder.probes.state.GlobalState`` records the grader's process-wide settings and puts them
back; ``probes.student`` does so around every import of student code.
"""
import os
import random
import textwrap
import warnings

import numpy as np
import pytest
import torch

from autograder.probes.state import GlobalState
from autograder.sandbox import Limits, Sandbox
from autograder.sandbox.limits import MiB, ensure_sandbox_user, is_root

SETTINGS_AT_THE_TOP = '''
import os
import numpy as np
import torch

torch.set_default_dtype(torch.float64)
torch.set_grad_enabled(False)
torch.manual_seed(0)
np.random.seed(0)
np.seterr(all="raise")
os.chdir("/")
'''


def _draws():
    return random.random(), float(np.random.random()), float(torch.rand(1))


def test_restore_undoes_every_setting_a_student_file_changes():
    grader = GlobalState.capture()
    expected_draws = _draws()
    grader.restore()
    cwd, errors, filters = os.getcwd(), np.geterr(), list(warnings.filters)
    try:
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.set_anomaly_enabled(True)
        torch.set_num_threads(1)
        np.seterr(all="raise")
        warnings.simplefilter("error")
        random.seed(1), np.random.seed(1), torch.manual_seed(1)
        os.chdir("/")
    finally:
        grader.restore()
    assert torch.get_default_dtype() is torch.float32 and torch.is_grad_enabled()
    assert not torch.is_anomaly_enabled() and torch.get_num_threads() == grader.threads
    assert np.geterr() == errors and warnings.filters == filters and os.getcwd() == cwd
    assert _draws() == expected_draws  # the generators continue where the grader left them


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submission")
    (folder / "lab2.py").write_text(textwrap.dedent(SETTINGS_AT_THE_TOP))
    limits = Limits(memory=512 * MiB, max_output=10_000, tmp_bytes=16 * MiB)
    if is_root():
        ensure_sandbox_user(limits.user)
    with Sandbox(folder, limits=limits) as sandbox:
        sandbox.start()
        yield sandbox


def test_a_child_is_as_the_grader_set_it_after_importing_a_file_that_changes_settings(sandbox):
    untouched = sandbox.run("selftest.state", {}).values
    after_import = sandbox.run("selftest.state", {"module": "lab2"}).values
    cwd = after_import.pop("cwd")
    assert os.path.basename(cwd).startswith("call-") and cwd != untouched.pop("cwd")  # its own
    assert after_import == untouched
    assert after_import["default_dtype"] == "torch.float32" and after_import["grad_enabled"]
    assert after_import["numpy_errors"]["divide"] == "warn"
