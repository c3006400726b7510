"""Run every notebook as a Colab user would: in a fresh environment holding only what its first cell installs.

A notebook's first code cell installs, in Colab only, ``course_lib`` (with the extras it names) from the
course's repository; Colab's own torch and torchvision stay. This script checks that this is enough:

1. it reads the pip requirement of each notebook's first cell (``%pip install -q "course_lib[EXTRAS] @
   git+{COURSE_REPO}"``) and groups the notebooks by it: one environment serves the notebooks that install
   the same thing;
2. it creates a virtual environment holding only "Colab's torch" (the torch and torchvision pins of
   ``requirements.txt``) under ``_build/colab_like/torch``; for each group, a hard-linked copy of it (the
   same files as a fresh install, in seconds instead of minutes) under ``_build/colab_like/<group>``
   receives the requirement with the git URL replaced by a copy of this checkout (``pip install
   "<copy>[EXTRAS]"``, not editable: the environment holds what a user gets, nothing from the checkout's
   ``.venv``), then only ``ipykernel`` (the kernel); it fails if installing course_lib
   replaced torch or torchvision (pip replaces files, never rewrites them, so the torch environment stays
   intact);
3. it runs each student copy ``student/NAME.ipynb`` (what the book's Colab button opens) top to bottom in
   quick mode (``COURSE_QUICK=1``, ``MPLBACKEND=Agg``) with nbval (``--nbval-lax``: a cell fails on an
   error, its outputs are not compared), run from the checkout's tools but on a kernel of that environment
   (a kernelspec naming the environment's Python), in a scratch folder of its own (so ``import course_lib``
   cannot find the checkout's sources). A first cell that this script adds fails unless the kernel runs the
   environment's Python and imports the installed course_lib. The notebook's own ``%pip install`` runs only
   in Colab, so it is skipped here. This is the test suite's nbval run of the notebooks: the source
   notebooks (with the solutions) are executed in full by the book build.

A failing cell fails the job with the notebook's name and nbval's report of the cell; the copies that ran
are in ``_build/colab_like/<group>/run/``. An environment is reused only when a stamp of (requirement,
pyproject.toml, requirements.txt, Python version) matches; course_lib itself is reinstalled every time.
The table at the end gives each group's setup time (the torch environment's is counted in the first group
that needed it) and each notebook's runtime.

Usage:
    python scripts/colab_like.py                    # every notebook
    python scripts/colab_like.py 05_pixel_and_perceptual_metrics   # some notebooks, by name
    python scripts/colab_like.py --list             # the groups, without running anything
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "_build" / "colab_like"
CELL_TIMEOUT = 600  # seconds per cell (nbval's --nbval-cell-timeout)
STAMP_RECIPE = "1"  # bump when the way an environment is built changes
KERNEL_PACKAGES = ["ipykernel"]  # the kernel; nbval, which drives it, runs from the checkout
# The install line of a first cell; the URL is the cell's COURSE_REPO variable (IPython expands {COURSE_REPO}).
PIP_LINE = re.compile(r'^\s*%pip install -q "course_lib(?P<extras>\[[A-Za-z0-9_,-]+\])? @ git\+\{COURSE_REPO\}"\s*$',
                      re.M)


class SetupCellError(ValueError):
    """A notebook whose first code cell does not install course_lib as this script expects."""


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def setup_cell(path: Path) -> str:
    """The source of the notebook's first code cell."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "code":
            return _source(cell)
    raise SetupCellError(f"{Path(path).name}: no code cell")


def setup_extras(path: Path) -> str:
    """The extras that the notebook's first cell installs with course_lib: "" or e.g. "[references]"."""
    found = PIP_LINE.findall(setup_cell(path))
    if len(found) != 1:
        raise SetupCellError(
            f"{Path(path).name}: the first code cell must hold exactly one line "
            f'%pip install -q "course_lib[EXTRAS] @ git+{{COURSE_REPO}}" (found {len(found)})')
    return found[0]


def group_name(extras: str) -> str:
    return extras.strip("[]").replace(",", "+") or "base"


def groups(paths) -> dict[str, list[Path]]:
    """The notebooks grouped by the extras their first cell installs, in the order of ``paths``."""
    out: dict[str, list[Path]] = {}
    for path in paths:
        out.setdefault(setup_extras(path), []).append(Path(path))
    return out


def colab_torch(requirements: Path = ROOT / "requirements.txt") -> list[str]:
    """The torch and torchvision pins of requirements.txt, which stand for Colab's preinstalled ones."""
    pins = re.findall(r"^(torch|torchvision)==([^\s#;]+)", requirements.read_text(), re.M)
    if sorted(name for name, _ in pins) != ["torch", "torchvision"]:
        raise ValueError(f"{requirements}: expected one torch== and one torchvision== pin, found {pins}")
    return [f"{name}=={version}" for name, version in pins]


# ---------------------------------------------------------------------------------------------
# Environments


def _run(cmd, log: Path, **kwargs) -> None:
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(map(str, cmd))}\n")
        fh.flush()
        env = {**os.environ, "PIP_PROGRESS_BAR": "off"}
        done = subprocess.run([str(c) for c in cmd], stdout=fh, stderr=subprocess.STDOUT, env=env, **kwargs)
    if done.returncode:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"failed ({done.returncode}): {' '.join(map(str, cmd))}\n{tail}\n(full log: {log})")


def source_copy() -> Path:
    """A copy of what ``pip install git+<repository>`` builds from: pyproject, README, licences, course_lib.

    pip builds a local directory in place; building from a copy keeps the checkout free of build/ and
    egg-info folders, and keeps anything else of the checkout out of the package.
    """
    dest = WORK / "src"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE", "LICENSE-text"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "course_lib", dest / "course_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "*.lock"))
    return dest


def _installed_version(python: Path, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def _stamp(*parts: str) -> str:
    return hashlib.sha256("\n".join([STAMP_RECIPE, *parts]).encode()).hexdigest()


def _stamped(venv: Path, stamp: str) -> bool:
    stamp_file = venv / ".colab_like.sha256"
    return (venv / "bin" / "python").exists() and stamp_file.exists() and stamp_file.read_text().strip() == stamp


def _write_stamp(venv: Path, stamp: str) -> None:
    stamp_file = venv / ".colab_like.sha256"
    stamp_file.unlink(missing_ok=True)  # in a hard-linked copy, never write through to the torch environment
    stamp_file.write_text(stamp + "\n")


def torch_env(base_python: str, base_version: str) -> Path:
    """A virtual environment with only Colab's torch and torchvision, created unless already there."""
    venv = WORK / "torch" / "venv"
    log = WORK / "torch" / "install.log"
    stamp = _stamp(base_version, *colab_torch())
    if not _stamped(venv, stamp):
        shutil.rmtree(venv.parent, ignore_errors=True)
        venv.parent.mkdir(parents=True)
        _run([base_python, "-m", "venv", venv], log)
        _run([venv / "bin" / "python", "-m", "pip", "install", *colab_torch()], log)  # preinstalled in Colab
        _write_stamp(venv, stamp)
    return venv


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _repoint_scripts(base: Path, venv: Path) -> None:
    """Make the copy's scripts (pip, activate, torchrun...) name the copy, not the torch environment."""
    for path in (venv / "bin").iterdir():
        if path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if str(base) in text:
            mode = path.stat().st_mode
            path.unlink()  # a new file: the torch environment's stays as it is
            path.write_text(text.replace(str(base), str(venv)))
            path.chmod(mode)


def build_env(extras: str, src: Path, base_python: str) -> tuple[Path, float, bool]:
    """The group's environment, created or reused; returns (its folder, seconds spent, reused)."""
    start = time.perf_counter()
    env = WORK / group_name(extras)
    venv = env / "venv"
    python = venv / "bin" / "python"
    log = env / "install.log"
    base_version = subprocess.run([base_python, "-c", "import sys; print(sys.version)"], check=True,
                                  capture_output=True, text=True).stdout
    stamp = _stamp(extras, base_version, *colab_torch(), *KERNEL_PACKAGES,
                   (ROOT / "pyproject.toml").read_text(), (ROOT / "requirements.txt").read_text())
    pip = [python, "-m", "pip"]
    reused = _stamped(venv, stamp)
    env.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    if reused:
        # Same requirement, same dependency ranges: only course_lib's code may have changed.
        _run([*pip, "install", "--no-deps", "--force-reinstall", str(src)], log)
    else:
        shutil.rmtree(venv, ignore_errors=True)
        base = torch_env(base_python, base_version)
        shutil.copytree(base, venv, symlinks=True, copy_function=_link_or_copy)
        (venv / ".colab_like.sha256").unlink()
        _repoint_scripts(base, venv)
        before = {d: _installed_version(python, d) for d in ("torch", "torchvision")}
        _run([*pip, "install", f"{src}{extras}"], log)  # what the notebook's first cell installs
        after = {d: _installed_version(python, d) for d in ("torch", "torchvision")}
        if before != after:
            raise RuntimeError(f"installing course_lib{extras} replaced Colab's torch: {before} -> {after} "
                               f"(see {log})")
        _run([*pip, "install", *KERNEL_PACKAGES], log)
        after_kernel = {d: _installed_version(python, d) for d in ("torch", "torchvision")}
        if before != after_kernel:
            raise RuntimeError(f"installing the kernel replaced torch: {before} -> {after_kernel} (see {log})")
        _write_stamp(venv, stamp)
    return env, time.perf_counter() - start, reused


# ---------------------------------------------------------------------------------------------
# Running a notebook: nbval (from the checkout's tools) drives a kernel of the group's environment

KERNEL_NAME = "colab-like"
# The cell added at the top of each copy: it fails, naming what it found, unless the kernel runs the
# environment's Python and imports the installed course_lib (not the checkout's sources).
PROBE = """import os, sys
import course_lib
_venv, _lib = os.path.realpath(sys.prefix), os.path.realpath(course_lib.__file__)
assert _venv == {venv!r}, f"the kernel runs {{sys.executable}} (prefix {{_venv}}), not the environment's Python"
assert _lib.startswith({venv!r} + os.sep), f"the kernel imported course_lib from {{_lib}}, not the environment's"
print(sys.executable, _lib)"""


def kernelspec(env: Path, venv: Path) -> Path:
    """A kernelspec that starts the environment's own Python; returns the folder to put on JUPYTER_PATH.

    The environment's ``python3`` spec will not do: jupyter_client replaces its ``python`` by the Python
    of the process that starts the kernel (here the checkout's, which runs nbval).
    """
    spec = env / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Colab-like ({env.name})", "language": "python"}, indent=1))
    return env / "jupyter"


def probed_copy(student: Path, dest: Path, venv: Path) -> None:
    """The student copy with the kernel check as its first cell, written to ``dest``."""
    nb = json.loads(student.read_text(encoding="utf-8"))
    probe = PROBE.format(venv=str(venv.resolve()))
    nb["cells"].insert(0, {"cell_type": "code", "execution_count": None, "id": "colab-like-probe",
                           "metadata": {}, "outputs": [], "source": probe})
    dest.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def nbval_command(notebook: Path, timeout: int) -> list[str]:
    """nbval on one notebook, with the group's kernel; -c: none of the checkout's pytest settings."""
    return [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider",
            "-c", str(notebook.parent / "pytest.ini"), "--rootdir", str(notebook.parent),
            "--nbval-lax", f"--nbval-kernel-name={KERNEL_NAME}", f"--nbval-cell-timeout={timeout}", str(notebook)]


def notebook_env(venv: Path, jupyter_path: Path) -> dict[str, str]:
    """The environment of a notebook run: the group's venv first, quick mode, no path to the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "JUPYTER_PATH"}}
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        JUPYTER_PATH=str(jupyter_path),  # the group's kernelspec (kernelspec()), before any user's one
        COURSE_QUICK="1",
        MPLBACKEND="Agg",
        PYTHONNOUSERSITE="1",
    )
    return env


# ---------------------------------------------------------------------------------------------


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (stems); default: all")
    parser.add_argument("--list", action="store_true", help="print the groups and exit")
    parser.add_argument("--python", default=os.environ.get("PYTHON", "python3"),
                        help="the Python that creates the environments (default: $PYTHON or python3)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.names:
        unknown = set(args.names) - {p.stem for p in sources}
        if unknown:
            parser.error(f"no such notebooks: {sorted(unknown)}")
        sources = [p for p in sources if p.stem in args.names]
    grouped = groups(sources)
    for extras, paths in grouped.items():
        print(f"group {group_name(extras)}: course_lib{extras} -> {', '.join(p.stem for p in paths)}")
    if args.list:
        return 0
    for path in sources:
        student = ROOT / "student" / path.name
        if not student.exists() or setup_cell(student) != setup_cell(path):
            sys.exit(f"student/{path.name} is missing or stale: run python scripts/student_notebooks.py")

    src = source_copy()
    rows, failures = [], []
    for extras, paths in grouped.items():
        print(f"==> {group_name(extras)}: environment with Colab's torch + course_lib{extras} + the kernel",
              flush=True)
        try:
            env, setup_s, reused = build_env(extras, src, args.python)
        except RuntimeError as err:
            failures.append(f"group {group_name(extras)}: {err}")
            rows.append([group_name(extras), "failed", "", ""])
            continue
        venv = env / "venv"
        run_dir = env / "run"
        shutil.rmtree(run_dir, ignore_errors=True)
        jupyter_path = kernelspec(env, venv)
        setup_cell_text = f"{setup_s:.0f}" + (" (reused)" if reused else "")
        for i, path in enumerate(paths):
            scratch = run_dir / path.stem  # the kernel's working folder: no course_lib/ beside the notebook
            scratch.mkdir(parents=True)
            (scratch / "pytest.ini").write_text("[pytest]\n")
            copy = scratch / path.name
            probed_copy(ROOT / "student" / path.name, copy, venv)
            print(f"--> {path.stem}", flush=True)
            t0 = time.perf_counter()
            done = subprocess.run(nbval_command(copy, args.timeout), cwd=scratch,
                                  env=notebook_env(venv, jupyter_path), capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if done.returncode:
                failures.append(f"{path.name} (nbval, kernel of {venv}):\n{done.stdout}{done.stderr}".strip())
                print(f"    FAILED after {seconds:.0f} s", flush=True)
            else:
                print(f"    {done.stdout.strip().splitlines()[-1]}", flush=True)
            rows.append([group_name(extras) if i == 0 else "", setup_cell_text if i == 0 else "", path.stem,
                         f"{seconds:.0f}" + ("" if not done.returncode else " FAILED")])
    total = time.perf_counter() - start
    print()
    print(table(rows, ["group", "env setup (s)", "notebook", "runtime (s)"]))
    print(f"total: {total:.0f} s")
    if failures:
        print("\nColab-like run FAILED:\n\n" + "\n\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
