"""Child processes that die with the emulator.

The kernel's parent-death signal (prctl PR_SET_PDEATHSIG) is sent when the *thread* that forked a
child exits, not the process. The emulator answers each request on a short-lived thread, so every
child (PostgreSQL servers, function instances) is forked from one thread that lives as long as the
emulator: then a killed emulator (even by SIGKILL) takes its children with it."""

from __future__ import annotations

import concurrent.futures
import ctypes
import signal
import subprocess
from typing import Any

SIGINT, SIGKILL, SIGTERM = signal.SIGINT, signal.SIGKILL, signal.SIGTERM
PR_SET_PDEATHSIG = 1

_LIBC = ctypes.CDLL(None, use_errno=True)
# One long-lived thread forks every child.
_FORKER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="forker")


def spawn(args: list[str], death_signal: int = SIGKILL, **popen: Any) -> subprocess.Popen:
    """`subprocess.Popen(args, **popen)`, the child receiving `death_signal` when the emulator dies.
    The signal is set after any `user=` switch (CPython runs `preexec_fn` after setreuid), since a
    change of credentials clears it."""

    def die_with_parent() -> None:
        _LIBC.prctl(PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)

    return _FORKER.submit(subprocess.Popen, args, preexec_fn=die_with_parent, **popen).result()
