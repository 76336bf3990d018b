"""The `edgeseg` command's entry point (the console script and `python -m edgeseg ...`, for when
the environment's bin/ is not on PATH: a Pi's `--user` install, a venv not activated).

Ctrl-C or SIGTERM during the first half second, while the CLI's modules load, ends as it does
during a command (an `interrupted` line and exit 130, a `terminated` line and exit 143), not as a
traceback from inside an import or a process killed with no word.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


class _TerminatedWhileLoading(KeyboardInterrupt):
    """SIGTERM before the CLI's own handlers are in place."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _TerminatedWhileLoading


def main() -> None:
    """Load the CLI and run it; an interrupt while loading ends as one during a command."""
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
