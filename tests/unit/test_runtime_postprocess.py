"""The runtime's post-processing fast paths give exactly what a plain argmax gives."""

from __future__ import annotations

import numpy as np
import pytest

from edgeseg.core.processing import class_map_from_output


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.float32])
@pytest.mark.parametrize("classes", [2, 5])
def test_class_map_matches_argmax_including_ties(dtype: type, classes: int) -> None:
    rng = np.random.default_rng(classes)
    out = rng.integers(0, 100, (1, 40, 30, classes)).astype(dtype)
    out[0, :6, :6] = 7  # ties resolve to the lowest class index, like np.argmax
    cmap = class_map_from_output(out, "softmax", 1 / 256, -128)
    np.testing.assert_array_equal(cmap, np.argmax(out[0], axis=2))
    assert cmap.dtype == np.uint8 and cmap.shape == (40, 30)
