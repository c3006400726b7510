"""The FID and Inception Score checkers: the reference passes, typical answers get their hints,
and correct answers written differently (scipy's sqrtm, tensors or floats) pass."""

import numpy as np
import pytest
import scipy.linalg
import torch

from course_lib.exercises.fid import check_frechet_distance, check_inception_score, check_resampling_matrix


@pytest.mark.parametrize("checker", [check_frechet_distance, check_inception_score, check_resampling_matrix])
def test_reference_passes_and_each_mistake_is_named(checker):
    assert checker.grade(checker.reference).passed
    for mistake in checker.mistakes:
        verdict = checker.grade(mistake.wrong)
        assert verdict.status == "wrong" and mistake.hint in verdict.message, mistake.hint


def student_fid_scipy(real, fake):
    """A correct answer through numpy and scipy's sqrtm (pytorch-fid's way), returning a float."""
    r, f = real.numpy(), fake.numpy()
    s1, s2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_a_scipy_answer_passes():
    assert check_frechet_distance.grade(student_fid_scipy).passed


def test_a_complex_answer_is_told_to_keep_the_real_part():
    def complex_fid(real, fake):
        value = torch.tensor(student_fid_scipy(real, fake), dtype=torch.float64)
        return torch.complex(value, torch.tensor(3e-7, dtype=torch.float64))

    verdict = check_frechet_distance.grade(complex_fid)
    assert verdict.status == "wrong" and "real part" in verdict.message


def test_an_inception_score_with_tensors_passes():
    def mine(probs, splits):
        scores = torch.stack([(p * (p.log() - p.mean(0).log())).sum(1).mean().exp() for p in probs.chunk(splits)])
        return scores.mean(), scores.std(unbiased=False)

    assert check_inception_score.grade(mine).passed


def student_resize_by_interpolating_an_identity(n_in, n_out):
    """A correct answer written differently: resize the identity matrix with F.interpolate, row by row."""
    eye = torch.eye(n_in, dtype=torch.float64)[:, None, :]  # (n_in, 1, n_in): each row a 1-D "image"
    out = torch.nn.functional.interpolate(eye, size=n_out, mode="linear", align_corners=False)  # (n_in, 1, n_out)
    return out[:, 0, :].T.float()  # column j is the response to input pixel j; float32 is fine


def test_a_resize_answer_through_f_interpolate_passes():
    verdict = check_resampling_matrix.grade(student_resize_by_interpolating_an_identity)
    assert verdict.passed, verdict.message
