"""Notebooks 01-02: sigmoid slope, saturation, standardising, the deep sigmoid net, γ and β."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course import saturation as sat
from course.batchnorm import batchnorm_forward
from course.claims import assert_all_hold
from course.gradcheck import numerical_gradient, rel_error
from course.layers import sigmoid, sigmoid_grad


def test_sigmoid_slope_peaks_at_a_quarter_at_zero_and_is_small_beyond_the_threshold():
    z = np.linspace(-10, 10, 2001)
    g = sigmoid_grad(z)
    assert sigmoid_grad(np.array(0.0)) == 0.25
    assert g.max() == 0.25 and z[g.argmax()] == 0.0
    assert np.all(g[np.abs(z) > sat.SATURATION_THRESHOLD] < 0.018)
    assert sigmoid_grad(np.array(4.0)) == pytest.approx(0.0176627, rel=1e-5)
    assert sigmoid_grad(np.array(5.0)) == pytest.approx(0.0066481, rel=1e-4)


def test_saturation_fraction_on_a_hand_made_array():
    z = np.array([[-5.0, 0.0, 4.0], [4.5, -3.0, 10.0]])
    assert sat.saturation_fraction(z) == 0.5  # -5, 4.5 and 10; exactly 4 is not beyond
    assert sat.saturation_fraction(z, threshold=6.0) == pytest.approx(1 / 6)
    assert sat.saturation_fraction(z, threshold=2.0) == pytest.approx(5 / 6)  # all but 0
    assert sat.saturation_fraction(np.zeros((3, 3))) == 0.0
    assert isinstance(sat.saturation_fraction(z), float)


@given(arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 8)),
              elements=st.floats(-50, 50)), st.floats(0, 20))
def test_saturation_fraction_is_symmetric_and_in_unit_interval(z, t):
    f = sat.saturation_fraction(z, t)
    assert 0.0 <= f <= 1.0
    assert f == sat.saturation_fraction(-z, t)
    assert sat.saturation_fraction(z, t + 1) <= f


def test_standardize_hand_made_and_equal_to_batchnorm_with_unit_gamma():
    x = np.array([[1.0], [3.0]])  # mean 2, biased variance 1
    np.testing.assert_allclose(sat.standardize(x), np.array([[-1.0], [1.0]]) / np.sqrt(1 + 1e-5))
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(10, 4))
    bn, _ = batchnorm_forward(x, np.ones(4), np.zeros(4), {"mode": "train"})
    np.testing.assert_allclose(sat.standardize(x), bn, rtol=1e-12)


@given(arrays(np.float64, st.tuples(st.integers(2, 12), st.integers(1, 6)),
              elements=st.floats(-1e3, 1e3)))
def test_standardize_gives_zero_mean_and_variance_below_one(x):
    out = sat.standardize(x)
    var = x.var(axis=0)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-8)
    np.testing.assert_allclose(out.var(axis=0), var / (var + 1e-5), rtol=1e-6, atol=1e-10)


def _small_net(seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    return X, y, sat.init_weights([5, 4, 4, 3], seed=seed)


@pytest.mark.parametrize("normalize", [False, "center", True])
def test_mlp_gradients_are_those_of_the_weights_the_network_uses(normalize):
    X, y, weights = _small_net()
    scale, shift = 1.7, 0.3
    grads = sat.mlp_forward_backward(X, y, weights, scale, shift, normalize)["grads"]
    assert len(grads) == len(weights)
    for V, g in zip(weights, grads, strict=True):
        def loss(_):
            return sat.mlp_forward_backward(X, y, weights, scale, shift, normalize)["loss"]
        num = numerical_gradient(loss, V)  # d loss / d V, perturbing V in place
        assert rel_error(g, num / scale) < 1e-8  # W = scale * V, so dL/dW = dL/dV / scale


def test_unknown_normalize_is_refused():
    X, y, weights = _small_net()
    with pytest.raises(ValueError, match="normalize"):
        sat.mlp_forward_backward(X, y, weights, normalize="yes")


def test_centring_removes_each_units_mean_and_keeps_its_spread():
    X, y, weights = sat.demo_data()
    centred = sat.mlp_forward_backward(X, y, weights, scale=4.0, normalize="center")["z"]
    plain = sat.mlp_forward_backward(X, y, weights, scale=4.0)["z"]
    np.testing.assert_allclose(centred[0].mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(centred[0], plain[0] - plain[0].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(sat.layer_offsets(centred), 0, atol=1e-10)


def test_layer_offsets_is_the_std_of_the_unit_means():
    z = np.array([[0.0, 10.0], [2.0, 12.0]])  # unit means 1 and 11, each with std 1
    np.testing.assert_allclose(sat.layer_offsets([z]), [5.0])
    np.testing.assert_allclose(sat.layer_spread([z]), [1.0])


def test_gradient_vanishes_towards_the_input_in_the_plain_net_but_not_when_standardised():
    X, y, weights = sat.demo_data()
    plain = sat.mlp_forward_backward(X, y, weights, scale=1.0)["grad_norms"]
    normed = sat.mlp_forward_backward(X, y, weights, scale=1.0, normalize=True)["grad_norms"]
    assert np.all(np.diff(plain) > 0)  # each layer nearer the input gets a smaller gradient
    assert plain[0] < 1e-3 * plain[-1]
    hidden = normed[:-1]
    assert hidden.max() < 2 * hidden.min()


def test_large_weights_saturate_and_standardising_removes_it_and_ignores_the_shift():
    X, y, weights = sat.demo_data()
    small = sat.mlp_forward_backward(X, y, weights, scale=1.0)["z"]
    big = sat.mlp_forward_backward(X, y, weights, scale=8.0)["z"]
    normed = sat.mlp_forward_backward(X, y, weights, scale=8.0, normalize=True)["z"]
    shifted = sat.mlp_forward_backward(X, y, weights, scale=8.0, shift=3.0, normalize=True)["z"]
    for zs, zb, zn, zsh in zip(small, big, normed, shifted, strict=True):
        assert sat.saturation_fraction(zb) > 0.3 > sat.saturation_fraction(zs)
        assert sat.saturation_fraction(zn) < 0.01
        np.testing.assert_allclose(zn.mean(axis=0), 0, atol=1e-10)
        np.testing.assert_allclose(zn, zsh, atol=1e-8)  # BN cancels any bias


def test_train_recording_records_every_step_on_a_fixed_batch_without_touching_inputs():
    X, y, weights = _small_net(1)
    X, y = np.tile(X, (4, 1)), np.tile(y, 4)  # 24 examples
    before = [W.copy() for W in weights]
    new, record = sat.train_recording(X, y, weights, steps=3, lr=0.5, layer=1, batch=8)
    assert len(record) == 4 and record[0].shape == (8, 4)
    np.testing.assert_array_equal(record[0],
                                  sat.mlp_forward_backward(X[:8], y[:8], weights)["z"][1])
    for W, b in zip(weights, before, strict=True):
        np.testing.assert_array_equal(W, b)
    assert not np.allclose(record[0], record[-1])
    assert not np.allclose(new[0], weights[0])


def test_train_recording_takes_sgd_steps_on_the_weights_the_network_uses():
    X, y, weights = _small_net(2)
    scale, lr = 3.0, 0.2
    new, _ = sat.train_recording(X, y, weights, steps=1, lr=lr, layer=0, scale=scale, batch=6)
    W = [scale * V for V in weights]
    grads = sat.mlp_forward_backward(X, y, W)["grads"]  # the batch of 6 is all of X
    for v_new, w, g in zip(new, W, grads, strict=True):
        np.testing.assert_allclose(scale * v_new, w - lr * g, rtol=1e-12)


def test_linear_r2_exact_cases():
    x = np.linspace(-1, 1, 11)[:, None]  # (11, 1)
    np.testing.assert_allclose(sat.linear_r2(x, 3 * x - 2), [1.0])
    np.testing.assert_allclose(sat.linear_r2(x, x**2), [0.0], atol=1e-12)  # symmetric: no slope


# --- notebook 02: gamma and beta over a sigmoid ---------------------------------------------------

def test_saturation_counts_units_beyond_the_course_threshold():
    z = np.array([-4.5, -2.0, 0.0, 3.9, 6.0])  # the threshold is |z| > 4, as in notebook 01
    frac, slope = sat.saturation(z)
    assert frac == pytest.approx(2 / 5)
    assert slope == pytest.approx(np.mean(sigmoid(z) * (1 - sigmoid(z))))
    assert sat.saturation(np.zeros(3)) == (0.0, 0.25)


def test_sample_is_standardised_and_bimodal():
    x_hat = sat.standardized_sample()
    assert abs(x_hat.mean()) < 1e-12 and x_hat.std() == pytest.approx(1.0)
    counts, _ = np.histogram(x_hat, bins=[-3, -0.3, 0.3, 3])
    assert counts[1] < 0.05 * counts.sum()  # few units between the two groups


def test_larger_gamma_saturates_more_and_lowers_the_mean_slope():
    x_hat = sat.standardized_sample()
    stats = [sat.saturation(g * x_hat) for g in (0.5, 1.0, 2.0, 4.0)]
    fracs, slopes = zip(*stats, strict=True)
    assert list(fracs) == sorted(fracs) and list(slopes) == sorted(slopes, reverse=True)
    assert fracs[1] == 0.0 and fracs[3] > 0.3


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_notebook_01_claims_hold_for_its_network_and_other_weight_draws(seed):
    # Notebook 01's story, as it prints it (seed 0): sat.claims is the one place for its
    # thresholds; other draws of the unit-scale weights tell the same story.
    assert_all_hold(sat.claims(sat.scale_study(*sat.demo_data(seed=seed))))


def test_standardised_relative_gradients_are_flat_over_depth_and_fall_like_one_over_c():
    X, y, weights = sat.demo_data()
    scales = (0.5, 1.0, 4.0, 10.0)
    rel = np.array([sat.mlp_forward_backward(X, y, weights, scale=s, normalize=True)
                    ["rel_grad_norms"][:-1] for s in scales])  # (4, 6) hidden layers
    assert np.all(rel.max(axis=1) / rel.min(axis=1) < 1.3)  # the same for every hidden layer
    times_c = rel * np.array(scales)[:, None]  # (4, 6) constant if rel ~ 1/c
    assert times_c.max() / times_c.min() < 1.3
    plain = sat.mlp_forward_backward(X, y, weights, scale=3.0)
    W_norms = [np.linalg.norm(3.0 * W) for W in weights]
    np.testing.assert_allclose(plain["rel_grad_norms"], plain["grad_norms"] / W_norms)


def test_gamma_makes_a_fixed_next_layers_and_readout_more_exact():
    r = sat.and_readout((1.0, 2.5, 5.0))
    shares = [r[g][0] for g in (1.0, 2.5, 5.0)]
    errors = [r[g][1] for g in (1.0, 2.5, 5.0)]
    assert shares == sorted(shares) and errors == sorted(errors, reverse=True)
    assert_all_hold(sat.and_readout_claims(r))  # the threshold notebook 02 prints
    assert 0.9 < shares[0] < shares[2] < 1.0


def test_drift_claims_hold():
    from course.dataset import load_digits

    d = load_digits(standardize=True)
    drift = sat.drift_study(d.X_train, d.y_train, sat.demo_data()[2])
    assert drift["plain"]["record"].shape == (31, 128, 64)
    assert_all_hold(sat.drift_claims(drift))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=30))
def test_best_threshold_errors_is_the_brute_force_minimum_over_every_cut(pairs):
    score = np.array([p[0] for p in pairs], dtype=float)  # (n,) small integers: many ties
    positive = np.array([p[1] for p in pairs])  # (n,)
    cuts = np.concatenate([[score.min() - 1], np.unique(score) + 0.5])  # below all, between, above
    brute = min(int(np.sum((score > t) != positive)) for t in cuts)
    assert sat.best_threshold_errors(score, positive) == brute
