"""The notebooks' timing helper."""

from course import timing
from course.timing import seconds_per_call


def test_seconds_per_call_calls_the_function_after_one_warm_up_and_divides_by_number(
        monkeypatch):
    clock = [0.0]  # a fake clock that only the work below advances
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    calls = []

    def work():
        calls.append(1)
        clock[0] += 0.25

    t = seconds_per_call(work, repeat=3, number=4)
    assert len(calls) == 1 + 3 * 4
    assert t == 0.25


def test_seconds_per_call_reports_the_least_disturbed_round(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    cost = iter([0.0] + [0.5] * 4 + [0.125] * 4)  # warm-up, one slow round, one fast round (exact)

    def work():
        clock[0] += next(cost)

    assert seconds_per_call(work, repeat=2, number=4) == 0.125


def test_speedups_has_one_ratio_per_round():
    from course.timing import speedups

    r = speedups(lambda: sum(range(2000)), lambda: sum(range(10)), rounds=3, repeat=2, number=3)
    assert r.shape == (3,) and (r > 1).all()


def test_speedup_of_real_sleeps_is_their_ratio():
    import time

    ratio, (low, high) = timing.speedup(lambda: time.sleep(0.004), lambda: time.sleep(0.001),
                                        rounds=5, number=3)
    assert low <= ratio <= high
    assert 2.0 < ratio < 4.5  # 4 ms against 1 ms; sleeps overshoot a little, never undershoot


def test_speedup_alternates_the_two_functions(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    order = []

    def slow():
        order.append("s")
        clock[0] += 3.0

    def fast():
        order.append("f")
        clock[0] += 1.0

    assert timing.speedup(slow, fast, rounds=3, number=2) == (3.0, (3.0, 3.0))
    assert "".join(order) == "sf" + "ssff" * 3  # warm-up, then alternating rounds
