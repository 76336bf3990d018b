"""The public API as a user meets it: `import edgeseg` stays light, the names are there, inputs
are checked with clear errors, and the Edge TPU target travels from training to conversion."""

from __future__ import annotations

import json
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
        (np.zeros((8, 8, 3), np.float32), "uint8"),
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
    with pytest.raises(EdgesegError, match="does not match the frame size"):
        edgeseg.overlay(frame, classes[:10], spec)


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
