"""The one atomic writer: every file edgeseg writes goes through here.

A file is written under a unique temporary name in its target folder, flushed and fsynced, then
renamed over the target, so a reader (or a crash, Ctrl-C, a full disk) never leaves half a file
under the real name. On any failure the temporary file is removed. An OSError while writing becomes
one `WriteError` naming the path and the cause (no space, read-only, permission), exit code 4.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from edgeseg.core.errors import OutputError, WriteError

if TYPE_CHECKING:
    import numpy as np

_CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "folder does not exist",
    errno.ENOTDIR: "a parent is not a folder",
    errno.EISDIR: "is a folder",
    errno.EFBIG: "file too large",
}
_NO_FILES = "files cannot be created there"


def _staged(target: Path, stem: str, suffix: str) -> str:
    """A staged name beside TARGET: `.STEM.` + 8 random characters + SUFFIX (as mkstemp's)."""
    return str(target.parent / f".{stem}.{secrets.token_hex(4)}{suffix}")


def _create_staged(target: Path) -> tuple[int, str]:
    """Create a new staged file for TARGET exclusively, with the permissions of any new file
    (0666 less the umask, which the kernel applies: reading the umask means setting it, a
    process-wide change other threads' files would race with)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        name = _staged(target, target.stem, f".tmp{target.suffix}")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused staged file name", str(target.parent))


def _make_staged_dir(target: Path) -> Path:
    """Create a new hidden folder beside TARGET exclusively (0777 less the umask)."""
    for _ in range(100):
        name = _staged(target, target.name, ".tmp")
        try:
            os.mkdir(name, 0o777)
            return Path(name)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused staged folder name", str(target.parent))


def _where(path: str | Path, label: str = "") -> str:
    """How an error names an output: the option, then the path ('--out runs/x')."""
    return f"{label} {path}" if label else str(path)


def write_error(path: str | Path, exc: OSError, label: str = "") -> WriteError:
    """An OSError on output -> one WriteError naming the path (and option) and the cause."""
    cause = _CAUSES.get(exc.errno or 0) or (exc.strerror or str(exc) or type(exc).__name__)
    return WriteError(f"{_where(path, label)}: cannot write ({cause})", Path(path), cause)


def _create_error(target: Path, folder: Path, exc: OSError, label: str) -> WriteError:
    """A file for TARGET could not be created in FOLDER: `write_error`, except that ENOENT in a
    folder that exists is a file system that makes no files there (/proc), not a missing one."""
    if exc.errno == errno.ENOENT and folder.is_dir():
        return WriteError(f"{_where(target, label)}: cannot write ({_NO_FILES})", target, _NO_FILES)
    return write_error(target, exc, label)


def _as_target(exc: WriteError, tmp: Path, target: Path, label: str) -> WriteError:
    """A failure inside a staging file or folder, named by the output it stands for (the user
    never asked for `.x.abc123.tmp.tflite`); other errors as they are."""
    if exc.path is None or exc.cause is None:
        return exc
    try:
        inside = exc.path.relative_to(tmp)
    except ValueError:
        return exc
    return WriteError(
        f"{_where(target / inside if inside.parts else target, label)}: cannot write ({exc.cause})",
        target / inside if inside.parts else target,
        exc.cause,
    )


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself (best effort: not every file system lets a folder be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_dir_output(path: str | Path, *, label: str = "") -> None:
    """Before the work that fills it: a folder output where a file stands, or under a file,
    fails now (exit 4, naming the option), not after minutes of reading the data."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise WriteError(f"{_where(folder, label)}: not a folder; give a folder")
    check_parent(folder, label=label)


def make_dir(path: str | Path, *, label: str = "") -> Path:
    """Create a folder (and its parents) for output; an OSError becomes one WriteError (exit 4)."""
    folder = Path(path)
    check_dir_output(folder, label=label)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc, label) from None
    return folder


def _missing_folders(folder: Path) -> list[Path]:
    """The folders, deepest first, that creating `folder` would make (none when it exists)."""
    missing: list[Path] = []
    for candidate in (folder.absolute(), *folder.absolute().parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def remove_empty_dirs(made: list[Path]) -> None:
    """Undo the folders a failed write made (`make_dirs`), deepest first, while still empty."""
    for folder in made:
        try:
            folder.rmdir()
        except OSError:
            return


def make_dirs(path: str | Path, *, label: str = "") -> list[Path]:
    """`make_dir`, returning the folders it created (deepest first): an output that may end up
    empty gives them to `remove_empty_dirs`, so a failed run leaves no empty parents either."""
    made = _missing_folders(Path(path))
    make_dir(path, label=label)
    return made


@contextlib.contextmanager
def output_dir(path: str | Path, *, label: str = "") -> Iterator[Path]:
    """`make_dir` for a command's output folder, removed again (with the parents it made) when
    the block fails before anything was written in it: a failed run leaves no empty folder that
    looks like a result. A folder that was there before is left as it was."""
    folder = Path(path)
    made = _missing_folders(folder)
    make_dir(folder, label=label)
    try:
        yield folder
    except BaseException:
        remove_empty_dirs(made)
        raise


@dataclass
class Aside:
    """What `set_aside` holds: the folder, the names it set aside, and the witness file whose
    change (against `baseline`, its digest when the block's work began) means the new work
    replaced them."""

    folder: Path
    names: list[str]
    witness: str | None = None
    baseline: str | None = None
    begun: bool = False  # `begin` was called: before it, nothing new can have been written

    def begin(self) -> None:
        """Take the witness as it is now as the baseline: the block's own set-up (a model put
        in place before training) does not count as new work."""
        self.begun = True
        if self.witness is not None:
            self.baseline = _digest(self.folder / self.witness)
            if self.names:  # else nothing is held: no .replaced, no manifest
                self._record()

    @property
    def superseded(self) -> bool:
        """True once the witness exists and differs from the baseline: the new work is there."""
        if self.witness is None:
            return False
        now = _digest(self.folder / self.witness)
        return now is not None and now != self.baseline

    def _record(self) -> None:
        manifest = {
            "names": self.names,
            "witness": self.witness,
            "baseline": self.baseline,
            "begun": self.begun,
        }
        write_json(self.folder / ASIDE_FOLDER / _MANIFEST, manifest)


ASIDE_FOLDER = ".replaced"
_MANIFEST = "manifest.json"
_PART = ".part"


def _digest(path: Path) -> str | None:
    return file_sha256(path) if path.is_file() else None


def _put_back(aside: Path, folder: Path, names: Sequence[str]) -> None:
    for name in names:
        held = aside / name
        if not held.exists():
            continue
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(held, target)


def recover_aside(folder: Path) -> list[str]:
    """Settle a .replaced left by a process killed outright (-9, power loss): its files go back
    when the work it held them for never replaced them (its manifest's witness unchanged), else
    it is stale and removed; without a manifest (an older edgeseg's) it is removed. Returns the
    names put back. Call it only where no other process can be using FOLDER's .replaced."""
    aside = folder / ASIDE_FOLDER
    if not aside.is_dir():
        return []
    try:
        manifest = json.loads((aside / _MANIFEST).read_text(encoding="utf-8"))
        held = Aside(folder, list(manifest["names"]), manifest["witness"], manifest["baseline"])
        # killed during a block's set-up (before `begin`, if it calls it): nothing new yet
        unbegun = manifest.get("begun") is False
    except (OSError, ValueError, KeyError, TypeError):
        held, unbegun = None, False
    restored = []
    if held is not None and (unbegun or not held.superseded):
        restored = [name for name in held.names if (aside / name).exists()]
        try:
            _put_back(aside, folder, restored)
        except OSError as exc:
            raise write_error(folder, exc) from None
    shutil.rmtree(aside, ignore_errors=True)
    return restored


@contextlib.contextmanager
def set_aside(
    folder: Path, names: Sequence[str], *, copy: bool = False, witness: str | None = None
) -> Iterator[Aside]:
    """FOLDER's files (or folders) among NAMES moved, or copied, into FOLDER/.replaced for the
    block, so work that replaces them can fail or be stopped without losing them. When the
    block ends (normally or not) they go back unless the WITNESS file (e.g. the model a run
    writes) changed since the block began (`Aside.begin`, called once the block's set-up is
    done, moves that point), in which case they are removed. A manifest in .replaced records
    the decision's inputs, so a .replaced left by a process killed outright is settled the
    same way by the next call for FOLDER (put back if it was killed before `begin`)."""
    aside = folder / ASIDE_FOLDER
    recover_aside(folder)
    present = [name for name in names if (folder / name).exists()]
    moved_witness = witness in present and not copy
    baseline = None if moved_witness or witness is None else _digest(folder / witness)
    held = Aside(folder, present, witness, baseline)
    try:
        if present:
            aside.mkdir()
            held._record()
        for name in present:
            source, part = folder / name, aside / (name + _PART)
            if not copy:
                os.replace(source, aside / name)
            elif source.is_dir():
                shutil.copytree(source, part, symlinks=True)
                os.replace(part, aside / name)
            else:
                shutil.copy2(source, part)
                os.replace(part, aside / name)
    except OSError as exc:  # what was moved goes back (copies are dropped): nothing held
        with contextlib.suppress(OSError):
            if not copy:
                _put_back(aside, folder, present)
            shutil.rmtree(aside, ignore_errors=True)
        raise write_error(folder, exc) from None
    try:
        yield held
    finally:
        if not held.superseded:
            _put_back(aside, folder, held.names)
        shutil.rmtree(aside, ignore_errors=True)


def check_parent(path: str | Path, *, label: str = "") -> None:
    """Fail early, naming the output, when its folder cannot exist because a file stands where
    a folder must (exit 4); a folder that is only missing is fine: the writers create it."""
    target = Path(path)
    for folder in target.absolute().parents:
        if folder.exists():
            if not folder.is_dir():
                raise WriteError(f"{_where(target, label)}: {folder} is not a folder")
            return


def not_a_file(target: Path) -> str | None:
    """Why a file cannot be written at TARGET by renaming over it ("is a folder", "not a
    regular file ..."), or None: the one test every output check words its error from."""
    if target.is_dir():
        return "is a folder"
    if target.exists() and not target.is_file():
        # renaming over it would replace the device, pipe or socket itself (as root, /dev/full)
        return "not a regular file (a device, pipe or socket)"
    return None


def _check_target(target: Path, label: str) -> None:
    """A file output's own checks: not a folder, not a device, pipe or socket."""
    why = not_a_file(target)
    if why is not None:
        give = "give a file name" if why == "is a folder" else "give a file"
        raise WriteError(f"{_where(target, label)}: {why}; {give}")


_NOT_JSON = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".mp4", ".avi"})


def check_json_output(path: str | Path, *, label: str = "") -> None:
    """`check_output` for a JSON report, refusing a name that is an image's or a video's:
    `eval --out DATA/val/images/tile1.jpg` replaced an image of the data with JSON."""
    target = Path(path)
    if target.suffix.lower() in _NOT_JSON:  # a wrong option value (exit 2), not a failed write
        raise OutputError(
            f"{_where(target, label)}: writes JSON; name a .json file ({target.suffix} is an "
            "image's or a video's name)"
        )
    check_output(target, label=label)


def check_output(path: str | Path, *, label: str = "") -> None:
    """Before the work that fills it: fail now (exit 4, naming the option) for a file output
    that cannot be written at the end: a folder, a device, a file where a folder must be, or a
    folder the user cannot write in. A stream of minutes or a benchmark then never runs only to
    lose its result. (A full disk can only be found by writing.)"""
    target = Path(path)
    _check_target(target, label)
    check_parent(target, label=label)
    folder = next(f for f in (target.absolute().parent, *target.absolute().parents) if f.exists())
    # a file really made and removed: permissions alone pass everything as root, where /proc,
    # /sys or a read-only mount then failed only at the end
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".edgeseg-probe-")
    except OSError as exc:
        raise _create_error(target, folder, exc, label) from None
    os.close(fd)
    os.unlink(probe)


@contextlib.contextmanager
def atomic_path(
    path: str | Path, *, label: str = "", mkdir: bool = False, sweep: bool = False
) -> Iterator[Path]:
    """Yield a unique temporary path beside `path` (same suffix, so OpenCV and Keras pick the
    format); when the block ends normally it is fsynced and renamed over `path`, else removed.

    For writers that need a file name (cv2.VideoWriter, keras.Model.save); `label` names the
    option in error messages (e.g. "--save"). The staged file is locked (flock) while its
    writer lives; `sweep` first removes the unlocked staged files of `path`, left by processes
    killed outright (a 43 MB hidden video per OOM-killed run on a Pi's card). For large outputs
    only: it lists the folder.
    """
    target = Path(path)
    if sweep:
        _sweep_stale(target)
    _check_target(target, label)
    made: list[Path] = []  # folders this write creates, removed again if it fails
    if mkdir:
        check_parent(target, label=label)  # named as such, not mkdir's "(File exists)"
        made = _missing_folders(target.parent)
    try:
        if mkdir:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = _create_staged(target)
    except OSError as exc:
        remove_empty_dirs(made)
        raise _create_error(target, target.parent, exc, label) from None
    tmp = Path(name)
    # held until the block ends: a sweep leaves a living writer's file alone. Without flock
    # (Windows, where an open file cannot be renamed over) it is closed at once
    locked = _lock(fd)
    if not locked:
        os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except WriteError as exc:  # a writer of the staged file failed: name the output
        tmp.unlink(missing_ok=True)
        remove_empty_dirs(made)
        raise _as_target(exc, tmp, target, label) from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        remove_empty_dirs(made)
        raise write_error(target, exc, label) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_empty_dirs(made)
        raise
    finally:
        if locked:
            os.close(fd)
    _fsync_dir(target.parent)


def _lock(fd: int) -> bool:
    """An exclusive advisory lock on FD without waiting; False when another holds it (or the
    platform has no flock: then nothing is ever taken for stale)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _sweep_stale(target: Path) -> None:
    """Remove the staged files of TARGET (`.STEM.xxxxxxxx.tmp.SUFFIX`, 8 random characters
    exactly, so `cam.2024-06-01.mp4`'s are not `cam.mp4`'s) that no writer holds."""
    staged = re.compile(
        re.escape(f".{target.stem}.") + r"[A-Za-z0-9_]{8}" + re.escape(f".tmp{target.suffix}")
    )
    try:
        entries = [e for e in os.scandir(target.parent) if staged.fullmatch(e.name)]
    except OSError:
        return
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(fd):  # nobody writes it: left by a process killed outright
                os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", *, label: str = "", mkdir: bool = False
) -> Iterator[IO[Any]]:
    """Open a temp file for writing (`w` text, `wb` bytes); renamed over `path` on success."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, label=label, mkdir=mkdir) as tmp:
        try:
            with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as fh:
                yield fh
                fh.flush()
        except OSError as exc:
            raise write_error(path, exc, label) from None


def write_bytes(path: str | Path, data: bytes, *, label: str = "", mkdir: bool = False) -> Path:
    """Write bytes atomically; returns the path."""
    with atomic_open(path, "wb", label=label, mkdir=mkdir) as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, *, label: str = "", mkdir: bool = False) -> Path:
    """Write UTF-8 text atomically; returns the path."""
    with atomic_open(path, "w", label=label, mkdir=mkdir) as fh:
        fh.write(text)
    return Path(path)


def append_text(path: str | Path, text: str, *, label: str = "") -> Path:
    """Append UTF-8 text to a file others own (e.g. $GITHUB_STEP_SUMMARY); fsynced, one error."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise write_error(path, exc, label) from None
    return Path(path)


def _plain(value: Any) -> Any:
    """VALUE with what JSON cannot hold made plain: NaN and infinities become null (Python's
    json writes them as NaN / Infinity, which JavaScript, jq and most parsers reject), numpy
    scalars and arrays become numbers and lists, tuples lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    numpy = sys.modules.get("numpy")  # not loaded: no numpy values (the CLI starts without it)
    if numpy is not None and isinstance(value, numpy.ndarray):
        return _plain(value.tolist())
    if numpy is not None and isinstance(value, numpy.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(payload: Any, *, indent: int | None = 2) -> str:
    """The one way edgeseg writes JSON (reports, stats, config.json, metadata, the live page's
    /stats): strict JSON, non-finite numbers as null; pretty with a final newline by default."""
    text = json.dumps(_plain(payload), indent=indent, allow_nan=False)
    return text + "\n" if indent is not None else text


def write_json(path: str | Path, payload: Any, *, label: str = "", mkdir: bool = False) -> Path:
    """Write `json_text(payload)` atomically; returns the path."""
    return write_text(path, json_text(payload), label=label, mkdir=mkdir)


def encode_image(
    path: str | Path, image: np.ndarray, *, label: str = "", params: list[int] | None = None
) -> bytes:
    """Encode an image in the format its suffix names (.png, .jpg); WriteError if OpenCV can't."""
    import cv2  # here: the CLI's start (every --help) needs no OpenCV

    suffix = Path(path).suffix.lower() or ".png"
    try:
        ok, buf = cv2.imencode(suffix, image, params or [])
    except cv2.error:
        ok = False
    if not ok:
        raise WriteError(
            f"{_where(path, label)}: OpenCV cannot encode a {suffix} image of shape {image.shape}"
        )
    return bytes(buf)


def write_image(
    path: str | Path,
    image: np.ndarray,
    *,
    label: str = "",
    mkdir: bool = False,
    params: list[int] | None = None,
) -> Path:
    """Encode in memory, then write atomically: what lands on disk is checked, never 0 bytes.

    `params` are OpenCV imencode flags, e.g. [cv2.IMWRITE_JPEG_QUALITY, 92].
    """
    data = encode_image(path, image, label=label, params=params)
    return write_bytes(path, data, label=label, mkdir=mkdir)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, label: str = "") -> Iterator[Path]:
    """Yield a hidden sibling folder to fill; when the block ends normally it replaces `path`
    (an old folder is removed only after the new one is in place), else it is deleted.

    So an interrupted run never leaves a folder that looks complete (e.g. a generated dataset).
    """
    target = Path(path)
    if target.exists() and not target.is_dir():  # never delete a file to put a folder there
        raise WriteError(f"{_where(target, label)}: not a folder; give a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _make_staged_dir(target)
    except OSError as exc:
        raise write_error(target, exc, label) from None
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.{tmp.name}.old"
            os.replace(target, old)
        os.replace(tmp, target)
    except WriteError as exc:  # a file inside the staged folder: named inside the real one
        shutil.rmtree(tmp, ignore_errors=True)
        raise _as_target(exc, tmp, target, label) from None
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        err = write_error(target, exc, label)
        if isinstance(exc.filename, str):  # a file inside the staged folder: name that file
            inner = write_error(exc.filename, exc)
            mapped = _as_target(inner, tmp, target, label)
            err = err if mapped is inner else mapped
        raise err from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def write_together(*writes: Callable[[], object]) -> None:
    """Run WRITES (each one atomic write) to the end even when Ctrl-C or SIGTERM (a
    KeyboardInterrupt) lands among them, then re-raise it: files that belong together (a model
    and the config.json describing it) are never left one new and one old. The write that was
    interrupted is done again once; a second interrupt during it stops at once."""
    stopped: KeyboardInterrupt | None = None
    for write in writes:
        try:
            write()
        except KeyboardInterrupt as exc:
            stopped = stopped or exc
            write()
    if stopped is not None:
        raise stopped


@contextlib.contextmanager
def scratch_dir(prefix: str, dir: Path | None = None) -> Iterator[Path]:
    """A private temporary folder (in DIR, else $TMPDIR) for the block, removed when it ends.
    Unlike tempfile.TemporaryDirectory, a Ctrl-C that lands during the removal does not leave
    it half removed (a converter's SavedModel is tens of MB): the removal is finished, then
    re-raised."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=dir))
    try:
        yield path
    finally:
        write_together(lambda: shutil.rmtree(path, ignore_errors=True))


def file_sha256(path: str | Path) -> str:
    """A file's SHA-256 (hex), read in 1 MiB blocks: which model a conversion came from."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
