"""MobileNetV2-encoder U-Net: shapes, skips, normalisation inside, gray input, local weights files,
and the training options that choose it (bad choices fail before anything is built)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from edgeseg.core.errors import EdgesegError  # noqa: E402
from edgeseg.train.config import TrainConfig  # noqa: E402
from edgeseg.train.mobilenet_unet import (  # noqa: E402
    build_encoder,
    build_mobilenetv2_unet,
)


@pytest.mark.parametrize("channels", [3, 1])
def test_any_size_divisible_by_32_and_gray_input(channels: int) -> None:
    model = build_mobilenetv2_unet((64, 96, channels), 4, alpha=0.35, upsample="resize")
    probs = model.predict(np.full((2, 64, 96, channels), 200.0, np.float32), verbose=0)
    assert probs.shape == (2, 64, 96, 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert model.get_layer("encoder").input_shape[-1] == 3


def test_skips_at_strides_2_4_8_16_and_bottleneck_at_32() -> None:
    encoder = build_encoder((64, 96, 3), alpha=0.5)
    assert [tuple(o.shape[1:3]) for o in encoder.outputs] == [
        (32, 48),
        (16, 24),
        (8, 12),
        (4, 6),
        (2, 3),
    ]


def test_the_model_takes_raw_pixels_and_normalises_them_to_mobilenets_range() -> None:
    model = build_mobilenetv2_unet((32, 32, 3), 2)
    norm = keras.Model(model.input, model.get_layer("normalize").output)
    out = norm.predict(np.array([[[[0, 127.5, 255]] * 32] * 32], np.float32), verbose=0)
    np.testing.assert_allclose(out[0, 0, 0], [-1.0, 0.0, 1.0], atol=1e-6)
    bn = model.get_layer("encoder").get_layer("bn_Conv1")
    assert bn.momentum == 0.9  # not MobileNetV2's 0.999: short runs must converge


def test_weights_from_a_local_file_are_applied(tmp_path: Path) -> None:
    """The encoder saved by the test itself, loaded through the builder's `weights` path."""
    donor = build_encoder((32, 32, 3), alpha=0.35)
    rng = np.random.default_rng(3)
    donor_weights = [rng.normal(size=w.shape).astype(np.float32) for w in donor.get_weights()]
    base = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None
    )
    by_name = {w.path: w for w in base.weights}
    for w, value in zip(donor.weights, donor_weights, strict=True):
        by_name[w.path].assign(value)
    path = tmp_path / "encoder.weights.h5"
    base.save_weights(path)
    model = build_mobilenetv2_unet((64, 64, 1), 3, alpha=0.35, weights=path)
    loaded = {w.path: np.asarray(w) for w in model.get_layer("encoder").weights}
    for w, value in zip(donor.weights, donor_weights, strict=True):
        np.testing.assert_array_equal(loaded[w.path], value, err_msg=w.path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": (48, 48)}, "divisible by 32 for the MobileNetV2 encoder"),
        ({"alpha": 0.4}, "--alpha must be one of 0.35, 0.5, 0.75, 1"),
        ({"weights": "imagenet", "channels": 1}, "--weights imagenet needs --channels 3"),
        ({"weights": "missing.weights.h5"}, "missing.weights.h5: weights file not found"),
        ({"encoder": "resnet"}, "--encoder must be one of unet, mobilenetv2"),
    ],
)
def test_bad_encoder_options_fail_early(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"encoder": "mobilenetv2", "size": (64, 64), **kwargs}
    with pytest.raises(EdgesegError, match=match):
        TrainConfig(data=Path("d"), out=Path("o"), **base)  # type: ignore[arg-type]


def test_weights_that_are_a_folder_or_a_keras_model_are_named_as_such(tmp_path: Path) -> None:
    """An earlier run's model_float.keras as --weights printed Keras' "A total of 104 objects
    could not be loaded ... <BatchNormalizat" cut mid-word; a folder was "not found"."""
    model = tmp_path / "model_float.keras"
    model.write_bytes(b"PK")
    for weights, match in ((tmp_path, "is a folder"), (model, "not a weights file")):
        with pytest.raises(EdgesegError, match=f"{match} \\(--weights takes 'imagenet' or"):
            TrainConfig(data=tmp_path, out=tmp_path / "o", encoder="mobilenetv2", weights=weights)


def test_weights_need_the_mobilenet_encoder() -> None:
    with pytest.raises(EdgesegError, match="--weights needs --encoder mobilenetv2"):
        TrainConfig(data=Path("d"), out=Path("o"), weights="imagenet")
    config = TrainConfig(data=Path("d"), out=Path("o"), encoder="mobilenetv2", size=(96, 128))
    assert config.architecture()["encoder"] == "mobilenetv2"


def test_int8_diagnosis_names_the_encoders_own_layers() -> None:
    """Every MobileNetV2 row of --diagnose / --max-drop read 'encoder' (the nested model), so
    the table named one layer ten times and `kept in float: encoder` said nothing."""
    from edgeseg.convert.diagnose import layer_label, layer_names

    model = build_mobilenetv2_unet((64, 64, 3), 3, alpha=0.35, upsample="resize")
    known = layer_names(model)
    assert "encoder" in known and "block_15_project" in known and "block_15_project_BN" in known
    assert known.index("block_15_project") < known.index("block_15_project_BN")
    node = (
        "model/encoder_1/block_15_project_BN_1/FusedBatchNormV3;"
        "model/encoder_1/block_15_project_1/convolution"
    )
    assert layer_label(node, known) == "block_15_project+block_15_project_BN"


def test_weights_for_another_alpha_are_one_line_saying_which_shapes_differ(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """Keras printed a UserWarning per object that did not fit (76 for another --alpha) and the
    error was cut at its first line, which ended in a colon before the reason."""
    from edgeseg.core.errors import ModelError
    from edgeseg.core.spec import ModelSpec
    from edgeseg.train.loop import _fresh_model

    other = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.5, include_top=False, weights=None
    )
    path = tmp_path / "alpha05.weights.h5"
    other.save_weights(path)
    config = TrainConfig(
        data=Path("d"),
        out=Path("o"),
        encoder="mobilenetv2",
        alpha=0.35,
        weights=path,
        size=(32, 32),
    )
    assert config.weights == str(path)  # a Path from Python is kept as the string config.json holds
    with pytest.raises(ModelError) as info:
        _fresh_model(config, ModelSpec(32, 32, ("a", "b")))
    message = str(info.value)
    assert "\n" not in message and "layers do not fit, such as " in message
    assert " here, (" in message and "in the file); it must hold" in message
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_a_recorded_run_reads_without_its_weights_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--resume (and info, convert) of a --weights FILE run failed 'weights file not found'
    once the file had moved, or from another folder: the path was recorded as typed."""
    import json

    from edgeseg.train.config import load_train_config

    monkeypatch.chdir(tmp_path)
    Path("w.weights.h5").write_bytes(b"not read here")
    config = TrainConfig(
        data=Path("d"), out=Path("o"), encoder="mobilenetv2", weights="w.weights.h5"
    )
    saved = config.to_dict()
    assert saved["weights"] == str(tmp_path / "w.weights.h5")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": saved}))
    Path("w.weights.h5").unlink()
    assert load_train_config(run).weights == str(tmp_path / "w.weights.h5")
