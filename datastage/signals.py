"""Stop signals: SIGTERM stops a refresh the way Ctrl-C does, and no signal lands inside a swap.

Python turns SIGINT into :class:`KeyboardInterrupt`, but SIGTERM (Kubernetes, systemd, a
scheduler's stop) kills the process on the spot: no shadow dropped, no history line.
:func:`sigterm_stops` raises :class:`~datastage.errors.Terminated` instead, which unwinds the
refresh like Ctrl-C does — unless the program handles SIGTERM itself (the scheduler does:
its first signal lets the refresh in progress finish).

:func:`held_signals` keeps SIGINT and SIGTERM back while the swap runs and delivers them right
after it, so a refresh always knows whether its copy went live.

Example:
    >>> with sigterm_stops():                      # doctest: +SKIP
    ...     run_refresh(project, "staging", operations=RefreshOps)   # SIGTERM here raises Terminated
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from datastage.errors import Terminated

log = logging.getLogger("datastage.refresh")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`~datastage.errors.Terminated` (once: a second one
    while the refresh is already stopping is only logged, so its clean-up completes).

    Nothing changes when SIGTERM already has a handler of the program's own, or outside the main
    thread (where Python cannot handle signals).
    """
    if not _main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            log.warning("SIGTERM again while stopping: finishing the clean-up first")
            return
        stopping = True
        raise Terminated()

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs; then deliver each one that arrived to the
    handler it would have reached (which may raise: the stop goes on from right after the block)."""
    if not _main_thread():
        yield
        return
    arrived: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        log.warning("stop signal held back until the swap is done", extra={"signal": signal.Signals(signum).name})
        arrived.append(signum)

    previous: dict[signal.Signals, Any] = {}
    for sig in STOP_SIGNALS:
        handler = signal.getsignal(sig)
        if handler is None or handler is signal.SIG_IGN:  # installed outside Python, or ignored: leave it
            continue
        previous[sig] = handler
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(arrived):
            handler = previous[signal.Signals(signum)]
            if callable(handler):
                handler(signum, None)
            elif handler is signal.SIG_DFL:
                signal.raise_signal(signum)
