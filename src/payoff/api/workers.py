"""Worker processes end with their supervisor.

With `payoff serve --workers N`, uvicorn's supervisor process starts N workers that share
its listening socket. If the supervisor is killed (SIGKILL, an OOM kill), nothing tells the
workers: they keep serving, the port stays taken, and a new `payoff serve` fails with
"address already in use". So each worker asks to be told:

- On Linux, `prctl(PR_SET_PDEATHSIG, SIGTERM)`: the kernel sends the worker SIGTERM the
  moment its parent dies, however it dies, with no thread and no polling. uvicorn shuts
  down on SIGTERM as it does when stopped: it stops accepting, finishes the requests in
  flight (their records committed), and exits, which frees the port. The signal follows the
  parent *thread* that started the worker; uvicorn's supervisor starts (and restarts) its
  workers from its main thread, which lives as long as the process.
- Elsewhere, a daemon thread compares `os.getppid()` with the supervisor's pid every
  WATCH_INTERVAL_S and sends the worker SIGTERM when they differ (a worker whose parent
  dies is adopted by another process).

Either way the worker checks once more after arming, since the supervisor may have died
before.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

SUPERVISOR_PID = "PAYOFF_SUPERVISOR_PID"
"""Set by `payoff serve` for its worker processes (with more than one): the supervisor's pid."""
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_INTERVAL_S = 1.0


def follow_supervisor() -> None:
    """In a worker of `payoff serve --workers N`: end (SIGTERM) when the supervisor ends.

    A no-op in a process `payoff serve` did not start as a worker.
    """
    supervisor = os.environ.get(SUPERVISOR_PID)
    if not supervisor or int(supervisor) == os.getpid():  # not a worker: the server itself
        return
    supervisor_pid = int(supervisor)
    if not (sys.platform == "linux" and _ask_kernel()):
        threading.Thread(
            target=_watch, args=(supervisor_pid,), name="payoff-supervisor-watch", daemon=True
        ).start()
    if os.getppid() != supervisor_pid:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def _ask_kernel() -> bool:
    """SIGTERM to this process when its parent dies (Linux); False if refused."""
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)) == 0


def _watch(supervisor_pid: int) -> None:
    while os.getppid() == supervisor_pid:
        threading.Event().wait(WATCH_INTERVAL_S)
    os.kill(os.getpid(), signal.SIGTERM)
