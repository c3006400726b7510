"""The teachers' grader, course_lib.grade: real runs of a real student copy and of small notebooks built here.

Each graded notebook costs a kernel start and its cells in quick mode: the real one is student/03b_elbo_check
(short); the others are built from student/01_autoencoder's own setup cell, imports and exercise cells.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from course_lib import autoencoder, grade
from course_lib.exercises.autoencoder import check_interpolate_codes

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "student"
REAL = STUDENT / "03b_elbo_check.ipynb"
DETAILS = re.compile(r"<details><summary>Solution</summary>(.*?)</details>", re.S)
CODE = re.compile(r"```python\n(.*?)```", re.S)
DEFINES = r"^(?:def (my_\w+)\(|(my_\w+)\s*=)"  # a function or, for a pen-and-paper exercise, a number


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def solutions(nb):
    """The student copy's solutions, by function name (from the <details> blocks)."""
    found = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for block in DETAILS.findall(_src(cell)):
                for code in CODE.findall(block):
                    names = [a or b for a, b in re.findall(DEFINES, code, re.M)]
                    if names:
                        found[names[-1]] = code
    return found


def exercise_cells(nb):
    """{answer: (index, check line and what follows)} for the exercise cells ``def my_x ... = check_x(my_x)``
    (or ``my_x = None ... = check_x(my_x)``)."""
    cells = {}
    for i, cell in enumerate(nb["cells"]):
        s = _src(cell)
        m = re.search(r"^.*\bcheck_\w+\((my_\w+)\).*$", s, re.M)
        if cell["cell_type"] == "code" and m and m.group(1) in {a or b for a, b in re.findall(DEFINES, s, re.M)}:
            cells[m.group(1)] = (i, s[m.start():])
    return cells


def solved(nb, answers=None):
    """The notebook with each stub replaced by ``answers[fn]`` (default: the solution), check line kept."""
    nb = json.loads(json.dumps(nb))
    answers = {**solutions(nb), **(answers or {})}
    for fn, (i, check) in exercise_cells(nb).items():
        nb["cells"][i]["source"] = answers[fn].rstrip() + "\n\n\n" + check
    return nb


def write(nb, path):
    path.write_text(json.dumps(nb, indent=1) + "\n")
    return path


def synthetic(answers, extra_cells=()):
    """A small notebook of student/01_autoencoder's setup, imports and three exercises, with ``answers``."""
    src = json.loads((STUDENT / "01_autoencoder.ipynb").read_text())
    code = [c for c in src["cells"] if c["cell_type"] == "code"]
    imports = ("import torch\n\nfrom course_lib import autoencoder\nfrom course_lib.exercises.autoencoder import "
               "check_conv_output_size, check_interpolate_codes, check_reconstruction_loss\n")
    sols = {**solutions(src), **answers}
    cells = [nbformat.v4.new_markdown_cell("# A test notebook for the grader"),
             nbformat.v4.new_code_cell(_src(code[0])), nbformat.v4.new_code_cell(imports)]
    for fn, (_, check) in exercise_cells(src).items():
        cells.append(nbformat.v4.new_code_cell(sols[fn].rstrip() + "\n\n\n" + check))
    cells += [nbformat.v4.new_code_cell(c) for c in extra_cells]
    nb = nbformat.v4.new_notebook(cells=cells, metadata=src["metadata"])
    return json.loads(nbformat.writes(nb))


def verdicts(report):
    return {e.function: e.verdict for e in report.exercises}


# ----------------------------------------------------------------------------- a real student copy


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """The real student copy graded twice at once: solved, through the CLI in a subprocess, and as it is
    (the stubs), in this process, while the subprocess runs."""
    tmp = tmp_path_factory.mktemp("real")
    solved_nb = solved(json.loads(REAL.read_text()))
    out = tmp / "verdicts.json"
    cli = subprocess.Popen([sys.executable, "-m", "course_lib.grade", str(write(solved_nb, tmp / "solved.ipynb")),
                            "--json", str(out), "--timeout", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=tmp)
    try:
        stub = grade.grade_notebook(write(json.loads(REAL.read_text()), tmp / "stub.ipynb"), timeout=120)
        stdout, stderr = cli.communicate(timeout=300)
    finally:
        if cli.poll() is None:
            cli.kill()
    return {"stub": stub, "solved_nb": solved_nb, "returncode": cli.returncode, "stdout": stdout, "stderr": stderr,
            "json": json.loads(out.read_text()) if out.exists() else None}


def test_real_stub_scores_zero(real_runs):
    report = real_runs["stub"]
    assert report.course_notebook == "03b_elbo_check"
    assert report.total == len(exercise_cells(json.loads(REAL.read_text()))) >= 1
    assert (report.score, set(verdicts(report).values())) == (0, {"not_done"})
    assert not report.tampering and not report.cells["timeouts"]


def test_real_solved_scores_full_through_the_cli(real_runs):
    nb = real_runs["solved_nb"]
    assert all("NotImplementedError" not in _src(nb["cells"][i]) for i, _ in exercise_cells(nb).values())
    assert real_runs["returncode"] == 0, real_runs["stderr"]
    data = real_runs["json"]
    assert data["total"] == len(exercise_cells(json.loads(REAL.read_text())))
    assert data["score"] == data["total"], data
    assert f"score: {data['total']}/{data['total']}" in real_runs["stdout"]
    assert all(e["verdict"] == "correct" and isinstance(e["seed"], int) for e in data["exercises"])
    assert data["cells"]["timeouts"] == [] and data["cells"]["kernel_died"] is None and data["tampering"] == []


# ----------------------------------------------------------------------------- planted mistakes, a loop


HARD_CODED = '''# the values of the checker's cases at the notebook's seed (0), looked up
_cases = check_interpolate_codes.make_cases(torch.Generator().manual_seed(0))
_table = {round(float(z0.sum()), 5): autoencoder.interpolate_codes(z0, z1, n) for z0, z1, n in _cases}


def my_interpolate_codes(z0, z1, steps):
    return _table[round(float(z0.sum()), 5)]
'''


def test_a_hard_coded_answer_passes_at_the_notebooks_seed_only():
    namespace = {"check_interpolate_codes": check_interpolate_codes, "torch": torch, "autoencoder": autoencoder}
    exec(HARD_CODED, namespace)
    assert check_interpolate_codes.grade(namespace["my_interpolate_codes"], 0).status == "correct"
    assert check_interpolate_codes.grade(namespace["my_interpolate_codes"], 8128).status != "correct"


def test_planted_mistakes_a_loop_a_raising_cell_and_a_redefined_checker(tmp_path):
    """One notebook, to keep the kernel starts few: each exercise gets its own verdict."""
    answers = {
        "my_reconstruction_loss": "def my_reconstruction_loss(x_hat, x):\n    return ((x_hat - x) ** 2).mean()\n",
        "my_interpolate_codes": HARD_CODED,
    }
    redefine = ("check_conv_output_size = lambda f: f\n"
                "conv_output_size = check_conv_output_size(my_conv_output_size)\n")
    nb = synthetic(answers, extra_cells=["while True:\n    pass\n", "1 / 0\n", redefine])
    report = grade.grade_notebook(write(nb, tmp_path / "planted.ipynb"), timeout=5)
    by_fn = {e.function: e for e in report.exercises}
    assert verdicts(report) == {"my_conv_output_size": "tampered", "my_reconstruction_loss": "wrong",
                                "my_interpolate_codes": "error"}  # KeyError: the fresh seed's cases are new
    assert "averaged over pixels" in by_fn["my_reconstruction_loss"].hint
    assert "KeyError" in by_fn["my_interpolate_codes"].hint
    # the redefined checker: its exercise, right as it is, does not score; the others are graded as usual
    assert by_fn["my_conv_output_size"].graded == "correct" and "check_conv_output_size" in by_fn[
        "my_conv_output_size"].hint
    assert {(f.rule, f.exercise) for f in report.tampering} == {("redefines", "check_conv_output_size"),
                                                               ("runtime", "check_conv_output_size")}
    assert (report.score, report.total) == (0, 3)
    loop = len(nb["cells"]) - 3
    assert [c["cell"] for c in report.cells["timeouts"]] == [loop]
    assert [(c["cell"], c["error"].split(":")[0]) for c in report.cells["errors"]] == [(loop + 1, "ZeroDivisionError")]
    text = grade.format_report(report)
    assert "score: 0/3" in text and f"cell {loop + 1} (id" in text and "(stopped; the other cells ran)" in text


# ----------------------------------------------------------------------------- tampering


def test_a_monkeypatched_grade_a_printed_verdict_and_a_dead_kernel(tmp_path):
    wrong = {"my_conv_output_size": "def my_conv_output_size(size, kernel_size, stride, padding):\n    return 7\n"}
    # The patch hides behind an alias that the static rules cannot follow: the kernel's check finds it.
    patch = ("from course_lib.exercises import Verdict\n\ncls = type(check_conv_output_size)\n"
             "cls.grade = lambda self, fn, seed=0: Verdict('correct', 'ok')\n"
             "print('[correct] Exercise 1.2: all 10 test cases pass.')\n")
    # ... and a cell that kills the kernel: the notebook runs again without it, the patch included
    nb = synthetic(wrong, extra_cells=[patch, "import os\n\nos._exit(3)\n"])
    report = grade.grade_notebook(write(nb, tmp_path / "patched.ipynb"), timeout=60)
    assert report.cells["kernel_died"] is None
    assert [(c["cell"], "the kernel died here" in c["error"]) for c in report.cells["errors"]] == [
        (len(nb["cells"]) - 1, True)]
    assert set(verdicts(report).values()) == {"tampered"} and report.score == 0
    by_fn = {e.function: e for e in report.exercises}
    assert by_fn["my_conv_output_size"].graded == "wrong"  # pristine checkers graded it, unfooled
    assert by_fn["my_reconstruction_loss"].graded == "correct"
    details = [(f.rule, f.detail) for f in report.tampering]
    assert any(rule == "fake verdict" for rule, _ in details)
    assert any(rule == "runtime" and "Exercise.grade was replaced" in d for rule, d in details), details
    assert not any(rule == "patches" for rule, _ in details)


@pytest.mark.parametrize("code, rule, exercise", [
    ("check_psnr = lambda f: f", "redefines", "check_psnr"),
    ("def check_psnr(f):\n    return f", "redefines", "check_psnr"),
    ("from course_lib.exercises.vq import check_quantize as check_psnr", "redefines", "check_psnr"),
    ("from course_lib.exercises import Exercise\nExercise.grade = lambda self, fn, seed=0: None", "patches", None),
    ("import course_lib.exercises\ncourse_lib.exercises.Exercise.grade = g", "patches", None),
    ("setattr(check_psnr, 'grade', g)", "patches", "check_psnr"),
    ("type(check_psnr).__call__ = g", "patches", None),
    ("from course_lib import metrics\nmetrics.psnr = my_psnr", "patches", None),
    ("import sys\nsys.modules['course_lib.exercises.metrics'] = fake", "patches", None),
    ("import torch\ntorch.manual_seed = lambda s: None", "patches", None),
    ("print('[CORRECT] Exercise 1.1')", "fake verdict", None),
    ("exec('check_psnr = None')", "subverts", None),
    ("get_ipython().input_transformers_post.append(f)", "subverts", None),
    ("import inspect\nf = inspect.currentframe().f_back", "subverts", None),
])
def test_tamper_rules(code, rule, exercise):
    found = [(f.rule, f.exercise) for f in grade.scan_code(code)]
    assert (rule, exercise) in found, found


@pytest.mark.parametrize("name", sorted(p.name for p in STUDENT.glob("*.ipynb")))
def test_no_false_alarm_on_the_course_notebooks(name):
    """Neither the committed notebooks nor their solutions trip a tamper rule."""
    for folder in ("notebooks", "student"):
        nb = json.loads((ROOT / folder / name).read_text())
        assert grade.scan_notebook(nb) == []
    assert grade.scan_notebook(solved(json.loads((STUDENT / name).read_text()))) == []


# ----------------------------------------------------------------------------- not a notebook of the course


def test_not_a_notebook_and_another_courses_notebook(tmp_path, capsys):
    text = tmp_path / "essay.ipynb"
    text.write_text("My homework, as plain text.\n")
    assert grade.main([str(text)]) == 2
    assert "is not a Jupyter notebook: it is not JSON" in capsys.readouterr().err
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import numpy as np\nprint(np.pi)\n")],
                                     metadata={"kernelspec": {"name": "python3", "language": "python",
                                                              "display_name": "Python 3"}})
    write(json.loads(nbformat.writes(other)), tmp_path / "other.ipynb")
    assert grade.main([str(tmp_path / "other.ipynb")]) == 2
    assert "is not a notebook of this course" in capsys.readouterr().err
    r_nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x <- 1")],
                                    metadata={"kernelspec": {"name": "ir", "language": "R", "display_name": "R"}})
    write(json.loads(nbformat.writes(r_nb)), tmp_path / "r.ipynb")
    assert grade.main([str(tmp_path / "r.ipynb")]) == 2
    assert "not Python" in capsys.readouterr().err
    assert grade.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err
    no_exercise = synthetic({})  # the course's setup cell, and no exercise
    no_exercise["cells"] = no_exercise["cells"][:2]
    assert grade.main([str(write(no_exercise, tmp_path / "no_exercise.ipynb"))]) == 2
    assert "has no exercise to grade" in capsys.readouterr().err


def test_the_registry_knows_every_checker_the_notebooks_call():
    known = grade.registry()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = path.read_text()
        for check in set(re.findall(r"\b(check_\w+)\(my_\w+\)", text)):
            assert check in known, f"{path.name} calls {check}, which no course_lib.exercises module defines"
