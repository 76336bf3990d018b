"""Fault injection on real files: a full file system (a small tmpfs when root, else an injected
ENOSPC), a read-only folder (a read-only tmpfs, else an injected EROFS), a metadata bomb, corrupt
metadata, a folder with a bad image, TensorFlow made unimportable. Each case asserts the exit code,
the one-line message and what is left on disk (no temp files, no 0-byte outputs)."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from edgeseg.cli.common import user_errors
from edgeseg.cli.main import app
from edgeseg.core.errors import (
    DatasetError,
    EdgesegError,
    ModelError,
    SourceError,
    WriteError,
    require_training_stack,
)
from edgeseg.core.model_metadata import METADATA_NAME, embed_metadata, read_metadata, read_spec
from edgeseg.core.spec import ModelSpec
from edgeseg.data.dataset import open_dataset
from edgeseg.data.synthetic import generate_synthetic_dataset, render_sample
from edgeseg.runtime.outputs import MaskSink, VideoSink
from edgeseg.runtime.sources import ImageFolderSource
from edgeseg.runtime.stats import write_json_atomic

runner = CliRunner()
SPEC = ModelSpec(32, 32, ("background", "road"), channels=3)
FAKE_FLATBUFFER = b"\x00\x00\x00\x00TFL3" + bytes(range(256)) * 4


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def one_line_error(output: str) -> str:
    """The error line (asserting there is exactly one and no traceback)."""
    assert "Traceback" not in output, output
    lines = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temp files or 0-byte files: what a failed write must never leave behind."""
    bad = []
    for p in folder.rglob("*"):
        if p.is_file() and (".tmp" in p.name or p.stat().st_size == 0):
            bad.append(p.name)
    return bad


@contextlib.contextmanager
def _tmpfs(where: Path, options: str) -> Iterator[bool]:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if proc.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _inject(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Fallback without root: every fsync/mkstemp of the atomic writer fails with `code`."""

    def failing(*_args: object, **_kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", failing)
    monkeypatch.setattr("edgeseg.core.fileio.tempfile.mkstemp", failing)


@pytest.fixture
def full_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on a 64 KiB file system, filled up (or an injected ENOSPC)."""
    where = tmp_path / "full"
    with _tmpfs(where, "size=64k") as mounted:
        if mounted:
            (where / "ballast").write_bytes(b"\0" * 60 * 1024)
            with contextlib.suppress(OSError):
                (where / "ballast2").write_bytes(b"\0" * 64 * 1024)
        else:
            _inject(monkeypatch, errno.ENOSPC)
        yield where
        for ballast in ("ballast", "ballast2"):
            (where / ballast).unlink(missing_ok=True)


@pytest.fixture
def ro_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A read-only folder (a read-only tmpfs: chmod does not stop root; or an injected EROFS)."""
    where = tmp_path / "ro"
    with _tmpfs(where, "ro,size=64k") as mounted:
        if not mounted:
            _inject(monkeypatch, errno.EROFS)
        yield where


# === The one atomic writer and the one error path ===


def test_user_errors_maps_write_errors_to_exit_4_and_stray_oserrors_to_one_line() -> None:
    def run(exc: BaseException) -> int:
        try:
            with user_errors():
                raise exc
        except typer.Exit as done:
            return done.exit_code
        return 0

    assert run(WriteError("x: cannot write (no space left on the device)")) == 4
    assert run(OSError(errno.ENOSPC, "No space left on device", "/x/out.json")) == 4
    assert run(OSError(errno.EROFS, "Read-only file system", "/x/out.json")) == 4
    assert run(OSError(errno.EIO, "Input/output error", "/x/in.png")) == 2
    assert run(ModelError("bad")) == 2
    assert run(SourceError("lost")) == 2
    assert run(KeyboardInterrupt()) == 130


def test_stats_json_on_a_full_disk(full_dir: Path) -> None:
    with pytest.raises(WriteError, match=r"--stats .*stats\.json: cannot write \(no space"):
        write_json_atomic(full_dir / "stats.json", {"big": "x" * 100_000})
    assert not (full_dir / "stats.json").exists()
    assert leftovers(full_dir) == []


def test_stats_json_in_a_read_only_folder(ro_dir: Path) -> None:
    with pytest.raises(WriteError, match=r"read-only file system"):
        write_json_atomic(ro_dir / "stats.json", {"a": 1})
    assert list(ro_dir.iterdir()) == []


def test_masks_on_a_full_disk_fail_instead_of_writing_zero_byte_pngs(full_dir: Path) -> None:
    sink = MaskSink(full_dir / "masks")
    rng = np.random.default_rng(0)
    with pytest.raises(WriteError, match=r"--save-masks .*: cannot write \(no space"):
        for n in range(100):
            sink.write(n, rng.integers(0, 5, (256, 256), dtype=np.uint8))
    written = sorted((full_dir / "masks").iterdir())
    assert leftovers(full_dir) == []
    for path in written:  # every PNG that made it is whole
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])  # OpenCV-encoded; JPEGs muxed raw
def test_video_on_a_full_disk_names_the_cause(full_dir: Path, name: str) -> None:
    if not any(full_dir.glob("ballast")):
        pytest.skip("needs a real full file system (root and tmpfs); OpenCV writes bypass Python")
    sink = VideoSink(full_dir / name, fps=15.0)
    frame = render_sample(0, 0, (240, 320), "val")[0]
    with pytest.raises(WriteError, match=rf"--save .*{name}: cannot write \(no space"):
        for _ in range(30):
            sink.write(frame)
        sink.close()
    assert not (full_dir / name).exists()
    assert leftovers(full_dir) == []


def test_video_in_a_read_only_folder_is_not_blamed_on_the_format(ro_dir: Path) -> None:
    sink = VideoSink(ro_dir / "out.avi", fps=15.0)
    with pytest.raises(WriteError, match=r"read-only file system"):
        sink.write(np.zeros((32, 32, 3), np.uint8))
    assert list(ro_dir.iterdir()) == []


def test_video_is_checked_and_renamed_on_close(tmp_path: Path) -> None:
    """Into a folder that does not exist yet: it is made with the file (as for --save-masks and
    --stats), not at the start, so a run that fails before its first frame leaves no folder."""
    out = tmp_path / "videos" / "out.avi"
    sink = VideoSink(out, fps=15.0)
    assert not out.parent.exists()
    frame = render_sample(0, 0, (64, 64), "val")[0]
    for _ in range(5):
        sink.write(frame)
    assert sink.close() == out
    assert [p.name for p in out.parent.iterdir()] == ["out.avi"]
    cap = cv2.VideoCapture(str(out))
    assert cap.read()[0]
    cap.release()


def test_synthetic_dataset_on_a_full_disk_leaves_nothing(full_dir: Path) -> None:
    with pytest.raises(WriteError, match="no space"):
        generate_synthetic_dataset(full_dir / "data", count_train=8, count_val=2, size=(64, 64))
    assert sorted(p.name for p in full_dir.iterdir() if not p.name.startswith("ballast")) == []


def test_bench_json_in_a_read_only_folder_is_exit_4(ro_dir: Path) -> None:
    with pytest.raises(WriteError, match=r"--json .*b\.json: cannot write \(read-only"):
        write_json_atomic(ro_dir / "b.json", {}, label="--json")


# === Missing training stack ===

NO_TF_HOOK = textwrap.dedent("""
    import importlib.abc, sys
    class _NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras"):
                raise ImportError(f"{name} is blocked for this test")
            return None
    sys.meta_path.insert(0, _NoTensorFlow())
""")


def test_commands_needing_tensorflow_say_so_before_writing(tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NO_TF_HOOK)
    out = tmp_path / "out"
    (tmp_path / "m.keras").write_bytes(b"not really")
    (tmp_path / "m.tflite").write_bytes(FAKE_FLATBUFFER)
    cases = [
        ["train", str(tmp_path), "--out", str(out / "train")],
        ["demo", "--out", str(out / "demo")],
        ["convert", str(tmp_path / "m.keras"), "--out", str(out / "m.tflite")],
        ["eval", str(tmp_path / "m.keras"), "--data", str(tmp_path)],
        [
            "check",
            str(tmp_path / "m.keras"),
            str(tmp_path / "m.tflite"),
            "--data",
            str(tmp_path),
            "--out-dir",
            str(out / "check"),
        ],
    ]
    script = textwrap.dedent(f"""
        import json, sys
        from typer.testing import CliRunner
        from edgeseg.cli.main import app
        results = []
        for args in {cases!r}:
            r = CliRunner().invoke(app, args)
            results.append([r.exit_code, r.output])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        print(json.dumps({{"results": results, "loaded": loaded}}))
    """)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    for args, (code, output) in zip(cases, report["results"], strict=True):
        assert code == 2, (args, output)
        line = one_line_error(output)
        assert f"edgeseg {args[0]}" in line and "pip install 'edgeseg[train]'" in line, line
    assert not out.exists()  # nothing written, not even demo's data


def test_training_stack_check_passes_when_installed() -> None:
    require_training_stack("edgeseg train")  # TensorFlow is installed in the dev environment


# === Untrusted metadata ===


def _with_zip(entries: dict[str, bytes], *, deflate: bool = True) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return FAKE_FLATBUFFER + buf.getvalue()


def _bomb(path: Path, inflated: int, lie: bool) -> Path:
    """A model whose edgeseg.json inflates to `inflated` bytes (optionally claiming 100)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(METADATA_NAME, "w", force_zip64=True) as fh:
            chunk = b" " * (1 << 20)
            for _ in range(inflated >> 20):
                fh.write(chunk)
    data = bytearray(FAKE_FLATBUFFER + buf.getvalue())
    if lie:  # rewrite the central directory's uncompressed size to a small number
        cd = data.rfind(b"PK\x01\x02")
        assert int.from_bytes(data[cd + 24 : cd + 28], "little") == inflated
        data[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("lie", [False, True], ids=["declared", "header-lies"])
def test_metadata_bomb_is_refused_quickly(tmp_path: Path, lie: bool) -> None:
    model = _bomb(tmp_path / "bomb.tflite", 64 << 20, lie)
    assert model.stat().st_size < 1 << 20
    # A lying header is caught too: zipfile stops at the declared size and the CRC fails.
    needle = r"metadata is corrupt \(Bad CRC" if lie else r"refusing its metadata.*1024 KiB"
    with pytest.raises(ModelError, match=rf"bomb\.tflite: (its edgeseg )?{needle}"):
        read_metadata(model)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"\xff\xfe not utf-8", "corrupt (not UTF-8"),
        (b"{not json", "corrupt (not valid JSON"),
        (b"[1, 2]", "corrupt (expected a JSON object"),
    ],
)
def test_corrupt_metadata_is_reported_as_corrupt(payload: bytes, needle: str) -> None:
    pattern = rf"^m\.tflite: its edgeseg metadata is {re.escape(needle)}"
    with pytest.raises(ModelError, match=pattern):
        read_metadata(_with_zip({METADATA_NAME: payload}), name="m.tflite")


def test_bad_crc_is_corrupt_not_absent() -> None:
    data = bytearray(
        _with_zip({METADATA_NAME: json.dumps({"spec": SPEC.to_dict()}).encode()}, deflate=False)
    )
    at = data.find(b'"input_height"')
    data[at + 1] ^= 0x20  # flip a byte of the stored JSON: the CRC no longer matches
    with pytest.raises(ModelError, match=r"m\.tflite: its edgeseg metadata is corrupt \(.*CRC"):
        read_metadata(bytes(data), name="m.tflite")


def test_too_many_entries_are_refused() -> None:
    entries = {f"f{i}": b"x" for i in range(40)} | {METADATA_NAME: b"{}"}
    with pytest.raises(ModelError, match=r"41 entries"):
        read_metadata(_with_zip(entries), name="m.tflite")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"palette": [[300, 0, 0], [0, 0, 0]]}, r"field palette\[0\] must be 3 integers in 0..255"),
        ({"class_names": ["a", "a"]}, r"field 'class_names' repeats the name 'a'"),
        ({"class_names": ["ok", "\x1b[2Jevil"]}, r"field class_names\[1\] .* control characters"),
        ({"class_names": ["ok", 5]}, r"field class_names\[1\] must be a non-empty string"),
        ({"float_miou": "high"}, r"field 'float_miou' must be a number"),
        ({"input_height": True}, r"field 'input_height' must be an integer"),
        ({"extra": "notadict"}, r"field 'extra' must be a JSON object"),
    ],
)
def test_metadata_fields_are_validated_naming_file_and_field(change: dict, needle: str) -> None:
    spec = SPEC.to_dict() | change
    data = _with_zip({METADATA_NAME: json.dumps({"spec": spec}).encode()})
    with pytest.raises(ModelError, match=rf"^m\.tflite: metadata {needle}"):
        read_spec(data, name="m.tflite")


def test_good_metadata_and_none_still_work() -> None:
    assert read_spec(embed_metadata(FAKE_FLATBUFFER, SPEC)) == SPEC
    assert read_spec(FAKE_FLATBUFFER) is None


def test_metadata_baseline_must_be_a_fraction(tmp_path: Path) -> None:
    from edgeseg.eval.compare import metadata_baseline

    for bad in (0.0, -1.0, 81.0):
        with pytest.raises(ModelError, match=r"field 'float_miou' must be a number in \(0, 1\]"):
            metadata_baseline(tmp_path / "m.tflite", SPEC.with_updates(float_miou=bad))


# === Untrusted datasets and sources ===


def _dataset(root: Path, labels: str) -> Path:
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        image, mask = render_sample(0, 0, (32, 32), "val")
        cv2.imwrite(str(root / split / "images" / "a.png"), image)
        cv2.imwrite(str(root / split / "masks" / "a.png"), (mask > 0).astype(np.uint8))
    (root / "labels.txt").write_text(labels)
    return root


def test_repeated_names_in_labels_txt_are_refused(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", "road\nroad\n")
    with pytest.raises(DatasetError, match=r"labels\.txt: 'class names' repeats the name 'road'"):
        open_dataset(root)


def test_escape_sequences_in_labels_txt_are_refused(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "d", "bg\n\x1b]0;pwned\x07road\n")
    with pytest.raises(DatasetError, match="control characters"):
        open_dataset(root)


def test_folder_source_skips_an_unreadable_image_and_counts_it(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(20):
        cv2.imwrite(str(folder / f"f{i:02d}.png"), render_sample(0, i, (32, 32), "val")[0])
    (folder / "f99.png").write_bytes(b"")  # 0 bytes, last
    (folder / "f05b.jpg").write_bytes(b"not a jpeg")
    src = ImageFolderSource(folder)
    src.open()
    frames = []
    while (frame := src.read()) is not None:
        frames.append(frame)
    assert len(frames) == 20 and src.skipped == 2


def test_folder_source_with_only_bad_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    src = ImageFolderSource(tmp_path)
    src.open()
    with pytest.raises(SourceError, match="none of its 1 image"):
        src.read()


def test_info_on_a_folder_that_is_no_dataset_says_what_info_takes(tmp_path: Path) -> None:
    code, output = cli("info", tmp_path)
    assert code == 2
    error = one_line_error(output)
    assert "images: folder not found; a dataset needs images/ and masks/" in error
    assert error.endswith("`edgeseg info` takes a .tflite or .keras model, or a dataset folder")
    code, output = cli("info", tmp_path / "typo")
    assert code == 2
    assert one_line_error(output) == (
        f"error: {tmp_path / 'typo'}: not found; info takes a .tflite or .keras model, or a "
        "dataset folder"
    )


def test_calib_file_says_it_must_be_a_folder(tmp_path: Path) -> None:
    from edgeseg.convert.calibration import find_calibration_images

    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(EdgesegError, match=r"--calib .*is a file; --calib must be a folder"):
        find_calibration_images(tmp_path / "x.png")


# === Whole commands on a small real model (converted here: slow) ===


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An untrained 32x32 U-Net converted to float32 .tflite (float mIoU 0.9 recorded), and data."""
    from edgeseg.convert.converter import export
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.train.model import build_unet

    root = tmp_path_factory.mktemp("tiny")
    spec = SPEC.with_updates(float_miou=0.9)
    model = build_unet((32, 32, 3), 2, depth=2, base_filters=4)
    model.save(root / "model.keras")
    spec.save(root / "config.json")
    out = export(model, spec, ConvertOptions(quant="float32"), root / "model.tflite").path
    frames = root / "frames"
    frames.mkdir()
    for i in range(20):
        cv2.imwrite(str(frames / f"f{i:02d}.png"), render_sample(0, i, (32, 32), "val")[0])
    (frames / "f99.png").write_bytes(b"")  # 0 bytes, last
    return {"model": out, "data": _dataset(root / "data", "background\nroad\n"), "frames": frames}


def _with_spec(tiny: dict[str, Path], dest: Path, **changes: object) -> Path:
    from edgeseg.core.model_metadata import strip_metadata

    spec = SPEC.to_dict() | changes
    data = strip_metadata(tiny["model"].read_bytes())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(METADATA_NAME, json.dumps({"spec": spec}))
    dest.write_bytes(data + buf.getvalue())
    return dest


@pytest.mark.slow
def test_run_folder_with_a_bad_image_processes_every_good_frame(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    masks, stats = tmp_path / "masks", tmp_path / "stats.json"
    code, output = cli(
        "run", tiny["model"], "--source", tiny["frames"], "--headless",
        "--save-masks", masks, "--stats", stats,
    )  # fmt: skip
    assert code == 0, output
    (skipped,) = [line for line in output.splitlines() if "skipped" in line and "f99" in line]
    assert re.search(r"skipped \S*f99\.png: cannot read image", skipped), output
    assert skipped.count("f99.png") == 1  # the file named once, not 'f99.png: .../f99.png'
    assert "1 unreadable skipped" in output
    assert len(list(masks.glob("*.png"))) == 20 and leftovers(tmp_path) == []
    data = json.loads(stats.read_text())
    assert data["processed"] == 20 and data["skipped"] == 1


@pytest.mark.slow
def test_run_save_masks_on_a_full_disk_is_exit_4(tiny: dict[str, Path], full_dir: Path) -> None:
    code, output = cli(
        "run", tiny["model"], "--source", tiny["frames"], "--headless",
        "--save-masks", full_dir / "masks", "--stats", full_dir / "s.json",
    )  # fmt: skip
    assert code == 4, output
    line = one_line_error(output)
    assert "--save-masks" in line and "no space left on the device" in line
    assert leftovers(full_dir) == []


@pytest.mark.slow
def test_run_save_video_read_only_is_exit_4(tiny: dict[str, Path], ro_dir: Path) -> None:
    code, output = cli(
        "run", tiny["model"], "--source", tiny["frames"], "--headless", "--save", ro_dir / "o.avi"
    )
    assert code == 4, output
    line = one_line_error(output)
    assert "--save" in line and "read-only file system" in line and "format" not in line


@pytest.mark.slow
def test_sigmoid_on_a_multi_channel_output_is_refused(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    model = _with_spec(tiny, tmp_path / "m.tflite", output_kind="sigmoid")
    for command in (("run", model, "--source", tiny["frames"], "--headless"), ("info", model)):
        code, output = cli(*command)  # info refuses what run and eval refuse
        assert code == 2, output
        assert "'output_kind' is 'sigmoid' but the model has 2 output channels" in one_line_error(
            output
        )


@pytest.mark.slow
def test_info_exit_codes(tiny: dict[str, Path], tmp_path: Path) -> None:
    assert cli("info", tiny["model"])[0] == 0
    bomb = tmp_path / "bomb.tflite"
    bomb.write_bytes(
        strip_model(tiny["model"])
        + _bomb(tmp_path / "z", 8 << 20, False).read_bytes()[len(FAKE_FLATBUFFER) :]
    )
    code, output = cli("info", bomb)
    assert code == 2 and "refusing its metadata" in one_line_error(output)
    code, output = cli(
        "info", _with_spec(tiny, tmp_path / "p.tflite", palette=[[300, 0, 0], [1, 2, 3]])
    )
    assert code == 2 and "p.tflite: metadata field palette[0]" in one_line_error(output)


def strip_model(path: Path) -> bytes:
    from edgeseg.core.model_metadata import strip_metadata

    return strip_metadata(path.read_bytes())


@pytest.mark.slow
def test_eval_exit_codes(tiny: dict[str, Path], tmp_path: Path, ro_dir: Path) -> None:
    assert cli("eval", tiny["model"], "--data", tiny["data"], "--out", tmp_path / "e.json")[0] == 0
    code, output = cli("eval", tiny["model"], "--data", tmp_path / "missing")
    assert code == 2, output
    code, output = cli("eval", tiny["model"], "--data", tiny["data"], "--out", ro_dir / "e.json")
    assert code == 4 and "read-only file system" in one_line_error(output)
    code, output = cli(
        "eval", tiny["model"], "--data", tiny["data"], "--save-overlays", ro_dir / "ov"
    )
    assert code == 4 and "read-only file system" in one_line_error(output)
    renamed = _dataset(tmp_path / "renamed", "sky\nroad\n")
    code, output = cli("eval", tiny["model"], "--data", renamed)
    assert code == 2 and "class names differ" in one_line_error(output)


@pytest.mark.slow
def test_check_exits_1_only_for_a_regression(
    tiny: dict[str, Path], tmp_path: Path, ro_dir: Path
) -> None:
    model, data = tiny["model"], tiny["data"]
    out = tmp_path / "report"
    code, output = cli("check", model, "--data", data, "--out-dir", out, "--max-drop", "100")
    assert code == 0, output
    code, output = cli("check", model, "--data", data, "--out-dir", out, "--max-drop", "0")
    assert code in (0, 1) and ("FAIL" in output) == (code == 1)
    perfect = _with_spec(tiny, tmp_path / "perfect.tflite", float_miou=1.0)
    code, output = cli("check", perfect, "--data", data, "--out-dir", out, "--max-drop", "0.01")
    assert code == 1, output  # an untrained model is far below a recorded mIoU of 1.0
    for bad in (-1, 0, "high"):
        m = _with_spec(tiny, tmp_path / f"bad{bad}.tflite", float_miou=bad)
        code, output = cli("check", m, "--data", data, "--out-dir", out)
        assert code == 2 and "float_miou" in one_line_error(output), output
    code, output = cli("check", model, "--data", data, "--out-dir", ro_dir / "r")
    assert code == 4 and "read-only file system" in one_line_error(output)
    renamed = _dataset(tmp_path / "renamed", "sky\nroad\n")
    code, output = cli("check", model, "--data", renamed, "--out-dir", out)
    assert code == 2 and "class names differ" in one_line_error(output)


@pytest.mark.slow
def test_bench_json_exit_codes(tiny: dict[str, Path], tmp_path: Path, ro_dir: Path) -> None:
    code, output = cli("bench", tiny["model"], "--json", tmp_path / "b.json")
    assert code == 0, output
    assert json.loads((tmp_path / "b.json").read_text())["model"]
    code, output = cli("bench", tmp_path / "missing.tflite")
    assert code == 2
    code, output = cli("bench", tiny["model"], "--json", ro_dir / "b.json")
    assert code == 4 and "--json" in one_line_error(output) and list(ro_dir.iterdir()) == []


@pytest.mark.slow
def test_convert_and_train_and_demo_exit_4_on_a_read_only_folder(
    tiny: dict[str, Path], ro_dir: Path
) -> None:
    keras_model = tiny["model"].with_name("model.keras")
    code, output = cli("convert", keras_model, "--quant", "float32", "--out", ro_dir / "m.tflite")
    assert code == 4, output
    assert "read-only file system" in one_line_error(output)
    code, output = cli("train", tiny["data"], "--out", ro_dir / "run", "--epochs", "1")
    assert code == 4, output
    assert "read-only file system" in one_line_error(output)
    code, output = cli("demo", "--out", ro_dir / "demo", "--quick")
    assert code == 4, output
    assert "read-only file system" in one_line_error(output)
    assert list(ro_dir.iterdir()) == []


def test_train_and_demo_out_that_is_or_sits_under_a_file_is_exit_4(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    """--out naming a file (or a folder inside one) is a write error before any work, and the
    file is left as it was (the demo's dataset folder once replaced a file in its way)."""
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    for args, cause in (
        (("train", tiny["data"], "--epochs", "1", "--out", mine), "not a folder"),
        (
            ("train", tiny["data"], "--epochs", "1", "--out", mine / "run"),
            f"{mine} is not a folder",  # names which parent
        ),
        (("demo", "--quick", "--out", mine), "not a folder"),
    ):
        code, output = cli(*args)
        assert code == 4, output
        line = one_line_error(output)
        assert f"--out {args[-1]}" in line and cause in line, line
    assert mine.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt"
    ]


def test_convert_refuses_an_unwritable_report_or_device_before_converting(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder named model.report.json was found only after the whole conversion, and the
    error offered 'rp/model.report.json/model_int8.tflite'; --out /dev/full was exit 2 ('give
    a .tflite file name') where the README says exit 4."""
    import edgeseg.convert.pipeline as pipeline

    def never(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("converted before the outputs were checked")

    monkeypatch.setattr(pipeline, "write_saved_model", never)
    keras_model = tiny["model"].with_name("model.keras")
    (tmp_path / "m.report.json").mkdir()
    code, output = cli("convert", keras_model, "--quant", "float32", "--out", tmp_path / "m.tflite")
    line = one_line_error(output)
    assert code == 4 and f"{tmp_path / 'm.report.json'}: is a folder" in line, output
    assert "beside --out" in line and "m.report.json/" not in line
    if Path("/dev/full").exists():
        code, output = cli("convert", keras_model, "--quant", "float32", "--out", "/dev/full")
        assert code == 4 and "not a regular file" in one_line_error(output), output
    # a folder at --out is exit 4 like every unwritable --out, offered a file of this quant's
    # name (it suggested model_int8.tflite for a float32 conversion, with exit 2)
    (tmp_path / "outdir").mkdir()
    code, output = cli("convert", keras_model, "--quant", "float32", "--out", tmp_path / "outdir")
    line = one_line_error(output)
    assert code == 4 and "--out" in line and "is a folder" in line, output
    assert str(tmp_path / "outdir" / "model_float32.tflite") in line, output
    (tmp_path / "outdir").rmdir()
    (tmp_path / "diagnose.csv").mkdir()  # --diagnose alone ran the debugger first
    code, output = cli(
        "convert",
        keras_model,
        "--calib",
        tiny["data"],
        "--diagnose",
        "--out",
        tmp_path / "m.tflite",
    )
    assert code == 4 and "diagnose.csv: is a folder" in one_line_error(output), output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diagnose.csv", "m.report.json"]
    # --diagnose alone writes no model: --out naming a folder is where its report goes (it
    # went to the folder's parent)
    (tmp_path / "reports").mkdir()
    code, output = cli(
        "convert", keras_model, "--calib", tiny["data"], "--diagnose", "--out", tmp_path / "reports"
    )
    assert code == 0, output
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "diagnose.csv",
        "diagnose.png",
    ]


@pytest.mark.slow
def test_ctrl_c_while_convert_finishes_leaves_no_tflite_without_report(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgeseg.convert.pipeline as pipeline
    from edgeseg.convert.options import ConvertOptions

    def interrupted(*_args: object, **_kwargs: object) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_report", interrupted)
    out = tmp_path / "m.tflite"
    with pytest.raises(KeyboardInterrupt):
        pipeline.convert_model(
            tiny["model"].with_name("model.keras"), out, ConvertOptions(quant="float32")
        )
    assert list(tmp_path.iterdir()) == []  # neither the model nor a temp file
