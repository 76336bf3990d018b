"""The hardware a model was trained for (`edgeseg train --target`), read back at convert time:
an Edge TPU model converts with uint8 input by default (camera bytes straight in, as Coral wants).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from edgeseg.convert.options import IOType
from edgeseg.core.errors import ModelError
from edgeseg.core.spec import ModelSpec
from edgeseg.train import CONFIG_NAME, QAT_LAYERS, QAT_PACKAGE

_MAX_CONFIG_BYTES = 64 << 20  # a model's layer list; far above any U-Net's (about 30 KB)


def model_target(model: str | Path) -> str:
    """The target recorded in config.json beside a .keras model ('cpu' when absent or unreadable:
    the conversion itself reports a broken config)."""
    config = Path(model).with_name(CONFIG_NAME)
    if not config.is_file():
        return "cpu"
    try:
        return ModelSpec.load(config).target
    except ModelError:
        return "cpu"


def model_is_qat(model: str | Path) -> bool:
    """Whether a .keras file is a quantisation-aware model (converts from its own int8 ranges: no
    calibration images needed), read off the layer list in its archive without loading Keras: a
    run's model_float.keras shares the run's config.json but is the float network. False for a
    path that is not a readable .keras archive: loading it reports that."""
    model = Path(model)
    if model.suffix.lower() != ".keras" or not model.is_file():
        return False
    try:
        with zipfile.ZipFile(model) as archive:
            if archive.getinfo("config.json").file_size > _MAX_CONFIG_BYTES:
                return False
            config = archive.read("config.json").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return any(f'"{QAT_PACKAGE}>{layer}"' in config for layer in QAT_LAYERS)


def default_io(model: str | Path) -> IOType:
    """uint8 input for a model trained with --target edgetpu, else int8."""
    return IOType.UINT8 if model_target(model) == "edgetpu" else IOType.INT8
