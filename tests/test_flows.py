"""Tests of course_lib.flows and of the coupling-layer checker, against independent references.

References: autograd's Jacobian (torch.autograd.functional.jacobian) for log-determinants,
numerical integration on a grid for normalisation, scipy.stats for Gaussians, and closed-form
cases worked out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib import flows, training
from course_lib.toy_data import standard_normal_log_prob
from tests.test_toy_data import _grid_mass

# Small tensors: one thread is as fast, and much faster on a CPU shared with other jobs.
pytestmark = pytest.mark.usefixtures("one_thread")


def _randomize(module: torch.nn.Module, scale: float = 0.3, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (a new flow is the identity map, too easy to test)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))
    return module


def _random_flow(n_layers: int = 4, seed: int = 0) -> flows.RealNVP:
    return _randomize(flows.RealNVP(dim=2, n_layers=n_layers, hidden=16), seed=seed).double()


# ---------------------------------------------------------------------------------------
# Coupling layer and flow: log-determinants, inverses, normalisation
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
def test_coupling_log_det_matches_autograd_jacobian(mask):
    mask = torch.tensor(mask, dtype=torch.float64)
    layer = _randomize(flows.AffineCoupling(mask, hidden=8), scale=0.7).double()
    x = 1.5 * torch.randn(5, len(mask), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, log_det = layer(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[i])
        sign, logabsdet = torch.linalg.slogdet(jac)
        assert sign > 0  # exp(s) > 0: the layer preserves orientation
        assert torch.allclose(log_det[i], logabsdet, atol=1e-10), (log_det[i], logabsdet)
    assert log_det.abs().max() > 0.05  # the test is not trivial


def test_flow_log_det_matches_autograd_jacobian():
    flow = _random_flow(n_layers=5)
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, log_det = flow(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: flow(v.unsqueeze(0))[0].squeeze(0), x[i])
        assert torch.allclose(log_det[i], torch.linalg.slogdet(jac)[1], atol=1e-10)


def test_coupling_log_density_is_base_density_plus_jacobian_log_det():
    mask = torch.tensor([0.0, 1.0], dtype=torch.float64)
    layer = _randomize(flows.AffineCoupling(mask, hidden=8), scale=0.7, seed=3).double()
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    log_px, log_det = flows.coupling_log_density(x, mask, layer.conditioner)
    z, _ = layer(x)
    f64 = torch.float64
    base = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=f64), torch.eye(2, dtype=f64))
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[i])
        expected = base.log_prob(z[i]) + torch.linalg.slogdet(jac)[1]
        assert torch.allclose(log_px[i], expected, atol=1e-10)
        assert torch.allclose(log_det[i], torch.linalg.slogdet(jac)[1], atol=1e-10)


def test_coupling_layer_changes_only_masked_out_coordinates():
    mask = torch.tensor([1.0, 0.0, 1.0])
    layer = _randomize(flows.AffineCoupling(mask, hidden=8), scale=0.7)
    x = torch.randn(10, 3)
    z, _ = layer(x)
    assert torch.equal(z[:, [0, 2]], x[:, [0, 2]])
    assert not torch.allclose(z[:, 1], x[:, 1])


def test_flow_inverse_undoes_forward():
    flow = _random_flow(n_layers=6, seed=5)
    x = 2 * torch.randn(200, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    z, _ = flow(x)
    assert not torch.allclose(z, x, atol=1e-2)
    assert torch.allclose(flow.inverse(z), x, atol=1e-10)
    assert torch.allclose(flow(flow.inverse(x))[0], x, atol=1e-10)


def test_new_flow_is_the_identity_and_its_density_the_standard_normal():
    flow = flows.RealNVP(n_layers=4)
    x = torch.randn(50, 2)
    z, log_det = flow(x)
    assert torch.equal(z, x) and torch.equal(log_det, torch.zeros(50))
    expected = torch.tensor(stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(x.numpy()), dtype=torch.float32)
    assert torch.allclose(flow.log_prob(x), expected, atol=1e-5)


def test_flow_density_integrates_to_one():
    flow = _random_flow(n_layers=4, seed=7)
    assert abs(_grid_mass(flow.log_prob, 9.0, 400) - 1) < 5e-3


def test_flow_density_of_a_wrong_log_det_does_not_integrate_to_one():
    # The integration test can fail: flipping the log-determinant's sign breaks normalisation.
    flow = _random_flow(n_layers=4, seed=7)

    def wrong(x):
        z, log_det = flow(x)
        return standard_normal_log_prob(z) - log_det

    assert abs(_grid_mass(wrong, 9.0, 300) - 1) > 0.05


def test_flow_samples_follow_its_density():
    # Samples pushed through the inverse must land where log_prob puts the mass: compare the
    # fraction of samples in a box with the density's integral over that box.
    flow = _random_flow(n_layers=4, seed=8)
    samples = flow.sample(20000, seed=0)
    inside = ((samples[:, 0] > 0) & (samples[:, 1] > 0)).double().mean()
    h, n = 8.0 / 400, 400
    centres = h * (torch.arange(n, dtype=torch.float64) + 0.5)
    gx, gy = torch.meshgrid(centres, centres, indexing="ij")
    with torch.no_grad():
        mass = torch.exp(flow.log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1))).sum() * h * h
    assert abs(float(inside) - float(mass)) < 0.015


def test_train_flow_fits_a_gaussian_by_maximum_likelihood():
    # A correlated Gaussian is an affine push-forward of N(0, I): the flow can fit it exactly,
    # so its test NLL must approach the true entropy.
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([[1.5, 0.0], [0.8, 0.4]])
    mean = torch.tensor([1.0, -2.0])
    train_x = torch.randn(2048, 2, generator=g) @ a.T + mean
    test_x = torch.randn(2048, 2, generator=g) @ a.T + mean
    true = stats.multivariate_normal(mean.numpy(), (a @ a.T).numpy())
    true_nll = -true.logpdf(test_x.numpy()).mean()
    flow = flows.RealNVP(n_layers=4, hidden=16)
    history = flows.train_flow(flow, train_x, epochs=12, lr=1e-2, batch_size=256, device=torch.device("cpu"),
                             progress=False)
    flow_nll = -flow.log_prob(test_x).mean().item()
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert flow_nll - true_nll < 0.05, (flow_nll, true_nll)



def test_train_flow_goes_through_training_train_with_a_per_step_cosine_schedule(monkeypatch):
    calls, lrs = [], []
    real_train, real_step = training.train, torch.optim.Adam.step

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)

    def recording_step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    history = flows.train_flow(flows.RealNVP(n_layers=2, hidden=8), x, epochs=3, lr=0.01, batch_size=25,
                               device="cpu", progress=False)
    assert len(calls) == 1 and calls[0]["lr_schedule"] == "cosine" and calls[0]["amp"] is False
    assert len(history["train_loss"]) == 3
    # One step per batch (3 epochs x 4 batches), with lr(t) = lr (1 + cos(pi t / T)) / 2 from lr towards 0.
    expected = [0.01 * (1 + math.cos(math.pi * t / 12)) / 2 for t in range(12)]
    assert lrs == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------
# Argument checks: ValueError naming the argument
# ---------------------------------------------------------------------------------------

def _cond(x):
    return torch.zeros_like(x), torch.zeros_like(x)


@pytest.mark.parametrize(("call", "name"), [
    (lambda: flows.affine_coupling_forward(torch.zeros(3), torch.tensor([1.0, 0.0]), _cond), "x"),
    (lambda: flows.affine_coupling_forward(torch.zeros(3, 2), torch.tensor([1.0, 0.0, 0.0]), _cond), "mask"),
    (lambda: flows.affine_coupling_forward(torch.zeros(3, 2), torch.tensor([1.0, 1.0]), _cond), "mask"),
    (lambda: flows.affine_coupling_forward(torch.zeros(3, 2), torch.tensor([0.5, 0.0]), _cond), "mask"),
    (lambda: flows.affine_coupling_forward(torch.zeros(3, 2), torch.tensor([1.0, 0.0]),
                                           lambda x: (x[:, :1], x)), "conditioner"),
    (lambda: flows.affine_coupling_inverse(torch.zeros(3, 2), torch.tensor([1.0, 0.0]), "nope"), "conditioner"),
    (lambda: flows.affine_coupling_inverse(torch.zeros(3), torch.tensor([1.0, 0.0]), _cond), "z"),
    (lambda: flows.AffineCoupling(torch.tensor([1.0, 0.0]), max_log_scale=0.0), "max_log_scale"),
    (lambda: flows.AffineCoupling(torch.ones(2, 2)), "mask"),
    (lambda: flows.mlp(2, 2, hidden=0), "hidden"),
    (lambda: flows.RealNVP(dim=1), "dim"),
    (lambda: flows.RealNVP(n_layers=0), "n_layers"),
    (lambda: flows.RealNVP().log_prob(torch.zeros(4, 3)), "x"),
    (lambda: flows.RealNVP().inverse(torch.zeros(4, 3)), "z"),
    (lambda: flows.train_flow(flows.RealNVP(), torch.zeros(4, 2), epochs=0), "epochs"),
    (lambda: flows.train_flow(flows.RealNVP(), torch.zeros(4, 2), epochs=1, lr=-1.0), "lr"),
    (lambda: flows.train_flow(flows.RealNVP(), torch.zeros(4, 2), epochs=1, batch_size=0), "batch_size"),
    (lambda: flows.train_flow(flows.RealNVP(), torch.zeros(4, 3), epochs=1), "data"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()
