"""The `edgeseg` command's entry point (the console script and `python -m edgeseg ...`, for when
the environment's bin/ is not on PATH: a Pi's `--user` install, a venv not activated).

Ctrl-C during the first half second, while the CLI's modules load, is an `interrupted` line and
exit 130 like any later one, not a traceback from inside an import.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Load the CLI and run it; an interrupt while loading ends as one during a command."""
    try:
        from edgeseg.cli.main import app
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    app(prog_name="edgeseg")


if __name__ == "__main__":
    main()
