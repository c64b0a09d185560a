"""The seccomp filter every sandbox runs under: the system calls one student could use on another.

Built with libseccomp (through pyseccomp, its ctypes bindings) and handed to `bwrap --seccomp`,
so it holds for every process of the sandbox, the warm zygote included. Denied with EPERM:
inspecting or steering another process (ptrace, process_vm_readv/writev, pidfd_getfd, kcmp,
process_madvise, process_mrelease), System V and POSIX message-queue IPC (objects that would
outlive a student), kernel keyrings (kept per user, not per sandbox), and the kernel interfaces
no grading needs (bpf, perf_event_open, userfaultfd). A system call of another architecture
(32-bit x86 on x86_64) kills the process, so the calls above cannot be reached under other numbers.
"""

import errno
import os

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "process_madvise", "process_mrelease",
    "shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    "add_key", "request_key", "keyctl", "bpf", "perf_event_open", "userfaultfd",
)

_program = None


def program():
    """The filter as a BPF program (bytes), built once per run; ImportError without libseccomp."""
    global _program
    if _program is None:
        import tempfile

        import pyseccomp as sc  # raises ImportError (or RuntimeError: no libseccomp) here
        rules = sc.SyscallFilter(sc.ALLOW)
        rules.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
        for name in DENIED:
            try:
                rules.add_rule(sc.ERRNO(errno.EPERM), name)
            except (OSError, ValueError):  # a call this architecture does not have
                continue
        with tempfile.TemporaryFile() as f:
            rules.export_bpf(f)
            f.seek(0)
            _program = f.read()
    return _program


def fd():
    """A readable descriptor holding the filter, for `bwrap --seccomp FD` (the caller closes it)."""
    data = program()
    r, w = os.pipe()
    try:  # a few hundred bytes: far below a pipe's buffer, so this write never blocks
        os.write(w, data)
    finally:
        os.close(w)
    return r


def problem():
    """None if the filter can be built here, else why not in one line."""
    try:
        program()
    except (ImportError, RuntimeError, OSError) as exc:
        return (f"the seccomp filter cannot be built ({type(exc).__name__}: {exc}); "
                "install pyseccomp and libseccomp (make sandbox-deps)")
    return None
