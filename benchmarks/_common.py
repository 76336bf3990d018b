"""Shared by every benchmark script: where the real data sets are, argparse pieces that make bad
options usage errors (exit 2) before any model is built, one-line input errors, the machine line
every script prints first, and a runner that keeps native library lines off the terminal as the
CLI does.

Exit codes, the same in every script: 0 every target met, 1 a target missed (FAIL), 2 bad usage
or input (a bad option, a missing data set, a --workdir that cannot be a folder), 4 a file that
cannot be written mid-run (a full disk), 130 interrupted. Bad input is one line naming the option
or file; it is never read as a PASS or a FAIL.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from edgeseg.cli.quiet import absl_to_native_log, set_native_env, worth_showing
from edgeseg.core.errors import EdgesegError, WriteError, first_line
from edgeseg.runtime.quiet import NativeLog, quiet_native

# Before TensorFlow loads (the scripts import it inside main()), as the CLI does: the TF_CPP_,
# ABSL_ and GLOG_ log levels that hide TensorFlow's, absl's and oneDNN's start-up lines (values
# the user set win).
set_native_env(verbose=False)

REPO = Path(__file__).resolve().parents[1]
# The real data sets: ../shared/data beside the repository, or $EDGESEG_SHARED_DATA (as tests/).
DATA = Path(os.environ.get("EDGESEG_SHARED_DATA") or REPO.parent / "shared" / "data")
DATA_HINT = "set EDGESEG_SHARED_DATA to the folder holding the data sets (default ../shared/data)"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows the whole module docstring as written and every option's default; options
    whose default is None, False or empty say in their own help text what happens instead."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or default == []:
            return action.help
        return super()._get_help_string(action)


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An ArgumentParser with the script's full docstring as its description."""
    return argparse.ArgumentParser(description=doc, formatter_class=HelpFormatter)


def add_workdir(ap: argparse.ArgumentParser, what: str = "the model and video") -> None:
    """--workdir DIR, as every runtime benchmark takes it: where WHAT are built and kept."""
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"build {what} here and keep them; reused when there "
        "(default: a temporary folder, removed when the run ends)",
    )


def _cpuinfo() -> dict[str, str]:
    """/proc/cpuinfo's fields, the first processor's where they repeat ({} where there is none:
    not Linux)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():  # every block: a Pi names its board ("Model") in the last
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def machine() -> str:
    """Which machine measured: the CPU model, its logical CPUs (and the ones this process may
    use, when fewer) and, on x86, whether it has AVX512-VNNI (XNNPACK's int8 kernels are about
    float32 speed without it). Ratios differ by CPU; the README quotes figures by this line."""
    from edgeseg.runtime.interpreter import usable_cpus

    info = _cpuinfo()
    name = info.get("model name") or info.get("Model") or platform.processor()
    total, usable = os.cpu_count() or 1, usable_cpus()
    text = f"{name or platform.machine() or 'unknown CPU'}, {total} logical CPUs"
    if usable < total:
        text += f" ({usable} usable here)"
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        flags = info.get("flags")
        vnni = "unknown" if flags is None else "yes" if "avx512_vnni" in flags.split() else "no"
        text += f", avx512_vnni {vnni}"
    return text


def print_machine() -> None:
    """The first line of every benchmark's output: `machine: ...` (see `machine`)."""
    print(f"machine: {machine()}", flush=True)


def int_at_least(low: int) -> Callable[[str], int]:
    """argparse type: a whole number >= `low` (else a usage error naming the option, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (else a usage error naming the option, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def input_size(factor: int, why: str) -> Callable[[str], int]:
    """argparse type: a U-Net input side, a positive multiple of `factor` (`why` says why)."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value % factor:
            near = max(factor, value // factor * factor)
            raise argparse.ArgumentTypeError(
                f"must be a multiple of {factor} ({why}), got {value}; e.g. {near}"
            )
        return value

    return parse


def input_error(message: str, code: int = 2) -> NoReturn:
    """Bad input found after parsing (a missing data set, an unusable folder): one line on
    stderr naming the option or file, exit 2 (CODE: 4 for a file that cannot be written, as the
    CLI), so it reads as neither a PASS nor a FAIL."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def path_error(option: str, path: Path, exc: EdgesegError) -> NoReturn:
    """An input error for OPTION PATH from the library's error, naming PATH once: a message
    that begins with PATH (most do) has it taken off, or made relative when it names a file
    inside ("X: X/images: folder not found" -> "--data X: images: folder not found")."""
    message = first_line(exc)
    for prefix in (f"{path}: ", f"{path}{os.sep}"):
        if message.startswith(prefix):
            message = message[len(prefix) :]
            break
    input_error(f"{option} {path}: {message}")


def require_folder(path: Path, option: str, hint: str) -> Path:
    """`path` must be an existing folder, else an input error naming `option` with `hint`."""
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "folder not found"
        input_error(f"{option} {path}: {what}; {hint}")
    return path


def check_dataset(path: Path, option: str) -> None:
    """A data set edgeseg can open (layout, class names; pairs are read later by training),
    else an input error naming `option`: checked before minutes of training start."""
    from edgeseg.data.dataset import open_dataset

    require_folder(path, option, "pass a data set folder edgeseg reads")
    try:
        open_dataset(path, validate=False)
    except EdgesegError as exc:
        path_error(option, path, exc)


@contextmanager
def work_folder(path: Path | None, prefix: str) -> Iterator[Path]:
    """--workdir, created if missing, kept with what is built in it; without it a temporary
    folder (in $TMPDIR, named PREFIX...) removed when the block ends, on failure and Ctrl-C too
    (`edgeseg.core.fileio.scratch_dir`). A path that cannot be a folder (a file, no write
    access) is an input error before any work."""
    from edgeseg.core.fileio import make_dir, scratch_dir

    if path is None:
        with scratch_dir(prefix) as tmp:
            yield tmp
        return
    try:
        folder = make_dir(path, label="--workdir")
    except WriteError as exc:
        input_error(_workdir_error(path, exc))
    yield folder


def _workdir_error(path: Path, exc: WriteError) -> str:
    """Why --workdir PATH could not be made, naming the real cause: a missing folder is what
    --workdir creates, so when creating it fails, the folder it was to be made in is at fault
    (/proc/foo: "folder does not exist" meant /proc takes no new folders)."""
    if path.exists() or exc.cause is None:
        return first_line(exc)
    parent = next(p for p in path.absolute().parents if p.exists())
    cause = "not writable" if exc.cause == "folder does not exist" else exc.cause
    return f"--workdir {path}: cannot create it in {parent} ({cause})"


@contextmanager
def run_outputs(work: Path) -> Iterator[Path]:
    """A folder in WORK for one measured run's outputs (overlay video, mask PNGs, stats),
    removed once it is measured, with --workdir too: they are what a run writes to be timed,
    not something the user asked to keep (--workdir keeps the models and videos built)."""
    from edgeseg.core.fileio import scratch_dir

    with scratch_dir("run-", dir=work) as tmp:  # removed whole, even through Ctrl-C
        yield tmp


def check_output_file(path: Path | None, option: str) -> None:
    """A file the run writes at its end (--json) must be writable now, not after the run."""
    if path is None:
        return
    from edgeseg.core.fileio import check_output

    try:
        check_output(path, label=option)
    except EdgesegError as exc:
        input_error(first_line(exc))


def run_quietly(main: Callable[[], int]) -> NoReturn:
    """Run a benchmark's main() and exit with its code, as the CLI runs a command: what native
    libraries write to file descriptor 2 (the converter's MLIR notes, absl lines, LiteRT's
    XNNPACK INFO line), and absl's Python records routed there as the CLI routes them
    (`absl_to_native_log`), are captured while Python's own stderr stays on the terminal. If main()
    raises, the captured warnings and errors are shown first (they may explain it); an
    edgeseg error is one line with its own exit code, as in the CLI (2 bad input, 4 a file that
    cannot be written)."""
    log: NativeLog | None = None
    try:
        with quiet_native(show_on_error=False) as log, absl_to_native_log():
            code = main()
    except KeyboardInterrupt:  # as the CLI ends a stopped command: one word, exit 130
        print("interrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except BaseException as exc:
        shown = worth_showing(log.text) if log is not None else ""
        if shown:
            print(f"native library log:\n{shown}", file=sys.stderr, flush=True)
        if isinstance(exc, EdgesegError):
            input_error(first_line(exc), exc.exit_code)
        raise
    raise SystemExit(code)
