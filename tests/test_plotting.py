import matplotlib.pyplot as plt
import pytest
import torch

from course_lib import plotting


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


@pytest.mark.parametrize("call, match", [
    (lambda: plotting.image_grid(torch.rand(2, 2, 4, 4)), r"images must have shape \(N, 1 or 3, H, W\)"),
    (lambda: plotting.image_grid(torch.rand(2, 1, 4, 4) + 1), r"values in \[0, 1\]"),
    (lambda: plotting.plot_latent_scatter(torch.rand(5, 3), torch.zeros(5)), r"codes must have shape \(N, 2\)"),
    (lambda: plotting.plot_latent_scatter(torch.rand(5, 2), torch.zeros(4)), r"labels must have shape \(5,\)"),
    (lambda: plotting.plot_history({"train_acc": [1.0]}), "keys must name series of history"),
    (lambda: plotting.plot_history({"train_loss": [1.0]}, keys=["val_loss"]), "keys must name series of history"),
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
