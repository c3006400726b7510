"""Tests of course_lib.pixelcnn: causality by gradients, the NLL against a loop over positions, bad input."""

import math

import pytest
import torch

from course_lib import pixelcnn, vq


# --------------------------------------------------------------------------- the prior
def test_prior_is_causal_by_gradients():
    torch.manual_seed(0)
    prior = pixelcnn.CodePrior(num_codes=6, grid=(4, 5), embed_dim=3, channels=8, blocks=2)
    h = torch.randn(1, 3, 4, 5, requires_grad=True)
    logits = prior.logits_from_embedding(h)
    for i in range(4):
        for j in range(5):
            (grad,) = torch.autograd.grad(logits[0, :, i, j].sum(), h, retain_graph=True)
            seen = grad.abs().sum(dim=(0, 1)) > 0  # (4, 5): which inputs affect output (i, j)
            order = torch.arange(20).reshape(4, 5)
            assert not seen[order >= 5 * i + j].any(), f"position {(i, j)} sees the present or the future"
            assert seen[order < 5 * i + j].all(), f"position {(i, j)} misses part of its past (blind spot)"


def test_prior_nll_matches_a_loop_over_positions_and_uniform_baseline():
    torch.manual_seed(0)
    prior = pixelcnn.CodePrior(num_codes=5, grid=(3, 3), embed_dim=4, channels=8, blocks=1)
    codes = torch.randint(5, (2, 3, 3))
    logits = prior(codes)
    by_hand = torch.zeros(2)
    for n in range(2):
        for i in range(3):
            for j in range(3):
                by_hand[n] -= torch.log_softmax(logits[n, :, i, j], 0)[codes[n, i, j]]
    assert torch.allclose(pixelcnn.prior_nll(prior, codes), by_hand, atol=1e-5)
    with torch.no_grad():  # zero output weights: uniform p, NLL = 9 ln 5 per grid
        prior.out[1].weight.zero_()
        prior.out[1].bias.zero_()
    assert torch.allclose(pixelcnn.prior_nll(prior, codes), torch.full((2,), 9 * math.log(5)))
    bits = pixelcnn.prior_loss(prior, codes)["bits_per_code"]
    assert torch.isclose(bits, torch.tensor(math.log2(5)))


def test_prior_sample_shapes_and_bad_input():
    prior = pixelcnn.CodePrior(num_codes=5, grid=(3, 3), embed_dim=4, channels=8, blocks=1)
    codes = prior.sample(4, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (4, 3, 3) and codes.min() >= 0 and codes.max() < 5
    with pytest.raises(ValueError, match="codes"):
        prior(torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="n must"):
        prior.sample(0)


def test_masked_conv_masks_and_bad_arguments():
    assert pixelcnn.MaskedConv2d(1, 1, (2, 3), "B").mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert pixelcnn.MaskedConv2d(1, 1, (1, 5), "A").mask.tolist() == [[1, 1, 0, 0, 0]]
    with pytest.raises(ValueError, match="mask_type"):
        pixelcnn.MaskedConv2d(1, 1, (2, 3), "C")
    with pytest.raises(ValueError, match="kernel_size"):
        pixelcnn.MaskedConv2d(1, 1, (2, 4), "A")


def test_prior_rejects_bad_sizes_and_codes():
    with pytest.raises(ValueError, match="num_codes must be a positive int"):
        pixelcnn.CodePrior(num_codes=0)
    with pytest.raises(ValueError, match="blocks must be a non-negative int"):
        pixelcnn.CodePrior(blocks=-1)
    prior = pixelcnn.CodePrior(num_codes=5, grid=(3, 3), embed_dim=4, channels=8, blocks=0)
    with pytest.raises(ValueError, match=r"codes must be in \[0, 5\), got values in \[7, 7\]"):
        prior(torch.full((1, 3, 3), 7))
    with pytest.raises(ValueError, match="codes must be a non-empty integer tensor"):
        prior(torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        prior.sample(1, temperature=0.0)


def test_the_prior_keeps_its_old_import_path_for_checkpoints():
    # the shipped vq_prior_k64.pt names its class "course_lib.vq:CodePrior" (course_lib.checkpoints)
    assert vq.CodePrior is pixelcnn.CodePrior
    state = pixelcnn.CodePrior(num_codes=4, grid=(2, 2), channels=8, blocks=1).state_dict()
    assert sorted(state) == sorted([
        "embed.weight", "first.weight", "first.bias", "first.mask", "blocks.0.1.weight", "blocks.0.1.bias",
        "blocks.0.1.mask", "blocks.0.3.weight", "blocks.0.3.bias", "out.1.weight", "out.1.bias"])


def test_shipped_checkpoints_of_the_moved_classes_still_load():
    from course_lib.checkpoints import load_pretrained, read_manifest

    names = [n for n in read_manifest() if n.startswith(("vq", "vae", "autoencoder"))]
    if "vq_prior_k64" not in names:
        pytest.skip("the prior checkpoint is not shipped in this copy")
    for name in names:  # load_state_dict is strict: a renamed attribute would fail here
        model, _ = load_pretrained(name)
        assert not model.training
    assert isinstance(load_pretrained("vq_prior_k64")[0], pixelcnn.CodePrior)

