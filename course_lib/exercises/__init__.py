"""Exercise checkers: grade a student's function against the reference and name the mistake.

Every exercise cell ends with a checker, e.g. ``loss_fn = check_reconstruction_loss(my_loss)``.
The checker runs the student's function on randomized cases, compares with the reference
implementation from ``course_lib``, and prints one of:

- correct: the notebook goes on with the student's function;
- not done yet (the stub still raises ``NotImplementedError`` or returns ``...``/``None``):
  the notebook goes on with the reference, so it always runs top to bottom;
- wrong: the message names the likely mistake when the answer matches a known wrong
  variant, and the notebook goes on with the reference.

Per-chapter checkers live in submodules (``course_lib.exercises.autoencoder``, ...).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Case = tuple  # positional arguments for one call


@dataclass(frozen=True)
class Verdict:
    """The outcome of grading: ``status`` is "correct", "not_done", "wrong" or "error"."""

    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: ``wrong`` implements it, ``hint`` tells the student what went wrong."""

    hint: str
    wrong: Callable


class Exercise:
    """A checker: call it on the student's function; ``grade`` gives the verdict without printing.

    Args:
        name: the exercise's title, as in the notebook.
        reference: the correct implementation (from ``course_lib``).
        reference_name: its import path, printed when the notebook falls back to it.
        make_cases: ``make_cases(generator) -> list of argument tuples``, randomized cases.
        mistakes: typical wrong answers, tried in order to explain a failure.
        atol, rtol: tolerance of the comparison (``torch.allclose``).
    """

    def __init__(
        self,
        name: str,
        reference: Callable,
        reference_name: str,
        make_cases: Callable[[torch.Generator], Sequence[Case]],
        mistakes: Sequence[Mistake] = (),
        atol: float = 1e-5,
        rtol: float = 1e-5,
    ):
        self.name = name
        self.reference = reference
        self.reference_name = reference_name
        self.make_cases = make_cases
        self.mistakes = tuple(mistakes)
        self.atol, self.rtol = atol, rtol

    def __call__(self, fn: Callable, seed: int = 0) -> Callable:
        """Grade ``fn``, print the verdict, and return the function the notebook should use."""
        verdict = self.grade(fn, seed)
        print(verdict.message)
        return fn if verdict.passed else self.reference

    def grade(self, fn: Callable, seed: int = 0) -> Verdict:
        """Run ``fn`` on the cases and compare with the reference; never raises."""
        cases = self.make_cases(torch.Generator().manual_seed(seed))
        fallback = f"The notebook continues with the reference `{self.reference_name}`."
        answers = []
        for args in cases:
            try:
                got = fn(*_clone(args))
            except NotImplementedError:
                return Verdict("not_done", f"[not done yet] {self.name}: fill in the function. {fallback}")
            except Exception as err:  # the student's code crashed: show where, keep going
                where = traceback.format_exception_only(type(err), err)[-1].strip()
                return Verdict("error", f"[error] {self.name}: your function raised {where}. {fallback}")
            if got is None or got is Ellipsis:
                return Verdict("not_done", f"[not done yet] {self.name}: your function returns {got!r}. {fallback}")
            answers.append(got)
        for i, (args, got) in enumerate(zip(cases, answers, strict=True)):
            problem = self._compare(got, self.reference(*_clone(args)))
            if problem is None:
                continue
            # A mistake explains the answer only if it reproduces it on every case.
            for mistake in self.mistakes:
                pairs = zip(cases, answers, strict=True)
                if all(self._compare(a, mistake.wrong(*_clone(c))) is None for c, a in pairs):
                    return Verdict("wrong", f"[wrong] {self.name}: {mistake.hint} {fallback}")
            return Verdict("wrong", f"[wrong] {self.name}: on test case {i + 1}, {problem}. {fallback}")
        return Verdict("correct", f"[correct] {self.name}: all {len(cases)} test cases pass.")

    def _compare(self, got, expected) -> str | None:
        """None when ``got`` matches ``expected``, else a description of the difference."""
        if isinstance(expected, tuple):
            if not isinstance(got, tuple) or len(got) != len(expected):
                return f"expected a tuple of {len(expected)} values, got {type(got).__name__}"
            for g, e in zip(got, expected, strict=True):
                problem = self._compare(g, e)
                if problem is not None:
                    return problem
            return None
        if not isinstance(expected, torch.Tensor):
            if isinstance(got, torch.Tensor) or type(got) is not type(expected):
                return f"expected a {type(expected).__name__}, got {type(got).__name__}"
            if isinstance(expected, float):
                ok = abs(got - expected) <= self.atol + self.rtol * abs(expected)
            else:
                ok = got == expected
            return None if ok else f"expected {expected!r}, got {got!r}"
        if not isinstance(got, torch.Tensor):
            return f"expected a torch.Tensor, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        if got.is_complex() != expected.is_complex():  # .double() would drop an imaginary part silently
            kinds = ["complex" if t.is_complex() else "real" for t in (expected, got)]
            return f"expected a {kinds[0]} tensor, got a {kinds[1]} one"
        dtype = torch.complex128 if expected.is_complex() else torch.float64
        got, expected = got.to(dtype), expected.to(dtype)
        if not torch.allclose(got, expected, atol=self.atol, rtol=self.rtol, equal_nan=True):
            diff = (got - expected).abs().max().item()
            return f"values differ from the reference (largest difference {diff:.3g})"
        return None


def _clone(args: Case) -> Case:
    # Each call gets its own copy, so a function that modifies its input cannot fool the check.
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
