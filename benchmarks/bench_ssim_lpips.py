"""Time course_lib's SSIM and LPIPS against the reference libraries, on the same inputs, in one run.

Usage:
    python benchmarks/bench_ssim_lpips.py [--threads 1] [--repeats 3] [--out benchmarks/ssim_lpips.md]

Inputs: 32 colour 256x256 crops of scikit-image's photographs (float32 in [0, 1]) and the same crops
with Gaussian noise and blur. SSIM: course_lib (float64 inside) vs scikit-image's
``structural_similarity`` in a per-image loop and vs torchmetrics. LPIPS: course_lib vs the ``lpips``
package with the SAME RANDOM backbone weights (written to a temporary torch hub cache, as in the
tests), because pretrained weights cannot be downloaded offline: the times are real, the distances
are not perceptual. VGG runs on the first VGG_PAIRS pairs only on the CPU.
Each time is the median of ``--repeats`` runs after a warm-up run (on 2 pairs for LPIPS); CUDA rows appear when a GPU is
present. The script writes a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torchvision

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_lib.lpips import BACKBONES, LPIPS, backbone_path  # noqa: E402
from course_lib.metrics import ssim, ssim_components  # noqa: E402

VGG_PAIRS = 4  # VGG-16 on 32 pairs of 256x256 images takes minutes on a 2-core CPU


def photo_batch(n: int = 32, size: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n random crops of scikit-image's colour photographs, and distorted copies (noise + blur)."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.immunohistochemistry(), data.rocket()]
    g = torch.Generator().manual_seed(seed)
    crops = []
    for i in range(n):
        img = torch.from_numpy(photos[i % len(photos)]).permute(2, 0, 1).float() / 255
        top = int(torch.randint(0, img.shape[1] - size + 1, (1,), generator=g))
        left = int(torch.randint(0, img.shape[2] - size + 1, (1,), generator=g))
        crops.append(img[:, top:top + size, left:left + size])
    target = torch.stack(crops)
    blurred = torchvision.transforms.functional.gaussian_blur(target, kernel_size=5, sigma=1.0)
    preds = (blurred + 0.05 * torch.randn(target.shape, generator=g)).clamp(0, 1)
    return preds, target


def timed(fn, repeats: int, device: torch.device, warmup=None):
    """Median time of ``repeats`` calls of ``fn`` after one call of ``warmup`` (default: ``fn``)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    (warmup or fn)()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def bench_ssim(preds, target, device, repeats):
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    rows = []
    p, t = preds.to(device), target.to(device)
    ours, t_ours = timed(lambda: ssim(p, t, data_range=1.0, reduction="none"), repeats, device)
    ours = ours.cpu()
    rows.append((f"SSIM, course_lib (float64 inside) [{device.type}]", t_ours, None, ""))
    tm, t_tm = timed(lambda: tm_ssim(p, t, data_range=1.0, reduction="none"), repeats, device)
    _, tm_map = tm_ssim(p.double(), t.double(), data_range=1.0, reduction="none", return_full_image=True)
    tm_valid = tm_map[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)).cpu()
    rows.append((f"SSIM, torchmetrics default (float32) [{device.type}]", t_tm,
                 float((tm.cpu().double() - ours).abs().max()),
                 "includes its reflect-padded border windows; on the valid region (float64) the largest "
                 f"difference is {float((tm_valid - ours).abs().max()):.1e}"))
    if device.type == "cpu":
        pn, tn = preds.double().numpy(), target.double().numpy()

        def skimage_loop():
            return np.array([structural_similarity(b, a, gaussian_weights=True, sigma=1.5,
                                                   use_sample_covariance=False, data_range=1.0, channel_axis=0)
                             for a, b in zip(pn, tn, strict=True)])

        sk, t_sk = timed(skimage_loop, repeats, device, warmup=lambda: None)  # NumPy needs no warm-up
        rows.append(("SSIM, scikit-image per-image loop (float64) [cpu]", t_sk,
                     float(np.abs(sk - ours.numpy()).max()), "gaussian_weights=True, sigma=1.5, "
                     "use_sample_covariance=False"))
    assert ssim_components(p[:1], t[:1])["ssim"].shape[-1] == preds.shape[-1] - 10
    return rows


def bench_lpips(preds, target, device, repeats):
    import lpips

    rows = []
    x, y = (preds * 2 - 1).to(device), (target * 2 - 1).to(device)
    with tempfile.TemporaryDirectory() as tmp:
        old = torch.hub.get_dir()
        torch.hub.set_dir(os.path.join(tmp, "hub"))
        os.makedirs(os.path.join(tmp, "hub", "checkpoints"))
        try:
            torch.manual_seed(0)
            for net, spec in BACKBONES.items():
                state = getattr(torchvision.models, spec.builder)(weights=None).state_dict()
                # The unused classifier as a broadcast zero: a small file, loaded all the same.
                state = {k: v if k.startswith("features.") else torch.zeros(()).expand(v.shape)
                         for k, v in state.items()}
                torch.save(state, backbone_path(net))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ref = lpips.LPIPS(net=net, verbose=False).to(device)
                ours = LPIPS(net, download=False).to(device)
                n = VGG_PAIRS if net == "vgg" else x.shape[0]
                with torch.no_grad():  # warm-up on 2 pairs: a full extra pass costs minutes on a CPU
                    d_ours, t_ours = timed(lambda: ours(x[:n], y[:n]), repeats, device,  # noqa: B023
                                           warmup=lambda: ours(x[:2], y[:2]))  # noqa: B023
                    d_ref, t_ref = timed(lambda: ref(x[:n], y[:n]).flatten(), repeats, device,  # noqa: B023
                                         warmup=lambda: ref(x[:2], y[:2]))  # noqa: B023
                diff = float((d_ours - d_ref).abs().max())
                rel = float(((d_ours - d_ref).abs() / d_ref.abs()).max())
                note = f"random backbone, {n} pairs; relative difference {rel:.1e}"
                rows.append((f"LPIPS-{net}, course_lib [{device.type}]", t_ours, None, note))
                rows.append((f"LPIPS-{net}, lpips package [{device.type}]", t_ref, diff, note))
        finally:
            torch.hub.set_dir(old)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "ssim_lpips.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    preds, target = photo_batch()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        rows += bench_ssim(preds, target, device, args.repeats)
        rows += bench_lpips(preds, target, device, args.repeats)
        print("\n".join(f"{r[0]}: {r[1]:.3f} s" for r in rows))
    import lpips
    import skimage
    import torchmetrics

    lines = [
        "# SSIM and LPIPS: course_lib vs the reference libraries",
        "",
        f"Written by `python benchmarks/bench_ssim_lpips.py --threads {args.threads} --repeats {args.repeats}` "
        f"on {time.strftime('%Y-%m-%d')}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU "
        f"cores (shared with other jobs while this ran), torch {torch.get_num_threads()} thread(s)"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU") + ".",
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, torchmetrics {torchmetrics.__version__}, "
        f"scikit-image {skimage.__version__}, lpips {getattr(lpips, '__version__', '?')}.",
        "",
        f"Inputs: {preds.shape[0]} colour {preds.shape[-2]}x{preds.shape[-1]} crops of scikit-image photographs "
        "(float32 in [0, 1]) vs blurred and noisy copies; times are medians after a warm-up. "
        "**LPIPS rows use random backbone weights, the same for both implementations** (pretrained weights "
        "cannot be downloaded here): the times are real, the distances are not perceptual. "
        "LPIPS-vgg runs on the first few pairs only (see its row).",
        "",
        "| implementation | time (s) | largest difference to course_lib | notes |",
        "|---|---:|---:|---|",
    ]
    for name, seconds, diff, note in rows:
        lines.append(f"| {name} | {seconds:.3f} | {'—' if diff is None else f'{diff:.1e}'} | {note} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
