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
