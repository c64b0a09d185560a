"""The notebooks' timing helper."""

from course.timing import seconds_per_call


def test_seconds_per_call_calls_the_function_after_one_warm_up():
    calls = []
    t = seconds_per_call(lambda: calls.append(1), repeat=3, number=4)
    assert len(calls) == 1 + 3 * 4
    assert t >= 0.0


def test_seconds_per_call_reports_the_least_disturbed_round():
    slept = iter([0.0] + [0.05] * 4 + [0.0] * 4)  # warm-up, one slow round, one fast round

    def work():
        import time
        time.sleep(next(slept))

    assert seconds_per_call(work, repeat=2, number=4) < 0.02
