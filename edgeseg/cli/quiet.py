"""Quiet by default: every command runs with native library logs (TensorFlow / absl / oneDNN
start-up lines, the converter's MLIR chatter, LiteRT's XNNPACK INFO line) silenced at the source
and shown only when the command fails, or live with `--verbose`."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer

from edgeseg.runtime.quiet import quiet_native

F = TypeVar("F", bound=Callable[..., Any])
VERBOSE_HELP = "Show native library logs (TensorFlow, LiteRT) and more detail."
# Exit codes that are answers, not failures: ok, check's accuracy regression, Ctrl-C, SIGTERM.
_QUIET_EXITS = (0, 1, 130, 143)
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "ABSL_MIN_LOG_LEVEL": "2", "GLOG_minloglevel": "2"}
# Informational lines never worth replaying after a failure: LiteRT's "INFO: Created TensorFlow
# Lite XNNPACK delegate", absl INFO records (I1125 12:00:00 / I0000 00:00:...), absl's preamble.
_INFO_LINE = re.compile(r"^(INFO: |I\d{4} |WARNING: All log messages before absl)")


def worth_showing(native_log: str) -> str:
    """The captured native lines that may explain a failure (warnings, errors, tracebacks)."""
    lines = [ln for ln in native_log.splitlines() if ln.strip() and not _INFO_LINE.match(ln)]
    return "\n".join(lines)


def set_native_env(verbose: bool) -> None:
    """Set the log-level variables TensorFlow and absl read when they load (user values win)."""
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, "0" if verbose else value)


@contextmanager
def absl_to_native_log() -> Iterator[None]:
    """absl's Python records (TensorFlow's converter warns through them: "WARNING:absl:For model
    inputs containing unsupported operations ...") go where the native lines go, file
    descriptor 2: captured with them, replayed after a failure, live with --verbose. They were
    printed on every int16x8 conversion through the root handler absl installs itself."""
    absl = logging.getLogger("absl")
    stream = open(2, "w", closefd=False, buffering=1, encoding="utf-8", errors="replace")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    propagate = absl.propagate
    absl.addHandler(handler)
    absl.propagate = False
    try:
        yield
    finally:
        absl.removeHandler(handler)
        absl.propagate = propagate
        stream.close()


@contextmanager
def native_logs(verbose: bool) -> Iterator[None]:
    """Around a command body: native stderr captured, replayed after a failure; live if verbose."""
    set_native_env(verbose)
    if verbose:
        with absl_to_native_log():
            yield
        return
    from edgeseg.cli.common import err_console, errors_last

    failed = False
    log = None
    with errors_last() as error_lines:  # the error line after the log that may explain it
        try:
            with quiet_native(show_on_error=False) as log, absl_to_native_log():
                yield
        except typer.Exit as exc:
            failed = exc.exit_code not in _QUIET_EXITS
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            failed = True
            raise
        finally:
            shown = worth_showing(log.text) if failed and log is not None else ""
            if shown:
                err_console.print("[dim]native library log (--verbose shows all of it):[/]")
                err_console.out(shown, highlight=False)
            error_lines()


def reflow_help(doc: str | None) -> str:
    """A docstring as --help should show it: paragraphs joined into one line each (the terminal
    wraps them), indented example lines kept one per line."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    out = []
    for para in paragraphs:
        lines = para.splitlines()
        if any(line[:1].isspace() for line in lines[1:]):
            out.append(para)
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def quiet_command(fn: F) -> F:
    """Wrap a command function in `native_logs`, adding `--verbose/-v` when it has none."""
    sig = inspect.signature(fn, eval_str=True)
    has_verbose = "verbose" in sig.parameters

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from edgeseg.cli.common import interrupts_kept

        verbose = bool(kwargs.get("verbose") if has_verbose else kwargs.pop("verbose", False))
        with interrupts_kept(), native_logs(verbose):
            return fn(*args, **kwargs)

    wrapper.__doc__ = reflow_help(fn.__doc__)
    if not has_verbose:
        option = typer.Option("--verbose", "-v", help=VERBOSE_HELP)
        extra = inspect.Parameter(
            "verbose",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[bool, option],
        )
        wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[*sig.parameters.values(), extra]
        )
    return wrapper  # type: ignore[return-value]
