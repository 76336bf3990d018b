"""Shared CLI plumbing: one-line errors with exit codes, the rich console, quiet TensorFlow logs."""

from __future__ import annotations

import errno
import logging
import os
import platform
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from edgeseg.core.errors import EdgesegError, first_line
from edgeseg.core.fileio import write_error
from edgeseg.core.stops import defer_stop

# Piped into a CI log: long lines stay whole (no wrapping at 80 columns mid-sentence) and tables
# get room; in a terminal rich measures the window as usual.
_PIPE_WIDTH = None if sys.stdout.isatty() else 120
console = Console(soft_wrap=True, width=_PIPE_WIDTH, log_path=False)  # no `demo_cmd.py:42`
err_console = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 120)
T = TypeVar("T")
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class _ConsoleLogHandler(logging.Handler):
    """edgeseg log records -> the CLI's one-line warnings, and info lines as plain stderr text."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            warn(record.getMessage())
        else:
            err_console.print(record.getMessage(), highlight=False, soft_wrap=True)


def route_logs(name: str, level: int) -> None:
    """Show the `name` logger's records at `level` and above on the console (once per logger):
    the library logs, the CLI decides what users see."""
    logger = logging.getLogger(name)
    if not any(isinstance(h, _ConsoleLogHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleLogHandler())
    logger.setLevel(level)
    logger.propagate = False


def quiet_tensorflow() -> None:
    """Hide TensorFlow's C++ start-up chatter before it is imported (users see our output only)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


def fast_tensorflow_cpu() -> None:
    """Turn on TensorFlow's oneDNN kernels on x86-64 before TensorFlow loads, unless the user set
    TF_ENABLE_ONEDNN_OPTS: TensorFlow enables them by itself only on CPUs with AVX512-VNNI or
    AMX, but on an AVX2-only EPYC they trained 1.1-1.7x faster (README, "Training speed")."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


# Set by the Ctrl-C handler of `interrupts_kept`: a KeyboardInterrupt raised inside a finaliser
# (TensorFlow's ConcreteFunction __del__) is swallowed by Python, so progress callbacks raise it
# again at the next step and a conversion cannot finish and publish after Ctrl-C.
_interrupted = threading.Event()
_terminated = threading.Event()  # the stop came as SIGTERM (systemd, docker stop, kill)


class Terminated(KeyboardInterrupt):
    """SIGTERM, as the CLI raises it: the command stops as on Ctrl-C (staged files removed, a
    training run keeps its best checkpoint), then exits 143 (128 + SIGTERM) saying so."""


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed during this command, even if lost."""
    if _terminated.is_set():
        raise Terminated
    if _interrupted.is_set():
        raise KeyboardInterrupt


def stop_exit(detail: str = "") -> typer.Exit:
    """The exit for a command stopped by a signal, said on stderr: 'interrupted' (Ctrl-C, 130)
    or 'terminated' (SIGTERM, 143), then `detail` (': kept the best checkpoint ...')."""
    if _terminated.is_set():
        err_console.print(f"terminated{detail}", style="yellow", highlight=False)
        return typer.Exit(143)
    err_console.print(f"interrupted{detail}", style="yellow", highlight=False)
    return typer.Exit(130)


@contextmanager
def interrupts_kept() -> Iterator[None]:
    """Around a command (main thread only): Ctrl-C raises KeyboardInterrupt as usual and is
    remembered, so `raise_if_interrupted` brings it back if a finaliser swallowed it. However
    it lands, the command ends 'interrupted' with 130 ('terminated', 143, for SIGTERM): it
    exited 0 when swallowed near the end, or 130 without a word when raised while printing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    # inside the library's `safe_points` (a Keras fit) a stop waits for the next safe point:
    # raised in the middle of TensorFlow's C code it came out as a SystemError traceback
    def on_sigint(signum: int, frame: object) -> None:
        _interrupted.set()
        if not defer_stop(KeyboardInterrupt):
            raise KeyboardInterrupt

    def on_sigterm(signum: int, frame: object) -> None:
        _interrupted.set()
        _terminated.set()
        if not defer_stop(Terminated):
            raise Terminated

    _interrupted.clear()
    _terminated.clear()
    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
        if _interrupted.is_set():  # swallowed (a finaliser) after the last step that checks
            raise stop_exit(" after the command had finished (what it wrote is complete)")
    except KeyboardInterrupt:  # raised outside user_errors (printing the report, say)
        raise stop_exit() from None
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        _interrupted.clear()
        _terminated.clear()


# While a command runs quietly (cli.quiet.native_logs), its error line waits here, so that the
# native log replayed after a failure comes before it and `error: ...` stays the last line.
_held_errors: list[str] | None = None


@contextmanager
def errors_last() -> Iterator[Callable[[], None]]:
    """Hold `fail` lines until the returned flush is called (or the block ends)."""
    global _held_errors
    outer, _held_errors = _held_errors, []
    held = _held_errors

    def flush() -> None:
        for line in held:
            err_console.print(line, highlight=False, soft_wrap=True)
        held.clear()

    try:
        yield flush
    finally:
        flush()
        _held_errors = outer


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise (exit code `code`)."""
    line = f"[bold red]error:[/] {escape(message)}"
    if _held_errors is not None:
        _held_errors.append(line)
    else:
        err_console.print(line, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def next_steps(*commands: list[str]) -> None:
    """`next: edgeseg ...` lines after a stage that worked: the command that usually follows,
    with this run's paths filled in and shell-quoted, ready to copy."""
    for command in commands:
        console.print(f"[dim]next:[/] {escape(shlex.join(command))}", highlight=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected library errors into one-line messages and non-zero exits; Ctrl-C exits 130."""
    try:
        yield
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (Terminated: its handler set the flag)
        raise stop_exit() from None
    except typer.Exit:
        raise
    except Exception as exc:
        if _interrupted.is_set():  # what a stop broke on its way out (native code can turn the
            raise stop_exit() from None  # KeyboardInterrupt into a SystemError): still the stop
        exit_ = _as_exit(exc)
        if exit_ is None:
            raise  # a bug: its traceback, as it is
        raise exit_ from None


def _as_exit(exc: Exception) -> typer.Exit | None:
    """The one-line exit for an expected library error; None for any other exception."""
    if isinstance(exc, EdgesegError):
        return fail(str(exc), exc.exit_code)
    if isinstance(exc, FileNotFoundError):
        return fail(f"{exc.filename}: not found", 2)
    if isinstance(exc, OSError):  # stray: one line; on output (no space, read-only) exit 4
        if exc.errno in _WRITE_ERRNOS:
            err = write_error(exc.filename or "output", exc)
            return fail(str(err), err.exit_code)
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or first_line(exc)}", 2)
    return None


def call(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call a library function under `user_errors`."""
    with user_errors():
        return fn(*args, **kwargs)


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """Network input size: '256' -> (256, 256); '192x256' -> (height 192, width 256)."""
    from edgeseg.core.spec import parse_size as size_pair

    try:
        return size_pair(text, option)
    except EdgesegError as e:
        raise fail(str(e)) from None


def stdout_isatty() -> bool:
    return sys.stdout.isatty()


class Phases:
    """Named steps on one transient status line; each finished step is printed with its time,
    so a CI log reads `export 2.1 s`, `calibrate 200/200 3.4 s`, ... instead of a stuck bar."""

    def __init__(self, bar: Progress, task: TaskID) -> None:
        self.bar, self.task = bar, task
        self.name: str | None = None
        self.started = time.perf_counter()
        self.counts = ""

    def phase(self, name: str) -> None:
        raise_if_interrupted()
        if name == self.name:
            return
        self.finish()
        self.name, self.started, self.counts = name, time.perf_counter(), ""
        self.bar.update(self.task, description=name, completed=0, total=None)

    def progress(self, done: int, total: int) -> None:
        """The library's progress(done, total) callback for the current step; when calibration
        has consumed every frame the converter quantises, so that becomes the `convert` step."""
        raise_if_interrupted()
        self.counts = f" {done}/{total}"
        self.bar.update(self.task, completed=done, total=total)
        if done >= total and self.name == "calibrate":
            self.phase("convert")

    def finish(self) -> None:
        if self.name is not None:
            seconds = time.perf_counter() - self.started
            self.bar.console.print(f"  {self.name}{self.counts} {seconds:.1f} s", highlight=False)
        self.name = None


def _bar() -> Progress:
    """The one progress-bar look (on stderr, gone when done) of `phases` and `progress_bar`."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


@contextmanager
def _shown(bar: Progress) -> Iterator[Progress]:
    """BAR live on a terminal; elsewhere (a CI log, a pipe) not started at all, so it leaves not
    even the blank line a stopped bar prints."""
    if err_console.is_terminal:
        with bar:
            yield bar
    else:
        yield bar


@contextmanager
def phases(first: str) -> Iterator[Phases]:
    """A `Phases` line on stderr for multi-step library calls (convert)."""
    with _shown(_bar()) as bar:
        steps = Phases(bar, bar.add_task(first, total=None))
        steps.phase(first)
        yield steps
        steps.finish()


@contextmanager
def progress_bar(label: str, *, until_done: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on a terminal driven by the library's progress(done, total)
    callback. With `until_done` it shows from the first call to the one that reaches the total,
    so a first phase (checking a dataset's pairs) can report inside a longer call (training)."""
    bar = _bar()
    task = bar.add_task(label, total=None)
    live = err_console.is_terminal

    def update(done: int, total: int) -> None:
        raise_if_interrupted()
        bar.update(task, completed=done, total=total)
        if live and not bar.live.is_started and done < total:
            bar.start()
        if until_done and done >= total and bar.live.is_started:
            bar.stop()

    if live and not until_done:
        bar.start()
    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


def warn_if_stale(model: Path) -> None:
    """A .tflite whose source .keras beside it changed since the conversion (retrained, not
    converted again) is said once: its figures are the old model's (`check` refuses it)."""
    from edgeseg.core.model_metadata import stale_source

    if model.suffix.lower() == ".tflite" and (source := stale_source(model)) is not None:
        warn(
            f"{model} was converted from an earlier {source.name} beside it (retrained since): "
            f"it is the old model; convert again: edgeseg convert {source}"
        )
