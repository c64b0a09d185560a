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


def speedup(slow, fast, rounds=15, number=10):
    """How many times faster `fast` is than `slow`, measured in alternating rounds so both see
    the same machine load: (median of the per-round ratios, (25th, 75th percentile)) over
    `rounds` rounds of `number` calls each."""
    slow(), fast()  # warm-up
    ratios = []
    for _ in range(rounds):
        times = []
        for fn in (slow, fast):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            times.append(time.perf_counter() - start)
        ratios.append(times[0] / times[1])
    q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
    return float(q50), (float(q25), float(q75))
