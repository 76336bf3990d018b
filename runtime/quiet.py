"""Opt-in silence for native libraries (LiteRT's "Created TensorFlow Lite XNNPACK delegate",
absl/oneDNN start-up lines): what they write to file descriptor 2 is captured while Python's own
`sys.stderr` keeps reaching the terminal. Process-wide while active, so only callers opt in (the
CLI does); the library itself never redirects anything.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

_MAX_KEPT = 64 * 1024  # bytes of captured native output kept for the error report
_active = 0


@dataclass
class NativeLog:
    """What native code wrote to fd 2 inside the block (filled in when the block ends)."""

    text: str = ""
    captured: bool = False


def _is_fd2(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


@contextmanager
def quiet_native(*, show_on_error: bool = True) -> Iterator[NativeLog]:
    """Capture native writes to fd 2 into a temp file; with `show_on_error`, replay them to the
    real stderr when the block raises. Nested use is a no-op. Example::

        from edgeseg.runtime.quiet import quiet_native
        with quiet_native():
            seg = Segmenter("model_int8.tflite")   # no XNNPACK INFO line
    """
    global _active
    log = NativeLog()
    if _active:
        yield log
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 (embedded interpreters)
        yield log
        return
    _active += 1
    tmp = tempfile.TemporaryFile()
    python_stderr = sys.stderr
    swapped = False
    failed = False
    try:
        if _is_fd2(python_stderr):  # keep Python's (and rich's) stderr on the terminal
            sys.stderr = open(
                os.dup(saved), "w", buffering=1, encoding="utf-8", errors="backslashreplace"
            )
            swapped = True
        os.dup2(tmp.fileno(), 2)
        log.captured = True
        yield log
    except BaseException:
        failed = True
        raise
    finally:
        try:
            if swapped:
                sys.stderr.flush()
            os.dup2(saved, 2)
        finally:
            os.close(saved)
            if swapped:
                # left open, not closed: a logging handler made meanwhile (TensorFlow's, for the
                # warnings its finalisers log after a second Ctrl-C) may still hold it, and a
                # closed stream made each of their records a 'Logging error' of 20 lines; it
                # writes to the terminal like the stream it stood in for
                sys.stderr.flush()
                sys.stderr = python_stderr
            _active -= 1
        size = tmp.seek(0, os.SEEK_END)
        tmp.seek(max(0, size - _MAX_KEPT))
        log.text = tmp.read().decode("utf-8", "backslashreplace")
        tmp.close()
        if failed and show_on_error and log.text.strip():
            sys.stderr.write(log.text)
            sys.stderr.flush()
