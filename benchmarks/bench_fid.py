"""Time course_lib's Frechet distance and feature extractors against the references, in one run.

Usage:
    python benchmarks/bench_fid.py [--threads 1] [--repeats 2] [--dims 2048] [--out benchmarks/fid.md]

Frechet distance at width F = ``--dims``, on features of correlated Gaussian samples: N = 2 F per set
(well-conditioned covariances) and N = F / 2 (singular covariances).

- From the statistics: the same float64 means and covariances given to ``course_lib.fid.frechet_distance``
  (Cholesky factor, symmetric eigenvalues), pytorch-fid's ``calculate_frechet_distance``
  (``scipy.linalg.sqrtm``) and torchmetrics' ``_compute_fid`` (complex eigenvalues of S1 S2).
- From the features: ``course_lib.fid.fid`` (which works in the N-dimensional sample space when that is
  cheaper, as with N < F) against pytorch-fid's statistics (``np.mean``, ``np.cov``) plus its distance,
  and torchmetrics' ``FrechetInceptionDistance`` fed the features (its update sums, then compute).

Resizing 28x28 -> 299x299 as each reference does: ``course_lib.resizing.resize_images`` (batched
resampling matrices) against the library's own code (clean-fid resizes image by image with PIL).
Feature extraction: images per second of the shipped Fashion-MNIST classifier (28x28 inputs) and of the
FID InceptionV3 (299x299 after resizing) with RANDOM weights (the pretrained file cannot be downloaded
here; the time does not depend on the weights).

Every implementation runs in this one process on ``--threads`` threads (torch, OpenBLAS, MKL, OpenMP);
the implementations of a row group run interleaved, ``--repeats`` rounds after a warm-up call each (none
for the slow scipy ``sqrtm``), and the speed-ups compare the median CPU times. Peak memory is measured
in a fresh process per implementation. CUDA rows appear when a GPU is present. Writes a Markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bench  # noqa: E402  (first: it pins the threads before numpy and torch load)

bench.pin_threads(bench.threads_from_argv())

import argparse  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib import fid as fidlib  # noqa: E402
from course_lib.classifier import load_fashion_classifier  # noqa: E402
from course_lib.inception import InceptionV3  # noqa: E402

CONDITIONS = {"well-conditioned": 2.0, "singular": 0.5}  # samples per set, in units of F


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """n correlated Gaussian feature vectors of width d, float64."""
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing + shift


def feature_pair(d: int, condition: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = int(CONDITIONS[condition] * d)
    return features(n, d, 0), features(n, d, 1, shift=0.05)


class _Identity(torch.nn.Module):
    """The 'feature extractor' that hands torchmetrics the features themselves."""

    def __init__(self, d: int):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def implementations(kind: str, real, fake) -> dict:
    """The three Frechet distances of one kind ("statistics" or "features"), as argument-free functions.

    ``real``, ``fake``: the two feature sets; for "statistics", ``fake=None`` and ``real`` the tuple
    (mu1, sigma1, mu2, sigma2) itself.
    """
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torchmetrics.image.fid import FrechetInceptionDistance, _compute_fid

    def pytorch_fid(*stats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its "singular product" warning
            return float(calculate_frechet_distance(*stats))

    if kind == "statistics":
        stats = (*fidlib.gaussian_statistics(real), *fidlib.gaussian_statistics(fake)) if fake is not None else real
        as_numpy = [t.numpy() for t in stats]
        return {"course_lib": lambda: float(fidlib.frechet_distance(*stats)),
                "pytorch-fid": lambda: pytorch_fid(*as_numpy),
                "torchmetrics": lambda: float(_compute_fid(*stats))}
    real_np, fake_np = real.numpy(), fake.numpy()

    def course_lib():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the small-N warning
            return float(fidlib.fid(real, fake))

    def torchmetrics():
        metric = FrechetInceptionDistance(feature=_Identity(real.shape[1]), normalize=False).double()
        metric.update(real, real=True)
        metric.update(fake, real=False)
        return float(metric.compute())

    return {"course_lib": course_lib,
            "pytorch-fid": lambda: pytorch_fid(real_np.mean(axis=0), np.cov(real_np, rowvar=False),
                                               fake_np.mean(axis=0), np.cov(fake_np, rowvar=False)),
            "torchmetrics": torchmetrics}


LABELS = {
    ("statistics", "course_lib"): "frechet_distance(mu, sigma), course_lib (Cholesky, symmetric eigenvalues)",
    ("statistics", "pytorch-fid"): "pytorch-fid calculate_frechet_distance (scipy sqrtm)",
    ("statistics", "torchmetrics"): "torchmetrics _compute_fid (eigvals of S1 S2)",
    ("features", "course_lib"): "fid(features), course_lib (route from the shapes)",
    ("features", "pytorch-fid"): "pytorch-fid np.cov + calculate_frechet_distance",
    ("features", "torchmetrics"): "torchmetrics FrechetInceptionDistance update + compute",
}


def frechet_rows(dims: int, repeats: int) -> tuple[list[tuple], dict]:
    rows, goals = [], {}
    for condition in CONDITIONS:
        real, fake = feature_pair(dims, condition)
        n = real.shape[0]
        for kind in ("statistics", "features"):
            timed = bench.compare(implementations(kind, real, fake), repeats, warmup={"pytorch-fid": False})
            ours, _, cpu_ours = timed["course_lib"]
            route = ""
            if kind == "features":
                sample = fidlib._sample_space_is_cheaper(n, n, dims)
                route = "; course_lib in the sample space (N x N)" if sample else "; course_lib with F x F covariances"
            note = f"F = {dims}, N = {n} per set ({condition}){route}; FID = {ours:.6g}"
            for name, (value, wall, cpu) in timed.items():
                mine = name == "course_lib"
                rows.append((f"{LABELS[kind, name]} [{condition}, from {kind}]", wall, cpu,
                             "—" if mine else bench.ratio(cpu, cpu_ours),
                             "—" if mine else f"{abs(value - ours) / abs(ours):.1e}", note))
                if not mine:
                    goals[condition, kind, name] = (cpu / cpu_ours, abs(value - ours) / abs(ours))
    return rows, goals


def extractor_rows(repeats: int, devices: list[torch.device]) -> list[tuple]:
    rows = []
    for device in devices:
        clf = load_fashion_classifier(device)
        images = torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        (_, wall, cpu), = bench.compare({"c": lambda: clf.features(images)}, repeats).values()  # noqa: B023
        rows.append((f"fashion_classifier features [{device.type}]", wall, cpu, "—", "—",
                     f"{len(images) / wall:.0f} images/s (2000 images, batches of 500)"))
        torch.manual_seed(0)
        inception = InceptionV3(pretrained=False).to(device)  # random weights: timing only
        n = 8 if device.type == "cpu" else 256
        images = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        (_, wall, cpu), = bench.compare({"i": lambda: inception.features(images)}, repeats).values()  # noqa: B023
        rows.append((f"InceptionV3 pool3 features, RANDOM weights [{device.type}]", wall, cpu, "—", "—",
                     f"{n / wall:.1f} images/s ({n} 28x28 images resized to 299x299, batches of 50)"))
    return rows


def resize_rows(repeats: int) -> list[tuple]:
    """28x28 -> 299x299 for Inception: course_lib.resizing (batched matrices) vs each library's resize code."""
    from cleanfid.resize import make_resizer
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from course_lib.resizing import resize_images

    n = 200
    images = torch.rand(n, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    uint8 = torch.round(images * 255)
    pil = make_resizer("PIL", False, "bicubic", (299, 299))

    def clean_fid(x):  # clean-fid resizes one HWC uint8 image at a time, one channel at a time
        return torch.from_numpy(np.stack([pil(img.permute(1, 2, 0).numpy().astype(np.uint8)) for img in x]))

    references = {
        "pytorch-fid": lambda x: torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear"),
        "torch-fidelity": lambda x: interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False),
        "clean-fid": clean_fid,
    }
    rows = []
    for style, reference in references.items():
        ref_input = images if style == "pytorch-fid" else uint8
        timed = bench.compare({"ours": lambda: resize_images(images, 299, style),  # noqa: B023
                               "ref": lambda: reference(ref_input)}, repeats)  # noqa: B023
        (ours, wall_o, cpu_o), (ref, wall_r, cpu_r) = timed["ours"], timed["ref"]
        scale = 1.0 if style == "pytorch-fid" else 255.0
        if style == "clean-fid":
            ref = ref.permute(0, 3, 1, 2)
        diff = float((ours * scale - ref).abs().max()) / scale
        note = f"{n} colour 28x28 images -> 299x299; {n / wall_o:.0f} vs {n / wall_r:.0f} images/s"
        rows.append((f"resize_images(style={style!r}), course_lib", wall_o, cpu_o, "—", "—", note))
        rows.append((f"{style}'s own resize code", wall_r, cpu_r, bench.ratio(cpu_r, cpu_o),
                     f"{diff:.1e} (absolute, [0, 1] scale)", note))
    return rows


def peak_memory_child(case: str, which: str, data: str) -> None:
    """In a fresh process: one Frechet distance (``case`` "statistics" or "features"), its peak printed."""

    def functions(real, fake):
        if case == "statistics":  # the means and covariances are the inputs
            return implementations(case, (*fidlib.gaussian_statistics(real), *fidlib.gaussian_statistics(fake)), None)
        return implementations(case, real, fake)

    if which != "none":  # a small warm-up: the libraries' one-time buffers are not the call's memory
        functions(features(64, 32, 2), features(64, 32, 3))[which]()
    if case == "statistics":
        stats = [torch.from_numpy(np.load(Path(data) / f"{name}.npy")) for name in ("mu1", "sigma1", "mu2", "sigma2")]
        call = implementations(case, stats, None)
    else:
        call = implementations(case, *(torch.from_numpy(np.load(Path(data) / f"{n}.npy")) for n in ("real", "fake")))
    base = bench.peak_rss_mb()
    if which != "none":
        call[which]()
    bench.report_peak(base)


def memory_rows(dims: int, threads: int) -> list[tuple]:
    """Peak memory of each implementation, in fresh processes: statistics (well-conditioned) and features (singular)."""
    script = str(Path(__file__).resolve())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, condition in (("statistics", "well-conditioned"), ("features", "singular")):
            real, fake = feature_pair(dims, condition)
            if case == "statistics":
                arrays = dict(zip(("mu1", "sigma1", "mu2", "sigma2"),
                                  (*fidlib.gaussian_statistics(real), *fidlib.gaussian_statistics(fake)), strict=True))
            else:
                arrays = {"real": real, "fake": fake}
            for name, array in arrays.items():
                np.save(Path(tmp) / f"{name}.npy", array.numpy())
            for which in ("none", "course_lib", "pytorch-fid", "torchmetrics"):
                peak = bench.measure_peak(script, [case, which, "--data", tmp, "--threads", str(threads),
                                                   "--dims", str(dims)])
                added = peak["peak_mb"] - peak["before_mb"]
                rows.append((case, condition, real.shape[0], which, peak["peak_mb"], added))
                print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> list[str]:
    """Run the benchmark, write its Markdown file and return the rows of its goals table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of torch, OpenBLAS, MKL and OpenMP (default 1: a shared CPU)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dims", type=int, default=2048)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "fid.md"))
    parser.add_argument("--peak-memory", nargs=2, metavar=("CASE", "IMPLEMENTATION"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.peak_memory:
        peak_memory_child(*args.peak_memory, args.data)
        return []
    load_before = bench.load_average()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    memory = memory_rows(args.dims, args.threads)  # first, while this process is small
    rows, goals = frechet_rows(args.dims, args.repeats)
    print("\n".join(f"{r[0]}: {r[1]:.3f} s wall, {r[2]:.3f} s CPU" for r in rows), flush=True)
    rows += extractor_rows(args.repeats, devices) + resize_rows(args.repeats)
    load_after = bench.load_average()
    import pytorch_fid
    import scipy
    import torchmetrics

    lines = [
        *bench.header("FID: course_lib vs the reference libraries", f"python benchmarks/bench_fid.py --threads "
                      f"{args.threads} --repeats {args.repeats} --dims {args.dims}", args.threads, load_before,
                      load_after),
        f"torch {torch.__version__}, scipy {scipy.__version__}, torchmetrics {torchmetrics.__version__}, "
        f"pytorch-fid {pytorch_fid.__version__}.",
        "",
        "Same float64 features, means and covariances for the three Frechet distances. All rows ran in one "
        f"process; the implementations of a group ran interleaved, {args.repeats} rounds after a warm-up call each "
        "(none for pytorch-fid's scipy code), and a time is the median over the rounds. *course_lib faster by* = "
        "the row's CPU time / course_lib's CPU time. **The InceptionV3 row uses random weights** (the "
        "pretrained file cannot be downloaded here): the throughput is real, the features are not.",
        "",
        "| implementation | wall (s) | CPU (s) | course_lib faster by | relative difference to course_lib | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [f"| {name} | {wall:.3f} | {cpu:.3f} | {speedup} | {diff} | {note} |"
              for name, wall, cpu, speedup, diff, note in rows]

    def check(condition, kind, name, goal, tolerance):
        speedup, rel = goals[condition, kind, name]
        agree = f"{'**met**' if rel <= tolerance else 'not met'}"
        return [bench.goal_row(f"Frechet distance, F = {args.dims}, {condition}, from {kind}: speed-up vs {name}",
                               speedup, goal),
                f"| the same: relative difference to {name} | {rel:.1e} | <= {tolerance:g} | {agree} |"]

    goal_lines = [*check("well-conditioned", "statistics", "pytorch-fid", 5, 1e-6),
                  *check("well-conditioned", "statistics", "torchmetrics", 1.5, 1e-6),
                  *check("singular", "features", "torchmetrics", 1.5, 1e-3),
                  *check("singular", "features", "pytorch-fid", 1.5, 1e-3)]
    lines += ["", "## Goals (GitHub issue 16), from the table above", "",
              "| figure | course_lib | goal | |", "|---|---:|---:|---|", *goal_lines]
    lines += ["", "The singular goal is measured from the features: only there can the N-dimensional sample space "
              "be used (`fid` chooses it from the shapes). From the statistics alone, `frechet_distance` must "
              "work with the F x F matrices (a symmetric square root of the singular covariance: one full "
              "eigendecomposition), which the *from statistics* singular rows show."]
    lines += ["", f"## Peak memory of the Frechet distance at F = {args.dims} (GitHub issue 16, section 3)", "",
              "A fresh process per implementation (its peak resident memory, `VmHWM`); each loads the inputs and "
              "imports every library before it reads its baseline, so *added by the call* is the memory of the "
              "Frechet distance alone (from the statistics: the means and covariances are inputs; from the "
              "features: the statistics are part of the call).", "",
              "| computation | implementation | peak of the process (MB) | added by the call (MB) |",
              "|---|---|---:|---:|"]
    for case, condition, n, which, peak, added in memory:
        lines.append(f"| from the {case}, {condition} (N = {n}) | {'no call (baseline)' if which == 'none' else which} "
                     f"| {peak:.0f} | {added:.0f} |")
    lines.append("")
    for case in ("statistics", "features"):
        added = {which: a for c, _, _, which, _, a in memory if c == case}
        worst = max(added["pytorch-fid"], added["torchmetrics"])
        best = min(added["pytorch-fid"], added["torchmetrics"])
        verdict = ("**not higher than either reference (met)**" if added["course_lib"] <= best
                   else "higher than a reference (not met)")
        lines.append(f"- From the {case}: course_lib adds {added['course_lib']:.0f} MB, the references "
                     f"{best:.0f} to {worst:.0f} MB: {verdict}.")
        goal_lines.append(f"| Frechet distance, F = {args.dims}, from the {case}: peak memory added (MB), "
                          f"vs the lower of pytorch-fid and torchmetrics | {added['course_lib']:.0f} | "
                          f"<= {best:.0f} | {'**met**' if added['course_lib'] <= best else 'not met'} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return goal_lines


if __name__ == "__main__":
    main()
