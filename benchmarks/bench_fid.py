"""Time course_lib's Frechet distance and feature extractors against the references, in one run.

Usage:
    python benchmarks/bench_fid.py [--threads 1] [--repeats 3] [--dims 2048] [--out benchmarks/fid.md]

Frechet distance: the same means and covariances (features of N = 2 * dims correlated Gaussian
samples, well-conditioned, and N = dims / 2 samples, singular) given to ``course_lib.fid.frechet_distance``
(symmetric eigenvalues, float64), pytorch-fid's ``calculate_frechet_distance`` (``scipy.linalg.sqrtm``) and
torchmetrics' ``_compute_fid`` (complex eigenvalues), float64 everywhere.
Resizing 28x28 -> 299x299 as each reference does: ``course_lib.resizing.resize_images`` (batched
resampling matrices) against the library's own code (clean-fid resizes image by image with PIL).
Feature extraction: images per second of the shipped Fashion-MNIST classifier (28x28 inputs) and of the
FID InceptionV3 (299x299 after resizing) with RANDOM weights (the pretrained file cannot be downloaded
here; the time does not depend on the weights). Each time is the median of ``--repeats`` runs after a
warm-up; CUDA rows appear when a GPU is present. The script writes a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib import fid as fidlib  # noqa: E402
from course_lib.classifier import load_fashion_classifier  # noqa: E402
from course_lib.inception import InceptionV3  # noqa: E402


def timed(fn, repeats: int, *args):
    fn(*args)  # warm-up
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def statistics_of(n: int, d: int, seed: int, shift: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    x = torch.randn(n, d, generator=g, dtype=torch.float64) @ mixing + shift
    return fidlib.gaussian_statistics(x)


def frechet_rows(dims: int, repeats: int) -> list[tuple]:
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torchmetrics.image.fid import _compute_fid

    rows = []
    for label, n in (("well-conditioned", 2 * dims), ("singular", dims // 2)):
        mu1, s1 = statistics_of(n, dims, 0)
        mu2, s2 = statistics_of(n, dims, 1, shift=0.05)
        args_np = [t.numpy() for t in (mu1, s1, mu2, s2)]
        t_ours, ours = timed(fidlib.frechet_distance, repeats, mu1, s1, mu2, s2)
        ours = float(ours)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_pf, pf = timed(calculate_frechet_distance, repeats, *args_np)
        t_tm, tm = timed(_compute_fid, repeats, mu1, s1, mu2, s2)
        note = f"D = {dims}, N = {n} samples per set ({label}); FID = {ours:.6g}"
        rows.append((f"frechet_distance, course_lib (Cholesky or eigh, then eigvalsh) [{label}]", t_ours, "—", note))
        rows.append((f"pytorch-fid calculate_frechet_distance (scipy sqrtm) [{label}]", t_pf,
                     f"{abs(float(pf) - ours) / abs(ours):.1e}", note))
        rows.append((f"torchmetrics _compute_fid (eigvals) [{label}]", t_tm,
                     f"{abs(float(tm) - ours) / abs(ours):.1e}", note))
    return rows


def extractor_rows(repeats: int, devices: list[torch.device]) -> list[tuple]:
    rows = []
    for device in devices:
        clf = load_fashion_classifier(device)
        images = torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        t, _ = timed(clf.features, repeats, images)
        rows.append((f"fashion_classifier features [{device.type}]", t, "—",
                     f"{len(images) / t:.0f} images/s (2000 images, batches of 500)"))
        torch.manual_seed(0)
        inception = _random_inception().to(device)
        n = 8 if device.type == "cpu" else 256
        images = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))
        t, _ = timed(inception.features, repeats, images)
        rows.append((f"InceptionV3 pool3 features, RANDOM weights [{device.type}]", t, "—",
                     f"{n / t:.1f} images/s ({n} 28x28 images resized to 299x299, batches of 50)"))
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
        t_ours, ours = timed(resize_images, repeats, images, 299, style)
        ref_input = images if style == "pytorch-fid" else uint8
        t_ref, ref = timed(reference, repeats, ref_input)
        scale = 1.0 if style == "pytorch-fid" else 255.0
        if style == "clean-fid":
            ref = ref.permute(0, 3, 1, 2)
        diff = float((ours * scale - ref).abs().max()) / scale
        note = f"{n} colour 28x28 images -> 299x299; {n / t_ours:.0f} vs {n / t_ref:.0f} images/s"
        rows.append((f"resize_images(style={style!r}), course_lib", t_ours, "—", note))
        rows.append((f"{style}'s own resize code", t_ref, f"{diff:.1e} (absolute, [0, 1] scale)", note))
    return rows


def _random_inception() -> InceptionV3:
    """An InceptionV3 with random weights (its architecture without pretrained weights, for timing only)."""
    return InceptionV3(pretrained=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dims", type=int, default=2048)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "fid.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = (frechet_rows(args.dims, args.repeats) + extractor_rows(args.repeats, devices)
            + resize_rows(args.repeats))
    import pytorch_fid
    import scipy
    import torchmetrics

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    lines = [
        "# FID: course_lib vs the reference libraries",
        "",
        f"Written by `python benchmarks/bench_fid.py --threads {args.threads} --repeats {args.repeats} "
        f"--dims {args.dims}` on {datetime.date.today()}: {platform.machine()}, {os.cpu_count()} CPU cores "
        f"(shared with other jobs), torch {args.threads} thread(s), {gpu}.",
        f"torch {torch.__version__}, scipy {scipy.__version__}, torchmetrics {torchmetrics.__version__}, "
        f"pytorch-fid {pytorch_fid.__version__}.",
        "",
        "Same float64 means and covariances for the three Frechet distances; times are medians after a warm-up. "
        "**The InceptionV3 row uses random weights** (the pretrained file cannot be downloaded here): the "
        "throughput is real, the features are not.",
        "",
        "| implementation | time (s) | relative difference to course_lib | notes |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {name} | {t:.3f} | {diff} | {note} |" for name, t, diff, note in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
