"""Every checker passes the reference and fails every typical mistake with its hint."""

import importlib
import pkgutil

import pytest
import torch

import course_lib.exercises as exercises
from course_lib.exercises import Exercise, Mistake


def all_exercises():
    found = {}
    for info in pkgutil.iter_modules(exercises.__path__):
        module = importlib.import_module(f"course_lib.exercises.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, Exercise) and name.startswith("check_"):
                assert name not in found or found[name] is obj, f"checker name {name} is used twice"
                found[name] = obj
    return found


EXERCISES = all_exercises()


def test_there_are_checkers():
    assert {"check_reconstruction_loss", "check_conv_output_size", "check_interpolate_codes"} <= set(EXERCISES)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_passes(name):
    exercise = EXERCISES[name]
    for seed in (0, 1):
        verdict = exercise.grade(exercise.reference, seed=seed)
        assert verdict.passed, verdict.message


@pytest.mark.parametrize("name, index", [(n, i) for n in sorted(EXERCISES) for i in range(len(EXERCISES[n].mistakes))])
def test_each_mistake_fails_with_its_hint(name, index):
    exercise = EXERCISES[name]
    mistake = exercise.mistakes[index]
    verdict = exercise.grade(mistake.wrong)
    assert verdict.status == "wrong"
    assert mistake.hint in verdict.message


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_checker_has_a_mistake(name):
    assert len(EXERCISES[name].mistakes) >= 2


def _stub(*args):
    raise NotImplementedError


def test_stub_is_not_done_and_falls_back_to_reference(capsys):
    exercise = EXERCISES["check_reconstruction_loss"]
    used = exercise(_stub)
    assert used is exercise.reference
    assert "[not done yet]" in capsys.readouterr().out
    assert exercise.grade(lambda *a: ...).status == "not_done"
    assert exercise.grade(lambda *a: None).status == "not_done"


def test_correct_answer_is_used(capsys):
    def mine(x_hat, x):
        return ((x_hat - x) ** 2).flatten(1).sum(dim=1).mean()

    assert EXERCISES["check_reconstruction_loss"](mine) is mine
    assert "[correct]" in capsys.readouterr().out


def test_crash_is_reported_not_raised():
    def crashes(x_hat, x):
        return x_hat.view(-1, 5)  # 784 values do not split into rows of 5

    verdict = EXERCISES["check_reconstruction_loss"].grade(crashes)
    assert verdict.status == "error" and "RuntimeError" in verdict.message


def test_unknown_wrong_answer_reports_the_difference():
    verdict = EXERCISES["check_reconstruction_loss"].grade(lambda a, b: ((a - b) ** 4).flatten(1).sum(1).mean())
    assert verdict.status == "wrong" and "where the reference gives" in verdict.message


def test_a_constant_factor_is_named():
    verdict = EXERCISES["check_reconstruction_loss"].grade(lambda a, b: 2 * ((a - b) ** 2).flatten(1).sum(1).mean())
    assert verdict.status == "wrong" and "2 times the reference's" in verdict.message


def test_wrong_shape_is_reported():
    verdict = EXERCISES["check_interpolate_codes"].grade(lambda z0, z1, n: torch.zeros(n))
    assert verdict.status == "wrong" and "expected shape" in verdict.message


def test_function_that_modifies_its_input_cannot_fool_the_check():
    def sneaky(x_hat, x):
        x_hat.zero_()  # modifies its argument in place
        return (x_hat - x).pow(2).flatten(1).sum(1).mean()

    ex = Exercise("t", lambda a, b: (a - b).pow(2).flatten(1).sum(1).mean(), "ref",
                  lambda g: [(torch.rand(2, 3, generator=g), torch.rand(2, 3, generator=g))],
                  mistakes=[Mistake("hint", lambda a, b: a.sum())])
    assert not ex.grade(sneaky).passed


def _double_it(x):
    return 2 * x


def test_a_complex_answer_to_a_real_exercise_is_wrong():
    # The real part is right; the imaginary part must not be dropped on the way to the comparison.
    exercise = Exercise("doubling", _double_it, "_double_it", lambda g: [(torch.randn(3, generator=g),)])
    verdict = exercise.grade(lambda x: torch.complex(2 * x, torch.full_like(x, 1e-3)))
    assert verdict.status == "wrong" and "complex" in verdict.message
    assert exercise.grade(lambda x: torch.complex(2 * x, torch.zeros_like(x))).status == "wrong"
    complex_exercise = Exercise("doubling", _double_it, "_double_it",
                                lambda g: [(torch.randn(3, dtype=torch.complex128, generator=g),)])
    assert complex_exercise.grade(_double_it).passed
    assert complex_exercise.grade(lambda x: 2 * x.conj()).status == "wrong"  # imaginary parts are compared
