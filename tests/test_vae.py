"""Tests of course_lib.vae against independent references (torch.distributions, hand-computed values)."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest
import torch
from torch import distributions as D

from course_lib import likelihoods, vae
from course_lib.checkpoints import read_manifest
from course_lib.exercises import vae as ex
from course_lib.training import evaluate


def test_reparameterize_uses_std_and_given_eps():
    mu = torch.tensor([[1.0, -2.0, 0.0]])
    logvar = torch.log(torch.tensor([[4.0, 0.25, 1.0]]))
    eps = torch.tensor([[1.0, 2.0, -3.0]])
    assert torch.allclose(vae.reparameterize(mu, logvar, eps), torch.tensor([[3.0, -1.0, -3.0]]))


def test_reparameterize_has_the_right_distribution_and_gradients():
    torch.manual_seed(0)
    mu = torch.tensor([0.5, -1.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(9.0)], requires_grad=True)
    z = vae.reparameterize(mu.expand(200_000, 2), logvar.expand(200_000, 2))
    assert torch.allclose(z.mean(0), mu.detach(), atol=0.02)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 3.0]), rtol=0.01)
    z.mean(0).sum().backward()  # d mean(z) / d mu = 1: the sample is differentiable in mu
    assert torch.allclose(mu.grad, torch.ones(2))


def test_reparameterize_with_a_generator_is_reproducible_and_leaves_the_global_generator_alone():
    mu, logvar = torch.tensor([[1.0, -1.0, 0.5]]), torch.log(torch.tensor([[4.0, 1.0, 0.25]]))
    before = torch.get_rng_state()
    z = vae.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(5))
    assert torch.equal(before, torch.get_rng_state())
    eps = torch.randn(1, 3, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(z, mu + torch.tensor([[2.0, 1.0, 0.5]]) * eps)
    # without a generator: torch.randn_like(mu) from the global generator, as the exercise expects
    torch.manual_seed(9)
    z_global = vae.reparameterize(mu, logvar)
    torch.manual_seed(9)
    assert torch.equal(z_global, mu + torch.tensor([[2.0, 1.0, 0.5]]) * torch.randn_like(mu))


def test_reparameterize_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="logvar"):
        vae.reparameterize(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="eps"):
        vae.reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), eps=torch.zeros(3))


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu, logvar = (torch.randn(7, 5, generator=g, dtype=torch.float64) for _ in range(2))
    q = D.Independent(D.Normal(mu, (0.5 * logvar).exp()), 1)
    p = D.Independent(D.Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    expected = D.kl_divergence(q, p)
    assert vae.gaussian_kl(mu, logvar).shape == (7,)
    assert torch.allclose(vae.gaussian_kl(mu, logvar), expected, atol=1e-12)
    assert torch.allclose(vae.gaussian_kl_per_dim(mu, logvar).sum(1), expected, atol=1e-12)


def test_gaussian_kl_zero_at_prior_and_rejects_bad_shapes():
    assert torch.equal(vae.gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))
    with pytest.raises(ValueError, match="mu and logvar"):
        vae.gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        vae.gaussian_kl(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="logvar contains NaN or inf"):
        vae.gaussian_kl(torch.zeros(3, 2), torch.full((3, 2), float("nan")))
    with pytest.raises(ValueError, match="mu contains NaN or inf"):
        vae.gaussian_kl(torch.full((3, 2), float("inf")), torch.zeros(3, 2))


def test_gaussian_log_density_matches_torch():
    g = torch.Generator().manual_seed(2)
    z, mu, lv = (torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(3))
    expected = D.Normal(mu, (0.5 * lv).exp()).log_prob(z).sum(-1)
    assert torch.allclose(vae.gaussian_log_density(z, mu, lv), expected, atol=1e-12)


def test_iwae_bound_hand_computed_and_stable():
    log_w = torch.log(torch.tensor([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]]))
    assert torch.allclose(vae.iwae_bound(log_w), torch.log(torch.tensor([3.0, 2.0])))
    assert torch.allclose(vae.iwae_bound(log_w[:1]), log_w[0])  # k = 1: the ELBO sample itself
    shifted = vae.iwae_bound(log_w - 1000.0)  # real log-weights are around -1000 nats
    assert torch.allclose(shifted, torch.log(torch.tensor([3.0, 2.0])) - 1000.0)
    with pytest.raises(ValueError, match="log_w"):
        vae.iwae_bound(torch.zeros(5))


def test_iwae_bound_k_catches_a_transposed_log_w():
    log_w = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))  # k = 10 samples of N = 3 examples
    assert torch.equal(vae.iwae_bound(log_w, k=10), vae.iwae_bound(log_w))
    with pytest.raises(ValueError, match=r"log_w has shape \(3, 10\): the k = 10 samples run along dim 1.*log_w\.T"):
        vae.iwae_bound(log_w.T, k=10)
    with pytest.raises(ValueError, match=r"log_w must have shape \(k, N\) with k = 4, got \(10, 3\)"):
        vae.iwae_bound(log_w, k=4)
    with pytest.raises(ValueError, match="k must be a positive int"):
        vae.iwae_bound(log_w, k=0)
    with pytest.raises(ValueError, match="log_w must be a floating tensor"):
        vae.iwae_bound(torch.zeros(2, 3, dtype=torch.long))


def test_active_units_counts_variance_above_threshold():
    g = torch.Generator().manual_seed(5)
    mu = torch.cat([torch.randn(1000, 2, generator=g), 0.05 * torch.randn(1000, 3, generator=g)], dim=1)
    count, variances = vae.active_units(mu)
    assert count == 2 and variances.shape == (5,)
    assert torch.allclose(variances, mu.var(0))
    with pytest.raises(ValueError, match="mu"):
        vae.active_units(torch.zeros(1, 3))


@pytest.mark.parametrize("cls", [vae.ConvVAE, vae.MLPVAE])
@pytest.mark.parametrize("likelihood", likelihoods.LIKELIHOODS)
def test_models_shapes_and_objective(cls, likelihood):
    torch.manual_seed(0)
    model = cls(latent_dim=3, likelihood=likelihood)
    x = torch.rand(4, 1, 28, 28)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, 3)
    assert model(x).shape == x.shape and model.sample(5).shape == (5, 1, 28, 28)
    assert 0 <= model(x).min() and model(x).max() <= 1
    terms = vae.ELBOObjective(binarize=likelihood == "bernoulli")(model, x)
    assert set(terms) == {"loss", "recon", "kl"}
    assert torch.allclose(terms["loss"], terms["recon"] + terms["kl"])
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="x must have shape"):
        model.encode(torch.rand(4, 784))
    with pytest.raises(ValueError, match="z must have shape"):
        model.decode(torch.rand(4, 5))


def test_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="likelihood"):
        vae.ConvVAE(2, likelihood="poisson")
    with pytest.raises(ValueError, match="latent_dim"):
        vae.MLPVAE(0)
    with pytest.raises(ValueError, match="beta"):
        vae.ELBOObjective(beta=-1.0)
    with pytest.raises(ValueError, match="free_bits"):
        vae.ELBOObjective(free_bits=-0.1)


def test_objective_terms_are_the_per_image_sums_averaged_over_the_batch():
    torch.manual_seed(0)
    model = vae.MLPVAE(latent_dim=2, hidden=16)
    x = likelihoods.binarize(torch.rand(6, 1, 28, 28))
    torch.manual_seed(1)
    terms = vae.ELBOObjective(beta=0.5)(model, x)
    torch.manual_seed(1)
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    recon = D.Bernoulli(logits=model.decoder_output(z)).log_prob(x).flatten(1).sum(1)
    kl = D.kl_divergence(D.Normal(mu, (0.5 * logvar).exp()), D.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(terms["recon"], -recon.mean(), rtol=1e-5)
    assert torch.allclose(terms["kl"], kl.mean(), rtol=1e-5)
    assert torch.allclose(terms["loss"], -recon.mean() + 0.5 * kl.mean(), rtol=1e-5)
    loss = vae.negative_elbo(model.decoder_output(z), x, mu, logvar)
    assert torch.allclose(loss, -recon.mean() + kl.mean(), rtol=1e-5)


def test_free_bits_floors_each_dimension():
    model = vae.MLPVAE(latent_dim=4, hidden=8)
    with torch.no_grad():  # an encoder that outputs the prior exactly: KL = 0 in every dimension
        for p in model.encoder.parameters():
            p.zero_()
    x = torch.rand(3, 1, 28, 28)
    terms = vae.ELBOObjective(free_bits=0.25)(model, likelihoods.binarize(x))
    assert terms["kl"].item() == 0.0
    assert torch.allclose(terms["loss"], terms["recon"] + 4 * 0.25)


def test_iwae_log_likelihood_chunks_agree_and_iwae_k1_is_elbo():
    torch.manual_seed(0)
    model = vae.MLPVAE(latent_dim=2, hidden=16).eval()
    x = likelihoods.binarize(torch.rand(5, 1, 28, 28), torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    whole = vae.iwae_bound(vae.log_importance_weights(model, x, 12))
    torch.manual_seed(1)
    chunked = vae.iwae_log_likelihood(model, x, k=12, max_images=60)  # 5 images x 12 samples in one go
    assert torch.allclose(whole, chunked, atol=1e-5)
    torch.manual_seed(2)
    chunked_small = vae.iwae_log_likelihood(model, x, k=12, max_images=5)
    assert chunked_small.shape == (5,)
    torch.manual_seed(3)
    mc_elbo = vae.log_importance_weights(model, x, 4000).mean(0)  # the mean log-weight is the ELBO
    with torch.no_grad():
        mu, logvar = model.encode(x)
        z = vae.reparameterize(mu.expand(4000, 5, 2), logvar.expand(4000, 5, 2)).reshape(-1, 2)
        log_px_z = D.Bernoulli(logits=model.decoder_output(z)).log_prob(x.repeat(4000, 1, 1, 1)).flatten(1).sum(1)
        kl = D.kl_divergence(D.Normal(mu, (0.5 * logvar).exp()), D.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(mc_elbo, log_px_z.view(4000, 5).mean(0) - kl, atol=0.3)


def _trained_model():
    name = "vae_conv_latent16"
    if name not in read_manifest():
        pytest.skip(f"checkpoint {name} not trained yet")
    from course_lib.checkpoints import load_pretrained

    return load_pretrained(name)[0]


def test_iwae_bound_increases_with_k_on_a_trained_model():
    from course_lib.data import load_fashion_mnist

    model = _trained_model()
    x = likelihoods.binarize(load_fashion_mnist("test", subset=64)[0], torch.Generator().manual_seed(0))
    means = []
    for k in (1, 10, 100):
        torch.manual_seed(k)
        means.append(vae.iwae_log_likelihood(model, x, k=k).mean().item())
    assert means[0] < means[1] < means[2]
    assert means[2] - means[0] < 30  # a few nats per image, not a bug-sized jump


# --------------------------------------------------------------------------- checkers

CHECKERS = [ex.check_reparameterize, ex.check_gaussian_kl, ex.check_negative_elbo, ex.check_iwae_bound]
REFERENCES = {
    ex.check_reparameterize: vae.reparameterize,
    ex.check_gaussian_kl: vae.gaussian_kl,
    ex.check_negative_elbo: vae.negative_elbo,
    ex.check_iwae_bound: vae.iwae_bound,
}


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.name.split(",")[0])
def test_checker_passes_the_reference(checker):
    assert checker.grade(REFERENCES[checker]).status == "correct"


@pytest.mark.parametrize(
    ("checker", "index"),
    [(c, i) for c in CHECKERS for i in range(len(c.mistakes))],
    ids=lambda v: v.name.split(",")[0] if hasattr(v, "name") else str(v),
)
def test_checker_names_each_mistake(checker, index):
    mistake = checker.mistakes[index]
    verdict = checker.grade(mistake.wrong)
    assert verdict.status == "wrong"
    assert mistake.hint in verdict.message


def test_checkers_report_stub_and_crash():
    def stub(*args):
        raise NotImplementedError

    for checker in CHECKERS:
        assert checker.grade(stub).status == "not_done"
        assert checker.grade(lambda *a: 1 / 0).status == "error"


def test_checkers_return_a_function_with_the_exercise_signature(capsys):
    def stub(*args):
        raise NotImplementedError

    fallback = ex.check_reparameterize(stub)
    assert fallback is vae.reparameterize and "[not done yet]" in capsys.readouterr().out
    mine = lambda mu, logvar: mu + (0.5 * logvar).exp() * torch.randn_like(mu)  # noqa: E731
    assert ex.check_reparameterize(mine) is mine
    assert ex.check_iwae_bound(stub) is vae.iwae_bound


def test_reparameterize_checker_accepts_equivalent_ways_to_draw_eps():
    assert ex.check_reparameterize.grade(lambda mu, lv: mu + (0.5 * lv).exp() * torch.randn(mu.shape)).passed
    assert ex.check_reparameterize.grade(lambda mu, lv: D.Normal(mu, (0.5 * lv).exp()).rsample()).passed
    assert ex.check_reparameterize.grade(lambda mu, lv: mu + lv.exp().sqrt() * torch.randn_like(mu)).passed


# --------------------------------------------------------------------------- autoregressive decoder


def test_pixelcnn_decoder_is_causal_by_gradients():
    torch.manual_seed(0)
    model = vae.PixelCNNVAE(latent_dim=2, hidden=8, reach=2, channels=4, blocks=1)
    x = torch.rand(1, 1, 28, 28, requires_grad=True)
    logits = model.autoregressive_logits(torch.zeros(1, 2), x)
    order = torch.arange(784).reshape(28, 28)
    for i, j in [(0, 0), (0, 5), (3, 0), (10, 13), (27, 27)]:
        (grad,) = torch.autograd.grad(logits[0, 0, i, j], x, retain_graph=True)
        seen = grad[0, 0].abs() > 0
        assert not seen[order >= 28 * i + j].any(), f"pixel {(i, j)} sees itself or the future"
        # reach 2, one block: rows i-3 .. i, columns j-3 .. j+3 (within the image), before (i, j)
        if i >= 3 and 3 <= j <= 24:
            assert seen[i - 1, j] and seen[i, j - 1] and seen[i - 3, j + 3], f"pixel {(i, j)} misses its context"


def test_pixelcnn_log_likelihood_is_the_sum_of_sequential_conditionals():
    torch.manual_seed(1)
    model = vae.PixelCNNVAE(latent_dim=3, hidden=8, reach=2, channels=4, blocks=1).eval()
    z = torch.randn(2, 3)
    x = likelihoods.binarize(torch.rand(2, 1, 28, 28), torch.Generator().manual_seed(0))
    by_hand = torch.zeros(2)
    for k, (i, j) in enumerate((i, j) for i in range(28) for j in range(28)):
        visible = torch.zeros_like(x).flatten(2)
        visible[..., :k] = x.flatten(2)[..., :k]  # only x_<i is known when pixel i is drawn
        logit = model.autoregressive_logits(z, visible.view_as(x))[:, 0, i, j]
        p = torch.sigmoid(logit)
        by_hand += torch.where(x[:, 0, i, j] > 0, p, 1 - p).log()
    assert torch.allclose(model.log_likelihood_at(z, x), by_hand, atol=1e-3)


def test_pixelcnn_vae_with_reach_0_is_the_mlp_vae():
    torch.manual_seed(2)
    mlp = vae.MLPVAE(latent_dim=4, hidden=16)
    pixel = vae.PixelCNNVAE(latent_dim=4, hidden=16, reach=0)
    pixel.load_state_dict(mlp.state_dict())
    x = likelihoods.binarize(torch.rand(3, 1, 28, 28), torch.Generator().manual_seed(1))
    z = torch.randn(3, 4)
    assert torch.allclose(pixel.log_likelihood_at(z, x), likelihoods.bernoulli_log_likelihood(mlp.decoder_output(z), x))
    torch.manual_seed(5)
    a = vae.ELBOObjective()(pixel, x)
    torch.manual_seed(5)
    b = vae.ELBOObjective()(mlp, x)
    assert torch.allclose(a["loss"], b["loss"])


def test_pixelcnn_sampling_and_errors():
    torch.manual_seed(3)
    model = vae.PixelCNNVAE(latent_dim=2, hidden=8, reach=1, channels=4, blocks=1)
    x = model.sample(2, generator=torch.Generator().manual_seed(0), steps=40)
    assert x.shape == (2, 1, 28, 28) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert (x.flatten(1)[:, 40:] == 0).all()  # only the first 40 pixels were drawn
    with pytest.raises(ValueError, match="reach"):
        vae.PixelCNNVAE(reach=-1)
    with pytest.raises(NotImplementedError, match="sample_given"):
        model.decode(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="x must have shape"):
        model.autoregressive_logits(torch.zeros(1, 2), torch.zeros(1, 1, 14, 14))


# --------------------------------------------------------------------------- randomness, bad inputs, imports

def _evaluate_vae_by_global_seeding(model, x, k, n_iwae, batch_size=500):
    """What evaluate_vae computed before it had its own generators: torch.manual_seed(0) before each estimate."""
    model.eval()
    torch.manual_seed(0)
    terms = evaluate(model, vae.ELBOObjective(), x, batch_size=batch_size)
    torch.manual_seed(0)
    iwae = vae.iwae_log_likelihood(model, x[:n_iwae], k=k)
    torch.manual_seed(0)
    sub = evaluate(model, vae.ELBOObjective(), x[:n_iwae], batch_size=batch_size)
    return terms["recon"] + terms["kl"], float(-iwae.mean()), sub["recon"] + sub["kl"]


def test_evaluate_vae_uses_its_own_generators():
    torch.manual_seed(0)
    model = vae.MLPVAE(latent_dim=3, hidden=16)
    x = likelihoods.binarize(torch.rand(7, 1, 28, 28), torch.Generator().manual_seed(0))
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    metrics = vae.evaluate_vae(model, x, k=6, n_iwae=4, batch_size=3)
    assert torch.equal(before, torch.get_rng_state()), "evaluate_vae changed the global random state"
    assert model.training, "evaluate_vae must restore the model's mode"
    # on the CPU, a generator seeded with 0 draws what the global generator draws after torch.manual_seed(0)
    neg_elbo, iwae_nll, neg_elbo_sub = _evaluate_vae_by_global_seeding(model, x, k=6, n_iwae=4, batch_size=3)
    assert metrics["neg_elbo"] == neg_elbo and metrics["iwae_nll"] == iwae_nll
    assert metrics["neg_elbo_iwae_images"] == neg_elbo_sub
    again = vae.evaluate_vae(model, x, k=6, n_iwae=4, batch_size=3)
    assert again == metrics
    other = vae.evaluate_vae(model, x, k=6, n_iwae=4, batch_size=3, seed=1)
    assert other["iwae_nll"] != metrics["iwae_nll"]  # the seed is what fixes the noise
    with pytest.raises(ValueError, match="n_iwae must be a positive int"):
        vae.evaluate_vae(model, x, k=6, n_iwae=0)


def test_elbo_objective_with_a_generator_is_reproducible():
    torch.manual_seed(0)
    model = vae.MLPVAE(latent_dim=2, hidden=8)
    x = torch.rand(5, 1, 28, 28)
    before = torch.get_rng_state()
    runs = [vae.ELBOObjective(binarize=True, generator=torch.Generator().manual_seed(3))(model, x) for _ in range(2)]
    assert torch.equal(before, torch.get_rng_state())
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])


def test_reparameterize_checker_leaves_the_notebooks_random_state_alone():
    def stub(mu, logvar):
        raise NotImplementedError

    answers = [vae.reparameterize, ex.check_reparameterize.mistakes[0].wrong, stub,
               lambda mu, logvar: mu + (0.5 * logvar).exp() * torch.randn(mu.shape)]
    for answer in answers:
        torch.manual_seed(123)
        expected_next = torch.rand(3)
        torch.manual_seed(123)
        ex.check_reparameterize.grade(answer)
        assert torch.equal(torch.rand(3), expected_next), f"checking {answer} changed the global random state"


def test_negative_elbo_warns_on_grey_levels_only():
    logits, mu, logvar = torch.zeros(2, 4), torch.zeros(2, 1), torch.zeros(2, 1)
    with pytest.warns(UserWarning, match="x has grey levels.*binarize"):
        vae.negative_elbo(logits, torch.full((2, 4), 0.3), mu, logvar)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # binary targets, and the checker's own cases, are silent
        vae.negative_elbo(logits, (torch.rand(2, 4) < 0.5).float(), mu, logvar)
        assert ex.check_negative_elbo.grade(vae.negative_elbo).passed
    with pytest.raises(ValueError, match="logits and x must have the same shape"):
        vae.negative_elbo(logits, torch.zeros(2, 5), mu, logvar)


def test_encode_checks_the_images():
    model = vae.MLPVAE(latent_dim=2, hidden=8)
    with pytest.raises(ValueError, match=r"x has values in \[2, 2\], outside \[0, 1\]"):
        model.encode(torch.full((2, 1, 28, 28), 2.0))
    with pytest.raises(ValueError, match="x must have a floating dtype"):
        model.encode(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="n must be a positive int"):
        model.sample(0)


def test_vae_does_not_import_vq():
    code = "import sys, course_lib.vae; assert 'course_lib.vq' not in sys.modules, 'course_lib.vae imports vq'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- shipped checkpoints

@pytest.mark.parametrize("name", ["vae_conv_latent16", "vae_mlp_baseline"])
def test_shipped_vae_repeats_its_recorded_subset_evaluation(name, fashion_mnist_available):
    """Reload the shipped file and repeat the small evaluation the training script recorded right after
    training (evaluate_vae on the first test images, fixed binarization, seeded noise): a retrained file
    without a new manifest entry, or an evaluation that changed, gives other numbers."""
    from course_lib.checkpoints import load_pretrained
    from course_lib.data import load_fashion_mnist

    entry = read_manifest().get(name)
    if entry is None or "subset_check" not in entry["metrics"]:
        pytest.skip(f"{name} has no recorded subset evaluation yet")
    check = entry["metrics"]["subset_check"]
    model, _ = load_pretrained(name)
    x = load_fashion_mnist("test")[0]
    x_bin = likelihoods.binarize(x, torch.Generator().manual_seed(entry["recipe"]["test_binarization_seed"]))
    metrics = vae.evaluate_vae(model, x_bin[:check["images"]], k=check["k"], seed=check["seed"])
    assert metrics["neg_elbo"] == pytest.approx(check["neg_elbo"], abs=0.02)
    assert metrics["iwae_nll"] == pytest.approx(check["iwae_nll"], abs=0.02)
    assert metrics["iwae_nll"] < metrics["neg_elbo"]


def test_shipped_mlp_baseline_is_the_pytorch_examples_vae(fashion_mnist_available):
    """The baseline is pytorch/examples' VAE (vae/main.py): 784-400-(20, 20) encoder, 20-400-784 decoder,
    loss BCE(sum) + KLD. Its weights, put into that reference model, give the same loss for the same noise."""
    from torch import nn
    from torch.nn import functional as F

    from course_lib.checkpoints import load_pretrained
    from course_lib.data import load_fashion_mnist

    if "vae_mlp_baseline" not in read_manifest():
        pytest.skip("vae_mlp_baseline not trained yet")
    model, ckpt = load_pretrained("vae_mlp_baseline")
    recipe = read_manifest()["vae_mlp_baseline"]["recipe"]
    assert (recipe["epochs"], recipe["lr"], recipe["batch_size"]) == (20, 1e-3, 128)
    assert recipe["dynamic_binarization"] and "lr_schedule" not in recipe

    class ExamplesVAE(nn.Module):  # pytorch/examples, vae/main.py
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def forward(self, x, eps):
            h1 = F.relu(self.fc1(x.view(-1, 784)))
            mu, logvar = self.fc21(h1), self.fc22(h1)
            z = mu + eps * torch.exp(0.5 * logvar)
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    ref = ExamplesVAE()
    sd = ckpt["state_dict"]
    with torch.no_grad():
        for mine, theirs in (("encoder.1", ref.fc1), ("decoder.0", ref.fc3), ("decoder.2", ref.fc4)):
            theirs.weight.copy_(sd[f"{mine}.weight"])
            theirs.bias.copy_(sd[f"{mine}.bias"])
        for half, theirs in ((slice(0, 20), ref.fc21), (slice(20, 40), ref.fc22)):
            theirs.weight.copy_(sd["encoder.3.weight"][half])
            theirs.bias.copy_(sd["encoder.3.bias"][half])
    x = likelihoods.binarize(load_fashion_mnist("test", subset=64)[0], torch.Generator().manual_seed(0))
    with torch.no_grad():
        recon_x, mu, logvar = ref(x, torch.randn(64, 20, generator=torch.Generator().manual_seed(3)))
        bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        terms = vae.ELBOObjective(generator=torch.Generator().manual_seed(3))(model, x)
    assert float(terms["recon"] + terms["kl"]) == pytest.approx(float(bce + kld) / 64, rel=1e-4)
