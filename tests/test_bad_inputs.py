"""Every kind of bad input a code review tried, in one table: each gets a clear error naming the
argument (or a warning where the input is legal but almost surely a mistake), never a silent
wrong number or an obscure crash. Round-off is not bad input: those rows must pass.

A row is ``(id, call, expected)``: ``call()`` runs the bad input; ``expected`` is
``("error", exception type, regex the message must match)``, ``("warn", regex)`` or ``("ok",)``.
"""

from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from course_lib import (
    autoencoder,
    checkpoints,
    classifier,
    data,
    fid,
    flows,
    kid,
    likelihoods,
    lpips,
    metrics,
    precision_recall,
    resizing,
    runtime,
    toy_data,
    training,
    vae,
    vq,
)

g = torch.Generator().manual_seed(0)
IMG = torch.rand(2, 1, 32, 32, generator=g)  # 32 px: AlexNet's LPIPS needs at least 31
IMG2 = torch.rand(2, 1, 32, 32, generator=g)
FEAT = torch.randn(20, 4, generator=g)
FEAT2 = torch.randn(20, 4, generator=g)


def _photo_blurred() -> tuple[torch.Tensor, torch.Tensor]:
    """A real photograph in [0, 1] and its Gaussian blur: the blur has values like -1e-17."""
    from skimage import data as skdata

    photo = skdata.camera()[:96, :96].astype(np.float64) / 255
    photo[:8] = 0.0  # a black band, so that the blur's round-off dips below 0
    blurred = ndimage.gaussian_filter(photo, sigma=2.0)
    to_t = lambda a: torch.from_numpy(a)[None, None]  # noqa: E731
    return to_t(blurred), to_t(photo)


def _corrupt_data_dir(tmp_path):
    """The four Fashion-MNIST files with the test images' .gz truncated in the middle."""
    source = data.find_data_dir(download=False)
    for split in data.FILES.values():
        for name, _ in split.values():
            path = data._file_for(source, name)
            target = tmp_path / (name + ".gz")
            if path.suffix == ".gz":
                shutil.copy(path, target)
            else:
                with open(path, "rb") as f, gzip.open(target, "wb") as out:
                    out.write(f.read())
    broken = tmp_path / "t10k-images-idx3-ubyte.gz"
    raw = broken.read_bytes()
    broken.write_bytes(raw[:20] + b"\x00garbage" * 50 + raw[-8:])
    return tmp_path


def _lpips():
    return lpips.LPIPS("alex", pretrained=False)


ROWS = [
    # ---------------------------------------------------------------- data and runtime
    ("data: subset=0", lambda: data.load_fashion_mnist("test", subset=0), ("error", ValueError, "subset")),
    ("data: subset=True", lambda: data.load_fashion_mnist("test", subset=True), ("error", ValueError, "subset")),
    ("data: subset larger than the split", lambda: data.load_fashion_mnist("test", subset=10_001),
     ("error", ValueError, "subset must be at most .*10000")),
    ("data: unknown split", lambda: data.load_fashion_mnist("validation"), ("error", ValueError, "split")),
    ("data: root without the files", lambda: data.load_fashion_mnist("test", root="/nonexistent"),
     ("error", data.DataNotFoundError, "root")),
    ("runtime: unknown device", lambda: runtime.get_device("tpu"), ("error", ValueError, "prefer")),
    ("runtime: device of a wrong type", lambda: runtime.as_device(3), ("error", ValueError, "device must be")),
    ("runtime: negative seed", lambda: runtime.seed_everything(-1), ("error", ValueError, "seed")),
    # ---------------------------------------------------------------- the training loop
    ("train: epochs=0", lambda: training.train(torch.nn.Linear(2, 1), None, torch.randn(4, 2), epochs=0),
     ("error", ValueError, "epochs")),
    ("train: batch_size=0", lambda: training.train(torch.nn.Linear(2, 1), None, torch.randn(4, 2), epochs=1,
                                                   batch_size=0), ("error", ValueError, "batch_size")),
    ("train: empty data", lambda: training.train(torch.nn.Linear(2, 1), None, torch.randn(0, 2), epochs=1),
     ("error", ValueError, "train_data is empty")),
    ("train: images and labels of different lengths",
     lambda: training.train(torch.nn.Linear(2, 1), None, (torch.randn(4, 2), torch.zeros(3)), epochs=1),
     ("error", ValueError, "same length")),
    ("train: unknown lr_schedule", lambda: training.train(torch.nn.Linear(2, 1), None, torch.randn(4, 2), epochs=1,
                                                          lr_schedule="step"), ("error", ValueError, "lr_schedule")),
    # ---------------------------------------------------------------- PSNR and SSIM
    ("psnr: shapes differ", lambda: metrics.psnr(IMG, IMG2[:1]), ("error", ValueError, "same shape")),
    ("psnr: not 4-D", lambda: metrics.psnr(IMG[0], IMG2[0]), ("error", ValueError, r"\(N, C, H, W\)")),
    ("psnr: NaN", lambda: metrics.psnr(IMG.clone().fill_(float("nan")), IMG2), ("error", ValueError, "NaN")),
    ("psnr: values above data_range", lambda: metrics.psnr(IMG * 2, IMG2), ("error", ValueError, "outside")),
    ("psnr: data_range=0", lambda: metrics.psnr(IMG, IMG2, data_range=0), ("error", ValueError, "data_range")),
    ("psnr: [0, 1] images with data_range=255", lambda: metrics.psnr(IMG, IMG2, data_range=255),
     ("warn", "data_range=1")),
    ("psnr: empty batch", lambda: metrics.psnr(IMG[:0], IMG2[:0]), ("error", ValueError, "empty")),
    ("psnr: blurred photograph (round-off below 0)", lambda: metrics.psnr(*_photo_blurred()), ("ok",)),
    ("ssim: empty batch", lambda: metrics.ssim(IMG[:0], IMG2[:0]), ("error", ValueError, "empty")),
    ("ssim: image smaller than the window", lambda: metrics.ssim(IMG[..., :5, :5], IMG2[..., :5, :5]),
     ("error", ValueError, "kernel_size|window|smaller")),
    ("ssim: unknown reduction", lambda: metrics.ssim(IMG, IMG2, reduction="sum"), ("error", ValueError, "reduction")),
    ("ssim: blurred photograph (round-off below 0)", lambda: metrics.ssim(*_photo_blurred()), ("ok",)),
    ("ssim: real negative values", lambda: metrics.ssim(IMG - 0.1, IMG2), ("error", ValueError, "outside")),
    # ---------------------------------------------------------------- LPIPS
    ("lpips: values outside [-1, 1]", lambda: _lpips()(IMG.expand(-1, 3, -1, -1) * 3, IMG2.expand(-1, 3, -1, -1)),
     ("error", ValueError, r"\[-1, 1\]")),
    ("lpips: [0, 1] images without normalize", lambda: _lpips()(IMG.expand(-1, 3, -1, -1), IMG2.expand(-1, 3, -1, -1)),
     ("warn", "normalize=True")),
    ("lpips: normalize=True on [-1, 1] images",
     lambda: _lpips()(IMG.expand(-1, 3, -1, -1) * 2 - 1, IMG2.expand(-1, 3, -1, -1), normalize=True),
     ("error", ValueError, r"\[0, 1\]")),
    ("lpips: unknown network", lambda: lpips.LPIPS("resnet", pretrained=False), ("error", ValueError, "net")),
    ("lpips: NaN in y (one read checks NaN and range)",
     lambda: _lpips()(IMG.expand(-1, 3, -1, -1) * 2 - 1, (IMG2 * 2 - 1).index_fill(2, torch.tensor([3]), float("nan"))
                      .expand(-1, 3, -1, -1)), ("error", ValueError, "y contains NaN")),
    ("binarize: NaN grey levels", lambda: likelihoods.binarize(IMG.index_fill(3, torch.tensor([0]), float("nan"))),
     ("error", ValueError, "x contains NaN")),
    # ---------------------------------------------------------------- FID, IS, KID, precision/recall
    ("fid: different widths", lambda: fid.fid(FEAT, FEAT2[:, :3]), ("error", ValueError, "width|same")),
    ("fid: one sample", lambda: fid.fid(FEAT[:1], FEAT2), ("error", ValueError, "at least 2|at least two")),
    ("fid: NaN features", lambda: fid.fid(FEAT.clone().fill_(float("nan")), FEAT2), ("error", ValueError, "NaN")),
    ("fid: 1-D features", lambda: fid.fid(FEAT[:, 0], FEAT2[:, 0]), ("error", ValueError, r"\(N, D\)")),
    ("inception_score: rows not summing to 1", lambda: fid.inception_score(torch.rand(20, 5), splits=2),
     ("error", ValueError, "sum")),
    ("inception_score: more splits than samples", lambda: fid.inception_score(torch.full((4, 5), 0.2), splits=5),
     ("error", ValueError, "splits")),
    ("kid: subset larger than a set", lambda: kid.kid(FEAT, FEAT2[:10], subsets=1, subset_size=15),
     ("error", ValueError, "subset_size")),
    ("precision_recall: k >= N", lambda: precision_recall.precision_recall(FEAT, FEAT2[:3], k=3),
     ("error", ValueError, "k must be smaller")),
    # ---------------------------------------------------------------- VAE
    ("reparameterize: mu and logvar differ in shape", lambda: vae.reparameterize(torch.zeros(3, 2), torch.zeros(3, 4)),
     ("error", ValueError, "same shape")),
    ("gaussian_kl: NaN logvar", lambda: vae.gaussian_kl(torch.zeros(3, 2), torch.full((3, 2), float("nan"))),
     ("error", ValueError, "NaN")),
    ("iwae_bound: axes transposed (batch first)", lambda: vae.iwae_bound(torch.randn(100, 5), k=5),
     ("error", ValueError, "log_w")),
    ("negative_elbo: grey targets with the Bernoulli likelihood",
     lambda: vae.negative_elbo(torch.zeros(2, 1, 28, 28), torch.full((2, 1, 28, 28), 0.3), torch.zeros(2, 2),
                               torch.zeros(2, 2)), ("warn", "binar")),
    ("ConvVAE: latent_dim=0", lambda: vae.ConvVAE(latent_dim=0), ("error", ValueError, "latent_dim")),
    ("iwae_log_likelihood: k=0", lambda: vae.iwae_log_likelihood(vae.MLPVAE(2), torch.rand(2, 1, 28, 28).round(), k=0),
     ("error", ValueError, "k must be")),
    # ---------------------------------------------------------------- VQ-VAE
    ("nearest_code: width differs from the codebook", lambda: vq.nearest_code(torch.randn(5, 3), torch.randn(4, 2)),
     ("error", ValueError, "z_e")),
    ("perplexity: index out of range", lambda: vq.perplexity(torch.tensor([0, 9]), num_codes=4),
     ("error", ValueError, "indices")),
    ("perplexity: float indices", lambda: vq.perplexity(torch.tensor([0.0, 1.0]), num_codes=4),
     ("error", ValueError, "integer")),
    ("VectorQuantizer: num_codes=0", lambda: vq.VectorQuantizer(0, 4), ("error", ValueError, "num_codes")),
    # ---------------------------------------------------------------- autoencoder, flows, GAN, classifier, resizing
    ("autoencoder: colour images", lambda: autoencoder.ConvAutoencoder()(torch.rand(2, 3, 28, 28)),
     ("error", ValueError, r"\(N, 1, 28, 28\)")),
    ("interpolate_codes: steps=1", lambda: autoencoder.interpolate_codes(torch.zeros(2), torch.ones(2), steps=1),
     ("error", ValueError, "steps")),
    ("two_moons: n=0", lambda: toy_data.two_moons(0), ("error", ValueError, "n must be")),
    ("RealNVP: points of the wrong width", lambda: flows.RealNVP(dim=2).log_prob(torch.randn(5, 3)),
     ("error", ValueError, r"\(N, 2\)")),
    ("classifier: images and labels of different lengths",
     lambda: classifier.train_classifier(classifier.FashionClassifier(), torch.rand(4, 1, 28, 28),
                                         torch.zeros(3, dtype=torch.long), epochs=1),
     ("error", ValueError, "same length")),
    ("classifier: uint8 images", lambda: classifier.extract(classifier.FashionClassifier(),
                                                           torch.zeros(2, 1, 28, 28, dtype=torch.uint8)),
     ("error", ValueError, "float")),
    ("resize_images: unknown style", lambda: resizing.resize_images(IMG, 8, style="bilinear"),
     ("error", ValueError, "style")),
    ("load_pretrained: unknown name", lambda: checkpoints.load_pretrained("no_such_model"),
     ("error", KeyError, "no_such_model")),
]


@pytest.mark.parametrize("call, expected", [pytest.param(c, e, id=i) for i, c, e in ROWS])
def test_bad_input(call, expected):
    kind = expected[0]
    if kind == "error":
        with pytest.raises(expected[1], match=expected[2]):
            call()
    elif kind == "warn":
        with pytest.warns(UserWarning, match=expected[1]):
            call()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            call()


def test_corrupt_gz_names_the_file(tmp_path):
    root = _corrupt_data_dir(tmp_path)
    with pytest.raises(RuntimeError, match=r"t10k-images-idx3-ubyte\.gz is corrupt.*get the file again"):
        data.load_fashion_mnist("test", root=root)


def test_the_table_covers_at_least_45_kinds():
    assert len(ROWS) + 1 >= 45


def test_course_lib_imports_without_fcntl():
    """Windows has no fcntl: importing course_lib (every module) must not need it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['fcntl'] = None\n"
            "import pkgutil, importlib, course_lib\n"
            "for m in pkgutil.walk_packages(course_lib.__path__, 'course_lib.'):\n"
            "    importlib.import_module(m.name)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
