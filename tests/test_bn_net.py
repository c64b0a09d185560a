"""course.bn_net: the hand-wired {affine -> BN -> ReLU} x L -> affine -> softmax network."""

import numpy as np
import pytest

from course.batchnorm import batchnorm_forward
from course.bn_net import bn_net_accuracy, bn_net_loss, init_bn_net, train_bn_net
from course.experiments import digits
from course.gradcheck import numerical_gradient, rel_error
from course.tasks import random_gamma_beta


def _net(seed, sizes=(5, 4, 3, 3), N=7):
    rng = np.random.default_rng(seed)
    params, bn_params = init_bn_net(sizes, seed=seed)
    for i in range(1, len(sizes) - 1):
        params[f"gamma{i}"], params[f"beta{i}"] = random_gamma_beta(rng, sizes[i])
        params[f"b{i}"] = rng.normal(size=sizes[i])  # a non-zero bias before BN
    params[f"b{len(sizes) - 1}"] = rng.normal(size=sizes[-1])
    X, y = rng.normal(1.0, 2.0, (N, sizes[0])), rng.integers(0, sizes[-1], N)
    return params, bn_params, X, y


@pytest.mark.parametrize("seed, reg", [(0, 0.0), (1, 0.3), (2, 1.0)])
def test_every_gradient_matches_a_numerical_gradient(seed, reg):
    params, bn_params, X, y = _net(seed)
    _, grads = bn_net_loss(X, params, bn_params, y, reg)
    assert set(grads) == set(params)
    for name, value in params.items():
        num = numerical_gradient(lambda v, n=name: bn_net_loss(
            X, {**params, n: v}, [{} for _ in bn_params], y, reg)[0], value.copy())
        if name in ("b1", "b2"):  # a bias right before BN: its exact gradient is zero
            assert np.abs(grads[name]).max() < 1e-12 and np.abs(num).max() < 1e-7, name
        else:
            assert rel_error(grads[name], num) < 1e-6, name


def test_loss_is_softmax_loss_plus_half_reg_sum_of_squared_weights_only():
    params, bn_params, X, y = _net(3)
    plain, _ = bn_net_loss(X, params, [{} for _ in bn_params], y, 0.0)
    with_reg, _ = bn_net_loss(X, params, [{} for _ in bn_params], y, 0.2)
    squares = sum(np.sum(params[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert with_reg - plain == pytest.approx(0.1 * squares, rel=1e-12)


def test_train_mode_updates_running_statistics_and_test_mode_uses_them():
    params, bn_params, X, y = _net(4)
    bn_net_loss(X, params, bn_params, y)
    z1 = X @ params["W1"] + params["b1"]  # (N, 4) the first BN layer's input
    expected = {}
    batchnorm_forward(z1, params["gamma1"], params["beta1"], expected)
    np.testing.assert_allclose(bn_params[0]["running_mean"], expected["running_mean"])
    np.testing.assert_allclose(bn_params[0]["running_var"], expected["running_var"])
    before = {k: v.copy() for k, v in bn_params[0].items() if k.startswith("running")}
    scores_all = bn_net_loss(X, params, bn_params)  # y=None: test mode
    scores_one = bn_net_loss(X[:1], params, bn_params)
    assert bn_params[0]["mode"] == "test" and scores_all.shape == (7, 3)
    np.testing.assert_allclose(scores_one, scores_all[:1])  # no dependence on the batch
    for k, v in before.items():
        np.testing.assert_array_equal(bn_params[0][k], v)  # test mode leaves the buffers alone


def test_it_learns_the_digits():
    d = digits()
    params, bn_params = init_bn_net((64, 64, 64, 10), seed=0)
    losses = train_bn_net(bn_net_loss, params, bn_params, d.X_train, d.y_train, epochs=2)
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5])
    assert bn_net_accuracy(bn_net_loss, params, bn_params, d.X_val, d.y_val) > 0.9


def test_the_wiring_claims_hold_for_the_reference():
    from course.bn_net import bn_net_loss, claims, gradient_check, train_seeds
    from course.claims import assert_all_hold
    from course.experiments import SEEDS, digits

    check = gradient_check(bn_net_loss)
    assert {kind for kind, _ in check.values()} == {"rel_error", "max |gradient|"}
    assert [n for n, (kind, _) in check.items() if kind != "rel_error"] == ["b1", "b2"]
    assert_all_hold(claims(check, train_seeds(bn_net_loss, digits(), SEEDS)))


def test_the_gradient_check_catches_a_wrong_gradient():
    from course.bn_net import bn_net_loss, claims, gradient_check

    def wrong(X, params, bn_params, y=None, reg=0.0):
        out = bn_net_loss(X, params, bn_params, y, reg)
        if y is None:
            return out
        loss, grads = out
        return loss, {**grads, "gamma1": 1.1 * grads["gamma1"]}
    assert not claims(gradient_check(wrong))[0].holds
