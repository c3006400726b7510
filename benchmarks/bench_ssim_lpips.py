"""Time course_lib's SSIM and LPIPS against the reference libraries, on the same inputs, in one run.

Usage:
    python benchmarks/bench_ssim_lpips.py [--threads 1] [--repeats 3] [--memory-pairs 32] [--out FILE.md]

Inputs: 32 colour 256x256 crops of scikit-image's photographs (float32 in [0, 1]) and the same crops
with Gaussian noise and blur. SSIM: course_lib (float64 inside) vs scikit-image's
``structural_similarity`` in a per-image loop and vs torchmetrics. LPIPS: course_lib vs the ``lpips``
package with the SAME RANDOM backbone weights (written to a temporary torch hub cache, as in the
tests), because pretrained weights cannot be downloaded offline: the times are real, the distances
are not perceptual. VGG is timed on the first VGG_PAIRS pairs only on the CPU.

Every implementation runs in this one process on ``--threads`` threads (torch, OpenBLAS, MKL, OpenMP).
The implementations of a row group run interleaved, ``--repeats`` rounds after a warm-up call each;
a time is the median over the rounds, and the speed-ups compare CPU times (see ``bench_common.compare``).
Peak memory of LPIPS-vgg (``--memory-pairs`` pairs) is measured in a fresh process per implementation.
CUDA rows appear when a GPU is present. The script writes a Markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common as bench  # noqa: E402  (first: it pins the threads before numpy and torch load)

bench.pin_threads(bench.threads_from_argv())

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

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


def _sync(device: torch.device):
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None


def bench_ssim(preds, target, device, repeats):
    """Rows ``(name, wall, cpu, speed-up of course_lib, difference, note)`` and the goals' figures."""
    from skimage.metrics import structural_similarity
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    p, t = preds.to(device), target.to(device)
    functions = {
        "ours": lambda: ssim(p, t, data_range=1.0, reduction="none"),
        "torchmetrics": lambda: tm_ssim(p, t, data_range=1.0, reduction="none"),
    }
    if device.type == "cpu":
        pn, tn = preds.double().numpy(), target.double().numpy()
        functions["scikit-image"] = lambda: np.array([
            structural_similarity(b, a, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=1.0, channel_axis=0) for a, b in zip(pn, tn, strict=True)])
    # NumPy needs no warm-up; torch's first call allocates and builds its kernels
    timed = bench.compare(functions, repeats, warmup={"scikit-image": False}, sync=_sync(device))
    ours, _, cpu_ours = timed["ours"]
    ours = ours.cpu()
    rows = [(f"SSIM, course_lib (float64 inside) [{device.type}]", timed["ours"][1], cpu_ours, "—", None,
             "separable Gaussian filter, float64 statistics")]
    tm, wall_tm, cpu_tm = timed["torchmetrics"]
    _, tm_map = tm_ssim(p.double(), t.double(), data_range=1.0, reduction="none", return_full_image=True)
    tm_valid = tm_map[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)).cpu()
    rows.append((f"SSIM, torchmetrics default (float32) [{device.type}]", wall_tm, cpu_tm,
                 bench.ratio(cpu_tm, cpu_ours), float((tm.cpu().double() - ours).abs().max()),
                 "includes its reflect-padded border windows; on the valid region (float64) the largest "
                 f"difference is {float((tm_valid - ours).abs().max()):.1e}"))
    goals = {f"ssim_vs_torchmetrics_{device.type}": cpu_tm / cpu_ours}
    if "scikit-image" in timed:
        sk, wall_sk, cpu_sk = timed["scikit-image"]
        diff = float(np.abs(sk - ours.numpy()).max())
        rows.append(("SSIM, scikit-image per-image loop (float64) [cpu]", wall_sk, cpu_sk,
                     bench.ratio(cpu_sk, cpu_ours), diff,
                     "gaussian_weights=True, sigma=1.5, use_sample_covariance=False"))
        goals |= {"ssim_vs_skimage": cpu_sk / cpu_ours, "ssim_skimage_diff": diff}
    assert ssim_components(p[:1], t[:1])["ssim"].shape[-1] == preds.shape[-1] - 10
    if device.type == "cpu":
        goals["ssim_profile"] = ssim_profile(p, t)
    return rows, goals


def ssim_profile(preds: torch.Tensor, target: torch.Tensor, repeats: int = 3) -> dict:
    """Seconds per call of course_lib's SSIM, part by part (cProfile's cumulative times, per call)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        ssim(preds, target, data_range=1.0, reduction="none")
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # {(file, line, function): (calls, calls, own, cumulative, callers)}

    def seconds(function: str) -> float:
        return sum(v[3] for k, v in stats.items() if k[2] == function) / repeats

    return {part: seconds(function) for part, function in (
        ("total", "ssim"), ("checks", "check_image_pair"), ("minmax", "_min_max"),
        ("filter", "_correlate_valid"), ("statistics", "_filtered_statistics"), ("formula", "_ssim_map_"))}


def random_backbones(hub: str) -> None:
    """Random torchvision weights of every LPIPS backbone, under torchvision's file names, in ``hub``."""
    os.makedirs(os.path.join(hub, "checkpoints"), exist_ok=True)
    old = torch.hub.get_dir()
    torch.hub.set_dir(hub)
    try:
        torch.manual_seed(0)
        for spec in BACKBONES.values():
            state = getattr(torchvision.models, spec.builder)(weights=None).state_dict()
            # The unused classifier as a broadcast zero: a small file, loaded all the same.
            state = {k: v if k.startswith("features.") else torch.zeros(()).expand(v.shape) for k, v in state.items()}
            torch.save(state, os.path.join(hub, "checkpoints", spec.file_name))
    finally:
        torch.hub.set_dir(old)


def lpips_models(net: str, device: torch.device):
    """``(course_lib's LPIPS, the lpips package's)`` on the backbone file in the current hub cache."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lpips calls torchvision's deprecated pretrained=True
        ref = lpips.LPIPS(net=net, verbose=False).to(device)
    return LPIPS(net, download=False).to(device), ref


def bench_lpips(preds, target, device, repeats, hub):
    rows, goals = [], {}
    x, y = (preds * 2 - 1).to(device), (target * 2 - 1).to(device)
    old = torch.hub.get_dir()
    torch.hub.set_dir(hub)
    try:
        for net in BACKBONES:
            assert backbone_path(net).is_file()
            ours, ref = lpips_models(net, device)
            n = VGG_PAIRS if net == "vgg" and device.type == "cpu" else x.shape[0]
            xs, ys = x[:n], y[:n]
            with torch.no_grad():
                timed = bench.compare({"ours": lambda: ours(xs, ys),  # noqa: B023
                                 "lpips": lambda: ref(xs, ys).flatten()},  # noqa: B023
                                repeats, sync=_sync(device))
            (d_ours, wall_o, cpu_o), (d_ref, wall_r, cpu_r) = timed["ours"], timed["lpips"]
            diff = float((d_ours - d_ref).abs().max())
            rel = float(((d_ours - d_ref).abs() / d_ref.abs()).max())
            note = f"random backbone, {n} pairs; relative difference {rel:.1e}"
            rows.append((f"LPIPS-{net}, course_lib [{device.type}]", wall_o, cpu_o, "—", None, note))
            rows.append((f"LPIPS-{net}, lpips package [{device.type}]", wall_r, cpu_r, bench.ratio(cpu_r, cpu_o),
                         diff, note))
            goals[f"lpips_{net}_{device.type}"] = (cpu_r / cpu_o, rel)
    finally:
        torch.hub.set_dir(old)
    return rows, goals


def peak_memory_child(which: str, hub: str, pairs: int) -> None:
    """In a fresh process: LPIPS-vgg of one implementation on ``pairs`` pairs, its peak memory printed."""
    torch.hub.set_dir(hub)
    preds, target = photo_batch(pairs)
    x, y = preds * 2 - 1, target * 2 - 1
    ours, ref = lpips_models("vgg", torch.device("cpu"))
    model = {"course_lib": ours, "lpips": ref, "none": None}[which]
    del ours, ref
    if model is not None:  # a small warm-up: the libraries' one-time buffers are not the call's memory
        with torch.no_grad():
            model(x[:1, :, :64, :64], y[:1, :, :64, :64])
    base = bench.peak_rss_mb()
    if model is not None:
        with torch.no_grad():
            model(x, y)
    bench.report_peak(base)


def memory_rows(hub: str, pairs: int, threads: int) -> list[tuple]:
    script = str(Path(__file__).resolve())
    options = ["--hub", hub, "--memory-pairs", str(pairs), "--threads", str(threads)]
    peaks = {which: bench.measure_peak(script, [which, *options]) for which in ("none", "course_lib", "lpips")}
    return [(which, p["peak_mb"], p["peak_mb"] - p["before_mb"]) for which, p in peaks.items()]


def main(argv: list[str] | None = None) -> list[str]:
    """Run the benchmark, write its Markdown file and return the rows of its goals table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of torch, OpenBLAS, MKL and OpenMP (default 1: a shared CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-pairs", type=int, default=32, help="LPIPS-vgg pairs of the memory table")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "ssim_lpips.md"))
    parser.add_argument("--peak-memory", nargs=1, metavar="IMPLEMENTATION", help=argparse.SUPPRESS)
    parser.add_argument("--hub", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.peak_memory:
        peak_memory_child(args.peak_memory[0], args.hub, args.memory_pairs)
        return []
    load_before = bench.load_average()
    preds, target = photo_batch()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows, goals = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        hub = os.path.join(tmp, "hub")
        random_backbones(hub)
        for device in devices:
            for run in (bench_ssim, bench_lpips):
                new_rows, new_goals = run(preds, target, device, args.repeats, *([hub] if run is bench_lpips else []))
                rows += new_rows
                goals |= new_goals
                print("\n".join(f"{r[0]}: {r[1]:.3f} s wall, {r[2]:.3f} s CPU" for r in new_rows), flush=True)
        memory = memory_rows(hub, args.memory_pairs, args.threads)
        print(memory, flush=True)
    load_after = bench.load_average()
    import lpips
    import skimage
    import torchmetrics

    lines = [
        *bench.header("SSIM and LPIPS: course_lib vs the reference libraries", f"python benchmarks/bench_ssim_lpips.py "
                      f"--threads {args.threads} --repeats {args.repeats} --memory-pairs {args.memory_pairs}",
                      args.threads, load_before, load_after),
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, torchmetrics {torchmetrics.__version__}, "
        f"scikit-image {skimage.__version__}, lpips {getattr(lpips, '__version__', '0.1.4 or later')}.",
        "",
        f"Inputs: {preds.shape[0]} colour {preds.shape[-2]}x{preds.shape[-1]} crops of scikit-image photographs "
        "(float32 in [0, 1]) vs blurred and noisy copies. All rows ran in one process; the implementations of "
        f"a group ran interleaved, {args.repeats} rounds after a warm-up call each, and a time is the median over "
        "the rounds. *course_lib faster by* = the row's CPU time / course_lib's CPU time. "
        "**LPIPS rows use random backbone weights, the same for both implementations** (pretrained weights "
        "cannot be downloaded here): the times are real, the distances are not perceptual. "
        f"LPIPS-vgg is timed on the first {VGG_PAIRS} pairs only (see its row).",
        "",
        "| implementation | wall (s) | CPU (s) | course_lib faster by | largest difference to course_lib | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, wall, cpu, speedup, diff, note in rows:
        lines.append(f"| {name} | {wall:.3f} | {cpu:.3f} | {speedup} | {'—' if diff is None else f'{diff:.1e}'} "
                     f"| {note} |")
    goal_lines = [bench.goal_row("SSIM, 32 colour 256x256 images: speed-up vs scikit-image",
                                 goals["ssim_vs_skimage"], 3),
                  bench.goal_row("SSIM: speed-up vs torchmetrics", goals["ssim_vs_torchmetrics_cpu"], 2),
                  f"| SSIM: largest difference to scikit-image | {goals['ssim_skimage_diff']:.1e} | <= 1e-6 | "
                  f"{'**met**' if goals['ssim_skimage_diff'] <= 1e-6 else 'not met'} |"]
    for net in BACKBONES:
        speedup, rel = goals[f"lpips_{net}_cpu"]
        goal_lines.append(bench.goal_row(f"LPIPS-{net}: speed-up vs the lpips package, same weights", speedup, 1.2))
        goal_lines.append(f"| LPIPS-{net}: largest relative difference to the lpips package | {rel:.1e} | <= 1e-5 | "
                          f"{'**met**' if rel <= 1e-5 else 'not met'} |")
    lines += ["", "## Goals (GitHub issue 16), from the table above", "",
              "| figure | course_lib | goal | |", "|---|---:|---:|---|", *goal_lines]
    prof = goals["ssim_profile"]
    lines += ["", "### What limits the SSIM row", "",
              f"cProfile of one course_lib SSIM call ({prof['total']:.3f} s under cProfile): the input checks "
              f"(`validation.check_image_pair`) {prof['checks']:.3f} s ({prof['checks'] / prof['total']:.0%}), "
              f"of which one `aminmax` read per tensor (range, NaN and inf at once) {prof['minmax']:.3f} s; the "
              f"separable filter ({2 * 11} multiply-add passes over each plane's four float64 statistics) "
              f"{prof['filter']:.3f} s ({prof['filter'] / prof['total']:.0%}); the statistics' other work (float64 "
              f"copies, products) {prof['statistics'] - prof['filter']:.3f} s; the SSIM formula "
              f"{prof['formula']:.3f} s. The filter streams its planes through memory once per tap; scikit-image "
              "filters line by line in C (SciPy's `correlate1d`), in the cache, and suffers less when other jobs "
              "share the CPU's memory bandwidth."]
    lines += ["", "### What limits the LPIPS rows", "",
              "Both implementations run the same oneDNN convolutions, which take most of the time (AlexNet's and "
              "VGG's more than SqueezeNet's). course_lib saves what surrounds them: x and y go through each layer "
              "as one batch in the channels-last layout (no reorder of every activation, a faster max-pooling), "
              "the inputs are scaled in one pass, and each layer's distance is one norm, one product, one "
              "difference and one matrix-vector product, with no per-layer copies of both images' features."]
    base = dict((which, (peak, added)) for which, peak, added in memory)
    lines += ["", f"## Peak memory of LPIPS-vgg on {args.memory_pairs} image pairs (GitHub issue 16, section 3)", "",
              "A fresh process per implementation (its peak resident memory, `VmHWM`, the `ru_maxrss` of a "
              "process not forked from a larger one; `tracemalloc` does not see torch's allocations). "
              "Each process builds both models and the inputs before it reads its baseline, so *added by the "
              "call* is the memory of one forward pass (no autograd) alone.", "",
              "| implementation | peak of the process (MB) | added by the call (MB) |", "|---|---:|---:|"]
    names = {"none": "no call (the baseline process)", "course_lib": "course_lib LPIPS('vgg')",
             "lpips": "lpips.LPIPS(net='vgg')"}
    lines += [f"| {names[which]} | {peak:.0f} | {added:.0f} |" for which, (peak, added) in base.items()]
    lower = base["course_lib"][1] <= base["lpips"][1]
    lines += ["", f"course_lib's call adds {base['course_lib'][1]:.0f} MB, the lpips package's "
              f"{base['lpips'][1]:.0f} MB: {'**not higher (met)**' if lower else 'higher (not met)'}. "
              "course_lib runs x and y as one batch and keeps only the current layer's features; the lpips "
              "package keeps every layer's features of both images, then their normalised copies and differences."]
    goal_lines.append(f"| LPIPS-vgg, {args.memory_pairs} pairs: peak memory added (MB), vs the lpips package | "
                      f"{base['course_lib'][1]:.0f} | <= {base['lpips'][1]:.0f} | "
                      f"{'**met**' if lower else 'not met'} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return goal_lines


if __name__ == "__main__":
    main()
