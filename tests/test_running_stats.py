"""Running statistics: EMA closed form, test mode, conventions, population estimates, recalib."""

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course import running_stats as rs
from course.batchnorm import batchnorm_forward
from course.claims import assert_all_hold
from course.dataset import load_digits
from course.mlp import MLP
from course.train import accuracy

finite = st.floats(-100, 100, allow_nan=False)
momenta = st.floats(0.01, 0.99)


# --- exponential moving average --------------------------------------------------------------

def test_ema_matches_hand_computed_values_exactly():
    # momentum 0.5, init 1, batches 2, 4, 8: 1.5, then 2.75, then 5.375 (all exact in binary).
    traj = rs.ema_trajectory([2.0, 4.0, 8.0], momentum=0.5, init=1.0)
    assert traj.tolist() == [1.0, 1.5, 2.75, 5.375]
    # Closed form: 0.5^3 * 1 + 0.5 * (0.25 * 2 + 0.5 * 4 + 1 * 8) = 0.125 + 5.25.
    assert rs.ema_closed_form([2.0, 4.0, 8.0], momentum=0.5, init=1.0) == 5.375
    assert rs.ema_weights(3, 0.5).tolist() == [0.125, 0.125, 0.25, 0.5]


@given(values=arrays(float, st.tuples(st.integers(1, 30), st.integers(1, 3)), elements=finite),
       m=momenta, init=finite)
def test_closed_form_equals_the_recursion(values, m, init):
    traj = rs.ema_trajectory(values, m, init=np.full(values.shape[1], init))
    closed = rs.ema_closed_form(values, m, init=np.full(values.shape[1], init))
    np.testing.assert_allclose(closed, traj[-1], rtol=1e-9, atol=1e-9)


@given(k=st.integers(0, 200), m=momenta)
def test_weights_sum_to_one_and_init_weighs_m_to_the_k(k, m):
    w = rs.ema_weights(k, m)
    assert w.shape == (k + 1,)
    assert w[0] == m**k
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-12)


@given(m=st.floats(0.05, 0.999))
def test_steps_to_forget_is_the_first_step_below_one_percent(m):
    k = rs.steps_to_forget(m)
    assert m**k <= 0.01 + 1e-12
    assert k == 1 or m ** (k - 1) > 0.01 - 1e-12


def test_steps_to_forget_known_values():
    assert rs.steps_to_forget(0.9) == 44  # 0.9^43 = 0.0108, 0.9^44 = 0.0097
    assert rs.steps_to_forget(0.99) == 459


# --- test mode ---------------------------------------------------------------------------------

def test_test_mode_output_matches_hand_computed_values_exactly():
    bn_param = {"mode": "test", "eps": 0.0, "running_mean": np.array([1.0, -2.0]),
                "running_var": np.array([4.0, 0.25])}
    x = np.array([[3.0, -1.0], [1.0, -2.5]])
    out, _ = batchnorm_forward(x, np.array([2.0, -1.0]), np.array([0.5, 1.0]), bn_param)
    # column 0: 2 * (x - 1) / 2 + 0.5; column 1: -(x + 2) / 0.5 + 1
    assert out.tolist() == [[2.5, -1.0], [0.5, 2.0]]


def test_zero_initialised_running_var_matches_its_closed_form():
    # The same zero-mean batch with variance 1, repeated: running_var = 1 - m^k from zeros.
    x = np.array([[-1.0], [1.0]])
    m, eps = 0.9, 1e-5
    rms_zeros = rs.warmup_test_outputs([x] * 5, x, momentum=m, init_var=0.0, eps=eps)
    rms_ones = rs.warmup_test_outputs([x] * 5, x, momentum=m, init_var=1.0, eps=eps)
    k = np.arange(6)
    np.testing.assert_allclose(rms_zeros, 1 / np.sqrt(1 - m**k + eps), rtol=1e-12)
    np.testing.assert_allclose(rms_ones, 1 / np.sqrt(1 + eps), rtol=1e-12)
    assert rms_zeros[0] > 300  # before the first step: divided by sqrt(eps)


# --- conventions -------------------------------------------------------------------------------

@given(m=st.floats(0.0, 1.0))
def test_momentum_conversion_is_its_own_inverse(m):
    # Weight of the old value <-> weight of the new one: the same map in both directions.
    assert rs.to_pytorch_momentum(rs.to_pytorch_momentum(m)) == pytest.approx(m, abs=1e-15)
    assert rs.to_pytorch_momentum(m) == pytest.approx(1 - m, abs=1e-15)


@given(arrays(np.float64, st.integers(2, 50), elements=st.floats(-1e3, 1e3)))
def test_unbiased_var_is_numpys_ddof_1(x):
    assert rs.unbiased_var(x.var(), len(x)) == pytest.approx(x.var(ddof=1), rel=1e-9, abs=1e-12)


def test_defaults_in_the_course_convention():
    assert rs.COURSE.course_momentum() == 0.9
    assert rs.PYTORCH.course_momentum() == pytest.approx(0.9)
    assert rs.KERAS.course_momentum() == 0.99
    assert (rs.COURSE.eps, rs.PYTORCH.eps, rs.KERAS.eps) == (1e-5, 1e-5, 1e-3)


@given(st.integers(0, 2**31 - 1), st.integers(2, 12), st.integers(1, 8))
def test_course_and_pytorch_buffers_differ_only_by_the_unbiased_factor(seed, N, k):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(1.0, 2.0, (N, 3)) for _ in range(k)]
    rm_c, rv_c = rs.simulate(rs.COURSE, xs)
    rm_t, rv_t = rs.simulate(rs.PYTORCH, xs)
    np.testing.assert_allclose(rm_t, rm_c, rtol=1e-10, atol=1e-12)
    # Both start at 1; the averaged part is N/(N-1) larger in PyTorch.
    init = 0.9**k
    np.testing.assert_allclose(rv_t, init + N / (N - 1) * (rv_c - init), rtol=1e-10)


def test_pytorch_update_one_step_by_hand():
    x = np.array([[0.0], [2.0], [4.0]])  # mean 2, unbiased variance 4, biased 8/3
    rm, rv = rs.pytorch_running_update(np.array([1.0]), np.array([2.0]), x, momentum=0.25)
    assert rm.tolist() == [0.75 * 1.0 + 0.25 * 2.0]
    assert rv.tolist() == [0.75 * 2.0 + 0.25 * 4.0]
    with pytest.raises(ValueError):
        rs.pytorch_running_update(np.zeros(1), np.ones(1), x[:1], 0.1)


# --- population statistics and recalibration --------------------------------------------------

def test_population_estimate_the_papers_way():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, (64_000, 2))  # variance 4
    idx = rs.batches(len(X), batch_size=4)
    means = np.array([X[i].mean(axis=0) for i in idx])  # (16000, 2)
    variances = np.array([X[i].var(axis=0) for i in idx])  # (16000, 2)  biased, as in train mode
    mean, var = rs.population_estimate(means, variances, 4)
    np.testing.assert_allclose(mean, X.mean(axis=0), rtol=1e-12)  # equal batches: exact
    np.testing.assert_allclose(var, X.var(axis=0), rtol=0.03)
    # The plain average of biased batch variances is 3/4 of the variance for batches of 4.
    np.testing.assert_allclose(variances.mean(axis=0), 0.75 * X.var(axis=0), rtol=0.03)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(0.0, 1.0, (640, 8)) * rng.uniform(0.5, 3.0, 8) + rng.normal(0.0, 2.0, 8)
    y = (X[:, 0] + X[:, 1] > X[:, 2]).astype(int)
    return X, y


def test_recalibration_recovers_the_population_statistics_of_the_first_bn_layer(data):
    X, _ = data
    model = MLP((8, 16, 16, 2), batchnorm=True, seed=3)
    H = X @ model.W[0] + model.b[0]  # (N, 16): exactly what the first BN layer sees
    recal = rs.recalibrate(copy.deepcopy(model), X, batch_size=64)
    bn = recal.bn[0]
    np.testing.assert_allclose(bn.running_mean, H.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_var, H.var(axis=0), rtol=0.02)
    # Without the m/(m-1) factor: the mean biased batch variance, 63/64 of the above.
    biased = rs.population_statistics(model, X, 64, unbiased=False)[0][1]
    np.testing.assert_allclose(biased, bn.running_var * 63 / 64, rtol=1e-12)


def test_population_statistics_leave_the_model_unchanged(data):
    X, _ = data
    model = MLP((8, 16, 16, 2), batchnorm=True, seed=3).eval()
    before = copy.deepcopy(model)
    rs.population_statistics(model, X, 32)
    assert model.training is False
    for a, b in zip(model.bn[:2], before.bn[:2], strict=True):
        assert a.momentum == b.momentum
        np.testing.assert_array_equal(a.running_mean, b.running_mean)
        np.testing.assert_array_equal(a.running_var, b.running_var)


def test_recalibration_repairs_stale_running_statistics():
    from course import experiments

    model, _ = experiments.run(True, epochs=3)
    d = experiments.digits()
    good = accuracy(model, d.X_val, d.y_val)
    for bn in model.bn[:2]:  # buffers that were never updated (e.g. after averaging weights)
        bn.running_mean, bn.running_var = np.zeros(64), np.ones(64)
    stale = accuracy(model, d.X_val, d.y_val)
    rs.recalibrate(model, d.X_train, batch_size=64)
    assert good > 0.95 and stale < good - 0.05
    assert accuracy(model, d.X_val, d.y_val) >= good - 0.01


def test_warmup_claims_hold():
    d = load_digits(standardize=True)
    W1 = MLP((64, 64, 64, 10), batchnorm=True, seed=0).W[0]
    r = rs.warmup_study(d.X_train, d.X_val, W1)
    assert r["rms"][1.0].shape == (51,)
    assert_all_hold(rs.claims(r))


def test_population_claims_hold_for_a_trained_model():
    from course import experiments as ex

    d = ex.digits()
    model = ex.run(True, epochs=5)[0]
    assert_all_hold(rs.claims(rs.population_study(model, d.X_train, d.X_val, d.y_val)))


def test_keras_eps_claims_hold_and_the_ratio_is_the_closed_form():
    pixels = load_digits().X_train / 16
    r = rs.eps_study(pixels)
    assert_all_hold(rs.claims(r))
    for g in r["groups"].values():  # |x - mean| / sqrt(var + eps): the ratio is per feature
        np.testing.assert_allclose(g["ratio"], np.sqrt((g["var"] + 1e-5) / (g["var"] + 1e-3)))
