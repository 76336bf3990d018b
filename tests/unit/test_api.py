"""The public API as a user meets it: `import edgeseg` stays light, the names are there, inputs
are checked with clear errors, and the Edge TPU target travels from training to conversion."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeseg
from edgeseg.core.errors import EdgesegError, FrameError, ModelError
from edgeseg.core.processing import check_frame
from edgeseg.core.spec import ModelSpec


def test_import_and_segmenter_never_load_tensorflow() -> None:
    code = (
        "import sys, edgeseg\n"
        "assert 'cv2' not in sys.modules, 'import edgeseg loaded OpenCV'\n"
        "edgeseg.Segmenter, edgeseg.overlay, edgeseg.check, edgeseg.evaluate\n"
        "assert callable(edgeseg.train) and callable(edgeseg.convert)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_public_names() -> None:
    from edgeseg.runtime.segmenter import Segmenter

    assert edgeseg.Segmenter is Segmenter
    assert set(edgeseg.__all__) >= {"Segmenter", "train", "convert", "evaluate", "check", "overlay"}
    with pytest.raises(AttributeError):
        _ = edgeseg.no_such_thing  # type: ignore[attr-defined]
    # the stage packages stay packages
    from edgeseg.train.config import TrainConfig

    assert TrainConfig.__module__ == "edgeseg.train.config"
    assert callable(edgeseg.train) and edgeseg.train.config.TrainConfig is TrainConfig
    # tab completion offers the API, not the module's own imports
    assert dir(edgeseg) == sorted(edgeseg.__all__)


def test_train_result_repr_says_where_and_how_good() -> None:
    from edgeseg.train.config import TrainResult

    run = Path("runs/m")
    result = TrainResult(
        run,
        run / "model.keras",
        run / "config.json",
        run / "history.csv",
        None,
        0.61234,
        {"road": 0.5, "sky": 0.72468},
        20,
        True,
    )
    assert repr(result) == (
        "TrainResult(model='runs/m/model.keras', best_miou=0.6123, epochs_run=20, interrupted)"
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "got None"),
        ("street.jpg", "got str"),
        (np.zeros((8, 8, 3), np.float32), "0..1 floats"),
        (np.zeros((8, 8, 3), np.uint16), "img >> 8"),  # was told to multiply by 255
        (np.zeros((8, 8, 4), np.uint8), "frame[:, :, :3]"),
        (np.zeros((0, 8, 3), np.uint8), "shape"),
    ],
)
def test_frames_are_checked(frame: object, message: str) -> None:
    with pytest.raises(FrameError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_frame(frame)


@pytest.mark.parametrize("threads", [0, -1, True])
def test_segmenter_refuses_a_thread_count_below_one(threads: object, tmp_path: Path) -> None:
    """threads=0 used to mean 'all cores' silently (0 is falsy); it is refused before the model
    is read, as --threads 0 is on the command line."""
    with pytest.raises(EdgesegError, match=r"threads=.*expected a number of threads >= 1"):
        edgeseg.Segmenter(tmp_path / "never_read.tflite", threads=threads)  # type: ignore[arg-type]


def test_overlay_draws_at_frame_size_and_checks_the_map() -> None:
    spec = ModelSpec(32, 32, ("bg", "road", "car"))
    frame = np.full((48, 64, 3), 100, np.uint8)
    classes = np.zeros((48, 64), np.uint8)
    classes[:, 32:] = 2
    out = edgeseg.overlay(frame, classes, spec, legend=False)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert not np.array_equal(out[:, :32], out[:, 32:])  # two classes, two colours
    with pytest.raises(EdgesegError, match="expected an HxW map of the frame's size"):
        edgeseg.overlay(frame, classes[:10], spec)
    gray = edgeseg.overlay(frame[:, :, :1], classes, spec, legend=False)  # HxWx1: gray
    assert gray.shape == frame.shape
    # wrong inputs are one EdgesegError naming what was passed, not IndexError / cv2.error
    cases: list[tuple[object, object, str]] = [
        (classes.astype(np.float32), spec, "expected integer class ids"),
        (np.dstack([classes] * 3), spec, "expected an HxW map"),
        (classes + 3, spec, "ids 3..5: the model has 3 classes"),
        (classes, None, "expected a Segmenter or its .spec"),
        (classes, "model.tflite", "got str"),
    ]
    for class_map, bad_spec, message in cases:
        with pytest.raises(EdgesegError, match=re.escape(message)):
            edgeseg.overlay(frame, class_map, bad_spec)  # type: ignore[arg-type]


def test_a_gray_frame_with_a_channel_axis_is_gray() -> None:
    """HxWx1 (NumPy, PIL 'L' arrays) passes check_frame and prepares as HxW gray does."""
    from edgeseg.core.processing import prepare_image

    spec = ModelSpec(16, 16, ("a", "b"))
    gray = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    assert check_frame(gray[:, :, None]).shape == (20, 30)
    with_axis, _ = prepare_image(gray[:, :, None], spec)
    plain, _ = prepare_image(gray, spec)
    assert np.array_equal(with_axis, plain)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": "64"}, None),  # a string is N or HxW, never split into characters
        ({"size": "48x64"}, None),
        ({"size": np.int64(64)}, None),
        ({"size": "6x"}, "expected N or HxW"),
        ({"size": 64.0}, "expected N or HxW"),
        ({"size": (0, 64)}, "must be positive"),
        ({"steps": "10"}, "steps='10': expected an integer"),
        ({"lr": "0.1"}, "lr='0.1': expected a number"),
        ({"batch": True}, "batch=True: expected an integer"),
        ({"step": 10}, "unknown training option step=10; did you mean steps=?"),
        ({"steps": 10, "epochs": 2}, "--steps and --epochs both given"),
        ({"classes": 5}, "expected a list of strings"),
        # values that crashed deep in training (a 100000 px input, NumPy's seed range, inf)
        ({"size": 100000}, "at most 4096 pixels a side"),
        ({"seed": -1}, "--seed must be in 0..4294967295"),
        ({"lr": float("inf")}, "--lr must be a finite number > 0"),
    ],
)
def test_training_options_are_checked_once_for_the_cli_and_python(
    options: dict[str, object], message: str | None, tmp_path: Path
) -> None:
    from edgeseg.train.config import build_config

    def build() -> object:
        return build_config(tmp_path, tmp_path / "run", options)

    if message is None:
        config = build()
        size = config.size  # type: ignore[attr-defined]
        assert size in ((64, 64), (48, 64)) and all(type(v) is int for v in size)
    else:
        with pytest.raises(EdgesegError, match=re.escape(message)):
            build()


def test_names_and_numbers_normalise() -> None:
    from edgeseg.train.config import TrainConfig

    config = TrainConfig(
        data=Path("d"),
        out=Path("o"),
        classes="sky, road",  # type: ignore[arg-type]
        ignore_classes="void",  # type: ignore[arg-type]
        steps=np.int64(20),  # type: ignore[arg-type]
        lr=np.float32(0.5),  # type: ignore[arg-type]
        min_scale=1,  # an int where a float goes is a number
    )
    assert config.classes == ("sky", "road") and config.ignore_classes == ("void",)
    assert type(config.steps) is int and type(config.lr) is float and config.min_scale == 1.0


def test_resuming_with_a_new_step_budget_drops_the_resolved_epochs(tmp_path: Path) -> None:
    """The saved settings hold the epochs the last budget resolved to; a new steps= replaces
    them, for the Python API as for --resume --steps (one build_config for both)."""
    from edgeseg.train.config import TrainConfig, build_config

    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(data=tmp_path, out=run, steps=40, epochs=2, steps_per_epoch=20)
    (run / "config.json").write_text(json.dumps({"train": saved.to_dict()}))
    resumed = build_config(None, run, {"steps": 80}, resume=True)
    assert resumed.resume and resumed.steps == 80 and resumed.epochs is None
    assert resumed.data == tmp_path


@pytest.mark.parametrize("threads", ["auto", "2", 2.5, 100000])
def test_segmenter_refuses_a_thread_count_that_is_no_integer(
    threads: object, tmp_path: Path
) -> None:
    with pytest.raises(EdgesegError, match=r"threads=.*(expected a number of threads|at most 256)"):
        edgeseg.Segmenter(tmp_path / "never_read.tflite", threads=threads)  # type: ignore[arg-type]


def test_reading_a_missing_image_says_so(tmp_path: Path) -> None:
    from edgeseg.core.errors import DatasetError
    from edgeseg.core.processing import read_image

    with pytest.raises(DatasetError, match=r"street\.jpg: image file not found"):
        read_image(tmp_path / "street.jpg")
    with pytest.raises(DatasetError, match="is a folder, not an image file"):
        read_image(tmp_path)
    with pytest.raises(DatasetError, match="expected an image file path, got NoneType"):
        read_image(None)  # type: ignore[arg-type]


def test_target_edgetpu_picks_the_resize_decoder_and_is_recorded(tmp_path: Path) -> None:
    from edgeseg.convert.options import IOType
    from edgeseg.convert.target import default_io
    from edgeseg.train.fit import TrainConfig

    config = TrainConfig(data=tmp_path, out=tmp_path / "run", target="edgetpu")
    assert config.upsample == "resize"
    assert TrainConfig(data=tmp_path, out=tmp_path).upsample == "transpose"
    with pytest.raises(EdgesegError, match="--target"):
        TrainConfig(data=tmp_path, out=tmp_path, target="tpu")

    spec = ModelSpec(32, 32, ("a", "b"), target="edgetpu")
    assert ModelSpec.from_dict(json.loads(spec.to_json())).target == "edgetpu"
    with pytest.raises(ModelError, match="target"):
        ModelSpec(32, 32, ("a", "b"), target="gpu")  # type: ignore[arg-type]

    model = tmp_path / "model.keras"
    assert default_io(model) == IOType.INT8  # no config.json: plain CPU model
    (tmp_path / "config.json").write_text(json.dumps({"spec": spec.to_dict()}))
    assert default_io(model) == IOType.UINT8


def test_the_callable_stage_packages_show_the_api_signature() -> None:
    """`edgeseg.train` / `edgeseg.convert` are packages that run the API when called: IDEs and
    help() see the API's parameters, not (*args, **kwargs), and the docstring says where."""
    import inspect

    assert {"data", "out", "size", "epochs", "classes"} <= set(
        inspect.signature(edgeseg.train).parameters
    )
    assert {"model", "calib", "quant", "io"} <= set(inspect.signature(edgeseg.convert).parameters)
    assert "help(edgeseg.api.train)" in (edgeseg.train.__doc__ or "")


def test_without_data_the_builtin_scenes_are_generated_once_into_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`edgeseg train` and `edgeseg.train()` without DATA share one rule (build_config)."""
    from edgeseg.data import synthetic
    from edgeseg.train.config import build_config

    made: list[tuple[Path, int]] = []

    def fake(folder: Path, *, seed: int, progress: object = None) -> Path:
        made.append((folder, seed))
        folder.mkdir(parents=True)
        (folder / "labels.txt").write_text("a\nb\n")
        return folder

    monkeypatch.setattr(synthetic, "generate_synthetic_dataset", fake)
    first = build_config(None, tmp_path / "run", {"seed": 3})
    again = build_config(None, tmp_path / "run", {"seed": 3}, overwrite=True)
    assert first.data == again.data == tmp_path / "run" / "synthetic_data"
    assert made == [(tmp_path / "run" / "synthetic_data", 3)]


def test_a_val_fraction_data_with_its_own_val_split_ignores_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import cv2

    from edgeseg.train.config import build_config

    for split in ("train", "val"):
        for sub in ("images", "masks"):
            (tmp_path / split / sub).mkdir(parents=True)
            assert cv2.imwrite(str(tmp_path / split / sub / "a.png"), np.zeros((8, 8), np.uint8))
    with caplog.at_level("WARNING", logger="edgeseg.train"):
        build_config(tmp_path, tmp_path / "run", {"val_fraction": 0.5})
        build_config(tmp_path / "train", tmp_path / "run2", {"val_fraction": 0.5})
    assert caplog.text.count("--val-fraction 0.5 does nothing here") == 1
    # DATA/train alone: trained as one pool, a share held out of it, DATA/val never seen
    assert caplog.text.count("is the training split of") == 1
    assert f"never sees {tmp_path / 'val'}; to validate on that split, pass {tmp_path}" in (
        caplog.text
    )


def test_an_out_that_is_a_file_is_refused_before_the_data_is_read(tmp_path: Path) -> None:
    """`train DATA --out notes.txt` checked every pair of the data (seconds to minutes) and
    only then said --out was not a folder."""
    from edgeseg.core.errors import WriteError
    from edgeseg.train.config import build_config

    (tmp_path / "notes.txt").write_text("mine")
    for out in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "run"):
        with pytest.raises(WriteError, match=r"^--out .*notes\.txt") as refused:
            build_config(tmp_path / "no such data", out, {})
        assert refused.value.exit_code == 4
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_run_that_fails_before_writing_leaves_no_empty_out_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk or an error in the first step used to leave the empty --out it made."""
    import sys
    import types

    from edgeseg.core.errors import WriteError
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import train

    data = _striped_pairs(tmp_path / "data")

    def run_fit(*args: object) -> object:
        raise WriteError("--out: cannot write (no space left on the device)")

    fake = types.ModuleType("edgeseg.train.loop")
    fake.run_fit = run_fit  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "edgeseg.train.loop", fake)
    out = tmp_path / "runs" / "x"
    with pytest.raises(WriteError):
        train(TrainConfig(data=data, out=out, size=(16, 16), depth=1, steps=1))
    assert not (tmp_path / "runs").exists()  # runs/ too: the run made both
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(WriteError):
        train(TrainConfig(data=data, out=out, size=(16, 16), depth=1, steps=1))
    assert (out / "notes.txt").read_text() == "mine"  # a folder it did not make is kept


def test_config_json_records_the_data_folder_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path ('../shared/data/x') was recorded as typed, so `convert` run from
    another folder calibrated on the wrong frames and `next:` lost --data."""
    from edgeseg.train.config import TrainConfig

    monkeypatch.chdir(tmp_path)
    config = TrainConfig(data=Path("sets/membrane"), out=Path("runs/x"))
    assert config.to_dict()["data"] == str(tmp_path / "sets" / "membrane")
    assert TrainConfig.from_dict(config.to_dict()).data == tmp_path / "sets" / "membrane"


def test_options_the_encoder_does_not_use_are_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from edgeseg.train.config import build_config

    (tmp_path / "d").mkdir()
    with caplog.at_level("WARNING", logger="edgeseg"):
        build_config(tmp_path / "d", tmp_path / "a", {"alpha": 0.5})
        build_config(
            tmp_path / "d", tmp_path / "b", {"encoder": "mobilenetv2", "depth": 5, "filters": 32}
        )
        build_config(tmp_path / "d", tmp_path / "c", {"encoder": "mobilenetv2", "alpha": 0.5})
    assert caplog.text.count("--alpha is the MobileNetV2 encoder's width") == 1
    assert "--depth and --filters shape the U-Net encoder" in caplog.text
    assert len(caplog.records) == 2


@pytest.mark.parametrize(
    ("names", "size", "message"),
    [
        (("a", "c"), (16, 16), r"learned the classes a, b; .* gives a, c: resume on data"),
        (("b", "a"), (16, 16), r"learned the classes a, b; .* gives b, a"),
        (("a", "b"), (32, 32), r"takes 16x16x3 input, not 32x32x3"),
    ],
)
def test_resume_on_other_classes_or_size_is_refused_before_the_run_is_touched(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    names: tuple[str, ...],
    size: tuple[int, int],
    message: str,
) -> None:
    """Other data with 5 classes trained a whole epoch into a 2-class run, then crashed with a
    traceback; swapped names renamed the model's classes; --size put the quantisation-aware
    model aside before failing."""
    import sys
    import types

    from edgeseg.core.errors import DatasetError
    from edgeseg.core.spec import ModelSpec
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import train

    data = _striped_pairs(tmp_path / "data", "\n".join(names) + "\n")
    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    (run / "resume" / "last.keras").write_bytes(b"untouched")
    (run / "resume" / "state.json").write_text('{"epoch": 1, "best_miou": 0.5}')
    ModelSpec(16, 16, ("a", "b")).save(run / "config.json")
    before = (run / "config.json").read_text()

    def run_fit(*args: object) -> object:
        raise AssertionError("training must not start")

    fake = types.ModuleType("edgeseg.train.loop")
    fake.run_fit = run_fit  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "edgeseg.train.loop", fake)
    with pytest.raises(DatasetError, match=message):
        train(TrainConfig(data=data, out=run, size=size, depth=1, steps=1, resume=True))
    assert (run / "config.json").read_text() == before
    assert (run / "resume" / "last.keras").read_bytes() == b"untouched"


def test_a_moved_run_on_built_in_data_resumes_with_the_data_it_carries(tmp_path: Path) -> None:
    """The synthetic data lives in OUT, but config.json recorded its old absolute path."""
    import json

    from edgeseg.train import SYNTHETIC_FOLDER
    from edgeseg.train.config import TrainConfig, build_config

    old = tmp_path / "runs" / "syn"
    moved = tmp_path / "runs" / "syn_moved"
    (moved / SYNTHETIC_FOLDER).mkdir(parents=True)
    saved = TrainConfig(data=old / SYNTHETIC_FOLDER, out=old).to_dict()
    (moved / "config.json").write_text(json.dumps({"train": saved}))
    config = build_config(None, moved, {}, resume=True)
    assert config.data == moved / SYNTHETIC_FOLDER


def test_two_trainings_into_one_out_folder_do_not_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `train` processes on one --out both exited 0 and left a mix of their files: the
    second is refused while the first holds the folder; the lock goes with the first."""
    import sys
    import types

    from edgeseg.core.errors import EdgesegError
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import train

    data = _striped_pairs(tmp_path / "data")
    out = tmp_path / "run"
    seen: list[str] = []

    def run_fit(config: TrainConfig, *args: object) -> object:
        # while this run holds --out, a second training into it is refused
        with pytest.raises(EdgesegError, match="another edgeseg train is writing this run"):
            train(TrainConfig(data=data, out=out, size=(16, 16), depth=1, steps=1))
        seen.append("refused")
        raise KeyboardInterrupt

    fake = types.ModuleType("edgeseg.train.loop")
    fake.run_fit = run_fit  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "edgeseg.train.loop", fake)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(data=data, out=out, size=(16, 16), depth=1, steps=1))
    assert seen == ["refused"]
    fake.run_fit = lambda *a: "trained"  # type: ignore[attr-defined]
    assert train(TrainConfig(data=data, out=out, size=(16, 16), depth=1, steps=1)) == "trained"


def test_resume_whose_recorded_data_is_gone_says_where_it_was_read(tmp_path: Path) -> None:
    import json

    from edgeseg.core.errors import DatasetError
    from edgeseg.train.config import TrainConfig, build_config

    run = tmp_path / "run"
    run.mkdir()
    saved = TrainConfig(data=tmp_path / "gone", out=run).to_dict()
    (run / "config.json").write_text(json.dumps({"train": saved}))
    with pytest.raises(DatasetError, match=r"gone: the data .*config\.json says this run trained"):
        build_config(None, run, {}, resume=True)


def test_the_demo_stops_when_its_training_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the demo's training kept the checkpoint (as train does) and the demo went on
    to convert, check and stream the half-trained model, exiting 0."""
    import types

    from edgeseg import demo
    from edgeseg.train import fit

    monkeypatch.setattr(fit, "train", lambda config: types.SimpleNamespace(interrupted=True))
    with pytest.raises(KeyboardInterrupt):
        demo._train(demo.DemoSettings(out=tmp_path), tmp_path, lambda _msg: None)
    monkeypatch.setattr(fit, "train", lambda config: types.SimpleNamespace(interrupted=False))
    assert not demo._train(demo.DemoSettings(out=tmp_path), tmp_path, lambda _msg: None).interrupted


def test_resume_without_saved_state_is_refused_not_restarted(tmp_path: Path) -> None:
    """Stopped while writing its first state, a run resumed from epoch 1 with no best score
    and replaced its better model.keras, without a word."""
    from edgeseg.core.errors import ModelError
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import _check_out

    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    (run / "model.keras").write_bytes(b"best so far")
    with pytest.raises(ModelError, match=r"no saved training state .*--overwrite"):
        _check_out(TrainConfig(data=tmp_path, out=run, resume=True))


def test_ctrl_c_while_generating_built_in_data_leaves_no_empty_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgeseg.data import synthetic
    from edgeseg.train.config import build_config

    def interrupted(folder: Path, **kwargs: object) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "generate_synthetic_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_config(None, tmp_path / "runs" / "syn", {})
    assert list(tmp_path.iterdir()) == []


def test_a_run_stopped_before_its_first_checkpoint_leaves_the_previous_run_whole(
    tmp_path: Path,
) -> None:
    """--overwrite deleted the finished run before the first epoch, so a Ctrl-C in it left an
    empty folder; --resume of a finished run put the float model back as model.keras at once,
    and a stop before a better epoch lost the quantisation-aware model."""
    pytest.importorskip("keras")
    from edgeseg.train.loop import _previous_run_kept

    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    files = {
        "model.keras": b"quantisation-aware",
        "model_float.keras": b"float",
        "config.json": b"{}",
        "history.csv": b"epoch\n1\n",
        "resume/last.keras": b"last",
    }
    for name, data in files.items():
        (run / name).write_bytes(data)

    def contents() -> dict[str, bytes]:
        return {
            p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()
        }

    with pytest.raises(KeyboardInterrupt), _previous_run_kept(run, resume=False, enabled=True):
        assert not (run / "model.keras").exists()  # a new run starts clean
        raise KeyboardInterrupt
    assert contents() == files
    with pytest.raises(KeyboardInterrupt), _previous_run_kept(run, resume=True, enabled=True):
        assert (run / "model.keras").read_bytes() == b"float"  # resumed: the float model
        raise KeyboardInterrupt
    assert contents() == files
    with _previous_run_kept(run, resume=False, enabled=True):
        (run / "model.keras").write_bytes(b"new run's first checkpoint")
    assert contents() == {"model.keras": b"new run's first checkpoint"}


def test_a_run_killed_before_its_first_checkpoint_is_put_back_by_the_next_train(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`kill -9` during an --overwrite run's first epoch left the previous run in .replaced,
    and the next `train` of the folder deleted it."""
    pytest.importorskip("keras")
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import _check_out
    from edgeseg.train.loop import _previous_run_kept
    from edgeseg.train.run_folder import recover_previous_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"finished")
    (run / "config.json").write_bytes(b"{}")
    (run / "history.csv").write_text("epoch\n1\n")
    killed = _previous_run_kept(run, resume=False, enabled=True)
    killed.__enter__()  # killed inside: never left
    (run / "history.csv").write_text("epoch\n")  # the killed run's first line
    config = TrainConfig(data=tmp_path, out=run)
    with caplog.at_level("WARNING"):
        recover_previous_run(config.out, config.strategy)
    assert (run / "model.keras").read_bytes() == b"finished"
    assert (run / "history.csv").read_text() == "epoch\n1\n"
    assert not (run / ".replaced").exists()
    assert "put back model.keras, config.json, history.csv from .replaced" in caplog.text
    with pytest.raises(EdgesegError, match="already holds a trained model"):
        _check_out(config)  # a plain train must not now replace it without --overwrite


def _run_killed_while_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> tuple[Path, object]:
    """A finished run (trained with STRATEGY) whose files an --overwrite run killed outright set
    aside in .replaced, and a guard that fails when built-in scenes would be generated into it.
    Returns the run folder and the open set-aside (held: one collected would put them back)."""
    pytest.importorskip("keras")
    import json

    import edgeseg.train.config as config_module
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.loop import _previous_run_kept

    def never(*_args: object) -> Path:
        raise AssertionError("built-in scenes generated into a folder holding a model")

    monkeypatch.setattr(config_module, "_synthetic_data", never)
    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    record = TrainConfig(data=tmp_path, out=run, strategy=strategy).to_dict()
    (run / "config.json").write_text(json.dumps({"train": record}))
    (run / "model.keras").write_bytes(b"finished")
    killed = _previous_run_kept(run, resume=False, enabled=True)
    killed.__enter__()  # killed inside: never left
    return run, killed


def test_the_next_train_puts_a_set_aside_run_back_before_reading_or_generating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`info` said the next `train --out RUN` puts a killed run's previous model back: run
    without DATA, it first generated 3.8 MB of built-in scenes into RUN and then refused (the
    folder held a model again), and `--resume` found no config.json, as it was still set aside."""
    from edgeseg.train.config import build_config
    from edgeseg.train.loop import _previous_run_kept

    run, killed = _run_killed_while_set_aside(tmp_path, monkeypatch, "default")
    assert not (run / "config.json").exists()
    with caplog.at_level("WARNING"), pytest.raises(EdgesegError, match="already holds a trained"):
        build_config(None, run, {})
    assert "put back" in caplog.text and (run / "model.keras").read_bytes() == b"finished"
    assert not (run / "synthetic_data").exists()
    killed = _previous_run_kept(run, resume=False, enabled=True)
    killed.__enter__()
    assert build_config(None, run, {"lr": 5e-4}, resume=True).lr == 5e-4
    assert (run / "config.json").is_file() and not (run / ".replaced").exists()


def test_a_set_aside_multiworker_run_is_put_back_by_a_plain_train_and_named_by_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strategy recorded by the set-aside run decided whether a new train put it back: a
    multi-worker one was left aside (built-in scenes generated into the folder); a
    multi-worker resume said 'nothing to resume' while the run sat whole in .replaced."""
    from edgeseg.train.config import build_config

    run, _killed = _run_killed_while_set_aside(tmp_path, monkeypatch, "multiworker")
    with pytest.raises(EdgesegError, match=r"set aside in .*\.replaced.*edgeseg train --out"):
        build_config(None, run, {"strategy": "multiworker"}, resume=True)
    # a new multi-worker run without --overwrite would set it aside again and delete it
    with pytest.raises(EdgesegError, match=r"a trained model is set aside .*--overwrite"):
        build_config(None, run, {"strategy": "multiworker"})
    # while a multi-worker chief writes the folder (it holds the lock), nothing is put back
    from edgeseg.train.run_folder import chief_lock

    with chief_lock(run, "multiworker"), pytest.raises(EdgesegError, match="another edgeseg"):
        build_config(None, run, {})
    assert (run / ".replaced" / "model.keras").is_file()
    with pytest.raises(EdgesegError, match="already holds a trained model"):
        build_config(None, run, {})  # this request's strategy: the default, which puts back
    assert (run / "model.keras").read_bytes() == b"finished"
    assert not (run / ".replaced").exists()


def test_resume_finishes_a_quantisation_aware_step_that_was_stopped(tmp_path: Path) -> None:
    """Ctrl-C during the quantisation-aware step said 'continue with --resume', which then
    refused: 'already trained 2 epochs; pass --epochs above 2'."""
    import json

    from edgeseg.core.errors import EdgesegError
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import _check_out

    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    (run / "model.keras").write_bytes(b"float")
    (run / "resume" / "state.json").write_text('{"epoch": 2, "best_miou": 0.5}')
    (run / "config.json").write_text(json.dumps({"spec": {}, "val": {}}))
    config = TrainConfig(data=tmp_path, out=run, resume=True, epochs=2)
    _check_out(config)  # the float epochs are done; the resume runs the step left
    (run / "config.json").write_text(json.dumps({"spec": {}, "qat": {"steps": 0}}))
    with pytest.raises(EdgesegError, match="already trained 2 epochs"):
        _check_out(config)
    with pytest.raises(EdgesegError, match="already trained 2 epochs"):
        _check_out(TrainConfig(data=tmp_path, out=run, resume=True, epochs=2, qat=False))


def _striped_pairs(data: Path, labels: str = "a\nb\n") -> Path:
    """Five 16x16 image + mask pairs (a stripe of class 1 at a different place in each) and
    labels.txt: the smallest real dataset train's checks pass."""
    import cv2

    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    (data / "labels.txt").write_text(labels)
    for i in range(5):
        mask = np.zeros((16, 16), np.uint8)
        mask[:, i + 4 :] = 1
        assert cv2.imwrite(str(data / "images" / f"s{i}.png"), np.full((16, 16, 3), 9, np.uint8))
        assert cv2.imwrite(str(data / "masks" / f"s{i}.png"), mask)
    return data


def test_python_callers_read_the_parameters_they_passed_not_cli_flags(tmp_path: Path) -> None:
    """train(class_weighting="foo") said "--class-weights must be one of ...", a name Python
    refuses; a finished run said "pass --resume ... --overwrite ... or choose another --out"."""
    import edgeseg
    from edgeseg.api import python_names

    data = _striped_pairs(tmp_path / "data")
    with pytest.raises(EdgesegError, match=r"^class_weighting must be one of none, sqrt"):
        edgeseg.train(data, out=tmp_path / "run", class_weighting="foo")
    run = tmp_path / "done"
    run.mkdir()
    (run / "model.keras").write_bytes(b"a finished run")
    with pytest.raises(EdgesegError) as caught:
        edgeseg.train(data, out=run)
    assert (
        "pass resume=True to continue it, overwrite=True to replace it, or choose another out"
        in (str(caught.value))
    )
    assert python_names("--size 100x100 (--depth 4), --no-qat, /runs/--x, --calib DIR") == (
        "size 100x100 (depth 4), qat=False, /runs/--x, calib=DIR"
    )


def test_every_training_option_is_checked_before_anything_is_said_or_generated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """val_fraction=1.5 on data with its own val/ warned "does nothing here", then refused;
    target="edgetpu" with upsample="transpose" silently trained the resize decoder (the CLI
    refused it); data=None generated the built-in scenes before refusing steps=0."""
    import edgeseg

    for split in ("train", "val"):
        _striped_pairs(tmp_path / "data" / split)
    with caplog.at_level("WARNING"), pytest.raises(EdgesegError, match="val_fraction must be"):
        edgeseg.train(tmp_path / "data", out=tmp_path / "run", val_fraction=1.5)
    assert "does nothing" not in caplog.text
    with pytest.raises(EdgesegError, match="target edgetpu needs upsample resize"):
        edgeseg.train(
            tmp_path / "data", out=tmp_path / "run", target="edgetpu", upsample="transpose"
        )
    with pytest.raises(EdgesegError, match="target edgetpu needs upsample resize"):
        edgeseg.train(out=tmp_path / "r", resume=True, target="edgetpu", upsample="transpose")
    with pytest.raises(EdgesegError, match="steps must be >= 1"):
        edgeseg.train(None, out=tmp_path / "synthetic", steps=0)
    assert not (tmp_path / "synthetic").exists()


def test_train_from_python_raises_on_ctrl_c_and_leaves_the_process_as_it_was(
    tmp_path: Path,
) -> None:
    """Ctrl-C in train() returned normally (a loop went on to train the next model); train()
    reseeded Python's and NumPy's generators; absl's root handler stayed behind (a later
    logging.basicConfig did nothing, TensorFlow warnings printed twice)."""
    keras = pytest.importorskip("keras")
    import logging
    import random

    import edgeseg

    class CtrlC(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            raise KeyboardInterrupt

    data = _striped_pairs(tmp_path / "data")
    handlers = list(logging.root.handlers)
    np.random.seed(12345)
    random.seed(12345)
    expected = np.random.rand(), random.random()
    np.random.seed(12345)
    random.seed(12345)
    tiny = {"size": 16, "depth": 1, "filters": 4, "batch": 2, "epochs": 3, "qat": False}
    with pytest.raises(edgeseg.api.TrainingStopped) as stopped:
        edgeseg.train(data, out=tmp_path / "run", callbacks=[CtrlC()], xla="off", **tiny)
    assert isinstance(stopped.value, KeyboardInterrupt)
    result = stopped.value.result
    assert result.interrupted and result.epochs_run == 1 and result.model_path.is_file()
    assert result.config is not None and result.config.size == (16, 16)  # as resolved
    assert result.config.epochs == 3 and result.float_model_path is None  # qat=False
    assert (np.random.rand(), random.random()) == expected
    assert logging.root.handlers == handlers


def test_without_the_training_stack_python_calls_say_how_to_install_it(tmp_path: Path) -> None:
    """On a runtime-only install train() failed "No module named 'PIL'" and convert() or
    evaluate() of a .keras "No module named 'keras'", from deep inside; dataset sizes needed
    Pillow (edgeseg info DATA asked for the whole training stack)."""
    import subprocess
    import sys
    import textwrap

    import cv2

    image = tmp_path / "a.png"
    assert cv2.imwrite(str(image), np.zeros((12, 20, 3), np.uint8))
    code = textwrap.dedent(
        f"""
        import sys
        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "PIL", "matplotlib"):
                    raise ImportError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Absent())
        import edgeseg
        from edgeseg.train.recipe import image_size
        print(image_size({str(image)!r}))
        for call in (lambda: edgeseg.train("data"), lambda: edgeseg.convert("m.keras"),
                     lambda: edgeseg.evaluate("m.keras", "data")):
            try:
                call()
            except edgeseg.EdgesegError as exc:
                print(type(exc).__name__, exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "(12, 20)"
    assert lines[1].startswith("MissingStackError edgeseg.train() needs the training stack")
    assert "pip install 'edgeseg[train]'" in lines[1] and "-e '.[train]'" in lines[1]
    assert lines[2].startswith("MissingStackError edgeseg.convert() needs")
    assert lines[3].startswith("MissingStackError edgeseg.evaluate() of a .keras model needs")


@pytest.mark.parametrize(
    ("saved", "given", "message"),
    [
        (
            {"encoder": "mobilenetv2", "alpha": 0.5},
            {"alpha": 1.0, "upsample": "resize"},
            r"built \(encoder mobilenetv2, alpha 0.5, upsample transpose\); --alpha 1.0 "
            r"--upsample resize would change it: resume without them",
        ),
        ({}, {"encoder": "mobilenetv2"}, r"encoder unet, depth 4, .*--encoder mobilenetv2"),
        ({}, {"depth": 3, "filters": 16}, r"; --depth 3 would change it: resume without it"),
        ({"encoder": "mobilenetv2"}, {"weights": "w.h5"}, r"--weights w.h5 would change it"),
    ],
)
def test_resume_refuses_options_that_would_change_the_network(
    tmp_path: Path, saved: dict[str, object], given: dict[str, object], message: str
) -> None:
    """`--resume --alpha 1.0 --upsample resize` kept training the alpha-0.5 transposed network
    but recorded alpha 1.0 / resize in config.json, `info` and the .tflite metadata; a
    resume with `--encoder unet --depth 3` labelled a MobileNetV2 model a 3-level U-Net."""
    import json

    from edgeseg.core.errors import EdgesegError
    from edgeseg.train.config import TrainConfig, build_config

    run = tmp_path / "run"
    run.mkdir()
    record = TrainConfig(data=tmp_path, out=run, **saved).to_dict()  # type: ignore[arg-type]
    (run / "config.json").write_text(json.dumps({"train": record}))
    with pytest.raises(EdgesegError, match=message):
        build_config(None, run, given, resume=True)
    unchanged = {k: v for k, v in {**record, "lr": 5e-4}.items() if k in ("encoder", "lr")}
    assert build_config(None, run, unchanged, resume=True).lr == 5e-4  # the rest may change


def test_resume_takes_the_options_it_was_trained_with_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`--weights w.h5` then `--resume --weights w.h5` was refused as a change (config.json
    records the path absolute), as was `weights=Path(...)` from Python; `--alpha` on a U-Net
    run's resume was refused though the U-Net never uses it."""
    import json

    from edgeseg.core.errors import EdgesegError
    from edgeseg.train.config import TrainConfig, build_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    run = tmp_path / "run"
    run.mkdir()
    record = TrainConfig(data=tmp_path, out=run, encoder="mobilenetv2", weights="w.h5").to_dict()
    (run / "config.json").write_text(json.dumps({"train": record}))
    for weights in ("w.h5", Path("w.h5"), tmp_path / "w.h5"):
        assert build_config(None, run, {"weights": weights}, resume=True).encoder == "mobilenetv2"
    (tmp_path / "other.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(EdgesegError, match=r"--weights other\.h5 would change it"):
        build_config(None, run, {"weights": "other.h5"}, resume=True)
    unet = tmp_path / "unet"
    unet.mkdir()
    record = TrainConfig(data=tmp_path, out=unet).to_dict()
    (unet / "config.json").write_text(json.dumps({"train": record}))
    with caplog.at_level("WARNING"):
        assert build_config(None, unet, {"alpha": 0.5}, resume=True).encoder == "unet"
    assert "the U-Net does not use it" in caplog.text
    with pytest.raises(EdgesegError, match=r"built \(.*target cpu\); --target edgetpu"):
        build_config(None, unet, {"target": "edgetpu"}, resume=True)


def test_resume_with_a_step_budget_already_trained_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`--resume --steps 40` on a run of 7 epochs of 13 steps trained nothing, redid the
    quantisation-aware model and recorded 52 steps in 4 epochs beside a 7-epoch history."""
    import json
    import sys
    import types

    from edgeseg.core.errors import EdgesegError
    from edgeseg.core.spec import ModelSpec
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import train

    data = _striped_pairs(tmp_path / "data")
    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    (run / "resume" / "last.keras").write_bytes(b"untouched")
    (run / "resume" / "state.json").write_text('{"epoch": 7, "best_miou": 0.5}')
    spec = ModelSpec(16, 16, ("a", "b"))
    spec.save(run / "config.json")
    saved = json.loads((run / "config.json").read_text())
    saved["qat"] = {"done": True}  # its quantisation-aware step finished
    (run / "config.json").write_text(json.dumps(saved))
    fake = types.ModuleType("edgeseg.train.loop")
    fake.run_fit = lambda *a: "trained"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "edgeseg.train.loop", fake)

    def resume(steps: int) -> object:
        shape = {"size": (16, 16), "depth": 1, "steps_per_epoch": 13}
        return train(TrainConfig(data=data, out=run, steps=steps, resume=True, **shape))  # type: ignore[arg-type]

    (run / "model.keras").write_bytes(b"best so far")
    (run / "model_int8.tflite").write_bytes(b"converted from it")
    stale = "converted from the model this run replaces"
    with caplog.at_level("WARNING"):
        refused = r"already trained 7 epochs of 13 steps \(91 steps\); pass --steps above 91"
        with pytest.raises(EdgesegError, match=refused):
            resume(40)
        with pytest.raises(EdgesegError, match=r"pass --steps above 91"):
            resume(91)
        assert stale not in caplog.text  # a refused resume warned, then refused
        assert resume(92) == "trained"
    assert stale in caplog.text


def test_resume_on_other_data_is_said_only_once_it_is_accepted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """'--resume with other data ... training continues on the new data' was printed, then the
    resume was refused (the data's classes differ)."""
    import json

    from edgeseg.core.errors import DatasetError
    from edgeseg.core.spec import ModelSpec
    from edgeseg.train.config import TrainConfig
    from edgeseg.train.fit import _check_resumable

    first, other, run = tmp_path / "first", tmp_path / "other", tmp_path / "run"
    for folder in (first, other, run):
        folder.mkdir()
    spec = ModelSpec(16, 16, ("a", "b"))
    record = TrainConfig(data=first, out=run).to_dict()
    (run / "config.json").write_text(json.dumps({"spec": spec.to_dict(), "train": record}))
    resumed = TrainConfig(data=other, out=run, resume=True)
    with caplog.at_level("WARNING"):
        with pytest.raises(DatasetError, match="learned the classes a, b"):
            _check_resumable(resumed, ModelSpec(16, 16, ("a", "c")))
        assert "other data" not in caplog.text
        _check_resumable(resumed, spec)
        assert f"--resume with other data ({other}; the run trained on {first})" in caplog.text
        caplog.clear()
        _check_resumable(TrainConfig(data=first, out=run, resume=True), spec)
        first.rmdir()  # moved since: the same data found elsewhere is not "other"
        _check_resumable(resumed, spec)
    assert "other data" not in caplog.text
