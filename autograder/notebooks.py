"""Notebook intake: build the lab files from the definitions in a student's Jupyter notebooks.

Students write this homework in notebooks. For every graded name of the contract (``CONTRACT``)
the last module-level definition among all the notebooks' code cells is taken, with what it needs
at module level (imports, constants, helper functions and classes), transitively; nothing else of
the notebook is taken and no cell is ever executed. Only the notebook's text is parsed, with
nbformat and ``ast``; the extracted files then go through intake and the sandbox like any
submission.

Rules, as a student rerunning cells would expect:
- the last definition of a name wins; a name a function uses is resolved at the end of its
  notebook (call time), a name a module-level statement uses is resolved just before it;
- only top-level statements of a cell define names (not a loop's or a function's body);
- IPython lines (``%magic``, ``!shell``) are blanked before parsing; a cell that still does not
  parse, or a ``%%`` cell magic, is skipped with a note;
- a graded name that is not found becomes a stub raising ``NotImplementedError`` that names the
  notebooks and cells searched, so that problem's feedback says so and the others are graded.

A notebook is untrusted input: sizes, cells, statements and time are capped (``Limits``); deep
JSON (json's parser stops at Python's recursion limit) and deep expressions end in a clear
message, and lookups stay linear in the notebook's size.
"""
from __future__ import annotations

import ast
import bisect
import re
import symtable
import time
from dataclasses import dataclass, field

CONTRACT = {  # lab file: (graded names, names taken only when defined)
    "lab1.py": (("loss", "gradient", "gd_step", "projected_gd_step", "subgradient_l1_step",
                 "soft_threshold", "proximal_l1_step", "trimmed_l1_step"), ()),
    "lab2.py": (("prune_by_percentage", "finetune_after_prune", "iterative_prune_percentage",
                 "global_prune_by_percentage", "layer_sparsity"), ("device",)),
    "lab3.py": (("STE",), ("device",)),
}
CLASSES = {"STE"}  # graded names that are classes (their stub is a class)


@dataclass(frozen=True)
class Limits:
    """Caps on one submission's notebooks; beyond them a notebook, or a cell, is refused."""

    notebook_bytes: int = 32 * 2**20   # outputs (plots) make real notebooks a few MB
    cells: int = 5000
    cell_chars: int = 200_000          # one code cell; real ones are a few kB
    statements: int = 50_000           # top-level statements of one notebook
    lab_bytes: int = 2 * 2**20         # one extracted lab file (intake's cap on a source file)
    seconds: float = 30.0              # all the extraction of one submission


LIMITS = Limits()


class NotebookError(Exception):
    """A notebook that cannot be used at all; ``str`` is a student-facing message."""


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a code cell, and the names it binds."""

    notebook: str
    cell: int          # 1-based, counting every cell of the notebook (as Jupyter shows them)
    first_line: str    # the cell's first line, to show the student which cell it was
    order: int         # position in the notebook
    node: ast.stmt
    source: str        # the statement's own text
    binds: tuple[str, ...]


@dataclass
class Notebook:
    """The usable statements of one notebook, indexed by the names they bind."""

    name: str
    cells_searched: int = 0
    statements: list[Statement] = field(default_factory=list)
    by_name: dict[str, list[int]] = field(default_factory=dict)  # name: orders, ascending

    def add(self, statement: Statement) -> None:
        self.statements.append(statement)
        for name in statement.binds:
            self.by_name.setdefault(name, []).append(statement.order)

    def last_binding(self, name: str, before: int | None = None) -> Statement | None:
        """The last statement binding ``name`` (before position ``before`` when given)."""
        orders = self.by_name.get(name)
        if not orders:
            return None
        index = len(orders) if before is None else bisect.bisect_left(orders, before)
        return self.statements[orders[index - 1]] if index else None


@dataclass(frozen=True)
class LabFile:
    """One extracted lab file: its text, and where each graded name came from."""

    name: str
    text: str
    origins: tuple[tuple[str, str, int, str], ...]  # (name, notebook, cell, cell's first line)
    missing: tuple[str, ...]
    also_in: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, other notebooks defining it)

    def describe(self) -> str:
        """Which cells the graded code came from, one clause per cell, for the feedback."""
        cells: dict[tuple[str, int, str], list[str]] = {}
        for name, notebook, cell, first_line in self.origins:
            cells.setdefault((notebook, cell, first_line), []).append(f"`{name}`")
        clauses = [f"{', '.join(names)} from `{notebook}` cell {cell} (`{_quoted(first_line)}`)"
                   for (notebook, cell, first_line), names in cells.items()]
        clauses += [f"`{name}` not found" for name in self.missing]
        clauses += [f"`{name}` is also defined in " + ", ".join(f"`{n}`" for n in others)
                    + " (the last notebook by name wins)" for name, others in self.also_in]
        return "; ".join(clauses)


def _quoted(text: str) -> str:
    return text.replace("`", "'")  # shown inside a markdown code span


def read_notebook(name: str, data: bytes, notes: list[str], limits: Limits = LIMITS,
                  deadline: float | None = None) -> Notebook:
    """Parse one notebook's bytes (never executing anything); unusable cells get a note.

    Raises NotebookError when the notebook itself cannot be read, or past ``deadline``
    (a ``time.monotonic()`` value).
    """
    notebook = Notebook(name)
    for number, (kind, source) in enumerate(_cells(name, data, limits), start=1):
        if kind == "code":
            notebook.cells_searched += 1
            _check_time(deadline)
            _read_cell(notebook, number, source, notes, limits)
    return notebook


def markdown_cells(name: str, data: bytes, limits: Limits = LIMITS) -> list[str]:
    """The text of a notebook's markdown cells (for the report's answers); [] if unreadable."""
    try:
        return [source for kind, source in _cells(name, data, limits) if kind == "markdown"]
    except NotebookError:
        return []  # already a note of ``read_notebook``'s


def _cells(name: str, data: bytes, limits: Limits) -> list[tuple[str, str]]:
    """[(cell type, source text)] of every cell, read with nbformat; NotebookError if it cannot
    be read."""
    import nbformat

    if len(data) > limits.notebook_bytes:
        raise NotebookError(f"`{name}` is larger than {limits.notebook_bytes // 2**20} MB; "
                            "clear its outputs and resubmit.")
    try:  # json's parser raises RecursionError on deep nesting: bounded, and caught here
        document = nbformat.reads(data.decode("utf-8", errors="replace"), as_version=4,
                                  capture_validation_error={})
    except Exception as error:  # nbformat raises several kinds for a broken file
        raise NotebookError(f"`{name}` could not be read as a notebook "
                            f"({type(error).__name__}).") from error
    cells = document.get("cells", [])
    if not isinstance(cells, list) or len(cells) > limits.cells:
        raise NotebookError(f"`{name}` has more than {limits.cells} cells.")
    read = []
    for cell in cells:
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        source = "".join(map(str, source)) if isinstance(source, list) else str(source)
        read.append((cell.get("cell_type", "") if isinstance(cell, dict) else "", source))
    return read


_IPYTHON_LINE = re.compile(r"^(\s*)(?:[%!]|\w+\s*=\s*[%!])")


def _read_cell(notebook: Notebook, number: int, source: str, notes: list[str],
               limits: Limits) -> None:
    first = source.strip().splitlines()[0][:60] if source.strip() else ""
    where = f"`{notebook.name}`, cell {number}"
    if len(source) > limits.cell_chars:
        notes.append(f"{where} is longer than {limits.cell_chars // 1000} kB; it was skipped.")
        return
    if source.lstrip().startswith("%%"):
        notes.append(f"{where} is a cell magic (`{first}`); it was skipped.")
        return
    code = _blank_ipython_lines(source)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        line = getattr(error, "lineno", None)
        at = f" (line {line})" if line else ""
        notes.append(f"{where} does not parse{at}, so it was skipped: `{first}`.")
        return
    lines = code.splitlines()
    shared = _lines_shared(tree.body)
    for node in tree.body:
        if len(notebook.statements) >= limits.statements:
            raise NotebookError(f"The notebooks hold more than {limits.statements} statements.")
        binds = _bound_names(node)
        if not binds:
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        text = (ast.unparse(node) if start in shared or node.end_lineno in shared
                else "\n".join(lines[start - 1:node.end_lineno]))
        notebook.add(Statement(notebook.name, number, first, len(notebook.statements), node,
                               text, binds))


def _blank_ipython_lines(source: str) -> str:
    """``source`` with each IPython line (``%magic``, ``!cmd``, ``x = !cmd``) made a ``pass``
    (same indentation and line numbers). Only lines that start a statement count: a line
    inside brackets, a string or after a backslash (``... % (a, b)``) is Python."""
    out, depth, quote, continued = [], 0, None, False
    for line in source.splitlines():
        if depth == 0 and quote is None and not continued and _IPYTHON_LINE.match(line):
            out.append(_IPYTHON_LINE.sub(r"\1pass  # ", line, count=1))
            continue
        out.append(line)
        i, comment = 0, False
        while i < len(line):
            char = line[i]
            if quote is not None:
                if char == "\\":
                    i += 2
                    continue
                if line.startswith(quote, i):
                    i, quote = i + len(quote), None
                    continue
            elif char == "#":
                comment = True
                break
            elif char in "\"'":
                quote = char * 3 if line.startswith(char * 3, i) else char
                i += len(quote)
                continue
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                depth = max(0, depth - 1)
            i += 1
        continued = not comment and line.endswith("\\")
        if quote in ("'", '"') and not continued:
            quote = None  # a one-quote string ends with its line
    return "\n".join(out)


def _lines_shared(body: list[ast.stmt]) -> set[int]:
    """Lines holding more than one top-level statement (``import x; y = 1``)."""
    seen, shared = set(), set()
    for node in body:
        for line in {node.lineno, node.end_lineno}:
            (shared if line in seen else seen).add(line)
    return shared


def _bound_names(node: ast.stmt) -> tuple[str, ...]:
    """Names a top-level definition, import or assignment binds; () for anything else (calls,
    loops, prints): those never reach the lab file."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (node.name,)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        if any(alias.name == "*" for alias in node.names):
            return ("*",)
        return tuple((alias.asname or alias.name).split(".")[0] for alias in node.names)
    targets = (node.targets if isinstance(node, ast.Assign)
               else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
    names = []
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.append(sub.id)
            elif not isinstance(sub, (ast.Name, ast.Tuple, ast.List, ast.Starred, ast.expr_context)):
                return ()  # ``x[0] = ...``, ``obj.attr = ...``: a mutation, not a definition
    return tuple(names)


def _global_uses(statement: Statement) -> tuple[set[str], set[str]]:
    """(names used when the statement runs, names used later, when its functions are called).

    ``symtable`` resolves scopes exactly (parameters and locals shadow globals) from the text
    alone, without executing it.
    """
    now, later = set(), set()
    try:
        table = symtable.symtable(statement.source, "<cell>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return now, later

    def visit(scope, deferred: bool) -> None:
        for symbol in scope.get_symbols():
            if scope.get_type() == "module":
                if symbol.is_referenced() or (symbol.is_assigned() and
                                              isinstance(statement.node, ast.AugAssign)):
                    now.add(symbol.get_name())
            elif symbol.is_global() and (symbol.is_referenced() or symbol.is_assigned()):
                (later if deferred else now).add(symbol.get_name())
        for child in scope.get_children():
            visit(child, deferred or child.get_type() == "function")

    visit(table, False)
    return now, later


def _check_time(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise NotebookError("Reading your notebooks took too long (they are too large or too "
                            "intricate); submit the .py files instead.")


def _closure(notebook: Notebook, root: Statement, deadline: float | None = None) -> set[int]:
    """Orders of ``root`` and every statement it needs at module level, transitively."""
    needed, queue = {root.order}, [root]
    star_imports = notebook.by_name.get("*", [])
    while queue:
        _check_time(deadline)
        statement = queue.pop()
        now, later = _global_uses(statement)
        wanted = [(name, statement.order) for name in now] + [(name, None) for name in later]
        for name, before in wanted:
            found = notebook.last_binding(name, before)
            if found is not None and found.order not in needed:
                needed.add(found.order)
                queue.append(found)
        if (now or later) and star_imports:  # ``from x import *`` may bind any of them
            for order in star_imports:
                if order not in needed and (statement.order > order or later):
                    needed.add(order)
    return needed


def extract(notebooks: list[Notebook], lab: str, deadline: float | None = None) -> LabFile:
    """The lab file ``lab`` built from ``notebooks`` (in the order given: the last one wins).

    Raises NotebookError past ``deadline``."""
    graded, optional = CONTRACT[lab]
    chosen: dict[str, set[int]] = {}
    origins, missing, owners, also_in = [], [], [], []
    for name in graded + optional:
        candidates = [n for n in notebooks if n.last_binding(name) is not None]
        if name in optional:  # ``device``: the one of the graded code's own notebook, if any
            if any(name in notebook.statements[order].binds for notebook in owners
                   for order in chosen.get(notebook.name, ())):
                continue  # already taken as a dependency of the graded code
            candidates = [n for n in candidates if n in owners] or candidates
        if not candidates:
            if name in graded:
                missing.append(name)
            continue
        owner = candidates[-1]
        if name in graded and len(candidates) > 1:
            also_in.append((name, tuple(n.name for n in candidates[:-1])))
        definition = owner.last_binding(name)
        chosen.setdefault(owner.name, set()).update(_closure(owner, definition, deadline))
        owners.append(owner)
        origins.append((name, owner.name, definition.cell, definition.first_line))
    parts = [f'"""{lab}, extracted by the grader from your notebooks; no cell was run."""']
    for notebook in notebooks:
        cell = None
        for order in sorted(chosen.get(notebook.name, ())):
            statement = notebook.statements[order]
            header = f"# {notebook.name}, cell {statement.cell}\n" if statement.cell != cell else ""
            cell = statement.cell
            parts.append(header + statement.source)
    searched = ", ".join(f"`{n.name}` ({n.cells_searched} code cells)" for n in notebooks) \
        or "none"
    for name in missing:
        parts.append(_stub(name, searched))
    return LabFile(lab, "\n\n".join(parts) + "\n", tuple(origins), tuple(missing),
                   tuple(also_in))


def _stub(name: str, searched: str) -> str:
    """A stand-in for a graded name that was not found: it raises, so the problem that grades
    it says why, and every other problem is graded."""
    message = repr(f"`{name}` was not found in your notebooks (searched: {searched}); define "
                   f"it at the top level of a code cell")
    if name in CLASSES:
        return (f"import torch as _torch\n\n\nclass {name}(_torch.autograd.Function):\n"
                f"    @staticmethod\n    def forward(ctx, *args):\n"
                f"        raise NotImplementedError({message})\n\n"
                f"    @staticmethod\n    def backward(ctx, *grads):\n"
                f"        raise NotImplementedError({message})\n")
    return f"def {name}(*args, **kwargs):\n    raise NotImplementedError({message})\n"


def extract_all(sources: dict[str, bytes], labs=tuple(CONTRACT), limits: Limits = LIMITS
                ) -> tuple[dict[str, LabFile], list[str]]:
    """Every lab of ``labs`` from the notebooks ``sources`` ({name: bytes}, read in name order).

    Returns ({lab: LabFile}, notes). A notebook that cannot be read is left out with a note.
    """
    notes: list[str] = []
    notebooks = []
    deadline = time.monotonic() + limits.seconds
    for name in sorted(sources):
        try:
            notebooks.append(read_notebook(name, sources[name], notes, limits, deadline))
        except NotebookError as error:
            notes.append(str(error))
    files = {}
    for lab in labs:
        try:
            files[lab] = extract(notebooks, lab, deadline)
            if len(files[lab].text.encode()) > limits.lab_bytes:
                raise NotebookError(f"The code `{lab}` needs from your notebooks is larger than "
                                    f"{limits.lab_bytes // 1024} kB; it was not graded.")
        except NotebookError as error:
            notes.append(str(error))
            files[lab] = extract([], lab)  # every graded name a "not found" stub
    return files, notes
