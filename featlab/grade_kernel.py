"""Run one notebook for ``featlab grade`` in a fresh, limited kernel (``featlab/grade.py`` decides
what runs; this module runs it).

* Limits per notebook (:class:`Limits`): the time for the whole notebook (nbclient's cell
  timeouts), the resident memory of the kernel and every process it starts, the number of those
  processes, and the size of any one file they write. A watchdog thread per kernel reads
  ``/proc`` (Linux) every ``POLL_S`` seconds and kills the kernel's whole session when memory or
  processes go over; the file size is ``RLIMIT_FSIZE``, set by a launcher that then ``exec``-s the
  kernel, whose first cell restores ``SIGXFSZ`` so that the kernel is stopped when a write goes
  past it. The limits are counted per kernel, so they hold with several workers.
* Output kept per cell: at most ``OUTPUT_CHARS`` characters (an endless print loop cannot fill
  the grader's memory); errors and the grader's own reports always come through.
* ``GUARD_SOURCE`` runs first in every kernel: sockets refuse anything but loopback.
* ``check_cell_source`` is the cell the grader runs in place of a check cell: the reference
  check, run against a freshly imported featlab, reporting its result under a nonce.

Why not ``RLIMIT_AS`` and ``RLIMIT_NPROC``: the address space of a PyTorch process is gigabytes
larger than its resident memory (and grows with the number of cores), and ``RLIMIT_NPROC``
counts every thread of the user, not the processes of one kernel, and does not apply to root.
"""
from __future__ import annotations

import asyncio
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "Run", "execute", "check_cell_source", "parse_size", "REPORT_MIME",
           "OUTPUT_CHARS", "GUARD_SOURCE"]

OUTPUT_CHARS = 100_000  # printed output kept per cell; the rest is dropped (an endless print loop)
POLL_S = 0.1            # watchdog period; a full scan of /proc only when a process was created
REPORT_MIME = "application/vnd.featlab.grade+json"
FEATLAB_ROOT = Path(__file__).resolve().parents[1]   # the folder that holds the featlab package

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str | int, what: str = "size") -> int:
    """``"300M"``, ``"4G"``, ``"1.5G"``, ``"1048576"`` -> bytes (binary units, K/M/G/T)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if m is None or float(m[1]) <= 0:
        raise ValueError(f"{what} must be a positive size such as 512M or 4G; got {text!r}")
    return int(float(m[1]) * _UNITS[m[2].upper()])


def _human(n: int) -> str:
    """Bytes in binary units: ``4 GiB``, ``300 MiB``."""
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.4g} {unit}iB"
    return f"{n} bytes"


@dataclass(frozen=True)
class Limits:
    """What one notebook may use: ``timeout`` seconds for the whole notebook, ``memory`` bytes
    resident in the kernel and its child processes together, ``processes`` processes at once
    (the kernel included), ``file_size`` bytes in any one file it writes."""

    timeout: float = 120
    memory: int = 4 * 2**30
    processes: int = 32
    file_size: int = 2**30

    def __post_init__(self) -> None:
        for name in ("timeout", "memory", "processes", "file_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number; got {value!r}")
        if self.processes < 2:
            raise ValueError(f"Limits.processes must be at least 2 (the kernel and one helper); "
                             f"got {self.processes}")

    def describe(self, which: str) -> str:
        """The limit's sentence used in rows: ``the memory limit (4 GiB)``."""
        return {"timeout": f"the notebook's time limit ({self.timeout:g} s)",
                "memory": f"the memory limit ({_human(self.memory)})",
                "processes": f"the process limit ({self.processes})",
                "file-size": f"the file-size limit ({_human(self.file_size)})"}[which]


# Runs first in every student kernel. Patches socket connect / connect_ex / getaddrinfo so that
# only loopback (and Unix sockets) can be reached; the kernel's own channels are ZeroMQ, untouched.
# SIGXFSZ back to its default: a write past the file-size limit stops the kernel (Python ignores it).
GUARD_SOURCE = '''\
def _featlab_grade_guard():
    """featlab grade: no network while grading (a guard against downloads, not a sandbox)."""
    import errno, ipaddress, signal, socket

    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)

    def local(host):
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if host is None or host in ("", "localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def refused(what):
        return ConnectionRefusedError(errno.ECONNREFUSED, "featlab grade: no network while grading; "
                                      f"refused to connect to {what!r}")

    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def guarded_connect(self, address):
        if isinstance(address, tuple) and not local(address[0]):
            raise refused(address)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        if isinstance(address, tuple) and not local(address[0]):
            return errno.ECONNREFUSED
        return connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not local(host):
            raise refused(host)
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo

_featlab_grade_guard()
del _featlab_grade_guard
'''

# The cell run in place of a check cell. It takes featlab (and so featlab.checks and
# ExerciseError) out of sys.modules, imports it again from the grader's own folder through a
# finder placed first (a featlab/ beside the notebook or an import hook cannot answer), binds the
# reference's import names to it in a copy of the user's namespace, runs the reference check
# source there, and reports pass/fail/error under the nonce as display data (not as printed text).
# The earlier modules are put back afterwards, so the rest of the notebook sees what it had.
_CHECK_TEMPLATE = '''\
def _featlab_grade_check(nonce, source, imports, root):
    # builtins through the module: a global named exec, dict, ... in the notebook cannot stand in
    import builtins as B, importlib.machinery as machinery, os, sys
    from IPython.display import publish_display_data
    mine = lambda name: name == "featlab" or name.startswith("featlab.")
    saved = B.dict((k, v) for k, v in B.list(sys.modules.items()) if imports and mine(k))

    class Finder:
        @B.staticmethod
        def find_spec(name, path=None, target=None):
            if not mine(name):
                return None
            folder = os.path.join(root, *name.split(".")[:-1])
            return machinery.FileFinder(folder, (machinery.SourceFileLoader, [".py"])).find_spec(name)

    status, ename, message = "error", "", ""
    try:
        for k in saved:
            del sys.modules[k]
        if imports:
            sys.meta_path.insert(0, Finder)
        namespace = B.dict(B.globals())
        try:
            B.exec(imports, namespace)
            B.exec(B.compile(source, "<featlab grade: reference check>", "exec"), namespace)
            status = "pass"
        except B.BaseException as e:  # SystemExit, KeyboardInterrupt too: the grader reports them
            ename, message = B.type(e).__name__, B.str(e)
            status = "fail" if ename == "ExerciseError" else "error"
    finally:
        if imports:
            while Finder in sys.meta_path:
                sys.meta_path.remove(Finder)
            for k in [k for k in sys.modules if mine(k)]:
                del sys.modules[k]
            sys.modules.update(saved)
    publish_display_data({%(mime)r: {"nonce": nonce, "status": status, "ename": ename,
                                     "message": message[:2000]}})

_featlab_grade_check(%(nonce)r, %(source)r, %(imports)r, %(root)r)
del _featlab_grade_check
'''


def check_cell_source(nonce: str, source: str, imports: str) -> str:
    """Code of the cell that runs the reference check ``source`` and reports under ``nonce``.
    ``imports``: the reference's featlab import lines (``import featlab as fl``), re-run against
    a fresh featlab; empty when the checks do not come from featlab."""
    return _CHECK_TEMPLATE % {"mime": REPORT_MIME, "nonce": nonce, "source": source,
                              "imports": imports, "root": str(FEATLAB_ROOT)}


# Sets RLIMIT_FSIZE, then becomes the kernel (same pid, so the watchdog watches the kernel).
_LAUNCHER = ("import os, resource, sys; n = int(sys.argv[1]); "
             "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])")


class Run:
    """What happened while one notebook executed: per cell index start/end times and why it
    stopped early (``stop`` = (reason, cell index) or None; reason ``timeout``, ``died``,
    ``memory``, ``processes`` or ``file-size``)."""

    def __init__(self) -> None:
        self.start: dict[int, float] = {}
        self.end: dict[int, float] = {}
        self.stop: tuple[str, int | None] | None = None
        self.stopped = 0.0

    def running(self) -> int | None:
        """Index of the cell that had started but not finished, if any."""
        open_cells = [i for i in self.start if i not in self.end]
        return max(open_cells) if open_cells else None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat(pid: int | str) -> tuple[int, int] | None:
    """(session id, resident bytes) of a process, from /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[3]), int(fields[21]) * _PAGE


def _forks() -> int:
    """Processes created on this machine since boot (/proc/stat)."""
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"processes "):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class _Watchdog(threading.Thread):
    """Kills the kernel's session (the kernel starts a new one: its pid is the session id) when
    its processes together hold more than ``limits.memory`` resident bytes or number more than
    ``limits.processes``; ``reason`` says which. Linux only (reads /proc); elsewhere it idles."""

    def __init__(self, pid: int, limits: Limits) -> None:
        super().__init__(daemon=True, name=f"featlab-grade-watchdog-{pid}")
        self.pid, self.limits = pid, limits
        self.reason: str | None = None
        self.members: set[int] = {pid}
        self.done = threading.Event()

    def _scan(self) -> None:
        self.members = {int(p) for p in os.listdir("/proc")
                        if p.isdigit() and (s := _stat(p)) is not None and s[0] == self.pid}

    def kill(self) -> None:
        """SIGKILL every process of the session until none is left (a fork loop keeps forking)."""
        for _ in range(50):
            self._scan()
            if not self.members:
                return
            for p in self.members:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def run(self) -> None:
        if not os.path.isdir("/proc"):
            return
        forks = -2
        while not self.done.wait(POLL_S):
            now = _forks()
            if now != forks:  # something forked somewhere: look for new members of the session
                forks = now
                self._scan()
            stats = [s for p in self.members if (s := _stat(p)) is not None and s[0] == self.pid]
            if _stat(self.pid) is None:
                return
            if len(stats) > self.limits.processes:
                self.reason = "processes"
            elif sum(rss for _, rss in stats) > self.limits.memory:
                self.reason = "memory"
            if self.reason:
                self.kill()
                return


def execute(nb, cwd: Path, limits: Limits) -> Run:
    """Run ``nb`` (modified in place: outputs) in a fresh kernel of this environment, within
    ``limits``. Returns the :class:`Run`; never raises because of what the cells do."""
    import ipykernel.kernelspec
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from traitlets import default

    watch: list[_Watchdog] = []
    procs: list = []

    class _HereSpecs(KernelSpecManager):
        """'python3' is always this interpreter, whatever kernels the machine has installed."""

        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())

    class _LimitedKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _here(self):
            return _HereSpecs()

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if sys.platform.startswith("linux"):
                kernel_cmd = [sys.executable, "-c", _LAUNCHER, str(int(limits.file_size))] + list(kernel_cmd)
            await super()._async_launch_kernel(kernel_cmd, **kw)
            proc = getattr(self.provisioner, "process", None)
            if proc is not None:
                procs.append(proc)
                watch.append(_Watchdog(proc.pid, limits))
                watch[-1].start()

        _launch_kernel = _async_launch_kernel

    class _Capped(NotebookClient):
        """Keeps at most OUTPUT_CHARS of printed/displayed output per cell, so a print loop cannot
        fill the grader's memory before the time limit; errors and reports always come through."""
        sizes: dict[int, int] = {}  # characters per cell index; a new class for every run

        def output(self, outs, msg, display_id, cell_index):
            content = msg["content"]
            report = msg["msg_type"] == "display_data" and REPORT_MIME in content.get("data", {})
            if msg["msg_type"] != "error" and not report:
                used = self.sizes.get(cell_index, 0)
                if used >= OUTPUT_CHARS:
                    return None
                self.sizes[cell_index] = used + len(str(content))
                text = content.get("text") if msg["msg_type"] == "stream" else None
                if text is not None and used + len(text) > OUTPUT_CHARS:
                    content["text"] = (text[:OUTPUT_CHARS - used]
                                       + f"\n[featlab grade: output beyond {OUTPUT_CHARS:,} characters dropped]\n")
            return super().output(outs, msg, display_id, cell_index)

    run = Run()
    deadline: list[float] = []

    def remaining(cell) -> int:
        if not deadline:  # the limit counts from the first cell, not from the kernel's start-up
            deadline.append(time.monotonic() + limits.timeout)
        return max(1, math.ceil(deadline[0] - time.monotonic()))

    def started(cell, cell_index, **_):
        run.start[cell_index] = time.monotonic()

    def finished(cell, cell_index, **_):
        run.end[cell_index] = time.monotonic()

    client = _Capped(nb, kernel_name="python3", kernel_manager_class=_LimitedKernelManager,
                     timeout_func=remaining, allow_errors=True, shutdown_kernel="immediate",
                     on_cell_execute=started, on_cell_executed=finished,
                     resources={"metadata": {"path": str(cwd)}})
    # the kernel's own stderr (start-up warnings) is dropped; cell output comes by messages
    job = client.async_execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _run_coroutine(job)
    except CellTimeoutError:
        run.stop, run.stopped = ("timeout", run.running()), time.monotonic()
    except DeadKernelError:
        run.stop, run.stopped = ("died", run.running()), time.monotonic()
    finally:
        for w in watch:
            w.done.set()
            w.join()
            w.kill()  # whatever the kernel left running in its session (a forked child)
    if run.stop and run.stop[0] == "died":
        code = procs[0].poll() if procs else None
        if watch and watch[0].reason:
            run.stop = (watch[0].reason, run.stop[1])
        elif code is not None and hasattr(signal, "SIGXFSZ") and code == -signal.SIGXFSZ:
            run.stop = ("file-size", run.stop[1])
    return run


def _run_coroutine(coro) -> None:
    """``asyncio.run`` (a fresh loop that cancels nbclient's leftover tasks on exit), in a helper
    thread when this thread already runs a loop (grading from inside a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()
