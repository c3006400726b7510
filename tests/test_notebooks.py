"""Checks on the notebooks as files; nbval executes them (see the README's test command)."""

import importlib.util
import json
import re
import sys
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


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


colab_like = _load_script("colab_like")
REPO = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
URL = re.compile(r"https?://[^\s\"'`<>)]+")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernel_and_setup_cell(path):
    nb = load(path)
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", f"{path.name} has no python3 kernelspec"
    first = next(source(c) for c in nb["cells"] if c["cell_type"] == "code")
    # The repository's URL is written once, as COURSE_REPO, equal to _config.yml's, and the install uses it.
    assert re.findall(r'^[ \t]*COURSE_REPO = "([^"]+)"$', first, re.M) == [REPO], (
        f"{path.name}: the first code cell must set COURSE_REPO = \"{REPO}\" (_config.yml's repository url)")
    assert URL.findall(first) == [REPO], f"{path.name}: the first code cell names URLs {URL.findall(first)}"
    install = re.search(r'^if "google.colab" in sys.modules:\n    COURSE_REPO = .*\n    (%pip install [^\n]*)$',
                        first, re.M)
    assert install, f"{path.name}: the first code cell must install course_lib in Colab only"
    assert install.group(1) == f'%pip install -q "course_lib{colab_like.setup_extras(path)} @ git+{{COURSE_REPO}}"'
    assert "torch" not in install.group(1), f"{path.name}: the install must keep Colab's torch"
    assert "get_device()" in first and "describe_device" in first and "cuda:0" not in "".join(
        source(c) for c in nb["cells"])


def test_readme_installs_from_the_same_repository():
    """The README's Colab install line names _config.yml's repository, as the notebooks' first cells do."""
    readme = (ROOT / "README.md").read_text()
    installs = re.findall(r'pip install "course_lib(?:\[[\w,-]+\])? @ git\+([^"]+)"', readme)
    assert installs and set(installs) == {REPO}, f"README's install lines name {installs}, _config.yml {REPO}"


# Packages that course_lib installs only with its "references" extra (import names), and the course_lib
# modules that import one of them.
REFERENCE_MODULES = {"torchmetrics", "lpips", "pytorch_fid", "torch_fidelity", "cleanfid"}
NEEDS_REFERENCES = {"course_lib.lpips": "lpips"}


def imported_modules(code: str) -> set[str]:
    """The modules a notebook's code imports: each top-level name and its first two parts (``course_lib.fid``);
    ``from course_lib import lpips`` counts as ``course_lib.lpips``."""
    found = set()

    def add(module):
        parts = module.split(".")
        found.update({parts[0], ".".join(parts[:2])})

    pattern = r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import[ \t]+(?:\(([^)]*)\)|([^\n#]+))"
    for module, in_parentheses, on_the_line in re.findall(pattern, code, re.M):
        add(module)
        names = in_parentheses or on_the_line
        if module == "course_lib":
            found.update(f"course_lib.{n.split()[0]}" for n in names.split(",") if n.strip())
    for modules in re.findall(r"^[ \t]*import[ \t]+([^\n#]+)", code, re.M):
        for module in modules.split(","):
            add(module.split()[0])
    return found


def needs_references(code: str) -> set[str]:
    modules = imported_modules(code)
    return (modules & REFERENCE_MODULES) | {pkg for mod, pkg in NEEDS_REFERENCES.items() if mod in modules}


def test_imported_modules_reads_the_imports():
    code = ("import torch\nfrom course_lib import lpips as course_lpips, plotting\n"
            "try:\n    from torch_fidelity.metric_isc import isc_features_to_metric\nexcept ImportError:\n    pass\n"
            "from course_lib.exercises.metrics import (\n    check_psnr,\n)\n# import lpips (a comment)\n"
            "from course_lib import plotting\nfrom course_lib import fid\n"
            "import os, cleanfid.fid as cf\n")
    assert needs_references(code) == {"torch_fidelity", "lpips", "cleanfid"}
    assert imported_modules("from course_lib import plotting\nfrom course_lib import lpips as x") >= {
        "course_lib.plotting", "course_lib.lpips"}
    assert needs_references("import numpy as np\nfrom course_lib.metrics import psnr") == set()
    assert needs_references("from cleanfid import fid") == {"cleanfid"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_what_the_notebook_imports(path):
    """course_lib[references] exactly where a cell imports a reference library (issue 12: in a Colab-style
    install of course_lib alone, notebook 05 stopped at ModuleNotFoundError: No module named 'torchmetrics')."""
    code = "\n".join(source(c) for c in load(path)["cells"] if c["cell_type"] == "code")
    extras = colab_like.setup_extras(path)
    needed = needs_references(code)
    if needed:
        assert extras == "[references]", f"{path.name} imports {sorted(needed)}: its first cell must install " \
            f'"course_lib[references]", not "course_lib{extras}"'
    else:
        assert extras == "", f"{path.name} imports no reference library: install course_lib alone, not {extras}"


def test_references_extra_holds_the_reference_libraries():
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["references"]
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in extra}
    assert names == {"torchmetrics", "lpips", "pytorch-fid", "torch-fidelity", "clean-fid"}


def test_colab_like_groups_and_parsing(tmp_path):
    grouped = colab_like.groups(NOTEBOOKS)
    assert {colab_like.group_name(e) for e in grouped} == {"base", "references"}
    assert sorted(p.stem for p in grouped["[references]"]) == [
        "05_pixel_and_perceptual_metrics", "06_fid_and_inception_score"]
    assert sum(map(len, grouped.values())) == len(NOTEBOOKS)
    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert colab_like.colab_torch() == [p for p in pins if p.split("==")[0] in {"torch", "torchvision"}]

    def notebook(first):
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": "# t"},
                                              {"cell_type": "code", "source": first}]}))
        return path

    ok = ('COURSE_REPO = "x"\nif "google.colab" in sys.modules:\n'
          '    %pip install -q "course_lib[a,b-c] @ git+{COURSE_REPO}"\n')
    assert colab_like.setup_extras(notebook(ok)) == "[a,b-c]"
    assert colab_like.group_name("[a,b-c]") == "a+b-c"
    for bad in ['%pip install -q "course_lib @ git+https://example.org/repo"\n',  # URL not from COURSE_REPO
                "import sys\n",  # no install at all
                ok + ok]:  # two installs
        with pytest.raises(colab_like.SetupCellError, match="nb.ipynb"):
            colab_like.setup_extras(notebook(bad))


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


def measured_only(code, checks) -> bool:
    """A predict-then-run solution: it reads the answer off the notebook's own run, so it cannot run alone."""
    names = [m for m in re.findall(r"^(my_\w+)\s*=", code, re.M) if m in checks]
    return bool(names) and all(getattr(EXERCISES[checks[n]], "value_word", "") == "measured" for n in names)


@pytest.mark.parametrize("name, code, checks", list(solutions()))
def test_solution_passes_its_checker(name, code, checks):
    import torch

    if measured_only(code, checks):  # checked where it runs: nbval executes the notebook, the checker grades the run
        assert "results" in code, f"{name}: a prediction's solution should read the answer off the run"
        return
    namespace = {"torch": torch}
    exec(code, namespace)
    defined = [n for n in namespace if n.startswith("my_") and n in checks]
    assert defined, f"{name}: a solution defines no function (or number) that the notebook checks"
    for fn_name in defined:
        verdict = EXERCISES[checks[fn_name]].grade(namespace[fn_name])
        assert verdict.passed, f"{name}: the solution of {fn_name} fails: {verdict.message}"


def test_every_exercise_has_a_solution():
    for path in NOTEBOOKS:
        cells = load(path)["cells"]
        checked = {fn for c in cells if c["cell_type"] == "code" for _, fn in CHECK_CALL.findall(source(c))}
        solved = {m for c in cells if c["cell_type"] == "markdown" for code in SOLUTION.findall(source(c))
                  for m in re.findall(r"^(?:def )?(my_\w+)\b", code, re.M)}  # a function, or a number (my_x = ...)
        # A predict-then-run answer is measured by the notebook: its solution explains, it has no code to copy.
        measured = {fn for c in cells if c["cell_type"] == "code" for check, fn in CHECK_CALL.findall(source(c))
                    if getattr(EXERCISES[check], "value_word", "") == "measured"}
        assert checked - measured <= solved, f"{path.name}: exercises without a solution: {sorted(checked - solved)}"
        for fn in measured:
            after = "".join(source(c) for c in cells[[i for i, c in enumerate(cells) if fn in source(c)][-1]:])
            assert ":::{admonition} Solution" in after, f"{path.name}: the prediction {fn} has no explanation"


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


def test_checker_messages_name_no_labels():
    """A checker's title, hints and answer contract describe equations in words: a student never meets a label."""
    book = "".join(p.read_text() for p in (ROOT / "book").glob("*.md"))
    every = set(re.findall(r"\$\$\s*\(([a-z0-9-]+)\)", book))
    prose = re.sub(r"\$\$\s*\([a-z0-9-]+\)|\{[a-z:]+\}`[^`]*`", " ", book)
    # labels the prose uses as words ("the score-function estimator") count only as "(label)"
    words = {label for label in every if re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", prose)}
    for name, exercise in EXERCISES.items():
        texts = [exercise.name, getattr(exercise, "accepts", "")]
        texts += [m.hint for m in exercise.mistakes] + [getattr(p, "hint", "") for p in getattr(exercise, "probes", ())]
        for text in texts:
            assert not set(leaked_labels(text)) - words, f"{name}: {leaked_labels(text)} in {text!r}"
            assert not [label for label in every if f"({label})" in text], f"{name}: a label in {text!r}"


EXERCISE_HEADING = re.compile(r"^#+ Exercise (\d+)\.(\d+):", re.M)


def test_exercises_are_numbered_in_book_order():
    """Exercise N.1, N.2, ... follow the notebooks' order in _toc.yml, and each checker's title carries the
    number of the heading above the cell that calls it (issue 14: notebook 03's exercises came before the
    pages that derive them; moving it renumbered the VAE part)."""
    order = [f for f in toc_files() if f.startswith("notebooks/")]
    seen: dict[int, list[int]] = {}
    for file in order:
        current = None
        for cell in load(ROOT / f"{file}.ipynb")["cells"]:
            text = source(cell)
            if cell["cell_type"] == "markdown":
                for part, number in EXERCISE_HEADING.findall(text):
                    seen.setdefault(int(part), []).append(int(number))
                    current = f"{part}.{number}"
            else:
                for check, _ in CHECK_CALL.findall(text):
                    if check in EXERCISES:
                        assert EXERCISES[check].name.startswith(f"Exercise {current},"), (
                            f"{file}: {check}'s title {EXERCISES[check].name!r} under heading Exercise {current}")
    for part, numbers in seen.items():
        assert numbers == list(range(1, len(numbers) + 1)), f"Exercises {part}.x in book order: {numbers}"
