"""The run folder's own rules, settled before training reads or writes it: one `train` per
--out at a time (a lock), the run a killed `--overwrite` set aside put back, and what the
folder already holds (a trained model, the epochs done). `build_config` applies them before
it reads config.json or generates built-in data; `fit.train` again for configs made by hand."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from edgeseg.core.errors import EdgesegError
from edgeseg.core.fileio import ASIDE_FOLDER, recover_aside
from edgeseg.train import CONFIG_NAME

log = logging.getLogger(__name__)

MULTIWORKER = "multiworker"


@contextlib.contextmanager
def run_lock(out: Path, strategy: str) -> Iterator[None]:
    """One training run per --out at a time: two `train` processes on one folder both exited 0
    and left a mix of their files. An advisory lock on the folder itself (no lock file to leave
    behind; the system drops it when the process dies, even killed). The workers of one
    multi-worker run share --out (only the chief writes): no lock there."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None  # type: ignore[assignment]
    if fcntl is None or strategy == MULTIWORKER:
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise EdgesegError(
                f"{out}: another edgeseg train is writing this run; wait for it to finish, or "
                "choose another --out"
            ) from None
        yield
    finally:
        os.close(fd)


def chief_lock(out: Path, strategy: str) -> contextlib.AbstractContextManager[None]:
    """The multi-worker chief's hold on OUT while it writes there (its workers share OUT with no
    lock; `fit.train` holds `run_lock` for every other strategy): a plain train of the folder
    is refused instead of putting the run the chief set aside back from under it."""
    return run_lock(out, "default") if strategy == MULTIWORKER else contextlib.nullcontext()


def recorded_strategy(out: Path) -> str | None:
    """The --strategy config.json records for the run in OUT (or for the run set aside there)."""
    for folder in (out, out / ASIDE_FOLDER):
        try:
            strategy = json.loads((folder / CONFIG_NAME).read_text())["train"]["strategy"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(strategy, str):
            return strategy
    return None


def recover_previous_run(out: Path, strategy: str) -> None:
    """A run killed outright (-9, power loss) before its first checkpoint left the run it was
    replacing in OUT/.replaced (`fileio.set_aside`): it goes back before anything is checked."""
    # multi-worker runs share --out without the lock and only their chief writes: the chief's
    # set_aside settles it
    if strategy == MULTIWORKER or not (out / ASIDE_FOLDER).is_dir():
        return
    with run_lock(out, strategy):  # not while another train is writing this run
        if restored := recover_aside(out):
            log.warning(
                "%s: put back %s from %s (a run stopped outright before its first checkpoint "
                "had set them aside)",
                out,
                ", ".join(restored),
                ASIDE_FOLDER,
            )


def refuse_resume_while_set_aside(out: Path) -> None:
    """A resume that finds the run only in OUT/.replaced: a multi-worker request does not put
    it back (its workers share OUT without the lock), so it says how, not 'nothing to resume'."""
    if not (out / CONFIG_NAME).is_file() and (out / ASIDE_FOLDER / CONFIG_NAME).is_file():
        raise EdgesegError(
            f"{out}: the run to resume is set aside in {out / ASIDE_FOLDER} (a training killed "
            f"outright); put it back with `edgeseg train --out {out}` (no --strategy "
            "multiworker; it then stops), then resume"
        )


def refuse_trained(out: Path) -> None:
    """A folder holding a trained model is not trained into again without --overwrite; nor one
    whose model a killed run set aside (a multi-worker request does not put it back: its run
    would have set it aside again and deleted it)."""
    if (out / "model.keras").exists():
        raise EdgesegError(
            f"{out}: already holds a trained model; pass --resume to continue it, "
            "--overwrite to replace it, or choose another --out"
        )
    if (out / ASIDE_FOLDER / "model.keras").exists():
        raise EdgesegError(
            f"{out}: a trained model is set aside in {out / ASIDE_FOLDER} (a training killed "
            f"outright); put it back with `edgeseg train --out {out}` (no --strategy "
            "multiworker), or pass --overwrite to replace it"
        )


def refuse_no_epochs_left(
    out: Path, epochs: int, *, qat_unfinished: bool, steps_per_epoch: int | None = None
) -> None:
    """A resume whose budget (EPOCHS, or steps at STEPS_PER_EPOCH each) is within the epochs
    already trained would train nothing, redo the quantisation-aware step and record a budget
    its history contradicts: refused, unless that step itself is what is left."""
    done = int(json.loads((out / "resume" / "state.json").read_text())["epoch"])
    if epochs > done or qat_unfinished:
        return
    trained = f"already trained {done} epoch{'s' if done != 1 else ''}"
    if steps_per_epoch is None:
        raise EdgesegError(f"{out}: {trained}; pass --epochs above {done} to continue")
    steps = done * steps_per_epoch
    raise EdgesegError(
        f"{out}: {trained} of {steps_per_epoch} steps ({steps} steps); pass --steps above "
        f"{steps} to continue"
    )
