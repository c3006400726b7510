"""Every goal of issue 16 in one run: SSIM, LPIPS and the Frechet distance against their references.

Usage:
    python benchmarks/bench_metrics.py [--threads 1]

One process on ``--threads`` threads for every implementation (torch, OpenBLAS, MKL, OpenMP, pinned
before numpy and torch load). It runs ``bench_ssim_lpips`` and ``bench_fid`` (each writes its full
table, ``benchmarks/ssim_lpips.md`` and ``benchmarks/fid.md``), then writes ``benchmarks/goals.md``:
their goal rows side by side, with the machine, the thread count and the load, and the models' goals
read from the manifest (``benchmarks/checkpoints.md`` has the whole table).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bench  # noqa: E402  (first: it pins the threads before numpy and torch load)

bench.pin_threads(bench.threads_from_argv())

import argparse  # noqa: E402

import bench_fid  # noqa: E402
import bench_ssim_lpips  # noqa: E402
import report_checkpoints  # noqa: E402
import torch  # noqa: E402

from course_lib.checkpoints import read_manifest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of torch, OpenBLAS, MKL and OpenMP (default 1: a shared CPU)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "goals.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = bench.load_average()
    threads = ["--threads", str(args.threads)]
    metric_rows = bench_ssim_lpips.main(threads) + bench_fid.main(threads)
    load_after = bench.load_average()
    lines = [
        *bench.header("Issue 16's goals, measured in one run", f"python benchmarks/bench_metrics.py --threads "
                      f"{args.threads}", args.threads, load_before, load_after),
        "",
        "All timings ran in one process (memory: a fresh process per implementation). The rows come from "
        "`benchmarks/ssim_lpips.md` and `benchmarks/fid.md`, written by the same run; those files have every "
        "timing, the inputs and the profiles. Speed-ups compare CPU times.",
        "",
        "## Metrics", "",
        "| figure | course_lib | goal | |", "|---|---:|---:|---|",
        *metric_rows,
        "",
        "## Models (from `course_lib/pretrained/manifest.json`)", "",
        *report_checkpoints.goal_rows(read_manifest()),
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
