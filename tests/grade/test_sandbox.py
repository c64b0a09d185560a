"""The grader's trust boundary against hostile students: one end-to-end attack per class.

One batch, graded by the real CLI with --jobs 1 so that every attacker is followed by an honest
student in the same warm sandbox: each honest student's answer cell first asserts that it sees
no process, file or IPC object of anyone before it, and that pid 1 is still the grader's. An
attack that works makes its own answer cell raise where it can (ptrace, fork bomb), so both the
attacker's row and the next student's say whether anything crossed. Real processes, no mocks.
"""

import copy
import csv
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from course import notebook as nbtools
from course.grade.sandbox import cgroup
from course.grade.sandbox.bwrap import probe

ROOT = Path(__file__).resolve().parents[2]
NB = "02_forward_pass"
FN, POINTS = "batchnorm_forward", 3.0
GID = FN  # a task's grade_id is the name of its first function
SOLUTION = ROOT / "solutions" / f"{NB}.ipynb"
assert SOLUTION.exists(), f"{SOLUTION} is what these tests grade"
if probe() is not None:  # one line for the whole file (a failure under `make test`)
    pytest.skip(f"no sandbox here: {probe()}", allow_module_level=True)
MARK = uuid.uuid4().hex[:10]
TIMEOUT = 3

CLEAN = f"""
import os, sys
_mine = {{1, os.getpid(), os.getppid()}}
_others = [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in _mine]
assert not _others, f'processes of someone else: {{_others}}'
# pid 1 is the grader's zygote (or, spawned, bwrap's init), never a process a student started
_pid1 = open('/proc/1/cmdline', 'rb').read()
assert b'--zygote' in _pid1 or b'bwrap' in _pid1, _pid1[:200]
# read-only mount points of an environment that lives below /tmp (a CI clone) are not leftovers
_mounts = {{p.split('/')[2] for p in [sys.prefix, *sys.path] if p.startswith('/tmp/')}}
_left = sorted(set(os.listdir('/tmp')) - {{'run', '.mpl'}} - _mounts) + os.listdir(os.getcwd())
_mpl = os.listdir('/tmp/.mpl') if os.path.isdir('/tmp/.mpl') else []
_left += os.listdir('/dev/shm') + [n for n in _mpl if not n.startswith('fontlist')]
for _dir in ('/', '/etc', '/grade', '/dev'):  # the places between the mounts
    _left += [n for n in os.listdir(_dir) if n.startswith('left_')]
for _kind in ('shm', 'msg', 'sem'):  # System V IPC objects: a header line and nothing else
    _left += open(f'/proc/sysvipc/{{_kind}}').read().splitlines()[1:]
assert not _left, f'files or IPC objects of someone else: {{_left[:5]}}'
open('probe_{MARK}', 'w').write('x' * 1000)  # the scratch is writable again
"""

RESULT_FD = """
import fcntl, os, stat, struct, json
def _result_fd():
    for fd in range(3, 256):  # the one write-only pipe: the grader's result channel
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode) and \\
                    fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                return fd
        except OSError:
            pass
def _send(fd, raw_header, payload=None):
    os.write(fd, struct.pack('>Q', len(raw_header)) + raw_header)
    if payload is not None:
        os.write(fd, struct.pack('>Q', len(payload)) + payload)
def _zeros_npz(names, n):  # n int8 zeros per array, never held whole by us
    import io, zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in names:
            with zf.open(name + '.npy', 'w', force_zip64=True) as f:
                head = "{'descr': '|i1', 'fortran_order': False, 'shape': (%d,), }" % n
                head = head.ljust(118) + '\\n'
                f.write(b'\\x93NUMPY\\x01\\x00' + struct.pack('<H', len(head)) + head.encode())
                zeros = bytes(2**22)
                for _ in range(n // len(zeros)):
                    f.write(zeros)
    return buf.getvalue()
"""


def _attacks(sol_src, out):
    """{student: answer-cell source}; honest students are inserted between them later."""
    grader_words = "[b'course.grade', b'--out', b'pytest']"
    return {
        # -- full marks with no implementation
        "ref_setup_import": f"def {FN}(*a, **k):\n    return reference_forward(*a, **k)\n",
        "ref_sys_modules": (f"import sys\ndef {FN}(*a, **k):\n"
                            f"    return sys.modules['course.batchnorm'].{FN}(*a, **k)\n"),
        "ref_stack_walk": (
            f"import sys\ndef {FN}(*a, **k):\n"
            "    f = sys._getframe(1)\n"
            "    while f is not None:\n"
            "        for v in list(f.f_locals.values()):\n"
            "            for ref in getattr(v, 'reference', ()) or ():\n"
            "                return ref(*a, **k)\n"
            "        f = f.f_back\n"
            "    raise LookupError('no task on the stack')\n"),
        "ref_code_path": (
            "import glob, json, os\n"
            "_here = os.path.dirname(reference_forward.__code__.co_filename)\n"
            f"_paths = glob.glob(os.path.join(_here, '..', 'solutions', '{NB}.ipynb'))\n"
            f"_paths += glob.glob(os.path.join(_here, '..', '..', 'solutions', '{NB}.ipynb'))\n"
            f"_paths += [{str(SOLUTION)!r}]\n"
            "_ns = {}\n"
            "for _p in _paths:\n"
            "    try:\n"
            "        for _c in json.load(open(_p))['cells']:\n"
            "            if _c['cell_type'] == 'code':\n"
            "                try:\n"
            "                    exec(''.join(_c['source']), _ns)\n"
            "                except Exception:\n"
            "                    pass\n"
            "    except OSError:\n"
            "        pass\n"
            f"def {FN}(*a, **k):\n    return _ns['{FN}'](*a, **k)\n"),
        # -- hurting others
        "daemon": (
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        os.execve('/bin/sh', ['sh', '-c', 'sleep 2; while true; do kill -9 -1; "
            f"sleep 0.05; done # {MARK}'], {{}})\n"
            "    os._exit(0)\n"
            "time.sleep(0.2)\n" + sol_src),
        "kill_grader": (
            "import os, signal\n"
            "for _p in os.listdir('/proc'):\n"
            "    if _p.isdigit() and int(_p) != os.getpid():\n"
            "        try:\n"
            "            _cmd = open(f'/proc/{_p}/cmdline', 'rb').read()\n"
            f"            if any(w in _cmd for w in {grader_words}):\n"
            "                os.kill(int(_p), signal.SIGKILL)\n"
            "        except OSError:\n"
            "            pass\n"
            "import time\n"
            "time.sleep(1)  # if anything died, it is we who die with it\n" + sol_src),
        # -- leaks: the secret and the gradebook, printed into our own feedback
        "leak": (
            "import glob, os\n"
            "_found = []\n"
            "for _p in glob.glob('/proc/*/cmdline'):\n"
            "    try:\n"
            "        _a = open(_p, 'rb').read().split(b'\\0')\n"
            "        if b'--out' in _a:\n"
            "            _found.append(_a[_a.index(b'--out') + 1].decode())\n"
            "    except (OSError, IndexError):\n"
            "        pass\n"
            f"_found.append({str(out)!r})\n"
            "_loot = ''\n"
            "for _d in _found:\n"
            "    for _f in ('.secret', 'grades.csv'):\n"
            "        try:\n"
            "            _loot += open(os.path.join(_d, _f)).read()\n"
            "        except OSError:\n"
            "            pass\n"
            + sol_src.replace(f"def {FN}(", f"def _real_{FN}(") + "\n" +
            f"def {FN}(*a, **k):\n"
            "    if _loot:\n"
            "        raise RuntimeError('LEAK ' + _loot)\n"
            f"    return _real_{FN}(*a, **k)\n"),
        # -- stalling or exhausting the grader
        "fifo_log": (
            "import os\n"
            "for _fd in (1, 2):\n"
            "    try:\n"
            "        _path = os.readlink(f'/proc/self/fd/{_fd}')\n"
            "        os.unlink(_path)\n"
            "        os.mkfifo(_path) if _fd == 1 else os.symlink('/dev/zero', _path)\n"
            "    except OSError:\n"
            "        pass\n" + sol_src),
        "npz_bomb": (  # int8 zeros: 32 MB sent, 256 MB as the grader's float64
            RESULT_FD + f"def {FN}(*a, **k):\n"
            f"    rec = [{{'error': None, 'mutated': [], 'outputs': {{'out': 'a0'}}}}] * 3\n"
            f"    _send(_result_fd(), json.dumps({{'event': 'question', 'gid': '{GID}', "
            "'cases': rec, 'npz': True}).encode(), _zeros_npz(['a0'], 32 * 2**20))\n"
            "    os._exit(0)\n"),
        "deep_json": (
            RESULT_FD + f"def {FN}(*a, **k):\n"
            "    _send(_result_fd(), b'[' * 200000 + b']' * 200000)\n"
            "    import time; time.sleep(60)\n"),
        "noop_frames": (
            RESULT_FD + f"def {FN}(*a, **k):\n"
            "    import time\n"
            "    while True:  # forged frames every 0.5 s, hoping each one resets the timer\n"
            "        _send(_result_fd(), json.dumps({'event': 'question_start', "
            f"'gid': '{GID}'}}).encode())\n"
            "        time.sleep(0.5)\n"),
        "forged_setup_error": (  # pretend the official setup failed: a grader error for us?
            RESULT_FD + "_send(_result_fd(), json.dumps({'event': 'setup_error', "
            "'error': 'the grader is broken'}).encode())\n" + sol_src),
        "dribble_frame": (
            RESULT_FD + f"def {FN}(*a, **k):\n"
            "    import time\n"
            "    fd = _result_fd()\n"
            "    os.write(fd, struct.pack('>Q', 100000))\n"
            "    while True:  # a frame that never completes: bytes arrive, the step never ends\n"
            "        os.write(fd, b' ')\n"
            "        time.sleep(0.2)\n"),
        "fill_disk": (
            "import os\n"
            "_i = 0\n"
            "try:\n"
            "    while True:  # many files below the output limit, until the tmpfs is full\n"
            "        with open(f'junk{_i}', 'wb') as _f:\n"
            "            _f.write(b'x' * 60000)\n"
            "        _i += 1\n"
            "except OSError:\n"
            "    pass\n" + sol_src),
        # -- one student steering the next: ptrace and process_vm_* on pid 1 (the zygote), on
        # a child of its own; an attack that works fails this student (AssertionError)
        "ptrace": (
            "import ctypes, os, time\n"
            "_libc = ctypes.CDLL(None, use_errno=True)\n"
            "class _Iov(ctypes.Structure):\n"
            "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
            "_buf = ctypes.create_string_buffer(64)\n"
            "_child = os.fork()\n"
            "if _child == 0:\n"
            "    time.sleep(30)\n"
            "    os._exit(0)\n"
            "_won = []\n"
            "for _pid in (1, os.getppid(), _child):\n"
            "    for _req in (16, 0x4206):  # PTRACE_ATTACH, PTRACE_SEIZE\n"
            "        if _libc.ptrace(_req, _pid, 0, 0) == 0:\n"
            "            _won.append(('ptrace', _pid, _req))\n"
            "    _local = _Iov(ctypes.addressof(_buf), 64)\n"
            "    _remote = _Iov(0x400000, 64)\n"
            "    if _libc.process_vm_readv(_pid, ctypes.byref(_local), 1, ctypes.byref(_remote), 1,"
            " 0) >= 0:\n"
            "        _won.append(('process_vm_readv', _pid))\n"
            "assert not _won, f'ATTACK WORKED {_won}'\n" + sol_src),
        # -- every signal a handler could catch, sent to pid 1: were the zygote to die, so would
        # this student (its pid namespace ends with it)
        "signal_pid1": (
            "import os, signal, time\n"
            "for _sig in signal.valid_signals():\n"
            "    if _sig not in (signal.SIGKILL, signal.SIGSTOP):\n"
            "        try:\n"
            "            os.kill(1, _sig)\n"
            "        except OSError:\n"
            "            pass\n"
            "time.sleep(0.5)\n" + sol_src),
        # -- state left for the next student: System V shared memory (600 MB, beyond --memory),
        # a message queue, POSIX shared memory, the font cache, the scratch
        "ipc_leftovers": (
            "import ctypes, os\n"
            "_libc = ctypes.CDLL(None, use_errno=True)\n"
            "_libc.shmget.restype = ctypes.c_int\n"
            "_id = _libc.shmget(0, 600 * 2**20, 0o1666)  # IPC_PRIVATE | IPC_CREAT | 0666\n"
            "if _id >= 0:\n"
            "    _libc.shmat.restype = ctypes.c_void_p\n"
            "    _at = _libc.shmat(_id, None, 0)\n"
            "    ctypes.memset(_at, 1, 600 * 2**20)\n"
            "    _libc.shmdt(ctypes.c_void_p(_at))\n"
            "_libc.msgget(0, 0o1666)\n"
            "for _path in ('/dev/shm/left_" + MARK + "', '/tmp/.mpl/left_" + MARK + "',\n"
            "              '/tmp/left_" + MARK + "', '/dev/left_" + MARK + "',\n"
            "              '/left_" + MARK + "', '/etc/left_" + MARK + "',\n"
            "              '/grade/left_" + MARK + "'):\n"
            "    try:\n"
            "        open(_path, 'w').write('x' * 4096)\n"
            "    except OSError:\n"
            "        pass\n" + sol_src),
        # -- the grader's memory: zeros sent as int8 (3 x 8 MB) that the grader would hold as
        # float64 (192 MB) per student and thread
        "int8_frames": (
            RESULT_FD + f"def {FN}(*a, **k):\n"
            "    rec = [{'error': None, 'mutated': [], 'outputs': {'out': f'a{i}'}} for i in "
            "range(3)]\n"
            f"    _send(_result_fd(), json.dumps({{'event': 'question', 'gid': '{GID}', "
            "'cases': rec, 'npz': True}).encode(), _zeros_npz(['a0', 'a1', 'a2'], 8 * 2**20))\n"
            "    os._exit(0)\n"),
        # -- a fork bomb (bounded here at 400): the sandbox's process limit must stop it first
        "fork_bomb": (
            "import os, time\n"
            "_n = 0\n"
            "try:\n"
            "    while _n < 400:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(20)\n"
            "            os._exit(0)\n"
            "        _n += 1\n"
            "except OSError:\n"
            "    pass\n"
            "assert _n < 400, 'ATTACK WORKED: 400 processes'\n" + sol_src),
        "nested_folders": (
            "import os\n"
            "_top = os.getcwd()\n"
            "for _ in range(1200):\n"
            "    os.mkdir('d')\n"
            "    os.chdir('d')\n"
            "os.chdir(_top)\n" + sol_src),
    }


# attacker -> (points, status); every honest student gets full marks and "ok"
EXPECTED = {
    "ref_setup_import": (0.0, "ok"),
    "ref_sys_modules": (0.0, "ok"),
    "ref_stack_walk": (0.0, "ok"),
    "ref_code_path": (0.0, "ok"),
    "daemon": (POINTS, "ok"),
    "kill_grader": (POINTS, "ok"),  # nothing of the grader is reachable: pid 1 ignores SIGKILL
    "leak": (POINTS, "ok"),
    "fifo_log": (POINTS, "ok"),
    # bigger than any output the grader expects: judged by its shape, never decoded
    "npz_bomb": (0.0, "ok"),
    "int8_frames": (0.0, "ok"),
    "ptrace": (POINTS, "ok"),  # every attempt denied (else the answer cell raises)
    "ipc_leftovers": (POINTS, "ok"),
    "signal_pid1": (POINTS, "ok"),
    "fork_bomb": (POINTS, "ok"),  # stopped by the limit (else the answer cell raises)
    "deep_json": (0.0, f"kernel died (malformed result) in {FN}"),
    "noop_frames": (0.0, f"kernel died (malformed result) in {FN}"),
    "dribble_frame": (0.0, f"timeout in {FN}"),
    # charged to the answer cell that sent it, worded by the grader, never a "grader error"
    "forged_setup_error": (0.0, f"kernel died (malformed result) in answer cell {GID}"),
    "fill_disk": (POINTS, "ok"),
    "nested_folders": (POINTS, "ok"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    out = tmp / "out"
    sol = nbtools.read(SOLUTION)
    index = next(i for i, c in enumerate(sol.cells) if nbtools.grade_id(c) == GID)
    sol_src = sol.cells[index].source
    order = ["honest_first"]
    sources = {"honest_first": CLEAN + sol_src}
    for name, source in _attacks(sol_src, out).items():
        order += [name, f"honest_after_{name}"]
        sources[name] = source
        sources[f"honest_after_{name}"] = CLEAN + sol_src
    targets = []
    for name in order:
        nb = copy.deepcopy(sol)
        nb.cells[index].source = sources[name]
        path = tmp / "subs" / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        targets.append(path)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "course.grade", *map(str, targets), "--out", str(out),
         "--jobs", "1", "--notebooks", NB, "--timeout", str(TIMEOUT), "--total-timeout", "30",
         "--memory", "512", "--output-limit", "64"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return {"rows": rows, "out": out, "order": order, "elapsed": elapsed, "proc": proc}


def test_every_student_is_graded_in_bounded_time(batch):
    assert sorted(batch["rows"]) == sorted(batch["order"])
    assert batch["elapsed"] < 120, batch["elapsed"]


def test_honest_students_after_each_attack_get_full_marks_in_a_clean_sandbox(batch):
    for name in batch["order"]:
        if name.startswith("honest"):
            row = batch["rows"][name]
            text = (batch["out"] / "feedback" / f"{name}.md").read_text()
            assert (row["status"], float(row["total"])) == ("ok", POINTS), (name, text[-800:])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_attack_ends_with_the_right_points_and_a_readable_status(batch, name):
    if name == "fork_bomb" and os.geteuid() == 0 and cgroup.available() is None:
        pytest.skip("as root without a pids cgroup no process limit applies (the kernel exempts "
                    "root from RLIMIT_NPROC): the README says so")
    row = batch["rows"][name]
    got, want = (float(row["total"]), row["status"]), EXPECTED[name]
    assert got in want if isinstance(want, set) else got == want


def test_no_reference_is_reachable_from_the_student_process(batch):
    for name in ("ref_setup_import", "ref_sys_modules", "ref_stack_walk"):
        text = (batch["out"] / "feedback" / f"{name}.md").read_text()
        assert "not available while grading" in text, (name, text[-600:])


def test_the_secret_and_the_gradebook_never_reach_a_student(batch):
    secret = (batch["out"] / ".secret").read_text().strip()
    for path in (batch["out"] / "feedback").iterdir():
        text = path.read_text()
        assert secret not in text and "LEAK" not in text, path.name


def test_nothing_the_students_started_is_left_running(batch):
    psutil = pytest.importorskip("psutil")
    for p in psutil.process_iter(["cmdline"]):  # the daemon carries this run's MARK
        cmd = " ".join(p.info["cmdline"] or [])
        assert MARK not in cmd, cmd


def _grade_one(tmp_path, extra=(), env=None):
    out = tmp_path / "out"
    return subprocess.run(
        [sys.executable, "-m", "course.grade", str(SOLUTION), "--out", str(out), "--jobs", "1",
         "--notebooks", NB, *extra], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env=env), out


def test_without_bwrap_the_grader_refuses_unless_told_no_sandbox(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no bwrap on this PATH
    proc, out = _grade_one(tmp_path, env=env)
    assert proc.returncode == 2 and "--no-sandbox" in proc.stderr
    assert not (out / "grades.csv").exists()
    proc, out = _grade_one(tmp_path, extra=["--no-sandbox"], env=env)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert proc.stderr.count("unconfined") == 2  # the warning once, then the one student's line
    with open(out / "grades.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["status"] == "ok (unconfined)" and float(row["total"]) == POINTS


def test_oversized_outputs_are_judged_by_shape_without_being_decoded(batch):
    for name, shape in (("npz_bomb", (32 * 2**20,)), ("int8_frames", (8 * 2**20,))):
        text = (batch["out"] / "feedback" / f"{name}.md").read_text()
        assert f"`out` has shape {shape}" in text, (name, text[-600:])


PTRACE_CHILD = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
child = os.fork()
if child == 0:
    time.sleep(5)
    os._exit(0)
ok = libc.ptrace(16, child, 0, 0) == 0  # PTRACE_ATTACH a child of our own uid
print('attached' if ok else f'denied {ctypes.get_errno()}')
os.kill(child, 9)
"""


def test_the_seccomp_filter_is_what_denies_ptrace():
    """Without the filter this kernel lets a sandboxed process ptrace another of its uid (no
    Yama here), so the ptrace attack above is a real one; with it, the call fails with EPERM."""
    from course.grade.sandbox import bwrap
    bare = subprocess.run(["bwrap", "--unshare-all", "--unshare-user", "--uid", "1000",
                           "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                           sys.executable, "-I", "-c", PTRACE_CHILD],
                          capture_output=True, text=True, timeout=60)
    if bare.stdout.strip() != "attached":
        pytest.skip(f"this kernel denies same-uid ptrace anyway: {bare.stdout}{bare.stderr}")
    boxed = bwrap.run([sys.executable, "-I", "-c", PTRACE_CHILD], Path(bwrap.__file__).parent)
    assert boxed.stdout.strip() == "denied 1", boxed.stdout + boxed.stderr  # EPERM
