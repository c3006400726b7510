"""Checks on the notebooks as files; nbval executes them (see the README's test command)."""

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.test_exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTION = re.compile(r":::\{admonition\} Solution.*?```python\n(.*?)```", re.S)
CHECK_CALL = re.compile(r"=\s*(check_\w+)\((my_\w+)\)")


def load(path):
    return json.loads(path.read_text())


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name}: a cell has outputs; clear them before committing"
            assert cell.get("execution_count") is None, f"{path.name}: a cell has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernel_and_setup_cell(path):
    nb = load(path)
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", f"{path.name} has no python3 kernelspec"
    first = next(source(c) for c in nb["cells"] if c["cell_type"] == "code")
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert '"google.colab" in sys.modules' in first and f"git+{repo}" in first, (
        f"{path.name}: the first code cell must install course_lib from {repo} in Colab")
    assert "get_device()" in first and "describe_device" in first and "cuda:0" not in "".join(
        source(c) for c in nb["cells"])


def toc_files():
    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                yield node["file"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"], *walk(toc.get("parts", []))]


def test_every_notebook_is_in_the_book_and_every_page_exists():
    files = toc_files()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in files, f"{path.name} is not in _toc.yml"
    for file in files:
        assert any((ROOT / f"{file}{ext}").is_file() for ext in (".md", ".ipynb")), f"_toc.yml lists missing {file}"


def solutions():
    for path in NOTEBOOKS:
        cells = load(path)["cells"]
        checks = {fn: check for c in cells if c["cell_type"] == "code" for check, fn in CHECK_CALL.findall(source(c))}
        for cell in cells:
            if cell["cell_type"] == "markdown":
                for code in SOLUTION.findall(source(cell)):
                    yield pytest.param(path.name, code, checks, id=f"{path.stem}:{code.split('(')[0][4:]}")


@pytest.mark.parametrize("name, code, checks", list(solutions()))
def test_solution_passes_its_checker(name, code, checks):
    import torch

    namespace = {"torch": torch}
    exec(code, namespace)
    defined = [n for n in namespace if n.startswith("my_") and n in checks]
    assert defined, f"{name}: a solution defines no function that the notebook checks"
    for fn_name in defined:
        verdict = EXERCISES[checks[fn_name]].grade(namespace[fn_name])
        assert verdict.passed, f"{name}: the solution of {fn_name} fails: {verdict.message}"


def test_every_exercise_has_a_solution():
    for path in NOTEBOOKS:
        cells = load(path)["cells"]
        checked = {fn for c in cells if c["cell_type"] == "code" for _, fn in CHECK_CALL.findall(source(c))}
        solved = {m for c in cells if c["cell_type"] == "markdown" for code in SOLUTION.findall(source(c))
                  for m in re.findall(r"def (my_\w+)", code)}
        assert checked <= solved, f"{path.name}: exercises without a solution: {sorted(checked - solved)}"


def equation_labels() -> set[str]:
    """The book's equation labels (``$$ ... $$ (label)``) that cannot be ordinary words: those with a hyphen."""
    text = "".join(p.read_text() for p in (ROOT / "book").glob("*.md"))
    return {label for label in re.findall(r"\$\$\s*\(([a-z0-9-]+)\)", text) if "-" in label}


def leaked_labels(text: str) -> list[str]:
    return sorted({m for m in re.findall(r"(?<![\w-])([a-z0-9]+(?:-[a-z0-9]+)+)(?![\w-])", text)} & equation_labels())


def test_labels_are_known():
    assert {"ae-loss", "vae-reparam", "iwae-bound"} <= equation_labels()
    assert leaked_labels("see (ae-loss), not pytorch-fid or xae-loss") == ["ae-loss"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_readers_meet_no_raw_labels(path):
    """Readers meet equation numbers: a heading holds no role (the page's contents would show the raw label),
    and no code cell (comments, printed strings, table columns) names a label."""
    for cell in load(path)["cells"]:
        text = source(cell)
        if cell["cell_type"] == "markdown":
            for line in text.splitlines():
                if line.startswith("#"):
                    assert "{" not in line, f"{path.name}: heading with a role: {line!r}"
                    assert not re.match(r"#+ \d+\.", line), f"{path.name}: numbered by hand: {line!r}"
        else:
            assert not leaked_labels(text), f"{path.name}: a code cell names labels {leaked_labels(text)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_verdicts_are_removed_from_the_book(path):
    """The book shows an exercise's stub and its collapsed solution, not the stub's '[not done yet]'."""
    for cell in load(path)["cells"]:
        if cell["cell_type"] == "code" and CHECK_CALL.search(source(cell)):
            assert "remove-output" in cell["metadata"].get("tags", []), (
                f"{path.name}: exercise cell without the remove-output tag: {source(cell)[:60]!r}")
