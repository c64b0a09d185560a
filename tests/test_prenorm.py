"""course.prenorm: pre-norm and post-norm residual stacks, their backward pass and growth."""

import numpy as np
import pytest

from course.gradcheck import numerical_gradient_array, rel_error
from course.prenorm import PLACEMENTS, random_blocks, stack


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_backward_matches_a_numerical_gradient(placement):
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    blocks = random_blocks(3, D=6, seed=1)
    _, _, dx = stack(x, blocks, placement, dout)
    num = numerical_gradient_array(lambda v: stack(v, blocks, placement, dout)[0], x.copy(), dout)
    assert rel_error(dx, num) < 1e-7


def test_post_norm_keeps_the_stream_at_unit_rms_and_pre_norm_lets_it_grow():
    rng = np.random.default_rng(2)
    x, dout = rng.normal(size=(16, 32)), rng.normal(size=(16, 32))
    _, post, _ = stack(x, random_blocks(16, D=32), "post-norm", dout)
    _, pre, dx = stack(x, random_blocks(16, D=32), "pre-norm", dout)
    np.testing.assert_allclose(post, 1.0, atol=1e-4)  # LN output: mean 0, variance 1 per row
    assert pre[-1] > 2.5 * pre[0]  # about sqrt(depth + 1) times the input's rms of 1
    assert np.linalg.norm(dx) > np.linalg.norm(dout)  # the identity path carries it all, and more


def test_unknown_placement_is_a_clear_error():
    with pytest.raises(ValueError, match="placement"):
        stack(np.zeros((2, 3)), [], "sandwich", np.zeros((2, 3)))


def test_the_placement_claims_hold_at_initialisation():
    from course.claims import assert_all_hold
    from course.prenorm import claims, growth

    assert_all_hold(claims(growth()))
