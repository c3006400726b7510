import pytest
import torch
import torch.nn.functional as F

from course_lib import autoencoder


def test_shapes_and_range():
    model = autoencoder.ConvAutoencoder(latent_dim=5)
    x = torch.rand(4, 1, 28, 28)
    z = model.encode(x)
    assert z.shape == (4, 5)
    x_hat = model.decode(z)
    assert x_hat.shape == x.shape and 0 <= x_hat.min() and x_hat.max() <= 1


def test_encoder_sizes_follow_conv_size_formula():
    # torch's own convolution is the independent reference for equation (conv-size).
    for n, k, s, p in [(28, 4, 2, 1), (14, 4, 2, 1), (9, 3, 2, 0), (31, 5, 3, 2)]:
        out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p)
        assert autoencoder.conv_output_size(n, k, s, p) == out.shape[-1]


def test_reconstruction_loss_equals_torch_sum_over_batch():
    x, x_hat = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)
    expected = F.mse_loss(x_hat, x, reduction="sum") / 6
    assert torch.allclose(autoencoder.reconstruction_loss(x_hat, x), expected)


def test_interpolation_endpoints_and_midpoint():
    z0, z1 = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    path = autoencoder.interpolate_codes(z0, z1, 5)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    assert torch.allclose(path[2], torch.tensor([2.0, 0.0]))


def test_a_few_steps_reduce_the_loss_on_a_batch():
    torch.manual_seed(0)
    model = autoencoder.ConvAutoencoder(latent_dim=8)
    x = torch.rand(16, 1, 28, 28)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = autoencoder.autoencoder_loss(model, x)["loss"].item()
    for _ in range(30):
        loss = autoencoder.autoencoder_loss(model, x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first


def test_encode_and_reconstruct_dataset_match_direct_calls():
    model = autoencoder.ConvAutoencoder(latent_dim=3).eval()
    x = torch.rand(7, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(autoencoder.encode_dataset(model, x, batch_size=3), model.encode(x), atol=1e-6)
        assert torch.allclose(autoencoder.reconstruct_dataset(model, x, batch_size=3), model(x), atol=1e-6)


@pytest.mark.parametrize("call, match", [
    (lambda: autoencoder.ConvAutoencoder(latent_dim=0), "latent_dim must be a positive int"),
    (lambda: autoencoder.ConvAutoencoder(2).encode(torch.rand(2, 28, 28)), r"x must have shape \(N, 1, 28, 28\)"),
    (lambda: autoencoder.ConvAutoencoder(2).encode(torch.full((2, 1, 28, 28), 255.0)), r"outside \[0, 1\]"),
    (lambda: autoencoder.ConvAutoencoder(2).encode(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)), "floating dtype"),
    (lambda: autoencoder.ConvAutoencoder(2).encode(torch.zeros(0, 1, 28, 28)), "x is empty"),
    (lambda: autoencoder.ConvAutoencoder(2).decode(torch.rand(2, 3)), r"z must have shape \(N, 2\)"),
    (lambda: autoencoder.reconstruction_loss(torch.rand(2, 4), torch.rand(4)), "same shape"),
    (lambda: autoencoder.conv_output_size(28, 0), "kernel_size must be a positive int"),
    (lambda: autoencoder.conv_output_size(28, 3, 1, -1), "padding must be a non-negative int"),
    (lambda: autoencoder.conv_output_size(2, 5), "larger than the padded input"),
    (lambda: autoencoder.interpolate_codes(torch.zeros(2), torch.zeros(3), 4), "equal shape"),
    (lambda: autoencoder.interpolate_codes(torch.zeros(2), torch.zeros(2), 1), "steps must be an int >= 2"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
