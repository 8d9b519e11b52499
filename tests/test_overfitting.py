"""research/overfitting.py against published and hand-computed values."""

import math

import numpy as np
import pytest

from research.overfitting import (
    cscv_pbo,
    deflated_sharpe,
    expected_max_sharpe,
    moments,
    probabilistic_sharpe,
    sharpe,
)


def test_dsr_numerical_example_of_bailey_lopez_de_prado_2014():
    # The paper's example: 100 trials, variance of their annualised SR 0.5, the best SR 2.5 a year,
    # 1250 daily observations, skew -3, kurtosis 10 -> SR0 = 0.1132 a day and DSR = 0.9004.
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe(2.5 / math.sqrt(250), sr0, 1250, skew=-3.0, kurt=10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_psr_is_one_half_at_the_benchmark_and_grows_with_length():
    assert probabilistic_sharpe(0.1, 0.1, 500) == pytest.approx(0.5)
    assert probabilistic_sharpe(0.1, 0.0, 1000) > probabilistic_sharpe(0.1, 0.0, 100) > 0.5


def test_expected_max_grows_with_the_number_of_trials():
    assert expected_max_sharpe(1, 1.0) == 0.0
    assert expected_max_sharpe(1000, 1.0) > expected_max_sharpe(10, 1.0) > 0


def test_deflated_sharpe_from_returns_uses_sample_moments():
    rng = np.random.default_rng(3)
    r = rng.normal(0.001, 0.01, 2000)
    skew, kurt = moments(r)
    assert abs(skew) < 0.2 and kurt == pytest.approx(3.0, abs=0.3)
    one = deflated_sharpe(r, 1, np.array([sharpe(r)]))
    assert one.benchmark == 0.0 and one.probability == pytest.approx(
        probabilistic_sharpe(sharpe(r), 0.0, 2000, skew, kurt)
    )
    many = deflated_sharpe(r, 200, rng.normal(0, 0.05, 200))
    assert many.benchmark > 0 and many.probability < one.probability


def _mean(m):
    return m.mean(axis=0)


def test_pbo_hand_computed_two_variants_four_blocks():
    # block means: A = [4, 1, 1, -3], B = 0. In-sample best ranks last out of sample in 4 of the 6 splits.
    a = np.repeat([4.0, 1.0, 1.0, -3.0], 5)
    m = np.column_stack([a, np.zeros_like(a)])
    res = cscv_pbo(m, blocks=4, metric=_mean)
    assert res.n_splits == 6
    assert res.pbo == pytest.approx(4 / 6)
    assert sorted(res.logits) == pytest.approx([-math.log(2)] * 4 + [math.log(2)] * 2)


def test_pbo_is_zero_for_a_dominant_variant_and_one_for_mean_reverting_ones():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, (400, 5))
    noise[:, 2] += 1.0  # variant 2 wins in every block
    assert cscv_pbo(noise, blocks=8).pbo == 0.0
    a = np.repeat([4.0, -1.0, -2.0, -1.0], 10)  # sums to zero: whatever wins in-sample loses out of sample
    assert cscv_pbo(np.column_stack([a, -a]), blocks=4, metric=_mean).pbo == 1.0


def test_pbo_of_skill_less_variants_is_one_half_on_average():
    # one noise matrix's PBO varies a lot (its splits share blocks); the mean over matrices is 1/2
    pbos = [cscv_pbo(np.random.default_rng(s).normal(0, 1, (240, 10)), blocks=6).pbo for s in range(60)]
    assert cscv_pbo(np.zeros((240, 3)) + np.arange(240)[:, None] % 7, blocks=10).n_splits == math.comb(10, 5)
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.08)


def test_pbo_refuses_bad_shapes():
    with pytest.raises(ValueError, match="even"):
        cscv_pbo(np.zeros((20, 3)), blocks=5)
    with pytest.raises(ValueError, match="2 variants"):
        cscv_pbo(np.zeros((20, 1)))
    with pytest.raises(ValueError, match="too few"):
        cscv_pbo(np.zeros((5, 3)), blocks=8)
