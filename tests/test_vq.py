"""Tests of course_lib.vq against independent references: brute force loops, hand-computed cases, autograd."""

import math

import pytest
import torch

from course_lib import pixelcnn, vq
from course_lib.exercises import vq as vq_exercises


# --------------------------------------------------------------------------- quantization
def brute_force_nearest(z, codebook):
    out = []
    for vector in z.reshape(-1, z.shape[-1]):
        best, best_d = None, math.inf
        for k, code in enumerate(codebook):
            d = sum((float(a) - float(b)) ** 2 for a, b in zip(vector, code, strict=True))
            if d < best_d:
                best, best_d = k, d
        out.append(best)
    return torch.tensor(out).reshape(z.shape[:-1])


@pytest.mark.parametrize("shape, k", [((20, 3), 7), ((2, 7, 7, 4), 16), ((5, 1), 4)])
def test_quantize_returns_the_true_nearest_code(shape, k):
    g = torch.Generator().manual_seed(k)
    codebook = torch.randn(k, shape[-1], generator=g) * torch.rand(k, 1, generator=g).mul(3)
    z = torch.randn(shape, generator=g)
    z_q, idx = vq.quantize(z, codebook)
    expected = brute_force_nearest(z, codebook)
    assert torch.equal(idx, expected)
    assert torch.allclose(z_q, codebook[expected], atol=1e-6)  # z_e + (e - z_e) rounds


def test_quantize_hand_case_where_dot_product_disagrees():
    codebook = torch.tensor([[1.0, 0.0], [10.0, 0.0]])
    # z.e is largest for the long code, but the short one is nearer
    assert vq.nearest_code(torch.tensor([[1.5, 0.0]]), codebook).tolist() == [0]


def test_straight_through_forward_is_e_and_gradient_passes_unchanged():
    z_e = torch.randn(3, 7, 7, 4, requires_grad=True)
    codebook = torch.randn(10, 4, requires_grad=True)
    z_q, idx = vq.quantize(z_e, codebook)
    assert torch.allclose(z_q.detach(), codebook[idx].detach(), atol=1e-6)
    upstream = torch.randn_like(z_q)
    (z_q * upstream).sum().backward()
    assert torch.equal(z_e.grad, upstream)  # identity Jacobian: the decoder's gradient, unchanged
    assert codebook.grad is None or torch.count_nonzero(codebook.grad) == 0


# --------------------------------------------------------------------------- the VQ loss
def test_codebook_loss_moves_only_the_codebook_and_commitment_only_the_encoder():
    z_e = torch.randn(4, 5, 3, requires_grad=True)
    codebook = torch.randn(6, 3, requires_grad=True)
    _, idx = vq.quantize(z_e, codebook)
    codebook_term, commitment_term = vq.vq_loss_terms(z_e, codebook[idx])
    codebook_term.backward()
    assert z_e.grad is None and codebook.grad is not None and codebook.grad.abs().sum() > 0
    codebook.grad = None
    commitment_term.backward()
    assert codebook.grad is None and z_e.grad.abs().sum() > 0


def test_vq_loss_value_and_gradients_against_formula():
    z_e = torch.randn(3, 4, 2, requires_grad=True)
    e = torch.randn(3, 4, 2, requires_grad=True)
    beta = 0.25
    loss = vq.vq_loss(z_e, e, beta)
    loss.backward()
    n = z_e.shape[0]
    diff = (z_e - e).detach()
    assert torch.allclose(loss, (1 + beta) * diff.pow(2).sum() / n)
    assert torch.allclose(z_e.grad, beta * 2 * diff / n)  # the commitment term only
    assert torch.allclose(e.grad, -2 * diff / n)  # the codebook term only


def test_vq_loss_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="beta"):
        vq.vq_loss(torch.zeros(2, 3), torch.zeros(2, 3), beta=-1.0)
    with pytest.raises(ValueError, match="z_e and e"):
        vq.vq_loss(torch.zeros(2, 3), torch.zeros(2, 4))


def test_quantize_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="codebook"):
        vq.quantize(torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="z_e"):
        vq.quantize(torch.zeros(2, 4), torch.zeros(5, 3))


# --------------------------------------------------------------------------- perplexity
def test_perplexity_uniform_single_and_hand_case():
    assert torch.isclose(vq.perplexity(torch.arange(16).repeat(3), 16), torch.tensor(16.0))
    assert torch.isclose(vq.perplexity(torch.full((10,), 3), 16), torch.tensor(1.0))
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2 nats, perplexity 2**1.5
    assert torch.isclose(vq.perplexity(torch.tensor([0, 0, 1, 2]), 8), torch.tensor(2**1.5))


def test_perplexity_and_dead_codes_bad_input():
    with pytest.raises(ValueError, match="num_codes"):
        vq.perplexity(torch.tensor([0, 1]), 0)
    with pytest.raises(ValueError, match="indices"):
        vq.perplexity(torch.tensor([0, 9]), 4)
    with pytest.raises(ValueError, match="indices"):
        vq.perplexity(torch.tensor([0.0, 1.0]), 4)
    assert vq.dead_codes(torch.tensor([0, 0, 3]), 5) == 3


# --------------------------------------------------------------------------- codebook updates
def test_ema_update_matches_a_hand_computed_step():
    quantizer = vq.VectorQuantizer(num_codes=2, code_dim=1, mode="ema", decay=0.5, eps=0.0)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0], [4.0]]))
        quantizer.ema_sum.copy_(torch.tensor([[0.0], [4.0]]))
    z = torch.tensor([[0.0], [1.0], [3.0]])  # codes 0, 0, 1
    quantizer.train()
    _, idx, _ = quantizer(z)
    assert idx.tolist() == [0, 0, 1]
    # N = 0.5 * [1, 1] + 0.5 * [2, 1] = [1.5, 1]; m = 0.5 * [0, 4] + 0.5 * [0 + 1, 3] = [0.5, 3.5]
    assert torch.allclose(quantizer.ema_count, torch.tensor([1.5, 1.0]))
    assert torch.allclose(quantizer.codebook, torch.tensor([[0.5 / 1.5], [3.5]]))
    quantizer.eval()  # no update in eval mode
    before = quantizer.codebook.clone()
    quantizer(z)
    assert torch.equal(quantizer.codebook, before)


def test_ema_laplace_smoothing_keeps_a_dead_code_finite():
    # A code whose EMA count has decayed to 0 (and its sum with it): without smoothing e = 0 / 0 = nan.
    quantizer = vq.VectorQuantizer(num_codes=3, code_dim=1, mode="ema", decay=0.5, eps=0.1)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[1.0], [3.0], [100.0]]))
        quantizer.ema_count.copy_(torch.tensor([2.0, 1.0, 0.0]))
        quantizer.ema_sum.copy_(torch.tensor([[2.0], [3.0], [0.0]]))
    z = torch.tensor([[0.5], [1.5], [3.5]])  # codes 0, 0, 1; code 2 stays dead
    quantizer.train()
    _, idx, _ = quantizer(z)
    assert idx.tolist() == [0, 0, 1]
    # N = 0.5 [2, 1, 0] + 0.5 [2, 1, 0] = [2, 1, 0], n = 3; m = 0.5 [2, 3, 0] + 0.5 [0.5 + 1.5, 3.5, 0] = [2, 3.25, 0]
    # smoothed N = (N + eps) / (n + K eps) * n = [2.1, 1.1, 0.1] * 3 / 3.3 = [21/11, 1, 1/11]
    # e = m / smoothed N = [2 * 11/21, 3.25, 0]   (without smoothing: [1, 3.25, nan])
    assert torch.allclose(quantizer.ema_count, torch.tensor([2.0, 1.0, 0.0]))
    assert torch.isfinite(quantizer.codebook).all()
    assert torch.allclose(quantizer.codebook, torch.tensor([[22 / 21], [3.25], [0.0]]), atol=1e-6)


def test_nearest_code_under_bf16_autocast_is_the_float32_brute_force_nearest():
    g = torch.Generator().manual_seed(0)
    # large vectors, codes 0.3 apart: ||z||^2 ~ 256 rounds to steps of 2 in bfloat16, far above the
    # differences between the distances to neighbouring codes
    codebook = 8.0 + 0.3 * torch.randn(32, 4, generator=g)
    z = 8.0 + 0.3 * torch.randn(200, 4, generator=g)
    distances = (z.double()[:, None, :] - codebook.double()).pow(2).sum(-1).sort(dim=1).values
    z = z[distances[:, 1] - distances[:, 0] > 1e-3]  # drop near-ties, which float32's round-off (~1e-4) may flip
    assert len(z) > 150
    expected = brute_force_nearest(z, codebook)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = vq.nearest_code(z, codebook)
        z_q, idx = vq.quantize(z, codebook)
        # the same formula, left to autocast, is wrong: the test can fail
        bf16 = (z.pow(2).sum(1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(1)).argmin(1)
    assert torch.equal(got, expected) and torch.equal(idx, expected)
    assert (bf16 != expected).sum() > 10
    assert z_q.dtype == torch.float32
    # a bfloat16 encoder output gets the nearest code of its own (rounded) value
    z_bf16 = z.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(vq.nearest_code(z_bf16, codebook), brute_force_nearest(z_bf16.float(), codebook))


def test_ema_statistics_under_bf16_autocast_stay_float32_and_exact():
    g = torch.Generator().manual_seed(1)
    init = vq.VectorQuantizer(num_codes=8, code_dim=3, mode="ema", decay=0.9)
    z = 3.14159 + 0.01 * torch.randn(4, 50, 3, generator=g)  # values bfloat16 cannot hold to 1e-2 relative
    quantizers = {}
    for autocast in (False, True):
        quantizer = vq.VectorQuantizer(num_codes=8, code_dim=3, mode="ema", decay=0.9)
        quantizer.load_state_dict(init.state_dict())
        with torch.no_grad():  # spread the codes over the data so that several are used
            quantizer.codebook.copy_(z.reshape(-1, 3)[:8])
        quantizer.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            for _ in range(3):
                quantizer(z)
        quantizers[autocast] = quantizer
    for name in ("codebook", "ema_count", "ema_sum"):
        plain, mixed = getattr(quantizers[False], name), getattr(quantizers[True], name)
        assert mixed.dtype == torch.float32, name
        assert torch.equal(mixed, plain), f"{name} differs under autocast"
    # the sums themselves, left to autocast, would not be exact: the test can fail
    one_hot = torch.nn.functional.one_hot(vq.nearest_code(z, quantizers[False].codebook).reshape(-1), 8).float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sums_bf16 = one_hot.T @ z.reshape(-1, 3)
    assert not torch.equal(sums_bf16.float(), one_hot.T @ z.reshape(-1, 3))


def test_ema_codebook_has_no_gradient_and_plain_codebook_has_one():
    z = torch.randn(8, 3)
    ema = vq.VectorQuantizer(4, 3, mode="ema")
    assert not any(p is ema.codebook for p in ema.parameters())
    _, _, terms = ema(z)
    assert not terms["codebook"].requires_grad
    plain = vq.VectorQuantizer(4, 3)
    _, _, terms = plain(z)
    terms["codebook"].backward()
    assert plain.codebook.grad is not None


def test_dead_code_restart_revives_unused_codes():
    torch.manual_seed(0)
    quantizer = vq.VectorQuantizer(num_codes=4, code_dim=2, restart_after=3)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [0.1, 0.0], [100.0, 100.0], [-100.0, 50.0]]))
    z = torch.randn(64, 2) * 0.5
    quantizer.train()
    for step in range(3):
        _, idx, _ = quantizer(z)
        if step < 2:
            assert vq.dead_codes(idx, 4) == 2 and quantizer.codebook[2, 0] == 100.0
    # after 3 unused steps, codes 2 and 3 sit on encoder outputs of the batch and get used
    for k in (2, 3):
        assert (quantizer.codebook[k].detach() - z).abs().sum(1).min() == 0
    _, idx, _ = quantizer(z)
    assert vq.dead_codes(idx, 4) < 2


def test_vector_quantizer_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        vq.VectorQuantizer(4, 2, mode="kmeans")
    with pytest.raises(ValueError, match="num_codes"):
        vq.VectorQuantizer(0, 2)
    with pytest.raises(ValueError, match="restart_after"):
        vq.VectorQuantizer(4, 2, restart_after=-1)
    with pytest.raises(ValueError, match="eps must be a number >= 0"):
        vq.VectorQuantizer(4, 2, mode="ema", eps=-1.0)
    with pytest.raises(ValueError, match="decay must be a number in"):
        vq.VectorQuantizer(4, 2, mode="ema", decay=1.0)
    with pytest.raises(ValueError, match=r"x has values in .* outside \[0, 1\]"):
        vq.VQVAE(num_codes=4, code_dim=2, channels=4).encode(torch.full((1, 1, 28, 28), -1.0))


# --------------------------------------------------------------------------- the VQ-VAE
def test_vqvae_objective_terms_and_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = vq.VQVAE(num_codes=16, code_dim=8, channels=8)
    x = torch.rand(8, 1, 28, 28)
    terms = vq.vqvae_loss(model, x)
    assert set(terms) == {"loss", "recon", "codebook", "commitment", "perplexity"}
    assert 1 <= terms["perplexity"] <= 16
    assert torch.isclose(terms["loss"], terms["recon"] + terms["codebook"] + 0.25 * terms["commitment"])
    first = terms["loss"].item()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(10):
        loss = vq.vqvae_loss(model, x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
    assert torch.allclose(model.decode_indices(model.encode_indices(x)), model.eval()(x), atol=1e-5)


# --------------------------------------------------------------------------- the checkers
CHECKERS = [vq_exercises.check_quantize, vq_exercises.check_straight_through, vq_exercises.check_vq_loss,
            vq_exercises.check_perplexity]


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.name.split(",")[0])
def test_checker_passes_reference_and_names_each_mistake(checker):
    assert checker.grade(checker.reference).passed
    for mistake in checker.mistakes:
        verdict = checker.grade(mistake.wrong)
        assert verdict.status == "wrong" and mistake.hint in verdict.message, (mistake.hint, verdict.message)


def test_checkers_accept_student_style_solutions_and_report_stubs():
    def my_straight_through(z_e, e):
        return z_e + (e - z_e).detach()

    def my_vq_loss(z_e, e, beta):
        codebook = ((z_e.detach() - e) ** 2).flatten(1).sum(1).mean()
        commitment = ((z_e - e.detach()) ** 2).flatten(1).sum(1).mean()
        return codebook + beta * commitment

    def stub(*args):
        raise NotImplementedError

    assert vq_exercises.check_straight_through.grade(my_straight_through).passed
    assert vq_exercises.check_vq_loss.grade(my_vq_loss).passed
    for checker in CHECKERS:
        assert checker.grade(stub).status == "not_done"
        assert checker.grade(lambda *a: None).status == "not_done"


def test_shipped_prior_models_the_shipped_vqvaes_codes(fashion_mnist_available):
    """The prior must have been trained on the codes of the VQ-VAE it is shipped with: its NLL on that
    VQ-VAE's test codes is the one the manifest recorded (a prior trained on another VQ-VAE's codes
    scores about three times worse)."""
    from course_lib.checkpoints import load_pretrained, read_manifest
    from course_lib.data import load_fashion_mnist

    entry = read_manifest()["vq_prior_k64"]
    prior, _ = load_pretrained("vq_prior_k64")
    assert isinstance(prior, pixelcnn.CodePrior)
    vqvae, _ = load_pretrained(entry["recipe"]["vqvae"])
    codes = vq.encode_indices_dataset(vqvae, load_fashion_mnist("test")[0])
    with torch.no_grad():
        nll = torch.cat([pixelcnn.prior_nll(prior, codes[s:s + 1000]) for s in range(0, len(codes), 1000)]).mean()
    recorded = entry["metrics"]["test_nll_nats_per_image"]
    assert float(nll) == pytest.approx(recorded, rel=1e-3)
    assert float(nll) < 0.6 * entry["metrics"]["uniform_nll_nats_per_image"]


def test_shipped_vqvae_repeats_its_recorded_test_metrics(fashion_mnist_available):
    """The VQ-VAE of the prior and notebooks 04 and 06, reloaded: its test reconstruction error, the NMSE
    (MSE over the variance of the training pixels, computed here from the data), the perplexity and the
    dead codes are those the training script recorded."""
    from course_lib import autoencoder
    from course_lib.checkpoints import load_pretrained, read_manifest
    from course_lib.data import load_fashion_mnist

    name = read_manifest()["vq_prior_k64"]["recipe"]["vqvae"]
    metrics = read_manifest()[name]["metrics"]
    if "test_nmse" not in metrics:
        pytest.skip(f"{name} was trained before the NMSE was recorded")
    model, _ = load_pretrained(name)
    x_test = load_fashion_mnist("test")[0]
    x_hat = autoencoder.reconstruct_dataset(model, x_test)
    mse = float((x_hat.double() - x_test.double()).pow(2).mean())
    variance = float(load_fashion_mnist("train")[0].double().var())
    indices = vq.encode_indices_dataset(model, x_test)
    assert mse == pytest.approx(metrics["test_mse_per_pixel"], rel=1e-4)
    assert mse / variance == pytest.approx(metrics["test_nmse"], rel=1e-4)
    assert variance == pytest.approx(metrics["pixel_variance"], rel=1e-5)
    assert float(vq.perplexity(indices, 64)) == pytest.approx(metrics["test_codebook_perplexity"], rel=1e-4)
    assert vq.dead_codes(indices, 64) == metrics["test_dead_codes"]
    # issue 16's goal for this model: NMSE <= 0.045 with every code used
    assert mse / variance <= 0.045 and vq.dead_codes(indices, 64) == 0
