import pytest
import torch

from course_lib import runtime


def test_cpu_is_always_available():
    assert runtime.get_device("cpu") == torch.device("cpu")


def test_automatic_choice_matches_what_torch_reports():
    expected = "cuda" if torch.cuda.is_available() else ("mps" if runtime._mps_available() else "cpu")
    assert runtime.get_device().type == expected


def test_env_variable_forces_device(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert runtime.get_device() == torch.device("cpu")


def test_unknown_or_missing_device_is_an_error():
    with pytest.raises(ValueError, match="prefer must be one of"):
        runtime.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no cuda device"):
            runtime.get_device("cuda")


def test_seeding_repeats_torch_and_numpy():
    import numpy as np

    runtime.seed_everything(3)
    a = (torch.randn(4), np.random.rand(2))
    runtime.seed_everything(3)
    b = (torch.randn(4), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all()
    runtime.seed_everything(4)
    assert not torch.equal(torch.randn(4), a[0])


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        runtime.seed_everything(seed)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_QUICK", value)
    assert runtime.quick_mode() is expected


def test_autocast_is_a_no_op_on_cpu():
    with runtime.autocast(torch.device("cpu")):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


@pytest.mark.parametrize("value, shown", [("0", False), ("off", False), ("1", True)])
def test_progress_bars_follow_the_environment(monkeypatch, value, shown):
    import io

    monkeypatch.setenv("COURSE_PROGRESS", value)
    out = io.StringIO()
    for _ in runtime.tqdm(range(3), file=out, disable=False):
        pass
    assert ("3/3" in out.getvalue()) is shown
