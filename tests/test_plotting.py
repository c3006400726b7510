import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib import plotting
from course_lib.toy_data import ring_log_density, standard_normal_log_prob


def test_image_grid_places_each_image():
    images = torch.stack([torch.full((1, 2, 3), v) for v in (0.1, 0.2, 0.3)])
    grid = plotting.image_grid(images, nrow=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1)
    assert grid[1, 1] == pytest.approx(0.1) and grid[1, 5] == pytest.approx(0.2) and grid[4, 1] == pytest.approx(0.3)
    assert grid[4, 5] == 1.0 and grid[0, 0] == 1.0  # empty cell and padding are white


def test_helpers_label_their_axes():
    ax = plotting.plot_history({"train_loss": [3, 2, 1], "val_loss": [3.5, 2.5, 2]})
    assert ax.get_xlabel() == "epoch" and ax.get_title() and len(ax.get_legend().get_texts()) == 2
    plotting.plot_history({"train_loss": [1, 0.5]}, ax=ax, label=" (run 2)")
    assert ax.get_legend().get_texts()[-1].get_text() == "train loss (run 2)"
    ax = plotting.plot_latent_scatter(torch.randn(20, 2), torch.arange(20) % 3, ["a", "b", "c"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    plt.close("all")


def test_plot_samples_labels_and_overlays():
    first, second = torch.randn(30, 2), torch.randn(20, 2) + 5
    ax = plotting.plot_samples(first, label="data", title="T", xlim=(-4, 9), ylim=(-4, 9))
    plotting.plot_samples(second, label="samples", ax=ax, color="tab:orange")
    assert ax.get_title() == "T" and ax.get_xlabel() == "$x_1$" and ax.get_ylabel() == "$x_2$"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["data", "samples"]
    np.testing.assert_allclose(ax.collections[1].get_offsets(), second.numpy())
    assert ax.get_xlim() == (-4, 9)
    plt.close("all")


def test_plot_log_density_draws_the_grid_with_a_labelled_colour_bar():
    ax = plotting.plot_log_density(ring_log_density, (-3, 3), (-2, 2), resolution=30, title="ring", vmin=-8.0,
                                   device="cpu")
    assert ax.get_title() == "ring" and ax.get_xlabel() == "$x_1$" and ax.get_ylabel() == "$x_2$"
    image = ax.get_images()[0]
    # The image is the density on the cell centres, rows along y: check two cells by hand.
    data = np.asarray(image.get_array())
    assert data.shape == (30, 30) and image.get_extent() == [-3, 3, -2, 2]
    for row, col in [(0, 0), (20, 7)]:
        centre = torch.tensor([[-3 + 0.2 * (col + 0.5), -2 + (4 / 30) * (row + 0.5)]])
        assert data[row, col] == pytest.approx(float(ring_log_density(centre)), abs=1e-4)
    assert image.get_clim() == (-8.0, pytest.approx(float(data.max())))
    assert image.colorbar.ax.get_ylabel() == "log p(x) (nats)"
    plt.close("all")


@pytest.mark.parametrize("call, match", [
    (lambda: plotting.image_grid(torch.rand(2, 2, 4, 4)), r"images must have shape \(N, 1 or 3, H, W\)"),
    (lambda: plotting.image_grid(torch.rand(2, 1, 4, 4) + 1), r"values in \[0, 1\]"),
    (lambda: plotting.plot_latent_scatter(torch.rand(5, 3), torch.zeros(5)), r"codes must have shape \(N, 2\)"),
    (lambda: plotting.plot_latent_scatter(torch.rand(5, 2), torch.zeros(4)), r"labels must have shape \(5,\)"),
    (lambda: plotting.plot_history({"train_acc": [1.0]}), "keys must name series of history"),
    (lambda: plotting.plot_history({"train_loss": [1.0]}, keys=["val_loss"]), "keys must name series of history"),
    (lambda: plotting.plot_samples(torch.zeros(5, 3), label="x"), r"samples must be a tensor of shape \(N, 2\)"),
    (lambda: plotting.plot_log_density(standard_normal_log_prob, resolution=1), "resolution must be an int >= 2"),
    (lambda: plotting.plot_log_density(standard_normal_log_prob, xlim=(1, 1)), "xlim must be"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_table_rounds_each_column_and_aligns_numbers_right():
    table = plotting.Table([{"model": "a|b", "PSNR (dB)": torch.tensor(21.456), "share": 0.5}],
                           formats={"PSNR (dB)": ".1f", "share": ".0%"}, title="T", note="n")
    expected = "**T**\n\n| model | PSNR (dB) | share |\n| :-- | --: | --: |\n| a\\|b | 21.5 | 50% |\n\nn"
    assert table._repr_markdown_() == expected
    gaps = plotting.Table([("a", 1.0), ("b", None)], ["model", "gap"], formats={"gap": ".1f"})
    assert gaps._repr_markdown_().splitlines()[1:] == ["| :-- | --: |", "| a | 1.0 |", "| b |  |"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(rows=[(1, 2)], columns=["a"]), r"row 0 has 2 values, expected 1"),
    (dict(rows=[{"a": 1}], columns=["a", "b"]), r"row 0 has no value for columns \['b'\]"),
    (dict(rows=[(1,)], columns=["a"], formats={"b": ".2f"}), r"formats names columns \['b'\]"),
    (dict(rows=[(1,)]), "columns must be given unless rows are dicts"),
])
def test_table_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plotting.Table(**kwargs)
