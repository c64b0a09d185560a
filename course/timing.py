"""Timing a function in a notebook cell (speed-ups are printed, never compared by tests)."""

import time

import numpy as np


def seconds_per_call(fn, repeat=7, number=20):
    """Best of `repeat` rounds of `number` calls of fn(), in seconds per call, after a warm-up."""
    fn()  # warm-up: first calls pay for caches and lazy imports
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    # The minimum, not the mean: other programs only ever add time, never remove it.
    return min(rounds)


def speedups(slow, fast, rounds=5, repeat=3, number=10):
    """seconds_per_call(slow) / seconds_per_call(fast) for `rounds` independent rounds (rounds,):
    on a shared machine one ratio can be far off, so print the median and the range."""
    return np.array([seconds_per_call(slow, repeat, number) / seconds_per_call(fast, repeat, number)
                     for _ in range(rounds)])
