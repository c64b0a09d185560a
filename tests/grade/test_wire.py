"""The result channel between a student process and the grader."""

import os

import pytest


def test_results_channel_refuses_pickles():
    import io
    import pickle

    import numpy as np

    from course.grade.sandbox import wire
    buf = io.BytesIO()
    np.savez(buf, evil=np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        wire.decode_arrays(buf.getvalue())
    r, w = os.pipe()
    os.write(w, wire._LEN.pack(len(pickle.dumps({}))) + pickle.dumps({}))
    os.close(w)
    reader = wire.Reader(r)
    reader.feed()
    with pytest.raises(ValueError):
        reader.message()
    os.close(r)


def _int8_zeros_npz(n):
    """An .npz holding n int8 zeros: n bytes sent, about n/1000 compressed, 8n bytes as float64."""
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, a0=np.zeros(n, dtype=np.int8))
    return buf.getvalue()


def test_the_budget_counts_arrays_as_the_grader_holds_them():
    import tracemalloc

    from course.grade.sandbox import wire
    n = wire.MAX_ARRAYS_BYTES // 4  # within the budget as int8, twice over it as float64
    payload = _int8_zeros_npz(n)
    assert len(payload) < wire.MAX_PAYLOAD
    tracemalloc.start()
    with pytest.raises(wire.ProtocolError, match="too large"):
        wire.decode_arrays(payload)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20, peak  # refused from the .npy header, before reading the data


def test_an_output_bigger_than_expected_comes_back_as_its_shape_only():
    import tracemalloc

    from course.grade.sandbox import wire
    payload = _int8_zeros_npz(2**20)
    tracemalloc.start()
    arrays = wire.decode_arrays(payload, expected={"a0": 20})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert arrays == {"a0": wire.Oversized((2**20,))} and peak < 2**20, peak
    small = wire.decode_arrays(_int8_zeros_npz(20), expected={"a0": 20})
    assert small["a0"].dtype == float and small["a0"].shape == (20,)
    with pytest.raises(wire.ProtocolError, match="did not expect"):
        wire.decode_arrays(payload, expected={"a1": 20})
