"""scripts/arm64_compare.py, the verdicts of scripts/check_arm64.sh: wheel tags, agreement, mIoU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "arm64_compare.py"


@pytest.fixture(scope="module")
def cmp() -> ModuleType:
    spec = importlib.util.spec_from_file_location("arm64_compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dist(venv: Path, name: str, *tags: str) -> None:
    d = venv / "lib" / "python3.11" / "site-packages" / f"{name}.dist-info"
    d.mkdir(parents=True)
    lines = ["Wheel-Version: 1.0", "Root-Is-Purelib: false", *(f"Tag: {t}" for t in tags)]
    (d / "WHEEL").write_text("\n".join(lines) + "\n")


def test_wheels_accepts_aarch64_and_pure_python(cmp: ModuleType, tmp_path: Path) -> None:
    _dist(tmp_path, "numpy-2.4.6", "cp311-cp311-manylinux_2_27_aarch64.manylinux_2_28_aarch64")
    _dist(tmp_path, "typer-0.12.0", "py3-none-any")
    assert cmp.main(["wheels", str(tmp_path)]) == 0


def test_wheels_rejects_x86_wheel(
    cmp: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _dist(tmp_path, "typer-0.12.0", "py3-none-any")
    _dist(tmp_path, "numpy-2.4.6", "cp311-cp311-manylinux_2_17_x86_64")
    assert cmp.main(["wheels", str(tmp_path)]) == 1
    assert "FAIL: numpy-2.4.6" in capsys.readouterr().out


def test_wheels_rejects_tensorflow_even_if_aarch64(cmp: ModuleType, tmp_path: Path) -> None:
    _dist(tmp_path, "tensorflow-2.21.0", "cp311-cp311-manylinux_2_17_aarch64")
    assert cmp.main(["wheels", str(tmp_path)]) == 1


def test_wheels_rejects_an_empty_venv(cmp: ModuleType, tmp_path: Path) -> None:
    assert cmp.main(["wheels", str(tmp_path)]) == 1


def test_agree_threshold(cmp: ModuleType, tmp_path: Path) -> None:
    a = np.zeros((2, 50, 100), np.uint8)
    b = a.copy()
    b[0, 0, :5] = 1  # 5 of 10,000 pixels differ: 99.95%
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    args = ["agree", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    assert cmp.main(args) == 0
    assert cmp.main([*args, "--min", "0.9999"]) == 1
    np.save(tmp_path / "c.npy", a[:1])
    assert cmp.main(["agree", str(tmp_path / "a.npy"), str(tmp_path / "c.npy")]) == 1


def test_eval_tolerance(cmp: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "x86.json").write_text(json.dumps({"miou": 0.7512}))
    (tmp_path / "near.json").write_text(json.dumps({"miou": 0.7480}))
    (tmp_path / "far.json").write_text(json.dumps({"miou": 0.7400}))
    x86 = str(tmp_path / "x86.json")
    assert cmp.main(["eval", x86, str(tmp_path / "near.json")]) == 0
    assert cmp.main(["eval", x86, str(tmp_path / "far.json")]) == 1
