"""Grade a student's notebook: ``python -m course_lib.grade SUBMISSION.ipynb [--json OUT] [--timeout S]``.

For teachers. The grader runs the submission in a clean kernel and grades every exercise from the
kernel's state, never from the text the notebook printed. Run it in the course's environment
(``bash scripts/setup.sh``, then ``source .venv/bin/activate``).

What it does, in order:

1. **Is this a notebook of the course?** The file must be a Jupyter notebook (JSON, nbformat 4) with a
   Python kernel, whose first code cell sets up ``course_lib`` (the course's setup cell), and which has
   at least one exercise: a call ``check_xxx(my_xxx)`` of a known checker, or, in a clone of the course
   repository, the exercises of the course notebook it is a copy of (found by its cells' ids or its
   title; so an exercise whose cell the student deleted is still counted, as not done). The known
   checkers are every :class:`~course_lib.exercises.Exercise` of the modules ``course_lib.exercises.*``,
   by name. Anything else: a clear message on stderr and exit status 2.
2. **Static tamper checks** on the code cells (parsed with ``ast``, IPython magics blanked out), rules:

   - ``redefines``: binds a name ``check_*`` (assignment, ``def``, ``class``, ``import ... as``, ``del``,
     loop or ``with`` target), except importing the checker under its own name from
     ``course_lib.exercises``;
   - ``patches``: assigns to (or deletes) an attribute or an item of ``course_lib`` or of a module or name
     imported from it (``Exercise.grade = ...``, ``metrics.psnr = my_psnr``, ``check_psnr.reference = ...``),
     of ``torch``, ``numpy``, ``math``, ``builtins``, ``sys``, ``importlib`` (``torch.backends.*`` settings
     and ``sys.path`` excepted: the grader imports its own course_lib by path), also through ``getattr(x, ...)``,
     ``vars(x)`` or ``type(x)``; ``setattr``/``delattr`` on any of these, or a call that changes one in place
     (``sys.modules.update(...)``, ``.pop``, ``.setdefault``, ``.clear``, ``__setitem__``, ...);
   - ``fake verdict``: a string literal containing ``[correct]``;
   - ``subverts``: code that can hide any of the above or reach into the grader: ``exec``, ``eval``,
     ``compile``, ``__import__``, ``globals()``, ``__builtins__``, ``__torch_function__``,
     ``sys.meta_path``, ``sys.settrace``, ``sys._getframe``, ``inspect.currentframe``/``stack``,
     ``gc.get_objects``/``get_referrers``, ``get_ipython()`` (magics aside), ``ctypes``, ``unittest.mock``,
     ``importlib.reload``.

   A finding that names one checker (``check_psnr = ...``) marks that exercise "tampered"; any other
   marks every exercise of the notebook "tampered". A tampered exercise scores 0; the table says why.
3. **Run** the notebook in a fresh ``python3`` kernel (the grader's own interpreter), in a new empty
   working directory (before the notebook's cells, the kernel imports torch, matplotlib and the checker
   modules, with a limit of 120 s, so that a cell's time limit measures the notebook's work and not the
   libraries' import time), with ``COURSE_QUICK=1`` (quick mode), ``MPLBACKEND=Agg``, ``COURSE_PROGRESS=0``,
   ``COURSE_OFFLINE=1`` (for code that honours it), and no network: every proxy variable points at a closed local port
   (``http://127.0.0.1:9``) and ``no_proxy`` is empty, so downloads fail fast instead of hanging (the
   sandbox of the machine, if any, is the real barrier; the grader does not drop the kernel's network).
   Each cell has ``--timeout`` seconds (default 300); a cell that runs longer is interrupted (a
   ``KeyboardInterrupt`` in the kernel) and recorded, and execution goes on with the next cell, as after
   a cell that raised. A cell that kills the kernel (``os._exit``, a crash, memory) is recorded and the
   notebook runs again in a fresh kernel without it (at most 3 runs); a kernel that dies in the grading
   cells leaves nothing to grade (every exercise "error", the reason given).
4. **Grade in the same kernel**, with cells the grader adds after the notebook's (never saved):

   - a setup cell imports *pristine* copies of ``course_lib`` from the grader's own files (the student's
     ``course_lib.*`` modules are set aside in ``sys.modules`` meanwhile and put back after), so a
     monkeypatched checker, ``Exercise`` or reference function in the kernel has no effect on grading;
     it also compares the kernel's live ``course_lib`` functions, classes and checkers with the pristine
     ones (same bytecode), the notebook's ``check_*`` names with the live checkers, and looks for
     functions defined in the notebook inside ``builtins``, ``math``, ``numpy``, ``torch`` (and
     ``torch.Tensor``, ``torch.nn.functional``, ``torch.linalg``), in ``sys.meta_path`` or as
     ``sys.stdout``: findings are "tampered", as above (rule ``runtime``);
   - one cell per exercise calls the pristine checker's ``grade(my_xxx, seed)`` on the kernel's
     ``my_xxx`` (a function, or the number of a pen-and-paper exercise) with a fresh random seed
     (``secrets.randbelow(2**31)``, recorded in the JSON): the test cases are drawn from it, so an
     answer that hard-codes the cases of the notebook's run fails. A missing ``my_xxx`` is "not_done".
     A grading cell that runs past ``--timeout`` gives "error" (the function did not finish).

   The added cells run their code with ``builtins.exec`` in a namespace of their own (so a notebook
   that shadows ``print`` or ``len`` does not break grading) and print one JSON line prefixed with a
   random nonce made for this run; the grader reads only those lines. The notebook's own prints, a
   ``[correct]`` included, count for nothing.
5. **Report**: a table (exercise, function, verdict, hint), the cells that raised or timed out, the
   tampering found, and ``score: k/N``; ``--json OUT`` writes the same as JSON for a learning-management
   system: ``{"notebook", "course_notebook", "score", "total", "timeout_s", "exercises": [{"exercise",
   "function", "checker", "verdict", "hint", "seed", "graded"}], "tampering": [{"rule", "detail", "cell",
   "exercise"}], "cells": {"errors": [{"cell", "id", "error"}], "timeouts": [...], "kernel_died"},
   "elapsed_s"}``. ``graded`` is the checker's verdict before a "tampered" overrides it;
   ``cell`` is the 0-based index in the notebook's list of cells (the printout counts from 1).

Verdicts: "correct", "not_done", "wrong", "error" (the checker's), "tampered". Exit status: 0 when
grading ran, whatever the score; 2 when the file is not a notebook of this course (or cannot be
read); 3 when no kernel could be started.

Limits. A cell that ignores the interrupt (a bare ``except:`` inside a loop) keeps the kernel busy: the
cells after it time out in turn. Grading runs in the student's kernel, after the student's code: the
checks above close the ways a notebook could fool a checker (redefining it, patching it or the functions it
compares with, printing a verdict, hard-coding the cases), but code written to attack the grader itself (an
IPython input transformer, a patched ``sys.stdout``, ...) can always subvert in-kernel grading; the static
rules flag the known routes to it, for the teacher to look at. An answer that calls ``course_lib``'s own
reference function is graded correct: reading the notebook is the teacher's part.

Example (the static checks alone):

    >>> [f.rule for f in scan_code("check_psnr = lambda f: f")]
    ['redefines']
    >>> scan_code("from course_lib.exercises.metrics import check_psnr\\npsnr = check_psnr(my_psnr)")
    []
    >>> [(f.rule, f.detail) for f in scan_code("from course_lib.exercises import Exercise\\nExercise.grade = g")]
    [('patches', 'assigns to Exercise.grade')]
    >>> [f.rule for f in scan_code("%pip install x\\nprint('[correct] Exercise 1.1: all 3 test cases pass.')")]
    ['fake verdict']
    >>> scan_code("torch.backends.cudnn.benchmark = True\\nmodel.weight = w")
    []
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import os
import pkgutil
import re
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

EXIT_OK, EXIT_NOT_COURSE, EXIT_NO_KERNEL = 0, 2, 3
DEFAULT_TIMEOUT = 300
#: The limit of the warm-up cell and of the grader's setup cell (imports) is never shorter than this.
SETUP_TIMEOUT = 120
CHECK_CALL = re.compile(r"\b(check_\w+)\(\s*(my_\w+)\s*\)")
COURSE_DIR = Path(__file__).resolve().parent
VERDICTS = ("correct", "not_done", "wrong", "error", "tampered")
#: Environment of the kernel: quick mode, no window, no progress bars, no network.
KERNEL_ENV = {
    "COURSE_QUICK": "1", "MPLBACKEND": "Agg", "COURSE_PROGRESS": "0", "COURSE_OFFLINE": "1",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "all_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
    "no_proxy": "", "NO_PROXY": "", "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1",
}


class NotACourseNotebook(Exception):
    """The file is not a notebook of this course (or has nothing to grade); the message says why."""


class KernelStartError(Exception):
    """No kernel could be started."""


# ----------------------------------------------------------------------------- registry


def chapter_modules() -> list[str]:
    """The modules ``course_lib.exercises.*`` (one per chapter)."""
    return sorted(f"course_lib.exercises.{m.name}" for m in pkgutil.iter_modules([str(COURSE_DIR / "exercises")])
                  if not m.name.startswith("_"))


def registry() -> dict[str, tuple[str, object]]:
    """Every known checker: ``{"check_psnr": ("course_lib.exercises.metrics", <Exercise>)}``."""
    from course_lib.exercises import Exercise

    found: dict[str, tuple[str, object]] = {}
    for module_name in chapter_modules():
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if name.startswith("check_") and isinstance(value, Exercise):
                if name in found and found[name][1] is not value:
                    raise RuntimeError(f"two chapter modules define {name}: {found[name][0]} and {module_name}")
                found[name] = (module_name, value)
    return found


# ----------------------------------------------------------------------------- reading the notebook


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _code_cells(nb) -> list[tuple[int, dict]]:
    return [(i, c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"]


def _title(nb) -> str | None:
    for cell in nb["cells"]:
        if cell.get("cell_type") == "markdown":
            for line in _source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].split(":")[0].strip()
            return None
    return None


def exercise_calls(nb, known) -> list[tuple[str, str]]:
    """The (checker, function) pairs the notebook's code cells call, in order, known checkers only."""
    pairs = []
    for _, cell in _code_cells(nb):
        for check, fn in CHECK_CALL.findall(_source(cell)):
            if check in known and (check, fn) not in pairs:
                pairs.append((check, fn))
    return pairs


def course_notebook(nb, roots=None) -> tuple[str, list[tuple[str, str]]] | None:
    """The course notebook the submission is a copy of, and its exercises; None outside a clone of the course.

    Matched by the code cells' ids (student copies keep them) or else by the title, "# Notebook 3b: ...".
    """
    roots = roots or [COURSE_DIR.parent / "notebooks", COURSE_DIR.parent / "student"]
    ids = {c.get("id") for _, c in _code_cells(nb)} - {None}
    title = _title(nb)
    known = registry()
    by_title = None
    for root in roots:
        for path in sorted(Path(root).glob("*.ipynb")):
            try:
                ref = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            ref_ids = {c.get("id") for _, c in _code_cells(ref)} - {None}
            if ids and ref_ids and len(ids & ref_ids) >= max(2, len(ref_ids) // 2):
                return path.stem, exercise_calls(ref, known)
            if by_title is None and title and title == _title(ref):
                by_title = path.stem, exercise_calls(ref, known)
    return by_title


def read_notebook(path: Path):
    """The notebook as an nbformat node; NotACourseNotebook when the file is not a Jupyter notebook."""
    import nbformat

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotACourseNotebook(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise NotACourseNotebook(f"{path}: cannot be read as a text file ({err})") from None
    try:
        raw = json.loads(text)
    except ValueError:
        raise NotACourseNotebook(f"{path} is not a Jupyter notebook: it is not JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list) or raw.get("nbformat") != 4:
        raise NotACourseNotebook(f"{path} is not a Jupyter notebook (nbformat 4): no list of cells")
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as err:
        raise NotACourseNotebook(f"{path} is not a valid Jupyter notebook: {err}") from None


def identify(nb, path) -> tuple[str | None, list[tuple[str, str]]]:
    """The matched course notebook (or None) and the exercises to grade; NotACourseNotebook otherwise."""
    spec = nb.get("metadata", {}).get("kernelspec", {})
    language = spec.get("language") or nb.get("metadata", {}).get("language_info", {}).get("name")
    if spec and "python" not in (str(spec.get("name", "")) + str(language)).lower():
        raise NotACourseNotebook(f"{path} is not a notebook of this course: its kernel is "
                                 f"{spec.get('name') or language!r}, not Python")
    code = _code_cells(nb)
    setup = "course_lib" in _source(code[0][1]) if code else False
    known = registry()
    calls = exercise_calls(nb, known)
    match = course_notebook(nb)
    if not setup and not calls:
        raise NotACourseNotebook(
            f"{path} is not a notebook of this course: its first code cell does not set up course_lib, and "
            f"no cell calls one of the course's checkers ({', '.join(sorted(known)[:3])}, ...)")
    expected = list(match[1]) if match else []
    expected += [pair for pair in calls if pair not in expected]
    if not expected:
        where = f" (a copy of {match[0]}, which has none)" if match else ""
        raise NotACourseNotebook(f"{path} has no exercise to grade{where}: no cell calls a course checker "
                                 f"check_xxx(my_xxx)")
    return (match[0] if match else None), expected


# ----------------------------------------------------------------------------- static tamper checks


@dataclass
class Finding:
    """A tampering finding: ``rule``, what was seen, in which cell (index), about which checker (or all)."""

    rule: str
    detail: str
    cell: int | None = None
    exercise: str | None = None  # a checker's name, or None for the whole notebook


_PROTECTED_MODULES = {"torch", "numpy", "math", "builtins", "sys", "importlib", "course_lib"}
_PROTECTED_NAMES = _PROTECTED_MODULES | {"np"}  # protected even where no cell imports them
_COURSE_NAMES = {"Exercise", "Verdict", "Mistake", "Probe"}
_SUBVERTING_CALLS = {"exec", "eval", "compile", "__import__", "globals", "get_ipython"}
_SUBVERTING_ATTRS = {
    ("sys", "meta_path"), ("sys", "path_hooks"), ("sys", "settrace"), ("sys", "setprofile"),
    ("sys", "_getframe"), ("inspect", "currentframe"), ("inspect", "stack"), ("inspect", "getouterframes"),
    ("gc", "get_objects"), ("gc", "get_referrers"), ("importlib", "reload"), ("mock", "patch"),
}
_ALLOWED = ("torch.backends.", "sys.path")  # settings a notebook may change
_MUTATORS = {"update", "pop", "popitem", "setdefault", "clear", "__setitem__", "__delitem__", "insert", "append",
             "extend", "remove"}
_SUBVERTING_MODULES = {"ctypes", "unittest.mock", "mock"}


def _blank_magics(code: str) -> str:
    """IPython magics and shell escapes become ``pass`` (same indentation), so the cell parses as Python."""
    out = []
    for line in code.splitlines():
        stripped = line.lstrip()
        out.append(line[: len(line) - len(stripped)] + "pass" if stripped.startswith(("%", "!")) else line)
    return "\n".join(out)


def _root(node) -> tuple[str | None, str]:
    """The root name of ``a.b[c].d`` (``getattr(a, "b").c``, ...) and the expression's text."""
    text = ast.unparse(node)
    text = text if len(text) <= 60 else text[:57] + "..."
    parts = []
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            parts.append("[...]")
            node = node.value
        elif isinstance(node.func, ast.Name) and node.func.id in {"getattr", "vars", "type"} and node.args:
            node = node.args[0]  # getattr(x, "a").b = ... patches x
        else:
            parts.append("()")
            node = node.func
    if isinstance(node, ast.Name):
        return node.id, text
    return None, text


def _checker_of(root: str | None, text: str) -> str | None:
    """The checker a patch is about (``check_psnr.reference = ...``), None when it is about more."""
    return root if root and root.startswith("check_") and not text.startswith("type(") else None


class _Scanner(ast.NodeVisitor):
    def __init__(self, protected: set[str]):
        self.protected = protected  # names that refer to course_lib or a protected module
        self.found: list[tuple[str, str, str | None]] = []

    def _add(self, rule, detail, exercise=None):
        if (rule, detail, exercise) not in self.found:
            self.found.append((rule, detail, exercise))

    def _is_protected(self, root: str | None) -> bool:
        return root is not None and (root in self.protected or root in _COURSE_NAMES or root.startswith("check_"))

    def _bind(self, name: str, how: str):
        if name.startswith("check_"):
            self._add("redefines", f"{how} {name}", name)

    def _target(self, target, how="assigns to"):
        if isinstance(target, ast.Name):
            self._bind(target.id, how)
        elif isinstance(target, ast.Tuple | ast.List):
            for t in target.elts:
                self._target(t, how)
        elif isinstance(target, ast.Starred):
            self._target(target.value, how)
        elif isinstance(target, ast.Attribute | ast.Subscript):
            root, dotted = _root(target)
            if self._is_protected(root) and not dotted.startswith(_ALLOWED):
                exercise = _checker_of(root, dotted)
                self._add("patches", f"{how} {dotted}", exercise)

    # imports
    def visit_Import(self, node):
        for alias in node.names:
            top = alias.name.split(".")[0]
            if alias.name in _SUBVERTING_MODULES or top == "ctypes":
                self._add("subverts", f"imports {alias.name}")
            if top in _PROTECTED_MODULES:
                self.protected.add(alias.asname or top)
            if alias.asname:
                self._bind(alias.asname, "imports as")

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if module in _SUBVERTING_MODULES or module.split(".")[0] == "ctypes":
            self._add("subverts", f"imports from {module}")
        for alias in node.names:
            bound = alias.asname or alias.name
            if module.split(".")[0] in _PROTECTED_MODULES:
                self.protected.add(bound)
            if alias.name == "mock" and module == "unittest":
                self._add("subverts", "imports unittest.mock")
            if bound.startswith("check_"):
                genuine = module.startswith("course_lib.exercises") and bound == alias.name
                if not genuine:
                    self._bind(bound, f"imports {module}.{alias.name} as")

    # bindings
    def visit_Assign(self, node):
        for t in node.targets:
            self._target(t)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._target(node.target)
        self.generic_visit(node)

    def visit_NamedExpr(self, node):
        self._target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node):
        for t in node.targets:
            self._target(t, "deletes")
        self.generic_visit(node)

    def visit_For(self, node):
        self._target(node.target)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_With(self, node):
        for item in node.items:
            if item.optional_vars is not None:
                self._target(item.optional_vars)
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_FunctionDef(self, node):
        self._bind(node.name, "defines")
        if node.name == "__torch_function__":
            self._add("subverts", "defines __torch_function__")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._bind(node.name, "defines")
        self.generic_visit(node)

    def visit_Global(self, node):
        for name in node.names:
            self._bind(name, "declares global")

    # calls, attributes, names, strings
    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name) and func.id in _SUBVERTING_CALLS:
            self._add("subverts", f"calls {func.id}()")
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in {"setattr", "delattr", "__setattr__", "__delattr__"} and node.args:
            root, dotted = _root(node.args[0])
            if self._is_protected(root):
                exercise = _checker_of(root, dotted)
                self._add("patches", f"calls {name} on {dotted}", exercise)
        elif name in _MUTATORS and isinstance(func, ast.Attribute):
            root, dotted = _root(func.value)
            if self._is_protected(root) and not dotted.startswith(_ALLOWED):
                exercise = _checker_of(root, dotted)
                self._add("patches", f"calls {dotted}.{name}()", exercise)
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and (node.value.id, node.attr) in _SUBVERTING_ATTRS:
            self._add("subverts", f"uses {node.value.id}.{node.attr}")
        if node.attr in {"__builtins__", "__torch_function__", "input_transformers_post", "input_transformers_cleanup"}:
            self._add("subverts", f"uses .{node.attr}")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id == "__builtins__":
            self._add("subverts", "uses __builtins__")

    def visit_Constant(self, node):
        if isinstance(node.value, str) and "[correct]" in node.value.lower():
            self._add("fake verdict", "writes the text '[correct]' itself")


def scan_code(code: str, protected: set[str] | None = None) -> list[Finding]:
    """The tamper findings of one cell's code (``protected``: names bound to protected modules so far)."""
    protected = protected if protected is not None else set(_PROTECTED_NAMES)
    try:
        tree = ast.parse(_blank_magics(code))
    except SyntaxError:
        if "[correct]" in code.lower():
            return [Finding("fake verdict", "writes the text '[correct]' itself")]
        return []  # the kernel will report the syntax error
    scanner = _Scanner(protected)
    scanner.visit(tree)
    return [Finding(rule, detail, None, exercise) for rule, detail, exercise in scanner.found]


def scan_notebook(nb) -> list[Finding]:
    """The static findings of every code cell, with the cell's index."""
    protected = set(_PROTECTED_NAMES)
    findings = []
    for index, cell in _code_cells(nb):
        for f in scan_code(_source(cell), protected):
            f.cell = index
            findings.append(f)
    return findings


# ----------------------------------------------------------------------------- code run in the kernel
# These two functions are sent to the kernel as source (inspect.getsource) and run there with builtins.exec
# in a namespace of their own; they must not use anything of this module.


def _kernel_setup(user_ns, course_dir, modules, checks, state_key, nonce):  # pragma: no cover - runs in the kernel
    import functools
    import importlib
    import json
    import sys
    import types
    from pathlib import Path

    problems = []

    def problem(detail, exercise=None):
        problems.append({"detail": detail, "exercise": exercise})

    def is_ours(name):
        return name == "course_lib" or name.startswith("course_lib.")

    def code_of(obj):
        while isinstance(obj, functools.partial):
            obj = obj.func
        obj = getattr(obj, "__func__", obj)
        if isinstance(obj, property):
            obj = obj.fget
        code = getattr(obj, "__code__", None)
        return None if code is None else (code.co_code, code.co_names, code.co_name)

    def same(a, b):
        ca, cb = code_of(a), code_of(b)
        if ca is None and cb is None:
            return type(a).__name__ == type(b).__name__
        return ca == cb

    def similar(a, b, depth=0):
        if code_of(a) is not None or code_of(b) is not None:
            return same(a, b)
        if depth > 4:
            return True
        if isinstance(a, list | tuple):
            return (isinstance(b, list | tuple) and len(a) == len(b)
                    and all(similar(x, y, depth + 1) for x, y in zip(a, b, strict=True)))
        if isinstance(a, dict):
            return (isinstance(b, dict) and set(a) == set(b)
                    and all(similar(a[k], b[k], depth + 1) for k in a))
        if hasattr(a, "__dataclass_fields__"):
            return type(a).__name__ == type(b).__name__ and all(
                similar(getattr(a, f), getattr(b, f, None), depth + 1) for f in a.__dataclass_fields__)
        if a is None or isinstance(a, str | int | float | bool):
            return a == b
        return type(a).__name__ == type(b).__name__

    live = {k: v for k, v in sys.modules.items() if is_ours(k)}
    for k in live:
        del sys.modules[k]
    parent = str(Path(course_dir).parent)
    sys.path.insert(0, parent)
    importlib.invalidate_caches()
    error = None
    try:
        for m in modules:
            importlib.import_module(m)
        where = Path(sys.modules["course_lib"].__file__).resolve().parent
        if where != Path(course_dir).resolve():
            error = f"course_lib was imported from {where}, not from the grader's {course_dir}"
        pristine = {k: v for k, v in sys.modules.items() if is_ours(k)}
    except BaseException as err:  # noqa: BLE001 - reported, grading cannot go on
        error = f"importing course_lib failed: {type(err).__name__}: {err}"
        pristine = {}
    finally:
        sys.path.remove(parent)
        for k in [k for k in sys.modules if is_ours(k)]:
            del sys.modules[k]
        sys.modules.update(live)
    checkers = {}
    for name, module_name in checks.items() if error is None else ():
        module = pristine.get(module_name)
        if module is not None and hasattr(module, name):
            checkers[name] = getattr(module, name)
    # The kernel's live course_lib against the pristine one.
    for module_name, pmod in pristine.items():
        lmod = live.get(module_name)
        if lmod is None:
            continue
        for name, obj in vars(pmod).items():
            if name.startswith("__"):
                continue
            lobj = getattr(lmod, name, None)
            exercise = name if name.startswith("check_") else None
            if isinstance(obj, types.FunctionType) and obj.__module__ == module_name:
                if not same(obj, lobj):
                    problem(f"{module_name}.{name} was replaced in the kernel", exercise)
            elif isinstance(obj, type) and obj.__module__ == module_name:
                if not isinstance(lobj, type):
                    problem(f"{module_name}.{name} was replaced in the kernel")
                    continue
                for attr, value in vars(obj).items():
                    if code_of(value) is not None and not same(value, vars(lobj).get(attr)):
                        problem(f"{module_name}.{name}.{attr} was replaced in the kernel")
                for attr in set(vars(lobj)) - set(vars(obj)):  # state a class keeps (tqdm's lock) is fine
                    if code_of(vars(lobj)[attr]) is not None:
                        problem(f"{module_name}.{name}.{attr} was added in the kernel")
            elif name.startswith("check_") and hasattr(obj, "grade"):
                if lobj is None or type(lobj).__name__ != type(obj).__name__:
                    problem(f"{module_name}.{name} was replaced in the kernel", name)
                    continue
                pv, lv = dict(vars(obj)), dict(vars(lobj))
                pv.pop("_replays", None)
                lv.pop("_replays", None)
                if set(pv) != set(lv):
                    problem(f"{module_name}.{name} has attributes set in the kernel", name)
                    continue
                for attr, value in pv.items():
                    if not similar(value, lv[attr]):
                        problem(f"{module_name}.{name}.{attr} was changed in the kernel", name)
    # The notebook's check_* names are the live checkers.
    for name, module_name in checks.items():
        lmod = live.get(module_name)
        if name in user_ns and (lmod is None or user_ns[name] is not getattr(lmod, name, None)):
            problem(f"the notebook's {name} is not the course's checker", name)
    # Functions defined in the notebook inside the libraries the checkers use.
    import builtins
    import math

    import numpy
    import torch
    import torch.nn.functional

    def foreign(obj):
        while isinstance(obj, functools.partial):
            obj = obj.func
        try:
            return getattr(obj, "__module__", None) == "__main__"
        except Exception:  # noqa: BLE001
            return False

    spaces = {"builtins": builtins, "math": math, "numpy": numpy, "torch": torch,
              "torch.nn.functional": torch.nn.functional, "torch.linalg": torch.linalg,
              "torch.Tensor": torch.Tensor}
    for label, space in spaces.items():
        for name, obj in list(vars(space).items()):
            if foreign(obj):
                problem(f"{label}.{name} is a function defined in the notebook")
    for finder in sys.meta_path:
        if foreign(finder) or foreign(type(finder)):
            problem("an import hook defined in the notebook is in sys.meta_path")
    if foreign(type(sys.stdout)) or foreign(getattr(sys.stdout, "write", None)):
        problem("sys.stdout was replaced by the notebook")
    user_ns[state_key] = {"checkers": checkers}
    print(nonce + json.dumps({"kind": "setup", "error": error, "problems": problems, "checkers": sorted(checkers)}),
          flush=True)


def _kernel_grade(user_ns, check, function, seed, state_key, nonce):  # pragma: no cover - runs in the kernel
    import json

    state = user_ns.get(state_key) or {}
    checker = state.get("checkers", {}).get(check)
    if checker is None:
        status, message = "error", f"[error] {check}: the grader could not load this checker."
    elif function not in user_ns:
        status, message = "not_done", f"[not done yet] {checker.name}: the notebook defines no function `{function}`."
    else:
        try:
            verdict = checker.grade(user_ns[function], seed)
            status, message = str(verdict.status), str(verdict.message)
        except KeyboardInterrupt:
            status, message = "error", f"[error] {checker.name}: your function did not finish in time."
        except BaseException as err:  # noqa: BLE001 - SystemExit and the like from the student's function
            status, message = "error", f"[error] {checker.name}: your function raised {type(err).__name__}: {err}."
    print(nonce + json.dumps({"kind": "verdict", "check": check, "status": status, "message": message}), flush=True)


def _kernel_cell(func, call_args: dict, nonce: str) -> str:
    """A cell that runs ``func(user namespace, **call_args)`` with builtins.exec in a namespace of its own."""
    alias = f"_course_grader_builtins_{nonce}"
    code = inspect.getsource(func) + f"\n{func.__name__}(__user_ns__, **{call_args!r})\n"
    return (f"import builtins as {alias}\n"
            f"{alias}.exec({code!r}, {{'__builtins__': {alias}, '__name__': 'course_grader', "
            f"'__user_ns__': {alias}.globals()}})\n")


# ----------------------------------------------------------------------------- running


@dataclass
class ExerciseResult:
    exercise: str
    function: str
    checker: str
    verdict: str
    hint: str
    seed: int
    graded: str  # the checker's verdict, before a "tampered" overrides it


@dataclass
class Report:
    notebook: str
    course_notebook: str | None
    timeout_s: float
    exercises: list[ExerciseResult] = field(default_factory=list)
    tampering: list[Finding] = field(default_factory=list)
    cells: dict = field(default_factory=lambda: {"errors": [], "timeouts": [], "kernel_died": None})
    elapsed_s: float = 0.0

    @property
    def score(self) -> int:
        return sum(e.verdict == "correct" for e in self.exercises)

    @property
    def total(self) -> int:
        return len(self.exercises)

    def to_dict(self) -> dict:
        return {"notebook": self.notebook, "course_notebook": self.course_notebook, "score": self.score,
                "total": self.total, "timeout_s": self.timeout_s,
                "exercises": [asdict(e) for e in self.exercises],
                "tampering": [asdict(f) for f in self.tampering], "cells": self.cells,
                "elapsed_s": round(self.elapsed_s, 1)}


def _hint(message: str, name: str) -> str:
    """A verdict's message without its "[status] name: " prefix and the notebook's fallback sentence."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", message)
    if text.startswith(name + ":"):
        text = text[len(name) + 1:]
    text = re.sub(r"\s*The notebook continues with the reference `[^`]*`\.\s*$", "", text)
    return text.strip()


def _cell_error(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}".strip()
    return None


def _nonce_lines(cell, nonce: str) -> list[dict]:
    found = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            for line in out.get("text", "").splitlines():
                if line.startswith(nonce):
                    try:
                        found.append(json.loads(line[len(nonce):]))
                    except ValueError:
                        pass
    return found


def _client_class():
    from nbclient import NotebookClient

    class Client(NotebookClient):
        """nbclient's client, which also remembers the cells that ran past the time limit."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.timed_out = []

        async def _async_handle_timeout(self, timeout, cell=None):
            self.timed_out.append(cell)
            return await super()._async_handle_timeout(timeout, cell)

    return Client


#: Runs of the notebook at most: after a cell that kills the kernel, the notebook runs again without it.
MAX_RUNS = 3


def _run_once(nb, n_student, timeout, env, skip, expected, known, nonce, client_class, dead_kernel, cell_error):
    """Run the cells (warm-up, notebook, grading) in one fresh kernel, cells in ``skip`` left out.

    Returns {"cells": {"errors", "timeouts", "kernel_died"}, "verdicts": {check: (status, message)}, "setup"}.
    """
    timeout_name = "CellTimeoutError"
    cells = {"errors": [], "timeouts": [], "kernel_died": None}
    verdicts: dict[str, tuple[str, str]] = {}
    setup_result = None
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    with tempfile.TemporaryDirectory(prefix="course-grade-") as workdir:
        client = client_class(
            nb, timeout=timeout, allow_errors=True, interrupt_on_timeout=True, kernel_name="python3",
            error_on_timeout={"ename": timeout_name, "evalue": f"the cell ran past the {timeout:g} s limit",
                              "traceback": []},
            resources={"metadata": {"path": workdir}}, record_timing=False)
        started = False
        log_path = Path(workdir) / "kernel.log"
        try:
            with open(log_path, "w") as log, client.setup_kernel(env=env, stderr=log):
                started = True
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code" or index in skip:
                        continue
                    grading = index >= n_student
                    client.timeout = max(timeout, SETUP_TIMEOUT) if index in (0, n_student) else timeout
                    try:
                        client.execute_cell(cell, index)
                    except dead_kernel as err:
                        cells["kernel_died"] = {"cell": index - 1 if 0 < index < n_student else None,
                                                "error": str(err) or "the kernel died"}
                        break
                    except cell_error:  # not raised with allow_errors; kept for safety
                        pass
                    error = _cell_error(cell)
                    timed_out = any(c is cell for c in client.timed_out)
                    if timed_out:
                        error = f"{timeout_name}: the cell ran past the {client.timeout:g} s limit"
                    if index == 0:  # the warm-up
                        if error:
                            cells["errors"].append({"cell": None, "id": None, "error": f"before the notebook, "
                                                    f"importing torch and course_lib: {error}"})
                        continue
                    if not grading:
                        entry = {"cell": index - 1, "id": cell.get("id"), "error": error}
                        if timed_out:
                            cells["timeouts"].append(entry)
                        elif error:
                            cells["errors"].append(entry)
                        continue
                    for line in _nonce_lines(cell, nonce):
                        if line.get("kind") == "setup":
                            setup_result = line
                        elif line.get("kind") == "verdict":
                            verdicts[line["check"]] = (line["status"], line["message"])
                    if index > n_student and timed_out:
                        check = expected[index - n_student - 1][0]
                        verdicts.setdefault(check, ("error", f"[error] {known[check][1].name}: your function did "
                                                             f"not finish within the {timeout:g} s limit."))
        except dead_kernel as err:
            cells["kernel_died"] = {"cell": None, "error": str(err) or "the kernel died"}
        except Exception as err:
            if not started:
                raise KernelStartError(f"could not start a python3 kernel: {err}") from err
            raise
        if cells["kernel_died"]:  # what the kernel said last, for the teacher
            lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
            lines = [line for line in lines if line.strip() and "running over TCP without encryption" not in line]
            cells["kernel_died"]["log"] = "\n".join(lines[-5:])
    return {"cells": cells, "verdicts": verdicts, "setup": setup_result}


def grade_notebook(path, timeout: float = DEFAULT_TIMEOUT, seeds: dict[str, int] | None = None) -> Report:
    """Run and grade one submission (see the module's docstring). ``seeds``: fixed seeds by checker (tests)."""
    import nbformat
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    _Client = _client_class()

    start = time.monotonic()
    path = Path(path)
    nb = read_notebook(path)
    course_nb, expected = identify(nb, path)
    known = registry()
    report = Report(str(path), course_nb, timeout)
    report.tampering = scan_notebook(nb)

    nonce = secrets.token_hex(16)
    state_key = f"_course_grader_state_{nonce}"
    seeds = dict(seeds or {})
    for check, _ in expected:
        seeds.setdefault(check, secrets.randbelow(2**31))
    n_student = len(nb.cells)
    setup_cell = nbformat.v4.new_code_cell(_kernel_cell(_kernel_setup, {
        "course_dir": str(COURSE_DIR), "modules": chapter_modules(),
        "checks": {check: known[check][0] for check, _ in expected}, "state_key": state_key, "nonce": nonce}, nonce))
    grade_cells = [nbformat.v4.new_code_cell(_kernel_cell(_kernel_grade, {
        "check": check, "function": fn, "seed": seeds[check], "state_key": state_key, "nonce": nonce}, nonce))
        for check, fn in expected]
    nb.cells.extend([setup_cell, *grade_cells])

    warmup = nbformat.v4.new_code_cell("import matplotlib.pyplot\nimport numpy\nimport torch\n\n"
                                       + "".join(f"import {m}\n" for m in chapter_modules()))
    nb.cells.insert(0, warmup)
    n_student += 1
    env = {**os.environ, **KERNEL_ENV}
    deaths: list[dict] = []  # notebook cells that killed the kernel: the next run goes without them
    for _attempt in range(MAX_RUNS):
        run = _run_once(nb, n_student, timeout, env, {d["cell"] + 1 for d in deaths}, expected, known, nonce,
                        _Client, DeadKernelError, CellExecutionError)
        died = run["cells"]["kernel_died"]
        if died is None or died["cell"] is None:
            break
        deaths.append(died)
    report.cells = run["cells"]
    report.cells["errors"] = sorted(report.cells["errors"] + [
        {"cell": d["cell"], "id": nb.cells[d["cell"] + 1].get("id"),
         "error": f"the kernel died here ({d['error']}); the notebook was run again without this cell"}
        for d in deaths if d is not run["cells"]["kernel_died"]], key=lambda c: -1 if c["cell"] is None else c["cell"])
    verdicts, setup_result = run["verdicts"], run["setup"]

    if setup_result is not None:
        for p in setup_result.get("problems", []):
            report.tampering.append(Finding("runtime", p["detail"], None, p.get("exercise")))
    whole = [f for f in report.tampering if f.exercise is None]
    for check, fn in expected:
        name = known[check][1].name
        if setup_result is not None and setup_result.get("error"):
            status, message = "error", f"the grader could not load the checkers: {setup_result['error']}"
        elif check in verdicts:
            status, message = verdicts[check]
        elif report.cells["kernel_died"]:
            died = report.cells["kernel_died"]
            at = f"cell {died['cell'] + 1}: " if died.get("cell") is not None else ""
            status, message = "error", f"the kernel died ({at}{died['error']}); nothing could be graded"
        else:
            status, message = "error", "the grader got no verdict from the kernel (its output was lost or altered)"
        own = [f for f in report.tampering if f.exercise == check]
        graded = status
        if whole or own:
            reasons = "; ".join(dict.fromkeys(
                f"{'cell ' + str(f.cell + 1) + ' ' if f.cell is not None else ''}{f.detail}" for f in own + whole))
            status, message = "tampered", f"not scored: {reasons}"
        report.exercises.append(ExerciseResult(name, fn, check, status, _hint(message, name), seeds[check], graded))
    report.elapsed_s = time.monotonic() - start
    return report


# ----------------------------------------------------------------------------- output


def format_report(report: Report) -> str:
    rows = [("exercise", "function", "verdict", "hint")]
    rows += [(e.exercise, e.function, e.verdict, e.hint) for e in report.exercises]
    widths = [max(len(r[k]) for r in rows) for k in range(3)]
    lines = [f"Grading {report.notebook}" + (f" (a copy of {report.course_notebook})" if report.course_notebook
                                             else "") + f": quick mode, {report.timeout_s:g} s per cell"]
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
        if k == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    cells = report.cells
    listed = sorted([(c, "errors") for c in cells["errors"]] + [(c, "timeouts") for c in cells["timeouts"]],
                    key=lambda ck: -1 if ck[0]["cell"] is None else ck[0]["cell"])
    for c, kind in listed:  # numbered from 1 here, as a reader counts; the JSON has the 0-based index
        where = "before the notebook" if c["cell"] is None else f"cell {c['cell'] + 1}"
        lines.append(f"{where}{' (id ' + c['id'] + ')' if c.get('id') else ''}: {c['error']}"
                     + (" (stopped; the other cells ran)" if kind == "timeouts" else ""))
    if cells["kernel_died"]:
        died = cells["kernel_died"]
        where = f" at cell {died['cell'] + 1}" if died.get("cell") is not None else ""
        lines.append(f"the kernel died{where}: {died['error']}" + (f"\n  {died['log']}" if died.get("log") else ""))
    for f in report.tampering:
        where = f"cell {f.cell + 1}: " if f.cell is not None else "in the kernel: "
        lines.append(f"tampering ({f.rule}), {where}{f.detail}")
    lines.append(f"score: {report.score}/{report.total}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.grade", description=(
        "Run a student's notebook of this course in a clean kernel (quick mode, no network) and grade its "
        "exercises from the kernel's state."))
    parser.add_argument("submission", help="the student's notebook (.ipynb)")
    parser.add_argument("--json", metavar="OUT", help="also write the verdicts as JSON to OUT")
    parser.add_argument("--timeout", metavar="S", type=float, default=DEFAULT_TIMEOUT,
                        help=f"time limit per cell, in seconds (default {DEFAULT_TIMEOUT})")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    try:
        report = grade_notebook(args.submission, timeout=args.timeout)
    except NotACourseNotebook as err:
        print(f"course_lib.grade: {err}", file=sys.stderr)
        return EXIT_NOT_COURSE
    except KernelStartError as err:
        print(f"course_lib.grade: {err}", file=sys.stderr)
        return EXIT_NO_KERNEL
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
