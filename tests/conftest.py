"""Shared fixtures: paths to the real datasets in ../shared/data and one briefly trained model that
many integration tests reuse (training once per session keeps CI inside its time budget)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeseg.core.spec import ModelSpec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGESEG_SHARED_DATA", REPO.parent / "shared" / "data"))


def _real_dataset(name: str) -> Path:
    path = SHARED_DATA / name
    if not (path / "train" / "images").is_dir():
        pytest.skip(
            f"real dataset {path} is absent (expected ../shared/data/{name} beside the repo)"
        )
    return path


@pytest.fixture(scope="session")
def membrane_data() -> Path:
    """Real binary EM set: 24/6 pairs of 512x512 grayscale PNG."""
    return _real_dataset("isbi2012_membrane")


@pytest.fixture(scope="session")
def facade_data() -> Path:
    """Real 9-class street scenes: 100/71 JPEG pairs, 16-bit RGBA colour masks as published."""
    return _real_dataset("labelmefacade")


@pytest.fixture(scope="session")
def aerial_data() -> Path:
    """Real 5-class aerial set: 56/16 RGB JPEG pairs of varying sizes, 255 = ignore."""
    return _real_dataset("dubai_aerial")


@dataclass(frozen=True)
class TrainedRun:
    """A run folder as `edgeseg train` writes it: model.keras + config.json."""

    run_dir: Path
    model_path: Path
    spec: ModelSpec


@pytest.fixture(scope="session")
def membrane_run(membrane_data: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """A 128x128 U-Net trained briefly on the real membrane set (about half a minute on 2 cores)."""
    from edgeseg.train.fit import TrainConfig, train

    out = tmp_path_factory.mktemp("membrane_run")
    result = train(
        TrainConfig(
            data=membrane_data,
            out=out,
            size=(128, 128),
            epochs=8,
            batch=4,
            depth=3,
            filters=16,
            seed=0,
            verbose=0,
            qat=False,  # the float model and post-training quantisation (test_qat: the default)
        )
    )
    return TrainedRun(out, result.model_path, ModelSpec.load(result.config_path))


@pytest.fixture(scope="session")
def membrane_int8(
    membrane_run: TrainedRun, membrane_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The session's membrane U-Net converted to int8 once (12 calibration frames)."""
    from edgeseg.convert.options import ConvertOptions
    from edgeseg.convert.pipeline import convert_model

    out = tmp_path_factory.mktemp("membrane_int8") / "membrane_int8.tflite"
    convert_model(
        membrane_run.model_path,
        out,
        ConvertOptions(calib_count=12),
        calib=membrane_data / "train" / "images",
        measure_float32=False,
    )
    return out
