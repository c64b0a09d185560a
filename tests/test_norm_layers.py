"""BatchNorm1d: the thin stateful layer around the pure functions (shown in notebook 02)."""

import numpy as np
import pytest

from course.batchnorm import batchnorm_backward, batchnorm_forward
from course.gradcheck import numerical_gradient_array, rel_error
from course.norm_layers import BatchNorm1d, SpatialBatchNorm
from course.tasks.base import random_gamma_beta


def _batch(N=8, D=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(2.0, 3.0, (N, D)), rng.normal(size=(N, D))  # x, dout


def _layer(D=3, seed=1):
    """A layer with non-trivial gamma and beta (the defaults 1 and 0 would hide mix-ups)."""
    rng = np.random.default_rng(seed)
    bn = BatchNorm1d(D)
    bn.gamma, bn.beta = random_gamma_beta(rng, D)
    return bn


def _after_training_forward():
    """The default batch, its upstream gradient, and the default layer after a forward pass on
    that batch in training mode (its caches and running statistics set)."""
    x, dout = _batch()
    bn = _layer()
    bn.forward(x)
    return x, dout, bn


def test_initial_state():
    bn = BatchNorm1d(4)
    np.testing.assert_array_equal(bn.gamma, np.ones(4))
    np.testing.assert_array_equal(bn.beta, np.zeros(4))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var, np.ones(4))  # ones: eval works from step 0
    assert bn.training and bn.eps == 1e-5 and bn.momentum == 0.9
    assert [name for name, _, _ in bn.params()] == ["gamma", "beta"]


def test_train_forward_matches_the_pure_function():
    x, _ = _batch()
    bn = _layer()
    out = bn(x)
    want, _ = batchnorm_forward(x, bn.gamma, bn.beta, {"mode": "train"})
    np.testing.assert_array_equal(out, want)


def test_running_statistics_follow_momentum_as_weight_of_the_old_value():
    bn = _layer()
    x1, _ = _batch(seed=1)
    x2, _ = _batch(seed=2)
    bn.forward(x1)
    np.testing.assert_allclose(bn.running_mean, 0.1 * x1.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * x1.var(axis=0), rtol=1e-12)
    bn.forward(x2)
    np.testing.assert_allclose(bn.running_mean,
                               0.9 * 0.1 * x1.mean(axis=0) + 0.1 * x2.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        bn.running_var, 0.9 * (0.9 + 0.1 * x1.var(axis=0)) + 0.1 * x2.var(axis=0), rtol=1e-12)


def test_running_statistics_converge_to_the_population_values():
    rng = np.random.default_rng(3)
    bn = BatchNorm1d(2, momentum=0.9)
    for _ in range(300):
        bn.forward(rng.normal([5.0, -1.0], [2.0, 0.5], (256, 2)))
    np.testing.assert_allclose(bn.running_mean, [5.0, -1.0], atol=0.1)
    np.testing.assert_allclose(bn.running_var, [4.0, 0.25], rtol=0.1)


def test_eval_mode_uses_running_statistics_and_leaves_them_alone():
    x, _, bn = _after_training_forward()
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    bn.training = False
    single = x[:1] + 10.0  # one example: no batch statistics exist
    out = bn(single)
    want = bn.gamma * (single - mean) / np.sqrt(var + bn.eps) + bn.beta
    np.testing.assert_allclose(out, want, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean, mean)
    np.testing.assert_array_equal(bn.running_var, var)


def test_eval_output_of_an_example_does_not_depend_on_its_batch_mates():
    x, _, bn = _after_training_forward()
    bn.training = False
    np.testing.assert_allclose(bn(x)[:2], bn(x[:2]), rtol=1e-12)


def test_train_mode_refuses_a_single_example_and_names_the_layers_switch():
    bn = BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"at least 2.*layer\.training = False") as err:
        bn.forward(np.ones((1, 3)))
    assert "mode=" not in str(err.value)  # the layer has no mode argument
    bn.training = False  # the switch the message names works
    assert bn.forward(np.ones((1, 3))).shape == (1, 3)


def test_spatial_train_mode_accepts_one_image_with_several_pixels():
    out = SpatialBatchNorm(2).forward(np.random.default_rng(0).normal(size=(1, 2, 3, 3)))
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="layer.training = False"):
        SpatialBatchNorm(2).forward(np.ones((1, 2, 1, 1)))  # one value per channel


def test_backward_matches_the_reference_and_stores_parameter_gradients():
    x, dout, bn = _after_training_forward()
    dx = bn.backward(dout)
    _, cache = batchnorm_forward(x, bn.gamma, bn.beta, {"mode": "train"})
    ref_dx, ref_dgamma, ref_dbeta = batchnorm_backward(dout, cache)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-14)
    grads = {name: grad for name, _, grad in bn.params()}
    np.testing.assert_allclose(grads["gamma"], ref_dgamma, rtol=1e-12)
    np.testing.assert_allclose(grads["beta"], ref_dbeta, rtol=1e-12)


def test_backward_passes_a_numerical_gradient_check():
    x, dout = _batch(N=6, D=4, seed=5)
    bn = _layer(D=4, seed=6)

    def out(v):
        fresh = BatchNorm1d(4)
        fresh.gamma, fresh.beta = bn.gamma, bn.beta
        return fresh(v)

    bn.forward(x)
    dx = bn.backward(dout)
    assert rel_error(dx, numerical_gradient_array(out, x.copy(), dout)) <= 1e-8


def test_params_share_memory_with_the_layer_so_updates_stick():
    x, dout, bn = _after_training_forward()
    bn.backward(dout)
    gamma0, beta0 = bn.gamma.copy(), bn.beta.copy()
    for _, value, grad in bn.params():
        value -= 0.1 * grad  # an optimiser's in-place step
    np.testing.assert_allclose(bn.gamma, gamma0 - 0.1 * bn.dgamma, rtol=1e-14)
    np.testing.assert_allclose(bn.beta, beta0 - 0.1 * bn.dbeta, rtol=1e-14)
    assert not np.allclose(bn.forward(x), _layer()(x))


def test_backward_after_eval_forward_is_the_affine_gradient():
    x, dout, bn = _after_training_forward()
    bn.training = False
    bn.forward(x)
    dx = bn.backward(dout)
    np.testing.assert_allclose(dx, bn.gamma / np.sqrt(bn.running_var + bn.eps) * dout,
                               rtol=1e-12)
