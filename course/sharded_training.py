"""BN over sharded batches on the digits (notebook 06): synchronised BN checked against full-batch
BN, per-device against synchronised BN in training, ghost batches, and how noisy batch statistics
are on the digit pixels."""

import numpy as np

from course.batchnorm import batchnorm_backward, batchnorm_forward
from course.claims import Claim
from course.experiments import run
from course.mlp import MLP
from course.sync_bn import use_sharded_bn


def noise_claims(noise, small=4, large=64):
    """The batch mean's spread follows 1/sqrt(B); the batch std's shrinks more slowly here;
    noise from course.sync_bn.batch_stat_noise."""
    mean_ratio, std_ratio = noise[small][0] / noise[large][0], noise[small][1] / noise[large][1]
    return [Claim(f"from B = {small} to {large} the batch mean's spread shrinks about "
                  f"√{large // small} = {np.sqrt(large / small):.0f} times, the batch std's less "
                  "than 3 times",
                  abs(mean_ratio / np.sqrt(large / small) - 1) < 0.1 and std_ratio < 3,
                  {"batch mean": mean_ratio, "batch std": std_ratio},
                  "400 random batches per size")]


def full_batch_differences(forward, backward, cuts=(3, 12, 17), seed=2):
    """Synchronised BN (forward, backward) on a batch of 32 x 5 split into uneven shards at cuts,
    against single-device BN on the whole batch: {quantity: max |difference|}."""
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, (32, 5))  # (32, 5)
    gamma, beta, dout = rng.normal(1, 0.5, 5), rng.normal(size=5), rng.normal(size=(32, 5))
    p_sync, p_full = {"mode": "train"}, {"mode": "train"}
    outs, cache = forward(np.split(x, cuts), gamma, beta, p_sync)
    dxs, dgamma, dbeta = backward(np.split(dout, cuts), cache)
    out_ref, cache_ref = batchnorm_forward(x, gamma, beta, p_full)
    dx_ref, dgamma_ref, dbeta_ref = batchnorm_backward(dout, cache_ref)
    pairs = {"out": (np.concatenate(outs), out_ref),
             "running_var": (p_sync["running_var"], p_full["running_var"]),
             "dx": (np.concatenate(dxs), dx_ref), "dgamma": (dgamma, dgamma_ref),
             "dbeta": (dbeta, dbeta_ref)}
    return {k: float(np.abs(a - b).max()) for k, (a, b) in pairs.items()}


def _sharded(seed, **sharding):
    return use_sharded_bn(MLP([64, 64, 64, 10], batchnorm=True, seed=seed), **sharding)


def sharded_compare(seeds=range(5), shards=8, batch_size=32, lr=0.05, epochs=3):
    """Histories of the 64-64-64-10 MLP trained with a global batch split over `shards` simulated
    devices, synchronised and per device, and of plain BN on the whole batch (seed 0):
    {"plain": History, True: [History per seed], False: [...]}."""
    out = {"plain": run(True, lr=lr, epochs=epochs, batch_size=batch_size)[1]}
    for sync in (True, False):
        out[sync] = [run(make_model=lambda s, sync=sync: _sharded(s, shards=shards, sync=sync),
                         lr=lr, epochs=epochs, batch_size=batch_size, seed=seed)[1]
                     for seed in seeds]
    return out


def ghost_compare(ghost_sizes=(None, 32, 8), seeds=(0, 1, 2), batch_size=256, lr=0.2, epochs=6):
    """{ghost size (None = full BN): array (seeds, [train acc, val acc])}."""
    return {g: np.array([(h.train_acc[-1], h.val_acc[-1]) for h in (
        run(make_model=lambda s, g=g: MLP([64, 64, 64, 10], batchnorm=True, seed=s) if g is None
            else _sharded(s, ghost_size=g), lr=lr, epochs=epochs, batch_size=batch_size,
            seed=seed)[1] for seed in seeds)]) for g in ghost_sizes}


def claims(diffs, sharded, ghost):
    """What the sharded experiments show; from full_batch_differences, sharded_compare and
    ghost_compare."""
    sync = np.array([h.val_acc[-1] for h in sharded[True]])
    dev = np.array([h.val_acc[-1] for h in sharded[False]])
    loss_diff = np.abs(np.subtract(sharded[True][0].loss, sharded["plain"].loss)).max()
    full, small = ghost[None], ghost[min(g for g in ghost if g is not None)]
    gap = {g: a[:, 0] - a[:, 1] for g, a in ghost.items()}
    n = len(sync)
    return [
        Claim("synchronised BN equals BN on the concatenated batch, for uneven shards too, forward "
              "and backward (to rounding)", max(diffs.values()) < 1e-12,
              {"largest difference": max(diffs.values())}),
        Claim("trained with synchronised BN the network follows plain BN step for step",
              loss_diff < 1e-10, {"max |loss difference|": float(loss_diff)}, "seed 0, 8 shards"),
        Claim("per-device BN (4 examples per device) ends below synchronised BN on every seed",
              (dev < sync).all(), {"synchronised": sync.mean(), "per device": dev.mean()},
              f"{n} seeds, 8 devices, global batch 32"),
        Claim("ghost batches of 8 lower training and validation accuracy alike: the train-val gap "
              "stays within its seed spread, a worse fit, not regularisation",
              small[:, 1].mean() < full[:, 1].mean()
              and abs(gap[min(g for g in ghost if g is not None)].mean() - gap[None].mean())
              < max(gap[None].std(ddof=1), gap[min(g for g in ghost if g is not None)].std(ddof=1)),
              {"val acc full": full[:, 1].mean(), "ghost 8": small[:, 1].mean(),
               "gap full": gap[None].mean(), "gap ghost 8": gap[8].mean() if 8 in gap else np.nan},
              f"{len(full)} seeds, batch 256, 6 epochs"),
    ]
