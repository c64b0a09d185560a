"""Length-prefixed frames between the grader and a student process: JSON headers, .npz payloads.

Nothing here unpickles: headers are JSON and arrays are loaded with allow_pickle=False.
"""

import io
import json
import os
import struct

import numpy as np

_LEN = struct.Struct(">Q")
MAX_FRAME = 64 * 2**20  # a frame larger than this is refused, whatever the sender claims


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def send(fd, header, arrays=None):
    """Write one JSON header and, if arrays are given, one .npz payload after it."""
    header = dict(header, npz=arrays is not None)
    body = json.dumps(header).encode()
    _write_all(fd, _LEN.pack(len(body)) + body)
    if arrays is not None:
        payload = encode_arrays(arrays)
        _write_all(fd, _LEN.pack(len(payload)) + payload)


def encode_arrays(arrays):
    """The .npz bytes of a dict of float arrays."""
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def decode_arrays(payload):
    """A dict of float arrays from .npz bytes; object arrays are refused, never unpickled."""
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        return {k: np.asarray(data[k], dtype=float) for k in data.files}


class Reader:
    """Incremental frame reader over a non-blocking file descriptor."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()
        self.closed = False

    def feed(self):
        """Read what is available; mark closed on EOF."""
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            self.closed = True
        self.buf += chunk

    def message(self):
        """The next complete (header, arrays) message, or None if it has not fully arrived."""
        if len(self.buf) < _LEN.size:
            return None
        (n,) = _LEN.unpack_from(self.buf)
        if n > MAX_FRAME:
            raise ValueError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
        if len(self.buf) < _LEN.size + n:
            return None
        header = json.loads(self.buf[_LEN.size:_LEN.size + n])
        if not isinstance(header, dict):
            raise ValueError("malformed header")
        arrays = None
        if header.get("npz"):
            end = _LEN.size + n
            if len(self.buf) < end + _LEN.size:
                return None
            (m,) = _LEN.unpack_from(self.buf, end)
            if m > MAX_FRAME:
                raise ValueError(f"frame of {m} bytes exceeds the {MAX_FRAME}-byte limit")
            if len(self.buf) < end + _LEN.size + m:
                return None
            arrays = decode_arrays(bytes(self.buf[end + _LEN.size:end + _LEN.size + m]))
            del self.buf[:end + _LEN.size + m]
        else:
            del self.buf[:_LEN.size + n]
        return header, arrays
