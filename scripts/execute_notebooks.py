"""Execute every notebook of the book afresh, several at a time, into the cache the book build reads.

``jupyter-book build`` runs the notebooks one after another (``execute_notebooks: cache`` in
``_config.yml``: a notebook whose code matches a cached run is not executed again). This script runs them
first, ``--jobs`` at a time, each exactly as the build would (myst-nb's ``single_nb_execution``: the
notebook's folder as working directory, ``execute.timeout`` per cell, no errors allowed), and stores each
result in the cache under its notebook, where the build then finds it. The cache is emptied first, so
every page shows this run's outputs, never an older one of unchanged code with a changed ``course_lib``.

Each job's kernel gets ``OMP_NUM_THREADS`` = cores / jobs (unless the variable is set already): on two cores,
two notebooks of one thread each keep both cores busy without torch's thread teams waiting on each other.
The longest notebooks (by the previous run's times, when there is one) start first.

A failing cell stops the script with the notebook's name and the cell's traceback (status 1); the other
notebooks still run, and the ones that succeeded are cached.

Usage:
    python scripts/execute_notebooks.py            # every notebook of _toc.yml, cores / 1 thread jobs
    python scripts/execute_notebooks.py --jobs 1   # one at a time
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = "_build/.jupyter_cache"  # Jupyter Book's, where _config.yml names no execute.cache
TIMES = ROOT / "_build" / "notebook_times.json"  # each notebook's last execution time, for the order
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def book_notebooks(toc: Path = ROOT / "_toc.yml") -> list[Path]:
    """The notebooks the table of contents lists, in book order."""
    files = re.findall(r"^\s*-?\s*file:\s*(\S+)", toc.read_text(), re.M)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def execution_settings(config: Path = ROOT / "_config.yml") -> dict:
    """The book's ``execute:`` settings that matter here: the cell timeout and the cache's folder."""
    execute = yaml.safe_load(config.read_text()).get("execute") or {}
    if execute.get("execute_notebooks") != "cache" or execute.get("allow_errors") is not False:
        raise ValueError(f"{config}: this script fills the cache of execute_notebooks: cache with allow_errors: "
                         f"false; found {execute}")
    return {"timeout": int(execute["timeout"]), "cache": ROOT / execute.get("cache", DEFAULT_CACHE)}


def execute(path: Path, timeout: int, threads: int) -> tuple[str, float, str | None, object]:
    """Run one notebook as myst-nb would; returns (path, seconds, traceback or None, executed notebook)."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    unset = [name for name in THREAD_VARIABLES if name not in os.environ]
    os.environ.update({name: str(threads) for name in unset})  # the kernel inherits this process's environment
    try:
        result = single_nb_execution(nb, cwd=str(path.parent), timeout=timeout, allow_errors=False,
                                     meta_override=True)
    finally:
        for name in unset:
            del os.environ[name]
    return str(path), result.time, result.exc_string, nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # os.cpu_count(), not `nproc`: nproc answers OMP_NUM_THREADS, which test.sh sets to 1 for every process
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks run at once (default: cores)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    settings = execution_settings()
    notebooks = book_notebooks()
    previous = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    notebooks.sort(key=lambda p: -previous.get(p.name, 0.0))  # stable: book order when there is no record
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    shutil.rmtree(settings["cache"], ignore_errors=True)
    cache = get_cache(str(settings["cache"]))
    print(f"executing {len(notebooks)} notebooks, {args.jobs} at a time, "
          f"{os.environ.get('OMP_NUM_THREADS', threads)} thread(s) each", flush=True)
    start = time.perf_counter()
    times, failures = {}, []
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(execute, p, settings["timeout"], threads) for p in notebooks]
        for future in as_completed(futures):
            path, seconds, error, nb = future.result()
            name = Path(path).name
            times[name] = round(seconds, 1)
            if error is not None:
                failures.append(f"{name}: a cell failed after {seconds:.0f} s\n{error}")
                print(f"    {name}: FAILED after {seconds:.0f} s", flush=True)
                continue
            # One writer (this process) for the cache's database; the bundle is what myst-nb itself stores.
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(CacheBundleIn(nb, record.uri, data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"    {name}: {seconds:.0f} s", flush=True)
    TIMES.parent.mkdir(parents=True, exist_ok=True)
    TIMES.write_text(json.dumps({**previous, **times}, indent=1) + "\n")
    print(f"executed in {time.perf_counter() - start:.0f} s (sum of the notebooks' times: {sum(times.values()):.0f} s)")
    if failures:
        print("\n\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
