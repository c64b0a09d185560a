"""Length-prefixed frames between the grader and a student process: JSON headers, .npz payloads.

Nothing here unpickles, and nothing is allocated on the sender's word: a header is bounded in
bytes and nesting depth, an .npz payload in compressed size, and each array in dtype, shape and
size (read from the .npy header) before it is read: its size as the grader will hold it (float64,
whatever dtype was sent) counts against the payload's budget, and the grader may name the arrays
it expects with the most elements each may have (an output is never bigger than the reference's).
Every violation raises ProtocolError, which the grader turns into that question's failure.
"""

import io
import json
import os
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

_LEN = struct.Struct(">Q")
MAX_HEADER = 1 * 2**20  # one JSON header
MAX_PAYLOAD = 16 * 2**20  # one .npz payload, compressed
MAX_ARRAYS_BYTES = 64 * 2**20  # all arrays of one payload, as float64
MAX_ARRAYS = 4096
MAX_NDIM = 8
MAX_DEPTH = 32  # JSON nesting
GRADER_ITEMSIZE = np.dtype(float).itemsize  # what the grader converts every array to
_DTYPES = "biuf"  # bool, integers, floats: never objects, strings or structured records


class ProtocolError(ValueError):
    """A frame that breaks the protocol: malformed, oversized, or out of order."""


@dataclass(frozen=True)
class Oversized:
    """An array with more elements than the grader expected, left undecoded: only its shape."""

    shape: tuple


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def frame(header, arrays=None):
    """The bytes of one message: a JSON header and, if arrays are given, an .npz payload."""
    body = json.dumps(dict(header, npz=arrays is not None)).encode()
    data = _LEN.pack(len(body)) + body
    if arrays is not None:
        payload = encode_arrays(arrays)
        data += _LEN.pack(len(payload)) + payload
    return data


def send(fd, header, arrays=None):
    """Write one message to a blocking descriptor."""
    _write_all(fd, frame(header, arrays))


def encode_arrays(arrays):
    """The .npz bytes of a dict of numeric arrays."""
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def _check_depth(obj):
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ProtocolError("header nested too deeply")
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]


def _bounded(data, limit, what, parse, errors):
    """parse(data), refused with a ProtocolError naming `what` when data is over `limit` bytes
    or parse raises one of `errors`."""
    if len(data) > limit:
        raise ProtocolError(f"{what} too large")
    try:
        return parse(data)
    except errors as exc:
        raise ProtocolError(f"malformed {what}") from exc


def decode_header(body):
    """A JSON object from header bytes, bounded in size and depth."""
    header = _bounded(body, MAX_HEADER, "header", lambda b: json.loads(bytes(b)),
                      (ValueError, RecursionError, UnicodeDecodeError))
    if not isinstance(header, dict):
        raise ProtocolError("malformed header")
    _check_depth(header)
    return header


def _read_member(zf, info, budget, most):
    """(float array, bytes as float) from an .npz member, after checking its header against the
    budget; (Oversized, 0) when it has more elements than `most` (None: no such bound)."""
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=4096)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=4096)
        else:
            raise ProtocolError("unknown array format")
        if dtype.kind not in _DTYPES or dtype.hasobject or len(shape) > MAX_NDIM or \
                any(not isinstance(n, int) or n < 0 for n in shape):
            raise ProtocolError("array of a refused dtype or shape")
        count = int(np.prod(shape, dtype=object))
        if most is not None and count > most:
            return Oversized(tuple(shape)), 0
        held = count * max(dtype.itemsize, GRADER_ITEMSIZE)  # int8 sent, float64 kept
        if held > budget:
            raise ProtocolError("arrays too large")
        data = f.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise ProtocolError("truncated array")
        flat = np.frombuffer(data, dtype=dtype)
        array = flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)
        return np.array(array, dtype=float), held


def decode_arrays(payload, expected=None):
    """A dict of float arrays from .npz bytes, every bound checked before anything is allocated.

    expected: {array name: most elements}; then any other array is refused, and one with more
    elements comes back as an Oversized marker (the student's wrong shape, judged as such)."""
    zf = _bounded(payload, MAX_PAYLOAD, "payload", lambda p: zipfile.ZipFile(io.BytesIO(p)),
                  (zipfile.BadZipFile, ValueError, OSError))
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ARRAYS or sum(i.file_size for i in infos) > MAX_ARRAYS_BYTES * 2:
            raise ProtocolError("payload too large")
        out, budget = {}, MAX_ARRAYS_BYTES
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ProtocolError("malformed payload")
            name = info.filename[:-4]
            if expected is not None and name not in expected:
                raise ProtocolError("an array the grader did not expect")
            try:
                array, size = _read_member(zf, info, budget,
                                           None if expected is None else expected[name])
            except ProtocolError:
                raise
            except (zipfile.BadZipFile, ValueError, OSError, EOFError, TypeError,
                    NotImplementedError, SyntaxError, OverflowError, MemoryError) as exc:
                raise ProtocolError("malformed payload") from exc
            budget -= size
            out[name] = array
        return out


def pack(obj, arrays):
    """A JSON-able tree for nested case inputs; arrays go to `arrays` and are named in the tree."""
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"array": key}
    if isinstance(obj, dict):
        return {"dict": [[str(k), pack(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"list" if isinstance(obj, list) else "tuple": [pack(v, arrays) for v in obj]}
    if isinstance(obj, np.generic):
        return {"value": obj.item()}
    return {"value": obj}


def unpack(tree, arrays):
    """The nested value `pack` described (grader-made data, read inside the student process)."""
    if "array" in tree:
        return arrays[tree["array"]]
    if "dict" in tree:
        return {k: unpack(v, arrays) for k, v in tree["dict"]}
    if "list" in tree:
        return [unpack(v, arrays) for v in tree["list"]]
    if "tuple" in tree:
        return tuple(unpack(v, arrays) for v in tree["tuple"])
    return tree["value"]


def read_frame(fd):
    """One (header, arrays) message read blocking from fd (inside the student process)."""
    def exactly(n):
        data = bytearray()
        while len(data) < n:
            chunk = os.read(fd, min(n - len(data), 1 << 20))
            if not chunk:
                raise EOFError("channel closed")
            data += chunk
        return bytes(data)
    (n,) = _LEN.unpack(exactly(_LEN.size))
    header = json.loads(exactly(n))
    arrays = None
    if header.get("npz"):
        (m,) = _LEN.unpack(exactly(_LEN.size))
        with np.load(io.BytesIO(exactly(m)), allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    return header, arrays


class Reader:
    """Incremental frame reader over a non-blocking file descriptor (in the grader)."""

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

    def message(self, expected=None):
        """The next complete (header, arrays) message, or None if it has not fully arrived.

        expected(header) -> {array name: most elements}, or None for no such bound."""
        if len(self.buf) < _LEN.size:
            return None
        (n,) = _LEN.unpack_from(self.buf)
        if n > MAX_HEADER:
            raise ProtocolError(f"header of {n} bytes exceeds the {MAX_HEADER}-byte limit")
        if len(self.buf) < _LEN.size + n:
            return None
        header = decode_header(self.buf[_LEN.size:_LEN.size + n])
        arrays = None
        if header.get("npz"):
            end = _LEN.size + n
            if len(self.buf) < end + _LEN.size:
                return None
            (m,) = _LEN.unpack_from(self.buf, end)
            if m > MAX_PAYLOAD:
                raise ProtocolError(f"payload of {m} bytes exceeds the {MAX_PAYLOAD}-byte limit")
            if len(self.buf) < end + _LEN.size + m:
                return None
            arrays = decode_arrays(bytes(self.buf[end + _LEN.size:end + _LEN.size + m]),
                                   None if expected is None else expected(header))
            del self.buf[:end + _LEN.size + m]
        else:
            del self.buf[:_LEN.size + n]
        return header, arrays
