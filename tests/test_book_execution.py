"""The scripts that run notebooks: execute_notebooks.py (the book's cache), colab_like.py (nbval, Colab-like kernel)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from myst_nb.core.read import standard_nb_read

from tests.test_notebooks import NOTEBOOKS, ROOT, _load_script

execute_notebooks = _load_script("execute_notebooks")
colab_like = _load_script("colab_like")


def notebook(path: Path, *sources: str) -> Path:
    cells = [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": s}
             for i, s in enumerate(sources)]
    path.write_text(json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}))
    return path


def test_the_book_runs_every_notebook():
    assert sorted(execute_notebooks.book_notebooks()) == NOTEBOOKS


def test_settings_are_the_books():
    execute = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]
    settings = execute_notebooks.execution_settings()
    assert settings == {"timeout": execute["timeout"], "cache": ROOT / execute["cache"]}
    assert execute["execute_notebooks"] == "cache" and execute["allow_errors"] is False


def test_a_cached_run_is_what_the_book_build_finds(tmp_path):
    """The stored bundle matches the notebook as myst-nb reads it, and holds this run's outputs."""
    path = notebook(tmp_path / "nb.ipynb", "import os\nprint(os.getcwd(), os.environ['OMP_NUM_THREADS'])", "2 + 3")
    before = os.environ.get("OMP_NUM_THREADS")
    name, seconds, error, executed = execute_notebooks.execute(path, timeout=60, threads=3)
    assert error is None and seconds > 0
    assert os.environ.get("OMP_NUM_THREADS") == before  # set for the kernel only
    cache = get_cache(str(tmp_path / "cache"))
    record = cache.add_nb_to_project(name)
    cache.cache_notebook_bundle(CacheBundleIn(executed, record.uri), check_validity=False, overwrite=True)
    _, merged = cache.merge_match_into_notebook(standard_nb_read(path.read_text()))
    printed, result = (cell["outputs"][0] for cell in merged.cells)
    expected_threads = before or "3"  # the caller's setting, or execute()'s
    assert printed["text"].split() == [str(tmp_path), expected_threads]  # the notebook's folder, as myst-nb runs it
    assert result["data"]["text/plain"] == "5"


def test_a_failing_cell_is_reported_with_its_traceback(tmp_path):
    path = notebook(tmp_path / "bad.ipynb", "x = 1", "1 / 0", "print('never')")
    _, _, error, executed = execute_notebooks.execute(path, timeout=60, threads=1)
    assert "ZeroDivisionError" in error
    assert executed.cells[2]["outputs"] == []


def test_colab_like_kernel_check_fails_outside_the_environment(tmp_path):
    """nbval on a probed copy fails at the added first cell when course_lib is not the environment's own.

    Here the "environment" is the checkout's .venv, whose course_lib is the checkout's sources
    (an editable install): exactly what the check must refuse.
    """
    venv = Path(sys.prefix)
    jupyter_path = colab_like.kernelspec(tmp_path / "env", venv)
    spec = json.loads((jupyter_path / "kernels" / colab_like.KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"][0] == str(venv / "bin" / "python")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    copy = tmp_path / "copy.ipynb"
    colab_like.probed_copy(notebook(tmp_path / "student.ipynb", "print('student cell')"), copy, venv)
    cells = json.loads(copy.read_text())["cells"]
    assert [c["source"] for c in cells[1:]] == ["print('student cell')"] and "course_lib" in cells[0]["source"]
    done = subprocess.run(colab_like.nbval_command(copy, 60), cwd=tmp_path, capture_output=True, text=True,
                          env=colab_like.notebook_env(venv, jupyter_path))
    assert done.returncode == 1, done.stdout
    assert "not the environment's" in done.stdout and "1 failed, 1 passed" in done.stdout
