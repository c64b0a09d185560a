"""course.sharded_training: synchronised BN against full-batch BN, per-device and ghost BN trained
on the digits, and the noise of batch statistics; the claims notebook 06 prints."""


from course.batchnorm import batchnorm_backward_alt
from course.claims import assert_all_hold
from course.experiments import digits
from course.sharded_training import (
    claims,
    full_batch_differences,
    ghost_compare,
    noise_claims,
    sharded_compare,
)
from course.sync_bn import (
    batch_stat_noise,
    per_shard_batchnorm_forward,
    sync_batchnorm_backward,
    sync_batchnorm_forward,
)


def test_full_batch_differences_catch_per_shard_statistics():
    ok = full_batch_differences(sync_batchnorm_forward, sync_batchnorm_backward)
    assert max(ok.values()) < 1e-12

    def per_shard_backward(douts, caches):
        grads = [batchnorm_backward_alt(d, c) for d, c in zip(douts, caches, strict=True)]
        return [g[0] for g in grads], sum(g[1] for g in grads), sum(g[2] for g in grads)
    wrong = full_batch_differences(per_shard_batchnorm_forward, per_shard_backward)
    assert wrong["out"] > 0.1  # each shard normalised with its own statistics


def test_the_sharded_and_ghost_claims_hold():
    diffs = full_batch_differences(sync_batchnorm_forward, sync_batchnorm_backward)
    assert_all_hold(claims(diffs, sharded_compare(seeds=range(5)), ghost_compare()))


def test_the_noise_claim_holds_on_the_digits():
    assert_all_hold(noise_claims(batch_stat_noise(digits().X_train, [4, 16, 64], 400, 0)))


def test_the_noise_claim_fails_for_a_spread_that_does_not_shrink():
    flat = {4: (0.5, 0.4), 64: (0.5, 0.4)}
    assert not noise_claims(flat)[0].holds
