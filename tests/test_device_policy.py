"""The device and dtype policy of ``course_lib.runtime``, tested without an accelerator.

- every public model and metric runs under ``torch.autocast("cpu", dtype=torch.bfloat16)``
  (the same code path as CUDA's bf16 autocast), metrics giving the same numbers as without it;
- every ``device`` argument takes a string;
- no public metric converts to float64 before moving to the CPU (``tests/device_double.py``);
- no library function reseeds the global RNG or leaves the thread count changed.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing

import pytest
import torch

import course_lib
from course_lib import (
    autoencoder,
    classifier,
    fid,
    flows,
    gan,
    inception,
    kid,
    lpips,
    metrics,
    pixelcnn,
    precision_recall,
    runtime,
    training,
    vae,
    vq,
)
from tests import device_double
from tests.device_double import on_device

g = torch.Generator().manual_seed(0)
IMAGES = torch.rand(4, 1, 28, 28, generator=g)
IMAGES2 = torch.rand(4, 1, 28, 28, generator=g)
FEAT = torch.randn(40, 6, generator=g)
FEAT2 = torch.randn(40, 6, generator=g) + 0.3
PROBS = torch.softmax(torch.randn(40, 10, generator=g), dim=1)


def _bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


# ------------------------------------------------------------------------------------- metrics
torch.manual_seed(0)
_LPIPS = lpips.LPIPS("alex", pretrained=False).eval()
BIG = torch.rand(2, 1, 32, 32, generator=g)  # AlexNet's LPIPS needs at least 31 px
BIG2 = torch.rand(2, 1, 32, 32, generator=g)

# name: (metric, its two inputs, relative tolerance under bf16 autocast: measurements are not autocast)
METRICS = {
    "psnr": (metrics.psnr, (IMAGES, IMAGES2), 1e-6),
    "ssim": (metrics.ssim, (IMAGES, IMAGES2), 1e-6),
    "lpips": (lambda a, b: _LPIPS(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1), normalize=True),
              (BIG, BIG2), 1e-5),
    "fid": (fid.fid, (FEAT, FEAT2), 1e-7),
    "kid": (lambda a, b: kid.kid(a, b, subsets=3, subset_size=20)[0], (FEAT, FEAT2), 1e-7),
    "precision": (lambda a, b: precision_recall.precision_recall(a, b)[0], (FEAT, FEAT2), 1e-7),
    "recall": (lambda a, b: precision_recall.precision_recall(a, b)[1], (FEAT, FEAT2), 1e-7),
    "inception_score": (lambda a, b: torch.as_tensor(fid.inception_score(torch.softmax(a, dim=1), splits=2)[0]),
                        (FEAT, FEAT2), 1e-7),
}


def _plain(value) -> torch.Tensor:
    return torch.as_tensor(value).as_subclass(torch.Tensor).double()


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metrics_are_unchanged_by_autocast(name):
    metric, (a, b), rtol = METRICS[name]
    expected = metric(a, b)
    with _bf16():
        got = metric(a, b)
    torch.testing.assert_close(_plain(got), _plain(expected), rtol=rtol, atol=1e-9)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metrics_do_no_float64_on_the_device(name):
    metric, (a, b), _ = METRICS[name]
    device_double.VIOLATIONS.clear()
    got = metric(on_device(a), on_device(b))
    assert device_double.VIOLATIONS == []
    torch.testing.assert_close(_plain(got), _plain(metric(a, b)))


def test_classifier_features_do_no_float64_on_the_device():
    model = classifier.FashionClassifier().eval()
    device_double.VIOLATIONS.clear()
    classifier.extract(model, on_device(IMAGES))
    assert device_double.VIOLATIONS == []


def test_the_float64_detector_can_fail():
    """The detector itself: a float64 conversion on the 'device' is recorded, one after .cpu() is not."""
    device_double.VIOLATIONS.clear()
    x = on_device(FEAT)
    (x * 2).double()
    x.to(torch.float64)
    assert len(device_double.VIOLATIONS) == 2
    device_double.VIOLATIONS.clear()
    runtime.float64_cpu(x)
    x.cpu().double()
    assert device_double.VIOLATIONS == []


# ------------------------------------------------------------------------------------- models
def _models():
    torch.manual_seed(0)
    return {
        "ConvAutoencoder": (autoencoder.ConvAutoencoder(latent_dim=2), IMAGES),
        "ConvVAE": (vae.ConvVAE(latent_dim=4), IMAGES),
        "MLPVAE": (vae.MLPVAE(latent_dim=4), IMAGES),
        "PixelCNNVAE": (_Likelihood(vae.PixelCNNVAE(latent_dim=4)), IMAGES.round()),
        "VQVAE": (vq.VQVAE(num_codes=16, code_dim=4), IMAGES),
        "CodePrior": (pixelcnn.CodePrior(num_codes=16), torch.randint(0, 16, (4, 7, 7), generator=g)),
        "RealNVP": (flows.RealNVP(dim=2), FEAT[:, :2]),
        "GANGenerator": (gan.GANGenerator(), FEAT[:, :2]),
        "GANDiscriminator": (gan.GANDiscriminator(), FEAT[:, :2]),
        "FashionClassifier": (classifier.FashionClassifier(), IMAGES),
        "InceptionV3": (inception.InceptionV3(pretrained=False), torch.rand(1, 3, 299, 299, generator=g)),
    }


class _Likelihood(torch.nn.Module):
    """An autoregressive decoder has no mean image: run its log p(x|z) at the posterior mean instead."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        mu, _ = self.model.encode(x)
        return self.model.log_likelihood_at(mu, x)


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return next(v for v in out.values() if isinstance(v, torch.Tensor))
    return next(v for v in out if isinstance(v, torch.Tensor))


@pytest.mark.parametrize("name", sorted(_models()))
def test_models_run_under_bf16_autocast(name):
    model, x = _models()[name]
    model.eval()
    with torch.no_grad():
        expected = _first_tensor(model(x)).float()
        with _bf16():
            got = _first_tensor(model(x)).float()
    assert torch.isfinite(got).all()
    assert got.shape == expected.shape
    if got.is_floating_point():
        scale = expected.abs().max().clamp_min(1.0)
        assert float((got - expected).abs().max() / scale) < 0.1  # bf16 keeps about 3 significant digits


def test_vq_codes_and_loss_train_under_bf16_autocast():
    """One training step of the VQ-VAE under autocast: a finite loss, float32 codebook and EMA buffers."""
    torch.manual_seed(0)
    model = vq.VQVAE(num_codes=16, code_dim=4, mode="ema")
    with _bf16():
        loss = vq.vqvae_loss(model, IMAGES)["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    for name, buffer in model.named_buffers():
        if buffer.is_floating_point():
            assert buffer.dtype == torch.float32, name


# ------------------------------------------------------------------------------------- devices as strings
def _public_callables():
    for info in pkgutil.walk_packages(course_lib.__path__, "course_lib."):
        if info.name.endswith("grade"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isclass(obj):
                obj = obj.__init__
            if callable(obj):
                yield f"{module.__name__}.{name}", obj


def test_every_device_argument_accepts_a_string():
    offenders = []
    for qualname, func in _public_callables():
        try:
            params = inspect.signature(func).parameters
            hints = typing.get_type_hints(func)
        except (TypeError, ValueError, NameError):
            continue
        if "device" in params:
            hint = str(hints.get("device", params["device"].annotation))
            if "str" not in hint:
                offenders.append(f"{qualname}(device: {hint})")
    assert offenders == []


def test_training_and_evaluation_take_a_string_device():
    model = torch.nn.Linear(3, 1)

    def objective(m, x):
        return {"loss": m(x).pow(2).mean()}

    history = training.train(model, objective, torch.randn(16, 3), epochs=1, batch_size=8, device="cpu",
                             progress=False)
    assert len(history["train_loss"]) == 1
    assert set(training.evaluate(model, objective, torch.randn(8, 3), device="cpu")) == {"loss"}


def test_train_flow_and_gan_take_a_string_device():
    x = torch.randn(64, 2, generator=g)
    flows.train_flow(flows.RealNVP(dim=2, n_layers=2), x, epochs=1, device="cpu", progress=False)
    gan.train_gan(gan.GANGenerator(), gan.GANDiscriminator(), x, epochs=1, batch_size=32, device="cpu",
                  progress=False)


def test_loaders_take_a_string_device():
    model = classifier.load_fashion_classifier(device="cpu")
    assert next(model.parameters()).device.type == "cpu"


# ------------------------------------------------------------------------------------- global side effects
def test_evaluate_vae_leaves_the_global_rng_alone():
    from course_lib.data import load_fashion_mnist

    model = vae.ConvVAE(latent_dim=2)
    x = load_fashion_mnist("test", subset=20)[0]
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    vae.evaluate_vae(model, x, k=2)
    assert torch.equal(before, torch.random.get_rng_state())


def test_fid_restores_the_thread_count_even_on_error(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(fid, "trace_sqrt_product", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        fid.fid(FEAT, FEAT2)
    assert torch.get_num_threads() == before


def test_num_threads_restores_on_error():
    before = torch.get_num_threads()
    with pytest.raises(ZeroDivisionError), runtime.num_threads(1):
        assert torch.get_num_threads() == 1
        1 / 0  # noqa: B018
    assert torch.get_num_threads() == before


def test_deterministic_mode_repeats_and_can_be_turned_off():
    try:
        runtime.seed_everything(3, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        a = torch.randn(3)
        runtime.seed_everything(3, deterministic=True)
        assert torch.equal(a, torch.randn(3))
    finally:
        torch.use_deterministic_algorithms(False)
