"""Exercise checkers: grade a student's function against the reference and name the mistake.

Every exercise cell ends with a checker, e.g. ``loss_fn = check_reconstruction_loss(my_loss)``.
The checker runs the student's function on randomized cases, compares with the reference
implementation from ``course_lib``, and prints one of:

- correct: the notebook goes on with the student's function;
- not done yet (the stub still raises ``NotImplementedError`` or returns ``...``/``None``):
  the notebook goes on with the reference, so it always runs top to bottom;
- wrong: the message names the likely mistake when the answer matches a known wrong
  variant, or says which input gets no (or the wrong) gradient, or which term of a sum is off;
  the notebook goes on with the reference;
- error: the student's function raised; the message shows the exception, and the notebook goes
  on with the reference.

A checker never raises: whatever the student's function returns or raises, and whatever goes
wrong while comparing or while replaying a known mistake, ``grade`` returns a ``Verdict``.

Gradients. For a differentiable building block (a loss, the reparameterization, ...) the exercise
lists its differentiable positional arguments in ``grad_inputs``. Each call then runs on leaf
copies of those arguments that require gradients; the checker back-propagates a fixed random
upstream gradient through every floating tensor the function returns and compares the gradients
with the reference's, input by input. A function that detaches, runs under ``torch.no_grad()``,
returns a float, or draws its own noise with ``torch.normal`` / ``Normal(...).sample()`` gives the
right values but no gradient, and is wrong.

Answer contract (each exercise's ``accepts`` states it for the notebook):

- where a number is asked, a Python float, a numpy scalar and a 0-dim (or one-element) tensor
  compare alike; where an integer is asked, a Python int, a numpy integer or an integer tensor,
  but not a float such as 7.0 (nor a bool);
- where a tensor is asked, any floating dtype, and numpy arrays alike; an integer tensor where
  indices are asked (any integer dtype). An answer in a less precise dtype than the reference's
  is compared within that dtype's precision: 1e-3 relative to the largest value for float32 against
  a float64 reference (FID's eigenvalues lose that much), 1e-2 for float16, 4e-2 for bfloat16;
  otherwise the exercise's own tolerance applies;
- a complex answer to a real quantity is wrong, even with a zero imaginary part;
- a differentiable exercise (``grad_inputs``) asks for a tensor connected to its inputs by
  differentiable operations: a float or a numpy value carries no gradient and is wrong.

Per-chapter checkers live in submodules (``course_lib.exercises.autoencoder``, ...).
"""

from __future__ import annotations

import inspect
import math
import numbers
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

Case = tuple  # positional arguments for one call

#: Relative precision assumed for an answer of each floating dtype (the tolerance is never tighter).
_DTYPE_RTOL = {torch.float16: 1e-2, torch.bfloat16: 4e-2, torch.float32: 1e-3, torch.complex64: 1e-3}


def _precision(dtype: torch.dtype) -> float:
    """The machine epsilon of a floating dtype (0 for integers: exact)."""
    if dtype.is_floating_point:
        return torch.finfo(dtype).eps
    if dtype.is_complex:
        return torch.finfo(torch.float32 if dtype == torch.complex64 else torch.float64).eps
    return 0.0


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
    """A typical wrong answer: ``wrong`` implements it, ``hint`` tells the student what went wrong.

    A mistake explains an answer when it reproduces the answer's values, and, for an exercise with
    ``grad_inputs``, its gradients, on every case.
    """

    hint: str
    wrong: Callable


@dataclass(frozen=True)
class Probe:
    """One term of an answer that is a sum of named terms, isolated so that it can be graded alone.

    ``extract(fn, *case)`` computes the term from a function (the student's or the reference),
    e.g. ``fn(mu, logvar) - fn(0, logvar)`` for the mean term of a KL; it defaults to ``fn(*case)``
    on cases where the other terms vanish. ``where`` says how the term was isolated.
    """

    term: str
    where: str
    make_cases: Callable[[torch.Generator], Sequence[Case]]
    extract: Callable | None = None


@dataclass
class _Answer:
    value: object
    grads: tuple | None = None  # one per grad input: a tensor, or None when the input gets no gradient


class _ReplayFailed(Exception):
    """A mistake or the reference could not be replayed on a case (never the student's fault)."""


def _names_of(reference: Callable) -> list[str]:
    try:
        return list(inspect.signature(reference).parameters)
    except (TypeError, ValueError):
        return []


class Exercise:
    """A checker: call it on the student's function; ``grade`` gives the verdict without printing.

    Args:
        name: the exercise's title, as in the notebook.
        reference: the correct implementation (from ``course_lib``).
        reference_name: its import path, printed when the notebook falls back to it.
        make_cases: ``make_cases(generator) -> list of argument tuples``, randomized cases.
        mistakes: typical wrong answers, tried in order to explain a failure.
        atol, rtol: tolerance of the comparison (``torch.allclose``).
        grad_inputs: positions of the differentiable arguments; their gradients are compared too.
        arg_names: the arguments' names, used in hints (default: the reference's parameter names).
        output_names: names of a tuple answer's elements, used in hints.
        probes: the terms of a compound answer, graded one by one when the answer is wrong.
        accepts: what the exercise accepts as an answer (see the module's answer contract).

    Example:
        >>> ex = Exercise("Doubling", lambda x: 2 * x, "ref", lambda g: [(torch.randn(3, generator=g),)],
        ...               mistakes=[Mistake("you added 2 instead of multiplying by 2.", lambda x: x + 2)],
        ...               grad_inputs=(0,), accepts="a tensor shaped like x")
        >>> ex.grade(lambda x: x + x).status
        'correct'
        >>> print(ex.grade(lambda x: x + 2).message)
        [wrong] Doubling: you added 2 instead of multiplying by 2. The notebook continues with the reference `ref`.
        >>> print(ex.grade(lambda x: -2 * x).message)
        [wrong] Doubling: on every test case your values have the opposite sign of the reference's ...
        >>> print(ex.grade(lambda x: (2 * x).detach()).message)
        [wrong] Doubling: on test case 1, x receives no gradient: the values are right but nothing ...
        >>> ex.grade(lambda x: 2 * x.detach().numpy()).status  # numpy carries no gradient
        'wrong'
        >>> print(ex.grade(lambda x: int("two")).message)
        [error] Doubling: your function raised ValueError: invalid literal for int() with base 10: 'two'. ...
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
        grad_inputs: Sequence[int] = (),
        arg_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        probes: Sequence[Probe] = (),
        accepts: str = "",
    ):
        self.name = name
        self.reference = reference
        self.reference_name = reference_name
        self.make_cases = make_cases
        self.mistakes = tuple(mistakes)
        self.atol, self.rtol = atol, rtol
        self.grad_inputs = tuple(grad_inputs)
        self.arg_names = list(arg_names) if arg_names is not None else _names_of(reference)
        self.output_names = tuple(output_names) if output_names else None
        self.probes = tuple(probes)
        self.accepts = accepts
        self._replays: dict = {}  # (id of the reference or a mistake, seed) -> its answers

    # ----------------------------------------------------------------------------- public
    def __call__(self, fn: Callable, seed: int = 0) -> Callable:
        """Grade ``fn``, print the verdict, and return the function the notebook should use."""
        verdict = self.grade(fn, seed)
        print(verdict.message)
        return fn if verdict.passed else self.reference

    def grade(self, fn: Callable, seed: int = 0) -> Verdict:
        """Run ``fn`` on the cases and compare with the reference; never raises."""
        fallback = f"The notebook continues with the reference `{self.reference_name}`."
        try:
            return self._grade(fn, seed, fallback)
        except Exception as err:  # a failure of the checker itself must not stop the notebook
            return Verdict("wrong", f"[wrong] {self.name}: the checker could not grade your answer "
                                    f"({_one_line(err)}). {fallback}")

    # ----------------------------------------------------------------------------- grading
    def _grade(self, fn: Callable, seed: int, fallback: str) -> Verdict:
        if not callable(fn):
            return Verdict("wrong", f"[wrong] {self.name}: pass your function itself, not a "
                                    f"{type(fn).__name__}. {fallback}")
        cases = self.make_cases(torch.Generator().manual_seed(seed))
        answers = []
        for i, args in enumerate(cases):
            try:
                answer = self._run(fn, args, i)
            except NotImplementedError:
                return Verdict("not_done", f"[not done yet] {self.name}: fill in the function. {fallback}")
            except Exception as err:  # the student's code crashed: show where, keep going
                return Verdict("error", f"[error] {self.name}: your function raised {_one_line(err)}. {fallback}")
            if answer.value is None or answer.value is Ellipsis:
                return Verdict("not_done", f"[not done yet] {self.name}: your function returns "
                                           f"{answer.value!r}. {fallback}")
            answers.append(answer)
        expected = self._replayed(self.reference, cases, seed)
        for i, (got, want) in enumerate(zip(answers, expected, strict=True)):
            problem = self._problem(got, want)
            if problem is None:
                continue
            hint = self._explain(cases, answers, seed)
            if hint is not None:
                return Verdict("wrong", f"[wrong] {self.name}: {hint} {fallback}")
            detail = self._probe_terms(fn, seed) if _numeric_like(got.value, want.value) else ""
            return Verdict("wrong", f"[wrong] {self.name}: on test case {i + 1}, {problem}.{detail} {fallback}")
        return Verdict("correct", f"[correct] {self.name}: all {len(cases)} test cases pass.")

    def _explain(self, cases, answers, seed) -> str | None:
        """The hint of the first mistake that reproduces every answer, or None."""
        for mistake in self.mistakes:
            try:
                replayed = self._replayed(mistake.wrong, cases, seed)
                if all(self._problem(a, m) is None for a, m in zip(answers, replayed, strict=True)):
                    return mistake.hint
            except Exception:  # a mistake that cannot be replayed on a case explains nothing
                continue
        return self._describe_all(cases, answers, seed)

    def _describe_all(self, cases, answers, seed) -> str | None:
        """When the values are off by a constant factor or offset on every case, say so."""
        try:
            got = [_scalars(a.value) for a in answers]
            ref = [_scalars(r.value) for r in self._replayed(self.reference, cases, seed)]
        except Exception:
            return None
        pattern = _pattern(got, ref)
        if pattern is None:
            return None
        return f"on every test case your values {pattern}."

    def _probe_terms(self, fn, seed) -> str:
        """Grade each named term separately: which are off, and how."""
        if not self.probes:
            return ""
        verdicts = []
        for k, probe in enumerate(self.probes):
            try:
                cases = probe.make_cases(torch.Generator().manual_seed(seed))
                extract = probe.extract or (lambda f, *case: f(*case))
                got = [self._invoke_extract(extract, fn, c) for c in cases]
                key = ("probe", k, seed)
                if key not in self._replays:
                    self._replays[key] = [self._invoke_extract(extract, self.reference, c) for c in cases]
                ref = self._replays[key]
                right = all(self._compare(g, r) is None for g, r in zip(got, ref, strict=True))
                how = None if right else _pattern([_scalars(g) for g in got], [_scalars(r) for r in ref])
            except Exception:
                continue  # the term cannot be isolated for this answer
            if right:
                verdicts.append(f"{probe.term}: right")
            else:
                verdicts.append(f"{probe.term}: off ({probe.where}; your values {how or 'differ'})")
        if not verdicts:
            return ""
        return " Term by term: " + "; ".join(verdicts) + "."

    def _invoke_extract(self, extract, fn, case):
        return extract(lambda *args: self._invoke(fn, tuple(args)), *_clone(case))

    # ----------------------------------------------------------------------------- running
    def _invoke(self, fn: Callable, args: Case):
        """Call ``fn`` on one case (a subclass may prepare each call, e.g. seed a generator)."""
        return fn(*args)

    def _run(self, fn: Callable, args: Case, index: int) -> _Answer:
        """Call ``fn`` on a copy of ``args``; with ``grad_inputs``, also back-propagate and collect gradients."""
        args = list(_clone(args))
        leaves = {}
        for k in self.grad_inputs:
            if isinstance(args[k], torch.Tensor) and args[k].is_floating_point():
                args[k] = leaves[k] = args[k].detach().clone().requires_grad_(True)
        value = self._invoke(fn, tuple(args))
        if not self.grad_inputs:
            return _Answer(_detached(value))
        # each output, by its position in the answer, meets its own fixed random upstream gradient
        outputs = [(j, o) for j, o in enumerate(value if isinstance(value, tuple) else (value,))
                   if isinstance(o, torch.Tensor) and o.requires_grad and o.is_floating_point()]
        grads = [None] * len(self.grad_inputs)
        wanted = [leaves[k] for k in self.grad_inputs if k in leaves]
        if outputs and wanted:
            target = sum((o * _upstream(o.shape, index, j).to(o.device, o.dtype)).sum() for j, o in outputs)
            found = iter(torch.autograd.grad(target, wanted, allow_unused=True))
            grads = [next(found) if k in leaves else None for k in self.grad_inputs]
            grads = [None if g is None else g.detach().cpu() for g in grads]
        return _Answer(_detached(value), tuple(grads))

    def _replayed(self, fn: Callable, cases: Sequence[Case], seed: int) -> list[_Answer]:
        """The reference's or a mistake's answers on the cases of ``seed``, computed once and kept.

        They are deterministic (random functions are seeded per case), so grading many answers, as the
        tests do, replays each known function once per seed.
        """
        key = (id(fn), seed)
        if key not in self._replays:
            try:
                self._replays[key] = [self._run(fn, args, i) for i, args in enumerate(cases)]
            except Exception as err:
                self._replays[key] = _ReplayFailed(_one_line(err))
        answers = self._replays[key]
        if isinstance(answers, _ReplayFailed):
            raise answers
        return answers

    # ----------------------------------------------------------------------------- comparing
    def _problem(self, got: _Answer, expected: _Answer) -> str | None:
        """None when the answer matches, else a description: first the values, then the gradients."""
        problem = self._compare(got.value, expected.value)
        if problem is not None or expected.grads is None:
            return problem
        for k, g, e in zip(self.grad_inputs, got.grads, expected.grads, strict=True):
            name = self.arg_names[k] if k < len(self.arg_names) else f"argument {k + 1}"
            g_zero, e_zero = _no_gradient(g), _no_gradient(e)
            if g_zero and e_zero:
                continue
            if g_zero:
                number = not isinstance(got.value, torch.Tensor | tuple)
                why = ("your function returns a number, not a tensor" if number
                       else "the values are right but nothing in your result depends on it differentiably "
                            "(a .detach(), torch.no_grad(), .item()/float(), or noise drawn by torch.normal or "
                            ".sample() instead of computed from it)")
                return f"{name} receives no gradient: {why}"
            if e_zero:
                return (f"the values are right but {name} receives a gradient where it should get none "
                        f"(a missing stop-gradient, .detach())")
            scale = e.abs().nan_to_num(0.0, 0.0, 0.0).max().item() if e.numel() else 0.0
            if g.shape != e.shape or not torch.allclose(g.double(), e.double(), rtol=max(self.rtol, 1e-4),
                                                        atol=max(self.atol, 1e-4 * scale), equal_nan=True):
                return (f"the values are right but the gradient with respect to {name} is not the reference's "
                        f"(check which terms depend on {name} and where a stop-gradient belongs)")
        return None

    def _compare(self, got, expected) -> str | None:
        """None when ``got`` matches ``expected``, else a description of the difference."""
        if isinstance(expected, tuple):
            if isinstance(got, list):
                got = tuple(got)
            if not isinstance(got, tuple) or len(got) != len(expected):
                return f"expected a tuple of {len(expected)} values, got {_kind(got)}"
            for i, (g, e) in enumerate(zip(got, expected, strict=True)):
                problem = self._compare(g, e)
                if problem is not None:
                    names = self.output_names
                    label = names[i] if names and i < len(names) else f"value {i + 1} of the tuple"
                    return f"in {label}: {problem}"
            return None
        want = _as_tensor(expected)
        if want is None:  # a non-numeric reference answer: compare as Python objects
            return None if got == expected else f"expected {expected!r}, got {_kind(got)}"
        have = _as_tensor(got)
        if have is None:
            what = "a number" if want.dim() == 0 else "a tensor"
            return f"expected {what}, got {_kind(got)}"
        if have.is_complex() and not want.is_complex():
            return (f"your answer is complex ({_kind(got)}) but the quantity is real: keep the real part where an "
                    f"imaginary rounding error can appear, and check that nothing takes the root of a negative")
        if want.is_complex() and not have.is_complex():
            return f"expected a complex tensor, got {_kind(got)}"
        if have.dtype == torch.bool:
            return f"expected numbers, got booleans ({_kind(got)})"
        if not want.is_floating_point() and not want.is_complex() and (have.is_floating_point() or have.is_complex()):
            return f"the answer must be an integer, got {_kind(got)} (use //, int(...) or an integer tensor)"
        if want.dim() == 0 and have.numel() == 1 and have.dim() <= 1 and not isinstance(got, torch.Tensor):
            have = have.reshape(())
        if want.dim() == 0 and have.numel() == 1 and have.dim() == 1:
            have = have.reshape(())  # a one-element tensor is accepted for a number
        if have.shape != want.shape and want.dim() == 0:
            return f"expected a single number, got a tensor of shape {tuple(have.shape)}"
        if have.shape != want.shape:
            return f"expected shape {tuple(want.shape)}, got {tuple(have.shape)}"
        rtol, atol = self.rtol, self.atol
        if _precision(have.dtype) > _precision(want.dtype):  # an answer less precise than the reference
            rtol = max(rtol, _DTYPE_RTOL.get(have.dtype, 0.0))
            if want.numel():  # rounding errors scale with the values (and the terms that cancel)
                atol = max(atol, rtol * want.abs().nan_to_num(0.0, 0.0, 0.0).max().item())
        dtype = torch.complex128 if want.is_complex() else torch.float64
        have, want = have.to(dtype), want.to(dtype)
        if not torch.allclose(have, want, atol=atol, rtol=rtol, equal_nan=True):
            finite = torch.isfinite(have)
            if not finite.all() and torch.isfinite(want).all():
                bad = (~finite).sum().item()
                return f"your answer has {bad} nan or infinite value(s) where the reference is finite"
            diff = (have - want).abs()
            worst = int(diff.nan_to_num(float("inf")).argmax()) if diff.numel() else 0
            e, g = want.reshape(-1)[worst].item(), have.reshape(-1)[worst].item()
            rel = abs(g - e) / abs(e) if e != 0 else float("inf")
            where = "" if want.dim() == 0 else " at its largest difference"
            return f"your value is {_num(g)} where the reference gives {_num(e)}{where} ({_rel(rel)})"
        return None


# ----------------------------------------------------------------------------- helpers

def _one_line(err: BaseException) -> str:
    return traceback.format_exception_only(type(err), err)[-1].strip()


def _clone(args: Case) -> Case:
    # Each call gets its own copy, so a function that modifies its input cannot fool the check.
    return tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args)


def _numeric_like(got, expected) -> bool:
    """Whether ``got`` holds real numbers in the layout of ``expected`` (worth grading term by term)."""
    try:
        return _scalars(got).shape == _scalars(expected).shape
    except Exception:
        return False


def _no_gradient(grad) -> bool:
    return grad is None or not bool(grad.any())


def _detached(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, tuple):
        return tuple(_detached(v) for v in value)
    return value


def _upstream(shape, index: int, output: int) -> torch.Tensor:
    """A fixed random upstream gradient: the same for the student, the reference and the mistakes."""
    g = torch.Generator().manual_seed(1000 * index + output + 12345)
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _as_tensor(x) -> torch.Tensor | None:
    """A number, numpy value or tensor as a (detached, CPU) tensor; None for anything else."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, bool | np.bool_):
        return torch.tensor(bool(x))
    if isinstance(x, np.ndarray | np.generic):
        if x.dtype.kind not in "biufc":
            return None
        return torch.from_numpy(np.array(x, copy=True))
    if isinstance(x, numbers.Integral):
        return torch.tensor(int(x))
    if isinstance(x, numbers.Real):
        return torch.tensor(float(x), dtype=torch.float64)
    if isinstance(x, numbers.Complex):
        return torch.tensor(complex(x), dtype=torch.complex128)
    return None


def _kind(x) -> str:
    if isinstance(x, torch.Tensor):
        shape = "0-dim" if x.dim() == 0 else f"shape {tuple(x.shape)}"
        return f"a {shape} {str(x.dtype).replace('torch.', '')} tensor"
    if isinstance(x, np.ndarray):
        return f"a numpy array of shape {x.shape} and dtype {x.dtype}"
    if isinstance(x, np.generic):
        return f"a numpy {x.dtype} {x!r}"
    if isinstance(x, bool | int | float | complex):
        return f"{type(x).__name__} {x!r}"
    if isinstance(x, tuple | list):
        return f"a {type(x).__name__} of {len(x)} values"
    return f"a {type(x).__name__}"


def _num(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _rel(rel: float) -> str:
    if math.isinf(rel):
        return "the reference is 0"
    if rel < 0.01:
        return f"relative difference {rel:.2g}: more than rounding, check the formula"
    return f"relative difference {rel:.0%}"


def _scalars(value) -> torch.Tensor:
    """An answer's numbers, flattened to float64 (tuples concatenated)."""
    if isinstance(value, tuple | list):
        return torch.cat([_scalars(v) for v in value]) if value else torch.zeros(0, dtype=torch.float64)
    t = _as_tensor(value)
    if t is None or t.is_complex():
        raise TypeError("not real numbers")
    return t.reshape(-1).to(torch.float64)


def _pattern(got: Sequence[torch.Tensor], ref: Sequence[torch.Tensor]) -> str | None:
    """'are -2 times the reference's' or 'are off by a constant 0.5' when that explains every value."""
    if any(g.shape != r.shape for g, r in zip(got, ref, strict=True)):
        return None
    g, r = torch.cat(list(got)), torch.cat(list(ref))
    if g.numel() < 2 or not (torch.isfinite(g).all() and torch.isfinite(r).all()):
        return None
    big = r.abs() > 1e-6 * max(r.abs().max().item(), 1e-12)
    if big.sum() >= 2:
        ratio = g[big] / r[big]
        c = ratio.median().item()
        if abs(c - 1) > 1e-3 and torch.allclose(g, c * r, rtol=1e-4, atol=1e-7 * max(r.abs().max().item(), 1.0)):
            if abs(c + 1) < 1e-3:
                return "have the opposite sign of the reference's (a sign is flipped)"
            if c > 0:
                return f"are {c:.4g} times the reference's (a constant factor is off)"
            return f"are {c:.4g} times the reference's (a sign and a constant factor are off)"
    offset = (g - r).median().item()
    if abs(offset) > 1e-6 and torch.allclose(g, r + offset, rtol=0, atol=1e-5 * max(r.abs().max().item(), 1.0)):
        return f"are off by the same constant {offset:.4g} (a missing or extra constant term)"
    return None


class NumericAnswer(Exercise):
    """A pen-and-paper exercise: the answer is a number, not a function.

    ``value`` is the exact answer, computed from the exercise's given numbers by ``course_lib`` code; each
    ``Mistake``'s ``wrong`` is the number a typical mistake gives. The notebook's cell reads
    ``kl_answer = check_kl_two_gaussians(my_kl_answer)``: the checker prints its verdict and returns the
    student's number when it is right, else ``value``. An answer within ``atol`` (absolute) or ``rtol``
    (relative) of ``value`` is right, so a number rounded to the stated precision passes; a float, a numpy
    scalar and a 0-dim or one-element tensor compare alike, as in the answer contract.

    Example:
        >>> ex = NumericAnswer("Halving", 0.5, "the exact half", mistakes=[Mistake("you doubled.", 2.0)], atol=1e-3,
        ...                    accepts="a number")
        >>> ex.grade(0.5004).status, ex.grade(None).status
        ('correct', 'not_done')
        >>> print(ex.grade(2).message)
        [wrong] Halving: you doubled. The notebook continues with the exact half = 0.5.
    """

    value_word = "exact"  # "measured" where the notebook measures the answer (no solution to copy)

    def __init__(self, name: str, value: float, reference_name: str, mistakes: Sequence[Mistake] = (),
                 atol: float = 1e-3, rtol: float = 1e-4, accepts: str = "", given: dict | None = None):
        super().__init__(name, float(value), reference_name, lambda g: [()], mistakes=mistakes, atol=atol, rtol=rtol,
                         accepts=accepts)
        self.given = dict(given or {})

    def grade(self, answer, seed: int = 0) -> Verdict:
        fallback = f"The notebook continues with {self.reference_name} = {_num(self.reference)}."
        try:
            if answer is None or answer is Ellipsis:
                return Verdict("not_done", f"[not done yet] {self.name}: set your number. {fallback}")
            if callable(answer):
                return Verdict("wrong", f"[wrong] {self.name}: set a number (a Python expression is fine), not a "
                                        f"{type(answer).__name__}. {fallback}")
            problem = self._compare(answer, self.reference)
            if problem is None:
                return Verdict("correct", f"[correct] {self.name}: {_num(float(_as_tensor(answer).reshape(())))} "
                                          f"is right.")
            for mistake in self.mistakes:
                if self._compare(answer, float(mistake.wrong)) is None:
                    return Verdict("wrong", f"[wrong] {self.name}: {mistake.hint} {fallback}")
            return Verdict("wrong", f"[wrong] {self.name}: {problem}. {fallback}")
        except Exception as err:  # a checker never raises
            return Verdict("wrong", f"[wrong] {self.name}: the checker could not grade your answer "
                                    f"({_one_line(err)}). {fallback}")

    def __call__(self, answer, seed: int = 0):
        verdict = self.grade(answer, seed)
        print(verdict.message)
        return answer if verdict.passed else self.reference
