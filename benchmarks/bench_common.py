"""What the benchmark scripts share: one thread count for every library, the machine, the load, timing, memory.

Import this module FIRST (before numpy, scipy or torch): ``pin_threads`` sets the thread variables
that OpenBLAS (numpy, scipy), MKL and OpenMP read once, when they are loaded, so that every
implementation runs on the same number of threads.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def threads_from_argv(default: int = 1) -> int:
    """The value of ``--threads N`` (or ``--threads=N``) in ``sys.argv``, read before argparse runs."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return default


def pin_threads(n: int) -> None:
    """Every BLAS, LAPACK and OpenMP pool on ``n`` threads; call before numpy, scipy or torch is imported."""
    if all(os.environ.get(name) == str(n) for name in THREAD_VARIABLES):  # pinned already (bench_metrics)
        return
    if any(name in sys.modules for name in ("numpy", "scipy", "torch")):  # imported as a module, not run
        import warnings

        warnings.warn("numpy, scipy or torch is loaded already: their BLAS keep their thread counts", stacklevel=2)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float:
    """The 1-minute load average (the number of runnable processes, averaged)."""
    return os.getloadavg()[0]


def machine_line(threads: int, gpu: str | None) -> str:
    """One sentence: the CPU, its cores, the thread count of every library, the GPU."""
    import torch

    return (f"{cpu_model()}, {os.cpu_count()} CPU cores; {threads} thread(s) for every implementation "
            f"(torch {torch.get_num_threads()}, and {', '.join(f'{v}={os.environ.get(v)}' for v in THREAD_VARIABLES)} "
            f"for numpy/scipy's OpenBLAS and MKL); {gpu or 'no GPU'}.")


def header(title: str, command: str, threads: int, load_before: float, load_after: float) -> list[str]:
    """The first lines of a benchmark's Markdown: its title, the command and date, the machine, the load."""
    import datetime

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return [f"# {title}", "", f"Written by `{command}` on {datetime.datetime.now():%Y-%m-%d %H:%M}.",
            f"Machine: {machine_line(threads, gpu)}", f"Load: {load_line(load_before, load_after, threads)}"]


def load_line(before: float, after: float, threads: int) -> str:
    """How busy the machine was: the load averages at the start and at the end, and what that means.

    The benchmark's own ``threads`` count in the load (at the end, and at the start of a benchmark that
    follows another in one process); what is left above them is other jobs'.
    """
    cores = os.cpu_count() or 1
    quiet = max(before, after) - threads < 0.5
    verdict = ("the machine was quiet" if quiet else
               f"**the machine was not quiet** (other jobs shared its {cores} cores): absolute times are "
               "inflated and noisy; the ratios compare runs interleaved in one process, under the same load")
    return (f"1-minute load average {before:.2f} at the start and {after:.2f} at the end, this benchmark's own "
            f"{threads} thread(s) included: {verdict}.")


def compare(functions: dict, repeats: int, warmup: bool | dict = True, sync=None) -> dict:
    """Time several implementations of one computation, interleaved: round r runs each once, in turn.

    Returns ``{name: (result, wall seconds, CPU seconds)}``, the medians over ``repeats`` rounds after one
    warm-up call each (``warmup``: True, False, or a dict name -> bool or a function to call instead).
    CPU seconds (``time.process_time``) are what the ratios use: with one thread per implementation they
    equal the wall time on a quiet machine and do not count the time other jobs take the CPU away.
    """
    results, walls, cpus = {}, {name: [] for name in functions}, {name: [] for name in functions}
    for name, fn in functions.items():
        how = warmup.get(name, True) if isinstance(warmup, dict) else warmup
        if callable(how):
            how()
        elif how:
            fn()
    for _ in range(repeats):
        for name, fn in functions.items():
            if sync:
                sync()
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = fn()
            if sync:
                sync()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    return {name: (results[name], statistics.median(walls[name]), statistics.median(cpus[name]))
            for name in functions}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    On Linux, ``VmHWM`` of /proc/self/status: the high-water mark of this program's memory. (``ru_maxrss``
    is the same number, except that a child process inherits its parent's peak at ``fork``/``exec``, so a
    small child of a large benchmark process would report the parent's.) Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def report_peak(base_mb: float) -> None:
    """Print the line ``measure_peak`` reads: the peak before and after the measured call."""
    print("PEAK " + json.dumps({"before_mb": base_mb, "peak_mb": peak_rss_mb()}), flush=True)


def measure_peak(script: str, args: list[str], timeout: float = 1800) -> dict:
    """Run ``python script --peak-memory ... args`` in a fresh process; its ``report_peak`` line as a dict.

    A fresh process per implementation: the peak only grows, and torch's allocations are invisible to
    ``tracemalloc``. Each child imports every library and loads its inputs before it reads its
    baseline, so that ``peak - before`` is the memory of the measured call alone.
    """
    out = subprocess.run([sys.executable, script, "--peak-memory", *args], capture_output=True, text=True,
                         timeout=timeout, env=os.environ.copy())
    for line in out.stdout.splitlines():
        if line.startswith("PEAK "):
            return json.loads(line[5:])
    raise RuntimeError(f"{script} --peak-memory {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")


def ratio(reference: float, ours: float) -> str:
    """How many times faster (or smaller) ours is: reference / ours, as text."""
    return f"{reference / ours:.2f}x" if ours > 0 else "—"


def goal_row(figure: str, value: float, goal: float, unit: str = "x") -> str:
    """A Markdown row: the figure, its value, the goal and whether it is met (value >= goal)."""
    met = "**met**" if value >= goal else "not met"
    return f"| {figure} | {value:.2f}{unit} | >= {goal:g}{unit} | {met} |"
