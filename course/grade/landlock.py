"""Refuse file writes outside a few folders, for this process and its children (Linux Landlock).

Best effort: on kernels without Landlock (or other systems) nothing is restricted and
`restrict_writes` returns False. Reading stays allowed everywhere (imports need it).
"""

import ctypes
import os
import struct
import sys

_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446  # syscall numbers, the same on x86-64 and arm64
_VERSION = 1  # LANDLOCK_CREATE_RULESET_VERSION
_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

WRITE_FILE, REMOVE_DIR, REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
MAKE_ALL = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
REFER, TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and ABI 3


def _abi(libc):
    return libc.syscall(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))


def restrict_writes(folders, files=(os.devnull,)):
    """Allow writing only beneath `folders` (and to `files`); True if the kernel enforces it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        abi = _abi(libc)
        if abi < 1:
            return False
        handled = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_ALL
        handled |= (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
        attr = ctypes.create_string_buffer(struct.pack("=Q", handled))
        ruleset = libc.syscall(_CREATE, attr, ctypes.c_size_t(8), ctypes.c_uint32(0))
        if ruleset < 0:
            return False
        try:
            file_rights = handled & (WRITE_FILE | TRUNCATE)
            rules = [(f, handled) for f in folders] + [(f, file_rights) for f in files]
            for path, rights in rules:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd))
                    if libc.syscall(_ADD_RULE, ruleset, _PATH_BENEATH, rule, 0) != 0:
                        return False
                finally:
                    os.close(fd)
            if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                return False
            return libc.syscall(_RESTRICT, ruleset, ctypes.c_uint32(0)) == 0
        finally:
            os.close(ruleset)
    except (OSError, AttributeError):
        return False
