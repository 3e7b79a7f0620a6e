"""Child-side helpers for probes: import student code, call it, turn its outputs into plain data.

A probe ``"lab1.call"`` is the function ``call`` of ``autograder.probes.lab1``: it takes the
decoded inputs (a dict of ndarrays and JSON values) and returns a dict of plain data. Probes run
only inside a sandbox child (see ``autograder.sandbox``), after ``configure`` has said where the
submission copy is; they never run in the grading process.

Student faults are raised as the ``SubmissionError`` subclasses of ``autograder.errors``, with
messages written for the student.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from autograder.errors import (GraderError, ImportFailed, InvalidOutput, MissingFile,
                               MissingFunction, SubmissionError)

STUDENT_MODULES = ("lab1", "lab2", "lab3", "answers")
PLAIN_KINDS = "biufc"  # bool, int, uint, float, complex
_PROBE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")

_submission_dir: Path | None = None
_device: str = "cpu"
_running_file: Path | None = None
_progress_file: Path | None = None
_last_running: str | None = None
_student_raised: list[tuple[BaseException, str]] = []  # exceptions that left a student function


def configure(submission_dir: Path, *, device: str = "cpu", running_file: Path | None = None,
              progress_file: Path | None = None) -> None:
    """Say where the submission copy lies, which device the grader asked for, and where to note
    what student code is running and which sub-call of a batch runs (both read by the trusted
    side when a call times out)."""
    global _submission_dir, _device, _running_file, _progress_file
    _submission_dir, _device = Path(submission_dir), device
    _running_file, _progress_file = running_file, progress_file


def device() -> str:
    """The device the grader asked for: "cpu" or "cuda"."""
    return _device


def note_batch_progress(index: int, output_offset: int) -> None:
    """Record that sub-call ``index`` of a batch starts now (``time.monotonic``, one clock for
    every process of the machine), its output from byte ``output_offset`` of the capture, so a batch that hangs is charged to that sub-call alone
    (``Sandbox.run_batch``). Student code could rewrite the note; it would only charge a time
    limit to one of its own calls, or cost the grader the reruns it makes without a note."""
    if _progress_file is None:
        return
    try:
        _progress_file.write_text(f"{int(index)} {time.monotonic():.6f} {int(output_offset)}")
    except OSError:
        pass


def note_running(what: str) -> None:
    """Record what student code runs now, so a timeout can say so."""
    global _last_running
    if _running_file is None or what == _last_running:
        return
    _last_running = what
    try:
        _running_file.write_text(what)
    except OSError:
        pass


def is_student_file(filename: str) -> bool:
    return (_submission_dir is not None
            and os.path.dirname(os.path.realpath(filename)) == os.path.realpath(_submission_dir))


def student_frames(error: BaseException) -> list[traceback.FrameSummary]:
    """The traceback frames of ``error`` that lie in the student's files, outermost first."""
    return [frame for frame in traceback.extract_tb(error.__traceback__)
            if is_student_file(frame.filename)]


def format_student_traceback(error: BaseException) -> str:
    """``error``'s traceback restricted to the student's files, ending with the exception line."""
    lines = []
    for frame in student_frames(error):
        lines.append(f'  File "{os.path.basename(frame.filename)}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    lines.append(describe(error))
    return "\n".join(lines)


def describe(error: BaseException) -> str:
    """``Type: message``, the message cut to a readable length."""
    text = str(error)
    text = text if len(text) <= 2000 else text[:2000] + " [...]"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def raised_by_student(error: BaseException) -> str | None:
    """The student function ``error`` escaped from (via ``student_function``), else None."""
    for raised, name in _student_raised:
        if raised is error:
            return name
    return None


# -- keeping the harness's own names -----------------------------------------------------------

class HarnessGuard:
    """The names bound in the grader's own modules (``autograder.*``) as they were before any
    student code ran in this child.

    Student code shares this process, so it can rebind them (``probes.plain = lambda...``) to
    corrupt what a later probe reports. ``restore`` puts every name back, and removes names it
    added, each time student code returns (an import, a call). Mutations of objects in place and
    patches of numpy or torch are not undone: verdicts never rest on them, since every
    comparison happens in the trusted process.
    """

    EXEMPT = frozenset({"_guard", "_last_running"})  # this module's own bookkeeping

    def __init__(self):
        self.saved = [(module, dict(vars(module))) for name, module in list(sys.modules.items())
                      if module is not None and (name == "autograder" or name.startswith("autograder."))]

    def restore(self) -> None:
        for module, saved in self.saved:
            namespace = vars(module)
            for key in [k for k in namespace if k not in saved and k not in self.EXEMPT]:
                del namespace[key]
            namespace.update({k: v for k, v in saved.items() if k not in self.EXEMPT})


_guard: HarnessGuard | None = None


def restore_harness() -> None:
    """Undo what student code did to the grader's module namespaces (a no-op before any ran)."""
    if _guard is not None:
        _guard.restore()


# -- importing student code ------------------------------------------------------------------

def student(module_name: str):
    """Import the submission's ``module_name`` (lab1, lab2, lab3 or answers), once per child.

    The process-wide settings the import changed (default dtype and device, grad mode, seeds'
    states, NumPy's error handling, warning filters, the working directory) are put back as
    they were (``autograder.probes.state``), so the grader builds its inputs the same way
    whatever the student's file does at its top.

    Raises MissingFile when the file is absent and ImportFailed when importing it raises
    (a syntax error, a missing package, an exception at top level); BaseExceptions such as
    SystemExit propagate. The module is registered in sys.modules, so student files that
    import each other share it.
    """
    if module_name not in STUDENT_MODULES:
        raise GraderError(f"{module_name!r} is not a student module")
    if _submission_dir is None:
        raise GraderError("autograder.probes.configure was not called")
    path = _submission_dir / f"{module_name}.py"
    module = sys.modules.get(module_name)
    if module is not None and getattr(module, "__file__", None) == str(path):
        return module
    filename = path.name
    if not path.is_file():
        raise MissingFile(f"`{filename}` is missing from the submission, so the problems that use "
                          f"it cannot be graded.")
    from autograder.probes.state import GlobalState  # torch: child side only
    global _guard
    if _guard is None:  # before the first student code of this child runs
        _guard = HarnessGuard()
    restore = _guard.restore  # bound now: student code may rebind names, or patch the class
    # The grader's settings (dtype, grad mode, seeds, cwd...): the lines a student writes at the
    # top of a file must not change what the grader builds after the import.
    restore_settings = GlobalState.capture().restore
    note_running(f"importing {filename}")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(module_name, None)
        where = f"line {error.lineno}" if error.lineno else "an unknown line"
        shown = os.path.basename(error.filename or filename)
        details = f"  File \"{shown}\", {where}\n    {(error.text or '').rstrip()}\n" \
                  f"{type(error).__name__}: {error.msg}"
        raise ImportFailed(f"`{filename}` could not be imported: {type(error).__name__} in "
                           f"`{shown}` at {where}: {error.msg}", details=details) from None
    except Exception as error:
        sys.modules.pop(module_name, None)
        frames = student_frames(error)
        where = f" (line {frames[-1].lineno} of `{os.path.basename(frames[-1].filename)}`)" if frames else ""
        raise ImportFailed(f"`{filename}` could not be imported: it raised `{describe(error)}`{where}.",
                           details=format_student_traceback(error)) from None
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        restore()
        restore_settings()
    return module


def student_function(module_name: str, fn_name: str):
    """The student's ``module_name.fn_name``, wrapped so that failures are attributed to it.

    Raises MissingFunction when the module does not define a callable of that name.
    """
    module = student(module_name)
    function = getattr(module, fn_name, None)
    if function is None or not callable(function):
        raise MissingFunction(f"`{module_name}.py` does not define the function `{fn_name}`.")
    qualified = f"{module_name}.{fn_name}"
    restore = _guard.restore  # bound while the harness is intact (the import restored it)

    @functools.wraps(function)
    def call(*args, **kwargs):
        note_running(qualified)
        try:
            return function(*args, **kwargs)
        except BaseException as error:
            _student_raised.append((error, qualified))
            raise
        finally:
            restore()
    return call


def student_ste(module):
    """The class ``STE`` of the student's imported ``lab3`` module: the one lookup of it, for the
    Lab 3 probe and the training stage. MissingFunction when it is absent or has no ``apply``
    (not a ``torch.autograd.Function``)."""
    ste = getattr(module, "STE", None)
    if ste is None or not hasattr(ste, "apply"):
        raise MissingFunction("`lab3.py` does not define the class `STE` "
                              "(a `torch.autograd.Function`).")
    return ste


# -- outputs ---------------------------------------------------------------------------------

def _numpy_scalar_types() -> tuple[type, ...]:
    return tuple({np.dtype(code).type for code in "?bhilqBHILQefdgFDG"})


_NUMPY_SCALARS = _numpy_scalar_types()


def _is_one_of(kind: type, types) -> bool:
    # Identity only: a metaclass could make == or hash lie.
    return any(kind is candidate for candidate in types)


def plain(x, *, what: str = "the value") -> np.ndarray:
    """A fresh plain ``np.ndarray`` copy of a student output, or InvalidOutput naming ``what``.

    Accepts exactly ``np.ndarray``, ``torch.Tensor`` and ``torch.nn.Parameter`` (detached,
    moved to the CPU; bfloat16 becomes float32), Python bool/int/float and NumPy scalars, with a
    bool, integer, float or complex dtype. Subclasses and look-alikes are refused by their real
    type, so a lying ``__eq__``, ``__array_ufunc__`` or ``__torch_function__`` is never consulted.
    """
    kind = type(x)
    torch = sys.modules.get("torch")
    if kind is np.ndarray:
        array = x
    elif torch is not None and (kind is torch.Tensor or kind is torch.nn.Parameter):
        if x.layout is not torch.strided:
            raise InvalidOutput(f"{what} must be a dense tensor, but its layout is {x.layout}.")
        tensor = x.detach()
        if tensor.dtype is torch.bfloat16:
            tensor = tensor.float()
        array = tensor.cpu().resolve_conj().resolve_neg().numpy()
    elif _is_one_of(kind, (bool, int, float)) or _is_one_of(kind, _NUMPY_SCALARS):
        try:
            array = np.asarray(x)
        except OverflowError:
            raise InvalidOutput(f"{what} is an integer too large for any array type.") from None
    else:
        raise InvalidOutput(f"{what} must be a NumPy array or a torch tensor, but it is of type "
                            f"`{kind.__module__}.{kind.__qualname__}`.")
    if array.dtype.kind not in PLAIN_KINDS:
        raise InvalidOutput(f"{what} must hold numbers, but its dtype is `{array.dtype}`.")
    return np.array(array, copy=True)


# -- the probe registry ----------------------------------------------------------------------

def find_probe(name: str):
    """The probe function ``name`` ("module.function"); GraderError when there is none."""
    if not _PROBE_NAME.match(name):
        raise GraderError(f"{name!r} is not a probe name (module.function)")
    module_name, function_name = name.split(".")
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as error:
        raise GraderError(f"there is no probe module {module_name!r}: {error}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise GraderError(f"the probe module {module_name!r} has no probe {function_name!r}")
    return function


def run_probe(name: str, inputs: dict) -> dict:
    """Run the probe ``name`` on ``inputs``; its return value must be a dict."""
    result = find_probe(name)(inputs)
    if type(result) is not dict:
        raise GraderError(f"the probe {name!r} returned {type(result).__name__}, not a dict")
    return result


__all__ = ["GraderError", "ImportFailed", "InvalidOutput", "MissingFile", "MissingFunction",
           "SubmissionError", "configure", "device", "find_probe", "plain", "run_probe", "student",
           "student_function"]
