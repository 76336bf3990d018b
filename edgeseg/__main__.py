"""The `edgeseg` command's entry point (the console script and `python -m edgeseg ...`, for when
the environment's bin/ is not on PATH: a Pi's `--user` install, a venv not activated).

Ctrl-C or SIGTERM during the first half second, while the CLI's modules load, ends as it does
during a command (an `interrupted` line and exit 130, a `terminated` line and exit 143), not as a
traceback from inside an import or a process killed with no word.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from collections.abc import Iterable
from types import FrameType
from typing import Any, TextIO


class _TerminatedWhileLoading(KeyboardInterrupt):
    """SIGTERM before the CLI's own handlers are in place."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _TerminatedWhileLoading


class _ReaderGone:
    """stdout / stderr that outlive their reader: `edgeseg train DATA | head -5` exited 1 with
    no word when head closed the pipe (Click's answer to EPIPE), which for `check` is the
    accuracy-regression code CI acts on, and a training stopped at the next line it printed.
    Once the reader is gone, what is written is dropped (the stream's descriptor then points
    at /dev/null, so no flush fails at exit) and the command finishes with its own exit code."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _gone(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            self._gone()
            return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            self._gone()


def _open_stream(fd: int, stream: TextIO | None) -> TextIO:
    """STREAM, or /dev/null when the command started with FD closed (`2>&-`; Python then has
    no stream): it also holds the descriptor, so no file the command opens becomes fd 1 or 2,
    where native libraries write their log lines."""
    if stream is not None:
        return stream
    try:
        os.fstat(fd)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    return open(os.devnull, "w", encoding="utf-8")  # held for the life of the process


def main() -> None:
    """Load the CLI and run it; an interrupt while loading ends as one during a command."""
    sys.stdout = _ReaderGone(_open_stream(1, sys.stdout))
    sys.stderr = _ReaderGone(_open_stream(2, sys.stderr))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        from edgeseg.cli.main import app
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, _TerminatedWhileLoading)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        sys.exit(143 if terminated else 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    app(prog_name="edgeseg")


if __name__ == "__main__":
    main()
