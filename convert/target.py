"""The hardware a model was trained for (`edgeseg train --target`), read back at convert time:
an Edge TPU model converts with uint8 input by default (camera bytes straight in, as Coral wants).
"""

from __future__ import annotations

from pathlib import Path

from edgeseg.convert.options import IOType
from edgeseg.core.errors import ModelError
from edgeseg.core.spec import ModelSpec
from edgeseg.train import CONFIG_NAME


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
    """Whether config.json beside a .keras model records quantisation-aware fine-tuning (such a
    model converts from its own int8 ranges: no calibration images needed). False for a path
    that is not a .keras file (e.g. the config.json itself): loading it reports that."""
    model = Path(model)
    if model.suffix.lower() != ".keras" or not model.is_file():
        return False
    config = model.with_name(CONFIG_NAME)
    try:
        return config.is_file() and bool(ModelSpec.load(config).extra.get("qat"))
    except ModelError:
        return False


def default_io(model: str | Path) -> IOType:
    """uint8 input for a model trained with --target edgetpu, else int8."""
    return IOType.UINT8 if model_target(model) == "edgetpu" else IOType.INT8
