"""Safe points for a stop (Ctrl-C, SIGTERM) while native code runs.

A KeyboardInterrupt raised by a signal handler lands wherever Python next runs, which inside
TensorFlow's eager step can be the middle of a C call: it then comes out as `SystemError: bad
argument to internal function` and the run ends in a traceback instead of keeping its best
checkpoint. Library code that calls such code wraps it in `safe_points()` and calls
`stop_point()` where stopping is safe (a Keras batch end); a signal handler that finds
`defer_stop` true only remembers the stop. This module installs no handler: the CLI owns them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_depth = 0  # how many `safe_points` blocks the main thread is in
_pending: Callable[[], BaseException] | None = None


def defer_stop(make: Callable[[], BaseException]) -> bool:
    """For a signal handler: inside `safe_points` remember the stop `make` builds and return
    True (the handler returns without raising). False outside, or when a stop is already
    pending: a second Ctrl-C stops at once, whatever it interrupts."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        return False
    if _depth == 0 or _pending is not None:
        return False
    _pending = make
    return True


def stop_point() -> None:
    """Raise the stop a signal asked for since the block began, if any."""
    global _pending
    make, _pending = _pending, None
    if make is not None:
        raise make()


@contextmanager
def safe_points() -> Iterator[None]:
    """Around native work that calls `stop_point` at safe places; a stop still pending when the
    block ends (it came after the last safe point) is raised there."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            stop_point()
