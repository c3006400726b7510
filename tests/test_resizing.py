"""The references' input resizing, from scratch, compared with the libraries' own code.

pytorch-fid resizes with ``F.interpolate(bilinear, align_corners=False)``, torch-fidelity with its
``interpolate_bilinear_2d_like_tensorflow1x`` (TensorFlow 1's resize), clean-fid with
``make_resizer("PIL", False, "bicubic", (299, 299))`` (PIL's antialiased bicubic in float).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cleanfid.resize import make_resizer
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from course_lib.resizing import (
    RESIZE_STYLES,
    centroid,
    inception_input,
    resampling_matrix,
    resize_images,
    zone_plate,
    zone_plate_frequency,
)
from course_lib.validation import check_images

pytestmark = pytest.mark.usefixtures("one_thread")

# (height, width, size): upsampling as for 28x28 clothes, downsampling as for large photos, odd ratios.
SHAPES = [(28, 28, 299), (37, 23, 64), (512, 384, 64), (300, 200, 299), (5, 7, 3)]


def random_images(h, w, seed=0, channels=3, n=2):
    return torch.rand(n, channels, h, w, generator=torch.Generator().manual_seed(seed))


def clean_fid_reference(images, size):
    """clean-fid's own resizer on the 8-bit HWC arrays it reads from image files."""
    resize = make_resizer("PIL", False, "bicubic", (size, size))
    uint8 = torch.round(images * 255).to(torch.uint8)
    out = [resize(img.permute(1, 2, 0).numpy()) for img in uint8]
    return torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy())


@pytest.mark.parametrize("h, w, size", SHAPES)
def test_pytorch_fid_matrix_equals_f_interpolate(h, w, size):
    x = random_images(h, w)
    expected = F.interpolate(x.double(), size=(size, size), mode="bilinear", align_corners=False)
    got = resampling_matrix(h, size, "pytorch-fid") @ x.double() @ resampling_matrix(w, size, "pytorch-fid").T
    # PyTorch computes the source positions in float32 even for float64 images: ~1e-5 of a pixel.
    assert (got - expected).abs().max() < 1e-4
    assert torch.equal(resize_images(x, size, "pytorch-fid"), F.interpolate(x, size=(size, size), mode="bilinear"))


@pytest.mark.parametrize("h, w, size", SHAPES)
def test_torch_fidelity_style_equals_tensorflow1_resize(h, w, size):
    x = random_images(h, w, seed=1)
    expected = interpolate_bilinear_2d_like_tensorflow1x(torch.round(x * 255), size=(size, size),
                                                         align_corners=False)
    got = resize_images(x, size, "torch-fidelity") * 255
    assert (got - expected).abs().max() < 1e-3  # on the 0..255 scale


@pytest.mark.parametrize("h, w, size", SHAPES)
def test_clean_fid_style_equals_clean_fid_resizer(h, w, size):
    x = random_images(h, w, seed=2)
    got = resize_images(x, size, "clean-fid") * 255
    assert (got - clean_fid_reference(x, size)).abs().max() < 1e-3


@pytest.mark.parametrize("style", RESIZE_STYLES)
def test_rows_are_normalised_kernels(style):
    for n_in, n_out in [(28, 299), (512, 64), (7, 7)]:
        w = resampling_matrix(n_in, n_out, style)
        assert w.shape == (n_out, n_in)
        assert torch.allclose(w.sum(1), torch.ones(n_out, dtype=torch.float64))
    # Same size: pytorch-fid and torch-fidelity copy the image; PIL's bicubic too (its kernel is 0 at integers).
    assert torch.allclose(resampling_matrix(7, 7, style), torch.eye(7, dtype=torch.float64))


def test_hand_computed_halving():
    # 4 -> 2 pixels. pytorch-fid: centres at 1 and 3 (pixel units), halfway between pixels 0|1 and 2|3.
    assert torch.allclose(resampling_matrix(4, 2, "pytorch-fid"),
                          torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]], dtype=torch.float64))
    # TensorFlow 1 samples at 0 and 2: it drops pixels 1 and 3 entirely.
    assert torch.allclose(resampling_matrix(4, 2, "torch-fidelity"),
                          torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0]], dtype=torch.float64))
    # PIL's antialiased bicubic stretches the kernel by 2: output 0 is centred at 1, the pixel centres
    # 0.5 ... 3.5 lie at t = -0.5, 0.5, 1.5, 2.5; the weights are k(t / 2), renormalised (pixel -1 is missing).
    t = torch.tensor([-0.5, 0.5, 1.5, 2.5], dtype=torch.float64) / 2
    a = -0.5
    k = torch.where(t.abs() < 1, (a + 2) * t.abs() ** 3 - (a + 3) * t.abs() ** 2 + 1,
                    a * t.abs() ** 3 - 5 * a * t.abs() ** 2 + 8 * a * t.abs() - 4 * a)
    assert torch.allclose(resampling_matrix(4, 2, "clean-fid")[0], k / k.sum())


def test_inception_input_scaling_matches_the_references():
    x = random_images(28, 28, seed=3, channels=1)
    pf = inception_input(x, "pytorch-fid")
    assert pf.shape == (2, 3, 299, 299)
    expected = 2 * F.interpolate(x.expand(-1, 3, -1, -1), size=(299, 299), mode="bilinear") - 1
    assert torch.allclose(pf, expected, atol=1e-6)
    # torch-fidelity's FeatureExtractorInceptionV3: TF1 resize of the uint8 image, then (x - 128) / 128.
    tf = interpolate_bilinear_2d_like_tensorflow1x(torch.round(x * 255).expand(-1, 3, -1, -1), size=(299, 299),
                                                   align_corners=False)
    assert (inception_input(x, "torch-fidelity") - (tf - 128) / 128).abs().max() < 1e-5
    # clean-fid's InceptionV3W (resize_inside=False): (x - 128) / 128 on the resized 0..255 image.
    ref = (clean_fid_reference(x.expand(-1, 3, -1, -1), 299) - 128) / 128
    assert (inception_input(x, "clean-fid") - ref).abs().max() < 1e-5


def test_tensorflow1_resize_moves_the_content_top_left():
    # A smooth blob in the middle of 28x28: no border effects. A content-preserving resize maps the
    # centroid c to c * 299 / 28; TensorFlow 1's sampling at i * 28 / 299 (no half-pixel offset) moves
    # the content by 0.5 (299 / 28 - 1) output pixels towards the top-left.
    coords = torch.arange(28, dtype=torch.float64) + 0.5
    blob = torch.exp(-((coords[:, None] - 13.3) ** 2 + (coords[None, :] - 15.1) ** 2) / 8)
    x = blob.float()[None, None]
    c = centroid(x)[0]
    scaled = c * 299 / 28
    shift = 0.5 * (299 / 28 - 1)
    assert torch.allclose(centroid(resize_images(x, 299, "pytorch-fid"))[0], scaled, atol=0.05)
    assert torch.allclose(centroid(resize_images(x, 299, "clean-fid"))[0], scaled, atol=0.05)
    assert torch.allclose(centroid(resize_images(x, 299, "torch-fidelity"))[0], scaled - shift, atol=0.05)


def test_centroid_hand_computed():
    x = torch.zeros(1, 1, 3, 4)
    x[0, 0, 0, 0], x[0, 0, 2, 3] = 1.0, 0.5  # centres (0.5, 0.5) and (2.5, 3.5), weights 1 and 0.5
    assert torch.allclose(centroid(x), torch.tensor([[(0.5 + 1.25) / 1.5, (0.5 + 1.75) / 1.5]], dtype=torch.float64))
    with pytest.raises(ValueError, match="all-black"):
        centroid(torch.zeros(1, 1, 3, 3))


def test_zone_plate_and_antialiasing():
    size, factor = 256, 8
    plate = zone_plate(size)
    freq = zone_plate_frequency(size)
    assert plate.shape == (1, 1, size, size) and 0 <= plate.min() and plate.max() <= 1
    # closed form at one pixel: 0.5 + 0.5 cos(pi r^2 / (2 R))
    r2 = (10.5 - size / 2) ** 2 + (3.5 - size / 2) ** 2
    assert abs(float(plate[0, 0, 10, 3]) - (0.5 + 0.5 * np.cos(np.pi * r2 / (2 * size / np.sqrt(2))))) < 1e-6
    assert 0.49 < float(freq.max()) <= 0.5
    # Where the plate's frequency is above the new Nyquist limit, an ideal downsampling is flat 0.5.
    small_freq = freq[factor // 2::factor, factor // 2::factor]
    above = small_freq > 1.5 * 0.5 / factor
    alias = {s: float((resize_images(plate, size // factor, s)[0, 0][above] - 0.5).abs().mean()) for s in RESIZE_STYLES}
    assert alias["clean-fid"] < 0.02 < 0.1 < min(alias["pytorch-fid"], alias["torch-fidelity"])


def test_bad_input_is_a_clear_error():
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="style"):
        resize_images(x, 4, "opencv")
    with pytest.raises(ValueError, match="size"):
        resize_images(x, 0)
    with pytest.raises(ValueError, match="outside"):
        resize_images(x * 2, 4)
    with pytest.raises(ValueError, match=r"\(N, 1 or 3, H, W\)"):
        inception_input(torch.rand(1, 2, 8, 8))
    with pytest.raises(ValueError, match="n_out"):
        resampling_matrix(4, 0)
    with pytest.raises(ValueError, match="NaN"):
        check_images(torch.full((1, 1, 2, 2), float("nan")), "fake")
    with pytest.raises(ValueError, match=r"fake must have shape \(N, 1, 28, 28\)"):
        check_images(torch.rand(1, 1, 8, 8), "fake", shape=(1, 28, 28))
    with pytest.raises(ValueError, match="empty"):
        check_images(torch.rand(0, 1, 8, 8))
