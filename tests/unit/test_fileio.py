"""The one atomic writer: renamed into place on success, nothing left on failure, errors named."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeseg.core import fileio
from edgeseg.core.errors import OutputError, WriteError


def test_write_json_lands_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    out = fileio.write_json(tmp_path / "a.json", {"x": 1})
    assert out.read_text() == '{\n  "x": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_json_is_strict_whatever_the_payload_holds(tmp_path: Path) -> None:
    """NaN and infinities (an mIoU of no class, a thread trial that never ran) become null, not
    the NaN / Infinity tokens JavaScript and jq reject; numpy values become plain numbers."""
    payload = {
        "nan": float("nan"),
        "inf": float("-inf"),
        "np": np.float32(0.5),
        "n": np.int64(3),
        "arr": np.array([1.0, np.inf]),
        "nested": ({"x": np.nan},),
    }
    text = fileio.json_text(payload)
    assert "NaN" not in text and "Infinity" not in text and text.endswith("}\n")
    assert json.loads(text) == {
        "nan": None,
        "inf": None,
        "np": 0.5,
        "n": 3,
        "arr": [1.0, None],
        "nested": [{"x": None}],
    }
    assert fileio.json_text({"a": 1}, indent=None) == '{"a": 1}'
    out = fileio.write_json(tmp_path / "s.json", {"fps": float("inf")})
    assert json.loads(out.read_text()) == {"fps": None}


def test_failure_inside_block_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), fileio.atomic_open(target, "wb") as fh:
        fh.write(b"half")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]


def test_oserror_becomes_write_error_naming_path_and_cause(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(WriteError, match=r"--out .*out\.json: cannot write \(no space") as info:
        with fileio.atomic_open(target, "w", label="--out"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.exit_code == 4
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_is_a_write_error(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match="folder does not exist"):
        fileio.write_text(tmp_path / "nope" / "a.txt", "x")


def test_write_image_is_checked_and_keeps_suffix_format(tmp_path: Path) -> None:
    img = np.arange(64, dtype=np.uint8).reshape(8, 8)
    out = fileio.write_image(tmp_path / "m.png", img)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(WriteError, match="cannot encode"):
        fileio.write_image(tmp_path / "m.unknownext", img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")
def test_a_device_or_pipe_is_refused_not_replaced(tmp_path: Path) -> None:
    """`--out /dev/full` once renamed a regular file over the device node (as root): anything
    that exists and is neither a file nor a folder is a write error, and stays what it was."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    link = tmp_path / "link.json"
    link.symlink_to(pipe)
    for target in (pipe, link):
        with pytest.raises(WriteError, match="not a regular file") as info:
            fileio.write_json(target, {"x": 1}, label="--out")
        assert info.value.exit_code == 4 and str(target) in str(info.value)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "pipe"]
    with pytest.raises(WriteError, match="is a folder"):
        fileio.write_text(tmp_path, "x")


def test_atomic_dir_never_replaces_a_file(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_text("mine")
    with pytest.raises(WriteError, match="not a folder"), fileio.atomic_dir(target):
        pass
    assert target.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_check_parent_allows_a_missing_folder_and_refuses_one_under_a_file(
    tmp_path: Path,
) -> None:
    from edgeseg.core.fileio import check_parent

    check_parent(tmp_path / "new" / "deeper" / "out.mp4", label="--save")  # created on write
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(WriteError, match=r"--save .*notes\.txt is not a folder") as err:
        check_parent(tmp_path / "notes.txt" / "sub" / "out.mp4", label="--save")
    assert err.value.exit_code == 4


def test_a_failure_inside_a_staged_output_names_the_output(tmp_path: Path) -> None:
    """`convert` builds its .tflite under a hidden temp name and `demo` its data in a hidden
    folder: a full disk there is reported as the output the user asked for, not the temp."""
    full = OSError(errno.ENOSPC, "No space left on device")
    out = tmp_path / "x.tflite"
    with pytest.raises(WriteError) as err:
        with fileio.atomic_path(out, label="--out") as staged:
            with fileio.atomic_path(staged):  # a writer of the staged file
                raise full
    assert str(err.value) == f"--out {out}: cannot write (no space left on the device)"
    data = tmp_path / "demo" / "data"
    with pytest.raises(WriteError) as err:
        with fileio.atomic_dir(data, label="--out") as staged_dir:
            fileio.write_bytes(staged_dir / "train" / "a.png", b"x", mkdir=True)
            with fileio.atomic_path(staged_dir / "train" / "b.png"):
                raise full
    assert str(err.value) == (
        f"--out {data / 'train' / 'b.png'}: cannot write (no space left on the device)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert list((tmp_path / "demo").iterdir()) == []  # nothing staged is left behind


def test_an_output_under_a_file_says_so_not_file_exists(tmp_path: Path) -> None:
    """`--stats notes.txt/s.json`, `--out-dir notes.txt`: mkdir's '(File exists)' named no cause a
    user could act on; the path that is not a folder is named instead (exit 4)."""
    (tmp_path / "notes.txt").write_text("")
    for write in (
        lambda: fileio.write_json(
            tmp_path / "notes.txt" / "s.json", {}, label="--stats", mkdir=True
        ),
        lambda: fileio.make_dir(tmp_path / "notes.txt" / "overlays", label="--save-overlays"),
    ):
        with pytest.raises(WriteError, match=r"notes\.txt is not a folder") as err:
            write()
        assert "File exists" not in str(err.value) and err.value.exit_code == 4


def test_a_failed_write_removes_the_folders_it_made_and_only_those(tmp_path: Path) -> None:
    """`check --out-dir reports/x` on a full disk used to leave reports/x empty behind it: a
    folder that looks like a result. Folders that were there, or hold other files, stay."""
    target = tmp_path / "reports" / "x" / "check.json"
    with pytest.raises(WriteError, match="no space"):
        with fileio.atomic_open(target, "w", label="--out-dir", mkdir=True):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    fileio.write_text(tmp_path / "reports" / "x" / "check.md", "kept", mkdir=True)
    with pytest.raises(WriteError):
        with fileio.atomic_open(target, "w", mkdir=True):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert [p.name for p in (tmp_path / "reports" / "x").iterdir()] == ["check.md"]


def test_output_dir_is_removed_when_the_command_fails_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "a"
    with pytest.raises(RuntimeError), fileio.output_dir(out, label="--out") as folder:
        assert folder.is_dir()
        raise RuntimeError("first step failed")
    assert list(tmp_path.iterdir()) == []  # runs/ too: this command made it
    with pytest.raises(RuntimeError), fileio.output_dir(out) as folder:
        (folder / "history.csv").write_text("epoch\n")
        raise RuntimeError("later step failed")
    assert (out / "history.csv").is_file()  # what was written stays
    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(RuntimeError), fileio.output_dir(mine):
        raise RuntimeError("x")
    assert mine.is_dir()  # a folder it did not make is left as it was
    with fileio.output_dir(tmp_path / "ok") as folder:
        pass
    assert folder.is_dir()


def test_check_output_refuses_now_what_the_writer_would_refuse_at_the_end(tmp_path: Path) -> None:
    fileio.check_output(tmp_path / "new" / "deeper" / "stats.json", label="--stats")  # made later
    with pytest.raises(WriteError, match=r"--json .*: is a folder"):
        fileio.check_output(tmp_path, label="--json")
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match=r"--out .*file/x\.json: .*file is not a folder"):
        fileio.check_output(tmp_path / "file" / "x.json", label="--out")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("running as root: permissions do not stop writes")
    with pytest.raises(WriteError, match=r"--out .*: cannot write \(permission denied\)"):
        fileio.check_output(locked / "x.json", label="--out")


def test_set_aside_puts_files_back_unless_the_witness_changed(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_text("old")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("old")
    with pytest.raises(RuntimeError), fileio.set_aside(tmp_path, ["m.keras", "d", "absent"]):
        assert not (tmp_path / "m.keras").exists()
        (tmp_path / "d").mkdir()  # a new run's half-made folder
        raise RuntimeError("stopped")
    assert (tmp_path / "m.keras").read_text() == "old" and (tmp_path / "d" / "x").is_file()
    with fileio.set_aside(tmp_path, ["m.keras"], copy=True, witness="m.keras") as aside:
        assert (tmp_path / "m.keras").read_text() == "old"  # copied: still in place
        (tmp_path / "m.keras").write_text("set-up")
        aside.begin()  # the block's own set-up is not new work
    assert (tmp_path / "m.keras").read_text() == "old"
    with fileio.set_aside(tmp_path, ["m.keras"], copy=True, witness="m.keras") as aside:
        (tmp_path / "m.keras").write_text("new")
    assert (tmp_path / "m.keras").read_text() == "new"
    with fileio.set_aside(tmp_path, ["absent"], witness="m.keras") as aside:
        aside.begin()  # nothing held: nothing to record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "m.keras"]


@pytest.mark.parametrize("copy", [False, True])
def test_what_a_killed_process_set_aside_is_settled_by_the_next_call(
    tmp_path: Path, copy: bool
) -> None:
    """A .replaced left by a process killed outright (-9) was cleared by the next training,
    deleting the previous run its killed successor had not yet replaced."""
    (tmp_path / "m.keras").write_text("old")
    (tmp_path / "c.json").write_text("old config")
    killed = fileio.set_aside(tmp_path, ["m.keras", "c.json"], copy=copy, witness="m.keras")
    killed.__enter__()  # and never left: the process died inside the block
    (tmp_path / "c.json").write_text("half a new run")
    assert fileio.recover_aside(tmp_path) == ["m.keras", "c.json"]
    assert (tmp_path / "m.keras").read_text() == "old"
    assert (tmp_path / "c.json").read_text() == "old config"
    assert not (tmp_path / fileio.ASIDE_FOLDER).exists()

    killed = fileio.set_aside(tmp_path, ["m.keras", "c.json"], copy=copy, witness="m.keras")
    killed.__enter__().begin()
    (tmp_path / "m.keras").write_text("the new run's checkpoint")
    assert fileio.recover_aside(tmp_path) == []  # replaced: the stale copies go
    assert (tmp_path / "m.keras").read_text() == "the new run's checkpoint"
    assert not (tmp_path / fileio.ASIDE_FOLDER).exists()
    assert fileio.recover_aside(tmp_path) == []  # nothing to settle

    # killed during the set-up, before `begin`: a resumed run had just put its float model
    # in place of the quantisation-aware one, and recovery took that for new work
    (tmp_path / "c.json").write_text("config")
    killed = fileio.set_aside(tmp_path, ["m.keras", "c.json"], copy=copy, witness="m.keras")
    killed.__enter__()
    (tmp_path / "m.keras").write_text("the float model, put in place by the set-up")
    assert fileio.recover_aside(tmp_path) == ["m.keras", "c.json"]
    assert (tmp_path / "m.keras").read_text() == "the new run's checkpoint"


def test_set_aside_that_fails_halfway_puts_back_what_it_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed move left the files moved so far in .replaced, which the next call cleared."""
    for name in ("a", "b"):
        (tmp_path / name).write_text(name)
    real_replace = os.replace
    calls = []

    def failing(src: Any, dst: Any) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", failing)
    with pytest.raises(WriteError, match="no space"), fileio.set_aside(tmp_path, ["a", "b"]):
        pytest.fail("the block must not run")
    monkeypatch.setattr(fileio.os, "replace", real_replace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert (tmp_path / "a").read_text() == "a"


def test_write_together_finishes_every_write_before_an_interrupt_stops_it(tmp_path: Path) -> None:
    """A Ctrl-C between a checkpoint's model and its config.json paired the new model with
    the old config (the quantisation-aware model with the float normalisation)."""
    model, config = tmp_path / "model.keras", tmp_path / "config.json"
    model.write_text("old model")
    config.write_text("old config")
    pressed = []

    def write_model() -> None:
        fileio.write_text(model, "new model")
        if not pressed:  # Ctrl-C lands right after the model is written
            pressed.append(True)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fileio.write_together(write_model, lambda: fileio.write_text(config, "new config"))
    assert (model.read_text(), config.read_text()) == ("new model", "new config")

    def always_stopped() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C during the retry stops at once
        fileio.write_together(always_stopped, lambda: fileio.write_text(config, "never"))
    assert config.read_text() == "new config"


def test_scratch_dir_is_removed_even_when_ctrl_c_lands_during_its_removal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """convert's temporary SavedModel (tens of MB in $TMPDIR) survived a Ctrl-C at the end."""
    real_rmtree = fileio.shutil.rmtree
    calls: list[Path] = []

    def interrupted_once(path: Path, **kwargs: Any) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real_rmtree(path, **kwargs)

    monkeypatch.setattr(fileio.shutil, "rmtree", interrupted_once)
    with pytest.raises(KeyboardInterrupt), fileio.scratch_dir("edgeseg-test-") as scratch:
        (scratch / "saved").mkdir()
        (scratch / "saved" / "weights").write_bytes(b"x" * 100)
    assert not scratch.exists() and len(calls) == 2


def test_check_output_tries_the_folder_rather_than_trusting_permissions(tmp_path: Path) -> None:
    """As root, os.access says yes everywhere: `run --stats /proc/x.json` ran the whole stream,
    then failed 'cannot write (folder does not exist)'."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    with pytest.raises(WriteError, match=r"--stats /proc/x\.json: cannot write \(files cannot be"):
        fileio.check_output("/proc/x.json", label="--stats")
    with pytest.raises(WriteError, match=r"files cannot be created there"):
        fileio.write_text("/proc/x.json", "{}")
    fileio.check_output(tmp_path / "new" / "x.json", label="--stats")  # a folder to be made
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind


def test_a_sweeping_write_removes_what_killed_writers_left_and_nothing_else(
    tmp_path: Path,
) -> None:
    """`kill -9` (or the OOM killer) during `run --save v.mp4` left a hidden 43 MB
    `.v.xxxx.tmp.mp4` that no later run removed. A writer still at work (its staged file
    locked), and the staged files of other outputs (`v.2024-06-01.mp4`), are left alone."""
    stale = tmp_path / ".v.abc12345.tmp.mp4"  # its writer was killed: nobody holds it
    other = tmp_path / ".v.2024-06-01.abc12345.tmp.mp4"  # another output's, and unlocked
    for path in (stale, other):
        path.write_bytes(b"partial")
    with fileio.atomic_path(tmp_path / "v.mp4") as living:
        living.write_bytes(b"another process at work")
        with fileio.atomic_path(tmp_path / "v.mp4", sweep=True) as tmp:
            tmp.write_bytes(b"video")
        assert living.exists() and not stale.exists() and other.exists()
    assert (tmp_path / "v.mp4").read_bytes() == b"another process at work"


def test_a_json_report_refuses_an_image_or_video_name(tmp_path: Path) -> None:
    """`eval --out DATA/val/images/tile1_part03.jpg` replaced an image of the data with JSON."""
    image = tmp_path / "tile.jpg"
    image.write_bytes(b"\xff\xd8 an image")
    # a wrong option value: exit 2, as `--save notes.txt` is (exit 4 is for failed writes)
    with pytest.raises(OutputError, match=r"--out .*tile\.jpg: writes JSON; name a \.json file"):
        fileio.check_json_output(image, label="--out")
    assert image.read_bytes() == b"\xff\xd8 an image"
    fileio.check_json_output(tmp_path / "scores.json", label="--out")


def test_written_files_and_folders_take_the_umask_without_changing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write read the umask by setting it to 0 and back: a process-wide change in which
    another thread's new files (the stream writes masks, video and stats on three) got 0666."""
    old = os.umask(0o027)
    try:

        def no_umask(mask: int) -> int:
            raise AssertionError("the writer changed the process umask")

        monkeypatch.setattr(os, "umask", no_umask)
        fileio.write_text(tmp_path / "a.txt", "x")
        fileio.write_bytes(tmp_path / "a.txt", b"y")  # replacing: the new file's mode again
        with fileio.atomic_dir(tmp_path / "set") as staged:
            (staged / "f").write_text("z")
        monkeypatch.undo()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "set").stat().st_mode) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "set"]
